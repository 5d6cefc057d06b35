package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"nemod/internal/pkg"
)

// Package metadata, in one place for every format.
const (
	pkgName    = "nemod"
	maintainer = "nemod maintainers <maintainers@users.noreply.r-seed-7267bd6d.example>"
	// The project has published no licence yet (packaging/debian/copyright
	// says so); OpenWrt leaves an empty License field out.
	license = ""
	// Where openwrt/Makefile sits in a buildroot when built with the SDK
	// (copied to package/nemod), which is what OpenWrt's Source names.
	openwrtSource = "package/nemod"
	openwrtDeps   = "libc, kmod-tun, nftables"
	// The group whose members may read the daemons' state (ubus ACL,
	// D-Bus policy); OpenWrt's default_postinst creates it from
	// Require-User.
	openwrtRequireUser = ":nemod"
	synopsis           = "NEMO mobile router (RFC 3963) over every uplink at once"
)

// description is the long description; OpenWrt prints it as is, Debian
// wants the synopsis first.
const description = `nemod keeps the addresses and sessions of the network behind a mobile
router alive while its cellular and Wi-Fi uplinks come and go, through a
home agent (NEMO Basic Support, RFC 3963, on Mobile IPv6, RFC 6275), and
uses every uplink at once (multiple care-of addresses, RFC 5648; flow
bindings, RFC 6088/6089; UDP through IPv4 NATs, RFC 5555).`

// Sources are the packaging files in the repository (packaging/), read
// once.
type Sources struct {
	files map[string][]byte
}

var sourceFiles = []string{
	"openwrt/nemod.init", "openwrt/nemod.config", "openwrt/90-nemod", "openwrt/nemo.sh",
	"openwrt/acl.json", "openwrt/rpcd-acl.json", "common/rt_protos.conf",
	"debian/nemod-router.service", "debian/nemod-homeagent.service", "dbus/org.nemod.conf",
	"debian/router.conf", "debian/homeagent.conf", "debian/sysusers.conf", "debian/copyright",
	"debian/nemod.8", "debian/lintian-overrides", "debian/postinst", "debian/prerm", "debian/postrm",
}

func readSources(dir string) (*Sources, error) {
	s := &Sources{files: map[string][]byte{}}
	for _, f := range sourceFiles {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return nil, err
		}
		s.files[f] = b
	}
	return s, nil
}

func (s *Sources) get(name string) []byte { return s.files[name] }

// Release is what every package of one build shares.
type Release struct {
	Versions Versions
	Epoch    int64 // SOURCE_DATE_EPOCH: every mtime, and the changelog's date
	Commit   string
}

type fileSpec struct {
	path string
	mode uint32
	data []byte
}

