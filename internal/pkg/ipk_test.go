package pkg

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"nemod/internal/testenv"
)

// TarMembers reads a (gzip'd if it starts so) tar into name -> header and
// contents, keeping the order.
func tarMembers(t *testing.T, b []byte) (names []string, hdrs map[string]*tar.Header, data map[string][]byte) {
	t.Helper()
	var r io.Reader = bytes.NewReader(b)
	if bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		z, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		r = z
	}
	tr := tar.NewReader(r)
	hdrs, data = map[string]*tar.Header{}, map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		d, _ := io.ReadAll(tr)
		names = append(names, h.Name)
		hdrs[h.Name], data[h.Name] = h, d
	}
}

func sampleIPK(t *testing.T) *IPK {
	return &IPK{
		Control: Control{{"Package", "nemod"}, {"Version", "1.2.3-r1"}, {"Depends", "libc, kmod-tun"},
			{"Description", "first line\n  second line"}, {"Section", "net"}, {"Architecture", "mipsel_24kc"},
			{"Installed-Size", "0"}},
		Tree:      sampleTree(t),
		Conffiles: []string{"/etc/config/nemod"},
		Scripts:   map[string][]byte{"postinst": []byte("#!/bin/sh\nexit 0\n"), "prerm": []byte("#!/bin/sh\nexit 0\n")},
		Mtime:     1764547200,
	}
}

func TestIPKLayout(t *testing.T) {
	p := sampleIPK(t)
	b, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	if p.FileName() != "nemod_1.2.3-r1_mipsel_24kc.ipk" {
		t.Errorf("file name %s", p.FileName())
	}
	names, hdrs, data := tarMembers(t, b)
	if got := strings.Join(names, " "); got != "./debian-binary ./data.tar.gz ./control.tar.gz" {
		t.Fatalf("outer members: %s", got)
	}
	if string(data["./debian-binary"]) != "2.0\n" {
		t.Errorf("debian-binary %q", data["./debian-binary"])
	}
	for _, n := range names {
		if h := hdrs[n]; h.Mode != 0o644 || h.Uid != 0 || h.Gid != 0 || h.ModTime.Unix() != p.Mtime {
			t.Errorf("%s: mode %o owner %d:%d mtime %v", n, h.Mode, h.Uid, h.Gid, h.ModTime)
		}
	}
	raw, _ := gzip.NewReader(bytes.NewReader(data["./data.tar.gz"]))
	dataTar, _ := io.ReadAll(raw)
	want, _ := TarTree(p.Tree, p.Mtime)
	if !bytes.Equal(dataTar, want) {
		t.Error("data.tar is not the tree's tar")
	}
	cnames, chdrs, cdata := tarMembers(t, data["./control.tar.gz"])
	if got := strings.Join(cnames, " "); got != "./ ./conffiles ./control ./postinst ./prerm" {
		t.Errorf("control members: %s", got)
	}
	if chdrs["./postinst"].Mode != 0o755 || chdrs["./control"].Mode != 0o644 || chdrs["./conffiles"].Mode != 0o644 {
		t.Error("control member modes")
	}
	if string(cdata["./conffiles"]) != "/etc/config/nemod\n" {
		t.Errorf("conffiles %q", cdata["./conffiles"])
	}
	// package-pack.mk's layout: fields in the given order, Installed-Size
	// the uncompressed data tar's size, the Description last with every
	// line's leading blanks made one space.
	wantCtl := "Package: nemod\nVersion: 1.2.3-r1\nDepends: libc, kmod-tun\nSection: net\nArchitecture: mipsel_24kc\n" +
		"Installed-Size: " + strconv.Itoa(len(dataTar)) + "\nDescription:  first line\n second line\n"
	if string(cdata["./control"]) != wantCtl {
		t.Errorf("control:\n%s\nwant\n%s", cdata["./control"], wantCtl)
	}
	again, _ := sampleIPK(t).Build()
	if !bytes.Equal(b, again) {
		t.Error("two builds differ")
	}
}

func TestIPKRefuses(t *testing.T) {
	p := sampleIPK(t)
	p.Conffiles = []string{"/etc/config/absent"}
	if _, err := p.Build(); err == nil {
		t.Error("a conffile the package lacks was accepted")
	}
	p = sampleIPK(t)
	p.Control.Set("Package", "nemo d")
	if _, err := p.Build(); err == nil {
		t.Error("a package name with a space was accepted")
	}
	p = sampleIPK(t)
	p.Scripts["postinstall"] = nil
	if _, err := p.Build(); err == nil {
		t.Error("an unknown script was accepted")
	}
}

func TestDebLayout(t *testing.T) {
	d := &Deb{
		Control: Control{{"Package", "nemod"}, {"Version", "0.1.0"}, {"Architecture", "amd64"},
			{"Maintainer", "M <m@example.org>"}, {"Installed-Size", "0"},
			{"Description", "synopsis\n long text\n\n more"}},
		Tree: sampleTree(t), Conffiles: []string{"/etc/config/nemod"},
		Scripts: map[string][]byte{"postinst": []byte("#!/bin/sh\nset -e\n")}, Mtime: 1764547200,
	}
	b, err := d.Build()
	if err != nil {
		t.Fatal(err)
	}
	m, err := ReadAr(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 3 || m[0].Name != "debian-binary" || m[1].Name != "control.tar.gz" || m[2].Name != "data.tar.gz" {
		t.Fatalf("members %v", m)
	}
	_, _, cdata := tarMembers(t, m[1].Data)
	ctl, err := ParseControl(cdata["./control"])
	if err != nil {
		t.Fatal(err)
	}
	// 2 KiB for the 1200-byte binary, 1 for each small file, none for
	// the empty one, 1 for each of the 9 directories and the link.
	if got := ctl.Get("Installed-Size"); got != "16" {
		t.Errorf("Installed-Size %s", got)
	}
	if ctl.Get("Description") != "synopsis\nlong text\n.\nmore" {
		t.Errorf("Description %q", ctl.Get("Description"))
	}
	if !strings.Contains(string(cdata["./md5sums"]), "  usr/sbin/nemod\n") || strings.Contains(string(cdata["./md5sums"]), "etc/config/nemod") {
		t.Errorf("md5sums:\n%s", cdata["./md5sums"])
	}
	// dpkg-deb, the reference reader, agrees.
	dpkgDeb := testenv.NeedTool(t, "dpkg-deb")
	cmd := exec.Command(dpkgDeb, "--field", "/dev/stdin", "Version")
	cmd.Stdin = bytes.NewReader(b)
	if out, err := cmd.Output(); err != nil || string(out) != "0.1.0\n" {
		t.Errorf("dpkg-deb --field: %q %v", out, err)
	}
}
