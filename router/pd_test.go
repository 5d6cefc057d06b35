package router_test

import (
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/ndp"

	"nemod/dhcpv6pd"
	"nemod/dhcpv6pd/pdio"
	"nemod/internal/netsim"
	"nemod/internal/twoends"
	"nemod/lab"
	"nemod/nemo"
	"nemod/status"
	"nemod/tunnel"
)

// Prefix delegation between the real daemons (package twoends): the
// router registers in implicit mode, gets a prefix from the home agent's
// built-in pool through its tunnel, and advertises it on its LAN; the
// prefix survives restarts of either end, and leaves the home agent's
// entry when it is released, revoked or expires.

type pdEnds struct {
	*twoends.Ends
	mrLease, haLeases string
}

func newPD(t *testing.T, routerExtra, haExtra string) *pdEnds {
	e := twoends.New(t, "")
	p := &pdEnds{Ends: e, mrLease: filepath.Join(e.Dir, "mr", "pd-lease.json"), haLeases: filepath.Join(e.Dir, "ha", "pd-leases.json")}
	e.WriteRouterConfig(lab.RouterUCIPD(e.MRSock, p.mrLease, routerExtra))
	e.WriteHomeAgentConfig(lab.HomeAgentUCIPD(e.HASock, p.haLeases, netip.Addr{}, haExtra))
	return p
}

// car1 is the home agent's view of car1.
func (p *pdEnds) car1() status.MobileRouter {
	for _, r := range p.HAStatus().MobileRouters {
		if r.Name == "car1" {
			return r
		}
	}
	return status.MobileRouter{}
}

// delegated waits for the router to hold one prefix and returns it.
func (p *pdEnds) delegated(t *testing.T) netip.Prefix {
	t.Helper()
	var got netip.Prefix
	p.Eventually(10*time.Second, "a delegated prefix", func() bool {
		s := p.MRStatus()
		if s.PD == nil || s.PD.State != "bound" || len(s.PD.Prefixes) != 1 {
			return false
		}
		got = netip.MustParsePrefix(s.PD.Prefixes[0].Prefix)
		return true
	})
	return got
}

// haHas waits until the home agent's entry of car1 forwards exactly want
// (none: nothing).
func (p *pdEnds) haHas(t *testing.T, what string, want ...netip.Prefix) {
	t.Helper()
	p.Eventually(10*time.Second, what, func() bool {
		var ws []string
		for _, w := range want {
			ws = append(ws, w.String())
		}
		return slices.Equal(p.car1().MNP, ws)
	})
}

func TestPDFromBuiltInPool(t *testing.T) {
	p := newPD(t, "", "")
	p.Start()
	p.Registered()
	q := p.delegated(t)
	if !lab.PDPool.Contains(q.Addr()) || q.Bits() != 56 {
		t.Fatalf("delegated %v, not a /56 of %v", q, lab.PDPool)
	}
	s := p.MRStatus()
	if s.PD.Server != "[2001:db8:ffff::1]:547" || s.PD.ServerID == "" || s.PD.T1 <= 0 || s.PD.T2 < s.PD.T1 ||
		s.PD.Prefixes[0].Valid <= 0 || s.PD.Counters["malformed"] != 0 || s.PD.ReqPrefix != 56 {
		t.Fatalf("router's prefix delegation: %+v", s.PD)
	}
	if !slices.Equal(s.MNP, []string{q.String()}) {
		t.Fatalf("router's prefixes %v", s.MNP)
	}
	// The home agent's entry forwards it, and says it is a lease.
	p.haHas(t, "the home agent forwards the delegated prefix", q)
	car1 := p.car1()
	if len(car1.Leases) != 1 || car1.Leases[0].Prefix != q.String() {
		t.Fatalf("home agent's leases of car1: %+v", car1.Leases)
	}
	ha := p.HAStatus().PD
	if ha == nil || ha.Mode != "pool" || ha.Counters["delegations"] != 1 || ha.Counters["malformed"] != 0 || ha.Counters["dropped"] != 0 {
		t.Fatalf("home agent's prefix delegation: %+v", ha)
	}
	// The router's data plane and host routing take it.
	if !slices.Equal(p.MRSys.Routes().MNPs, []netip.Prefix{q}) {
		t.Fatalf("the host's rules are for %v", p.MRSys.Routes().MNPs)
	}
	// The LAN gets its first /64, the router ::1 on it, an RA with the
	// prefix, the DNS server and the tunnel MTU.
	lan64 := netip.PrefixFrom(q.Addr(), 64)
	p.Eventually(5*time.Second, "a router advertisement of the prefix", func() bool {
		l := p.LAN(lab.MRLANDev)
		return l != nil && raHas(l.LastRA(), lan64) && slices.Equal(l.Addrs(), []netip.Prefix{netip.PrefixFrom(lan64.Addr().Next(), 64)})
	})
	checkRA(t, p.LAN(lab.MRLANDev).LastRA(), lan64)

	// A host of the LAN reaches the correspondent from its SLAAC address,
	// and the answer comes back.
	host := hostIn(lan64)
	up := netsim.UDP6(host, twoends.CN, 4000, 7, 64, 'u')
	p.MRTUN().Inject(up)
	if !p.HATUN().Expect(up) {
		t.Fatal("a packet from the delegated prefix did not come out of the home agent")
	}
	down := netsim.UDP6(twoends.CN, host, 7, 4000, 64, 'd')
	p.HATUN().Inject(down)
	if !p.MRTUN().Expect(down) {
		t.Fatal("the correspondent's packet did not reach the delegated prefix")
	}
}

