package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"nemod/internal/testenv"
	"nemod/lab"
	"nemod/status"
	"nemod/tunnel"
)

// Prefix delegation in the lab (RFC 6276): car1 has no configured prefix,
// gets one from the home agent by DHCPv6 through its tunnel, and
// advertises it on lan0; the LAN host has no static address and
// configures itself by SLAAC (the kernel's accept_ra), then reaches the
// correspondent from that address through the tunnel.

// newPDEnv is newEnv turned into the prefix delegation lab, with the
// built-in pool, or relaying to server when it is valid.
func newPDEnv(t *testing.T, server netip.Addr, routerExtra string) *env {
	t.Helper()
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.lab.ForPD(ctx); err != nil {
		t.Fatal(err)
	}
	e.mrConf = e.write("mr.uci", lab.RouterUCIPD(e.mrSock, filepath.Join(e.lab.Dir(), "mr-lease.json"), routerExtra))
	e.haConf = e.write("ha.uci", lab.HomeAgentUCIPD(e.haSock, filepath.Join(e.lab.Dir(), "ha-leases.json"), server, ""))
	return e
}

// delegated waits for the router to hold a prefix of pool and returns it.
func (e *env) delegated(pool netip.Prefix) netip.Prefix {
	e.t.Helper()
	var q netip.Prefix
	eventually(e.t, 20*time.Second, "a delegated prefix", func() bool {
		s := e.mrStatus()
		if s.PD == nil || s.PD.State != "bound" || len(s.PD.Prefixes) != 1 {
			return false
		}
		q = netip.MustParsePrefix(s.PD.Prefixes[0].Prefix)
		return true
	})
	if !pool.Contains(q.Addr()) || q.Bits() != 56 {
		e.t.Fatalf("delegated %v, not a /56 of %v", q, pool)
	}
	return q
}

// slaac waits for the LAN host's SLAAC address in lan64 and a default
// route, and returns the address.
func (e *env) slaac(lan64 netip.Prefix) netip.Addr {
	e.t.Helper()
	var a netip.Addr
	eventually(e.t, 20*time.Second, "the LAN host's SLAAC address in "+lan64.String(), func() bool {
		a = e.lanAddr(lan64)
		if !a.IsValid() {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, err := e.lab.Run(ctx, lab.LAN, "ip", "-6", "route", "show", "default")
		return err == nil && strings.Contains(out, "proto ra")
	})
	return a
}

// lanAddr is the LAN host's non-tentative dynamic address in lan64 with
// a valid lifetime left, or the zero Addr.
func (e *env) lanAddr(lan64 netip.Prefix) netip.Addr {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := e.lab.Run(ctx, lab.LAN, "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global")
	if err != nil {
		return netip.Addr{}
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] != "inet6" {
				continue
			}
			p, err := netip.ParsePrefix(f[i+1])
			if err == nil && lan64.Contains(p.Addr()) && strings.Contains(line, "dynamic") && !strings.Contains(line, "tentative") &&
				!strings.Contains(line, "valid_lft 0sec") {
				return p.Addr()
			}
		}
	}
	return netip.Addr{}
}

func lan64Of(q netip.Prefix) netip.Prefix { return netip.PrefixFrom(q.Addr(), 64) }

// pingCN pings the correspondent from the LAN host's address a.
func (e *env) pingCN(a netip.Addr, count int) {
	e.t.Helper()
	if out, err := e.ping6(lab.LAN, lab.CN6.String(), count, "-I", a.String()); err != nil {
		e.t.Fatalf("ping from %v: %v\n%s", a, err, out)
	}
}

// checkDHCPv6 has tshark decode every DHCPv6 message of a capture of the
// tunnel: relayed messages with an IA_PD and an IA Prefix both ways, and
// none malformed.
func checkDHCPv6(t *testing.T, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := lab.PcapFields(ctx, path, "dhcpv6", "dhcpv6.msgtype", "dhcpv6.option.type")
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]bool{}
	iapd := 0
	for _, r := range rows {
		for _, m := range strings.Split(r[0], ",") {
			types[m] = true
		}
		if len(r) > 1 && slices.Contains(strings.Split(r[1], ","), "25") && slices.Contains(strings.Split(r[1], ","), "26") {
			iapd++
		}
	}
	// 12 Relay-forward, 13 Relay-reply; inside them Solicit (1) and
	// Reply (7) at least.
	for _, want := range []string{"12", "13", "1", "7"} {
		if !types[want] {
			t.Errorf("no DHCPv6 message of type %s in the tunnel: %v (%d messages)", want, types, len(rows))
		}
	}
	if iapd < 2 {
		t.Errorf("%d messages with an IA_PD holding an IA Prefix, want both directions", iapd)
	}
	bad, err := lab.PcapFields(ctx, path, "dhcpv6 && (_ws.malformed || _ws.expert.severity >= error)", "frame.number", "_ws.expert.message")
	if err != nil || len(bad) != 0 {
		t.Errorf("tshark finds DHCPv6 messages malformed: %q %v", bad, err)
	}
}

