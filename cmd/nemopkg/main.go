// Command nemopkg builds nemod's packages without outside packaging tools:
// .ipk (OpenWrt up to 24.10) and .apk (OpenWrt 25.12 and later) with the
// router-only binary, .deb (Debian) with the full one. It compiles the
// binaries itself (CGO_ENABLED=0, -trimpath, stripped) for each
// architecture, and writes the packages into -out.
//
//	nemopkg -out dist -formats ipk,apk -openwrt-arch all
//	nemopkg -out dist -formats deb -deb-arch amd64,arm64
//
// Builds are reproducible: every time stamp is SOURCE_DATE_EPOCH, or else
// the last commit's time, and the same sources give the same bytes.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "nemopkg:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("nemopkg", flag.ContinueOnError)
	out := fs.String("out", "dist", "directory the packages are written to")
	src := fs.String("src", ".", "the repository's root")
	formats := fs.String("formats", "ipk,apk,deb", "comma-separated: ipk, apk, deb")
	owArch := fs.String("openwrt-arch", "all", "OpenWrt architectures (comma-separated, or all)")
	debArch := fs.String("deb-arch", "all", "Debian architectures (comma-separated, or all)")
	version := fs.String("version", "", "upstream version X.Y.Z (default: from git describe)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	want := map[string]bool{}
	for _, f := range strings.Split(*formats, ",") {
		switch f {
		case "ipk", "apk", "deb":
			want[f] = true
		default:
			return fmt.Errorf("unknown format %q", f)
		}
	}
	sources, err := readSources(filepath.Join(*src, "packaging"))
	if err != nil {
		return err
	}
	rel, err := release(*src, *version)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "nemopkg")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	if want["ipk"] || want["apk"] {
		targets, err := selectTargets(openwrtTargets, *owArch)
		if err != nil {
			return err
		}
		for _, t := range targets {
			bin, err := compile(*src, tmp, t, "routeronly", rel.Versions.OpenWrt)
			if err != nil {
				return err
			}
			if want["ipk"] {
				p, err := IPK(sources, rel, t.Arch, bin)
				if err != nil {
					return err
				}
				if err := write(*out, p.FileName(), p.Build); err != nil {
					return err
				}
			}
			if want["apk"] {
				p, err := APK(sources, rel, t.Arch, bin)
				if err != nil {
					return err
				}
				// apk names files NAME-VERSION.apk, without the
				// architecture; a folder per architecture keeps them
				// apart.
				if err := write(filepath.Join(*out, "apk", t.Arch), p.FileName(), p.Build); err != nil {
					return err
				}
			}
		}
	}
	if want["deb"] {
		targets, err := selectTargets(debTargets, *debArch)
		if err != nil {
			return err
		}
		for _, t := range targets {
			bin, err := compile(*src, tmp, t, "", rel.Versions.Debian)
			if err != nil {
				return err
			}
			d, err := Deb(sources, rel, t.Arch, bin)
			if err != nil {
				return err
			}
			if err := write(*out, d.FileName(), d.Build); err != nil {
				return err
			}
		}
	}
	return nil
}

func write(dir, name string, build func() ([]byte, error)) error {
	b, err := build()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p+".tmp", b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return err
	}
	fmt.Printf("%s %d bytes\n", p, len(b))
	return nil
}

func goTool() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

// coldPackages are compiled without inlining in the router-only build: a
// router's flash is small, and inlining in code that runs at start, on a
// reload, per signalling message or per status request costs the binary
// about 330 KB (mipsle) and buys nothing measurable. The data plane's
// packages (tunnel, netio, header, nemo, policy) and the standard
// library's hot ones (runtime, syscall, net/netip, encoding/binary, sync)
// keep it. openwrt/Makefile passes the same list (GO_PKG_GCFLAGS).
var coldPackages = []string{
	"nemod/cmd/nemod", "nemod/config", "nemod/setup", "nemod/router", "nemod/control", "nemod/status",
	"nemod/ubus/...", "nemod/netifd/...", "nemod/owrt", "nemod/metrics", "nemod/dhcpv6pd/...", "nemod/ra/...", "nemod/dhcp4",
	"nemod/binding", "nemod/ifmon", "nemod/hostnet", "nemod/internal/...",
	"encoding/json", "fmt", "log/slog", "reflect", "flag", "text/tabwriter", "compress/...", "os/exec", "bufio", "sort",
	"github.com/vishvananda/...",
}

// coldGCFlags are the go build flags that compile coldPackages without
// inlining.
func coldGCFlags() []string {
	var out []string
	for _, p := range coldPackages {
		out = append(out, "-gcflags="+p+"=-l")
	}
	return out
}

// compile builds cmd/nemod for a target: static, without paths of this
// machine, stripped, the version stamped in.
func compile(src, tmp string, t Target, tags, version string) ([]byte, error) {
	bin := filepath.Join(tmp, "nemod-"+t.Arch+"-"+tags)
	args := []string{"build", "-trimpath", "-buildvcs=false", "-o", bin,
		"-ldflags", "-s -w -X main.version=" + version}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	if tags == "routeronly" {
		args = append(args, coldGCFlags()...)
	}
	cmd := exec.Command(goTool(), append(args, "./cmd/nemod")...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	cmd.Env = append(cmd.Env, t.Env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build for %s: %v\n%s", t.Arch, err, out)
	}
	return os.ReadFile(bin)
}

// release finds the version and the time stamp: SOURCE_DATE_EPOCH wins,
// then the last commit's time; without git (a source tarball) both must
// come from the environment or flags.
func release(src, version string) (Release, error) {
	var r Release
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = src
		b, err := cmd.Output()
		return strings.TrimSpace(string(b)), err
	}
	if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
		n, err := strconv.ParseInt(e, 10, 64)
		if err != nil || n < 0 {
			return r, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a time", e)
		}
		r.Epoch = n
	} else if ct, err := git("log", "-1", "--format=%ct"); err == nil {
		r.Epoch, _ = strconv.ParseInt(ct, 10, 64)
	} else {
		return r, errors.New("no SOURCE_DATE_EPOCH and no git history to take the time from")
	}
	r.Commit, _ = git("rev-parse", "--short=12", "HEAD")
	if version != "" {
		v, err := versionsFrom("v"+version, 0)
		if err != nil {
			return r, err
		}
		r.Versions = v
		return r, nil
	}
	describe, _ := git("describe", "--tags", "--long", "--match", "v[0-9]*")
	count := 0
	if describe == "" {
		n, err := git("rev-list", "--count", "HEAD")
		if err != nil {
			return r, errors.New("no -version and no git history to take it from")
		}
		count, _ = strconv.Atoi(n)
	}
	v, err := versionsFrom(describe, count)
	if err != nil {
		return r, err
	}
	r.Versions = v
	return r, nil
}
