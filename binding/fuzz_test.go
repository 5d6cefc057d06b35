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
	// With the IPv4 Home Address options of an address and a prefix.
	rc := routerConfig()
	rc.HoAv4, rc.MNPv4Length = netip.IPv4Unspecified(), 24
	r = NewRouter(rc, 9)
	r.SetLink(1, LinkState{Up: true, IPv4: cellCoA}, t0)
	for _, s := range r.Poll(t0) {
		out = append(out, s.Packet)
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

// FuzzIPv4Claims: authenticated registrations carrying any IPv4 Home
// Address options: every option is answered, in order; what is granted is
// the router's own claim or came from the pool for it, never another
// router's, and nothing is granted twice.
func FuzzIPv4Claims(f *testing.F) {
	f.Add([]byte{0x80, 0, 0, 0, 0, 0, 0x60, 0x00, 10, 201, 5, 0}) // 0.0.0.0/32 and 10.201.5.0/24
	f.Add([]byte{0x62, 0, 10, 200, 0, 0, 0x80, 0, 10, 199, 0, 9}) // a pool prefix, another's address
	f.Add([]byte{0x5e, 0, 0, 0, 0, 0, 0x5e, 0, 0, 0, 0, 0, 0x80, 0, 224, 0, 0, 1})
	f.Fuzz(func(t *testing.T, raw []byte) {
		hc := haConfig()
		hc.Peers[0].HoAv4, hc.Peers[0].MNPsV4 = hoa4, []netip.Prefix{mnp4}
		hc.Peers = append(hc.Peers, Peer{Name: "car2", HoA: hoaCar2, SPI: 257, Key: key,
			HoAv4: netip.MustParseAddr("10.199.0.9"), MNPsV4: []netip.Prefix{pfx("10.201.6.0/24")}})
		hc.Pool4 = NewPool4(pfx("10.200.0.0/20"), IPv4Claims(hc.Peers), nil)
		c := NewCache(hc)
		var opts []nemo.IPv4HomeAddress
		for len(raw) >= 6 && len(opts) < 20 {
			w := uint16(raw[0])<<8 | uint16(raw[1])
			pl := uint8(w >> 10)
			if pl >= 1 && pl <= 32 {
				opts = append(opts, nemo.IPv4HomeAddress{PrefixLen: pl, P: w&0x0200 != 0, Addr: netip.AddrFrom4([4]byte(raw[2:6]))})
			}
			raw = raw[6:]
		}
		rc := routerConfig()
		r := NewRouter(rc, 1)
		r.SetLink(0, LinkState{Up: true, IPv6: wifiCoA}, t0)
		sends := r.Poll(t0)
		if len(sends) == 0 {
			t.Fatal("no registration")
		}
		p, err := nemo.ParsePacket(sends[0].Packet)
		if err != nil {
			t.Fatal(err)
		}
		var bu nemo.BindingUpdate
		if err := nemo.Unmarshal(p.MH, &bu); err != nil {
			t.Fatal(err)
		}
		bu.IPv4HoAs = opts
		mh, err := nemo.Marshal(&bu)
		if err != nil {
			t.Fatal(err)
		}
		if err := nemo.NewAuthenticator(key).Sign(mh, wifiCoA, hoa); err != nil {
			t.Fatal(err)
		}
		pkt, err := nemo.AppendPacket(nil, wifiCoA, haAddr, hoa, netip.Addr{}, 64, mh)
		if err != nil {
			t.Fatal(err)
		}
		res := c.HandlePacket(pkt, Arrival{Encap: nemo.EncapIPv6, Outer: netip.AddrPortFrom(wifiCoA, 0)}, t0)
		if res.Status >= 128 {
			return // refused for other reasons (e.g. no IPv6 prefix)
		}
		rp, err := nemo.ParsePacket(res.Reply)
		if err != nil {
			t.Fatal(err)
		}
		var ba nemo.BindingAck
		if err := nemo.Unmarshal(rp.MH, &ba); err != nil {
			t.Fatal(err)
		}
		if len(ba.IPv4AddrAcks) != len(opts) {
			t.Fatalf("%d options, %d acknowledgements", len(opts), len(ba.IPv4AddrAcks))
		}
		seen := map[netip.Prefix]bool{}
		for i, a := range ba.IPv4AddrAcks {
			q := a.Prefix()
			if a.Status >= 128 {
				continue
			}
			own := q == netip.PrefixFrom(hoa4, 32) || q == mnp4 || hc.Pool4.Owns(hoa, q)
			if !own || seen[q] {
				t.Fatalf("option %+v granted %s (own %v, twice %v)", opts[i], q, own, seen[q])
			}
			seen[q] = true
		}
		for _, q := range c.Entry(hoa).PrefixesV4() {
			if !seen[q] {
				t.Fatalf("forwards %s, which no acknowledgement granted", q)
			}
		}
	})
}
