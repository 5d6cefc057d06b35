package pkg

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ADBFile is a package's ADB stream taken apart: the metadata block and
// the data blocks, as ReadADB finds them.
type ADBFile struct {
	Schema uint32
	ADB    []byte // the ADB block's payload: header, then values
	Data   []ADBData
	Sigs   int // signature blocks seen
}

// ADBData is one DATA block: the contents of file FileIdx of directory
// PathIdx (both from 1, into the paths array and its files array).
type ADBData struct {
	PathIdx, FileIdx uint32
	Content          []byte
}

// ReadADB reads a raw ("ADB.") or deflated ("ADBd") ADB stream.
func ReadADB(data []byte) (*ADBFile, error) {
	if bytes.HasPrefix(data, []byte("ADBd")) {
		raw, err := io.ReadAll(flate.NewReader(bytes.NewReader(data[4:])))
		if err != nil {
			return nil, fmt.Errorf("pkg: adb: inflate: %w", err)
		}
		data = raw
	}
	if len(data) < 8 || string(data[:4]) != adbMagic {
		return nil, errors.New("pkg: adb: no ADB. header")
	}
	f := &ADBFile{Schema: binary.LittleEndian.Uint32(data[4:8])}
	p := data[8:]
	for len(p) > 0 {
		if len(p) < 4 {
			return nil, errors.New("pkg: adb: truncated block header")
		}
		tag := binary.LittleEndian.Uint32(p)
		typ, raw := tag>>30, int(tag&0x3fffffff)
		if typ == 3 {
			return nil, errors.New("pkg: adb: extended blocks are not read here")
		}
		if raw < 4 || raw > len(p) {
			return nil, fmt.Errorf("pkg: adb: block size %d of %d bytes left", raw, len(p))
		}
		payload := p[4:raw]
		padded := (raw + adbBlockAlign - 1) / adbBlockAlign * adbBlockAlign
		if padded > len(p) {
			padded = len(p)
		}
		for _, b := range p[raw:padded] {
			if b != 0 {
				return nil, errors.New("pkg: adb: non-zero block padding")
			}
		}
		p = p[padded:]
		switch typ {
		case adbBlockADB:
			if f.ADB != nil {
				return nil, errors.New("pkg: adb: two ADB blocks")
			}
			if len(payload) < 8 {
				return nil, errors.New("pkg: adb: ADB block too short")
			}
			f.ADB = payload
		case adbBlockSig:
			f.Sigs++
		case adbBlockData:
			if len(payload) < 8 {
				return nil, errors.New("pkg: adb: data block too short")
			}
			f.Data = append(f.Data, ADBData{
				PathIdx: binary.LittleEndian.Uint32(payload), FileIdx: binary.LittleEndian.Uint32(payload[4:]),
				Content: payload[8:],
			})
		}
	}
	if f.ADB == nil {
		return nil, errors.New("pkg: adb: no ADB block")
	}
	return f, nil
}

// Root is the root value of the ADB block.
func (f *ADBFile) Root() uint32 { return binary.LittleEndian.Uint32(f.ADB[4:8]) }

func (f *ADBFile) deref(v uint32, n int) ([]byte, error) {
	off := int(v &^ adbTypes)
	if off+n > len(f.ADB) || off < 8 {
		return nil, fmt.Errorf("pkg: adb: value %08x points outside the block", v)
	}
	return f.ADB[off : off+n], nil
}

// Int reads an integer value.
func (f *ADBFile) Int(v uint32) (uint64, error) {
	switch v & adbTypes {
	case adbNull:
		return 0, nil
	case adbInt:
		return uint64(v &^ adbTypes), nil
	case adbInt32:
		b, err := f.deref(v, 4)
		if err != nil {
			return 0, err
		}
		return uint64(binary.LittleEndian.Uint32(b)), nil
	case adbInt64:
		b, err := f.deref(v, 8)
		if err != nil {
			return 0, err
		}
		return binary.LittleEndian.Uint64(b), nil
	}
	return 0, fmt.Errorf("pkg: adb: value %08x is not an integer", v)
}

