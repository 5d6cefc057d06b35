package binding

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"nemod/config"
	"nemod/nemo"
	"nemod/policy"
)

// The fuzz targets here reach the state machines: the harness takes the
// fuzzer's bytes as a (mutated) Mobility Header and signs it again with the
// key it configured, so that mutated fields get past authentication, and
// the fuzzer's other arguments choose the clock, the claimed home address
// and how the packet arrived. What must hold is checked after every
// message. One target per side keeps the key from the fuzzer and checks
// that nothing it sends changes anything.

var (
	hoa2     = netip.MustParseAddr("2001:db8:ffff:1::200")
	mnp2     = netip.MustParsePrefix("2001:db8:200::/56")
	key2     = []byte("fedcba9876543210")
	wrongKey = []byte("not the key at all")
	// outers are the outer sources a packet may arrive from, per
	// encapsulation: the care-of addresses a router uses, and others.
	outers6 = []netip.Addr{wifiCoA, wifi2CoA, netip.MustParseAddr("2001:db8:dead::1"), hoa}
	outers4 = []netip.Addr{natAddr, cellCoA, netip.MustParseAddr("203.0.113.9")}
)

// fuzzHA is the home agent of the fuzz targets: two routers, one with a
// NAI.
func fuzzHA() HAConfig {
	hc := haConfig()
	hc.RejectRate, hc.RejectBurst = 1e9, 1e9 // every refusal answered, so that its answer is checked
	hc.Peers = append(hc.Peers, Peer{Name: "car2", HoA: hoa2, SPI: 300, Key: key2, MNPs: []netip.Prefix{mnp2}})
	// car1 has static IPv4 claims, and both may be assigned from a pool.
	hc.Peers[0].HoAv4, hc.Peers[0].MNPsV4 = hoa4, []netip.Prefix{mnp4}
	hc.Pool4 = NewPool4(pool4, IPv4Claims(hc.Peers), nil)
	return hc
}

// fuzzFlows is a flow binding table for the seeds to carry.
func fuzzFlows(t testing.TB) []nemo.FlowID {
	f, err := config.Parse("/x", []byte(`config router 'main'
	option home_agent '2001:db8:ffff::1'
	option home_address '2001:db8:ffff:1::100'
	option spi '256'
	option key '00112233445566778899aabbccddeeff'
config uplink 'wifi'
	option device 'wlan0'
	option bid '1'
config uplink 'cell'
	option device 'wwan0'
	option bid '2'
config policy 'voice'
	list use 'cell'
	list use 'wifi'
config policy 'both'
	list use 'cell'
	list use 'wifi'
	option mode 'duplicate'
config rule 'sip'
	option proto 'udp'
	option dest_port '5060'
	option policy 'voice'
config rule 'ctl'
	option dscp 'CS6'
	option policy 'both'
`))
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := policy.Compile(f.Router)
	if err != nil {
		t.Fatal(err)
	}
	return tbl.FlowIDs()
}

// sent is a signalling packet a router sent and how it reached the home
// agent.
type sent struct {
	pkt []byte
	arr Arrival
}

func arrival(s Send, natPort uint16) Arrival {
	arr := Arrival{Encap: s.Path.Encap, Outer: netip.AddrPortFrom(s.Path.Src, 0)}
	switch s.Path.Encap {
	case nemo.EncapUDP4:
		arr.Outer = netip.AddrPortFrom(natAddr, natPort)
	case nemo.EncapUDP6:
		arr.Outer = netip.AddrPortFrom(s.Path.Src, 5000)
	}
	return arr
}

// routerSends runs a router from seq at start through registration of two
// uplinks, a refresh and the loss of one, returning what it sent (with
// the answers of a home agent, so that the run goes on).
func routerSends(t testing.TB, rc UpdateListConfig, seq uint16, start time.Time) []sent {
	r := NewUpdateList(rc, seq)
	c := NewCache(fuzzHA())
	var out []sent
	now := start
	run := func() {
		for _, s := range r.Poll(now) {
			if s.Probe {
				continue
			}
			arr := arrival(s, 40000)
			out = append(out, sent{s.Packet, arr})
			if res := c.HandlePacket(s.Packet, arr, now); res.Reply != nil {
				r.HandlePacket(res.Reply, now)
			}
		}
	}
	r.SetLink(0, LinkState{Up: true, IPv6: wifiCoA}, now)
	r.SetLink(1, LinkState{Up: true, IPv4: cellCoA}, now)
	run()
	now = now.Add(100 * time.Second) // the NAT'd binding's refresh
	run()
	r.SetLink(1, LinkState{}, now)
	run()
	if len(out) < 4 {
		t.Fatalf("only %d packets", len(out))
	}
	return out
}

