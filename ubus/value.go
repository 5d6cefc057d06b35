package ubus

import (
	"math"
	"strconv"
)

// Type is a blobmsg value type: the 7-bit id of a blob attribute that has the
// extended bit set.
type Type uint8

// The blobmsg types. Booleans travel as TypeInt8 (there is no separate wire
// type); the ubus tool prints any INT8 as true or false.
const (
	TypeUnspec Type = 0 // JSON null; no payload
	TypeArray  Type = 1
	TypeTable  Type = 2
	TypeString Type = 3
	TypeInt64  Type = 4
	TypeInt32  Type = 5
	TypeInt16  Type = 6
	TypeInt8   Type = 7
	TypeDouble Type = 8

	TypeBool = TypeInt8
)

var typeNames = [...]string{"unspec", "array", "table", "string", "int64", "int32", "int16", "int8", "double"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "type" + strconv.Itoa(int(t))
}

// Value is one blobmsg value. The concrete types are Null, Array, Table,
// String, Int64, Int32, Int16, Int8 and Double; each is the Go image of one
// wire type, so that decoding and encoding again gives the same bytes.
type Value interface {
	Type() Type
}

// Null is BLOBMSG_TYPE_UNSPEC, which JSON null becomes.
type Null struct{}

// Array is a list of values (their names on the wire are empty).
type Array []Value

// Table is an ordered list of named values. Order is kept because the wire
// format and the programs on the bus keep it; a name may repeat, as on the
// wire.
type Table []Field

// Field is one named member of a Table.
type Field struct {
	Name  string
	Value Value
}

// String is a NUL-terminated string on the wire; it cannot contain NUL.
type String string

// Int64 is an 8-byte big-endian integer.
type Int64 int64

// Int32 is a 4-byte big-endian integer. Object ids travel as INT32 too: use
// uint32(v) to get them back.
type Int32 int32

// Int16 is a 2-byte big-endian integer.
type Int16 int16

// Int8 is one byte. It is what booleans are: Bool(true) is Int8(1), and any
// non-zero value reads as true (netifd counts in INT8 fields, e.g. 2).
type Int8 int8

// Double is an IEEE 754 double, sent as its 8 bytes big-endian.
type Double float64

func (Null) Type() Type   { return TypeUnspec }
func (Array) Type() Type  { return TypeArray }
func (Table) Type() Type  { return TypeTable }
func (String) Type() Type { return TypeString }
func (Int64) Type() Type  { return TypeInt64 }
func (Int32) Type() Type  { return TypeInt32 }
func (Int16) Type() Type  { return TypeInt16 }
func (Int8) Type() Type   { return TypeInt8 }
func (Double) Type() Type { return TypeDouble }

// Bool returns the INT8 a boolean travels as.
func Bool(b bool) Int8 {
	if b {
		return 1
	}
	return 0
}

// Bool reports whether the INT8 is non-zero.
func (v Int8) Bool() bool { return v != 0 }

// Get returns the value of the first field called name.
func (t Table) Get(name string) (Value, bool) {
	for _, f := range t {
		if f.Name == name {
			return f.Value, true
		}
	}
	return nil, false
}

// Has reports whether a field called name exists.
func (t Table) Has(name string) bool {
	_, ok := t.Get(name)
	return ok
}

// String returns the field called name if it is a string.
func (t Table) String(name string) (string, bool) {
	v, _ := t.Get(name)
	s, ok := v.(String)
	return string(s), ok
}

// Int32 returns the field called name if it is an INT32.
func (t Table) Int32(name string) (int32, bool) {
	v, _ := t.Get(name)
	i, ok := v.(Int32)
	return int32(i), ok
}

// Int64 returns the field called name if it is an INT64.
func (t Table) Int64(name string) (int64, bool) {
	v, _ := t.Get(name)
	i, ok := v.(Int64)
	return int64(i), ok
}

// Int returns the field called name if it is any integer type (INT8
// included), widened to int64.
func (t Table) Int(name string) (int64, bool) {
	v, _ := t.Get(name)
	return IntOf(v)
}

// Bool returns the field called name if it is an INT8.
func (t Table) Bool(name string) (bool, bool) {
	v, _ := t.Get(name)
	i, ok := v.(Int8)
	return i != 0, ok
}

// Double returns the field called name if it is a double.
func (t Table) Double(name string) (float64, bool) {
	v, _ := t.Get(name)
	d, ok := v.(Double)
	return float64(d), ok
}

// Table returns the field called name if it is a table.
func (t Table) Table(name string) (Table, bool) {
	v, _ := t.Get(name)
	x, ok := v.(Table)
	return x, ok
}

// Array returns the field called name if it is an array.
func (t Table) Array(name string) (Array, bool) {
	v, _ := t.Get(name)
	x, ok := v.(Array)
	return x, ok
}

// IntOf widens any integer value to int64.
func IntOf(v Value) (int64, bool) {
	switch x := v.(type) {
	case Int64:
		return int64(x), true
	case Int32:
		return int64(x), true
	case Int16:
		return int64(x), true
	case Int8:
		return int64(x), true
	}
	return 0, false
}

// Equal reports whether two values are the same, type and order included
// (doubles compare by their bits, as the wire does).
func Equal(a, b Value) bool {
	switch x := a.(type) {
	case Table:
		y, ok := b.(Table)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if x[i].Name != y[i].Name || !Equal(x[i].Value, y[i].Value) {
				return false
			}
		}
		return true
	case Array:
		y, ok := b.(Array)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !Equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case Double:
		y, ok := b.(Double)
		return ok && math.Float64bits(float64(x)) == math.Float64bits(float64(y))
	case nil:
		return b == nil
	}
	return a == b
}