// Blob reads a blob value (nil for null).
func (f *ADBFile) Blob(v uint32) ([]byte, error) {
	var hl int
	switch v & adbTypes {
	case adbNull:
		return nil, nil
	case adbBlob8:
		hl = 1
	case adbBlob16:
		hl = 2
	case adbBlob32:
		hl = 4
	default:
		return nil, fmt.Errorf("pkg: adb: value %08x is not a blob", v)
	}
	h, err := f.deref(v, hl)
	if err != nil {
		return nil, err
	}
	var n int
	switch hl {
	case 1:
		n = int(h[0])
	case 2:
		n = int(binary.LittleEndian.Uint16(h))
	default:
		n = int(binary.LittleEndian.Uint32(h))
	}
	b, err := f.deref(v, hl+n)
	if err != nil {
		return nil, err
	}
	return b[hl:], nil
}

// Obj reads an object or array: its slots, slot 0 being the count. Null
// reads as no slots.
func (f *ADBFile) Obj(v uint32) ([]uint32, error) {
	if v == adbNull {
		return []uint32{1}, nil
	}
	if t := v & adbTypes; t != adbObject && t != adbArray {
		return nil, fmt.Errorf("pkg: adb: value %08x is not an object", v)
	}
	h, err := f.deref(v, 4)
	if err != nil {
		return nil, err
	}
	n := int(binary.LittleEndian.Uint32(h))
	if n < 1 {
		return nil, fmt.Errorf("pkg: adb: object %08x has no slots", v)
	}
	b, err := f.deref(v, 4*n)
	if err != nil {
		return nil, err
	}
	out := make([]uint32, n)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return out, nil
}

func slot(o []uint32, i int) uint32 {
	if i < len(o) {
		return o[i]
	}
	return adbNull
}

// APKInfo is what a package says of itself and holds, read back.
type APKInfo struct {
	Name, Version, Description, Arch, License, Origin, Maintainer, URL string
	Hashes                                                             []byte
	InstalledSize                                                      uint64
	Depends, Provides                                                  []string
	Scripts                                                            map[string]string
	Files                                                              []APKFileInfo // every directory and file, in stored order
}

// APKFileInfo is one directory (Dir) or file of a package.
type APKFileInfo struct {
	Path        string // relative, "" for the root
	Dir         bool
	Mode        uint32
	User, Group string
	Size, Mtime uint64
	Hash        []byte // SHA-256 of the contents
	Target      []byte // file type word and link text, for links
	Content     []byte // from the DATA block (regular files)
}

