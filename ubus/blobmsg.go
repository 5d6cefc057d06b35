package ubus

import (
	"encoding/binary"
	"fmt"
	"math"
)

// AppendTable appends the members of t as blobmsg attributes, the form of a
// message's DATA attribute and of a table's payload.
func AppendTable(b []byte, t Table) ([]byte, error) {
	e := encoder{b: b}
	e.fields(t, 0)
	return e.b, e.err
}

// EncodeTable is AppendTable to a new buffer, refusing results that no ubus
// message could carry.
func EncodeTable(t Table) ([]byte, error) {
	b, err := AppendTable(nil, t)
	if err == nil && len(b) > MaxMessageLen {
		err = fmt.Errorf("ubus: table encodes to %d bytes, more than a message carries (%d)", len(b), MaxMessageLen)
	}
	return b, err
}

// AppendValue appends one blobmsg attribute called name (empty for array
// elements).
func AppendValue(b []byte, name string, v Value) ([]byte, error) {
	e := encoder{b: b}
	e.value(name, v, 0)
	return e.b, e.err
}

type encoder struct {
	b   []byte
	err error
}

func (e *encoder) fail(format string, a ...any) {
	if e.err == nil {
		e.err = fmt.Errorf("ubus: cannot encode: "+format, a...)
	}
}

func (e *encoder) fields(t Table, depth int) {
	for _, f := range t {
		if f.Name == "" {
			e.fail("table member without a name")
			return
		}
		e.value(f.Name, f.Value, depth)
		if e.err != nil {
			return
		}
	}
}

func (e *encoder) value(name string, v Value, depth int) {
	if depth >= MaxDepth {
		e.fail("nesting deeper than %d", MaxDepth)
		return
	}
	if len(name) > math.MaxUint16 {
		e.fail("name of %d bytes", len(name))
		return
	}
	if hasNUL(name) {
		e.fail("name %q contains NUL", name)
		return
	}
	if v == nil {
		e.fail("member %q has no value", name)
		return
	}
	b, s := beginAttr(e.b)
	b = binary.BigEndian.AppendUint16(b, uint16(len(name)))
	b = append(b, name...)
	b = append(b, 0)
	for (len(b)-s-blobHdrLen)%4 != 0 {
		b = append(b, 0)
	}
	switch x := v.(type) {
	case Null:
	case String:
		if hasNUL(string(x)) {
			e.fail("string %q contains NUL", string(x))
			return
		}
		b = append(b, x...)
		b = append(b, 0)
	case Int64:
		b = binary.BigEndian.AppendUint64(b, uint64(x))
	case Int32:
		b = binary.BigEndian.AppendUint32(b, uint32(x))
	case Int16:
		b = binary.BigEndian.AppendUint16(b, uint16(x))
	case Int8:
		b = append(b, uint8(x))
	case Double:
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(float64(x)))
	case Table:
		e.b = b
		e.fields(x, depth+1)
		b = e.b
	case Array:
		e.b = b
		for _, el := range x {
			e.value("", el, depth+1)
			if e.err != nil {
				return
			}
		}
		b = e.b
	default:
		e.fail("value of Go type %T", v)
		return
	}
	if e.err != nil {
		return
	}
	e.b = endAttr(b, s, uint8(v.Type()), true)
}

func hasNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

// ParseTable decodes blobmsg attributes that form a table's members (a DATA
// attribute's payload, for one). Every member needs a name, as libubox
// demands.
func ParseTable(b []byte) (Table, error) {
	return parseTable(b, 0, 0)
}

// ParseArray decodes blobmsg attributes that form an array's elements.
func ParseArray(b []byte) (Array, error) {
	return parseArray(b, 0, 0)
}

