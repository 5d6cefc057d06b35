package binding

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"nemod/nemo"
)

// Several home agents (or cluster members) and one router, in virtual
// time: packets go to the cache of the home agent address they are for.

var (
	ha2Addr  = netip.MustParseAddr("2001:db8:fffe::1")
	ha2Addr4 = netip.MustParseAddr("198.51.100.129")
)

type multi struct {
	t   *testing.T
	now time.Time
	r   *UpdateList
	// has are the caches by home agent address; a cluster's members
	// share theirs (shared: every change is exported to the others).
	has    map[netip.Addr]*Cache
	v4     map[netip.Addr]netip.Addr
	down   map[netip.Addr]bool
	shared []*Cache
	heard  map[int]time.Time
	natted uint16
}

func newMulti(t *testing.T, rc UpdateListConfig) *multi {
	m := &multi{t: t, now: t0, has: map[netip.Addr]*Cache{}, v4: map[netip.Addr]netip.Addr{}, down: map[netip.Addr]bool{}, heard: map[int]time.Time{}, natted: 40000}
	rc.Heard = func(i int) time.Time { return m.heard[i] }
	m.r = NewUpdateList(rc, 1000)
	return m
}

// agent adds a home agent of its own at a6/a4.
func (m *multi) agent(a6, a4 netip.Addr) *Cache {
	hc := haConfig()
	hc.Address, hc.AddressV4 = a6, a4
	c := NewCache(hc)
	m.has[a6], m.v4[a4] = c, a6
	return c
}

func (m *multi) dst(s Send) netip.Addr {
	if a, ok := m.v4[s.Path.Dst]; ok {
		return a
	}
	return s.Path.Dst
}

func (m *multi) deliver(s Send) {
	dst := m.dst(s)
	c := m.has[dst]
	if c == nil || m.down[dst] {
		return
	}
	if s.Probe {
		if e := c.Entry(hoa); e != nil && dst == m.r.cfg.HA {
			for _, b := range e.Bindings {
				if b.BID == m.r.links[s.Path.Uplink].cfg.BID {
					m.heard[s.Path.Uplink] = m.now
				}
			}
		}
		return
	}
	arr := Arrival{Encap: s.Path.Encap, Outer: netip.AddrPortFrom(s.Path.Src, 0)}
	if s.Path.Encap == nemo.EncapUDP4 {
		arr.Outer = netip.AddrPortFrom(natAddr, m.natted)
	}
	res := c.HandlePacket(s.Packet, arr, m.now)
	m.replicate(c, res.Changed)
	if res.Reply != nil {
		if err := m.r.HandlePacket(res.Reply, m.now); err != nil && !strings.Contains(err.Error(), "refused") {
			m.t.Logf("router: %v", err)
		}
	}
}

func (m *multi) replicate(from *Cache, e *Entry) {
	if e == nil {
		return
	}
	for _, c := range m.shared {
		if c != from {
			if _, err := c.Import(from.Export(e.Peer.HoA)); err != nil {
				m.t.Fatal(err)
			}
		}
	}
}

func (m *multi) run(d time.Duration) {
	end := m.now.Add(d)
	for !m.now.After(end) {
		for _, s := range m.r.Poll(m.now) {
			m.deliver(s)
		}
		next := m.r.NextDeadline()
		if next.IsZero() || next.After(end) {
			next = end.Add(time.Nanosecond)
		}
		if next.Before(m.now.Add(time.Millisecond)) {
			next = m.now.Add(time.Millisecond)
		}
		m.now = next
	}
}

func (m *multi) up() {
	m.r.SetLink(0, LinkState{Up: true, IPv6: wifiCoA, IPv4: netip.MustParseAddr("192.168.50.2")}, m.now)
	m.r.SetLink(1, LinkState{Up: true, IPv4: cellCoA}, m.now)
}

func (m *multi) at(c *Cache) string {
	e := c.Entry(hoa)
	var parts []string
	for _, b := range e.Bindings {
		parts = append(parts, b.Encap.String())
	}
	return strings.Join(parts, " ")
}

func listConfig() UpdateListConfig {
	rc := probingConfig()
	rc.HomeAgents = []HomeAgentAddr{{haAddr, haAddr4}, {ha2Addr, ha2Addr4}}
	rc.HATimeout = 3 * time.Second
	return rc
}