// seedBUs returns Binding Updates as a router sends them: native, in UDP,
// registrations, a refresh and a de-registration, with and without flow
// bindings.
func seedBUs(t testing.TB) [][]byte {
	var out [][]byte
	rc := routerConfig()
	for _, flows := range [][]nemo.FlowID{nil, fuzzFlows(t)} {
		rc.Flows = flows
		for _, s := range routerSends(t, rc, 7, t0) {
			out = append(out, s.pkt)
		}
	}
	// With the IPv4 Home Address options of an address and a prefix.
	rc = routerConfig()
	rc.HoAv4, rc.MNPv4Length = netip.IPv4Unspecified(), 24
	for _, s := range routerSends(t, rc, 9, t0) {
		out = append(out, s.pkt)
	}
	return out
}

// mhOf returns the Mobility Header of a packet.
func mhOf(t testing.TB, pkt []byte) []byte {
	p, err := nemo.ParsePacket(pkt)
	if err != nil {
		t.Fatal(err)
	}
	return p.MH
}

// Flags of the cache target.
const (
	fcRegistered  = 1 << iota // car1 registered first, genuinely
	fcWrongKey                // signed with a key the home agent does not have
	fcBadChecksum             // the checksum spoilt after signing
	fcNoSign                  // the fuzzer's authenticator kept as it is
)

// entrySnap is what an entry holds, copied.
type entrySnap struct {
	bindings []Binding
	mnps     []netip.Prefix
	router   bool
	flows    *policy.Table
	v4       []netip.Prefix // what is forwarded over IPv4
}

