package pkg

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// APK is a package for apk-tools 3 (OpenWrt 25.12 and later): the ADB
// format of apk-tools' doc/apk-v3.5.scd. Build lays the metadata out the
// way `apk mkpkg` (apk-tools 3.0) does, value for value and in the same
// order, so that for the same tree and fields the uncompressed package is
// byte for byte what mkpkg writes (the tests check this against packages
// mkpkg made).
type APK struct {
	Name, Version, Description, Arch string
	License, Origin, Maintainer, URL string
	Depends, Provides                []string
	// Scripts by apk's names: pre-install, post-install,
	// pre-deinstall, post-deinstall, pre-upgrade, post-upgrade, trigger.
	Scripts map[string][]byte
	Tree    *Tree
	// Mtime is every file's modification time (mkpkg takes the files'
	// own; a reproducible build sets them all to the same time).
	Mtime int64
	// Uncompressed writes the raw ADB stream ("ADB.pckg...", what
	// `mkpkg --compression none` writes) instead of the default "ADBd"
	// plus raw deflate.
	Uncompressed bool
}

// FileName is NAME-VERSION.apk, as OpenWrt's buildroot names them.
func (p *APK) FileName() string { return p.Name + "-" + p.Version + ".apk" }

// ADB value tags: the high 4 bits of a 32-bit little-endian word.
const (
	adbNull   uint32 = 0
	adbInt    uint32 = 0x10000000
	adbInt32  uint32 = 0x20000000
	adbInt64  uint32 = 0x30000000
	adbBlob8  uint32 = 0x80000000
	adbBlob16 uint32 = 0x90000000
	adbBlob32 uint32 = 0xa0000000
	adbArray  uint32 = 0xd0000000
	adbObject uint32 = 0xe0000000
	adbTypes  uint32 = 0xf0000000
)

const (
	adbMagic      = "ADB."
	adbSchemaPkg  = 0x676b6370 // "pckg"
	adbBlockADB   = 0
	adbBlockSig   = 1
	adbBlockData  = 2
	adbBlockAlign = 8
)

// Field numbers of the package schema (apk-tools src/apk_adb.h).
const (
	piName, piVersion, piHashes, piDescription, piArch, piLicense, piOrigin, piMaintainer, piURL = 1, 2, 3, 4, 5, 6, 7, 8, 9
	piInstalledSize, piDepends, piProvides                                                       = 12, 15, 16
	piMax                                                                                        = 22

	aclMode, aclUser, aclGroup, aclMax               = 1, 2, 3, 5
	fiName, fiACL, fiSize, fiMtime, fiHash, fiTarget = 1, 2, 3, 4, 5, 6
	fiMax                                            = 7
	diName, diACL, diFiles, diMax                    = 1, 2, 3, 4
	pkgInfo, pkgPaths, pkgScripts, pkgMax            = 1, 2, 3, 6
	depName, depMax                                  = 1, 4
	scriptsMax                                       = 8
)

// apkScripts are the script slots of the scripts object, by field number.
var apkScripts = []string{1: "trigger", 2: "pre-install", 3: "post-install", 4: "pre-deinstall", 5: "post-deinstall", 6: "pre-upgrade", 7: "post-upgrade"}

// adbWriter builds an ADB block. Like apk's writer it stores identical
// data once (same bytes at a suitably aligned offset) and aligns each
// value to its natural size, zero-padding before it.
type adbWriter struct {
	buf   []byte
	cache map[string]uint32
}

func (w *adbWriter) raw(data []byte, align int) uint32 {
	for len(w.buf)%align != 0 {
		w.buf = append(w.buf, 0)
	}
	off := uint32(len(w.buf))
	w.buf = append(w.buf, data...)
	return off
}

func (w *adbWriter) data(data []byte, align int) uint32 {
	if off, ok := w.cache[string(data)]; ok && int(off)%align == 0 {
		return off
	}
	off := w.raw(data, align)
	w.cache[string(data)] = off
	return off
}

func (w *adbWriter) blob(b []byte, cached bool) uint32 {
	var hdr []byte
	var tag uint32
	var align int
	switch n := len(b); {
	case n == 0:
		return adbNull
	case n <= 0xff:
		hdr, tag, align = []byte{byte(n)}, adbBlob8, 1
	case n <= 0xffff:
		hdr, tag, align = binary.LittleEndian.AppendUint16(nil, uint16(n)), adbBlob16, 2
	default:
		hdr, tag, align = binary.LittleEndian.AppendUint32(nil, uint32(n)), adbBlob32, 4
	}
	v := append(hdr, b...)
	if !cached {
		return tag | w.raw(v, align)
	}
	return tag | w.data(v, align)
}

