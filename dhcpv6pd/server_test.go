package dhcpv6pd

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

// clientMsg wraps m as the co-located relay of router h would.
func clientMsg(h netip.Addr, m *Msg) []byte {
	m.HasElapsed = true
	r := Relay{Type: RelayForw, HopCount: 1, LinkAddr: h, PeerAddr: h, Inner: m.Marshal()}
	return r.Marshal()
}

func solicit(d DUID, hint string, rc bool) *Msg {
	ia := IAPD{IAID: iaid}
	if hint != "" {
		ia.Prefixes = []Prefix{{Prefix: netip.MustParsePrefix(hint)}}
	}
	return &Msg{Type: Solicit, XID: [3]byte{1, 2, 3}, ClientID: d, IAPDs: []IAPD{ia}, RapidCommit: rc}
}

// ask sends m from router h and returns the server's answer, unwrapped.
func ask(t *testing.T, s *Server, h netip.Addr, m *Msg, now time.Time) (*Msg, Output) {
	t.Helper()
	out, err := s.Handle(clientMsg(h, m), netip.AddrPortFrom(h, 547), now)
	if err != nil {
		t.Fatalf("%v: %v", m.Type, err)
	}
	if len(out.Send) != 1 || out.Send[0].To != netip.AddrPortFrom(h, 547) {
		t.Fatalf("%v: answers %v", m.Type, out.Send)
	}
	r, err := ParseRelay(out.Send[0].Data)
	if err != nil || r.Type != RelayRepl || r.LinkAddr != h || r.PeerAddr != h || r.HopCount != 1 {
		t.Fatalf("relay-reply %+v %v", r, err)
	}
	a, err := ParseMsg(r.Inner)
	if err != nil {
		t.Fatal(err)
	}
	return a, out
}

func delegate(t *testing.T, s *Server, h netip.Addr, d DUID, now time.Time) netip.Prefix {
	t.Helper()
	a, _ := ask(t, s, h, solicit(d, "", true), now)
	if a.Type != Reply || len(a.IAPDs) != 1 || len(a.IAPDs[0].Prefixes) != 1 {
		t.Fatalf("answer %+v", a)
	}
	return a.IAPDs[0].Prefixes[0].Prefix
}

func TestServerSamePrefixForSameDUID(t *testing.T) {
	s := newTestServer(t, nil, nil)
	p1 := delegate(t, s, hoa, duid1, t0)
	if again := delegate(t, s, hoa, duid1, t0.Add(time.Minute)); again != p1 {
		t.Fatalf("second Solicit got %v, first %v", again, p1)
	}
	p2 := delegate(t, s, hoa2, duid2, t0)
	if p2 == p1 || !pool.Contains(p2.Addr()) || p2.Bits() != 56 {
		t.Fatalf("second router got %v (first %v)", p2, p1)
	}
	// Released, then asked for again: the same prefix.
	rel := &Msg{Type: Release, XID: [3]byte{9}, ClientID: duid1, ServerID: srvDUID, IAPDs: []IAPD{{IAID: iaid, Prefixes: []Prefix{{Prefix: p1}}}}}
	a, out := ask(t, s, hoa, rel, t0.Add(2*time.Minute))
	if a.Status == nil || a.Status.Code != StatusSuccess || len(out.Events) != 1 || out.Events[0] != (Event{Kind: Released, Router: hoa, Prefix: p1}) {
		t.Fatalf("release: %+v %v", a, out.Events)
	}
	if delegate(t, s, hoa, duid1, t0.Add(3*time.Minute)) != p1 {
		t.Fatal("not the same prefix after a Release")
	}
	// And across a restart of the home agent.
	s2 := newTestServer(t, mustState(t, s), nil)
	if delegate(t, s2, hoa, duid1, t0.Add(4*time.Minute)) != p1 || delegate(t, s2, hoa2, duid2, t0.Add(4*time.Minute)) != p2 {
		t.Fatal("not the same prefixes after a restart")
	}
	// Even without the lease file: the slot comes from the DUID.
	s3 := newTestServer(t, nil, nil)
	if delegate(t, s3, hoa, duid1, t0) != p1 {
		t.Fatal("not the same prefix from a fresh server")
	}
}