// Package decodes the ADB block as a package and joins the data blocks
// to their files, checking each against its SHA-256.
func (f *ADBFile) Package() (*APKInfo, error) {
	if f.Schema != adbSchemaPkg {
		return nil, fmt.Errorf("pkg: adb: schema %08x is not a package", f.Schema)
	}
	var firstErr error
	str := func(v uint32) string {
		b, err := f.Blob(v)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return string(b)
	}
	num := func(v uint32) uint64 {
		n, err := f.Int(v)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return n
	}
	obj := func(v uint32) []uint32 {
		o, err := f.Obj(v)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if o == nil {
			o = []uint32{1}
		}
		return o
	}
	root := obj(f.Root())
	info := obj(slot(root, pkgInfo))
	p := &APKInfo{
		Name: str(slot(info, piName)), Version: str(slot(info, piVersion)), Description: str(slot(info, piDescription)),
		Arch: str(slot(info, piArch)), License: str(slot(info, piLicense)), Origin: str(slot(info, piOrigin)),
		Maintainer: str(slot(info, piMaintainer)), URL: str(slot(info, piURL)),
		InstalledSize: num(slot(info, piInstalledSize)), Scripts: map[string]string{},
	}
	p.Hashes = []byte(str(slot(info, piHashes)))
	for _, l := range []struct {
		dst *[]string
		i   int
	}{{&p.Depends, piDepends}, {&p.Provides, piProvides}} {
		for _, d := range obj(slot(info, l.i))[1:] {
			*l.dst = append(*l.dst, str(slot(obj(d), depName)))
		}
	}
	sc := obj(slot(root, pkgScripts))
	for i := 1; i < len(sc) && i < len(apkScripts); i++ {
		if sc[i] != adbNull {
			p.Scripts[apkScripts[i]] = str(sc[i])
		}
	}
	content := map[[2]uint32][]byte{}
	for _, d := range f.Data {
		content[[2]uint32{d.PathIdx, d.FileIdx}] = d.Content
	}
	acl := func(v uint32) (uint32, string, string) {
		a := obj(v)
		return uint32(num(slot(a, aclMode))), str(slot(a, aclUser)), str(slot(a, aclGroup))
	}
	for i, dv := range obj(slot(root, pkgPaths))[1:] {
		d := obj(dv)
		dir := APKFileInfo{Path: str(slot(d, diName)), Dir: true}
		dir.Mode, dir.User, dir.Group = acl(slot(d, diACL))
		p.Files = append(p.Files, dir)
		for j, fv := range obj(slot(d, diFiles))[1:] {
			fo := obj(fv)
			fi := APKFileInfo{Path: str(slot(fo, fiName)), Size: num(slot(fo, fiSize)), Mtime: num(slot(fo, fiMtime))}
			if dir.Path != "" {
				fi.Path = dir.Path + "/" + fi.Path
			}
			fi.Mode, fi.User, fi.Group = acl(slot(fo, fiACL))
			fi.Hash = []byte(str(slot(fo, fiHash)))
			fi.Target = []byte(str(slot(fo, fiTarget)))
			if len(fi.Target) == 0 {
				fi.Target = nil
				c, ok := content[[2]uint32{uint32(i + 1), uint32(j + 1)}]
				if !ok && fi.Size > 0 {
					return nil, fmt.Errorf("pkg: adb: no data block for %s", fi.Path)
				}
				if uint64(len(c)) != fi.Size {
					return nil, fmt.Errorf("pkg: adb: %s: %d bytes of data, size says %d", fi.Path, len(c), fi.Size)
				}
				if h := sha256.Sum256(c); !bytes.Equal(h[:], fi.Hash) {
					return nil, fmt.Errorf("pkg: adb: %s: contents do not match the hash", fi.Path)
				}
				fi.Content = c
			}
			p.Files = append(p.Files, fi)
		}
	}
	return p, firstErr
}

// The schema of a package as `apk adbdump` prints it: field names and
// how each value is shown.
type adbKind int

const (
	kString adbKind = iota
	kMultiline
	kHex
	kInt
	kOctal
	kObject
	kArray
	kDependency
)

type adbField struct {
	name string
	kind adbKind
	sub  []adbField // object fields (from 1), or an array's one item
}

