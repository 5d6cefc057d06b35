package pkg

import (
	"bufio"
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The vectors in testdata/apk were made by the real `apk mkpkg`
// (apk-tools 3.0.6) from the trees inputs.txt describes; the trees'
// contents are in testdata/apk/trees. See testdata/apk/README.md.

// vectorTree builds tree NAME as inputs.txt lists it: modes, links, mtime.
func vectorTree(t *testing.T, name string) (*Tree, int64) {
	t.Helper()
	f, err := os.Open("testdata/apk/inputs.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tree := NewTree()
	var mtime int64
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "== ") {
			in = line == "== tree "+name
			continue
		}
		if !in {
			continue
		}
		// MODE OWNER MTIME SIZE PATH [-> TARGET]
		fs := strings.Fields(line)
		if len(fs) < 5 || fs[1] != "root:root" {
			t.Fatalf("inputs.txt: %q", line)
		}
		ts, err := time.Parse("2006-01-02T15:04:05.999999999", fs[2][:29])
		if err != nil {
			t.Fatal(err)
		}
		mtime = ts.Unix()
		var mode uint32
		for i, c := range fs[0][1:] {
			if c != '-' {
				mode |= 1 << (8 - i)
			}
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(fs[4], name), "/")
		switch fs[0][0] {
		case 'd':
			err = tree.Dir(rel, mode)
		case 'l':
			err = tree.Symlink(rel, fs[6])
		case '-':
			var data []byte
			data, err = os.ReadFile(filepath.Join("testdata/apk/trees", name, rel))
			if err == nil {
				err = tree.File(rel, mode, data)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return tree, mtime
}

// vectorScript is one of the scripts inputs.txt holds.
func vectorScript(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/apk/inputs.txt")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := bytes.Cut(b, []byte("== "+name+"\n"))
	if !ok {
		t.Fatalf("no script %s in inputs.txt", name)
	}
	if i := bytes.Index(rest, []byte("\n== ")); i >= 0 {
		rest = rest[:i+1]
	}
	return rest
}

func vectorPackages(t *testing.T) map[string]*APK {
	a, at := vectorTree(t, "a")
	b, bt := vectorTree(t, "b")
	c, ct := vectorTree(t, "c")
	return map[string]*APK{
		"hello-1.0.0-r1.apk": {Name: "hello", Version: "1.0.0-r1", Description: "a file and nothing else",
			Arch: "noarch", License: "MIT", Origin: "hello", Tree: a, Mtime: at},
		"demo-2.1.3-r2.apk": {Name: "demo", Version: "2.1.3-r2",
			Description: "a daemon-shaped package: binary, init script, conffile, scripts",
			Arch:        "x86_64", License: "GPL-2.0-only", Origin: "demo", URL: "https://example.org/demo",
			Maintainer: "Demo <demo@example.org>", Depends: []string{"libc"}, Provides: []string{"demo-any"},
			Scripts: map[string][]byte{"post-install": vectorScript(t, "post-install"), "pre-deinstall": vectorScript(t, "pre-deinstall")},
			Tree:    b, Mtime: bt},
		"libc-1.2.5-r4.apk": {Name: "libc", Version: "1.2.5-r4", Description: "stand-in for the C library package",
			Arch: "x86_64", License: "MIT", Origin: "libc", Tree: c, Mtime: ct},
	}
}

func inflate(t *testing.T, b []byte) []byte {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("ADBd")) {
		t.Fatalf("does not start ADBd: % x", b[:8])
	}
	raw, err := io.ReadAll(flate.NewReader(bytes.NewReader(b[4:])))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// firstDiff describes where two byte strings part.
func firstDiff(a, b []byte) string {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return fmt.Sprintf("first difference at byte %d: %02x, want %02x", i, a[i], b[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(a), len(b))
}

// The writer reproduces mkpkg's packages exactly: the uncompressed
// stream byte for byte (metadata layout, shared values, the unique id,
// data blocks), for all three recorded packages.
func TestAPKMatchesMkpkgByteForByte(t *testing.T) {
	for file, p := range vectorPackages(t) {
		recorded, err := os.ReadFile("testdata/apk/" + file)
		if err != nil {
			t.Fatal(err)
		}
		want := inflate(t, recorded)
		if p.Name == "hello" {
			// The same package mkpkg wrote with --compression none.
			unc, err := os.ReadFile("testdata/apk/hello-1.0.0-r1.uncompressed.apk")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(unc, want) {
				t.Fatal("the two recorded hello packages differ once inflated")
			}
		}
		p.Uncompressed = true
		got, err := p.Build()
		if err != nil {
			t.Fatal(err)
		}
		if p.FileName() != file {
			t.Errorf("file name %s, want %s", p.FileName(), file)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %s", file, firstDiff(got, want))
		}
		// Compressed, the deflate stream is Go's, not zlib's: the bytes
		// differ but inflate to the same stream.
		p.Uncompressed = false
		z, err := p.Build()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(inflate(t, z), want) {
			t.Errorf("%s: the compressed package does not inflate to mkpkg's stream", file)
		}
	}
}

// The reader renders the recorded packages exactly as `apk adbdump` did,
// and renders what the writer makes the same way.
func TestADBDumpMatchesApk(t *testing.T) {
	for file, p := range vectorPackages(t) {
		want, err := os.ReadFile("testdata/apk/" + file + ".adbdump.txt")
		if err != nil {
			t.Fatal(err)
		}
		recorded, err := os.ReadFile("testdata/apk/" + file)
		if err != nil {
			t.Fatal(err)
		}
		ours, err := p.Build()
		if err != nil {
			t.Fatal(err)
		}
		for what, b := range map[string][]byte{"recorded": recorded, "written": ours} {
			f, err := ReadADB(b)
			if err != nil {
				t.Fatalf("%s %s: %v", what, file, err)
			}
			got, err := f.Dump()
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("%s %s: dump differs:\n%s", what, file, got)
			}
		}
	}
}