func parseTable(b []byte, base, depth int) (Table, error) {
	attrs, err := splitAttrs(b, base, "blobmsg")
	if err != nil {
		return nil, err
	}
	t := make(Table, 0, len(attrs))
	for _, a := range attrs {
		name, v, err := parseValue(a, depth)
		if err != nil {
			return nil, err
		}
		if name == "" {
			return nil, &DecodeError{"blobmsg", a.off, "table member without a name"}
		}
		t = append(t, Field{name, v})
	}
	return t, nil
}

func parseArray(b []byte, base, depth int) (Array, error) {
	attrs, err := splitAttrs(b, base, "blobmsg")
	if err != nil {
		return nil, err
	}
	arr := make(Array, 0, len(attrs))
	for _, a := range attrs {
		name, v, err := parseValue(a, depth)
		if err != nil {
			return nil, err
		}
		if name != "" {
			// libubox ignores it; keeping the decoder's output a faithful
			// image of the bytes means refusing it.
			return nil, &DecodeError{"blobmsg", a.off, fmt.Sprintf("array element with a name (%q)", name)}
		}
		arr = append(arr, v)
	}
	return arr, nil
}

var scalarLen = [...]int{
	TypeInt64:  8,
	TypeInt32:  4,
	TypeInt16:  2,
	TypeInt8:   1,
	TypeDouble: 8,
}

func parseValue(a attr, depth int) (string, Value, error) {
	fail := func(off int, format string, args ...any) (string, Value, error) {
		return "", nil, &DecodeError{"blobmsg", a.off + off, fmt.Sprintf(format, args...)}
	}
	if depth >= MaxDepth {
		return fail(0, "nesting deeper than %d", MaxDepth)
	}
	if !a.ext {
		return fail(0, "plain blob attribute (id %d) where blobmsg was expected", a.id)
	}
	p := a.payload
	if len(p) < 2 {
		return fail(blobHdrLen, "no room for the name length")
	}
	nl := int(binary.BigEndian.Uint16(p))
	hl := pad4(2 + nl + 1)
	if hl > len(p) {
		return fail(blobHdrLen, "name of %d bytes runs past the attribute", nl)
	}
	if p[2+nl] != 0 {
		return fail(blobHdrLen+2+nl, "name not NUL-terminated")
	}
	for i := 2 + nl + 1; i < hl; i++ {
		if p[i] != 0 {
			return fail(blobHdrLen+i, "non-zero padding after the name")
		}
	}
	name := p[2 : 2+nl]
	for i, c := range name {
		if c == 0 {
			return fail(blobHdrLen+2+i, "NUL inside the name")
		}
	}
	data := p[hl:]
	doff := a.off + blobHdrLen + hl
	t := Type(a.id)
	if int(t) < len(scalarLen) && scalarLen[t] != 0 && len(data) != scalarLen[t] {
		return fail(blobHdrLen+hl, "%s value of %d bytes, want %d", t, len(data), scalarLen[t])
	}
	var v Value
	switch t {
	case TypeUnspec:
		if len(data) != 0 {
			return fail(blobHdrLen+hl, "unspec value with %d bytes of payload", len(data))
		}
		v = Null{}
	case TypeString:
		s, ok := cString(data)
		if !ok {
			return fail(blobHdrLen+hl, "string not NUL-terminated or with NUL inside")
		}
		v = String(s)
	case TypeInt64:
		v = Int64(binary.BigEndian.Uint64(data))
	case TypeInt32:
		v = Int32(binary.BigEndian.Uint32(data))
	case TypeInt16:
		v = Int16(binary.BigEndian.Uint16(data))
	case TypeInt8:
		v = Int8(data[0])
	case TypeDouble:
		v = Double(math.Float64frombits(binary.BigEndian.Uint64(data)))
	case TypeTable, TypeArray:
		var err error
		if t == TypeTable {
			v, err = parseTable(data, doff, depth+1)
		} else {
			v, err = parseArray(data, doff, depth+1)
		}
		if err != nil {
			return "", nil, err
		}
	default:
		return fail(0, "unknown blobmsg type %d", a.id)
	}
	return string(name), v, nil
}
