// Package testenv holds the checks tests make on the machine they run on.
//
// A test that needs root or an outside tool skips with the reason on a
// developer's machine, but fails under CI (CI=true): there a missing tool is a
// broken set-up, not a reason to pass.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI, where nothing may be skipped
// for want of a tool or of privileges.
func InCI() bool {
	v := os.Getenv("CI")
	return v == "true" || v == "1"
}

// Missing skips the test, or fails it under CI, saying what is missing.
func Missing(t testing.TB, what string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is missing; CI must provide it (make deps)", what)
	}
	t.Skipf("%s is missing (run `make deps`, or as root)", what)
}

// NeedRoot requires uid 0 (network namespaces, TUN devices, raw sockets).
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "root privileges")
	}
}

// NeedTool requires each named command on PATH and returns the path of the
// first.
func NeedTool(t testing.TB, names ...string) string {
	t.Helper()
	first := ""
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			Missing(t, "the tool "+n)
			return ""
		}
		if first == "" {
			first = p
		}
	}
	return first
}