func (w *adbWriter) str(s string) uint32 { return w.blob([]byte(s), true) }

func (w *adbWriter) int(v uint64) uint32 {
	switch {
	case v < 0x10000000:
		return adbInt | uint32(v)
	case v < 1<<32:
		return adbInt32 | w.data(binary.LittleEndian.AppendUint32(nil, uint32(v)), 4)
	default:
		return adbInt64 | w.data(binary.LittleEndian.AppendUint64(nil, v), 4)
	}
}

// obj writes an object (or array) whose slot i is vals[i] (vals[0] is
// overwritten with the count); trailing empty slots are dropped and an
// object with none left is null. mkpkg tags arrays written through an
// object field as objects too, so the tag is the caller's choice.
func (w *adbWriter) obj(vals []uint32, tag uint32) uint32 {
	n := len(vals)
	for n > 1 && vals[n-1] == adbNull {
		n--
	}
	if n <= 1 {
		return adbNull
	}
	b := make([]byte, 0, 4*n)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	for _, v := range vals[1:n] {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return tag | w.data(b, 4)
}

var (
	apkNameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9+_.-]*$`)
	apkVersionRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*[a-z]?(_(alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*(~[0-9a-fA-F]+)?(-r[0-9]+)?$`)
)

// ValidAPKVersion reports whether apk accepts v as a package version
// (digits{.digits}{letter}{_suffix{digits}}{~hash}{-rN}).
func ValidAPKVersion(v string) bool { return apkVersionRE.MatchString(v) }

type apkFile struct {
	e    *Entry
	val  uint32
	name string
}

