package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"nemod/internal/pkg"
	"nemod/internal/testenv"
)

const testEpoch = 1764547200 // 2025-12-01

// built holds one build of the packages the tests read: OpenWrt for
// mipsel_24kc and x86_64, Debian for amd64, made twice to compare.
type built struct {
	dir, again string
	v          Versions
	err        error
}

var (
	buildOnce sync.Once
	theBuild  built
)

func packages(t *testing.T) built {
	t.Helper()
	if testing.Short() {
		t.Skip("builds nemod for three targets")
	}
	buildOnce.Do(func() {
		tmp, err := os.MkdirTemp("", "nemopkg-test")
		if err != nil {
			theBuild.err = err
			return
		}
		theBuild.dir, theBuild.again = filepath.Join(tmp, "a"), filepath.Join(tmp, "b")
		theBuild.v, _ = versionsFrom("v1.2.3", 0)
		os.Setenv("SOURCE_DATE_EPOCH", strconv.Itoa(testEpoch))
		for _, d := range []string{theBuild.dir, theBuild.again} {
			if err := run([]string{"-src", "../..", "-out", d, "-version", "1.2.3",
				"-openwrt-arch", "mipsel_24kc,x86_64", "-deb-arch", "amd64"}); err != nil {
				theBuild.err = err
				return
			}
		}
	})
	if theBuild.err != nil {
		t.Fatal(theBuild.err)
	}
	return theBuild
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type member struct {
	h    *tar.Header
	data []byte
}

// untar reads a tar, gunzipping first if it is gzip'd, keeping the order.
func untar(t *testing.T, b []byte) ([]string, map[string]member) {
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
	var names []string
	m := map[string]member{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names, m
		}
		if err != nil {
			t.Fatal(err)
		}
		d, _ := io.ReadAll(tr)
		names = append(names, h.Name)
		m[h.Name] = member{h, d}
	}
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	z, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	d, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func source(t *testing.T, name string) []byte {
	return readFile(t, filepath.Join("../../packaging", name))
}

// The OpenWrt package's files: path, mode, source (nil: the binary).
var openwrtWant = []struct {
	path string
	mode int64
	src  string
}{
	{"usr/sbin/nemod", 0o755, ""},
	{"etc/init.d/nemod", 0o755, "openwrt/nemod.init"},
	{"etc/config/nemod", 0o600, "openwrt/nemod.config"},
	{"etc/uci-defaults/90-nemod", 0o755, "openwrt/90-nemod"},
	{"lib/netifd/proto/nemo.sh", 0o755, "openwrt/nemo.sh"},
	{"usr/share/acl.d/nemod.json", 0o644, "openwrt/acl.json"},
	{"usr/share/rpcd/acl.d/nemod.json", 0o644, "openwrt/rpcd-acl.json"},
	{"etc/iproute2/rt_protos.d/nemod.conf", 0o644, "common/rt_protos.conf"},
}

// dirsOf lists every directory above the paths, as tar names ("./x/").
func dirsOf(paths []string) []string {
	set := map[string]bool{"./": true}
	for _, p := range paths {
		for d := filepath.Dir(p); d != "."; d = filepath.Dir(d) {
			set["./"+d+"/"] = true
		}
	}
	var out []string
	for d := range set {
		out = append(out, d)
	}
	return out
}

func ipkPath(b built, dir, arch string) string {
	return filepath.Join(dir, "nemod_"+b.v.OpenWrt+"_"+arch+".ipk")
}

func TestIPK(t *testing.T) {
	b := packages(t)
	for _, arch := range []string{"mipsel_24kc", "x86_64"} {
		raw := readFile(t, ipkPath(b, b.dir, arch))
		if !bytes.Equal(raw, readFile(t, ipkPath(b, b.again, arch))) {
			t.Errorf("%s: two builds differ", arch)
		}
		if arch == "mipsel_24kc" && len(raw) > 2_500_000 {
			t.Errorf("%s: the ipk is %d bytes, over the 2.5 MB budget", arch, len(raw))
		}
		// The outer archive: a gzip'd tar (not ar), ipkg-build's order.
		if raw[0] != 0x1f || raw[1] != 0x8b {
			t.Fatalf("%s: not gzip", arch)
		}
		names, outer := untar(t, raw)
		if got := strings.Join(names, " "); got != "./debian-binary ./data.tar.gz ./control.tar.gz" {
			t.Fatalf("%s: outer members %s", arch, got)
		}
		if string(outer["./debian-binary"].data) != "2.0\n" {
			t.Errorf("debian-binary %q", outer["./debian-binary"].data)
		}
		dataTar := gunzip(t, outer["./data.tar.gz"].data)
		dnames, data := untar(t, dataTar)
		var paths []string
		for _, w := range openwrtWant {
			paths = append(paths, w.path)
		}
		var want []string
		for _, p := range paths {
			want = append(want, "./"+p)
		}
		want = append(want, dirsOf(paths)...)
		slices.Sort(want)
		got := slices.Clone(dnames)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: data.tar holds\n%v\nwant\n%v", arch, got, want)
		}
		for _, n := range dnames {
			h := data[n].h
			if h.Uid != 0 || h.Gid != 0 || h.ModTime.Unix() != testEpoch || h.Format != tar.FormatGNU {
				t.Errorf("%s: %s: owner %d:%d mtime %d format %v", arch, n, h.Uid, h.Gid, h.ModTime.Unix(), h.Format)
			}
			if h.Typeflag == tar.TypeDir && h.Mode != 0o755 {
				t.Errorf("%s: directory %s mode %o", arch, n, h.Mode)
			}
		}
		for _, w := range openwrtWant {
			m := data["./"+w.path]
			if m.h.Mode != w.mode || m.h.Typeflag != tar.TypeReg {
				t.Errorf("%s: %s mode %o type %c, want %o", arch, w.path, m.h.Mode, m.h.Typeflag, w.mode)
			}
			if w.src != "" && !bytes.Equal(m.data, source(t, w.src)) {
				t.Errorf("%s: %s is not packaging/%s", arch, w.path, w.src)
			}
		}
		if bin := data["./usr/sbin/nemod"].data; len(bin) > 6_000_000 || !bytes.HasPrefix(bin, []byte("\x7fELF")) {
			t.Errorf("%s: the binary: %d bytes", arch, len(bin))
		}

		cnames, control := untar(t, outer["./control.tar.gz"].data)
		if got := strings.Join(cnames, " "); got != "./ ./conffiles ./control ./postinst ./prerm" {
			t.Errorf("%s: control members %s", arch, got)
		}
		for n, mode := range map[string]int64{"./conffiles": 0o644, "./control": 0o644, "./postinst": 0o755, "./prerm": 0o755} {
			if control[n].h.Mode != mode {
				t.Errorf("%s: %s mode %o", arch, n, control[n].h.Mode)
			}
		}
		if string(control["./conffiles"].data) != "/etc/config/nemod\n" {
			t.Errorf("conffiles %q", control["./conffiles"].data)
		}
		if string(control["./postinst"].data) != ipkPostinst || string(control["./prerm"].data) != ipkPrerm {
			t.Errorf("maintainer scripts:\n%s\n%s", control["./postinst"].data, control["./prerm"].data)
		}
		ctl, err := pkg.ParseControl(control["./control"].data)
		if err != nil {
			t.Fatal(err)
		}
		var order []string
		for _, f := range ctl {
			order = append(order, f.Name)
		}
		if got := strings.Join(order, " "); got != "Package Version Depends Source SourceName Section Require-User SourceDateEpoch Maintainer Architecture Installed-Size Description" {
			t.Errorf("control fields: %s", got)
		}
		for f, v := range map[string]string{
			"Package": "nemod", "Version": "1.2.3-r1", "Depends": "libc, kmod-tun, nftables",
			"Architecture": arch, "Installed-Size": strconv.Itoa(len(dataTar)),
			"SourceDateEpoch": strconv.Itoa(testEpoch), "Section": "net", "Require-User": ":nemod",
		} {
			if ctl.Get(f) != v {
				t.Errorf("%s: %s: %q, want %q", arch, f, ctl.Get(f), v)
			}
		}
		if !bytes.Contains(control["./control"].data, []byte("\nDescription:  nemod keeps")) {
			t.Errorf("%s: Description not as package-pack.mk writes it", arch)
		}
	}
}

