package binding

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"nemod/nemo"
)

var (
	pool4   = netip.MustParsePrefix("10.200.0.0/16")
	hoa4    = netip.MustParseAddr("10.199.0.2")
	mnp4    = netip.MustParsePrefix("10.201.5.0/24")
	hoaCar2 = netip.MustParseAddr("2001:db8:ffff:1::200")
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// ipv4World is a router asking for the given IPv4 and a home agent with a
// pool and car1's static claims, both uplinks up.
func ipv4World(t *testing.T, v4 func(*UpdateListConfig), ha func(*HAConfig)) *world {
	rc := routerConfig()
	v4(&rc)
	hc := haConfig()
	hc.Peers[0].HoAv4, hc.Peers[0].MNPsV4 = hoa4, []netip.Prefix{mnp4}
	hc.Peers = append(hc.Peers, Peer{Name: "car2", HoA: hoaCar2, SPI: 257, Key: key})
	hc.Pool4 = NewPool4(pool4, IPv4Claims(hc.Peers), nil)
	hc.LeaseV4 = 300 * time.Second
	if ha != nil {
		ha(&hc)
	}
	w := bothUp(t, rc, hc)
	w.step()
	if got := w.states(); got != "wifi=registered/ipv6 cell=registered/udp4" {
		t.Fatalf("registration: %s", got)
	}
	return w
}

func (w *world) lastBA() *nemo.BindingAck {
	w.t.Helper()
	res := w.results[len(w.results)-1]
	p, err := nemo.ParsePacket(res.Reply)
	if err != nil {
		w.t.Fatal(err)
	}
	var ba nemo.BindingAck
	if err := nemo.Unmarshal(p.MH, &ba); err != nil {
		w.t.Fatal(err)
	}
	return &ba
}

// A router with a static IPv4 home address and prefix gets both: each
// option answered in order, the home agent forwarding them, the router's
// IPv4 what was granted; the lifetime is not capped (no lease).
func TestIPv4StaticClaims(t *testing.T) {
	w := ipv4World(t, func(rc *UpdateListConfig) { rc.HoAv4, rc.MNPsV4 = hoa4, []netip.Prefix{mnp4} }, nil)
	ba := w.lastBA()
	want := []nemo.IPv4AddrAck{{Status: 0, PrefixLen: 32, Addr: hoa4}, {Status: 0, PrefixLen: 24, Addr: mnp4.Addr()}}
	if !reflect.DeepEqual(ba.IPv4AddrAcks, want) || ba.Lifetime != nemo.Lifetime(600*time.Second) {
		t.Fatalf("acknowledgements %+v, lifetime %d", ba.IPv4AddrAcks, ba.Lifetime)
	}
	e := w.c.Entry(hoa)
	if got := e.PrefixesV4(); !reflect.DeepEqual(got, []netip.Prefix{pfx("10.199.0.2/32"), mnp4}) || e.V4.Dynamic {
		t.Fatalf("forwarded %v (dynamic %v)", got, e.V4.Dynamic)
	}
	if a, p := w.r.IPv4(); a != hoa4 || !reflect.DeepEqual(p, []netip.Prefix{mnp4}) {
		t.Fatalf("router's IPv4: %s %v", a, p)
	}
	// Losing every binding stops the forwarding; what is granted stays
	// the router's.
	w.down(0)
	w.down(1)
	w.run(time.Second)
	w.c.Expire(w.now.Add(time.Hour))
	if got := e.PrefixesV4(); got != nil {
		t.Fatalf("forwarded without bindings: %v", got)
	}
}

// Dynamic assignment: 0.0.0.0 and a prefix length get an address and a
// prefix from the pool; refreshes name them as granted and keep them; the
// lease caps the lifetime; the pool remembers them for the router.
func TestIPv4DynamicAssignment(t *testing.T) {
	w := ipv4World(t, func(rc *UpdateListConfig) { rc.HoAv4, rc.MNPv4Length = netip.IPv4Unspecified(), 24 },
		func(hc *HAConfig) { hc.Peers[0].HoAv4, hc.Peers[0].MNPsV4 = netip.Addr{}, nil })
	ba := w.lastBA()
	want := []nemo.IPv4AddrAck{{Status: 0, PrefixLen: 32, Addr: netip.MustParseAddr("10.200.0.1")}, {Status: 0, PrefixLen: 24, Addr: netip.MustParseAddr("10.200.1.0")}}
	if !reflect.DeepEqual(ba.IPv4AddrAcks, want) {
		t.Fatalf("acknowledgements %+v", ba.IPv4AddrAcks)
	}
	if ba.Lifetime != nemo.Lifetime(300*time.Second) {
		t.Fatalf("lifetime %d units, want the 300 s lease", ba.Lifetime)
	}
	a, p := w.r.IPv4()
	if a != netip.MustParseAddr("10.200.0.1") || !reflect.DeepEqual(p, []netip.Prefix{pfx("10.200.1.0/24")}) {
		t.Fatalf("router's IPv4: %s %v", a, p)
	}
	if opts := w.r.ipv4Options(); opts[0].Addr != a || opts[1].Addr != p[0].Addr() || opts[1].PrefixLen != 24 || !opts[1].P {
		t.Fatalf("refresh options %+v", opts)
	}
	gen := w.r.Gen()
	w.run(10 * time.Minute) // refreshes through the NAT keepalive and the lease
	if a2, p2 := w.r.IPv4(); a2 != a || !reflect.DeepEqual(p2, p) || w.c.IPv4Refused != 0 {
		t.Fatalf("after refreshes: %s %v, refused %d", a2, p2, w.c.IPv4Refused)
	}
	if w.r.Gen() != gen {
		t.Errorf("refreshes that granted the same changed the generation")
	}
	as := w.c.cfg.Pool4.Assignments()
	if len(as) != 1 || as[0].HoA != hoa || as[0].Address != a || !reflect.DeepEqual(as[0].Prefixes, p) || !as[0].Expires.After(w.now) {
		t.Fatalf("pool's assignments %+v", as)
	}
}

// A static claim the router may not make is refused with RFC 5555's code,
// counted at both ends; the IPv6 registration is accepted all the same.
func TestIPv4RefusedClaims(t *testing.T) {
	for _, tc := range []struct {
		name string
		rc   func(*UpdateListConfig)
		ha   func(*HAConfig)
		want []uint8
	}{
		{"another router's address", func(rc *UpdateListConfig) { rc.HoAv4 = netip.MustParseAddr("10.199.0.9") }, nil, []uint8{nemo.IPv4StatusIncorrectHoA}},
		{"a prefix not its own", func(rc *UpdateListConfig) { rc.MNPsV4 = []netip.Prefix{pfx("10.201.6.0/24")} }, nil, []uint8{nemo.IPv4StatusPrefixUnauth}},
		{"a pool address not assigned to it", func(rc *UpdateListConfig) { rc.HoAv4 = netip.MustParseAddr("10.200.0.7") }, nil, []uint8{nemo.IPv4StatusIncorrectHoA}},
		{"a multicast address", func(rc *UpdateListConfig) { rc.HoAv4 = netip.MustParseAddr("224.0.0.9") }, nil, []uint8{nemo.IPv4StatusInvalidAddr}},
		{"no pool", func(rc *UpdateListConfig) { rc.MNPv4Length = 24 }, func(hc *HAConfig) { hc.Pool4 = nil; hc.Peers[0].MNPsV4 = nil }, []uint8{nemo.IPv4StatusDynamicNotAvail}},
		{"no IPv4 at all", func(rc *UpdateListConfig) { rc.HoAv4 = netip.IPv4Unspecified() }, func(hc *HAConfig) {
			hc.Pool4 = nil
			hc.Peers[0].HoAv4, hc.Peers[0].MNPsV4 = netip.Addr{}, nil
		}, []uint8{nemo.IPv4StatusProhibited}},
		{"more than the pool holds", func(rc *UpdateListConfig) { rc.MNPv4Length = 15 }, func(hc *HAConfig) { hc.Peers[0].MNPsV4 = nil }, []uint8{nemo.IPv4StatusDynamicNotAvail}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := ipv4World(t, tc.rc, tc.ha)
			ba := w.lastBA()
			if ba.Status != nemo.StatusAccepted || len(ba.IPv4AddrAcks) != len(tc.want) {
				t.Fatalf("BA status %d, acknowledgements %+v", ba.Status, ba.IPv4AddrAcks)
			}
			for i, st := range tc.want {
				if a := ba.IPv4AddrAcks[i]; a.Status != st || a.PrefixLen != 0 {
					t.Errorf("acknowledgement %d: %+v, want status %d", i, a, st)
				}
			}
			if got := w.c.Entry(hoa).PrefixesV4(); got != nil {
				t.Errorf("forwards %v", got)
			}
			if a, p := w.r.IPv4(); a.IsValid() || p != nil {
				t.Errorf("router has %s %v", a, p)
			}
			// One BU carried the options through the Wi-Fi uplink, the
			// other through the cellular one: two refusals each end.
			rs := w.r.Counters(0).Rejected
			if w.c.IPv4Refused != 2 || w.c.Counters.Status(0, 0).Rejected["ipv4_refused"] != 2 || rs["ipv4_status_"+itoaTest(tc.want[0])] != 2 {
				t.Errorf("counted %d at the home agent (%v), %v at the router", w.c.IPv4Refused, w.c.Counters.Status(0, 0).Rejected, rs)
			}
		})
	}
}