// TestHomeAgentListFailover: the first home agent goes silent; the router
// moves to the second within ha_timeout of its first unanswered Binding
// Update plus one registration, and returns to the first once it answers
// again, leaving the second.
func TestHomeAgentListFailover(t *testing.T) {
	m := newMulti(t, listConfig())
	ha1, ha2 := m.agent(haAddr, haAddr4), m.agent(ha2Addr, ha2Addr4)
	m.up()
	m.run(2 * time.Second)
	if got := m.at(ha1); got != "ipv6 udp4" || m.r.HomeAgent().Reason != HAReasonConfigured {
		t.Fatalf("registered with the first: %q %+v", got, m.r.HomeAgent())
	}
	stop := m.now
	m.down[haAddr] = true
	var silent, moved time.Time
	for end := m.now.Add(10 * time.Second); m.now.Before(end) && moved.IsZero(); {
		m.run(10 * time.Millisecond)
		if s := m.r.HomeAgent().SilentSince; silent.IsZero() && !s.IsZero() {
			silent = s
		}
		if m.r.cfg.HA == ha2Addr && m.states() == "wifi=registered/ipv6 cell=registered/udp4" {
			moved = m.now
		}
	}
	if moved.IsZero() {
		t.Fatalf("never moved to the second home agent: %s %+v", m.states(), m.r.HomeAgent())
	}
	hs := m.r.HomeAgent()
	t.Logf("home agent stopped, first unanswered BU after %v, registered with the second %v after it", silent.Sub(stop), moved.Sub(silent))
	if hs.Reason != HAReasonTimeout || hs.From != haAddr || hs.Failovers != 1 || moved.Sub(silent) > 3*time.Second+250*time.Millisecond {
		t.Fatalf("moved %v after the silence began: %+v", moved.Sub(silent), hs)
	}
	if got := m.at(ha2); got != "ipv6 udp4" {
		t.Fatalf("the second home agent's bindings: %q", got)
	}
	// The first comes back: asked every ha_timeout, it answers, and the
	// router goes back and leaves the second.
	m.down[haAddr] = false
	m.run(4 * time.Second)
	hs = m.r.HomeAgent()
	if m.r.cfg.HA != haAddr || hs.Reason != HAReasonReturned || hs.Returns != 1 || m.at(ha1) != "ipv6 udp4" || m.at(ha2) != "" {
		t.Fatalf("after the first came back: %+v, first %q second %q", hs, m.at(ha1), m.at(ha2))
	}
}

// A home agent that answers over one uplink only is not silent: a broken
// uplink does not move the router.
func TestHomeAgentListOneUplinkBroken(t *testing.T) {
	m := newMulti(t, listConfig())
	m.agent(haAddr, haAddr4)
	m.agent(ha2Addr, ha2Addr4)
	m.up()
	m.run(2 * time.Second)
	m.r.SetLink(1, LinkState{Up: true, IPv4: netip.MustParseAddr("100.64.0.3")}, m.now) // a new address nobody answers on
	m.v4[haAddr4] = netip.Addr{}                                                        // the cellular path loses the first home agent
	m.run(10 * time.Second)
	if m.r.cfg.HA != haAddr || m.r.HomeAgent().Failovers != 0 {
		t.Fatalf("moved: %+v", m.r.HomeAgent())
	}
}

func (m *multi) states() string {
	var parts []string
	for _, b := range m.r.Bindings() {
		parts = append(parts, b.Uplink+"="+b.State.String()+"/"+b.Encap.String())
	}
	return strings.Join(parts, " ")
}