func TestAPK(t *testing.T) {
	b := packages(t)
	for _, arch := range []string{"mipsel_24kc", "x86_64"} {
		rel := filepath.Join("apk", arch, "nemod-"+b.v.OpenWrt+".apk")
		raw := readFile(t, filepath.Join(b.dir, rel))
		if !bytes.Equal(raw, readFile(t, filepath.Join(b.again, rel))) {
			t.Errorf("%s: two builds differ", arch)
		}
		if !bytes.HasPrefix(raw, []byte("ADBd")) {
			t.Fatalf("%s: does not start ADBd", arch)
		}
		f, err := pkg.ReadADB(raw)
		if err != nil {
			t.Fatal(err)
		}
		p, err := f.Package()
		if err != nil {
			t.Fatal(err)
		}
		if p.Name != "nemod" || p.Version != "1.2.3-r1" || !pkg.ValidAPKVersion(p.Version) || p.Arch != arch ||
			p.Origin != "package/nemod" || len(p.Hashes) != 20 {
			t.Errorf("%s: info %+v", arch, p)
		}
		if !slices.Equal(p.Depends, []string{"kmod-tun", "libc", "nftables"}) || !slices.Equal(p.Provides, []string{"nemod-any"}) {
			t.Errorf("%s: depends %v provides %v", arch, p.Depends, p.Provides)
		}
		if len(p.Scripts) != 3 || !strings.Contains(p.Scripts["post-install"], "\ndefault_postinst\n") ||
			!strings.Contains(p.Scripts["post-upgrade"], "export PKG_UPGRADE=1\n") ||
			!strings.Contains(p.Scripts["pre-deinstall"], "\ndefault_prerm\n") {
			t.Errorf("%s: scripts %v", arch, p.Scripts)
		}
		files := map[string]pkg.APKFileInfo{}
		var regular []string
		for _, fi := range p.Files {
			if fi.User != "root" || fi.Group != "root" {
				t.Errorf("%s: %s owned by %s:%s", arch, fi.Path, fi.User, fi.Group)
			}
			if fi.Dir {
				if fi.Mode != 0o755 {
					t.Errorf("%s: directory %s mode %o", arch, fi.Path, fi.Mode)
				}
				continue
			}
			if fi.Mtime != testEpoch {
				t.Errorf("%s: %s mtime %d", arch, fi.Path, fi.Mtime)
			}
			files[fi.Path] = fi
			regular = append(regular, fi.Path)
		}
		meta := "lib/apk/packages/nemod."
		wantPaths := []string{meta + "conffiles", meta + "conffiles_static", meta + "list", meta + "rusers"}
		for _, w := range openwrtWant {
			wantPaths = append(wantPaths, w.path)
			fi := files[w.path]
			if int64(fi.Mode) != w.mode {
				t.Errorf("%s: %s mode %o, want %o", arch, w.path, fi.Mode, w.mode)
			}
			if w.src != "" && !bytes.Equal(fi.Content, source(t, w.src)) {
				t.Errorf("%s: %s is not packaging/%s", arch, w.path, w.src)
			}
		}
		slices.Sort(wantPaths)
		slices.Sort(regular)
		if !slices.Equal(regular, wantPaths) {
			t.Errorf("%s: files\n%v\nwant\n%v", arch, regular, wantPaths)
		}
		conf := sha256.Sum256(files["etc/config/nemod"].Content)
		if got := string(files[meta+"conffiles_static"].Content); got != "/etc/config/nemod "+hex.EncodeToString(conf[:])+"\n" {
			t.Errorf("%s: conffiles_static %q", arch, got)
		}
		if string(files[meta+"conffiles"].Content) != "/etc/config/nemod\n" || string(files[meta+"rusers"].Content) != ":nemod\n" {
			t.Errorf("%s: conffiles %q rusers %q", arch, files[meta+"conffiles"].Content, files[meta+"rusers"].Content)
		}
		list := strings.Fields(string(files[meta+"list"].Content))
		if !slices.Contains(list, "/etc/init.d/nemod") || !slices.Contains(list, "/etc/uci-defaults/90-nemod") || !slices.IsSorted(list) {
			t.Errorf("%s: list %v", arch, list)
		}
		// The same binary as the ipk's.
		_, outer := untar(t, readFile(t, ipkPath(b, b.dir, arch)))
		_, data := untar(t, outer["./data.tar.gz"].data)
		if !bytes.Equal(data["./usr/sbin/nemod"].data, files["usr/sbin/nemod"].Content) {
			t.Errorf("%s: the apk's binary is not the ipk's", arch)
		}
	}
}