func itoaTest(n uint8) string { b, _ := json.Marshal(n); return string(b) }

// A dynamic prefix request is met with the router's configured prefix when
// it has one; a registration without the options ends the IPv4 binding
// (RFC 5555 §4.4.2.1); a home agent that answers none leaves the router
// without IPv4.
func TestIPv4ConfiguredPrefixAndRemoval(t *testing.T) {
	w := ipv4World(t, func(rc *UpdateListConfig) { rc.MNPv4Length = 28 }, nil)
	if a := w.lastBA().IPv4AddrAcks; len(a) != 1 || a[0].Prefix() != mnp4 {
		t.Fatalf("acknowledgements %+v", a)
	}
	if _, p := w.r.IPv4(); !reflect.DeepEqual(p, []netip.Prefix{mnp4}) {
		t.Fatalf("router's prefixes %v", p)
	}
	// The router stops asking: the next registration ends the IPv4 binding.
	w.r.v4 = nil
	w.r.startRefresh(0, w.now)
	w.step()
	if got := w.c.Entry(hoa).PrefixesV4(); got != nil {
		t.Fatalf("still forwarded: %v", got)
	}
	// A BA without acknowledgements: the home agent does not do IPv4.
	w2 := ipv4World(t, func(rc *UpdateListConfig) { rc.HoAv4 = hoa4 }, nil)
	gen := w2.r.Gen()
	w2.r.noteIPv4(&nemo.BindingAck{})
	if a, _ := w2.r.IPv4(); a.IsValid() || w2.r.Gen() == gen || w2.r.RejectedV4[nemo.IPv4StatusUnspecified] != 1 {
		t.Fatalf("after an answer without acknowledgements: %s, counted %v", a, w2.r.RejectedV4)
	}
}