// TestHomeAgentSwitch: the home agent switches its router to another; the
// router registers there on every uplink, then de-registers from the
// first, which counts the switch done; retransmissions follow RFC 5142's
// timers; a replayed or forged switch moves nothing.
func TestHomeAgentSwitch(t *testing.T) {
	m := newMulti(t, listConfig())
	ha1, ha2 := m.agent(haAddr, haAddr4), m.agent(ha2Addr, ha2Addr4)
	m.up()
	m.run(2 * time.Second)
	sw, err := ha1.Switch(hoa, []netip.Addr{ha2Addr}, m.now)
	if err != nil {
		t.Fatal(err)
	}
	if sends, _ := ha1.PollSwitches(m.now, 0); len(sends) != 0 {
		t.Fatal("sent beyond the budget")
	}
	// The first message lost: sent again after INITIAL-HA-SWITCH-TIMEOUT,
	// then every doubled timeout.
	sends, _ := ha1.PollSwitches(m.now, 10)
	if len(sends) != 1 || sw.Sent != 1 {
		t.Fatalf("%d messages", len(sends))
	}
	first := sends[0].Reply
	if s, _ := ha1.PollSwitches(m.now.Add(InitialHASwitchTimeout-time.Millisecond), 10); len(s) != 0 {
		t.Fatal("retransmitted early")
	}
	m.now = m.now.Add(InitialHASwitchTimeout)
	sends, _ = ha1.PollSwitches(m.now, 10)
	if len(sends) != 1 || ha1.NextSwitch() != m.now.Add(2*InitialHASwitchTimeout) {
		t.Fatalf("retransmission: %d, next %v", len(sends), ha1.NextSwitch().Sub(m.now))
	}
	// While told to leave, a refresh here is refused with 129.
	if err := m.r.HandlePacket(sends[0].Reply, m.now); err != nil {
		t.Fatal(err)
	}
	if m.r.cfg.HA != ha2Addr || m.r.HomeAgent().Reason != HAReasonSwitch {
		t.Fatalf("not moving: %+v", m.r.HomeAgent())
	}
	m.run(time.Second)
	if got := m.at(ha2); got != "ipv6 udp4" || m.at(ha1) != "" {
		t.Fatalf("second %q, first %q", got, m.at(ha1))
	}
	_, done := ha1.PollSwitches(m.now, 10)
	if len(done) != 1 || !done[0].Moved || ha1.SwitchesMoved != 1 {
		t.Fatalf("switch not done: %+v", done)
	}
	// The first message, replayed: refused as older than the one taken.
	before := m.r.IgnoredBy[ReasonReplayed]
	if err := m.r.HandlePacket(first, m.now); err == nil || m.r.IgnoredBy[ReasonReplayed] != before+1 {
		t.Fatalf("replay: %v", err)
	}
	// A forgery: another key.
	forger := NewCache(HAConfig{Address: ha2Addr, HomePrefix: homePfx, Peers: []Peer{{Name: "car1", HoA: hoa, SPI: 256, Key: []byte("another key 1234"), NAI: "car1@fleet", MNPs: haConfig().Peers[0].MNPs}}})
	forger.Import(ha2.Export(hoa))
	if _, err := forger.Switch(hoa, []netip.Addr{haAddr}, m.now); err != nil {
		t.Fatal(err)
	}
	fs, _ := forger.PollSwitches(m.now, 1)
	if err := m.r.HandlePacket(fs[0].Reply, m.now); err == nil || m.r.cfg.HA != ha2Addr {
		t.Fatalf("forged switch taken: %v", err)
	}
}

