package ubus

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// FormatJSON renders a table the way the ubus command line tool prints a
// reply: indented with tabs (`ubus call`) or compact (what `ubus listen` and
// `ubus subscribe` print inside "{ "name": ... }"). The layout, including
// the blank line inside an empty table or array in indented form, INT8 as
// true/false and doubles with six decimals, is libubox's.
func FormatJSON(t Table, indent bool) string {
	f := jsonFormatter{indent: indent}
	f.list(tableValues(t), t, false)
	return f.b.String()
}

// FormatValueJSON renders one value as FormatJSON renders a member.
func FormatValueJSON(v Value, indent bool) string {
	f := jsonFormatter{indent: indent}
	f.value(v)
	return f.b.String()
}

type jsonFormatter struct {
	b      strings.Builder
	indent bool
	level  int
}

func tableValues(t Table) []Value {
	vs := make([]Value, len(t))
	for i, f := range t {
		vs[i] = f.Value
	}
	return vs
}

func (f *jsonFormatter) sep() {
	if !f.indent {
		return
	}
	f.b.WriteByte('\n')
	// libubox indents with at most 16 tabs.
	f.b.WriteString(strings.Repeat("\t", min(f.level, 16)))
}

// list writes an array (names nil) or a table (the names from t).
func (f *jsonFormatter) list(vs []Value, t Table, array bool) {
	open, cl := byte('{'), byte('}')
	if array {
		open, cl = '[', ']'
	}
	f.b.WriteByte(open)
	f.level++
	f.sep()
	for i, v := range vs {
		if i > 0 {
			f.b.WriteByte(',')
			f.sep()
		}
		if !array && t[i].Name != "" {
			writeJSONString(&f.b, t[i].Name)
			if f.indent {
				f.b.WriteString(": ")
			} else {
				f.b.WriteByte(':')
			}
		}
		f.value(v)
	}
	f.level--
	f.sep()
	f.b.WriteByte(cl)
}

func (f *jsonFormatter) value(v Value) {
	switch x := v.(type) {
	case Null:
		f.b.WriteString("null")
	case Int8:
		if x != 0 {
			f.b.WriteString("true")
		} else {
			f.b.WriteString("false")
		}
	case Int16:
		f.b.WriteString(strconv.FormatInt(int64(x), 10))
	case Int32:
		f.b.WriteString(strconv.FormatInt(int64(x), 10))
	case Int64:
		f.b.WriteString(strconv.FormatInt(int64(x), 10))
	case Double:
		f.b.WriteString(formatDouble(float64(x)))
	case String:
		writeJSONString(&f.b, string(x))
	case Array:
		f.list(x, nil, true)
	case Table:
		f.list(tableValues(x), x, false)
	default:
		f.b.WriteString("null")
	}
}

// formatDouble is C's "%lf" as glibc prints it.
func formatDouble(d float64) string {
	switch {
	case math.IsNaN(d):
		if math.Signbit(d) {
			return "-nan"
		}
		return "nan"
	case math.IsInf(d, 1):
		return "inf"
	case math.IsInf(d, -1):
		return "-inf"
	}
	return strconv.FormatFloat(d, 'f', 6, 64)
}

// writeJSONString escapes as libubox does: the usual short escapes for
// backspace, newline, tab, carriage return, quote and backslash, \u00xx for
// the other control characters, every other byte as it is.
func writeJSONString(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\b':
			b.WriteString(`\b`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		default:
			if c < ' ' {
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&15])
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
}

// ParseJSON turns a JSON object into a table with the types the ubus tool
// gives it: integers within the int32 range become INT32, other integers
// INT64, numbers with a fraction or exponent DOUBLE, booleans INT8, null
// UNSPEC. Member order is kept; a repeated key replaces the earlier value in
// its place (as the ubus tool has it). Integers beyond int64 and strings containing
// NUL are errors, since the tool could not send them faithfully either.
func ParseJSON(s string) (Table, error) {
	p := jsonParser{s: s}
	p.ws()
	if p.i >= len(s) || s[p.i] != '{' {
		return nil, p.errf("the top level must be a JSON object")
	}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.i != len(s) {
		return nil, p.errf("trailing data after the object")
	}
	return v.(Table), nil
}

// JSONError is a ParseJSON failure.
type JSONError struct {
	Off    int
	Reason string
}

func (e *JSONError) Error() string {
	return fmt.Sprintf("ubus: JSON at offset %d: %s", e.Off, e.Reason)
}

type jsonParser struct {
	s string
	i int
}

func (p *jsonParser) errf(format string, a ...any) error {
	return &JSONError{p.i, fmt.Sprintf(format, a...)}
}

