package ranet

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"nemod/internal/testenv"
	"nemod/lab"
	"nemod/ra"
)

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// netnsPair makes a router and a host namespace joined by a veth pair
// (r0 in the router's, h0 in the host's), named for this run, removed on
// every exit path.
func netnsPair(t *testing.T) (rns, hns string) {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "ip", "sysctl")
	id := fmt.Sprintf("nemod-ra-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	rns, hns = id+"-r", id+"-h"
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", rns).Run()
		exec.Command("ip", "netns", "del", hns).Run()
	})
	run(t, "ip", "netns", "add", rns)
	run(t, "ip", "netns", "add", hns)
	run(t, "ip", "-n", rns, "link", "add", "r0", "type", "veth", "peer", "name", "h0", "netns", hns)
	// The host as a SLAAC host: accepts RAs even if forwarding were on,
	// forwards nothing, no DAD delay to wait for.
	for _, kv := range []string{"net.ipv6.conf.h0.accept_ra=2", "net.ipv6.conf.h0.forwarding=0", "net.ipv6.conf.h0.autoconf=1",
		"net.ipv6.conf.h0.accept_dad=0", "net.ipv6.conf.h0.use_tempaddr=0"} {
		run(t, "ip", "netns", "exec", hns, "sysctl", "-q", "-w", kv)
	}
	run(t, "ip", "netns", "exec", rns, "sysctl", "-q", "-w", "net.ipv6.conf.r0.accept_dad=0")
	run(t, "ip", "netns", "exec", rns, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1")
	run(t, "ip", "-n", rns, "link", "set", "r0", "up")
	run(t, "ip", "-n", hns, "link", "set", "h0", "up")
	run(t, "ip", "-n", rns, "link", "set", "lo", "up")
	return rns, hns
}

type addrInfo struct {
	Family    string `json:"family"`
	Local     string `json:"local"`
	PrefixLen int    `json:"prefixlen"`
	Scope     string `json:"scope"`
	Valid     uint64 `json:"valid_life_time"`
	Preferred uint64 `json:"preferred_life_time"`
	Tentative bool   `json:"tentative"`
}