// An IPv4-only mobile network: no IPv6 prefix configured at either end,
// and the registration (implicit mode) is accepted for its IPv4 prefix.
func TestIPv4OnlyMobileNetwork(t *testing.T) {
	rc := routerConfig()
	rc.MNPs, rc.MNPsV4 = nil, []netip.Prefix{mnp4}
	hc := haConfig()
	hc.Peers[0].MNPs, hc.Peers[0].MNPsV4 = nil, []netip.Prefix{mnp4}
	w := newWorld(t, rc, hc)
	w.up(1, netip.Addr{}, cellCoA)
	w.step()
	if got := w.states(); got != "wifi=down/none cell=registered/udp4" {
		t.Fatalf("registration: %s", got)
	}
	if e := w.c.Entry(hoa); len(e.MNPs) != 0 || !reflect.DeepEqual(e.PrefixesV4(), []netip.Prefix{mnp4}) {
		t.Fatalf("forwards %v and %v", e.MNPs, e.PrefixesV4())
	}
	// Without the IPv4 prefix either, the implicit registration has nothing
	// to forward (RFC 3963: 143).
	rc.MNPsV4 = nil
	w = newWorld(t, rc, hc)
	w.up(1, netip.Addr{}, cellCoA)
	w.step()
	if w.results[0].Status != nemo.StatusForwardingSetupFailed {
		t.Fatalf("status %d", w.results[0].Status)
	}
}