// The built-in pool: the prefix arrives by DHCPv6 through the tunnel, the
// LAN host configures itself from the router's advertisements and reaches
// the correspondent over Wi-Fi, then over the cellular NAT alone; tshark
// decodes every DHCPv6 message in the tunnel.
func TestPDLANHostBySLAAC(t *testing.T) {
	t.Parallel()
	e := newPDEnv(t, netip.Addr{}, "")
	e.startHA()
	cap, err := e.lab.Capture(lab.HA, lab.HADev, "ip6 proto 41 or udp port 4191")
	if err != nil {
		t.Fatal(err)
	}
	e.startMR()
	e.registered()
	q := e.delegated(lab.PDPool)
	a := e.slaac(lan64Of(q))
	path, err := cap.Stop()
	if err != nil {
		t.Fatal(err)
	}
	checkDHCPv6(t, path)
	e.pingCN(a, 3)
	if err := e.lab.CarrierDown("wifi"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "only the cellular binding", func() bool { return len(e.haBindings()) == 1 })
	e.pingCN(a, 3)
	s := e.mrStatus()
	if len(s.LANs) != 1 || !slices.Contains(s.LANs[0].Prefixes, lan64Of(q).String()) || s.LANs[0].Counters["sent"] == 0 {
		t.Fatalf("router's LAN: %+v", s.LANs)
	}
	var ctl string
	if err := e.runCtl(lab.MR, e.mrSock, &ctl, "status"); err != nil || !strings.Contains(ctl, "prefix delegation: bound, server [2001:db8:ffff::1]:547") || !strings.Contains(ctl, q.String()) {
		t.Fatalf("ctl status does not show the prefix: %v\n%s", err, ctl)
	}
}

// Restarts: the router Rebinds and keeps its prefix, the LAN host's
// address stays valid and keeps working; the home agent restarted keeps
// its leases, so the router gets the same prefix again.
func TestPDPrefixSurvivesRestarts(t *testing.T) {
	t.Parallel()
	e := newPDEnv(t, netip.Addr{}, "")
	e.startHA()
	e.startMR()
	e.registered()
	q := e.delegated(lab.PDPool)
	a := e.slaac(lan64Of(q))
	e.pingCN(a, 2)

	restartMR := func() {
		if err := e.mr.Stop(); err != nil {
			t.Fatal(err)
		}
		if got := e.lanAddr(lan64Of(q)); got != a {
			t.Fatalf("the LAN host's address is gone while the router restarts: %v", got)
		}
		e.startMR()
		e.registered()
		if got := e.delegated(lab.PDPool); got != q {
			t.Fatalf("after a restart the router holds %v, was %v", got, q)
		}
	}
	restartMR()
	if c := e.haStatus().PD.Counters; c["delegations"] != 1 || c["renewals"] < 1 {
		t.Fatalf("the router's restart was not a Rebind: %v", c)
	}
	e.pingCN(a, 2)

	if err := e.ha.Stop(); err != nil {
		t.Fatal(err)
	}
	e.startHA()
	restartMR()
	if got := e.lanAddr(lan64Of(q)); got != a {
		t.Fatalf("the LAN host's address after both restarts: %v, was %v", got, a)
	}
	e.pingCN(a, 2)
}

