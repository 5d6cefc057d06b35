package main

import (
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// goTool is the go command `go test` runs from (it puts its own first on
// PATH).
func goTool() string { return "go" }

// The routeronly build must not link the home agent at all, not merely
// refuse to start it: that is what makes the OpenWrt binary smaller.
func TestRouterOnlyLeavesOutTheHomeAgent(t *testing.T) {
	deps := func(tags string) []string {
		out, err := exec.Command(goTool(), "list", "-deps", "-tags", tags, "nemod/cmd/nemod").Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.Fields(string(out))
	}
	if full := deps(""); !slices.Contains(full, "nemod/homeagent") {
		t.Fatalf("the full build does not link nemod/homeagent: %v", full)
	}
	if ro := deps("routeronly"); slices.Contains(ro, "nemod/homeagent") {
		t.Errorf("the routeronly build links nemod/homeagent")
	} else if !slices.Contains(ro, "nemod/router") {
		t.Errorf("the routeronly build lacks nemod/router: %v", ro)
	}
}

func TestRouterOnlyBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "nemod")
	build := exec.Command(goTool(), "build", "-tags", "routeronly", "-ldflags", "-X main.version=9.8.7-r6", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || string(out) != "nemod 9.8.7-r6\n" {
		t.Errorf("version: %q, %v", out, err)
	}
	syms, err := exec.Command(goTool(), "tool", "nm", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(syms), " nemod/homeagent.") {
		t.Error("the routeronly binary has symbols of nemod/homeagent")
	}
	if !strings.Contains(string(syms), " nemod/router.Run") {
		t.Error("the routeronly binary has no nemod/router.Run: is the symbol check looking at the right names?")
	}
	// `nemod homeagent` is refused before it touches the configuration
	// (there is none at that path) or the network.
	err = exec.Command(bin, "homeagent", "-c", filepath.Join(t.TempDir(), "absent")).Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("homeagent in the routeronly build: %v, want exit status 1", err)
	}
}