// A home agent reached over IPv4 only: the UDP Binding Updates are for the
// signalling address the router was given.
func TestSignallingAddressWithoutIPv6HomeAgent(t *testing.T) {
	anycast := netip.MustParseAddr("2001:db8:ffff:1:fdff:ffff:ffff:fffe")
	rc := routerConfig()
	rc.HA, rc.HASignal = netip.Addr{}, anycast
	hc := haConfig()
	hc.Address = anycast
	w := newWorld(t, rc, hc)
	w.up(0, wifiCoA, netip.MustParseAddr("192.168.50.2"))
	w.up(1, netip.Addr{}, cellCoA)
	w.step()
	if got := w.states(); got != "wifi=registered/udp4 cell=registered/udp4" {
		t.Fatalf("registration: %s", got)
	}
	p, err := nemo.ParsePacket(w.results[0].Reply)
	if err != nil || p.Src != anycast {
		t.Fatalf("answer from %s (%v)", p.Src, err)
	}
}

func TestPool4(t *testing.T) {
	car := func(i int) netip.Addr { return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}) }
	reserved := []netip.Prefix{pfx("10.200.0.1/32"), pfx("10.200.1.0/24")}
	p := NewPool4(pfx("10.200.0.0/22"), reserved, nil)
	if a, ok := p.Address(car(1), t0); !ok || a != netip.MustParseAddr("10.200.0.2") {
		t.Fatalf("first address %s (the pool's first and the reserved one skipped)", a)
	}
	if a, _ := p.Address(car(1), t0); a != netip.MustParseAddr("10.200.0.2") {
		t.Fatalf("asked again: %s", a)
	}
	q, ok := p.Prefix(car(1), 24, nil, t0)
	if !ok || q != pfx("10.200.2.0/24") {
		t.Fatalf("first /24 %s (10.200.0.0/24 holds an address, 10.200.1.0/24 is reserved)", q)
	}
	if q2, _ := p.Prefix(car(1), 24, []netip.Prefix{q}, t0); q2 != pfx("10.200.3.0/24") {
		t.Fatalf("a second /24 for the same router: %s", q2)
	}
	if _, ok := p.Prefix(car(2), 24, nil, t0); ok {
		t.Fatal("a /24 from a full pool")
	}
	if !p.Changed() || !p.Owns(car(1), q) || p.Owns(car(2), q) || !p.Owns(car(1), pfx("10.200.0.2/32")) {
		t.Fatal("ownership")
	}
	// A restart: the saved assignments come back as they were; one that
	// no longer fits the pool, or that overlaps another, is dropped.
	p.Renew(car(1), t0.Add(time.Hour))
	saved := p.Assignments()
	b, err := json.Marshal(saved)
	if err != nil {
		t.Fatal(err)
	}
	var back []Assignment4
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, saved) {
		t.Fatalf("JSON round trip: %v\n%+v\n%+v", err, back, saved)
	}
	back = append(back, Assignment4{HoA: car(3), Address: netip.MustParseAddr("10.9.9.9")},
		Assignment4{HoA: car(4), Prefixes: []netip.Prefix{pfx("10.200.2.0/25")}})
	p2 := NewPool4(pfx("10.200.0.0/22"), reserved, back)
	if !reflect.DeepEqual(p2.Assignments(), saved) || !p2.Changed() {
		t.Fatalf("restored %+v", p2.Assignments())
	}
	// The pool ran out: an expired lease is taken back, the live one kept.
	if _, ok := p2.Address(car(5), t0.Add(30*time.Minute)); !ok {
		t.Fatal("no single address left") // 10.200.0.3 is still free
	}
	if _, ok := p2.Prefix(car(6), 23, nil, t0.Add(30*time.Minute)); ok {
		t.Fatal("a live lease was taken back")
	}
	if q, ok := p2.Prefix(car(6), 24, nil, t0.Add(2*time.Hour)); !ok || p2.Owns(car(1), q) {
		t.Fatalf("after car1's lease ended: %s %v", q, ok)
	}
	if p2.Used() == 0 {
		t.Fatal("nothing used")
	}
}

// A reload's new static claims take back the pool assignments they
// overlap.
func TestPool4SetReserved(t *testing.T) {
	p := NewPool4(pfx("10.200.0.0/22"), nil, nil)
	a, _ := p.Address(hoa, t0)
	q, _ := p.Prefix(hoa, 24, nil, t0)
	p.Saved()
	p.SetReserved([]netip.Prefix{q})
	got, ok := p.Of(hoa)
	if !ok || got.Address != a || len(got.Prefixes) != 0 || !p.Changed() {
		t.Fatalf("after the reservation: %+v %v", got, ok)
	}
	p.SetReserved([]netip.Prefix{netip.PrefixFrom(a, 32)})
	if _, ok := p.Of(hoa); ok {
		t.Fatal("an emptied assignment kept")
	}
}