// A prefix the home agent takes back (option pd removed by a reload)
// leaves car1's entry at once: the LAN host's packets from it are dropped
// at the home agent, and counted.
func TestPDRevokedPrefixDropped(t *testing.T) {
	t.Parallel()
	e := newPDEnv(t, netip.Addr{}, "")
	e.startHA()
	e.startMR()
	e.registered()
	q := e.delegated(lab.PDPool)
	a := e.slaac(lan64Of(q))
	e.pingCN(a, 1)
	before := e.haStatus().DataPlane.Drops[tunnel.DropBadSource.String()]
	text := lab.HomeAgentUCIPD(e.haSock, filepath.Join(e.lab.Dir(), "ha-leases.json"), netip.Addr{}, "")
	e.write("ha.uci", strings.Replace(text, "\toption pd '1'\n", "", 1))
	var out string
	if err := e.runCtl(lab.HA, e.haSock, &out, "reload"); err != nil {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	eventually(t, 5*time.Second, "the prefix out of car1's entry", func() bool {
		for _, r := range e.haStatus().MobileRouters {
			if r.Name == "car1" {
				return len(r.MNP) == 0 && len(r.Leases) == 0 && len(r.Bindings) > 0
			}
		}
		return false
	})
	if _, err := e.ping6(lab.LAN, lab.CN6.String(), 2, "-I", a.String()); err == nil {
		t.Fatal("the revoked prefix still reaches the correspondent")
	}
	if after := e.haStatus().DataPlane.Drops[tunnel.DropBadSource.String()]; after < before+2 {
		t.Fatalf("drops of a foreign source at the home agent: %d, were %d", after, before)
	}
}

// startKea runs Debian's kea-dhcp6 in ha's namespace as nobody, on
// [lab.DHCPv6Server]:547 (an address on ha's loopback device; the
// namespace lets unprivileged processes bind low ports), delegating /56s of
// lab.PDPool, its memfile leases in a temp dir.
func startKea(t *testing.T, e *env) string {
	t.Helper()
	kea := testenv.NeedTool(t, "kea-dhcp6")
	testenv.NeedTool(t, "setpriv")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := e.lab.Run(ctx, lab.HA, "ip", "addr", "add", lab.DHCPv6Server.String()+"/128", "dev", "lo", "nodad"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.lab.Run(ctx, lab.HA, "sysctl", "-q", "-w", "net.ipv4.ip_unprivileged_port_start=0"); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "nemod-e2e-kea-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	leases := filepath.Join(dir, "leases6.csv")
	conf := fmt.Sprintf(`{"Dhcp6": {
  "interfaces-config": {"interfaces": ["lo/%s"]},
  "server-id": {"type": "EN", "enterprise-id": 2495, "identifier": "6e656d6f64", "persist": false},
  "lease-database": {"type": "memfile", "name": %q, "lfc-interval": 0},
  "renew-timer": 1000, "rebind-timer": 1600, "preferred-lifetime": 2000, "valid-lifetime": 4000,
  "subnet6": [{"id": 1, "subnet": "2001:db8:ffff::/48",
    "pd-pools": [{"prefix": "%s", "prefix-len": %d, "delegated-len": 56}]}],
  "loggers": [{"name": "kea-dhcp6", "output_options": [{"output": %q}], "severity": "INFO"}]
}}`, lab.DHCPv6Server, leases, lab.PDPool.Addr(), lab.PDPool.Bits(), filepath.Join(dir, "kea.log"))
	cfg := filepath.Join(dir, "kea.json")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", e.lab.NS(lab.HA), "setpriv", "--reuid", u.Uid, "--regid", u.Gid, "--clear-groups",
		"env", "KEA_LOCKFILE_DIR="+dir, "KEA_PIDFILE_DIR="+dir, kea, "-c", cfg)
	out, err := os.Create(filepath.Join(dir, "kea.out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr, cmd.Dir = out, out, dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		out.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "kea.log"))
			o, _ := os.ReadFile(filepath.Join(dir, "kea.out"))
			t.Logf("kea:\n%s\n%s", o, b)
		}
	})
	return leases
}

// The home agent relays to a real Kea: the prefix comes from Kea's
// pd-pool, the home agent learns it from the Reply it passes back and
// forwards it; the LAN host configures itself and reaches the
// correspondent; tshark decodes the relayed messages in the tunnel.
func TestPDRelayedToKea(t *testing.T) {
	t.Parallel()
	e := newPDEnv(t, lab.DHCPv6Server, "")
	leases := startKea(t, e)
	e.startHA()
	cap, err := e.lab.Capture(lab.HA, lab.HADev, "ip6 proto 41 or udp port 4191")
	if err != nil {
		t.Fatal(err)
	}
	e.startMR()
	e.registered()
	q := e.delegated(lab.PDPool)
	a := e.slaac(lan64Of(q))
	path, err := cap.Stop()
	if err != nil {
		t.Fatal(err)
	}
	checkDHCPv6(t, path)
	e.pingCN(a, 3)
	s := e.haStatus()
	if s.PD == nil || s.PD.Mode != "relay" || s.PD.Server != "[2001:db8:ffff::547]:547" || s.PD.Counters["learned"] < 1 || s.PD.Counters["malformed"] != 0 {
		t.Fatalf("home agent's relay: %+v", s.PD)
	}
	var car1 status.MobileRouter
	for _, r := range s.MobileRouters {
		if r.Name == "car1" {
			car1 = r
		}
	}
	if !slices.Equal(car1.MNP, []string{q.String()}) || len(car1.Leases) != 1 {
		t.Fatalf("car1 at the home agent: %+v", car1)
	}
	b, err := os.ReadFile(leases)
	if err != nil || !strings.Contains(string(b), q.Addr().String()) {
		t.Fatalf("Kea's leases do not hold %v: %v\n%s", q, err, b)
	}
}