func snapCache(c *Cache) map[netip.Addr]entrySnap {
	m := map[netip.Addr]entrySnap{}
	for _, e := range c.Entries() {
		m[e.Peer.HoA] = entrySnap{slices.Clone(e.Bindings), slices.Clone(e.MNPs), e.Router, e.Flows, e.PrefixesV4()}
	}
	return m
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func outcomes(c *Counters) uint64 {
	n := c.Accepted + c.Deregistrations + c.RevocationAcks
	for _, v := range c.Rejected() {
		n += v
	}
	for _, v := range c.NotActedOn() {
		n += v
	}
	return n
}

// FuzzCacheHandlePacket: whatever a (correctly signed, or not) message
// says, the home agent keeps entries only for its configured routers,
// binds only BIDs the message names, forwards only prefixes the router may
// claim and only while it has bindings, counts the message once, and signs
// its answers to known routers.
func FuzzCacheHandlePacket(f *testing.F) {
	for i, s := range seedBUs(f) {
		mh := mhOf(f, s)
		f.Add(mh, uint8(0), uint8(0), int16(0), uint8(0))
		f.Add(mh, uint8(0), uint8(1+i%2), int16(100), uint8(fcRegistered))
		f.Add(mh, uint8(1), uint8(3), int16(-20), uint8(fcRegistered))
		f.Add(mh, uint8(2), uint8(0), int16(0), uint8(fcWrongKey))
	}
	// car1 registered a minute before, from both uplinks, for the fuzzed
	// message to refresh, change or de-register.
	pre := routerSends(f, routerConfig(), 60000, t0.Add(-time.Minute))[:2]
	hc := fuzzHA()
	f.Fuzz(func(t *testing.T, mh []byte, who, how uint8, delta int16, flags uint8) {
		hc.Pool4 = NewPool4(pool4, IPv4Claims(hc.Peers), nil) // no assignment left from another run
		c := NewCache(hc)
		if flags&fcRegistered != 0 {
			for _, s := range pre {
				if r := c.HandlePacket(s.pkt, s.arr, t0.Add(-time.Minute)); r.Status != 0 {
					t.Fatalf("the genuine registration got %d", r.Status)
				}
			}
		}
		claimed := []netip.Addr{hoa, hoa2, netip.MustParseAddr("2001:db8:ffff:1::999"), netip.MustParseAddr("2001:db8:eeee::1")}[who%4]
		var peer *Peer
		for i := range hc.Peers {
			if hc.Peers[i].HoA == claimed {
				peer = &hc.Peers[i]
			}
		}
		arr := Arrival{Encap: []nemo.Encap{nemo.EncapIPv6, nemo.EncapUDP4, nemo.EncapUDP6}[how%3]}
		var src, hao, authCoA netip.Addr
		switch arr.Encap {
		case nemo.EncapIPv6:
			out := outers6[int(how/3)%len(outers6)]
			arr.Outer = netip.AddrPortFrom(out, 0)
			src, hao, authCoA = out, claimed, out
		case nemo.EncapUDP4:
			arr.Outer = netip.AddrPortFrom(outers4[int(how/3)%len(outers4)], 40000+uint16(how))
			src, authCoA = claimed, claimed
		default:
			arr.Outer = netip.AddrPortFrom(outers6[int(how/3)%len(outers6)], 5000)
			src, authCoA = claimed, claimed
		}
		mh = slices.Clone(mh)
		if flags&fcNoSign == 0 {
			k := wrongKey
			if peer != nil && flags&fcWrongKey == 0 {
				k = peer.Key
			}
			nemo.NewAuthenticator(k).Sign(mh, authCoA, claimed)
		}
		pkt, err := nemo.AppendPacket(nil, src, haAddr, hao, netip.Addr{}, 64, mh)
		if err != nil {
			return
		}
		if flags&fcBadChecksum != 0 && len(mh) >= 6 {
			pkt[len(pkt)-len(mh)+4] ^= 0x55
		}
		var bu nemo.BindingUpdate
		decoded := nemo.Unmarshal(mh, &bu) == nil
		// Whether the message is the claimed router's, however it came to
		// be: signed here, or a seed left as it was.
		signed := decoded && peer != nil && flags&fcBadChecksum == 0 &&
			nemo.NewAuthenticator(peer.Key).Verify(mh, &bu.Options, authCoA, claimed) == nil
		now := t0
		if decoded && bu.HasTimestamp {
			now = nemo.NTPToTime(bu.Timestamp)
		}
		now = now.Add(time.Duration(delta) * time.Millisecond)

		before, counters := snapCache(c), c.Counters
		res := c.HandlePacket(pkt, arr, now)
		after := snapCache(c)

		// Counted once, under the reason given.
		if c.Received != counters.Received+1 || outcomes(&c.Counters) != c.Received {
			t.Fatalf("outcomes %d of %d received: %+v", outcomes(&c.Counters), c.Received, c.Counters)
		}
		taken := c.Accepted+c.Deregistrations != counters.Accepted+counters.Deregistrations
		if taken != (res.Reason == "") || (res.Reason != "" && *c.counter(res.Reason) != *counters.counter(res.Reason)+1) {
			t.Fatalf("reason %q, counters %+v -> %+v", res.Reason, counters, c.Counters)
		}
		// Only configured routers have entries.
		if len(after) != len(hc.Peers) {
			t.Fatalf("entries %v", after)
		}
		for _, p := range hc.Peers {
			e := c.Entry(p.HoA)
			if e == nil || e.Peer.HoA != p.HoA || e.Peer.SPI != p.SPI {
				t.Fatalf("entry of %s: %+v", p.HoA, e)
			}
		}
		for a, e := range after {
			b := before[a]
			changed := !slices.Equal(e.bindings, b.bindings) || !slices.Equal(e.mnps, b.mnps) || e.router != b.router || e.flows != b.flows || !slices.Equal(e.v4, b.v4)
			if changed && (!signed || !decoded || a != claimed) {
				t.Fatalf("entry %s changed by a message not signed for it (signed %v, decoded %v, claimed %s): %+v -> %+v",
					a, signed, decoded, claimed, b, e)
			}
			if changed && (res.Changed == nil || res.Changed.Peer.HoA != a) {
				t.Fatalf("entry %s changed, the result says %v", a, res.Changed)
			}
			for i, bd := range e.bindings {
				if i > 0 && e.bindings[i-1].BID >= bd.BID {
					t.Fatalf("bindings not sorted by BID: %+v", e.bindings)
				}
				old := slices.IndexFunc(b.bindings, func(x Binding) bool { return x == bd })
				if old >= 0 {
					continue
				}
				// New or changed: the message names its BID, or has no BIDs
				// and makes the one binding without.
				if bu.FindBID(bd.BID) < 0 && !(bd.BID == 0 && len(bu.BIDs) == 0) {
					t.Fatalf("binding %d made by a message with BIDs %+v", bd.BID, bu.BIDs)
				}
				if !bd.Expires.After(now) || bd.Expires.Sub(now) > hc.MaxLifetime || !bd.CoA.IsValid() || bd.Encap == nemo.EncapNone {
					t.Fatalf("binding %+v at %v", bd, now)
				}
			}
			peerMNPs := c.Entry(a).Peer.MNPs
			for _, p := range e.mnps {
				if !slices.ContainsFunc(peerMNPs, func(q netip.Prefix) bool { return q.Bits() <= p.Bits() && q.Contains(p.Addr()) }) {
					t.Fatalf("forwarding %s, which %s may not claim (%v)", p, a, peerMNPs)
				}
			}
			if len(e.bindings) == 0 && len(e.mnps)+len(e.v4) != 0 {
				t.Fatalf("%s: prefixes %v %v forwarded without a binding", a, e.mnps, e.v4)
			}
			peer := c.Entry(a).Peer
			for _, q := range e.v4 {
				own := slices.Contains(peer.MNPsV4, q) || q == netip.PrefixFrom(peer.HoAv4, 32)
				if !own && !(pool4.Contains(q.Addr()) && hc.Pool4.Owns(a, q)) {
					t.Fatalf("forwarding IPv4 %s, neither %s's claim nor assigned to it", q, a)
				}
			}
		}
		// The answer is a packet, and to a known router a signed one.
		if res.Reply != nil {
			rp, err := nemo.ParsePacket(res.Reply)
			if err != nil {
				t.Fatalf("answer does not parse: %v", err)
			}
			m, err := nemo.Decode(rp.MH)
			if err != nil || !nemo.VerifyChecksum(rp.MH, rp.PseudoSrc(), rp.PseudoDst()) {
				t.Fatalf("answer %T does not decode or check: %v", m, err)
			}
			if ba, ok := m.(*nemo.BindingAck); ok && peer != nil {
				if err := nemo.NewAuthenticator(peer.Key).Verify(rp.MH, &ba.Options, rp.Dst, rp.PseudoDst()); err != nil {
					t.Fatalf("answer to %s not signed with its key: %v", peer.Name, err)
				}
			}
		}
		// Everything lapses (the fuzzed clock may be before the
		// registration made first).
		c.Expire(later(now, t0).Add(nemo.MaxLifetime + time.Second))
		for _, e := range c.Entries() {
			if len(e.Bindings) != 0 || len(e.MNPs) != 0 || len(e.PrefixesV4()) != 0 {
				t.Fatalf("%s still has %+v %v %v after every lifetime", e.Peer.Name, e.Bindings, e.MNPs, e.PrefixesV4())
			}
		}
	})
}

// FuzzCacheUnauthenticated: the home agent never registers anything from
// a message it cannot authenticate.
func FuzzCacheUnauthenticated(f *testing.F) {
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
		if res.Changed != nil || c.Accepted != 0 || c.Deregistrations != 0 || c.Entry(hoa).Registered() {
			t.Fatalf("unauthenticated message changed the cache: %+v", res)
		}
	})
}