func TestServerRefusesRouters(t *testing.T) {
	stranger := netip.MustParseAddr("2001:db8:1::99")
	unregistered := func(c *ServerConfig) { c.Registered = func(h netip.Addr) bool { return h != hoa2 } }
	s := newTestServer(t, nil, unregistered)
	for _, h := range []netip.Addr{stranger, hoa2} {
		for _, rc := range []bool{false, true} {
			a, out := ask(t, s, h, solicit(duid2, "", rc), t0)
			if len(a.IAPDs) != 1 || a.IAPDs[0].Status == nil || a.IAPDs[0].Status.Code != StatusNoPrefixAvail || len(a.IAPDs[0].Prefixes) != 0 || len(out.Events) != 0 {
				t.Fatalf("%v: %+v", h, a)
			}
		}
	}
	if s.NotAllowed != 4 || len(s.State().Leases) != 0 {
		t.Fatalf("not allowed %d, leases %v", s.NotAllowed, s.State().Leases)
	}
	// A link-address that is not the datagram's source is dropped: a
	// router must not get prefixes in another's name.
	b := clientMsg(hoa, solicit(duid2, "", true))
	if _, err := s.Handle(b, netip.AddrPortFrom(hoa2, 547), t0); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("spoofed link-address: %v", err)
	}
	// A Request naming another server is dropped (RFC 8415 §16.4).
	req := &Msg{Type: Request, XID: [3]byte{4}, ClientID: duid1, ServerID: duid2, IAPDs: []IAPD{{IAID: iaid}}}
	if out, err := s.Handle(clientMsg(hoa, req), mrPort, t0); err == nil || len(out.Send) != 0 || s.WrongServer != 1 {
		t.Fatalf("request for another server: %v", err)
	}
	// Decline has nothing to do with prefixes.
	dec := &Msg{Type: Decline, XID: [3]byte{5}, ClientID: duid1, ServerID: srvDUID}
	if _, err := s.Handle(clientMsg(hoa, dec), mrPort, t0); err == nil || s.Unsupported != 1 {
		t.Fatalf("decline: %v", err)
	}
}

func TestServerPoolExhausted(t *testing.T) {
	s := newTestServer(t, nil, func(c *ServerConfig) {
		c.Pools = []Pool{{Name: "tiny", Prefix: netip.MustParsePrefix("2001:db8:9::/62"), Length: 64}}
		c.Routers = map[netip.Addr]string{}
		for i := 1; i <= 5; i++ {
			c.Routers[netip.AddrFrom16([16]byte{0x20, 1, 0xd, 0xb8, 15: byte(i)})] = ""
		}
	})
	seen := map[netip.Prefix]bool{}
	for i := 1; i <= 4; i++ {
		h := netip.AddrFrom16([16]byte{0x20, 1, 0xd, 0xb8, 15: byte(i)})
		p := delegate(t, s, h, NewDUIDUUID([16]byte{0: byte(i)}), t0)
		if seen[p] || !netip.MustParsePrefix("2001:db8:9::/62").Contains(p.Addr()) {
			t.Fatalf("router %d got %v", i, p)
		}
		seen[p] = true
	}
	h5 := netip.AddrFrom16([16]byte{0x20, 1, 0xd, 0xb8, 15: 5})
	a, _ := ask(t, s, h5, solicit(NewDUIDUUID([16]byte{0: 5}), "", true), t0)
	if a.IAPDs[0].Status == nil || a.IAPDs[0].Status.Code != StatusNoPrefixAvail || s.PoolExhaust != 1 {
		t.Fatalf("fifth router: %+v", a.IAPDs)
	}
	// Once one expires, its slot serves the newcomer.
	out := s.Tick(t0.Add(DefaultValid))
	if len(out.Events) != 4 || out.Events[0].Kind != Expired || !out.StateChanged {
		t.Fatalf("expiry events %v", out.Events)
	}
	if p := delegate(t, s, h5, NewDUIDUUID([16]byte{0: 5}), t0.Add(DefaultValid)); !seen[p] {
		t.Fatalf("newcomer got %v", p)
	}
}