var (
	aclSchema  = []adbField{1: {"mode", kOctal, nil}, 2: {"user", kString, nil}, 3: {"group", kString, nil}}
	depItem    = []adbField{{"", kDependency, nil}}
	fileSchema = []adbField{1: {"name", kString, nil}, 2: {"acl", kObject, aclSchema}, 3: {"size", kInt, nil},
		4: {"mtime", kInt, nil}, 5: {"hash", kHex, nil}, 6: {"target", kHex, nil}}
	dirSchema = []adbField{1: {"name", kString, nil}, 2: {"acl", kObject, aclSchema},
		3: {"files", kArray, []adbField{{"", kObject, fileSchema}}}}
	infoSchema = []adbField{
		1: {"name", kString, nil}, 2: {"version", kString, nil}, 3: {"hashes", kHex, nil},
		4: {"description", kString, nil}, 5: {"arch", kString, nil}, 6: {"license", kString, nil},
		7: {"origin", kString, nil}, 8: {"maintainer", kString, nil}, 9: {"url", kString, nil},
		10: {"repo-commit", kHex, nil}, 11: {"build-time", kInt, nil}, 12: {"installed-size", kInt, nil},
		13: {"file-size", kInt, nil}, 14: {"provider-priority", kInt, nil},
		15: {"depends", kArray, depItem}, 16: {"provides", kArray, depItem}, 17: {"replaces", kArray, depItem},
		18: {"install-if", kArray, depItem}, 19: {"recommends", kArray, depItem}, 20: {"layer", kInt, nil},
		21: {"tags", kArray, []adbField{{"", kString, nil}}},
	}
	scriptsSchema = []adbField{1: {"trigger", kMultiline, nil}, 2: {"pre-install", kMultiline, nil},
		3: {"post-install", kMultiline, nil}, 4: {"pre-deinstall", kMultiline, nil}, 5: {"post-deinstall", kMultiline, nil},
		6: {"pre-upgrade", kMultiline, nil}, 7: {"post-upgrade", kMultiline, nil}}
	packageSchema = []adbField{1: {"info", kObject, infoSchema}, 2: {"paths", kArray, []adbField{{"", kObject, dirSchema}}},
		3: {"scripts", kObject, scriptsSchema}, 4: {"triggers", kArray, []adbField{{"", kString, nil}}},
		5: {"replaces-priority", kInt, nil}}
)

// yamlOut writes the YAML-like text of `apk adbdump`: two spaces per
// level, "- " before an array item's first line, keys followed by their
// scalar on the same line.
type yamlOut struct {
	b           strings.Builder
	indent      int
	nest        int
	array       []bool
	lineStarted bool
	keyPrinted  bool
}

func (y *yamlOut) pad(item, cont bool) {
	if !y.lineStarted {
		y.b.WriteString(strings.Repeat("  ", y.indent))
		if item && y.array[y.nest] {
			y.b.WriteString("- ")
		}
	} else if y.keyPrinted && cont {
		y.b.WriteString(" ")
	}
	y.lineStarted = true
}

func (y *yamlOut) newline() {
	y.b.WriteString("\n")
	y.lineStarted, y.keyPrinted = false, false
}

func (y *yamlOut) push(array bool) {
	if y.nest > 0 {
		y.indent++
	}
	y.nest++
	y.array = append(y.array[:y.nest], array)
}

func (y *yamlOut) startObject() { y.pad(true, false); y.push(false) }

func (y *yamlOut) startArray(n int) {
	y.pad(true, true)
	fmt.Fprintf(&y.b, "# %d items", n)
	y.newline()
	y.push(true)
}

func (y *yamlOut) end() {
	if y.lineStarted {
		y.pad(false, true)
		y.b.WriteString("# empty object")
		y.newline()
	}
	y.nest--
	if y.nest > 0 {
		y.indent--
	}
}

func (y *yamlOut) comment(s string) {
	y.pad(false, true)
	y.b.WriteString("# " + s)
	y.newline()
}

func (y *yamlOut) key(k string) {
	if y.keyPrinted {
		y.newline()
	}
	y.pad(true, true)
	y.b.WriteString(k + ":")
	y.keyPrinted = true
}

// quoting is how adbdump shows a string: bare, in single quotes, or as a
// "|" block of lines (long, multi-line, or with a quote or " #" in it).
func quoting(s string, multiline bool) int {
	const bare, single, block = 0, 1, 2
	if s == "" {
		return bare
	}
	if len(s) >= 80 || multiline {
		return block
	}
	style := bare
	if strings.IndexByte("-?:,[]{}#&*!|>'\"%@`", s[0]) >= 0 {
		style = single
	}
	prev := byte(0)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\r', '\n', '\'':
			return block
		case ' ':
			if prev == ':' {
				style = single
			}
		case '#':
			if prev == ' ' {
				return block
			}
			style = single
		}
		prev = s[i]
	}
	return style
}