// Flags of the router target.
const (
	frWrongKey    = 1 << iota // signed with a key the router does not have
	frBadChecksum             // the checksum spoilt after signing
	frNoSign                  // the fuzzer's authenticator kept
	frEcho                    // sequence number and timestamp set to those of an outstanding BU
	frNative                  // with a type 2 routing header to a care-of address, not in UDP
)

// scenario is a router with Binding Updates outstanding, and the time.
type scenario struct {
	r   *UpdateList
	now time.Time
	// held are the BUs sent and not delivered; answers the home agent's
	// answers to them, for seeds.
	held    []Send
	answers [][]byte
}

// newScenario builds one of four routers, by n: both uplinks registering;
// one registered, one registering; both registered, a refresh out; one
// registered, a de-registration of the other out.
func newScenario(n uint8) *scenario {
	s := &scenario{r: NewUpdateList(routerConfig(), 1000), now: t0}
	c := NewCache(fuzzHA())
	deliver := func(keep func(Send) bool) {
		for _, snd := range s.r.Poll(s.now) {
			if snd.Probe {
				continue
			}
			res := c.HandlePacket(snd.Packet, arrival(snd, 40000), s.now)
			if keep(snd) {
				s.held = append(s.held, snd)
				if res.Reply != nil {
					s.answers = append(s.answers, res.Reply)
				}
				continue
			}
			if res.Reply != nil {
				s.r.HandlePacket(res.Reply, s.now)
			}
		}
	}
	all := func(Send) bool { return true }
	none := func(Send) bool { return false }
	s.r.SetLink(0, LinkState{Up: true, IPv6: wifiCoA}, s.now)
	s.r.SetLink(1, LinkState{Up: true, IPv4: cellCoA}, s.now)
	switch n % 4 {
	case 0:
		deliver(all)
	case 1:
		deliver(func(snd Send) bool { return snd.Path.Uplink == 1 })
	case 2:
		deliver(none)
		s.now = s.now.Add(100 * time.Second)
		deliver(all)
	case 3:
		deliver(none)
		s.now = s.now.Add(time.Second)
		s.r.SetLink(1, LinkState{}, s.now)
		deliver(all)
	}
	return s
}

