package ubus

import "fmt"

// Signature is what an object declares about its methods: for each one,
// the arguments and their blobmsg types. On the wire it is a blobmsg table
// per method, named after it, whose members are INT32 type numbers named
// after the arguments.
type Signature []MethodSig

// MethodSig is one method of a Signature.
type MethodSig struct {
	Name string
	Args []ArgSig
}

// ArgSig is one declared argument.
type ArgSig struct {
	Name string
	Type Type
}

// Table gives the signature's blobmsg form.
func (s Signature) Table() Table {
	t := make(Table, 0, len(s))
	for _, m := range s {
		args := make(Table, 0, len(m.Args))
		for _, a := range m.Args {
			args = append(args, Field{a.Name, Int32(a.Type)})
		}
		t = append(t, Field{m.Name, args})
	}
	return t
}

// Encode gives the payload of a SIGNATURE attribute.
func (s Signature) Encode() ([]byte, error) {
	b, err := EncodeTable(s.Table())
	if b == nil && err == nil {
		b = []byte{}
	}
	return b, err
}

// Method returns the declaration of the method called name.
func (s Signature) Method(name string) (MethodSig, bool) {
	for _, m := range s {
		if m.Name == name {
			return m, true
		}
	}
	return MethodSig{}, false
}

// ParseSignature decodes a SIGNATURE attribute's payload.
func ParseSignature(p []byte) (Signature, error) {
	t, err := ParseTable(p)
	if err != nil {
		return nil, err
	}
	return SignatureFromTable(t)
}

// SignatureFromTable reads the blobmsg form of a signature.
func SignatureFromTable(t Table) (Signature, error) {
	s := make(Signature, 0, len(t))
	for _, f := range t {
		args, ok := f.Value.(Table)
		if !ok {
			return nil, fmt.Errorf("ubus: signature: method %q is a %s, not a table", f.Name, f.Value.Type())
		}
		m := MethodSig{Name: f.Name, Args: make([]ArgSig, 0, len(args))}
		for _, a := range args {
			v, ok := a.Value.(Int32)
			if !ok || v < 0 || v > 255 {
				return nil, fmt.Errorf("ubus: signature: argument %q of %q is not a type number", a.Name, f.Name)
			}
			m.Args = append(m.Args, ArgSig{a.Name, Type(v)})
		}
		s = append(s, m)
	}
	return s, nil
}
