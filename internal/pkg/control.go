package pkg

import (
	"fmt"
	"strings"
)

// Field is one field of a control paragraph (Debian's deb-control(5),
// opkg's control file).
type Field struct{ Name, Value string }

// Control is a control paragraph, its fields in the order written.
// Empty values are left out, as OpenWrt's package-pack.mk leaves them.
type Control []Field

// Get returns the value of the named field, or "".
func (c Control) Get(name string) string {
	for _, f := range c {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// Set replaces the value of a field, or appends the field.
func (c *Control) Set(name, value string) {
	for i, f := range *c {
		if f.Name == name {
			(*c)[i].Value = value
			return
		}
	}
	*c = append(*c, Field{name, value})
}

// descStyle is how a multi-line Description is written.
type descStyle int

const (
	// descDebian: the synopsis on the field's line, each further line
	// indented by one space, an empty line written " ." (deb-control(5)).
	descDebian descStyle = iota
	// descOpenWrt: package-pack.mk prints "Description: " and then every
	// line of the text with its leading blanks replaced by one space, so
	// the first line starts with two spaces after the colon.
	descOpenWrt
)

func (c Control) bytes(style descStyle) ([]byte, error) {
	var b strings.Builder
	for _, f := range c {
		if f.Value == "" {
			continue
		}
		if strings.ContainsAny(f.Name, ": \n") {
			return nil, fmt.Errorf("pkg: control field name %q", f.Name)
		}
		if f.Name != "Description" {
			if strings.Contains(f.Value, "\n") {
				return nil, fmt.Errorf("pkg: control field %s has more than one line", f.Name)
			}
			fmt.Fprintf(&b, "%s: %s\n", f.Name, f.Value)
			continue
		}
		lines := strings.Split(strings.TrimRight(f.Value, "\n"), "\n")
		b.WriteString("Description:")
		if style == descOpenWrt {
			b.WriteString(" ")
		}
		for i, l := range lines {
			if i > 0 {
				b.WriteString("\n")
			}
			switch style {
			case descOpenWrt:
				b.WriteString(" " + strings.TrimLeft(l, " \t"))
			default:
				l = strings.TrimSpace(l)
				if l == "" && i > 0 {
					l = "."
				}
				b.WriteString(" " + l)
			}
		}
		b.WriteString("\n")
	}
	return []byte(b.String()), nil
}

// ParseControl reads a control paragraph back (continuation lines are
// joined to their field with newlines, the leading space removed).
func ParseControl(data []byte) (Control, error) {
	var c Control
	for n, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
			if len(c) == 0 {
				return nil, fmt.Errorf("pkg: control line %d: continuation without a field", n+1)
			}
			c[len(c)-1].Value += "\n" + line[1:]
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("pkg: control line %d: %q is not NAME: VALUE", n+1, line)
		}
		c = append(c, Field{name, strings.TrimPrefix(value, " ")})
	}
	return c, nil
}
