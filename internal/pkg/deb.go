package pkg

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
)

// Deb is a Debian binary package (deb(5)): an ar archive of
// debian-binary, control.tar.gz and data.tar.gz, as dpkg-deb builds it
// with gzip compression. dpkg accepts gzip for both members, so no xz
// writer is needed.
type Deb struct {
	// Control holds the fields of DEBIAN/control; Installed-Size is
	// filled in here.
	Control   Control
	Tree      *Tree
	Conffiles []string
	Scripts   map[string][]byte // preinst, postinst, prerm, postrm
	Mtime     int64
}

var debScripts = []string{"preinst", "postinst", "prerm", "postrm"}

// FileName is NAME_VERSION_ARCH.deb, the epoch left out.
func (d *Deb) FileName() string {
	v := d.Control.Get("Version")
	for i, c := range v {
		if c == ':' {
			v = v[i+1:]
			break
		}
	}
	return d.Control.Get("Package") + "_" + v + "_" + d.Control.Get("Architecture") + ".deb"
}

// installedSize is in KiB as dpkg-gencontrol counts it: each regular file
// rounded up to a whole KiB, one KiB for every other entry.
func installedSize(t *Tree) int64 {
	var kib int64
	for _, e := range t.Walk() {
		if e.Path == "" {
			continue
		}
		if e.Type == Regular {
			kib += (int64(len(e.Data)) + 1023) / 1024
		} else {
			kib++
		}
	}
	return kib
}

// Build returns the .deb's bytes.
func (d *Deb) Build() ([]byte, error) {
	for _, f := range []string{"Package", "Version", "Architecture", "Maintainer", "Description"} {
		if d.Control.Get(f) == "" {
			return nil, fmt.Errorf("pkg: deb: control field %s is required", f)
		}
	}
	data, err := TarTree(d.Tree, d.Mtime)
	if err != nil {
		return nil, err
	}
	control := slices.Clone(d.Control)
	control.Set("Installed-Size", strconv.FormatInt(installedSize(d.Tree), 10))
	ctl, err := control.bytes(descDebian)
	if err != nil {
		return nil, err
	}
	ct := NewTree()
	ct.File("control", 0o644, ctl)
	if len(d.Conffiles) > 0 {
		cf, err := conffiles(d.Tree, d.Conffiles)
		if err != nil {
			return nil, err
		}
		ct.File("conffiles", 0o644, cf)
	}
	// md5sums: every regular file but the conffiles (dpkg keeps their
	// sums itself), as dh_md5sums writes it.
	var sums []byte
	for _, e := range d.Tree.Walk() {
		if e.Type != Regular || slices.Contains(d.Conffiles, "/"+e.Path) {
			continue
		}
		h := md5.Sum(e.Data)
		sums = append(sums, hex.EncodeToString(h[:])+"  "+e.Path+"\n"...)
	}
	if len(sums) > 0 {
		ct.File("md5sums", 0o644, sums)
	}
	for name, s := range d.Scripts {
		if !slices.Contains(debScripts, name) {
			return nil, fmt.Errorf("pkg: deb: unknown maintainer script %q", name)
		}
		ct.File(name, 0o755, s)
	}
	ctar, err := TarTree(ct, d.Mtime)
	if err != nil {
		return nil, err
	}
	return Ar(d.Mtime,
		ArMember{"debian-binary", []byte("2.0\n")},
		ArMember{"control.tar.gz", Gzip(ctar)},
		ArMember{"data.tar.gz", Gzip(data)})
}