// extract writes one file of the ipk's data to a temporary path.
func extractIPK(t *testing.T, ipk, path string, mode os.FileMode) string {
	t.Helper()
	_, outer := untar(t, readFile(t, ipk))
	_, data := untar(t, outer["./data.tar.gz"].data)
	m, ok := data["./"+path]
	if !ok {
		t.Fatalf("%s has no %s", ipk, path)
	}
	p := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(p, m.data, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// The router's binary runs on a MIPS 24Kc (no FPU, hence softfloat).
func TestMipselBinaryRunsOn24Kc(t *testing.T) {
	b := packages(t)
	qemu := testenv.NeedTool(t, "qemu-mipsel-static")
	bin := extractIPK(t, ipkPath(b, b.dir, "mipsel_24kc"), "usr/sbin/nemod", 0o755)
	out, err := exec.Command(qemu, "-cpu", "24Kc", bin, "version").Output()
	if err != nil || string(out) != "nemod 1.2.3-r1\n" {
		t.Errorf("nemod version under qemu: %q, %v", out, err)
	}
	// The router-only build has no home agent.
	err = exec.Command(qemu, "-cpu", "24Kc", bin, "homeagent", "-c", "/nonexistent").Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("homeagent: %v, want exit status 1", err)
	}
	// The configuration the package ships is one this binary accepts.
	conf := extractIPK(t, ipkPath(b, b.dir, "mipsel_24kc"), "etc/config/nemod", 0o600)
	if out, err := exec.Command(qemu, "-cpu", "24Kc", bin, "check-config", "-c", conf).CombinedOutput(); err != nil {
		t.Errorf("check-config of /etc/config/nemod: %v\n%s", err, out)
	}
}

// Every shell script the packages ship or run, from the packages
// themselves.
func packagedScripts(t *testing.T, b built) map[string][]byte {
	t.Helper()
	scripts := map[string][]byte{}
	_, outer := untar(t, readFile(t, ipkPath(b, b.dir, "mipsel_24kc")))
	_, data := untar(t, outer["./data.tar.gz"].data)
	for _, p := range []string{"etc/init.d/nemod", "etc/uci-defaults/90-nemod", "lib/netifd/proto/nemo.sh"} {
		scripts[p] = data["./"+p].data
	}
	_, control := untar(t, outer["./control.tar.gz"].data)
	scripts["ipk postinst"], scripts["ipk prerm"] = control["./postinst"].data, control["./prerm"].data
	f, err := pkg.ReadADB(readFile(t, filepath.Join(b.dir, "apk", "mipsel_24kc", "nemod-"+b.v.OpenWrt+".apk")))
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.Package()
	if err != nil {
		t.Fatal(err)
	}
	for n, s := range p.Scripts {
		scripts["apk "+n] = []byte(s)
	}
	members, err := pkg.ReadAr(readFile(t, filepath.Join(b.dir, "nemod_"+b.v.Debian+"_amd64.deb")))
	if err != nil {
		t.Fatal(err)
	}
	_, dc := untar(t, members[1].Data)
	for _, n := range []string{"postinst", "prerm", "postrm"} {
		scripts["deb "+n] = dc["./"+n].data
	}
	return scripts
}

func TestShellScripts(t *testing.T) {
	b := packages(t)
	shellcheck := testenv.NeedTool(t, "shellcheck")
	dir := t.TempDir()
	for name, s := range packagedScripts(t, b) {
		p := filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(name))
		if err := os.WriteFile(p, s, 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("sh", "-n", p).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v\n%s", name, err, out)
		}
		// -s sh: POSIX sh, what busybox ash runs without bashisms.
		if out, err := exec.Command(shellcheck, "-s", "sh", p).CombinedOutput(); err != nil {
			t.Errorf("shellcheck %s: %v\n%s", name, err, out)
		}
	}
}

