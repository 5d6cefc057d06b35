package dhcpv6pd

import (
	"bytes"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

func msgSeeds(f *testing.F) {
	f.Helper()
	c := newTestClient(&testing.T{}, true, nil)
	c.Start(t0)
	out := c.Tick(c.Next())
	f.Add(out.Send[0].Data)
	s, _ := NewServer(ServerConfig{DUID: srvDUID, Pools: []Pool{{Prefix: pool, Length: 56}}, Routers: map[netip.Addr]string{hoa: ""}}, nil)
	so, _ := s.Handle(out.Send[0].Data, mrPort, t0)
	f.Add(so.Send[0].Data)
	r, _ := ParseRelay(so.Send[0].Data)
	f.Add(r.Inner)
	f.Add([]byte{})
	f.Add([]byte{12, 0})
	// A Reply with a top-level Status Code (Success, no text): the round trip
	// must compare the status, not where it is stored.
	f.Add([]byte{7, '0', '0', '0', 0, 13, 0, 2, 0, 0})
}

func FuzzParseMsg(f *testing.F) {
	msgSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMsg(b)
		if err != nil {
			return
		}
		again, err := ParseMsg(m.Marshal())
		if err != nil {
			t.Fatalf("re-encoded message does not parse: %v", err)
		}
		// DeepEqual follows the Status pointers; printing them would compare
		// addresses.
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip:\n%+v\n%+v", m, again)
		}
	})
}

func FuzzParseRelay(f *testing.F) {
	msgSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRelay(b)
		if err != nil {
			return
		}
		again, err := ParseRelay(r.Marshal())
		if err != nil || !bytes.Equal(again.Inner, r.Inner) || again.LinkAddr != r.LinkAddr || again.PeerAddr != r.PeerAddr ||
			again.HopCount != r.HopCount || !bytes.Equal(again.InterfaceID, r.InterfaceID) || again.RelayPort != r.RelayPort {
			t.Fatalf("round trip: %+v %+v %v", r, again, err)
		}
	})
}

func FuzzDecodeLease(f *testing.F) {
	l := &Lease{DUID: duid1, IAID: iaid, ServerID: srvDUID, T1: t0, T2: t0.Add(time.Hour), Hint: netip.MustParsePrefix("2001:db8::/56"),
		Prefixes: []Held{{netip.MustParsePrefix("2001:db8::/56"), t0, t0.Add(time.Hour)}}}
	f.Add(EncodeLease(l))
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := DecodeLease(b)
		if err != nil {
			return
		}
		enc := EncodeLease(l)
		l2, err := DecodeLease(enc)
		if err != nil || !bytes.Equal(EncodeLease(l2), enc) {
			t.Fatalf("lease does not round trip: %v", err)
		}
	})
}

func FuzzDecodeServerState(f *testing.F) {
	st := &ServerState{DUID: srvDUID, Leases: []ServerLease{{HoA: hoa, DUID: duid1, IAID: iaid, Prefix: netip.MustParsePrefix("2001:db8::/56"), PreferredUntil: t0, ValidUntil: t0, Active: true}}}
	f.Add(EncodeServerState(st))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := DecodeServerState(b)
		if err != nil {
			return
		}
		enc := EncodeServerState(st)
		if _, err := DecodeServerState(enc); err != nil {
			t.Fatalf("state does not round trip: %v", err)
		}
		// Whatever a file says, a server starts from it.
		if _, err := NewServer(ServerConfig{DUID: srvDUID, Pools: []Pool{{Prefix: pool, Length: 56}}}, st); err != nil {
			t.Fatal(err)
		}
	})
}

// snapshot is everything of a client that a dropped datagram must leave
// as it was. SOL_MAX_RT is not in it: RFC 8415 §18.2.9 has the client
// take it even from an Advertise it otherwise ignores.
func snapshot(c *Client) string {
	x := c.rt
	return fmt.Sprintf("%v %x %s %v %v %v %v %v %v %v %v", c.state, c.xid, EncodeLease(c.Lease()), x.start, x.deadline, x.rt, x.sent, x.next,
		c.best != nil, c.delayTo, c.Next())
}

func FuzzClientReceive(f *testing.F) {
	msgSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		// One client just soliciting, one bound and renewing.
		sol := newTestClient(t, true, nil)
		sol.Start(t0)
		at := sol.Next()
		sol.Tick(at)
		l, _ := bind(t, false)
		l.c.Tick(l.c.Lease().T1)
		for _, c := range []*Client{sol, l.c} {
			// The fuzzed bytes as they are, and with the transaction ID the
			// client waits for, so that the fuzzer reaches the handlers.
			for _, in := range [][]byte{b, withXID(b, c.xid)} {
				before := snapshot(c)
				if _, err := c.Receive(in, haPort, at); err != nil && snapshot(c) != before {
					t.Fatalf("dropped datagram changed the client: %v", err)
				}
			}
		}
	})
}

// withXID puts xid into a relayed message's transaction ID field.
func withXID(b []byte, xid [3]byte) []byte {
	c := bytes.Clone(b)
	if len(c) >= 42 && c[0] == byte(RelayRepl) {
		copy(c[39:42], xid[:])
	}
	return c
}

func FuzzServerHandle(f *testing.F) {
	msgSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		s := newTestServer(t, nil, nil)
		delegate(t, s, hoa, duid1, t0)
		before := string(EncodeServerState(s.State()))
		out, err := s.Handle(b, mrPort, t0)
		if err != nil && (string(EncodeServerState(s.State())) != before || len(out.Send) != 0 || len(out.Events) != 0) {
			t.Fatalf("dropped datagram changed the server: %v", err)
		}
	})
}

func FuzzHARelayHandle(f *testing.F) {
	msgSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, _ := NewHARelay(RelayConfig{Server: extServer, LinkAddr: haAddr, Routers: map[netip.Addr]bool{hoa: true}})
		r.ports[hoa] = 547
		for _, from := range []netip.AddrPort{mrPort, extServer} {
			before := fmt.Sprint(r.Active(), r.releases, r.ports)
			out, err := r.Handle(b, from, t0)
			if err != nil && (fmt.Sprint(r.Active(), r.releases, r.ports) != before || len(out.Send) != 0 || len(out.Events) != 0) {
				t.Fatalf("dropped datagram changed the relay: %v", err)
			}
		}
	})
}
