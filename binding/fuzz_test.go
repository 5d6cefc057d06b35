package binding

import (
	"net/netip"
	"testing"
	"time"

	"nemod/nemo"
)

// seedBUs returns Binding Updates as a router sends them: native, in UDP,
// registrations and a de-registration.
func seedBUs(t testing.TB) [][]byte {
	r := NewRouter(routerConfig(), 7)
	r.SetLink(0, LinkState{Up: true, IPv6: wifiCoA}, t0)
	r.SetLink(1, LinkState{Up: true, IPv4: cellCoA}, t0)
	var out [][]byte
	for _, s := range r.Poll(t0) {
		out = append(out, s.Packet)
	}
	r.SetLink(0, LinkState{}, t0)
	r.links[1].state = StateRegistered
	for _, s := range r.Poll(t0) {
		out = append(out, s.Packet)
	}
	if len(out) < 3 {
		t.Fatalf("only %d seeds", len(out))
	}
	return out
}

// FuzzCacheHandlePacket: the home agent never crashes on what arrives, and
// never registers anything from a message it cannot authenticate.
func FuzzCacheHandlePacket(f *testing.F) {
	for _, s := range seedBUs(f) {
		f.Add(s, uint8(0))
		f.Add(s, uint8(1))
	}
	f.Fuzz(func(t *testing.T, pkt []byte, enc uint8) {
		hc := haConfig()
		hc.Peers[0].Key = []byte("a key the fuzzer does not know")
		c := NewCache(hc)
		arr := Arrival{Encap: []nemo.Encap{nemo.EncapIPv6, nemo.EncapUDP4, nemo.EncapUDP6}[enc%3], Outer: netip.AddrPortFrom(natAddr, 4000)}
		res := c.HandlePacket(pkt, arr, t0)
		if res.Changed != nil || c.Accepted != 0 {
			t.Fatalf("unauthenticated message changed the cache: %+v", res)
		}
	})
}

// FuzzRouterHandlePacket: the router never crashes on what the home agent
// (or anyone) sends it, and never registers on an unauthenticated answer.
func FuzzRouterHandlePacket(f *testing.F) {
	w := newWorld(&testing.T{}, routerConfig(), haConfig())
	w.hold = true
	w.up(0, wifiCoA, netip.Addr{})
	w.step()
	res := w.c.HandlePacket(w.held[0].Packet, Arrival{Encap: nemo.EncapIPv6, Outer: netip.AddrPortFrom(wifiCoA, 0)}, w.now)
	f.Add(res.Reply)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		rc := routerConfig()
		rc.Key = []byte("a key the fuzzer does not know")
		r := NewRouter(rc, 1000)
		r.SetLink(0, LinkState{Up: true, IPv6: wifiCoA}, t0)
		r.Poll(t0)
		_ = r.HandlePacket(pkt, t0.Add(time.Millisecond))
		if r.Bindings()[0].State == StateRegistered {
			t.Fatal("registered on an unauthenticated answer")
		}
	})
}