// procdStubs stand in for OpenWrt's rc.common, functions.sh and procd.sh,
// which Debian lacks: the config_* functions serve the uplink sections of
// NEMOD_TEST_UPLINKS (NAME=DEVICE words, DEVICE empty for none), the
// procd_* functions print their call, one line each.
const procdStubs = `
config_load() { [ "$1" = nemod ] || echo "config_load $1"; }
config_foreach() {
	for s in $NEMOD_TEST_UPLINKS; do
		[ "$2" = uplink ] && "$1" "${s%%=*}"
	done
}
config_get() {
	for s in $NEMOD_TEST_UPLINKS; do
		[ "${s%%=*}" = "$2" ] && [ "$3" = device ] && eval "$1=\${s#*=}"
	done
}
procd_open_instance() { echo "procd_open_instance $*"; }
procd_set_param() { echo "procd_set_param $*"; }
procd_close_instance() { echo "procd_close_instance $*"; }
procd_add_reload_trigger() { echo "procd_add_reload_trigger $*"; }
`

// The init script's start_service and service_triggers make the procd
// calls the service needs: the right command, respawn, the file and the
// uplinks' devices to watch, SIGHUP to reload, output to logd.
func TestInitScriptProcdCalls(t *testing.T) {
	b := packages(t)
	sh := testenv.NeedTool(t, "busybox")
	init := packagedScripts(t, b)["etc/init.d/nemod"]
	script := filepath.Join(t.TempDir(), "run.sh")
	if err := os.WriteFile(script, []byte(procdStubs+string(init)+"\nstart_service\nservice_triggers\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ uplinks, netdev string }{
		// spare, like an uplink with option interface, has no device.
		{"wifi=phy0-sta0 cell=wwan0 spare=", "procd_set_param netdev phy0-sta0 wwan0\n"},
		{"", ""},
	} {
		cmd := exec.Command(sh, "sh", script)
		cmd.Env = append(os.Environ(), "NEMOD_TEST_UPLINKS="+tc.uplinks)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		want := "procd_open_instance \n" +
			"procd_set_param command /usr/sbin/nemod router -c /etc/config/nemod\n" +
			"procd_set_param respawn\n" +
			"procd_set_param file /etc/config/nemod\n" +
			"procd_set_param reload_signal HUP\n" +
			tc.netdev +
			"procd_set_param stdout 1\n" +
			"procd_set_param stderr 1\n" +
			"procd_close_instance \n" +
			"procd_add_reload_trigger nemod\n"
		if string(out) != want {
			t.Errorf("uplinks %q: procd calls\n%s\nwant\n%s", tc.uplinks, out, want)
		}
	}
	// The variables rc.common reads.
	for _, v := range []string{"\nUSE_PROCD=1\n", "\nSTART=95\n", "\nSTOP=10\n"} {
		if !bytes.Contains(init, []byte(v)) {
			t.Errorf("init script lacks %q", strings.TrimSpace(v))
		}
	}
}

func debPath(b built, dir string) string {
	return filepath.Join(dir, "nemod_"+b.v.Debian+"_amd64.deb")
}

func TestDebLintian(t *testing.T) {
	b := packages(t)
	lintian := testenv.NeedTool(t, "lintian")
	if !bytes.Equal(readFile(t, debPath(b, b.dir)), readFile(t, debPath(b, b.again))) {
		t.Error("two builds differ")
	}
	// No error, no warning (the overrides the package ships say why).
	out, err := exec.Command(lintian, "--fail-on", "error,warning", debPath(b, b.dir)).CombinedOutput()
	if err != nil {
		t.Errorf("lintian: %v\n%s", err, out)
	}
}

// dpkg installs, removes and purges the package in a root of its own
// (dpkgRoot).
func TestDebInstallRemovePurge(t *testing.T) {
	b := packages(t)
	root, do := dpkgRoot(t)
	status := func() string {
		out, _ := exec.Command("dpkg-query", "--root="+root, "-W", "-f=${db:Status-Abbrev}", "nemod").Output()
		return strings.TrimSpace(string(out))
	}
	mode := func(p string) os.FileMode {
		fi, err := os.Stat(filepath.Join(root, p))
		if err != nil {
			return 0
		}
		return fi.Mode()
	}
	do("-i", debPath(b, b.dir))
	if s := status(); s != "ii" {
		t.Fatalf("status after install %q", s)
	}
	for p, m := range map[string]os.FileMode{
		"usr/sbin/nemod": 0o755, "etc/nemod/router.conf": 0o600, "etc/nemod/homeagent.conf": 0o600,
		"lib/systemd/system/nemod-router.service": 0o644, "lib/systemd/system/nemod-homeagent.service": 0o644,
		"usr/share/dbus-1/system.d/org.nemod.conf": 0o644, "usr/lib/sysusers.d/nemod.conf": 0o644,
		"etc/iproute2/rt_protos.d/nemod.conf": 0o644, "usr/share/doc/nemod/copyright": 0o644,
		"usr/share/doc/nemod/changelog.gz": 0o644, "usr/share/man/man8/nemod.8.gz": 0o644,
	} {
		if got := mode(p); got != m {
			t.Errorf("%s: mode %v, want %v", p, got, m)
		}
	}
	if !regexp.MustCompile(`(?m)^nemod:x:[0-9]+:`).Match(readFile(t, filepath.Join(root, "etc/group"))) {
		t.Error("postinst did not create group nemod")
	}
	if got := readFile(t, filepath.Join(root, "etc/iproute2/rt_protos.d/nemod.conf")); string(got) != "135\tnemod\n" {
		t.Errorf("rt_protos.d: %q", got)
	}
	// A changed conffile survives removal; purge takes it.
	os.WriteFile(filepath.Join(root, "etc/nemod/router.conf"), []byte("# mine\n"), 0o600)
	do("-r", "nemod")
	if s := status(); s != "rc" {
		t.Errorf("status after remove %q", s)
	}
	if mode("usr/sbin/nemod") != 0 || mode("lib/systemd/system/nemod-router.service") != 0 {
		t.Error("remove left the binary or a unit")
	}
	if string(readFile(t, filepath.Join(root, "etc/nemod/router.conf"))) != "# mine\n" {
		t.Error("remove did not keep the changed conffile")
	}
	os.MkdirAll(filepath.Join(root, "var/lib/nemod"), 0o750)
	do("-P", "nemod")
	if s := status(); s != "" && s != "un" && s != "pn" {
		t.Errorf("status after purge %q", s)
	}
	for _, p := range []string{"etc/nemod/router.conf", "etc/nemod", "var/lib/nemod"} {
		if mode(p) != 0 {
			t.Errorf("purge left %s", p)
		}
	}
}

// systemd-analyze verify checks both units as systemd would load them;
// it exits 0 even on a bad setting, reporting it as a line naming the
// unit, so the test wants no such line. ExecStart points at a copy of the
// package's binary (the unit is otherwise as shipped), since verify
// insists the program exists.
func TestSystemdUnitsVerify(t *testing.T) {
	b := packages(t)
	sa := testenv.NeedTool(t, "systemd-analyze")
	members, err := pkg.ReadAr(readFile(t, debPath(b, b.dir)))
	if err != nil {
		t.Fatal(err)
	}
	_, data := untar(t, members[2].Data)
	dir := t.TempDir()
	bin := filepath.Join(dir, "nemod")
	os.WriteFile(bin, data["./usr/sbin/nemod"].data, 0o755)
	verify := func(name string, unit []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, bytes.ReplaceAll(unit, []byte("/usr/sbin/nemod"), []byte(bin)), 0o644)
		out, err := exec.Command(sa, "verify", "--man=no", p).CombinedOutput()
		if err != nil {
			t.Errorf("verify %s: %v\n%s", name, err, out)
		}
		var ours []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, name) {
				ours = append(ours, l)
			}
		}
		return strings.Join(ours, "\n")
	}
	for _, u := range []string{"nemod-router.service", "nemod-homeagent.service"} {
		unit := data["./lib/systemd/system/"+u].data
		if got := verify(u, unit); got != "" {
			t.Errorf("%s:\n%s", u, got)
		}
		// The check can fail: a misspelt setting is reported.
		bad := bytes.Replace(unit, []byte("ProtectSystem=strict"), []byte("ProtectSystem=sometimes"), 1)
		if got := verify("bad-"+u, bad); got == "" {
			t.Errorf("verify found nothing wrong with ProtectSystem=sometimes in %s", u)
		}
		// systemd's own exposure score: the sandboxing stays where it is
		// (2.5 of 10 when this was written).
		out, _ := exec.Command(sa, "security", "--offline=yes", filepath.Join(dir, u)).CombinedOutput()
		m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("security: no score in\n%s", out)
		}
		if score, _ := strconv.ParseFloat(string(m[1]), 64); score > 3.0 {
			t.Errorf("%s: exposure %.1f, over 3.0", u, score)
		}
	}
}