func raHas(ra *ndp.RouterAdvertisement, p netip.Prefix) bool {
	if ra == nil {
		return false
	}
	for _, o := range ra.Options {
		if pi, ok := o.(*ndp.PrefixInformation); ok && pi.Prefix == p.Addr() && int(pi.PrefixLength) == p.Bits() && pi.ValidLifetime > 0 {
			return true
		}
	}
	return false
}

func checkRA(t *testing.T, ra *ndp.RouterAdvertisement, p netip.Prefix) {
	t.Helper()
	var mtu, dns bool
	for _, o := range ra.Options {
		switch o := o.(type) {
		case *ndp.MTU:
			mtu = int(o.MTU) == tunnel.MTU(1500, nemo.EncapUDP6)
		case *ndp.RecursiveDNSServer:
			dns = len(o.Servers) == 1 && o.Servers[0] == lab.PDDNS
		case *ndp.PrefixInformation:
			if !o.AutonomousAddressConfiguration || !o.OnLink || o.PreferredLifetime <= 0 || o.PreferredLifetime > o.ValidLifetime {
				t.Errorf("prefix information %+v", o)
			}
		}
	}
	if !mtu || !dns || ra.RouterLifetime == 0 {
		t.Errorf("RA of %v: MTU option %v, RDNSS %v, router lifetime %v: %+v", p, mtu, dns, ra.RouterLifetime, ra)
	}
}

// A router that restarts keeps its prefix: it Rebinds with the lease it
// kept, and the home agent extends the lease instead of delegating anew. A
// home agent that restarts keeps its leases: the router that Rebinds then
// gets the same prefix.
func TestPDSurvivesRestarts(t *testing.T) {
	p := newPD(t, "", "")
	p.Start()
	p.Registered()
	q := p.delegated(t)
	lease, err := (&pdio.FileStore{Path: p.mrLease}).Load()
	if err != nil || lease == nil {
		t.Fatalf("no lease file: %v", err)
	}
	l, err := dhcpv6pd.DecodeLease(lease)
	if err != nil || len(l.Prefixes) != 1 || l.Prefixes[0].Prefix != q {
		t.Fatalf("lease file %+v %v", l, err)
	}

	p.RestartMR()
	p.Registered()
	if got := p.delegated(t); got != q {
		t.Fatalf("after the router's restart: %v, was %v", got, q)
	}
	c := p.HAStatus().PD.Counters
	if c["delegations"] != 1 || c["renewals"] < 1 {
		t.Fatalf("the restart was not a Rebind of the lease: %v", c)
	}
	l2, _ := dhcpv6pd.DecodeLease(mustLoad(t, p.mrLease))
	if !l2.DUID.Equal(l.DUID) {
		t.Fatal("the router's DUID changed across its restart")
	}

	p.RestartHA()
	// The lease came back from the file, before anyone asked.
	if car1 := p.car1(); len(car1.Leases) != 1 || car1.Leases[0].Prefix != q.String() {
		t.Fatalf("home agent's leases after its restart: %+v", car1.Leases)
	}
	p.Registered()
	p.haHas(t, "the home agent forwards the prefix after its restart", q)
	p.RestartMR()
	p.Registered()
	if got := p.delegated(t); got != q {
		t.Fatalf("after both restarts: %v, was %v", got, q)
	}
	if c := p.HAStatus().PD.Counters; c["delegations"] != 0 || c["renewals"] != 1 {
		t.Fatalf("the restarted home agent did not extend its stored lease: %v", c)
	}
}