// Build returns the package's bytes.
func (p *APK) Build() ([]byte, error) {
	if !apkNameRE.MatchString(p.Name) {
		return nil, fmt.Errorf("pkg: apk: package name %q", p.Name)
	}
	if !ValidAPKVersion(p.Version) {
		return nil, fmt.Errorf("pkg: apk: version %q is not one apk accepts (e.g. 1.2.3-r1)", p.Version)
	}
	for _, d := range append(slices.Clone(p.Depends), p.Provides...) {
		if !apkNameRE.MatchString(d) {
			return nil, fmt.Errorf("pkg: apk: dependency %q (only plain names are written)", d)
		}
	}
	for name := range p.Scripts {
		if !slices.Contains(apkScripts[1:], name) {
			return nil, fmt.Errorf("pkg: apk: unknown script %q", name)
		}
	}
	arch := p.Arch
	if arch == "" {
		arch = "noarch"
	}
	w := &adbWriter{cache: map[string]uint32{}}
	w.raw(make([]byte, 8), 8) // header: compat 0, version 0, reserved, root

	// Package info, in field order, as mkpkg assigns the --info values.
	info := make([]uint32, piMax)
	info[piName] = w.str(p.Name)
	info[piVersion] = w.str(p.Version)
	info[piDescription] = w.str(p.Description)
	info[piArch] = w.str(arch)
	info[piLicense] = w.str(p.License)
	info[piOrigin] = w.str(p.Origin)
	info[piMaintainer] = w.str(p.Maintainer)
	info[piURL] = w.str(p.URL)
	info[piDepends] = w.deps(p.Depends)
	info[piProvides] = w.deps(p.Provides)

	// Paths: the root, then every directory by path; in each, its
	// files, then the directory itself.
	var installed uint64
	var dirVals []uint32
	var dirFiles [][]apkFile
	for _, d := range p.Tree.Dirs() {
		var files []apkFile
		for _, e := range p.Tree.Children(d.Path) {
			fio := make([]uint32, fiMax)
			fio[fiName] = w.str(e.Name())
			switch e.Type {
			case Regular:
				h := sha256.Sum256(e.Data)
				fio[fiHash] = w.blob(h[:], true)
				installed += uint64(len(e.Data))
			case Symlink:
				// The target is stored as the 16-bit file type
				// (S_IFLNK) and the link text.
				fio[fiTarget] = w.blob(append([]byte{0x00, 0xa0}, e.Target...), true)
			}
			fio[fiMtime] = w.int(uint64(p.Mtime))
			size := uint64(len(e.Data))
			if e.Type == Symlink {
				size = uint64(len(e.Target))
			}
			fio[fiSize] = w.int(size)
			fio[fiACL] = w.acl(e.Mode)
			files = append(files, apkFile{e: e, val: w.obj(fio, adbObject), name: e.Name()})
		}
		di := make([]uint32, diMax)
		di[diName] = w.str(d.Path)
		di[diACL] = w.acl(d.Mode)
		fv := make([]uint32, 1, 1+len(files))
		for _, f := range files {
			fv = append(fv, f.val)
		}
		di[diFiles] = w.obj(fv, adbObject)
		dirVals = append(dirVals, w.obj(di, adbObject))
		dirFiles = append(dirFiles, files)
	}
	if installed == 0 {
		installed = 1 // mkpkg's floor: apk reads 0 as unknown
	}
	info[piInstalledSize] = w.int(installed)
	// The package's unique id: 20 bytes, written now as zeros and filled
	// below with the start of the block's SHA-256. Not shared with equal
	// data, since it is overwritten.
	info[piHashes] = w.blob(make([]byte, 20), false)
	uidOff := info[piHashes]&^adbTypes + 1

	pkg := make([]uint32, pkgMax)
	pkg[pkgInfo] = w.obj(info, adbObject)
	pkg[pkgPaths] = w.obj(append([]uint32{0}, dirVals...), adbObject)
	if len(p.Scripts) > 0 {
		sc := make([]uint32, scriptsMax)
		for i := 1; i < scriptsMax; i++ {
			sc[i] = w.blob(p.Scripts[apkScripts[i]], true)
		}
		pkg[pkgScripts] = w.obj(sc, adbObject)
	}
	root := w.obj(pkg, adbObject)
	binary.LittleEndian.PutUint32(w.buf[4:8], root)
	sum := sha256.Sum256(w.buf)
	copy(w.buf[uidOff:uidOff+20], sum[:20])

	var out bytes.Buffer
	out.WriteString(adbMagic)
	out.Write(binary.LittleEndian.AppendUint32(nil, adbSchemaPkg))
	writeBlock(&out, adbBlockADB, nil, w.buf)
	// File contents, one DATA block per non-empty regular file, named by
	// its (path, file) indexes, both counted from 1.
	for i, files := range dirFiles {
		for j, f := range files {
			if f.e.Type != Regular || len(f.e.Data) == 0 {
				continue
			}
			hdr := binary.LittleEndian.AppendUint32(nil, uint32(i+1))
			hdr = binary.LittleEndian.AppendUint32(hdr, uint32(j+1))
			writeBlock(&out, adbBlockData, hdr, f.e.Data)
		}
	}
	if p.Uncompressed {
		return out.Bytes(), nil
	}
	var z bytes.Buffer
	z.WriteString("ADBd")
	fw, _ := flate.NewWriter(&z, flate.BestCompression)
	fw.Write(out.Bytes())
	fw.Close()
	return z.Bytes(), nil
}

func (w *adbWriter) acl(mode uint32) uint32 {
	a := make([]uint32, aclMax)
	a[aclMode] = w.int(uint64(mode))
	a[aclUser] = w.str("root")
	a[aclGroup] = w.str("root")
	return w.obj(a, adbObject)
}

// deps writes a dependency list the way mkpkg parses --info depends:
// one {name} object per entry, then the list sorted by name with
// duplicates dropped.
func (w *adbWriter) deps(names []string) uint32 {
	var vals []uint32
	byVal := map[uint32]string{}
	for _, n := range names {
		d := make([]uint32, depMax)
		d[depName] = w.str(n)
		v := w.obj(d, adbObject)
		vals = append(vals, v)
		byVal[v] = n
	}
	slices.SortStableFunc(vals, func(a, b uint32) int { return strings.Compare(byVal[a], byVal[b]) })
	vals = slices.Compact(vals)
	return w.obj(append([]uint32{0}, vals...), adbObject)
}

func writeBlock(out *bytes.Buffer, typ uint32, hdr, payload []byte) {
	n := 4 + len(hdr) + len(payload)
	out.Write(binary.LittleEndian.AppendUint32(nil, typ<<30|uint32(n)))
	out.Write(hdr)
	out.Write(payload)
	for ; n%adbBlockAlign != 0; n++ {
		out.WriteByte(0)
	}
}
