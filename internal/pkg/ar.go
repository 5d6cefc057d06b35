package pkg

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// ArMember is one member of an ar(5) archive, the container of a .deb.
type ArMember struct {
	Name string
	Data []byte
}

const arMagic = "!<arch>\n"

// Ar writes a common-format ar archive as dpkg-deb writes a .deb: member
// names without the trailing slash, owner 0:0, mode 100644, the given
// mtime, odd-sized members padded with a newline.
func Ar(mtime int64, members ...ArMember) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(arMagic)
	for _, m := range members {
		if len(m.Name) > 16 || strings.ContainsAny(m.Name, "/ ") || m.Name == "" {
			return nil, fmt.Errorf("pkg: ar member name %q", m.Name)
		}
		fmt.Fprintf(&b, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", m.Name, mtime, 0, 0, "100644", len(m.Data))
		b.Write(m.Data)
		if len(m.Data)%2 == 1 {
			b.WriteByte('\n')
		}
	}
	return b.Bytes(), nil
}

// ReadAr splits an ar archive into its members.
func ReadAr(data []byte) ([]ArMember, error) {
	if !bytes.HasPrefix(data, []byte(arMagic)) {
		return nil, fmt.Errorf("pkg: not an ar archive")
	}
	var out []ArMember
	p := data[len(arMagic):]
	for len(p) > 0 {
		if len(p) < 60 || string(p[58:60]) != "`\n" {
			return nil, fmt.Errorf("pkg: ar: bad member header")
		}
		name := strings.TrimRight(string(p[0:16]), " ")
		name = strings.TrimSuffix(name, "/")
		size, err := strconv.Atoi(strings.TrimSpace(string(p[48:58])))
		if err != nil || size < 0 || 60+size > len(p) {
			return nil, fmt.Errorf("pkg: ar: %s: bad size", name)
		}
		out = append(out, ArMember{Name: name, Data: p[60 : 60+size]})
		p = p[60+size:]
		if size%2 == 1 && len(p) > 0 {
			p = p[1:]
		}
	}
	return out, nil
}
