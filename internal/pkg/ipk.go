package pkg

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// IPK is an opkg package for OpenWrt up to 24.10, as the buildroot's
// scripts/ipkg-build makes it: a gzip'd GNU tar of ./debian-binary,
// ./data.tar.gz and ./control.tar.gz, in that order.
type IPK struct {
	// Control holds the fields package-pack.mk writes, in its order;
	// Installed-Size is filled in here (the size of the uncompressed data
	// tar, as ipkg-build measures it).
	Control   Control
	Tree      *Tree
	Conffiles []string          // absolute paths of files in Tree
	Scripts   map[string][]byte // postinst, prerm, preinst, postrm
	Mtime     int64             // every entry's modification time
}

var ipkScripts = []string{"preinst", "postinst", "prerm", "postrm"}

// FileName is NAME_VERSION_ARCH.ipk, with an epoch ("N:") left out of the
// version as ipkg-build leaves it out.
func (p *IPK) FileName() string {
	v := p.Control.Get("Version")
	if i := strings.Index(v, ":"); i >= 0 {
		v = v[i+1:]
	}
	return p.Control.Get("Package") + "_" + v + "_" + p.Control.Get("Architecture") + ".ipk"
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_.+-", r)) {
			return false
		}
	}
	return true
}

// Build returns the .ipk's bytes.
func (p *IPK) Build() ([]byte, error) {
	for _, f := range []string{"Package", "Version", "Architecture"} {
		if p.Control.Get(f) == "" {
			return nil, fmt.Errorf("pkg: ipk: control field %s is required", f)
		}
	}
	if !validName(p.Control.Get("Package")) {
		return nil, fmt.Errorf("pkg: ipk: package name %q has characters ipkg-build refuses", p.Control.Get("Package"))
	}
	data, err := TarTree(p.Tree, p.Mtime)
	if err != nil {
		return nil, err
	}
	control := slices.Clone(p.Control)
	control.Set("Installed-Size", strconv.Itoa(len(data)))
	// Description last, as package-pack.mk appends it after the rest.
	if d := control.Get("Description"); d != "" {
		control = slices.DeleteFunc(control, func(f Field) bool { return f.Name == "Description" })
		control = append(control, Field{"Description", d})
	}
	ctl, err := control.bytes(descOpenWrt)
	if err != nil {
		return nil, err
	}
	ct := NewTree()
	if err := ct.File("control", 0o644, ctl); err != nil {
		return nil, err
	}
	if len(p.Conffiles) > 0 {
		cf, err := conffiles(p.Tree, p.Conffiles)
		if err != nil {
			return nil, err
		}
		ct.File("conffiles", 0o644, cf)
	}
	for name, s := range p.Scripts {
		if !slices.Contains(ipkScripts, name) {
			return nil, fmt.Errorf("pkg: ipk: unknown maintainer script %q", name)
		}
		ct.File(name, 0o755, s)
	}
	ctar, err := TarTree(ct, p.Mtime)
	if err != nil {
		return nil, err
	}
	w := &tarWriter{mtime: p.Mtime}
	w.add(tarMember{name: "./debian-binary", typeflag: '0', mode: 0o644, data: []byte("2.0\n")})
	w.add(tarMember{name: "./data.tar.gz", typeflag: '0', mode: 0o644, data: Gzip(data)})
	w.add(tarMember{name: "./control.tar.gz", typeflag: '0', mode: 0o644, data: Gzip(ctar)})
	outer, err := w.bytes()
	if err != nil {
		return nil, err
	}
	return Gzip(outer), nil
}

// conffiles lists the paths one a line, sorted (ipkg-build sorts them
// with LC_ALL=C), each checked to be a regular file of the tree.
func conffiles(t *Tree, paths []string) ([]byte, error) {
	sorted := slices.Clone(paths)
	slices.Sort(sorted)
	var b strings.Builder
	for _, c := range slices.Compact(sorted) {
		if !strings.HasPrefix(c, "/") {
			return nil, fmt.Errorf("pkg: conffile %q is not an absolute path", c)
		}
		if e := t.Get(c); e == nil || e.Type != Regular {
			return nil, fmt.Errorf("pkg: conffile %s is not a file of the package", c)
		}
		b.WriteString(c + "\n")
	}
	return []byte(b.String()), nil
}