// The configuration files the Debian package ships are valid for the
// full binary it ships.
func TestDebConfigsAreValid(t *testing.T) {
	b := packages(t)
	members, err := pkg.ReadAr(readFile(t, debPath(b, b.dir)))
	if err != nil {
		t.Fatal(err)
	}
	_, data := untar(t, members[2].Data)
	dir := t.TempDir()
	bin := filepath.Join(dir, "nemod")
	os.WriteFile(bin, data["./usr/sbin/nemod"].data, 0o755)
	out, err := exec.Command(bin, "version").Output()
	if err != nil || string(out) != "nemod 1.2.3\n" {
		t.Errorf("version %q %v", out, err)
	}
	for _, c := range []string{"etc/nemod/router.conf", "etc/nemod/homeagent.conf"} {
		p := filepath.Join(dir, filepath.Base(c))
		os.WriteFile(p, data["./"+c].data, 0o600)
		if out, err := exec.Command(bin, "check-config", "-c", p).CombinedOutput(); err != nil {
			t.Errorf("check-config %s: %v\n%s", c, err, out)
		}
	}
}

func TestVersions(t *testing.T) {
	for _, tc := range []struct {
		describe string
		commits  int
		want     Versions
	}{
		{"v1.2.3-0-gabcdef0", 0, Versions{"1.2.3", "1.2.3-r1", "1.2.3"}},
		{"v1.2.3-7-gabcdef0", 0, Versions{"1.2.3+git7", "1.2.3_git7-r1", "1.2.3+git7"}},
		{"", 40, Versions{"0.1.0+git40", "0.1.0_git40-r1", "0.1.0+git40"}},
	} {
		got, err := versionsFrom(tc.describe, tc.commits)
		if err != nil || got != tc.want {
			t.Errorf("versionsFrom(%q, %d) = %+v, %v", tc.describe, tc.commits, got, err)
		}
		if !pkg.ValidAPKVersion(got.OpenWrt) {
			t.Errorf("apk refuses %s", got.OpenWrt)
		}
	}
	if _, err := versionsFrom("release-7", 0); err == nil {
		t.Error("a non-version tag was accepted")
	}
}

