package lab_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"nemod/internal/testenv"
	"nemod/lab"
	"nemod/lab/labtest"
)

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// ping sends one echo request and waits up to a second for the reply.
func ping(ctx context.Context, l *lab.Lab, role string, args ...string) error {
	_, err := l.Run(ctx, role, append([]string{"ping", "-n", "-c", "1", "-W", "1"}, args...)...)
	return err
}

// eventually retries f until it succeeds or ctx ends: what a test waits
// for is a state, never a duration.
func eventually(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func mustReach(t *testing.T, ctx context.Context, l *lab.Lab, role string, args ...string) {
	t.Helper()
	if err := eventually(ctx, func() error { return ping(ctx, l, role, args...) }); err != nil {
		t.Fatalf("%s: ping %v: %v", role, args, err)
	}
}

func nsExists(name string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", name))
	return err == nil
}

// gone reports whether a process no longer runs (a zombie counts as gone).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && s[i+2] == 'Z'
}

func nsPids(t *testing.T, ns string) []int {
	t.Helper()
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		t.Fatalf("ip netns pids %s: %v", ns, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestNewClose(t *testing.T) {
	t.Parallel()
	testenv.NeedRoot(t)
	testenv.NeedTool(t, append(labtest.Tools, "radvd")...)
	ctx := testCtx(t, 60*time.Second)

	start := time.Now()
	l, err := lab.New(ctx, lab.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("New took %v", time.Since(start))
	closed := false
	t.Cleanup(func() {
		if !closed {
			l.Close()
		}
	})

	for _, role := range lab.Roles {
		if !nsExists(l.NS(role)) {
			t.Errorf("namespace %s of %s missing", l.NS(role), role)
		}
	}
	if l.NS("nope") != "" {
		t.Errorf("NS of an unknown role = %q", l.NS("nope"))
	}
	if fi, err := os.Stat(l.Dir()); err != nil || !fi.IsDir() {
		t.Fatalf("Dir %s: %v", l.Dir(), err)
	}

	// One process the lab tracks, one it does not know of.
	p, err := l.Start(lab.HA, "sleeper", "sleep", "1000")
	if err != nil {
		t.Fatal(err)
	}
	stray := l.Command(ctx, lab.CN, "sleep", "1000")
	if err := stray.Start(); err != nil {
		t.Fatal(err)
	}
	strayDone := make(chan struct{})
	go func() { stray.Wait(); close(strayDone) }()

	var pids []int
	for _, role := range lab.Roles {
		pids = append(pids, nsPids(t, l.NS(role))...)
	}
	if len(pids) < 3 { // radvd, the sleeper and the stray at least
		t.Errorf("processes in the lab: %v, want radvd and both sleeps", pids)
	}

	start = time.Now()
	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	closed = true
	t.Logf("Close took %v", time.Since(start))
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	for _, role := range lab.Roles {
		if nsExists(l.NS(role)) {
			t.Errorf("namespace %s left", l.NS(role))
		}
	}
	select {
	case <-p.Exited():
	default:
		t.Errorf("started process %d still running", p.Pid())
	}
	select {
	case <-strayDone:
	case <-ctx.Done():
		t.Errorf("stray process %d not killed", stray.Process.Pid)
	}
	for _, pid := range pids {
		if !gone(pid) {
			t.Errorf("process %d left running", pid)
		}
	}
	if _, err := os.Stat(l.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Dir %s left: %v", l.Dir(), err)
	}
	if _, err := os.Stat(filepath.Join(lab.RunDir, l.Prefix()+".pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left: %v", err)
	}
	if _, err := l.Start(lab.HA, "late", "true"); !errors.Is(err, lab.ErrClosed) {
		t.Errorf("Start after Close: %v, want ErrClosed", err)
	}
}

func TestReachability(t *testing.T) {
	t.Parallel()
	l := labtest.New(t, lab.Options{})
	ctx := testCtx(t, 60*time.Second)

	wlan, err := l.Addr(lab.MR, lab.MRWLANDev, lab.IPv6)
	if err != nil {
		t.Fatal(err)
	}
	if !lab.WifiPrefix.Contains(wlan) {
		t.Errorf("mr wlan0 address %v not in %v", wlan, lab.WifiPrefix)
	}
	if a, err := l.Addr(lab.MR, lab.MRWWANDev, syscall.AF_INET); err != nil || a != lab.MRWWAN4 {
		t.Errorf("mr wwan0 IPv4 = %v, %v; want %v", a, err, lab.MRWWAN4)
	}
	if a, err := l.Addr(lab.MR, lab.MRWWANDev, lab.IPv6); err == nil {
		t.Errorf("mr wwan0 has a global IPv6 address %v", a)
	}

	t.Run("lan to mr", func(t *testing.T) {
		mustReach(t, ctx, l, lab.LAN, "-6", lab.MRLAN.String())
	})
	t.Run("mr wlan0 to cn", func(t *testing.T) {
		mustReach(t, ctx, l, lab.MR, "-6", "-I", lab.MRWLANDev, lab.CN6.String())
		mustReach(t, ctx, l, lab.MR, "-6", "-I", lab.MRWLANDev, lab.Roadside6.String())
	})
	t.Run("mr wlan0 to ha over IPv4", func(t *testing.T) {
		mustReach(t, ctx, l, lab.MR, "-4", "-I", lab.MRWLANDev, lab.HA4.String())
	})
	t.Run("mr wwan0 to ha through the CGN", func(t *testing.T) {
		c, err := l.Capture(lab.Core, "ha", "icmp")
		if err != nil {
			t.Fatal(err)
		}
		mustReach(t, ctx, l, lab.MR, "-4", "-I", lab.MRWWANDev, lab.HA4.String())
		path, err := c.Stop()
		if err != nil {
			t.Fatal(err)
		}
		rows, err := lab.PcapFields(ctx, path, "icmp.type == 8", "ip.src", "ip.dst")
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 {
			t.Fatalf("no echo request captured in %s", path)
		}
		for _, r := range rows {
			if r[0] != lab.CellWAN4.String() || r[1] != lab.HA4.String() {
				t.Errorf("core saw %s -> %s, want %v -> %v", r[0], r[1], lab.CellWAN4, lab.HA4)
			}
		}
	})
	t.Run("lan to cn fails without a tunnel", func(t *testing.T) {
		// The reply goes to the MNP, which core routes to the home agent,
		// where no tunnel takes it.
		if err := ping(ctx, l, lab.LAN, "-6", lab.CN6.String()); err == nil {
			t.Error("lan reached cn with no tunnel up")
		}
	})
}

func linkShow(ctx context.Context, l *lab.Lab, role, dev string) string {
	out, _ := l.Run(ctx, role, "ip", "link", "show", dev)
	return out
}

func noCarrier(s string) bool {
	return strings.Contains(s, "NO-CARRIER") || strings.Contains(s, "state DOWN") ||
		strings.Contains(s, "LOWERLAYERDOWN")
}

// sendMH sends from mr to cn, through raw sockets, one packet of each kind
// BlockProtocols is meant for: a Mobility Header, a Mobility Header behind
// a Destination Options header (as a MIPv6 binding update with a home
// address option is) and an IPv6-in-IPv6 packet.
const sendMH = `
import socket, sys
dst = sys.argv[1]
def send(proto, payload, dstopts=False):
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, proto)
    if dstopts:
        # Next header (set by the kernel), length 0, PadN of 4 bytes.
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_DSTOPTS, bytes([0, 0, 1, 4, 0, 0, 0, 0]))
    s.sendto(payload, (dst, 0))
    s.close()
mh = bytes([59, 0, 0, 0, 0, 0, 0, 0])
send(135, mh)
send(135, mh, True)
inner = bytes([0x60, 0, 0, 0, 0, 0, 59, 64]) + socket.inet_pton(socket.AF_INET6, "2001:db8:100::10") + socket.inet_pton(socket.AF_INET6, "2001:db8:c::1")
send(41, inner)
`

func TestFaults(t *testing.T) {
	t.Parallel()
	l := labtest.New(t, lab.Options{})
	ctx := testCtx(t, 90*time.Second)
	cn := lab.CN6.String()
	wlanPing := []string{"-6", "-I", lab.MRWLANDev, cn}

	t.Run("carrier", func(t *testing.T) {
		for _, c := range []struct{ uplink, dev string }{{lab.Wifi, lab.MRWLANDev}, {lab.Cell, lab.MRWWANDev}} {
			if err := l.CarrierDown(c.uplink); err != nil {
				t.Fatal(err)
			}
			err := eventually(ctx, func() error {
				if s := linkShow(ctx, l, lab.MR, c.dev); !noCarrier(s) {
					return fmt.Errorf("carrier still up: %s", s)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("CarrierDown(%s): %v", c.uplink, err)
			}
			t.Logf("CarrierDown(%s): %s", c.uplink, strings.TrimSpace(linkShow(ctx, l, lab.MR, c.dev)))
			if err := l.CarrierUp(c.uplink); err != nil {
				t.Fatal(err)
			}
			err = eventually(ctx, func() error {
				if s := linkShow(ctx, l, lab.MR, c.dev); noCarrier(s) || !strings.Contains(s, "LOWER_UP") {
					return fmt.Errorf("carrier still down: %s", s)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("CarrierUp(%s): %v", c.uplink, err)
			}
		}
		if _, err := l.WaitSLAAC(ctx); err != nil {
			t.Fatal(err)
		}
		mustReach(t, ctx, l, lab.MR, wlanPing...)
		mustReach(t, ctx, l, lab.MR, "-4", "-I", lab.MRWWANDev, lab.HA4.String())
	})

	t.Run("blackhole", func(t *testing.T) {
		mustReach(t, ctx, l, lab.MR, wlanPing...)
		if err := l.Blackhole(lab.Wifi, true); err != nil {
			t.Fatal(err)
		}
		if err := ping(ctx, l, lab.MR, wlanPing...); err == nil {
			t.Error("ping went through the blackhole")
		}
		if n, err := l.Dropped(lab.Wifi); err != nil || n == 0 {
			t.Errorf("Dropped = %d, %v; want > 0", n, err)
		}
		if s := linkShow(ctx, l, lab.MR, lab.MRWLANDev); noCarrier(s) {
			t.Errorf("blackhole took the carrier: %s", s)
		}
		if err := l.Blackhole(lab.Wifi, false); err != nil {
			t.Fatal(err)
		}
		mustReach(t, ctx, l, lab.MR, wlanPing...)
	})

	t.Run("block protocols", func(t *testing.T) {
		testenv.NeedTool(t, "/usr/bin/python3")
		src, err := l.Addr(lab.MR, lab.MRWLANDev, lab.IPv6)
		if err != nil {
			t.Fatal(err)
		}
		send := func() {
			t.Helper()
			if _, err := l.Run(ctx, lab.MR, "/usr/bin/python3", "-c", sendMH, cn); err != nil {
				t.Fatal(err)
			}
		}

		// Unblocked, all three cross wifi.
		c, err := l.Capture(lab.Core, "wifi", "ip6 and not icmp6")
		if err != nil {
			t.Fatal(err)
		}
		send()
		path, err := c.Stop()
		if err != nil {
			t.Fatal(err)
		}
		rows, err := lab.PcapFields(ctx, path, "ipv6.src == "+src.String(), "ipv6.nxt")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rows {
			// An IPv6-in-IPv6 packet lists the inner header's too.
			first, _, _ := strings.Cut(r[0], ",")
			got = append(got, first)
		}
		if strings.Join(got, " ") != "135 60 41" {
			t.Fatalf("unblocked, core saw next headers %v, want [135 60 41]", got)
		}

		if err := l.BlockProtocols(lab.Wifi, 135, 41); err != nil {
			t.Fatal(err)
		}
		send()
		if n, err := l.Dropped(lab.Wifi); err != nil || n != 3 {
			t.Errorf("Dropped = %d, %v; want 3 (MH, MH after destination options, IPv6 in IPv6)", n, err)
		}
		mustReach(t, ctx, l, lab.MR, wlanPing...)
		if err := l.Unblock(lab.Wifi); err != nil {
			t.Fatal(err)
		}
		if n, err := l.Dropped(lab.Wifi); err != nil || n != 0 {
			t.Errorf("after Unblock, Dropped = %d, %v; want 0", n, err)
		}
	})

	t.Run("flush NAT", func(t *testing.T) {
		mustReach(t, ctx, l, lab.MR, "-4", "-I", lab.MRWWANDev, lab.HA4.String())
		count := func() string {
			out, err := l.Run(ctx, lab.Cell, "conntrack", "-C")
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(out)
		}
		if n := count(); n == "0" {
			t.Fatal("no NAT mapping after a ping through cell")
		}
		if err := l.FlushNAT(lab.Cell); err != nil {
			t.Fatal(err)
		}
		if n := count(); n != "0" {
			t.Errorf("%s conntrack entries left after FlushNAT", n)
		}
		mustReach(t, ctx, l, lab.MR, "-4", "-I", lab.MRWWANDev, lab.HA4.String())
	})

	t.Run("bad uplink", func(t *testing.T) {
		if err := l.CarrierDown("core"); err == nil {
			t.Error("CarrierDown(core) did not fail")
		}
	})
}

func TestTwoLabs(t *testing.T) {
	t.Parallel()
	testenv.NeedRoot(t)
	testenv.NeedTool(t, append(labtest.Tools, "radvd")...)
	ctx := testCtx(t, 60*time.Second)

	var labs [2]*lab.Lab
	errs := make(chan error, 2)
	for i := range labs {
		go func() {
			l, err := lab.New(ctx, lab.Options{Logf: t.Logf})
			labs[i] = l
			errs <- err
		}()
	}
	for range labs {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	for _, l := range labs {
		if l != nil {
			t.Cleanup(func() { l.Close() })
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	a, b := labs[0], labs[1]
	if a.NS(lab.MR) == b.NS(lab.MR) {
		t.Fatalf("both labs use %s", a.NS(lab.MR))
	}
	wlanPing := []string{"-6", "-I", lab.MRWLANDev, lab.CN6.String()}
	if err := a.CarrierDown(lab.Wifi); err != nil {
		t.Fatal(err)
	}
	if err := a.Blackhole(lab.Cell, true); err != nil {
		t.Fatal(err)
	}
	mustReach(t, ctx, b, lab.MR, wlanPing...)
	mustReach(t, ctx, b, lab.MR, "-4", "-I", lab.MRWWANDev, lab.HA4.String())
	if s := linkShow(ctx, b, lab.MR, lab.MRWLANDev); noCarrier(s) {
		t.Errorf("lab b lost its carrier with lab a's: %s", s)
	}
	if err := ping(ctx, a, lab.MR, wlanPing...); err == nil {
		t.Error("lab a reached cn with its Wi-Fi down")
	}
	if err := ping(ctx, a, lab.MR, "-4", "-I", lab.MRWWANDev, lab.HA4.String()); err == nil {
		t.Error("lab a reached ha through its blackholed cell")
	}
}

func TestSweep(t *testing.T) {
	t.Parallel()
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "ip")
	ctx := testCtx(t, 30*time.Second)

	prefix := func() string {
		var b [3]byte
		rand.Read(b[:])
		return "nl" + hex.EncodeToString(b[:])
	}
	// A pid that surely is dead: a child that exited and was reaped.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(lab.RunDir, 0o755); err != nil {
		t.Fatal(err)
	}
	deadRun, liveRun, orphanRun := prefix(), prefix(), prefix()
	deadDir, err := os.MkdirTemp("", "nemolab-"+deadRun+"-")
	if err != nil {
		t.Fatal(err)
	}
	// The dead run is recorded as ours until its process is in place: the
	// Sweep of a lab another test process builds could otherwise delete the
	// namespace while that process enters it, which would then survive.
	deadRecord := filepath.Join(lab.RunDir, deadRun+".pid")
	records := map[string]string{
		deadRun: fmt.Sprintf("pid %d\n", os.Getpid()),
		liveRun: fmt.Sprintf("pid %d\n", os.Getpid()),
	}
	for p, rec := range records {
		path := filepath.Join(lab.RunDir, p+".pid")
		if err := os.WriteFile(path, []byte(rec), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(path) })
	}
	names := []string{deadRun + "-mr", deadRun + "-core", liveRun + "-mr", orphanRun + "-cn"}
	for _, n := range names {
		if out, err := exec.Command("ip", "netns", "add", n).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v: %s", n, err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "netns", "delete", n).Run() })
	}
	// A process the dead run left in its namespace.
	left := exec.CommandContext(ctx, "ip", "netns", "exec", deadRun+"-mr", "sleep", "1000")
	if err := left.Start(); err != nil {
		t.Fatal(err)
	}
	leftDone := make(chan struct{})
	go func() { left.Wait(); close(leftDone) }()
	// ip netns exec enters the namespace after it started.
	err = eventually(ctx, func() error {
		for _, pid := range nsPids(t, deadRun+"-mr") {
			if pid == left.Process.Pid {
				return nil
			}
		}
		return errors.New("not in the namespace yet")
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := fmt.Sprintf("pid %d\nstart 1\ndir %s\n", dead.Process.Pid, deadDir)
	if err := os.WriteFile(deadRecord, []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}

	if err := lab.Sweep(); err != nil {
		t.Errorf("Sweep: %v", err)
	}
	for _, n := range []string{deadRun + "-mr", deadRun + "-core", orphanRun + "-cn"} {
		if nsExists(n) {
			t.Errorf("Sweep left %s", n)
		}
	}
	if !nsExists(liveRun + "-mr") {
		t.Errorf("Sweep deleted %s-mr of a live run", liveRun)
	}
	if _, err := os.Stat(filepath.Join(lab.RunDir, liveRun+".pid")); err != nil {
		t.Errorf("Sweep deleted the live run's record: %v", err)
	}
	if _, err := os.Stat(filepath.Join(lab.RunDir, deadRun+".pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dead run's record left: %v", err)
	}
	if _, err := os.Stat(deadDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dead run's dir left: %v", err)
	}
	select {
	case <-leftDone:
	case <-ctx.Done():
		t.Error("the dead run's process was not killed")
	}
}

func TestBuildPackage(t *testing.T) {
	t.Parallel()
	testenv.NeedTool(t, "go")
	ctx := testCtx(t, 5*time.Minute)
	dir := t.TempDir()
	for _, race := range []bool{false, true} {
		t.Run(fmt.Sprintf("race=%v", race), func(t *testing.T) {
			bin, err := lab.BuildPackage(ctx, dir, "./cmd/nemolab", race)
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.CommandContext(ctx, bin, "help").CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "usage") {
				t.Errorf("%s help: %v: %s", bin, err, out)
			}
		})
	}
}

// A failed New removes what it made, and nothing it did not make.
func TestNewFailureTearsDown(t *testing.T) {
	t.Parallel()
	testenv.NeedRoot(t)
	testenv.NeedTool(t, labtest.Tools...)
	ctx := testCtx(t, 30*time.Second)

	var b [3]byte
	rand.Read(b[:])
	// Not the default "nl" pattern: a concurrent Sweep would take the
	// namespace below for an orphan.
	prefix := "nx" + hex.EncodeToString(b[:])
	taken := prefix + "-" + lab.CN // the last one New creates
	if out, err := exec.Command("ip", "netns", "add", taken).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", taken, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", taken).Run() })

	l, err := lab.New(ctx, lab.Options{Prefix: prefix, Logf: t.Logf})
	if err == nil {
		l.Close()
		t.Fatal("New succeeded with a namespace name taken")
	}
	t.Logf("New: %v", err)
	for _, role := range lab.Roles {
		if n := prefix + "-" + role; n != taken && nsExists(n) {
			t.Errorf("failed New left %s", n)
		}
	}
	if !nsExists(taken) {
		t.Errorf("failed New deleted %s, which it did not create", taken)
	}
	if _, err := os.Stat(filepath.Join(lab.RunDir, prefix+".pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed New left its record: %v", err)
	}
	if dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "nemolab-"+prefix+"-*")); len(dirs) > 0 {
		t.Errorf("failed New left %v", dirs)
	}
}

func TestNoRadvd(t *testing.T) {
	t.Parallel()
	l := labtest.New(t, lab.Options{NoRadvd: true})
	ctx := testCtx(t, 30*time.Second)
	if l.Radvd() != nil {
		t.Error("radvd runs with NoRadvd")
	}
	if a, err := l.Addr(lab.MR, lab.MRWLANDev, lab.IPv6); err != nil || a != lab.MRWLANStatic6 {
		t.Errorf("mr wlan0 = %v, %v; want %v", a, err, lab.MRWLANStatic6)
	}
	mustReach(t, ctx, l, lab.MR, "-6", "-I", lab.MRWLANDev, lab.CN6.String())
}
