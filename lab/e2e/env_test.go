// Package e2e holds the end-to-end tests: the real nemod binary, built with
// the race detector, running as home agent and mobile router in the
// namespace lab of package lab.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"nemod/control"
	"nemod/internal/testenv"
	"nemod/lab"
	"nemod/status"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// nemodBinary builds cmd/nemod once per test run, with -race so that the
// daemons run under the race detector in every end-to-end test.
func nemodBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nemod-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath, buildErr = lab.Build(context.Background(), dir, true)
	})
	if buildErr != nil {
		t.Fatalf("building nemod: %v", buildErr)
	}
	return binPath
}

// env is a lab with a home agent and a mobile router.
type env struct {
	t      *testing.T
	lab    *lab.Lab
	bin    string
	ha, mr *lab.Proc
	haConf string
	mrConf string
	haSock string
	mrSock string
	// wifiEncap is the Wi-Fi uplink's encap option, want the router's
	// states once both uplinks are registered.
	wifiEncap, want string
}

// The router's states once registered: with encap 'auto' between two
// nemod daemons the Wi-Fi negotiates UDP over IPv6; with 'ipv6' it is
// IPv6-in-IPv6.
const (
	defaultStates = "wifi=registered/udp6 cell=registered/udp4"
	nativeStates  = "wifi=registered/ipv6 cell=registered/udp4"
)

// routerUCI is car1's configuration with extra, for this env's Wi-Fi
// encapsulation.
func (e *env) routerUCI(extra string) string { return lab.RouterUCIEncap(e.mrSock, e.wifiEncap, extra) }

// nativeWifi configures the Wi-Fi uplink for IPv6-in-IPv6 (encap 'ipv6'),
// with extra, for the tests of what the native path does.
func (e *env) nativeWifi(extra string) {
	e.wifiEncap, e.want = "ipv6", nativeStates
	e.mrConf = e.write("mr.uci", e.routerUCI(extra))
}

// newEnv builds a lab (no daemons yet).
func newEnv(t *testing.T) *env {
	t.Helper()
	return newFleetEnv(t, lab.FleetOptions{})
}

// newFleetEnv builds a lab with the fleet options (fleet_test.go).
func newFleetEnv(t *testing.T, fleet lab.FleetOptions) *env {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "ip", "nft", "radvd", "dumpcap", "tshark", "conntrack", "ping")
	bin := nemodBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := lab.New(ctx, lab.Options{Logf: t.Logf, Fleet: fleet})
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	e := &env{t: t, lab: l, bin: bin, wifiEncap: "auto", want: defaultStates}
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range []*lab.Proc{e.ha, e.mr} {
				if p != nil {
					if b, err := os.ReadFile(p.LogPath()); err == nil {
						t.Logf("--- %s ---\n%s", filepath.Base(p.LogPath()), tailLines(string(b), 60))
					}
				}
			}
		}
		l.Close()
	})
	e.haSock = filepath.Join(l.Dir(), "ha.sock")
	e.mrSock = filepath.Join(l.Dir(), "mr.sock")
	e.haConf = e.write("ha.uci", lab.HomeAgentUCI(e.haSock))
	e.mrConf = e.write("mr.uci", lab.RouterUCI(e.mrSock, ""))
	return e
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (e *env) write(name, content string) string {
	p := filepath.Join(e.lab.Dir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) startHA() {
	e.t.Helper()
	p, err := e.lab.Start(lab.HA, "homeagent", e.bin, "homeagent", "-c", e.haConf)
	if err != nil {
		e.t.Fatal(err)
	}
	e.ha = p
	e.waitSocket(e.haSock)
}

func (e *env) startMR() {
	e.t.Helper()
	p, err := e.lab.Start(lab.MR, "router", e.bin, "router", "-c", e.mrConf)
	if err != nil {
		e.t.Fatal(err)
	}
	e.mr = p
	e.waitSocket(e.mrSock)
}

// waitSocket waits until the daemon answers on its control socket: the
// socket file exists a moment before the daemon listens on it (bind, then
// listen), and a status asked in between is refused.
func (e *env) waitSocket(path string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		// Answering, not merely there: the file exists from bind(2) on,
		// before listen(2), and a loaded machine may sit in between.
		var s map[string]any
		if ctlStatus(path, &s) == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("daemon never answered on %s", path)
}

// status asks a daemon for its status straight through its control socket:
// a Unix socket is reachable from any namespace, and polling this way takes
// well under a millisecond.
func ctlStatus(sock string, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return control.Do(ctx, sock, "status", nil, out)
}

// runCtl runs the `nemod ctl` command in a role's namespace, as a user
// would, and returns its output.
func (e *env) runCtl(role, sock string, out *string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := e.lab.Run(ctx, role, append([]string{e.bin, "ctl", "-s", sock}, args...)...)
	*out = res
	return err
}

func (e *env) mrStatus() status.Router {
	e.t.Helper()
	var s status.Router
	if err := ctlStatus(e.mrSock, &s); err != nil {
		e.t.Fatalf("router status: %v", err)
	}
	return s
}

func (e *env) haStatus() status.HomeAgent {
	e.t.Helper()
	var s status.HomeAgent
	if err := ctlStatus(e.haSock, &s); err != nil {
		e.t.Fatalf("home agent status: %v", err)
	}
	return s
}

// haBindings returns car1's bindings at the home agent, by BID, as
// "encap coa".
func (e *env) haBindings() map[uint16]string {
	m := map[uint16]string{}
	for _, r := range e.haStatus().MobileRouters {
		if r.Name != "car1" {
			continue
		}
		for _, b := range r.Bindings {
			m[b.BID] = b.Encap + " " + b.CoA
		}
	}
	return m
}

// eventually polls cond every 10 ms until it holds or the time is up.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) mrStates() string {
	var parts []string
	for _, b := range e.mrStatus().Bindings {
		parts = append(parts, fmt.Sprintf("%s=%s/%s", b.Uplink, b.State, b.Encap))
	}
	return strings.Join(parts, " ")
}

func controlDo(ctx context.Context, sock, cmd string, out any) error {
	return control.Do(ctx, sock, cmd, nil, out)
}
