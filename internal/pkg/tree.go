// Package pkg writes software packages without outside tools: OpenWrt's
// .ipk (opkg) and .apk (apk-tools 3, the ADB format), and Debian's .deb.
// The writers are pure: they take a Tree of files held in memory and
// return the package's bytes, the same bytes for the same input, so that a
// build is reproducible. Readers for the same formats (ReadTar, ReadAr,
// ReadADB) let tests check what was written.
package pkg

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Type is what a tree entry is.
type Type uint8

const (
	Dir Type = iota
	Regular
	Symlink
)

// Entry is one file, directory or symbolic link of a package's tree. All
// are owned by root (0:0): packages install system files.
type Entry struct {
	// Path is relative to the root, cleaned, without a leading slash
	// ("usr/sbin/nemod"); the root directory itself is "".
	Path   string
	Type   Type
	Mode   uint32 // permission bits, 07777
	Data   []byte // Regular only
	Target string // Symlink only
}

// Name is the last element of Path ("" for the root).
func (e *Entry) Name() string {
	if e.Path == "" {
		return ""
	}
	return path.Base(e.Path)
}

// Tree is a package's file system tree. Parent directories are created
// (mode 0755) as entries are added below them.
type Tree struct {
	entries map[string]*Entry
}

// NewTree returns a tree holding only its root directory (mode 0755).
func NewTree() *Tree {
	return &Tree{entries: map[string]*Entry{"": {Path: "", Type: Dir, Mode: 0o755}}}
}

func cleanPath(p string) (string, error) {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return "", nil
	}
	if path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("pkg: path %q is not clean", p)
	}
	return p, nil
}

func (t *Tree) add(e *Entry) error {
	p, err := cleanPath(e.Path)
	if err != nil {
		return err
	}
	if p == "" {
		if e.Type != Dir {
			return errors.New("pkg: the root must be a directory")
		}
		t.entries[""].Mode = e.Mode
		return nil
	}
	e.Path = p
	if e.Mode&^0o7777 != 0 {
		return fmt.Errorf("pkg: %s: mode %o has more than permission bits", p, e.Mode)
	}
	if old, ok := t.entries[p]; ok {
		if old.Type == Dir && e.Type == Dir {
			old.Mode = e.Mode
			return nil
		}
		return fmt.Errorf("pkg: %s added twice", p)
	}
	dir := path.Dir(p)
	if dir == "." {
		dir = ""
	}
	if parent, ok := t.entries[dir]; ok {
		if parent.Type != Dir {
			return fmt.Errorf("pkg: %s: %s is not a directory", p, dir)
		}
	} else if err := t.add(&Entry{Path: dir, Type: Dir, Mode: 0o755}); err != nil {
		return err
	}
	t.entries[p] = e
	return nil
}

// File adds a regular file.
func (t *Tree) File(p string, mode uint32, data []byte) error {
	return t.add(&Entry{Path: p, Type: Regular, Mode: mode, Data: data})
}

// Dir adds a directory, or sets the mode of one already there.
func (t *Tree) Dir(p string, mode uint32) error {
	return t.add(&Entry{Path: p, Type: Dir, Mode: mode})
}

// Symlink adds a symbolic link (mode 0777, as Linux reports links).
func (t *Tree) Symlink(p, target string) error {
	if target == "" {
		return fmt.Errorf("pkg: %s: empty link target", p)
	}
	return t.add(&Entry{Path: p, Type: Symlink, Mode: 0o777, Target: target})
}

// Get returns the entry at p, or nil.
func (t *Tree) Get(p string) *Entry {
	c, err := cleanPath(p)
	if err != nil {
		return nil
	}
	return t.entries[c]
}

// Walk returns every entry, the root first, in the order GNU tar's
// --sort=name visits a directory: depth first, each directory's entries
// sorted by name (byte order).
func (t *Tree) Walk() []*Entry {
	children := map[string][]*Entry{}
	for p, e := range t.entries {
		if p == "" {
			continue
		}
		dir := path.Dir(p)
		if dir == "." {
			dir = ""
		}
		children[dir] = append(children[dir], e)
	}
	var out []*Entry
	var visit func(e *Entry)
	visit = func(e *Entry) {
		out = append(out, e)
		kids := children[e.Path]
		slices.SortFunc(kids, func(a, b *Entry) int { return strings.Compare(a.Name(), b.Name()) })
		for _, k := range kids {
			visit(k)
		}
	}
	visit(t.entries[""])
	return out
}

// Dirs returns the directories sorted by full path, the root first: the
// order apk's mkpkg lists them.
func (t *Tree) Dirs() []*Entry {
	var out []*Entry
	for _, e := range t.entries {
		if e.Type == Dir {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *Entry) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// Children returns the entries directly in directory dir that are not
// directories, sorted by name.
func (t *Tree) Children(dir string) []*Entry {
	var out []*Entry
	for p, e := range t.entries {
		if p == "" || e.Type == Dir {
			continue
		}
		d := path.Dir(p)
		if d == "." {
			d = ""
		}
		if d == dir {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *Entry) int { return strings.Compare(a.Name(), b.Name()) })
	return out
}

// Size is the total size of the regular files' contents.
func (t *Tree) Size() int64 {
	var n int64
	for _, e := range t.entries {
		if e.Type == Regular {
			n += int64(len(e.Data))
		}
	}
	return n
}
