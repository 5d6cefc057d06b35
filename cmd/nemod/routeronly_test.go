package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"nemod/lab"
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
	ro := deps("routeronly")
	if slices.Contains(ro, "nemod/homeagent") {
		t.Errorf("the routeronly build links nemod/homeagent")
	} else if !slices.Contains(ro, "nemod/router") {
		t.Errorf("the routeronly build lacks nemod/router: %v", ro)
	}
	// D-Bus stays out of the OpenWrt binary (ubus there); the router's
	// metrics stay in. Neither build links net/http.
	full := deps("")
	for _, p := range []string{"nemod/dbusapi", "github.com/godbus/dbus/v5"} {
		if slices.Contains(ro, p) {
			t.Errorf("the routeronly build links %s", p)
		}
		if !slices.Contains(full, p) {
			t.Errorf("the full build lacks %s", p)
		}
	}
	if !slices.Contains(ro, "nemod/metrics") {
		t.Error("the routeronly build lacks nemod/metrics")
	}
	// The cluster's etcd client (and gRPC under it) is the home agent's
	// only: the router's binary must not grow by it.
	for _, p := range []string{"nemod/cluster", "nemod/cluster/etcdstore", "go.etcd.io/etcd/client/v3", "google.golang.org/grpc"} {
		if slices.Contains(ro, p) {
			t.Errorf("the routeronly build links %s", p)
		}
	}
	for _, p := range []string{"nemod/cluster/etcdstore", "go.etcd.io/etcd/client/v3"} {
		if !slices.Contains(full, p) {
			t.Errorf("the full build lacks %s", p)
		}
	}
	if slices.Contains(ro, "net/http") {
		t.Error("the routeronly build links net/http")
	}
	// The full build has net/http only through the etcd client's gRPC:
	// no package of ours imports it (our HTTP is internal/httpd's).
	out, err := exec.Command(goTool(), "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "nemod/cmd/nemod").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && strings.HasPrefix(f[0], "nemod/") && slices.Contains(f[1:], "net/http") {
			t.Errorf("%s imports net/http", f[0])
		}
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
	// No socket is opened through a string address (internal/sock): that
	// would link net's DNS resolver, about 300 KB on mipsle, and the
	// gzip reader stays out too (netio/kernel_routeronly.go).
	for _, sym := range []string{" net.(*Resolver).lookupIPAddr", " net.(*Resolver).resolveAddrList", " compress/flate."} {
		if strings.Contains(string(syms), sym) {
			t.Errorf("the routeronly binary has%s", sym)
		}
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
	// option dbus '1' is refused at its line (setup's check, the daemon's
	// too); without it the same file is fine.
	conf := filepath.Join(t.TempDir(), "nemod")
	good := strings.Replace(lab.RouterUCI("/var/run/nemod.sock", ""), "option lifetime '600'", "option lifetime '600'\n\toption metrics_listen '[::1]:9110'", 1)
	os.WriteFile(conf, []byte(good), 0o600)
	if out, err := exec.Command(bin, "check-config", "-c", conf).CombinedOutput(); err != nil {
		t.Errorf("check-config of the lab's router with metrics: %v\n%s", err, out)
	}
	withDBus := strings.Replace(good, "option lifetime '600'", "option lifetime '600'\n\toption dbus '1'", 1)
	os.WriteFile(conf, []byte(withDBus), 0o600)
	line := strings.Count(withDBus[:strings.Index(withDBus, "option dbus")], "\n") + 1
	out, err = exec.Command(bin, "check-config", "-c", conf).CombinedOutput()
	if err == nil || !strings.Contains(string(out), fmt.Sprintf("%s:%d: option dbus: this is the router-only build", conf, line)) {
		t.Errorf("check-config of option dbus '1': %v\n%s", err, out)
	}
	// The home agent's sections are not decoded here: each one is an
	// error at its line, the first the homeagent section.
	ha := lab.HomeAgentUCI("/var/run/nemod.sock")
	os.WriteFile(conf, []byte(ha), 0o600)
	line = strings.Count(ha[:strings.Index(ha, "config homeagent")], "\n") + 1
	mr := strings.Count(ha[:strings.Index(ha, "config mobile_router")], "\n") + 1
	out, err = exec.Command(bin, "check-config", "-c", conf).CombinedOutput()
	if err == nil || !strings.Contains(string(out), fmt.Sprintf("%s:%d: section homeagent: this is the router-only build", conf, line)) ||
		!strings.Contains(string(out), fmt.Sprintf("%s:%d: section mobile_router: this is the router-only build", conf, mr)) {
		t.Errorf("check-config of the lab's home agent: %v\n%s", err, out)
	}
}