// TestClusterSharesTheCache: two members of a cluster share one entry per
// router. The owner of the instance dies and the other answers at its
// address: the router's next refresh is accepted there (the sequence
// number and timestamp came with the record), with the bindings as they
// were (the NAT's address and port). A switch to the other instance leaves
// the bindings in place when the router de-registers from the first.
func TestClusterSharesTheCache(t *testing.T) {
	rc := listConfig()
	rc.HATimeout = 0
	m := newMulti(t, rc)
	m1, m2 := m.agent(haAddr, haAddr4), m.agent(ha2Addr, ha2Addr4)
	m.shared = []*Cache{m1, m2}
	m.up()
	m.run(2 * time.Second)
	r1, r2 := m1.Export(hoa), m2.Export(hoa)
	if !r1.Same(r2) || len(r2.Bindings) != 2 || r2.HA != haAddr || r2.Bindings[1].Outer != netip.AddrPortFrom(natAddr, 40000) {
		t.Fatalf("replicated:\n%+v\n%+v", r1, r2)
	}
	// Member 1 dies; member 2 takes over instance 1's address.
	m.has[haAddr], m.v4[haAddr4] = m2, haAddr
	acc := m2.Accepted
	m.run(10 * time.Minute)
	if m2.Accepted == acc || m.at(m2) != "ipv6 udp4" || m2.BadTimestamp+m2.SeqOutOfWindow != 0 {
		t.Fatalf("refreshes after the takeover: accepted %d, %q, counters %+v", m2.Accepted-acc, m.at(m2), m2.Counters)
	}
	// Back to two members; the router switched to instance 2.
	m.has[haAddr], m.v4[haAddr4] = m1, haAddr
	m1.Import(m2.Export(hoa))
	sw, err := m1.Switch(hoa, []netip.Addr{ha2Addr}, m.now)
	if err != nil {
		t.Fatal(err)
	}
	sends, _ := m1.PollSwitches(m.now, 1)
	m.r.HandlePacket(sends[0].Reply, m.now)
	m.run(2 * time.Second)
	if e := m2.Entry(hoa); e.HA != ha2Addr || m.at(m2) != "ipv6 udp4" || m.at(m1) != "ipv6 udp4" {
		t.Fatalf("after the switch: %v %q %q", e.HA, m.at(m2), m.at(m1))
	}
	if _, done := m1.PollSwitches(m.now, 1); len(done) != 1 || !sw.Moved {
		t.Fatalf("switch not seen done at the first member: %+v", sw)
	}
}

// Import keeps the replay state moving forward only.
func TestImportIgnoresOlderRecords(t *testing.T) {
	w := registeredWorld(t, routerConfig(), haConfig())
	c := NewCache(haConfig())
	rec := w.c.Export(hoa)
	if _, err := c.Import(rec); err != nil {
		t.Fatal(err)
	}
	old := *rec
	old.TS--
	old.Bindings = nil
	if e, _ := c.Import(&old); len(e.Bindings) != 2 {
		t.Fatal("an older record took the bindings off")
	}
	if _, err := c.Import(&Record{HoA: netip.MustParseAddr("2001:db8:ffff:1::999")}); err == nil {
		t.Fatal("a record of an unknown router taken")
	}
	if e := c.Forget(hoa); e == nil || e.Registered() || c.Export(hoa).TS != rec.TS {
		t.Fatal("forget")
	}
}

// Settle: the later message's record stands, but a record without
// bindings at one address does not take away bindings at another.
func TestSettle(t *testing.T) {
	rec := func(ts uint64, ha netip.Addr, bids int) *Record {
		r := &Record{HoA: hoa, HA: ha, HasSeq: true, Seq: uint16(ts), TS: ts}
		for i := range bids {
			r.Bindings = append(r.Bindings, RecordBinding{BID: uint16(i + 1)})
		}
		return r
	}
	regA, regB := rec(10, haAddr, 2), rec(10, ha2Addr, 1)
	for _, c := range []struct {
		name       string
		a, b       *Record
		ha         netip.Addr
		bids       int
		ts         uint64
		identityOf *Record // when set, the result is that record itself
	}{
		{"later registration", rec(11, ha2Addr, 1), regA, ha2Addr, 1, 11, nil},
		{"earlier registration", regA, rec(11, ha2Addr, 1), ha2Addr, 1, 11, nil},
		{"leaving A after registering at B", rec(11, haAddr, 0), regB, ha2Addr, 1, 11, nil},
		{"the same, other order", regB, rec(11, haAddr, 0), ha2Addr, 1, 11, nil},
		{"de-registration where the bindings are", rec(11, ha2Addr, 0), regB, ha2Addr, 0, 11, nil},
		{"an old leave", rec(9, haAddr, 0), regB, ha2Addr, 1, 10, regB},
	} {
		s := Settle(c.a, c.b)
		if s.HA != c.ha || len(s.Bindings) != c.bids || s.TS != c.ts || s.Seq != uint16(c.ts) {
			t.Errorf("%s: %+v", c.name, s)
		}
		if c.identityOf != nil && s != c.identityOf {
			t.Errorf("%s: not the record itself", c.name)
		}
	}
	// The merged record is a copy: the inputs are unchanged.
	leave := rec(11, haAddr, 0)
	if m := Settle(leave, regB); m == regB || m == leave || regB.TS != 10 || len(leave.Bindings) != 0 {
		t.Error("Settle changed its inputs or returned one for a merge")
	}
}