func (y *yamlOut) str(s string, multiline bool) {
	y.pad(true, true)
	switch quoting(s, multiline) {
	case 0:
		y.b.WriteString(s)
		y.newline()
	case 1:
		y.b.WriteString("'" + s + "'")
		y.newline()
	default:
		y.b.WriteString("|")
		y.newline()
		y.indent++
		for _, l := range strings.Split(s, "\n") {
			if l == "" {
				continue
			}
			y.pad(false, true)
			y.b.WriteString(l)
			y.newline()
		}
		y.indent--
	}
}

type dumper struct {
	f   *ADBFile
	y   *yamlOut
	err error
}

func (d *dumper) fail(err error) {
	if err != nil && d.err == nil {
		d.err = err
	}
}

func (d *dumper) object(fields []adbField, v uint32) {
	o, err := d.f.Obj(v)
	d.fail(err)
	for i := 1; i < len(o); i++ {
		if o[i] == adbNull || i >= len(fields) || fields[i].name == "" {
			continue
		}
		d.item(fields[i], o[i], true)
	}
}

func (d *dumper) item(fd adbField, v uint32, named bool) {
	if v == adbNull {
		return
	}
	if named {
		d.y.key(fd.name)
	}
	switch fd.kind {
	case kArray:
		o, err := d.f.Obj(v)
		d.fail(err)
		d.y.startArray(len(o) - 1)
		for _, iv := range o[1:] {
			d.item(fd.sub[0], iv, false)
		}
		d.y.end()
	case kObject:
		d.y.startObject()
		d.object(fd.sub, v)
		d.y.end()
	case kDependency:
		o, err := d.f.Obj(v)
		d.fail(err)
		name, err := d.f.Blob(slot(o, 1))
		d.fail(err)
		s := string(name)
		if slot(o, 2) != adbNull {
			ver, err := d.f.Blob(slot(o, 2))
			d.fail(err)
			op := "="
			if m, _ := d.f.Int(slot(o, 3)); m != 0 {
				op = map[uint64]string{1: "=", 2: "<", 4: ">", 3: "<=", 5: ">="}[m]
				if op == "" {
					op = "?" + strconv.FormatUint(m, 10) + "?"
				}
			}
			s += op + string(ver)
		}
		d.y.str(s, false)
	case kInt, kOctal:
		n, err := d.f.Int(v)
		d.fail(err)
		d.y.pad(true, true)
		if fd.kind == kOctal && n != 0 {
			d.y.b.WriteString("0" + strconv.FormatUint(n, 8))
		} else {
			d.y.b.WriteString(strconv.FormatUint(n, 10))
		}
		d.y.newline()
	case kHex:
		b, err := d.f.Blob(v)
		d.fail(err)
		d.y.str(hex.EncodeToString(b), false)
	default:
		b, err := d.f.Blob(v)
		d.fail(err)
		d.y.str(string(b), fd.kind == kMultiline)
	}
}

// Dump renders the stream as `apk adbdump` (apk-tools 3.0) prints an
// unsigned package: the schema, the metadata tree, one line per data
// block.
func (f *ADBFile) Dump() (string, error) {
	if f.Schema != adbSchemaPkg {
		return "", fmt.Errorf("pkg: adb: schema %08x is not a package", f.Schema)
	}
	y := &yamlOut{array: []bool{false}}
	d := &dumper{f: f, y: y}
	y.startObject()
	fmt.Fprintf(&y.b, "#%%SCHEMA: %08X", f.Schema)
	y.newline()
	y.comment(fmt.Sprintf("ADB block, size: %d, compat: %d, ver: %d", len(f.ADB), f.ADB[0], f.ADB[1]))
	d.object(packageSchema, f.Root())
	y.end()
	for _, b := range f.Data {
		y.comment(fmt.Sprintf("data block, size: %d", 8+len(b.Content)))
	}
	return y.b.String(), d.err
}