// addrs reads `ip -6 -j addr show dev` in a namespace.
func addrs(t *testing.T, ns, dev string) []addrInfo {
	t.Helper()
	var links []struct {
		AddrInfo []addrInfo `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(run(t, "ip", "-n", ns, "-6", "-j", "addr", "show", "dev", dev)), &links); err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 {
		t.Fatalf("%d links", len(links))
	}
	return links[0].AddrInfo
}

func inPrefix(as []addrInfo, p netip.Prefix) *addrInfo {
	for i, a := range as {
		if ip, err := netip.ParseAddr(a.Local); err == nil && p.Contains(ip) {
			return &as[i]
		}
	}
	return nil
}

func waitFor(t *testing.T, what string, d time.Duration, f func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !f() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A host namespace gets a SLAAC address from our RA, with the lease's
// lifetimes capped; a default route only once a binding is registered; a
// prefix change deprecates the old address without a reboot.
func TestSLAACInNamespaces(t *testing.T) {
	rns, hns := netnsPair(t)
	// The router's link-local address must be usable before ndp.Listen.
	waitFor(t, "router link-local", 10*time.Second, func() bool {
		a := inPrefix(addrs(t, rns, "r0"), netip.MustParsePrefix("fe80::/64"))
		return a != nil && !a.Tentative
	})
	adv, err := ra.NewAdvertiser(ra.Config{MTU: 1400, DNS: []netip.Addr{netip.MustParseAddr("2001:db8::53")}}, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	var lan *LAN
	if err := lab.InNamespace(rns, func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return err
		}
		t.Cleanup(h.Close)
		lan, err = Open("r0", adv, &Netlink{H: h})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lan.Run(ctx) }()
	defer func() { cancel(); <-done }()

	now := time.Now()
	mnp := ra.MNP{Prefix: netip.MustParsePrefix("2001:db8:200:4400::/56"), PreferredUntil: now.Add(4 * time.Hour), ValidUntil: now.Add(24 * time.Hour)}
	subs, err := ra.Plan([]ra.MNP{mnp}, []ra.LAN{{Name: "r0"}})
	if err != nil {
		t.Fatal(err)
	}
	first := subs[0].Prefix
	lan.Update(subs, false)
	var got *addrInfo
	waitFor(t, "SLAAC address", 15*time.Second, func() bool {
		got = inPrefix(addrs(t, hns, "h0"), first)
		return got != nil
	})
	if got.PrefixLen != 64 || got.Preferred == 0 || got.Preferred > 2700 || got.Valid > 5400 || got.Valid < 5300 {
		t.Fatalf("host address %+v", got)
	}
	// The router has its own address, ::1 of the /64.
	if r := inPrefix(addrs(t, rns, "r0"), first); r == nil || r.Local != "2001:db8:200:4400::1" || r.PrefixLen != 64 {
		t.Fatalf("router address %+v", r)
	}
	// No binding yet: no default route through us.
	if out := run(t, "ip", "-n", hns, "-6", "route", "show", "default"); strings.TrimSpace(out) != "" {
		t.Fatalf("default route without a binding: %s", out)
	}
	lan.Update(subs, true)
	waitFor(t, "default route", 15*time.Second, func() bool {
		return strings.Contains(run(t, "ip", "-n", hns, "-6", "route", "show", "default"), "via fe80::")
	})
	// The MTU option reached the host.
	if out := run(t, "ip", "netns", "exec", hns, "sysctl", "-n", "net.ipv6.conf.h0.mtu"); strings.TrimSpace(out) != "1400" {
		t.Fatalf("host MTU %s", out)
	}

	// A new delegated prefix: the host gets an address in it, and the old
	// one is deprecated (preferred lifetime 0) but still valid.
	mnp2 := ra.MNP{Prefix: netip.MustParsePrefix("2001:db8:200:9900::/56"), PreferredUntil: now.Add(4 * time.Hour), ValidUntil: now.Add(24 * time.Hour)}
	subs2, _ := ra.Plan([]ra.MNP{mnp2}, []ra.LAN{{Name: "r0"}})
	lan.Update(subs2, true)
	waitFor(t, "old address deprecated, new one there", 15*time.Second, func() bool {
		as := addrs(t, hns, "h0")
		o, n := inPrefix(as, first), inPrefix(as, subs2[0].Prefix)
		return o != nil && o.Preferred == 0 && o.Valid > 0 && n != nil && n.Preferred > 0
	})
	if r := inPrefix(addrs(t, rns, "r0"), subs2[0].Prefix); r == nil || r.Local != "2001:db8:200:9900::1" {
		t.Fatalf("router address on the new prefix %+v", r)
	}
	if c := lan.Counters(); c.Sent < 3 || c.SendErrors != 0 || c.AddrErrors != 0 {
		t.Fatalf("counters %+v", c)
	}
}

// A Router Solicitation from the host is answered at once, not at the next
// unsolicited RA (600 s away after the initial ones).
func TestAnswersRouterSolicitation(t *testing.T) {
	rns, hns := netnsPair(t)
	waitFor(t, "router link-local", 10*time.Second, func() bool {
		a := inPrefix(addrs(t, rns, "r0"), netip.MustParsePrefix("fe80::/64"))
		return a != nil && !a.Tentative
	})
	adv, _ := ra.NewAdvertiser(ra.Config{}, rand.New(rand.NewPCG(3, 4)))
	var lan *LAN
	if err := lab.InNamespace(rns, func() error {
		var err error
		lan, err = Open("r0", adv, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lan.Run(ctx) }()
	defer func() { cancel(); <-done }()
	// The host ignores the first RA...
	run(t, "ip", "netns", "exec", hns, "sysctl", "-q", "-w", "net.ipv6.conf.h0.accept_ra=0")
	now := time.Now()
	subs, _ := ra.Plan([]ra.MNP{{Prefix: netip.MustParsePrefix("2001:db8:77::/48"), PreferredUntil: now.Add(time.Hour), ValidUntil: now.Add(2 * time.Hour)}}, []ra.LAN{{Name: "r0"}})
	lan.Update(subs, true)
	waitFor(t, "first RA", 10*time.Second, func() bool { return lan.Counters().Sent >= 1 })
	start := time.Now()
	// ...then listens, and solicits as its interface comes up. The next
	// initial RA is 16 s away (MAX_INITIAL_RTR_ADVERT_INTERVAL: the random
	// interval is at least 200 s); the answer (at most
	// MIN_DELAY_BETWEEN_RAS + MAX_RA_DELAY after the first RA) gives the
	// host its address well before that.
	run(t, "ip", "netns", "exec", hns, "sysctl", "-q", "-w", "net.ipv6.conf.h0.accept_ra=2")
	run(t, "ip", "-n", hns, "link", "set", "h0", "down")
	run(t, "ip", "-n", hns, "link", "set", "h0", "up")
	waitFor(t, "answer to the host's solicitation", 12*time.Second, func() bool {
		return inPrefix(addrs(t, hns, "h0"), subs[0].Prefix) != nil
	})
	if c := lan.Counters(); c.Sent != 2 || c.Dropped != 0 || time.Since(start) > 12*time.Second {
		t.Fatalf("counters %+v after %v, want the first RA and the answer", c, time.Since(start))
	}
}

// The netlink shell removes only the addresses it added.
func TestNetlinkKeepsForeignAddresses(t *testing.T) {
	rns, _ := netnsPair(t)
	run(t, "ip", "-n", rns, "addr", "add", "2001:db8:5::7/64", "dev", "r0")
	err := lab.InNamespace(rns, func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return err
		}
		defer h.Close()
		n := &Netlink{H: h}
		a, b := netip.MustParsePrefix("2001:db8:6::1/64"), netip.MustParsePrefix("2001:db8:7::1/64")
		if err := n.SetAddrs("r0", []netip.Prefix{a, b}); err != nil {
			return err
		}
		return n.SetAddrs("r0", []netip.Prefix{b})
	})
	if err != nil {
		t.Fatal(err)
	}
	as := addrs(t, rns, "r0")
	if inPrefix(as, netip.MustParsePrefix("2001:db8:5::/64")) == nil || inPrefix(as, netip.MustParsePrefix("2001:db8:6::/64")) != nil ||
		inPrefix(as, netip.MustParsePrefix("2001:db8:7::/64")) == nil {
		t.Fatalf("addresses %+v", as)
	}
}
