package pdio

import (
	"context"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"nemod/dhcpv6pd"
	"nemod/internal/testenv"
)

// keaPool is the pd-pool the test's Kea delegates from.
var keaPool = netip.MustParsePrefix("2001:db8:8000::/40")

// freePort finds a UDP port on ::1 nobody uses now.
func freePort(t *testing.T) uint16 {
	t.Helper()
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}

// startKea runs kea-dhcp6 from the Debian package on [::1]:port with its
// leases, lock and pid files in a temp dir. It needs no privilege: the
// port is high and the socket is a unicast one on lo; as root the test
// drops to nobody to show that.
func startKea(t *testing.T) (netip.AddrPort, string) {
	t.Helper()
	kea := testenv.NeedTool(t, "kea-dhcp6")
	dir, err := os.MkdirTemp("", "nemod-kea-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	port := freePort(t)
	leases := filepath.Join(dir, "leases6.csv")
	conf := fmt.Sprintf(`{"Dhcp6": {
  "interfaces-config": {"interfaces": ["lo/::1"]},
  "server-id": {"type": "EN", "enterprise-id": 2495, "identifier": "6e656d6f64", "persist": false},
  "lease-database": {"type": "memfile", "name": %q, "lfc-interval": 0},
  "renew-timer": 1000, "rebind-timer": 1600, "preferred-lifetime": 2000, "valid-lifetime": 4000,
  "subnet6": [{"id": 1, "subnet": "2001:db8:1::/64",
    "relay": {"ip-addresses": ["::1"]},
    "pd-pools": [{"prefix": "%s", "prefix-len": %d, "delegated-len": 56}]}],
  "loggers": [{"name": "kea-dhcp6", "output_options": [{"output": %q}], "severity": "INFO"}]
}}`, leases, keaPool.Addr(), keaPool.Bits(), filepath.Join(dir, "kea.log"))
	cfgPath := filepath.Join(dir, "kea.json")
	if err := os.WriteFile(cfgPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, kea, "-c", cfgPath, "-p", strconv.Itoa(int(port)))
	cmd.Env = append(os.Environ(), "KEA_LOCKFILE_DIR="+dir, "KEA_PIDFILE_DIR="+dir)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
		if u, err := user.Lookup("nobody"); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
			if err := os.Chown(dir, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	out, err := os.Create(filepath.Join(dir, "kea.out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		out.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "kea.log"))
			o, _ := os.ReadFile(filepath.Join(dir, "kea.out"))
			t.Logf("kea output:\n%s\n%s", o, b)
		}
	})
	return netip.AddrPortFrom(netip.IPv6Loopback(), port), leases
}

// keaLeases reads Kea's memfile: the prefixes of type 2 (IA_PD) with a
// valid lifetime left, by DUID; the memfile appends a line per change.
func keaLeases(t *testing.T, path string) map[string]netip.Prefix {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]netip.Prefix{}
	col := map[string]int{}
	for i, rec := range recs {
		if i == 0 {
			for j, name := range rec {
				col[name] = j
			}
			continue
		}
		if rec[col["lease_type"]] != "2" {
			continue
		}
		duid := strings.ReplaceAll(rec[col["duid"]], ":", "")
		bits, _ := strconv.Atoi(rec[col["prefix_len"]])
		p := netip.PrefixFrom(netip.MustParseAddr(rec[col["address"]]), bits)
		if rec[col["valid_lifetime"]] == "0" || rec[col["state"]] != "0" {
			delete(out, duid)
			continue
		}
		out[duid] = p
	}
	return out
}

// The home agent's relay between a mobile router and a real Kea: a relayed
// Solicit gets a prefix from Kea's pd-pool, it is renewed and released,
// and the relay learns each step from the Replies it passes on.
func TestHARelayWithKea(t *testing.T) {
	keaAddr, leases := startKea(t)
	local := freePort(t)
	h, err := dhcpv6pd.NewHARelay(dhcpv6pd.RelayConfig{Server: keaAddr, LinkAddr: netip.MustParseAddr("2001:db8:1::1"), LocalPort: local,
		Routers: map[netip.Addr]bool{netip.IPv6Loopback(): true}})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := ListenUDP(netip.AddrPortFrom(netip.IPv6Loopback(), local))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var evs []dhcpv6pd.Event
	svc := &Service{Conn: conn, Machine: h, OnOutput: func(o dhcpv6pd.Output) {
		mu.Lock()
		evs = append(evs, o.Events...)
		mu.Unlock()
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() { cancel(); conn.Close(); <-done }()
	learned := func(n int) []dhcpv6pd.Event {
		t.Helper()
		end := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			got := append([]dhcpv6pd.Event(nil), evs...)
			mu.Unlock()
			if len(got) >= n || time.Now().After(end) {
				return got
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	r := newRelay(t, netip.AddrPortFrom(netip.IPv6Loopback(), local), false)
	duid := hex.EncodeToString(r.c.Lease().DUID)
	r.send(r.c.Start(time.Now()))
	// Kea may still be starting: the client's retransmissions cover that.
	r.until("delegation from Kea", 30*time.Second, func() bool { return r.c.State() == dhcpv6pd.Bound })
	held := r.c.Prefixes(time.Now())
	if len(held) != 1 || !keaPool.Contains(held[0].Prefix.Addr()) || held[0].Prefix.Bits() != 56 {
		t.Fatalf("delegated %v", held)
	}
	p := held[0].Prefix
	if d := time.Until(held[0].ValidUntil); d < 3990*time.Second || d > 4000*time.Second {
		t.Fatalf("valid for %v", d)
	}
	if got := keaLeases(t, leases)[duid]; got != p {
		t.Fatalf("Kea's lease for %s: %v, the router holds %v", duid, got, p)
	}
	ev := learned(1)
	if len(ev) != 1 || ev[0].Kind != dhcpv6pd.Delegated || ev[0].Prefix != p || ev[0].Router != netip.IPv6Loopback() {
		t.Fatalf("relay learned %v", ev)
	}

	// Renew, as at T1 (the state machine's clock is a parameter: pass T1).
	lease := r.c.Lease()
	r.send(r.c.Tick(lease.T1))
	if r.c.State() != dhcpv6pd.Renewing {
		t.Fatalf("state %v at T1", r.c.State())
	}
	r.until("renewal", 10*time.Second, func() bool { return r.c.State() == dhcpv6pd.Bound })
	if got := r.c.Prefixes(time.Now()); len(got) != 1 || got[0].Prefix != p {
		t.Fatalf("after renew %v", got)
	}
	if ev := learned(2); len(ev) != 2 || ev[1].Kind != dhcpv6pd.Delegated || ev[1].Prefix != p {
		t.Fatalf("relay learned %v", ev)
	}

	// Release: Kea drops the lease, the relay reports the prefix released.
	r.send(r.c.Release(time.Now()))
	r.until("release", 10*time.Second, func() bool { return r.c.State() == dhcpv6pd.Init })
	ev = learned(3)
	if len(ev) != 3 || ev[2] != (dhcpv6pd.Event{Kind: dhcpv6pd.Released, Router: netip.IPv6Loopback(), Prefix: p}) {
		t.Fatalf("relay learned %v", ev)
	}
	if got, ok := keaLeases(t, leases)[duid]; ok {
		t.Fatalf("Kea still has %v for %s", got, duid)
	}
	if c := svc.Counters(); c.Dropped != 0 {
		t.Fatalf("service dropped %d", c.Dropped)
	}
}
