package dhcpv6pd

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

var (
	t0      = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	hoa     = netip.MustParseAddr("2001:db8:1::10")
	hoa2    = netip.MustParseAddr("2001:db8:1::20")
	haAddr  = netip.MustParseAddr("2001:db8:1::1")
	haPort  = netip.AddrPortFrom(haAddr, ServerPort)
	mrPort  = netip.AddrPortFrom(hoa, ServerPort)
	pool    = netip.MustParsePrefix("2001:db8:200::/40")
	duid1   = NewDUIDUUID([16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	duid2   = NewDUIDUUID([16]byte{15: 7, 0: 2})
	srvDUID = NewDUIDUUID([16]byte{0: 0xee})
	iaid    = [4]byte{0, 0, 0, 1}
)

func seeded(n uint64) *rand.Rand { return rand.New(rand.NewPCG(n, 99)) }

func newTestClient(t *testing.T, rc bool, stored *Lease) *Client {
	t.Helper()
	c, err := NewClient(ClientConfig{HoA: hoa, Server: haPort, DUID: duid1, IAID: iaid, PrefixLen: 56, RapidCommit: rc}, stored, seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newTestServer(t *testing.T, st *ServerState, mod func(*ServerConfig)) *Server {
	t.Helper()
	cfg := ServerConfig{DUID: srvDUID, Pools: []Pool{{Name: "fleet", Prefix: pool, Length: 56}},
		Routers: map[netip.Addr]string{hoa: "fleet", hoa2: ""}}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewServer(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// link carries datagrams between one client and one server, recording
// the message types that went each way.
type link struct {
	t      *testing.T
	c      *Client
	s      *Server
	sent   []Msg // the client's messages, unwrapped
	got    []Msg // the server's answers, unwrapped
	cevs   []Event
	sevs   []Event
	drop   bool // lose everything the client sends
	srvErr []error
}

func inner(t *testing.T, b []byte) *Msg {
	t.Helper()
	r, err := ParseRelay(b)
	if err != nil {
		t.Fatalf("not a relay message: %v", err)
	}
	m, err := ParseMsg(r.Inner)
	if err != nil {
		t.Fatalf("relayed message: %v", err)
	}
	return m
}

// deliver passes an Output of the client to the server, and the server's
// answers back, until nothing is left to send.
func (l *link) deliver(out Output, now time.Time) {
	l.t.Helper()
	l.cevs = append(l.cevs, out.Events...)
	for len(out.Send) > 0 {
		d := out.Send[0]
		out.Send = out.Send[1:]
		if d.To != haPort {
			l.t.Fatalf("client sent to %v", d.To)
		}
		l.sent = append(l.sent, *inner(l.t, d.Data))
		if l.drop {
			continue
		}
		so, err := l.s.Handle(d.Data, mrPort, now)
		if err != nil {
			l.srvErr = append(l.srvErr, err)
		}
		l.sevs = append(l.sevs, so.Events...)
		for _, a := range so.Send {
			if a.To != mrPort {
				l.t.Fatalf("server answered to %v", a.To)
			}
			l.got = append(l.got, *inner(l.t, a.Data))
			co, err := l.c.Receive(a.Data, haPort, now)
			if err != nil {
				l.t.Fatalf("client refused the server's %v: %v", l.got[len(l.got)-1].Type, err)
			}
			l.cevs = append(l.cevs, co.Events...)
			out.Send = append(out.Send, co.Send...)
		}
	}
}

// run ticks the client (and server) up to end, delivering everything, and
// returns the time it stopped at.
func (l *link) run(now, end time.Time) time.Time {
	l.t.Helper()
	for i := 0; i < 100000; i++ {
		next := l.c.Next()
		if sn := l.s.Next(); !sn.IsZero() && (next.IsZero() || sn.Before(next)) {
			next = sn
		}
		if next.IsZero() || next.After(end) {
			return end
		}
		if next.Before(now) {
			next = now
		}
		now = next
		so := l.s.Tick(now)
		l.sevs = append(l.sevs, so.Events...)
		l.deliver(l.c.Tick(now), now)
	}
	l.t.Fatal("run: too many steps")
	return now
}

func types(ms []Msg) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Type.String())
	}
	return out
}

func eqBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s:\n got % x\nwant % x", what, got, want)
	}
}