// outstanding lists the BUs awaiting an answer.
func (r *UpdateList) outstanding() []*pending {
	var out []*pending
	for _, l := range r.links {
		if l.reg != nil && l.reg.attempts > 0 && !slices.Contains(out, l.reg) {
			out = append(out, l.reg)
		}
	}
	if r.dereg != nil && r.dereg.attempts > 0 {
		out = append(out, r.dereg)
	}
	return out
}

type linkSnap struct {
	state            State
	coa              netip.Addr
	encap            nemo.Encap
	expires, refresh time.Time
}

func snapList(r *UpdateList) []linkSnap {
	var out []linkSnap
	for _, l := range r.links {
		out = append(out, linkSnap{l.state, l.coa, l.encap, l.expires, l.refreshAt})
	}
	return out
}

// FuzzRouterHandlePacket: whatever a signed answer says, the router
// registers a binding only on an answer to an outstanding Binding Update
// that carried it (its sequence number and timestamp), never on a refusal,
// counts every packet once, and keeps going afterwards.
func FuzzRouterHandlePacket(f *testing.F) {
	for n := uint8(0); n < 4; n++ {
		s := newScenario(n)
		for i, a := range s.answers {
			mh := mhOf(f, a)
			native := uint8(0)
			if s.held[i].Path.Encap == nemo.EncapIPv6 {
				native = frNative
			}
			f.Add(mh, n, uint8(i), int16(0), native)
			f.Add(mh, n, uint8(i), int16(5), native|frEcho)
		}
	}
	// Revocation indications of one BID and of all, fresh (the
	// scenarios' clock), natively and in UDP.
	for _, bids := range [][]nemo.BID{{{ID: 1}}, nil} {
		bri, err := nemo.Marshal(&nemo.BindingRevocation{Kind: nemo.RevocationIndication, Code: 1, Seq: 9, Options: nemo.Options{
			BIDs: bids, HasMNID: true, MNIDSubtype: nemo.MNIDSubtypeNAI, MNID: []byte("car1@fleet"),
			HasTimestamp: true, Timestamp: nemo.NTPTime(t0), Auth: []nemo.Auth{{Subtype: nemo.AuthMNHA, SPI: 256}}}})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(bri, uint8(0), uint8(0), int16(0), uint8(frNative))
		f.Add(bri, uint8(1), uint8(1), int16(0), uint8(0))
	}
	f.Fuzz(func(t *testing.T, mh []byte, scen, target uint8, delta int16, flags uint8) {
		s := newScenario(scen)
		r := s.r
		out := r.outstanding()
		mh = slices.Clone(mh)
		var ba nemo.BindingAck
		if flags&frEcho != 0 && len(out) > 0 && nemo.Unmarshal(mh, &ba) == nil {
			p := out[int(target)%len(out)]
			ba.Seq, ba.HasTimestamp, ba.Timestamp = p.seq, true, p.ts
			if ba.Status == nemo.StatusIDMismatch {
				ba.Timestamp = uint64(uint32(p.ts)) | uint64(target)<<32
			}
			if enc, err := nemo.Marshal(&ba); err == nil {
				mh = enc
			}
		}
		dst, rh2 := hoa, netip.Addr{}
		if flags&frNative != 0 {
			dst, rh2 = []netip.Addr{wifiCoA, wifi2CoA}[target%2], hoa
		}
		if flags&frNoSign == 0 {
			k := key
			if flags&frWrongKey != 0 {
				k = wrongKey
			}
			nemo.NewAuthenticator(k).Sign(mh, dst, hoa)
		}
		pkt, err := nemo.AppendPacket(nil, haAddr, dst, netip.Addr{}, rh2, 64, mh)
		if err != nil {
			return
		}
		if flags&frBadChecksum != 0 && len(mh) >= 6 {
			pkt[len(pkt)-len(mh)+4] ^= 0x55
		}
		decoded := nemo.Unmarshal(mh, &ba) == nil
		signed := decoded && flags&frBadChecksum == 0 && nemo.NewAuthenticator(key).Verify(mh, &ba.Options, dst, hoa) == nil
		if br := (nemo.BindingRevocation{}); len(mh) > 2 && mh[2] == nemo.TypeRevocation && nemo.Unmarshal(mh, &br) == nil {
			signed = flags&frBadChecksum == 0 && nemo.NewAuthenticator(key).Verify(mh, &br.Options, dst, hoa) == nil
		}
		now := s.now.Add(time.Duration(delta) * time.Millisecond)

		before, acked, taken, seq, skew := snapList(r), r.Acked, r.Revocations.Taken, r.seq, r.skew
		err = r.HandlePacket(pkt, now)
		after := snapList(r)

		if r.Received != r.Acked+r.Ignored+r.Revocations.Taken+r.Revocations.Repeated || (Reason(err) == "") != (err == nil) {
			t.Fatalf("received %d, acked %d, ignored %d, revocations %+v; %v (%s)", r.Received, r.Acked, r.Ignored, r.Revocations, err, Reason(err))
		}
		if r.Revocations.Taken != taken && !signed {
			t.Fatalf("an unauthenticated revocation was taken: %v", err)
		}
		if r.Acked == acked && r.Revocations.Taken == taken {
			// Not taken: nothing moved.
			if !slices.Equal(before, after) || r.seq != seq || r.skew != skew {
				t.Fatalf("an answer not taken (%v) changed the router", err)
			}
			return
		}
		if r.Revocations.Taken != taken {
			// A revocation only takes bindings off.
			for i := range after {
				if after[i].state == StateRegistered && (before[i].state != StateRegistered || after[i].expires != before[i].expires) {
					t.Fatalf("a revocation registered uplink %d: %+v", i, after[i])
				}
			}
			return
		}
		if !signed || !decoded {
			t.Fatalf("took an answer not signed (%v) or not decoded (%v)", signed, decoded)
		}
		var answered *pending
		for _, p := range out {
			if p.seq == ba.Seq && p.ts == ba.Timestamp ||
				ba.Status == nemo.StatusSeqOutOfWindow && p.ts == ba.Timestamp ||
				ba.Status == nemo.StatusIDMismatch && uint32(p.ts) == uint32(ba.Timestamp) {
				answered = p
			}
		}
		if answered == nil {
			t.Fatalf("took an answer (seq %d, ts %x) to no outstanding BU", ba.Seq, ba.Timestamp)
		}
		for i := range after {
			b, a := before[i], after[i]
			bound := a.state == StateRegistered && (b.state != StateRegistered || a.expires != b.expires || a.coa != b.coa || a.encap != b.encap)
			if !bound {
				continue
			}
			if ba.Status >= 128 || ba.Seq != answered.seq || ba.Timestamp != answered.ts || !slices.Contains(answered.links, i) {
				t.Fatalf("uplink %d registered on status %d, seq %d for %d, carrying %v", i, ba.Status, ba.Seq, answered.seq, answered.links)
			}
			if !a.coa.IsValid() || a.encap == nemo.EncapNone || !a.expires.After(answered.sentAt) ||
				a.refresh.After(a.expires) || a.refresh.Before(answered.sentAt) {
				t.Fatalf("uplink %d registered as %+v", i, a)
			}
		}
		// And it carries on.
		for range 3 {
			r.Poll(now)
			if next := r.NextDeadline(); next.After(now) {
				now = next
			}
		}
		for _, b := range r.Bindings() {
			if b.State == StateRegistered && (!b.CoA.IsValid() || b.Encap == nemo.EncapNone) {
				t.Fatalf("binding %+v", b)
			}
		}
	})
}

// FuzzRouterUnauthenticated: the router never registers on an answer it
// cannot authenticate.
func FuzzRouterUnauthenticated(f *testing.F) {
	for _, a := range newScenario(0).answers {
		f.Add(a)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		rc := routerConfig()
		rc.Key = []byte("a key the fuzzer does not know")
		r := NewUpdateList(rc, 1000)
		r.SetLink(0, LinkState{Up: true, IPv6: wifiCoA}, t0)
		r.Poll(t0)
		_ = r.HandlePacket(pkt, t0.Add(time.Millisecond))
		if r.Bindings()[0].State == StateRegistered || r.Acked != 0 {
			t.Fatal("took an unauthenticated answer")
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
		r := NewUpdateList(rc, 1)
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