func TestServerRenewRebind(t *testing.T) {
	s := newTestServer(t, nil, nil)
	p := delegate(t, s, hoa, duid1, t0)
	later := t0.Add(DefaultT1)
	ren := &Msg{Type: Renew, XID: [3]byte{7}, ClientID: duid1, ServerID: srvDUID, IAPDs: []IAPD{{IAID: iaid, Prefixes: []Prefix{{Prefix: p}}}}}
	a, out := ask(t, s, hoa, ren, later)
	if a.IAPDs[0].Status != nil || a.IAPDs[0].Prefixes[0] != (Prefix{Prefix: p, Preferred: uint32(DefaultPreferred / time.Second), Valid: uint32(DefaultValid / time.Second)}) {
		t.Fatalf("renew answer %+v", a.IAPDs)
	}
	if len(out.Events) != 1 || out.Events[0].ValidUntil != later.Add(DefaultValid) || s.Renewals != 1 {
		t.Fatalf("renew events %v", out.Events)
	}
	// Renew from a client the server never saw: NoBinding.
	ren2 := &Msg{Type: Renew, XID: [3]byte{8}, ClientID: duid2, ServerID: srvDUID, IAPDs: []IAPD{{IAID: iaid, Prefixes: []Prefix{{Prefix: p}}}}}
	a, out = ask(t, s, hoa2, ren2, later)
	if a.IAPDs[0].Status == nil || a.IAPDs[0].Status.Code != StatusNoBinding || len(out.Events) != 0 {
		t.Fatalf("renew from a stranger %+v", a.IAPDs)
	}
	// Rebind of a prefix someone else holds: lifetimes 0, nothing changes.
	reb := &Msg{Type: Rebind, XID: [3]byte{9}, ClientID: duid2, IAPDs: []IAPD{{IAID: iaid, Prefixes: []Prefix{{Prefix: p, Preferred: 10, Valid: 20}}}}}
	a, out = ask(t, s, hoa2, reb, later)
	if len(a.IAPDs[0].Prefixes) != 1 || a.IAPDs[0].Prefixes[0] != (Prefix{Prefix: p}) || len(out.Events) != 0 {
		t.Fatalf("rebind of another's prefix %+v %v", a.IAPDs, out.Events)
	}
	// Rebind of a prefix outside the pool: lifetimes 0 too.
	reb.IAPDs[0].Prefixes[0].Prefix = netip.MustParsePrefix("2001:db8:ffff::/56")
	a, _ = ask(t, s, hoa2, reb, later)
	if a.IAPDs[0].Prefixes[0].Valid != 0 || len(s.Leases(hoa2)) != 0 {
		t.Fatalf("rebind outside the pool %+v", a.IAPDs)
	}
	// Rebind with no prefix and no binding: NoBinding.
	reb.IAPDs[0].Prefixes = nil
	if a, _ = ask(t, s, hoa2, reb, later); a.IAPDs[0].Status == nil || a.IAPDs[0].Status.Code != StatusNoBinding {
		t.Fatalf("empty rebind %+v", a.IAPDs)
	}
}

func TestServerStateUnchangedByBadInput(t *testing.T) {
	s := newTestServer(t, nil, nil)
	delegate(t, s, hoa, duid1, t0)
	before := string(EncodeServerState(s.State()))
	good := clientMsg(hoa, solicit(duid2, "", true))
	for _, b := range [][]byte{nil, {12}, good[:30], good[:len(good)-1], append(good[:len(good):len(good)], 0)} {
		if out, err := s.Handle(b, mrPort, t0); err == nil || len(out.Send) != 0 || len(out.Events) != 0 {
			t.Fatalf("% x accepted", b)
		}
	}
	if string(EncodeServerState(s.State())) != before {
		t.Fatal("state changed")
	}
}

func TestPoolSlots(t *testing.T) {
	p := Pool{Prefix: pool, Length: 56}
	if p.slots() != 65536 || p.slot(0) != netip.MustParsePrefix("2001:db8:200::/56") ||
		p.slot(1) != netip.MustParsePrefix("2001:db8:200:100::/56") || p.slot(65535) != netip.MustParsePrefix("2001:db8:2ff:ff00::/56") {
		t.Fatalf("slots %d %v %v %v", p.slots(), p.slot(0), p.slot(1), p.slot(65535))
	}
	if !p.contains(p.slot(77)) || p.contains(netip.MustParsePrefix("2001:db8:200::/64")) || p.contains(netip.MustParsePrefix("2001:db8:300::/56")) {
		t.Fatal("contains")
	}
	big := Pool{Prefix: netip.MustParsePrefix("2001:db8::/32"), Length: 64}
	if big.slots() != 1<<24 || !big.contains(big.slot(1<<24-1)) || big.contains(netip.MustParsePrefix("2001:db8:100::/64")) {
		t.Fatal("capped pool")
	}
}