func mustLoad(t *testing.T, path string) []byte {
	t.Helper()
	b, err := (&pdio.FileStore{Path: path}).Load()
	if err != nil || b == nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

// With option pd_release the router gives its prefix back when it stops:
// the home agent's entry and leases lose it at once.
func TestPDReleasedAtShutdown(t *testing.T) {
	p := newPD(t, "\toption pd_release '1'\n", "")
	p.Start()
	p.Registered()
	q := p.delegated(t)
	p.haHas(t, "the delegated prefix", q)
	if err := p.StopMR(); err != nil {
		t.Fatal(err)
	}
	p.Eventually(5*time.Second, "the release", func() bool {
		return len(p.car1().Leases) == 0 && p.HAStatus().PD.Counters["releases"] == 1
	})
	l, _ := dhcpv6pd.DecodeLease(mustLoad(t, p.mrLease))
	if len(l.Prefixes) != 0 || l.Hint != q {
		t.Fatalf("the router's lease after its release: %+v", l)
	}
}

// A prefix revoked while the router is registered (option pd removed by a
// reload) leaves the home agent's entry: what the router still sends from
// it is dropped at the home agent and counted.
func TestPDRevokedPrefixIsDropped(t *testing.T) {
	p := newPD(t, "", "")
	p.Start()
	p.Registered()
	q := p.delegated(t)
	p.haHas(t, "the delegated prefix", q)
	host := hostIn(q)
	up := netsim.UDP6(host, twoends.CN, 4000, 7, 64, 'x')
	p.MRTUN().Inject(up)
	if !p.HATUN().Expect(up) {
		t.Fatal("not forwarded while delegated")
	}
	bad := p.HAStatus().DataPlane.Drops[tunnel.DropBadSource.String()]
	text := lab.HomeAgentUCIPD(p.HASock, p.haLeases, netip.Addr{}, "")
	p.WriteHomeAgentConfig(strings.Replace(text, "\toption pd '1'\n", "", 1))
	var rl status.Reload
	if err := twoends.Ctl(p.HASock, "reload", &rl); err != nil || !slices.Contains(rl.Applied, "mobile_router car1.pd") {
		t.Fatalf("reload: %+v %v", rl, err)
	}
	p.haHas(t, "the revoked prefix gone")
	if car1 := p.car1(); len(car1.Bindings) == 0 || len(car1.Leases) != 0 {
		t.Fatalf("car1 after the revocation: %+v", car1)
	}
	p.MRTUN().Inject(up)
	p.Eventually(5*time.Second, "the packet from the revoked prefix dropped", func() bool {
		return p.HAStatus().DataPlane.Drops[tunnel.DropBadSource.String()] > bad
	})
	if !p.HATUN().Quiet(up, 200*time.Millisecond) {
		t.Fatal("a packet from the revoked prefix came out of the home agent")
	}
}

// hostIn is an address a LAN host could have made itself in p.
func hostIn(p netip.Prefix) netip.Addr {
	b := p.Addr().As16()
	copy(b[8:], []byte{0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55})
	return netip.AddrFrom16(b)
}

// A lease nobody renews expires at the home agent (short lifetimes here,
// and the router gone without a word).
func TestPDLeaseExpires(t *testing.T) {
	p := newPD(t, "", "\toption pd_valid_lifetime '3'\n\toption pd_preferred_lifetime '2'\n")
	p.Start()
	p.Registered()
	q := p.delegated(t)
	if err := p.StopMR(); err != nil {
		t.Fatal(err)
	}
	if car1 := p.car1(); len(car1.Leases) != 1 || car1.Leases[0].Prefix != q.String() {
		t.Fatalf("the lease ended before its time: %+v", car1.Leases)
	}
	p.Eventually(6*time.Second, "the lease's expiry", func() bool {
		return len(p.car1().Leases) == 0 && p.HAStatus().PD.Counters["expirations"] == 1
	})
	st, err := dhcpv6pd.DecodeServerState(mustLoad(t, p.haLeases))
	if err != nil || len(st.Leases) != 1 || st.Leases[0].Active || st.Leases[0].Prefix != q {
		t.Fatalf("the home agent's lease file after the expiry: %+v %v", st, err)
	}
}