// openwrt/Makefile (the SDK's build) installs the same files, from the
// same sources, with the same modes, as nemopkg's packages.
func TestOpenWrtMakefileInstallsTheSameFiles(t *testing.T) {
	mk := string(readFile(t, "../../openwrt/Makefile"))
	re := regexp.MustCompile(`\$\(INSTALL_(BIN|CONF|DATA)\) \$\(PKG_BUILD_DIR\)/packaging/(\S+) \$\(1\)/(\S+)`)
	modes := map[string]int64{"BIN": 0o755, "CONF": 0o600, "DATA": 0o644}
	got := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(mk, -1) {
		got[m[3]] = m[2] + " " + strconv.FormatInt(modes[m[1]], 8)
	}
	if !strings.Contains(mk, "GoPackage/Package/Install/Bin") || !strings.Contains(mk, "GO_PKG_INSTALL_BIN_PATH:=/usr/sbin") ||
		!strings.Contains(mk, "GO_PKG_TAGS:=routeronly") || !strings.Contains(mk, "GO_PKG_BUILD_PKG:=nemod/cmd/nemod") {
		t.Error("the Makefile does not build and install the routeronly cmd/nemod to /usr/sbin")
	}
	want := map[string]string{}
	for _, w := range openwrtWant {
		if w.src != "" {
			want[w.path] = w.src + " " + strconv.FormatInt(w.mode, 8)
		}
	}
	if len(got) != len(want) {
		t.Errorf("the Makefile installs %v, nemopkg %v", got, want)
	}
	for p, v := range want {
		if got[p] != v {
			t.Errorf("%s: Makefile %q, nemopkg %q", p, got[p], v)
		}
	}
}

// TestColdPackagesInFeedMakefile: the feed's Makefile compiles the same
// packages without inlining as make package does.
func TestColdPackagesInFeedMakefile(t *testing.T) {
	mk, err := os.ReadFile("../../openwrt/Makefile")
	if err != nil {
		t.Fatal(err)
	}
	_, list, _ := strings.Cut(string(mk), "NEMOD_COLD:=")
	list, _, _ = strings.Cut(list, "\nGO_PKG_BUILD_VARS")
	got := strings.Fields(strings.ReplaceAll(list, "\\", " "))
	if !slices.Equal(got, coldPackages) {
		t.Errorf("openwrt/Makefile's NEMOD_COLD %q, cmd/nemopkg's coldPackages %q", got, coldPackages)
	}
}
