package pkg

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"strconv"
)

// Tar archives as GNU tar writes them with the options OpenWrt's
// ipkg-build and Debian's dpkg-deb use for reproducible packages
// (--format=gnu --numeric-owner --owner=0 --group=0 --sort=name
// --mtime=T): byte for byte the same archive, which the tests check
// against GNU tar itself.
const (
	tarBlock  = 512
	tarRecord = 20 * tarBlock // GNU tar's default blocking factor
)

// tarMember is one header (and data) of a tar archive.
type tarMember struct {
	name     string
	typeflag byte // '0' file, '2' symlink, '5' directory
	mode     uint32
	data     []byte
	linkname string
}

type tarWriter struct {
	buf   bytes.Buffer
	mtime int64
	err   error
}

func octal(dst []byte, v int64) error {
	s := strconv.FormatInt(v, 8)
	if len(s) > len(dst)-1 {
		return fmt.Errorf("pkg: tar: %d does not fit a %d-byte field", v, len(dst))
	}
	for i := range dst[:len(dst)-1] {
		dst[i] = '0'
	}
	copy(dst[len(dst)-1-len(s):], s)
	dst[len(dst)-1] = 0
	return nil
}

func (w *tarWriter) add(m tarMember) {
	if w.err != nil {
		return
	}
	// GNU tar stores longer names in an extra ././@LongLink member; no
	// package path here comes near the limit, so refuse rather than
	// write something untested.
	if len(m.name) > 100 || len(m.linkname) > 100 {
		w.err = fmt.Errorf("pkg: tar: name %q or link target too long", m.name)
		return
	}
	var h [tarBlock]byte
	copy(h[0:100], m.name)
	size := int64(len(m.data))
	if m.typeflag != '0' {
		size = 0
	}
	for _, f := range []struct {
		dst []byte
		v   int64
	}{
		{h[100:108], int64(m.mode)},
		{h[108:116], 0}, // uid
		{h[116:124], 0}, // gid
		{h[124:136], size},
		{h[136:148], w.mtime},
	} {
		if err := octal(f.dst, f.v); err != nil {
			w.err = err
			return
		}
	}
	h[156] = m.typeflag
	copy(h[157:257], m.linkname)
	copy(h[257:265], "ustar  \x00") // the GNU magic and version
	// uname, gname, devmajor, devminor stay empty, as with
	// --numeric-owner for files that are not devices.
	for i := 148; i < 156; i++ {
		h[i] = ' '
	}
	var sum int64
	for _, b := range h {
		sum += int64(b)
	}
	octal(h[148:155], sum) // six digits, NUL, then the space already there
	w.buf.Write(h[:])
	if size > 0 {
		w.buf.Write(m.data)
		if pad := size % tarBlock; pad != 0 {
			w.buf.Write(make([]byte, tarBlock-pad))
		}
	}
}

// bytes ends the archive: two zero blocks, then zeros to a whole record.
func (w *tarWriter) bytes() ([]byte, error) {
	if w.err != nil {
		return nil, w.err
	}
	w.buf.Write(make([]byte, 2*tarBlock))
	if pad := w.buf.Len() % tarRecord; pad != 0 {
		w.buf.Write(make([]byte, tarRecord-pad))
	}
	return w.buf.Bytes(), nil
}

// TarTree archives a tree as `tar -C ROOT ... .` does: "./" first, then
// every entry as ./PATH (directories with a trailing slash).
func TarTree(t *Tree, mtime int64) ([]byte, error) {
	w := &tarWriter{mtime: mtime}
	for _, e := range t.Walk() {
		m := tarMember{name: "./" + e.Path, mode: e.Mode}
		switch e.Type {
		case Dir:
			m.typeflag = '5'
			if e.Path != "" {
				m.name += "/"
			}
		case Regular:
			m.typeflag, m.data = '0', e.Data
		case Symlink:
			m.typeflag, m.linkname = '2', e.Target
		}
		w.add(m)
	}
	return w.bytes()
}

// Gzip compresses as `gzip -n -9` is asked to: no name, no time stamp, OS
// byte Unix. (The deflate stream is Go's, not gzip's; it is the same for
// the same input and Go release.)
func Gzip(data []byte) []byte {
	var b bytes.Buffer
	z, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	z.OS = 3
	z.Write(data)
	z.Close()
	return b.Bytes()
}
