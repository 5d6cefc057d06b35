package pkg

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"nemod/internal/testenv"
)

// sampleTree has what trips a tar writer: nested and empty directories,
// an empty file, an executable, a link, and names whose byte order
// differs from their path order ("usr-x" sorts before "usr/" as a path
// but after "usr" as a name).
func sampleTree(t *testing.T) *Tree {
	t.Helper()
	tr := NewTree()
	for _, err := range []error{
		tr.File("usr/sbin/nemod", 0o755, bytes.Repeat([]byte("\x7fELF"), 300)),
		tr.File("usr-x/f", 0o644, []byte("x")),
		tr.File("etc/config/nemod", 0o600, []byte("config router 'main'\n")),
		tr.File("etc/empty", 0o644, nil),
		tr.Dir("var/lib/nemod", 0o750),
		tr.Symlink("usr/sbin/nemo", "nemod"),
		tr.File("a.b", 0o644, []byte("dot")),
		tr.File("a/b", 0o644, []byte("slash")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

// materialize writes the tree to a directory, as a package build dir.
func materialize(t *testing.T, tr *Tree, dir string) {
	t.Helper()
	for _, e := range tr.Walk() {
		p := filepath.Join(dir, e.Path)
		var err error
		switch e.Type {
		case Dir:
			err = os.MkdirAll(p, 0o755)
		case Regular:
			err = os.WriteFile(p, e.Data, 0o644)
		case Symlink:
			err = os.Symlink(e.Target, p)
		}
		if err == nil && e.Type != Symlink {
			err = os.Chmod(p, os.FileMode(e.Mode))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// GNU tar, run with ipkg-build's options, writes the same bytes.
func TestTarMatchesGNUTar(t *testing.T) {
	gnutar := testenv.NeedTool(t, "tar")
	tr := sampleTree(t)
	const mtime = 1764547200
	got, err := TarTree(tr, mtime)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	materialize(t, tr, dir)
	cmd := exec.Command(gnutar, "--format=gnu", "--numeric-owner", "--owner=0", "--group=0", "--sort=name",
		"-cpf", "-", "--mtime=@1764547200", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	want, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("differs from GNU tar: %s", firstDiff(got, want))
	}
	if len(got)%tarRecord != 0 {
		t.Errorf("%d bytes, not whole records", len(got))
	}
}

// Go's own tar reader (another implementation) reads the archive back:
// names, types, modes, owners, times, contents.
func TestTarReadsBack(t *testing.T) {
	tr := sampleTree(t)
	b, err := TarTree(tr, 1234567890)
	if err != nil {
		t.Fatal(err)
	}
	r := tar.NewReader(bytes.NewReader(b))
	var names []string
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		e := tr.Get(strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/"))
		if e == nil {
			t.Fatalf("%s is not in the tree", h.Name)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.ModTime.Unix() != 1234567890 || uint32(h.Mode) != e.Mode || h.Format != tar.FormatGNU {
			t.Errorf("%s: uid %d gid %d uname %q mtime %v mode %o format %v", h.Name, h.Uid, h.Gid, h.Uname, h.ModTime, h.Mode, h.Format)
		}
		data, _ := io.ReadAll(r)
		switch e.Type {
		case Regular:
			if h.Typeflag != tar.TypeReg || !bytes.Equal(data, e.Data) {
				t.Errorf("%s: type %c, %d bytes", h.Name, h.Typeflag, len(data))
			}
		case Symlink:
			if h.Typeflag != tar.TypeSymlink || h.Linkname != e.Target {
				t.Errorf("%s: type %c -> %q", h.Name, h.Typeflag, h.Linkname)
			}
		case Dir:
			if h.Typeflag != tar.TypeDir || !strings.HasSuffix(h.Name, "/") {
				t.Errorf("%s: type %c", h.Name, h.Typeflag)
			}
		}
	}
	want := "./ ./a/ ./a/b ./a.b ./etc/ ./etc/config/ ./etc/config/nemod ./etc/empty ./usr/ ./usr/sbin/ ./usr/sbin/nemo ./usr/sbin/nemod ./usr-x/ ./usr-x/f ./var/ ./var/lib/ ./var/lib/nemod/"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("order:\n%s\nwant\n%s", got, want)
	}
}

func TestTreeRefusesBadPaths(t *testing.T) {
	tr := NewTree()
	if err := tr.File("etc/x", 0o644, nil); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		tr.File("etc/x", 0o644, nil),         // twice
		tr.File("etc/x/y", 0o644, nil),       // below a file
		tr.File("../etc/passwd", 0o644, nil), // outside
		tr.File("etc//y", 0o644, nil),        // not clean
		tr.File("etc/z", 0o10644, nil),       // not permission bits
		tr.Symlink("etc/l", ""),
	} {
		if err == nil {
			t.Error("accepted")
		}
	}
}

func TestGzipIsReproducible(t *testing.T) {
	a, b := Gzip([]byte("same input")), Gzip([]byte("same input"))
	if !bytes.Equal(a, b) {
		t.Fatal("two compressions differ")
	}
	// No name, no time stamp, OS Unix (gzip -n).
	if a[3] != 0 || !bytes.Equal(a[4:8], []byte{0, 0, 0, 0}) || a[9] != 3 {
		t.Errorf("header % x", a[:10])
	}
}
