//go:build linux

package ifmon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"nemod/internal/testenv"
	"nemod/lab"
)

// skipUnderQEMU skips under qemu-user, where the cross tests run: it does
// not emulate netlink dumps, so the shell cannot work there whatever the
// set-up, and that is no missing tool for CI to fail on. qemu-user shows
// itself as the process name.
func skipUnderQEMU(t *testing.T) {
	t.Helper()
	if b, err := os.ReadFile("/proc/self/comm"); err == nil && strings.HasPrefix(string(b), "qemu-") {
		t.Skip("netlink is not emulated by qemu-user")
	}
}

// testNS creates a network namespace unique to this run and test, with lo
// up, and removes it on every exit path. It returns its name and path.
func testNS(t *testing.T) (string, string) {
	t.Helper()
	testenv.NeedTool(t, "ip")
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("ifmon-%d-%s", os.Getpid(), hex.EncodeToString(b[:]))
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name, "/run/netns/" + name
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func ipn(t *testing.T, ns string, args ...string) string {
	t.Helper()
	return run(t, append([]string{"ip", "-n", ns}, args...)...)
}

func sysctl(t *testing.T, ns, key, val string) {
	t.Helper()
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	run(t, "ip", "netns", "exec", ns, "sh", "-c", fmt.Sprintf("echo %s > %s", val, path))
}

// veth makes dev with the peer end peer, both up unless the caller changes
// it; the peer's state is dev's carrier.
func veth(t *testing.T, ns, dev, peer string) {
	t.Helper()
	ipn(t, ns, "link", "add", dev, "type", "veth", "peer", "name", peer)
	ipn(t, ns, "link", "set", dev, "up")
	ipn(t, ns, "link", "set", peer, "up")
}

func startIn(t *testing.T, path string, opts Options, devices ...string) *Monitor {
	t.Helper()
	opts.NetNS = path
	m, err := Start(context.Background(), devices, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// waitFor waits, through Changes, until cond holds for the snapshot, and
// returns that snapshot. It never sleeps for a fixed time; a slow tick
// re-checks conditions on things that publish no change (Resyncs).
func waitFor(t *testing.T, m *Monitor, cond func([]Link) bool, timeout time.Duration) []Link {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s := m.Snapshot()
		if cond(s) {
			return s
		}
		select {
		case <-m.Changes():
		case <-tick.C:
		case <-m.Done():
			t.Fatalf("monitor stopped: %v (last %+v)", m.Err(), s)
		case <-deadline.C:
			t.Fatalf("timed out after %v; last snapshot %+v (last error %v)", timeout, s, m.LastError())
		}
	}
}

func first(f func(Link) bool) func([]Link) bool {
	return func(s []Link) bool { return f(s[0]) }
}

const wait = 5 * time.Second

func TestMonitorCarrierAndAddresses(t *testing.T) {
	testenv.NeedRoot(t)
	skipUnderQEMU(t)
	t.Parallel()
	ns, path := testNS(t)
	veth(t, ns, "wlan0", "peer0")
	ipn(t, ns, "link", "set", "peer0", "down")

	m := startIn(t, path, Options{}, "wlan0", "wwan0")
	s := waitFor(t, m, first(func(l Link) bool { return l.Exists && !l.Up }), wait)
	if s[1] != (Link{Name: "wwan0"}) {
		t.Fatalf("absent device reported as %+v", s[1])
	}
	if s[0].MTU != 1500 || s[0].Index == 0 {
		t.Fatalf("wlan0: %+v", s[0])
	}

	// Carrier: the peer's admin state is wlan0's carrier.
	ipn(t, ns, "link", "set", "peer0", "up")
	waitFor(t, m, first(func(l Link) bool { return l.Up }), wait)
	ipn(t, ns, "link", "set", "peer0", "down")
	waitFor(t, m, first(func(l Link) bool { return l.Exists && !l.Up }), wait)
	ipn(t, ns, "link", "set", "peer0", "up")
	waitFor(t, m, first(func(l Link) bool { return l.Up }), wait)

	ipn(t, ns, "addr", "add", "2001:db8:1::10/64", "dev", "wlan0", "nodad")
	ipn(t, ns, "addr", "add", "192.0.2.10/24", "dev", "wlan0")
	waitFor(t, m, first(func(l Link) bool {
		return l.IPv6 == ip("2001:db8:1::10") && l.IPv4 == ip("192.0.2.10") && !l.Usable6() && !l.Usable4()
	}), wait)

	ipn(t, ns, "route", "add", "default", "via", "192.0.2.1", "dev", "wlan0")
	ipn(t, ns, "-6", "route", "add", "default", "via", "2001:db8:1::1", "dev", "wlan0", "metric", "100")
	ipn(t, ns, "-6", "route", "add", "default", "via", "2001:db8:1::2", "dev", "wlan0", "metric", "200")
	waitFor(t, m, first(func(l Link) bool {
		return l.Usable4() && l.Gateway4 == ip("192.0.2.1") && l.Usable6() && l.Gateway6 == ip("2001:db8:1::1")
	}), wait)
	ipn(t, ns, "-6", "route", "del", "default", "via", "2001:db8:1::1", "dev", "wlan0", "metric", "100")
	waitFor(t, m, first(func(l Link) bool { return l.Usable6() && l.Gateway6 == ip("2001:db8:1::2") }), wait)

	// Real DAD: a lower address is better, but not while tentative. DAD
	// sends one NS and waits RetransTimer (1 s), so it cannot end sooner.
	sysctl(t, ns, "net.ipv6.conf.wlan0.dad_transmits", "1")
	sysctl(t, ns, "net.ipv6.neigh.wlan0.retrans_time_ms", "1000")
	begin := time.Now()
	ipn(t, ns, "addr", "add", "2001:db8:1::5/64", "dev", "wlan0")
	waitFor(t, m, first(func(l Link) bool { return l.IPv6 == ip("2001:db8:1::5") }), wait)
	if d := time.Since(begin); d < 900*time.Millisecond {
		t.Fatalf("tentative address reported after %v, before DAD could end", d)
	} else {
		t.Logf("DAD took %v (dad_transmits=1, retrans 1s)", d)
	}

	// A duplicate: the peer answers DAD for ::3, so wlan0's copy fails.
	ipn(t, ns, "addr", "add", "2001:db8:1::3/64", "dev", "peer0", "nodad")
	ipn(t, ns, "addr", "add", "2001:db8:1::3/64", "dev", "wlan0")
	deadline := time.Now().Add(wait)
	for !strings.Contains(ipn(t, ns, "-6", "addr", "show", "dev", "wlan0"), "dadfailed") {
		if time.Now().After(deadline) {
			t.Fatal("DAD did not fail for a duplicate address")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Deprecating ::5 must fall back to ::10, skipping the lower ::3.
	ipn(t, ns, "addr", "change", "2001:db8:1::5/64", "dev", "wlan0", "preferred_lft", "0")
	waitFor(t, m, first(func(l Link) bool { return l.IPv6 == ip("2001:db8:1::10") }), wait)

	// Carrier loss keeps addresses and routes (the kernel marks them
	// linkdown) but the device is not usable.
	ipn(t, ns, "link", "set", "peer0", "down")
	s = waitFor(t, m, first(func(l Link) bool { return !l.Up }), wait)
	if s[0].IPv6 != ip("2001:db8:1::10") || !s[0].Default4 || !s[0].Default6 || s[0].Usable4() || s[0].Usable6() {
		t.Fatalf("after carrier loss: %+v", s[0])
	}
	ipn(t, ns, "link", "set", "peer0", "up")
	waitFor(t, m, first(Link.Usable6), wait)

	// Removing the last IPv4 address flushes the IPv4 default route
	// without a netlink message; the monitor must still drop it.
	ipn(t, ns, "addr", "del", "192.0.2.10/24", "dev", "wlan0")
	waitFor(t, m, first(func(l Link) bool { return !l.IPv4.IsValid() && !l.Default4 && l.Usable6() }), wait)
	if out := ipn(t, ns, "-4", "route", "show", "default"); out != "" {
		t.Fatalf("kernel kept the default route: %q", out)
	}

	// Admin down: IPv6 addresses go (keep_addr_on_down=0), routes go.
	ipn(t, ns, "link", "set", "wlan0", "down")
	waitFor(t, m, first(func(l Link) bool {
		return l.Exists && !l.Up && !l.IPv6.IsValid() && !l.Default6 && !l.Default4
	}), wait)
}

func TestMonitorDeleteRecreateRename(t *testing.T) {
	testenv.NeedRoot(t)
	skipUnderQEMU(t)
	t.Parallel()
	ns, path := testNS(t)
	veth(t, ns, "wlan0", "peer0")
	ipn(t, ns, "addr", "add", "2001:db8:2::1/64", "dev", "wlan0", "nodad")
	ipn(t, ns, "-6", "route", "add", "default", "via", "fe80::1", "dev", "wlan0")

	m := startIn(t, path, Options{}, "wlan0")
	s := waitFor(t, m, first(Link.Usable6), wait)
	old := s[0].Index

	ipn(t, ns, "link", "del", "wlan0")
	waitFor(t, m, first(func(l Link) bool { return l == Link{Name: "wlan0"} }), wait)

	veth(t, ns, "wlan0", "peer0")
	s = waitFor(t, m, first(func(l Link) bool { return l.Up }), wait)
	if s[0].Index == old || s[0].IPv6.IsValid() || s[0].Default6 {
		t.Fatalf("re-created device carries old state: %+v (old index %d)", s[0], old)
	}

	// Renaming: the monitor follows the name, not the index.
	ipn(t, ns, "link", "set", "wlan0", "down")
	ipn(t, ns, "link", "set", "wlan0", "name", "wlan9")
	waitFor(t, m, first(func(l Link) bool { return !l.Exists }), wait)
	veth(t, ns, "eth7", "peer7")
	ipn(t, ns, "link", "set", "eth7", "down") // a rename needs the device down
	ipn(t, ns, "link", "set", "eth7", "name", "wlan0")
	ipn(t, ns, "link", "set", "wlan0", "up")
	ipn(t, ns, "addr", "add", "2001:db8:7::2/64", "dev", "wlan0", "nodad")
	waitFor(t, m, first(func(l Link) bool { return l.Up && l.IPv6 == ip("2001:db8:7::2") }), wait)
}

// TestMonitorOwnNamespace starts without Options.NetNS from a thread moved
// into the test namespace, then forces a resync from the monitor's own
// goroutine, which runs on threads of the host namespace.
func TestMonitorOwnNamespace(t *testing.T) {
	testenv.NeedRoot(t)
	skipUnderQEMU(t)
	t.Parallel()
	ns, _ := testNS(t)
	var b [3]byte
	rand.Read(b[:])
	dev := "ifm" + hex.EncodeToString(b[:]) // unique: must not exist on the host
	veth(t, ns, dev, dev+"p")

	var m *Monitor
	err := lab.InNamespace(ns, func() (err error) {
		m, err = Start(context.Background(), []string{dev}, Options{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	waitFor(t, m, first(func(l Link) bool { return l.Up }), wait)
	n := m.Resyncs()
	m.resyncCh <- struct{}{}
	// A resync that finds nothing new publishes nothing; waitFor re-checks.
	waitFor(t, m, func([]Link) bool { return m.Resyncs() > n }, wait)
	if s := m.Snapshot(); !s[0].Up {
		t.Fatalf("resync from the monitor's goroutine lost the device: %+v", s[0])
	}
	ipn(t, ns, "link", "set", dev+"p", "down")
	waitFor(t, m, first(func(l Link) bool { return l.Exists && !l.Up }), wait)
}

func TestMonitorStartErrors(t *testing.T) {
	t.Parallel()
	for _, devs := range [][]string{nil, {""}, {"a", "a"}, {"waytoolongdevicename0"}} {
		if m, err := Start(context.Background(), devs, Options{}); err == nil {
			m.Close()
			t.Errorf("Start(%q) succeeded", devs)
		}
	}
	if _, err := Start(context.Background(), []string{"wlan0"}, Options{NetNS: "/run/netns/ifmon-does-not-exist"}); err == nil {
		t.Error("Start in a missing netns succeeded")
	}
}

// TestMonitorOverrun stalls the monitor while the kernel floods a tiny
// receive buffer, so the sockets overrun (ENOBUFS). The monitor must resync
// and end on the kernel's real state.
func TestMonitorOverrun(t *testing.T) {
	testenv.NeedRoot(t)
	skipUnderQEMU(t)
	t.Parallel()
	ns, path := testNS(t)
	veth(t, ns, "wlan0", "peer0")
	h := nsHandle(t, path)
	peer, err := h.LinkByName("peer0")
	if err != nil {
		t.Fatal(err)
	}
	m := startIn(t, path, Options{RecvBuffer: 1}, "wlan0")
	waitFor(t, m, first(func(l Link) bool { return l.Up }), wait)
	n := m.Resyncs()

	m.mu.Lock() // the loop blocks publishing its next update
	wl, err := h.LinkByName("wlan0")
	if err != nil {
		m.mu.Unlock()
		t.Fatal(err)
	}
	for i := range 300 {
		if err := h.LinkSetDown(peer); err != nil {
			m.mu.Unlock()
			t.Fatal(err)
		}
		if err := h.LinkSetUp(peer); err != nil {
			m.mu.Unlock()
			t.Fatal(err)
		}
		a, _ := netlink.ParseAddr(fmt.Sprintf("2001:db8:9::%x/64", i+0x100))
		a.Flags = 0x02 // IFA_F_NODAD
		if err := h.AddrAdd(wl, a); err != nil {
			m.mu.Unlock()
			t.Fatal(err)
		}
	}
	if err := h.LinkSetDown(peer); err != nil {
		m.mu.Unlock()
		t.Fatal(err)
	}
	m.mu.Unlock()
	waitFor(t, m, func(s []Link) bool {
		return m.Resyncs() > n && s[0].Exists && !s[0].Up && s[0].IPv6 == ip("2001:db8:9::100")
	}, wait)
	t.Logf("resyncs: %d, last error: %v", m.Resyncs()-n, m.LastError())
	if err := h.LinkSetUp(peer); err != nil {
		t.Fatal(err)
	}
	waitFor(t, m, first(func(l Link) bool { return l.Up }), wait)
}

// TestMonitorRouteBeforeDown adds a default route and takes its device down
// while the monitor is stalled, so the route and link messages wait on
// different sockets and may be read in either order. The kernel flushes the
// route silently; in both orders the monitor must end without it.
func TestMonitorRouteBeforeDown(t *testing.T) {
	testenv.NeedRoot(t)
	skipUnderQEMU(t)
	t.Parallel()
	ns, path := testNS(t)
	veth(t, ns, "wlan0", "peer0")
	veth(t, ns, "wwan0", "peer1")
	ipn(t, ns, "addr", "add", "192.0.2.2/24", "dev", "wlan0")
	ipn(t, ns, "addr", "add", "198.51.100.2/24", "dev", "wwan0")
	ipn(t, ns, "link", "set", "wlan0", "down")
	m := startIn(t, path, Options{}, "wlan0", "wwan0")
	for i := range 8 {
		m.mu.Lock()
		ipn(t, ns, "link", "set", "wlan0", "up")
		ipn(t, ns, "route", "add", "default", "via", "192.0.2.1", "dev", "wlan0")
		ipn(t, ns, "link", "set", "wlan0", "down")
		ipn(t, ns, "link", "set", "wlan0", "mtu", fmt.Sprint(1400+i))
		// Markers on both sockets, after the race.
		marker := netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)})
		ipn(t, ns, "route", "replace", "default", "via", marker.String(), "dev", "wwan0", "metric", "500")
		m.mu.Unlock()
		waitFor(t, m, func(s []Link) bool { return s[0].MTU == 1400+i && s[1].Gateway4 == marker }, wait)
		// Read in the wrong order, the route lingers until the re-list,
		// which may wait out the resync rate limit.
		waitFor(t, m, first(func(l Link) bool { return !l.Default4 && !l.Up }), wait)
	}
}

func nsHandle(t *testing.T, path string) *netlink.Handle {
	t.Helper()
	nsh, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// settle waits for goroutines and fds to come back to the baseline; the
// library's reader goroutines exit a moment after their socket closes.
func settle(t *testing.T, goroutines, fds int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		g, f := runtime.NumGoroutine(), countFDs(t)
		if g <= goroutines && f <= fds {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("leak: goroutines %d (baseline %d), fds %d (baseline %d)\n%s", g, goroutines, f, fds, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMonitorFlapsAndRelease is not parallel: it counts the process's
// goroutines and file descriptors.
func TestMonitorFlapsAndRelease(t *testing.T) {
	testenv.NeedRoot(t)
	skipUnderQEMU(t)
	ns, path := testNS(t)
	veth(t, ns, "wlan0", "peer0")
	ipn(t, ns, "addr", "add", "2001:db8:3::1/64", "dev", "wlan0", "nodad")
	ipn(t, ns, "-6", "route", "add", "default", "via", "fe80::1", "dev", "wlan0")
	h := nsHandle(t, path)
	peer, err := h.LinkByName("peer0")
	if err != nil {
		t.Fatal(err)
	}

	g0, f0 := runtime.NumGoroutine(), countFDs(t)
	m := startIn(t, path, Options{}, "wlan0")
	waitFor(t, m, first(Link.Usable6), wait)

	ups := 0
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		// Count "up" reports during the flaps: each needs 50 ms of
		// carrier, which the flapping never gives.
		defer close(watched)
		for {
			select {
			case <-stopWatch:
				return
			case <-m.Changes():
				if m.Snapshot()[0].Up {
					ups++
				}
			}
		}
	}()
	ipn(t, ns, "link", "set", "peer0", "down")
	for range 200 {
		if err := h.LinkSetUp(peer); err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetDown(peer); err != nil {
			t.Fatal(err)
		}
	}
	close(stopWatch)
	<-watched
	if ups > 1 { // one if the first "down" was read late
		t.Errorf("%d \"up\" reports during 200 fast flaps", ups)
	}
	s := waitFor(t, m, first(func(l Link) bool { return l.Exists && !l.Up }), wait)
	if s[0].IPv6 != ip("2001:db8:3::1") || !s[0].Default6 {
		t.Fatalf("after flaps: %+v", s[0])
	}
	if err := h.LinkSetUp(peer); err != nil {
		t.Fatal(err)
	}
	waitFor(t, m, first(Link.Usable6), wait)

	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if m.Err() != nil {
		t.Fatalf("Err after Close: %v", m.Err())
	}
	settle(t, g0, f0)

	// A context ends the monitor as well, releasing the same.
	ctx, cancel := context.WithCancel(context.Background())
	m2, err := Start(ctx, []string{"wlan0"}, Options{NetNS: path})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, m2, first(Link.Usable6), wait)
	cancel()
	<-m2.Done()
	if m2.Err() == nil {
		t.Error("no Err after the context ended")
	}
	if s := m2.Snapshot(); s[0] != (Link{Name: "wlan0"}) {
		t.Errorf("stopped monitor still vouches for %+v", s[0])
	}
	m2.Close()
	settle(t, g0, f0)
}

// TestMonitorSLAAC takes addresses and the default route from real router
// advertisements (radvd in a second namespace: the kernel ignores RAs from
// its own addresses) with privacy addresses on, and checks that the stable
// address is chosen over the temporary one and the router's link-local
// address is the gateway. Stopping radvd advertises lifetime 0.
func TestMonitorSLAAC(t *testing.T) {
	testenv.NeedRoot(t)
	skipUnderQEMU(t)
	radvd := testenv.NeedTool(t, "radvd")
	t.Parallel()
	cns, cpath := testNS(t)
	rns, _ := testNS(t)
	ipn(t, cns, "link", "add", "wlan0", "type", "veth", "peer", "name", "peer0", "netns", rns)
	sysctl(t, cns, "net.ipv6.conf.wlan0.use_tempaddr", "2")
	sysctl(t, rns, "net.ipv6.conf.all.forwarding", "1")
	ipn(t, cns, "link", "set", "wlan0", "up")
	ipn(t, rns, "link", "set", "peer0", "up")

	dir := t.TempDir()
	conf := dir + "/radvd.conf"
	if err := os.WriteFile(conf, []byte(`interface peer0 {
	AdvSendAdvert on;
	MinRtrAdvInterval 3;
	MaxRtrAdvInterval 4;
	prefix 2001:db8:a::/64 { AdvOnLink on; AdvAutonomous on; };
};
`), 0o644); err != nil {
		t.Fatal(err)
	}
	m := startIn(t, cpath, Options{}, "wlan0")

	cmd := exec.Command("ip", "netns", "exec", rns, radvd, "-n", "-m", "stderr", "-C", conf, "-p", dir+"/radvd.pid")
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopRadvd := func() {
		if cmd.Process == nil {
			return
		}
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		cmd.Process = nil
	}
	t.Cleanup(stopRadvd)

	// Both addresses run DAD at once and either may finish first, so the
	// snapshot may show the temporary one for a moment; it must end on the
	// stable one.
	var stable, temp netip.Addr
	s := waitFor(t, m, func(s []Link) bool {
		if !s[0].Usable6() {
			return false
		}
		stable, temp = slaacAddrs(t, cns)
		return stable.IsValid() && temp.IsValid() && s[0].IPv6 == stable
	}, 20*time.Second)
	if !s[0].Gateway6.IsLinkLocalUnicast() {
		t.Fatalf("RA default route gateway %v", s[0].Gateway6)
	}
	t.Logf("stable %v temporary %v gateway %v", stable, temp, s[0].Gateway6)

	stopRadvd() // radvd's last adverts carry router lifetime 0
	waitFor(t, m, first(func(l Link) bool { return !l.Default6 && l.IPv6 == stable }), wait)
}

// slaacAddrs reads the kernel's SLAAC addresses on wlan0: the stable one
// (mngtmpaddr) and a temporary one, both past DAD.
func slaacAddrs(t *testing.T, ns string) (stable, temp netip.Addr) {
	for _, line := range strings.Split(ipn(t, ns, "-6", "-o", "addr", "show", "dev", "wlan0", "scope", "global"), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || strings.Contains(line, "tentative") {
			continue
		}
		p, err := netip.ParsePrefix(f[3])
		if err != nil {
			continue
		}
		switch {
		case strings.Contains(line, "temporary"):
			temp = p.Addr()
		case strings.Contains(line, "mngtmpaddr"):
			stable = p.Addr()
		}
	}
	return stable, temp
}
