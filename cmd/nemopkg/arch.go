package main

import (
	"fmt"
	"strings"
)

// Target is one architecture a package is built for: its name in the
// package and how Go builds for it.
type Target struct {
	Arch string   // the package's Architecture (OpenWrt's ARCH_PACKAGES, Debian's)
	Env  []string // GOOS, GOARCH and the CPU variables
}

// OpenWrt package architectures, with the Go settings OpenWrt's
// golang-values.mk derives for them: MIPS without an FPU (the 24Kc of
// ath79 and ramips routers) needs softfloat, the Cortex-A7 with NEON and
// VFPv4 is GOARM=7, both arm64 targets are plain ARMv8.0, x86_64 is v1.
var openwrtTargets = []Target{
	{"mips_24kc", []string{"GOOS=linux", "GOARCH=mips", "GOMIPS=softfloat"}},
	{"mipsel_24kc", []string{"GOOS=linux", "GOARCH=mipsle", "GOMIPS=softfloat"}},
	{"arm_cortex-a7_neon-vfpv4", []string{"GOOS=linux", "GOARCH=arm", "GOARM=7"}},
	{"aarch64_cortex-a53", []string{"GOOS=linux", "GOARCH=arm64", "GOARM64=v8.0"}},
	{"aarch64_generic", []string{"GOOS=linux", "GOARCH=arm64", "GOARM64=v8.0"}},
	{"x86_64", []string{"GOOS=linux", "GOARCH=amd64", "GOAMD64=v1"}},
}

// Debian architectures the .deb is built for.
var debTargets = []Target{
	{"amd64", []string{"GOOS=linux", "GOARCH=amd64", "GOAMD64=v1"}},
	{"arm64", []string{"GOOS=linux", "GOARCH=arm64", "GOARM64=v8.0"}},
}

// selectTargets picks the named targets ("all" for every one).
func selectTargets(from []Target, names string) ([]Target, error) {
	if names == "all" {
		return from, nil
	}
	var out []Target
	for _, n := range strings.Split(names, ",") {
		found := false
		for _, t := range from {
			if t.Arch == n {
				out = append(out, t)
				found = true
			}
		}
		if !found {
			var known []string
			for _, t := range from {
				known = append(known, t.Arch)
			}
			return nil, fmt.Errorf("unknown architecture %q (known: %s)", n, strings.Join(known, ", "))
		}
	}
	return out, nil
}
