package dhcpv6pd

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

var extServer = netip.AddrPortFrom(netip.MustParseAddr("2001:db8:ffff::547"), 547)

// external is a DHCPv6 server behind the home agent's relay: it unwraps the
// home agent's Relay-forward, lets a Server answer the router's one, and
// wraps the answer as a server would (RFC 8415 §18.3.10).
type external struct {
	t    *testing.T
	s    *Server
	seen []*Relay // the home agent's Relay-forwards
}

func (e *external) handle(d Datagram, now time.Time) []byte {
	e.t.Helper()
	if d.To != extServer {
		e.t.Fatalf("relay sent to %v", d.To)
	}
	outer, err := ParseRelay(d.Data)
	if err != nil {
		e.t.Fatal(err)
	}
	e.seen = append(e.seen, outer)
	mr, err := ParseRelay(outer.Inner)
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := e.s.Handle(outer.Inner, netip.AddrPortFrom(mr.LinkAddr, 547), now)
	if err != nil || len(out.Send) != 1 {
		e.t.Fatalf("server: %v %v", out, err)
	}
	rr := Relay{Type: RelayRepl, HopCount: outer.HopCount, LinkAddr: outer.LinkAddr, PeerAddr: outer.PeerAddr, Inner: out.Send[0].Data}
	return rr.Marshal()
}

func TestHARelay(t *testing.T) {
	r, err := NewHARelay(RelayConfig{Server: extServer, LinkAddr: haAddr, LocalPort: 10547,
		Routers: map[netip.Addr]bool{hoa: true}})
	if err != nil {
		t.Fatal(err)
	}
	ext := &external{t: t, s: newTestServer(t, nil, nil)}
	c := newTestClient(t, false, nil)
	var events []Event
	var toRouter int
	pump := func(out Output, now time.Time) {
		for len(out.Send) > 0 {
			d := out.Send[0]
			out.Send = out.Send[1:]
			ro, err := r.Handle(d.Data, mrPort, now)
			if err != nil || len(ro.Send) != 1 {
				t.Fatalf("relay from router: %v", err)
			}
			back, err := r.Handle(ext.handle(ro.Send[0], now), extServer, now)
			if err != nil || len(back.Send) != 1 || back.Send[0].To != mrPort {
				t.Fatalf("relay from server: %v %v", back.Send, err)
			}
			toRouter++
			events = append(events, back.Events...)
			co, err := c.Receive(back.Send[0].Data, haPort, now)
			if err != nil {
				t.Fatal(err)
			}
			out.Send = append(out.Send, co.Send...)
		}
	}
	c.Start(t0)
	now := c.Next()
	pump(c.Tick(now), now)
	if c.State() != Bound || toRouter != 2 {
		t.Fatalf("state %v after %d replies", c.State(), toRouter)
	}
	p := c.Lease().Prefixes[0]
	// What the server saw: the router's Relay-forward inside the home
	// agent's, hop count 2, link-address the home agent's, peer-address the
	// router's, and the Relay Source Port option since the relay is not on
	// 547.
	for _, o := range ext.seen {
		if o.HopCount != 2 || o.LinkAddr != haAddr || o.PeerAddr != hoa || !o.HasRelayPort || o.RelayPort != 10547 {
			t.Fatalf("outer relay-forw %+v", o)
		}
	}
	want := Event{Kind: Delegated, Router: hoa, Prefix: p.Prefix, PreferredUntil: p.PreferredUntil, ValidUntil: p.ValidUntil}
	if len(events) != 1 || events[0] != want {
		t.Fatalf("learned %v, want %v", events, want)
	}
	if a := r.Active(); len(a) != 1 || a[0] != want {
		t.Fatalf("active %v", a)
	}
	// Renew at T1: learned again with the new lifetimes.
	events = nil
	t1 := c.Lease().T1
	pump(c.Tick(t1), t1)
	if len(events) != 1 || events[0].Kind != Delegated || events[0].ValidUntil != c.Lease().Prefixes[0].ValidUntil {
		t.Fatalf("renew learned %v", events)
	}
	// Release: the server's Reply lists no prefix, the relay remembered.
	events = nil
	pump(c.Release(t1), t1)
	if len(events) != 1 || events[0] != (Event{Kind: Released, Router: hoa, Prefix: p.Prefix}) || len(r.Active()) != 0 {
		t.Fatalf("release learned %v", events)
	}
}

func TestHARelayExpiryAndRefusals(t *testing.T) {
	r, _ := NewHARelay(RelayConfig{Server: extServer, LinkAddr: haAddr, Routers: map[netip.Addr]bool{hoa: true}})
	ext := &external{t: t, s: newTestServer(t, nil, nil)}
	b := clientMsg(hoa, solicit(duid1, "", true))
	ro, err := r.Handle(b, mrPort, t0)
	if err != nil || ro.Send[0].To != extServer {
		t.Fatal(err)
	}
	if o, _ := ParseRelay(ro.Send[0].Data); o.HasRelayPort {
		t.Fatal("Relay Source Port option on port 547")
	}
	back, err := r.Handle(ext.handle(ro.Send[0], t0), extServer, t0)
	if err != nil || len(back.Events) != 1 {
		t.Fatal(err)
	}
	if n := r.Next(); n != back.Events[0].ValidUntil {
		t.Fatalf("next %v", n)
	}
	out := r.Tick(back.Events[0].ValidUntil)
	if len(out.Events) != 1 || out.Events[0].Kind != Expired || len(r.Active()) != 0 {
		t.Fatalf("expiry %v", out.Events)
	}
	// A router without pd, a spoofed link-address, a reply for nobody.
	if _, err := r.Handle(clientMsg(hoa2, solicit(duid2, "", true)), netip.AddrPortFrom(hoa2, 547), t0); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("router without pd: %v", err)
	}
	if _, err := r.Handle(b, netip.AddrPortFrom(hoa2, 547), t0); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("spoofed: %v", err)
	}
	stray := Relay{Type: RelayRepl, LinkAddr: haAddr, PeerAddr: hoa2, Inner: b}
	if _, err := r.Handle(stray.Marshal(), extServer, t0); err == nil {
		t.Fatal("reply for an unknown router relayed")
	}
	if r.NotAllowed != 2 || r.Unmatched != 1 {
		t.Fatalf("counters %+v", r.RelayCounters)
	}
}