func buildTree(files []fileSpec) (*pkg.Tree, error) {
	t := pkg.NewTree()
	for _, f := range files {
		if f.data == nil {
			return nil, fmt.Errorf("no contents for %s", f.path)
		}
		if err := t.File(f.path, f.mode, f.data); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Both /etc/config/nemod and /etc/nemod/*.conf hold the shared keys of
// RFC 4285 authentication: readable by root only.
const secretMode = 0o600

const openwrtConffile = "/etc/config/nemod"

// openwrtFiles is the OpenWrt package's tree, the same for .ipk and .apk
// (and for openwrt/Makefile's install section).
func openwrtFiles(s *Sources, bin []byte) []fileSpec {
	return []fileSpec{
		{"usr/sbin/nemod", 0o755, bin},
		{"etc/init.d/nemod", 0o755, s.get("openwrt/nemod.init")},
		{"etc/config/nemod", secretMode, s.get("openwrt/nemod.config")},
		{"etc/uci-defaults/90-nemod", 0o755, s.get("openwrt/90-nemod")},
		{"lib/netifd/proto/nemo.sh", 0o755, s.get("openwrt/nemo.sh")},
		{"usr/share/acl.d/nemod.json", 0o644, s.get("openwrt/acl.json")},
		{"usr/share/rpcd/acl.d/nemod.json", 0o644, s.get("openwrt/rpcd-acl.json")},
		{"etc/iproute2/rt_protos.d/nemod.conf", 0o644, s.get("common/rt_protos.conf")},
	}
}

// The maintainer scripts OpenWrt's package-pack.mk generates for every
// package: they hand over to lib/functions.sh, which creates the
// Require-User group, runs the uci-defaults script, HUPs ubusd for the new
// ACL and enables and starts the init script (default_postinst), or stops
// and disables it (default_prerm). The same lines as the buildroot's, with
// the expansions quoted (shellcheck-clean; no path here has a space).
const (
	scriptHead = "#!/bin/sh\n"
	noScript   = "[ \"${IPKG_NO_SCRIPT}\" = \"1\" ] && exit 0\n"
	functions  = "[ -s \"${IPKG_INSTROOT}/lib/functions.sh\" ] || exit 0\n" +
		"# shellcheck source=/dev/null\n" +
		". \"${IPKG_INSTROOT}/lib/functions.sh\"\n"
	ipkPostinst = scriptHead + noScript + functions + "default_postinst \"$0\" \"$@\"\n"
	ipkPrerm    = scriptHead + functions + "default_prerm \"$0\" \"$@\"\n"
	// apk passes no arguments; 25.12's functions.sh takes the package from
	// $pkgname and the root from $root instead.
	apkEnv             = "export root=\"${IPKG_INSTROOT}\"\nexport pkgname=\"nemod\"\n"
	apkPostInstallBody = noScript + functions + apkEnv + "add_group_and_user\ndefault_postinst\n"
	apkPreDeinstall    = scriptHead + functions + apkEnv + "default_prerm\n"
)

// IPK is the package for OpenWrt up to 24.10.
func IPK(s *Sources, r Release, arch string, bin []byte) (*pkg.IPK, error) {
	t, err := buildTree(openwrtFiles(s, bin))
	if err != nil {
		return nil, err
	}
	return &pkg.IPK{
		Control: pkg.Control{
			{Name: "Package", Value: pkgName},
			{Name: "Version", Value: r.Versions.OpenWrt},
			{Name: "Depends", Value: openwrtDeps},
			{Name: "Source", Value: openwrtSource},
			{Name: "SourceName", Value: pkgName},
			{Name: "License", Value: license},
			{Name: "Section", Value: "net"},
			{Name: "Require-User", Value: openwrtRequireUser},
			{Name: "SourceDateEpoch", Value: strconv.FormatInt(r.Epoch, 10)},
			{Name: "Maintainer", Value: maintainer},
			{Name: "Architecture", Value: arch},
			{Name: "Installed-Size", Value: "0"},
			{Name: "Description", Value: description},
		},
		Tree:      t,
		Conffiles: []string{openwrtConffile},
		Scripts:   map[string][]byte{"postinst": []byte(ipkPostinst), "prerm": []byte(ipkPrerm)},
		Mtime:     r.Epoch,
	}, nil
}

// APK is the package for OpenWrt 25.12 and later. Like the buildroot it
// ships lib/apk/packages/nemod.{rusers,list,conffiles,conffiles_static}:
// apk itself keeps a changed /etc file (it writes the new one beside it as
// .apk-new), while OpenWrt's sysupgrade and default_postinst read these.
func APK(s *Sources, r Release, arch string, bin []byte) (*pkg.APK, error) {
	files := openwrtFiles(s, bin)
	meta := "lib/apk/packages/" + pkgName
	files = append(files, fileSpec{meta + ".rusers", 0o644, []byte(openwrtRequireUser + "\n")})
	// The list is of every file and link, made before the conffiles
	// lists are added (package-pack.mk's order).
	var list []string
	for _, f := range files {
		list = append(list, "/"+f.path)
	}
	slices.Sort(list)
	files = append(files, fileSpec{meta + ".list", 0o644, []byte(strings.Join(list, "\n") + "\n")})
	files = append(files, fileSpec{meta + ".conffiles", 0o644, []byte(openwrtConffile + "\n")})
	var static []byte
	for _, f := range files {
		if "/"+f.path == openwrtConffile {
			h := sha256.Sum256(f.data)
			static = fmt.Appendf(nil, "%s %s\n", openwrtConffile, hex.EncodeToString(h[:]))
		}
	}
	files = append(files, fileSpec{meta + ".conffiles_static", 0o644, static})
	t, err := buildTree(files)
	if err != nil {
		return nil, err
	}
	return &pkg.APK{
		Name: pkgName, Version: r.Versions.OpenWrt,
		// package-pack.mk passes the description through make's strip:
		// one line.
		Description: strings.Join(strings.Fields(description), " "),
		Arch:        arch, License: license, Origin: openwrtSource, Maintainer: maintainer,
		Depends:  strings.Split(strings.ReplaceAll(openwrtDeps, " ", ""), ","),
		Provides: []string{pkgName + "-any"},
		Scripts: map[string][]byte{
			"post-install":  []byte("#!/bin/sh\n" + apkPostInstallBody),
			"post-upgrade":  []byte("#!/bin/sh\nexport PKG_UPGRADE=1\n" + apkPostInstallBody),
			"pre-deinstall": []byte(apkPreDeinstall),
		},
		Tree: t, Mtime: r.Epoch,
	}, nil
}

var debConffiles = []string{"/etc/nemod/router.conf", "/etc/nemod/homeagent.conf", "/etc/iproute2/rt_protos.d/nemod.conf"}

// changelog is a Debian changelog entry for this build (a native package:
// the project is its own upstream).
func changelog(r Release) []byte {
	date := time.Unix(r.Epoch, 0).UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700")
	commit := r.Commit
	if commit == "" {
		commit = "an unknown commit"
	}
	return fmt.Appendf(nil, "%s (%s) unstable; urgency=medium\n\n  * Built from the nemod repository at %s.\n\n -- %s  %s\n",
		pkgName, r.Versions.Debian, commit, maintainer, date)
}

// Deb is the package for Debian and other systemd machines: the full
// binary, both roles as systemd units.
func Deb(s *Sources, r Release, arch string, bin []byte) (*pkg.Deb, error) {
	doc := "usr/share/doc/" + pkgName + "/"
	t, err := buildTree([]fileSpec{
		{"usr/sbin/nemod", 0o755, bin},
		{"lib/systemd/system/nemod-router.service", 0o644, s.get("debian/nemod-router.service")},
		{"lib/systemd/system/nemod-homeagent.service", 0o644, s.get("debian/nemod-homeagent.service")},
		{"usr/share/dbus-1/system.d/org.nemod.conf", 0o644, s.get("dbus/org.nemod.conf")},
		{"etc/nemod/router.conf", secretMode, s.get("debian/router.conf")},
		{"etc/nemod/homeagent.conf", secretMode, s.get("debian/homeagent.conf")},
		{"usr/lib/sysusers.d/nemod.conf", 0o644, s.get("debian/sysusers.conf")},
		{"etc/iproute2/rt_protos.d/nemod.conf", 0o644, s.get("common/rt_protos.conf")},
		{doc + "copyright", 0o644, s.get("debian/copyright")},
		{"usr/share/lintian/overrides/" + pkgName, 0o644, s.get("debian/lintian-overrides")},
		{doc + "changelog.gz", 0o644, pkg.Gzip(changelog(r))},
		{"usr/share/man/man8/nemod.8.gz", 0o644, pkg.Gzip(s.get("debian/nemod.8"))},
	})
	if err != nil {
		return nil, err
	}
	return &pkg.Deb{
		Control: pkg.Control{
			{Name: "Package", Value: pkgName},
			{Name: "Version", Value: r.Versions.Debian},
			{Name: "Architecture", Value: arch},
			{Name: "Maintainer", Value: maintainer},
			{Name: "Installed-Size", Value: "0"},
			{Name: "Depends", Value: "adduser, nftables"},
			{Name: "Section", Value: "net"},
			{Name: "Priority", Value: "optional"},
			{Name: "Description", Value: synopsis + "\n" + description},
		},
		Tree:      t,
		Conffiles: debConffiles,
		Scripts: map[string][]byte{
			"postinst": s.get("debian/postinst"), "prerm": s.get("debian/prerm"), "postrm": s.get("debian/postrm"),
		},
		Mtime: r.Epoch,
	}, nil
}