func (p *jsonParser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) lit(word string) bool {
	if strings.HasPrefix(p.s[p.i:], word) {
		p.i += len(word)
		return true
	}
	return false
}

func (p *jsonParser) value(depth int) (Value, error) {
	if depth >= MaxDepth {
		return nil, p.errf("nesting deeper than %d", MaxDepth)
	}
	p.ws()
	if p.i >= len(p.s) {
		return nil, p.errf("unexpected end of input")
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.str()
		return String(s), err
	case p.lit("true"):
		return Int8(1), nil
	case p.lit("false"):
		return Int8(0), nil
	case p.lit("null"):
		return Null{}, nil
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	}
	return nil, p.errf("unexpected character %q", p.s[p.i])
}

func (p *jsonParser) object(depth int) (Value, error) {
	p.i++ // {
	t := Table{}
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return t, nil
	}
	for {
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return nil, p.errf("expected a member name")
		}
		at := p.i
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		if k == "" {
			return nil, &JSONError{at, "empty member name (blobmsg tables need names)"}
		}
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return nil, p.errf("expected ':'")
		}
		p.i++
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		replaced := false
		for j := range t {
			if t[j].Name == k {
				t[j].Value, replaced = v, true
				break
			}
		}
		if !replaced {
			t = append(t, Field{k, v})
		}
		p.ws()
		if p.i >= len(p.s) {
			return nil, p.errf("unterminated object")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return t, nil
		default:
			return nil, p.errf("expected ',' or '}'")
		}
	}
}

func (p *jsonParser) array(depth int) (Value, error) {
	p.i++ // [
	a := Array{}
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		return a, nil
	}
	for {
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		p.ws()
		if p.i >= len(p.s) {
			return nil, p.errf("unterminated array")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return a, nil
		default:
			return nil, p.errf("expected ',' or ']'")
		}
	}
}

func (p *jsonParser) str() (string, error) {
	p.i++ // opening quote
	var b strings.Builder
	for {
		if p.i >= len(p.s) {
			return "", p.errf("unterminated string")
		}
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return b.String(), nil
		case c < ' ':
			return "", p.errf("control character in a string")
		case c == '\\':
			if p.i+1 >= len(p.s) {
				return "", p.errf("unterminated escape")
			}
			e := p.s[p.i+1]
			p.i += 2
			switch e {
			case '"', '\\', '/':
				b.WriteByte(e)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				r, err := p.hex4()
				if err != nil {
					return "", err
				}
				if utf16.IsSurrogate(r) {
					if strings.HasPrefix(p.s[p.i:], `\u`) {
						p.i += 2
						r2, err := p.hex4()
						if err != nil {
							return "", err
						}
						r = utf16.DecodeRune(r, r2)
					} else {
						r = utf8.RuneError
					}
				}
				if r == 0 {
					return "", p.errf("NUL in a string")
				}
				b.WriteRune(r)
			default:
				return "", p.errf("unknown escape \\%c", e)
			}
		default:
			b.WriteByte(c)
			p.i++
		}
	}
}

func (p *jsonParser) hex4() (rune, error) {
	if p.i+4 > len(p.s) {
		return 0, p.errf("short \\u escape")
	}
	n, err := strconv.ParseUint(p.s[p.i:p.i+4], 16, 16)
	if err != nil {
		return 0, p.errf("bad \\u escape")
	}
	p.i += 4
	return rune(n), nil
}

func (p *jsonParser) number() (Value, error) {
	start := p.i
	isFloat := false
	if p.s[p.i] == '-' {
		p.i++
	}
	digits := func() int {
		n := 0
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	intStart := p.i
	if digits() == 0 {
		return nil, p.errf("bad number")
	}
	if p.s[intStart] == '0' && p.i-intStart > 1 {
		return nil, &JSONError{intStart, "leading zero in a number"}
	}
	if p.i < len(p.s) && p.s[p.i] == '.' {
		isFloat = true
		p.i++
		if digits() == 0 {
			return nil, p.errf("bad fraction")
		}
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		isFloat = true
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return nil, p.errf("bad exponent")
		}
	}
	lit := p.s[start:p.i]
	if isFloat {
		d, err := strconv.ParseFloat(lit, 64)
		if err != nil {
			return nil, &JSONError{start, "number out of range"}
		}
		return Double(d), nil
	}
	n, err := strconv.ParseInt(lit, 10, 64)
	if err != nil {
		return nil, &JSONError{start, "integer out of the int64 range"}
	}
	if n >= math.MinInt32 && n <= math.MaxInt32 {
		return Int32(n), nil
	}
	return Int64(n), nil
}
