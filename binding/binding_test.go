package binding

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"nemod/config"
	"nemod/nemo"
	"nemod/policy"
)

var (
	haAddr   = netip.MustParseAddr("2001:db8:ffff::1")
	haAddr4  = netip.MustParseAddr("198.51.100.1")
	homePfx  = netip.MustParsePrefix("2001:db8:ffff:1::/64")
	hoa      = netip.MustParseAddr("2001:db8:ffff:1::100")
	mnp      = netip.MustParsePrefix("2001:db8:100::/56")
	wifiCoA  = netip.MustParseAddr("2001:db8:a::2")
	wifi2CoA = netip.MustParseAddr("2001:db8:a::3")
	cellCoA  = netip.MustParseAddr("100.64.0.2")
	natAddr  = netip.MustParseAddr("192.0.2.2")
	key      = []byte("0123456789abcdef")
	t0       = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
)

// world connects an UpdateList and a Cache through a simulated network: a NAT
// in front of IPv4 uplinks, and per-uplink faults.
type world struct {
	t       *testing.T
	now     time.Time
	r       *UpdateList
	c       *Cache
	natPort uint16
	// blockNative drops native (protocol 135) signalling on these uplinks;
	// dead drops everything on them.
	blockNative map[int]bool
	dead        map[int]bool
	// reorder holds back sends instead of delivering them.
	hold           bool
	held           []Send
	results        []Result
	sent           []Send // everything the router sent, delivered or not
	probesAnswered int
	// heard is the liveness clock a data plane would keep, by uplink;
	// known the care-of addresses the home agent has had.
	heard map[int]time.Time
	known map[netip.Addr]bool
	// clocks are the rest of each uplink's path clock (traffic), which
	// flow moves; lose, when set, decides whether a signalling packet or
	// probe (up) or its answer (down) is lost.
	clocks map[int]Clock
	lose   func(up bool) bool
	// blockUDP6 drops UDP over IPv6 on these uplinks.
	blockUDP6 map[int]bool
}

func haConfig() HAConfig {
	return HAConfig{
		Address: haAddr, AddressV4: haAddr4, HomePrefix: homePfx, MaxLifetime: time.Hour,
		Peers: []Peer{{Name: "car1", HoA: hoa, SPI: 256, Key: key, NAI: "car1@fleet", MNPs: []netip.Prefix{mnp}}},
	}
}

func routerConfig() UpdateListConfig {
	return UpdateListConfig{
		HoA: hoa, HA: haAddr, HAv4: haAddr4, MNPs: []netip.Prefix{mnp}, SPI: 256, Key: key, NAI: "car1@fleet",
		Lifetime: 600 * time.Second,
		Uplinks:  []UplinkConfig{{Name: "wifi", BID: 1}, {Name: "cell", BID: 2}},
	}
}

func newWorld(t *testing.T, rc UpdateListConfig, hc HAConfig) *world {
	w := &world{t: t, now: t0, natPort: 40000, blockNative: map[int]bool{}, dead: map[int]bool{}, heard: map[int]time.Time{}, known: map[netip.Addr]bool{}, clocks: map[int]Clock{}}
	rc.Clock = func(i int) Clock {
		c := w.clocks[i]
		if h := w.heard[i]; h.After(c.Heard) {
			c.Heard = h
		}
		return c
	}
	w.r = NewUpdateList(rc, 1000)
	w.c = NewCache(hc)
	return w
}

// deliver carries one signalling packet to the home agent and its answer
// back.
func (w *world) deliver(s Send) {
	w.sent = append(w.sent, s)
	if w.dead[s.Path.Uplink] || (s.Path.Encap == nemo.EncapIPv6 && w.blockNative[s.Path.Uplink]) {
		return
	}
	if w.lose != nil && (w.lose(true) || w.lose(false)) {
		return
	}
	if s.Path.Encap == nemo.EncapUDP6 && w.blockUDP6[s.Path.Uplink] {
		return
	}
	if s.Probe {
		// The home agent's data plane answers a probe from a binding it
		// has, if the answer gets back: through the NAT's current mapping
		// on a UDP/IPv4 path. It answers one from no binding with the
		// unbound mark: in UDP by the home address inside, natively from
		// an address one of the router's bindings had.
		var hb nemo.Heartbeat
		if _, err := nemo.ParseHeartbeatPacket(s.Packet, &hb); err != nil || hb.Response {
			w.t.Fatalf("probe %+v: %v", hb, err)
		}
		bid := w.r.links[s.Path.Uplink].cfg.BID
		bound := false
		for _, b := range w.c.Entry(hoa).Bindings {
			if b.BID == bid && b.Encap == s.Path.Encap && (b.Encap != nemo.EncapUDP4 || b.Outer.Port() == w.natPort) {
				bound = true
			}
		}
		if bound || s.Path.Encap.UDP() || w.known[s.Path.Src] {
			w.probesAnswered++
			if bound {
				w.heard[s.Path.Uplink] = w.now
			}
			w.r.ProbeAnswered(s.Path.Uplink, hb.Seq, w.now, !bound)
		}
		return
	}
	arr := Arrival{Encap: s.Path.Encap, Outer: netip.AddrPortFrom(s.Path.Src, 0)}
	switch s.Path.Encap {
	case nemo.EncapUDP4:
		arr.Outer = netip.AddrPortFrom(natAddr, w.natPort)
	case nemo.EncapUDP6:
		arr.Outer = netip.AddrPortFrom(s.Path.Src, 5000)
	}
	res := w.c.HandlePacket(s.Packet, arr, w.now)
	w.results = append(w.results, res)
	if res.Changed != nil {
		for _, b := range res.Changed.Bindings {
			w.known[b.CoA] = true
		}
	}
	if res.Reply == nil {
		return
	}
	if err := w.r.HandlePacket(res.Reply, w.now); err != nil && !strings.Contains(err.Error(), "refused") {
		w.t.Logf("router: %v", err)
	}
}

// step polls the router and delivers what it sends.
func (w *world) step() int {
	sends := w.r.Poll(w.now)
	for _, s := range sends {
		if w.hold {
			w.held = append(w.held, s)
			continue
		}
		w.deliver(s)
	}
	return len(sends)
}

// run advances the clock to each deadline up to d from now.
func (w *world) run(d time.Duration) {
	end := w.now.Add(d)
	for i := 0; i < 10000; i++ {
		w.step()
		next := w.r.NextDeadline()
		if next.IsZero() || next.After(end) {
			break
		}
		if next.After(w.now) {
			w.now = next
		}
	}
	w.now = end
	w.step()
	w.c.Expire(w.now)
}

func (w *world) up(i int, v6, v4 netip.Addr) {
	w.r.SetLink(i, LinkState{Up: true, IPv6: v6, IPv4: v4}, w.now)
}

func (w *world) down(i int) { w.r.SetLink(i, LinkState{}, w.now) }

func (w *world) states() string {
	var s []string
	for _, b := range w.r.Bindings() {
		s = append(s, b.Uplink+"="+b.State.String()+"/"+b.Encap.String())
	}
	return strings.Join(s, " ")
}

func (w *world) haBindings() map[uint16]Binding {
	m := map[uint16]Binding{}
	for _, b := range w.c.Entry(hoa).Bindings {
		m[b.BID] = b
	}
	return m
}

func TestRegisterTwoUplinksThroughNAT(t *testing.T) {
	w := newWorld(t, routerConfig(), haConfig())
	w.up(0, wifiCoA, netip.MustParseAddr("192.168.50.2"))
	w.up(1, netip.Addr{}, cellCoA)
	w.step()
	if got := w.states(); got != "wifi=registered/ipv6 cell=registered/udp4" {
		t.Fatalf("after one exchange: %s", got)
	}
	hb := w.haBindings()
	if b := hb[1]; b.CoA != wifiCoA || b.Encap != nemo.EncapIPv6 || b.Outer != netip.AddrPortFrom(wifiCoA, 0) || b.NAT {
		t.Errorf("wifi binding %+v", b)
	}
	if b := hb[2]; b.CoA != cellCoA || b.Encap != nemo.EncapUDP4 || b.Outer != netip.AddrPortFrom(natAddr, 40000) || !b.NAT {
		t.Errorf("cell binding %+v", b)
	}
	e := w.c.Entry(hoa)
	if !e.Router || len(e.MNPs) != 1 || e.MNPs[0] != mnp {
		t.Errorf("entry %+v", e)
	}
	if w.c.Accepted != 2 {
		t.Errorf("accepted %d", w.c.Accepted)
	}
	// The NAT'd binding refreshes within the NAT keepalive time; the
	// native one at 80 % of the lifetime.
	for _, b := range w.r.links {
		if b.cfg.BID == 2 && b.refreshAt.Sub(t0) > 100*time.Second {
			t.Errorf("NAT binding refreshes after %v", b.refreshAt.Sub(t0))
		}
		if b.cfg.BID == 1 && b.refreshAt.Sub(t0) != 480*time.Second {
			t.Errorf("native binding refreshes after %v", b.refreshAt.Sub(t0))
		}
	}
}

func TestLossDeregistersThroughOtherUplinkAndReturn(t *testing.T) {
	w := bothUp(t, routerConfig(), haConfig())
	w.step()
	w.down(0)
	w.dead[0] = true
	if n := w.step(); n != 1 {
		t.Fatalf("%d packets sent on loss, want one de-registration", n)
	}
	if hb := w.haBindings(); len(hb) != 1 || hb[2].CoA != cellCoA {
		t.Fatalf("home agent bindings after loss: %+v", hb)
	}
	if w.c.Deregistrations != 1 || len(w.r.lost) != 0 {
		t.Fatalf("deregistrations %d, still lost %v", w.c.Deregistrations, w.r.lost)
	}
	// The uplink returns: registered again at once.
	delete(w.dead, 0)
	w.up(0, wifiCoA, netip.Addr{})
	w.step()
	if got := w.states(); got != "wifi=registered/ipv6 cell=registered/udp4" {
		t.Fatalf("after return: %s", got)
	}
	if len(w.haBindings()) != 2 {
		t.Fatal("home agent did not get the binding back")
	}
}

func TestFallbackToUDPWhenNativeIsBlocked(t *testing.T) {
	w := newWorld(t, routerConfig(), haConfig())
	w.blockNative[0] = true
	w.up(0, wifiCoA, netip.Addr{})
	w.step()
	if got := w.states(); !strings.HasPrefix(got, "wifi=registering/ipv6") {
		t.Fatalf("first try: %s", got)
	}
	w.run(1300 * time.Millisecond)
	if got := w.states(); !strings.HasPrefix(got, "wifi=registered/udp6") {
		t.Fatalf("after the first full timeout: %s", got)
	}
	if b := w.haBindings()[1]; b.Encap != nemo.EncapUDP6 || b.Outer != netip.AddrPortFrom(wifiCoA, 5000) {
		t.Fatalf("home agent binding %+v", b)
	}
}

func TestRetransmissionBacksOff(t *testing.T) {
	rc := routerConfig()
	rc.Uplinks = []UplinkConfig{{Name: "wifi", BID: 1, Mode: nemo.EncapIPv6}}
	w := newWorld(t, rc, haConfig())
	w.dead[0] = true
	w.up(0, wifiCoA, netip.Addr{})
	var times []time.Duration
	for i := 0; i < 9; i++ {
		if w.step() > 0 {
			times = append(times, w.now.Sub(t0))
		}
		w.now = w.r.NextDeadline()
	}
	// A quick first retry after the uplink came up, then RFC 6275's
	// doubling from 1 s to 32 s.
	want := []time.Duration{0, 250, 1250, 3250, 7250, 15250, 31250, 63250, 95250}
	for i := range want {
		if times[i] != want[i]*time.Millisecond {
			t.Fatalf("sent at %v, want %v ms", times, want)
		}
	}
}

func TestRejections(t *testing.T) {
	// Answers the router can authenticate make it retry at the slowest
	// rate; the others it must ignore, and it keeps backing off normally.
	cases := []struct {
		name   string
		rc     func(*UpdateListConfig)
		status uint8
		count  func(*Cache) uint64
	}{
		{"wrong key", func(c *UpdateListConfig) { c.Key = []byte("fedcba9876543210") }, nemo.StatusAuthFailed, func(c *Cache) uint64 { return c.AuthFailed }},
		{"wrong SPI", func(c *UpdateListConfig) { c.SPI = 999 }, nemo.StatusAuthFailed, func(c *Cache) uint64 { return c.AuthFailed }},
		{"unknown home address", func(c *UpdateListConfig) { c.HoA = netip.MustParseAddr("2001:db8:ffff:1::999") }, nemo.StatusNotHomeAgent, func(c *Cache) uint64 { return c.UnknownHomeAddr }},
		{"not home subnet", func(c *UpdateListConfig) { c.HoA = netip.MustParseAddr("2001:db8:eeee::1") }, nemo.StatusNotHomeSubnet, func(c *Cache) uint64 { return c.UnknownHomeAddr }},
		{"prefix not authorized", func(c *UpdateListConfig) { c.MNPs = []netip.Prefix{netip.MustParsePrefix("2001:db8:200::/56")} }, nemo.StatusNotAuthorizedPrefix, func(c *Cache) uint64 { return c.PrefixRejected }},
		{"prefix too wide", func(c *UpdateListConfig) { c.MNPs = []netip.Prefix{netip.MustParsePrefix("2001:db8:100::/48")} }, nemo.StatusNotAuthorizedPrefix, func(c *Cache) uint64 { return c.PrefixRejected }},
		{"prefix over the home link", func(c *UpdateListConfig) { c.MNPs = []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")} }, nemo.StatusInvalidPrefix, func(c *Cache) uint64 { return c.PrefixRejected }},
		{"invalid prefix", func(c *UpdateListConfig) { c.MNPs = []netip.Prefix{netip.MustParsePrefix("2001:db8:100::1/56")} }, nemo.StatusInvalidPrefix, func(c *Cache) uint64 { return c.PrefixRejected }},
		{"wrong NAI", func(c *UpdateListConfig) { c.NAI = "car2@fleet" }, nemo.StatusProhibited, func(c *Cache) uint64 { return c.Prohibited }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := routerConfig()
			tc.rc(&rc)
			w := newWorld(t, rc, haConfig())
			w.up(0, wifiCoA, netip.Addr{})
			w.step()
			if len(w.results) != 1 || w.results[0].Status != tc.status || tc.count(w.c) != 1 {
				t.Fatalf("results %+v, want status %d counted once", w.results, tc.status)
			}
			if w.results[0].Reply == nil {
				t.Fatal("no answer")
			}
			if got := w.states(); !strings.HasPrefix(got, "wifi=registering") {
				t.Fatalf("router state %s", got)
			}
			if e := w.c.Entry(hoa); e != nil && e.Registered() {
				t.Fatal("registered anyway")
			}
			// A configuration error the router can trust the answer about is
			// retried slowly, not hammered.
			trusted := tc.status != nemo.StatusAuthFailed && tc.status != nemo.StatusNotHomeAgent && tc.status != nemo.StatusNotHomeSubnet
			if d := w.r.NextDeadline().Sub(w.now); trusted && d < 30*time.Second {
				t.Fatalf("retry after %v", d)
			}
		})
	}
}

func TestReplayedBUIsRejected(t *testing.T) {
	w := newWorld(t, routerConfig(), haConfig())
	w.hold = true
	w.up(0, wifiCoA, netip.Addr{})
	w.step()
	bu := w.held[0]
	w.deliver(bu)
	if w.results[0].Status != 0 {
		t.Fatalf("first: %+v", w.results[0])
	}
	w.now = w.now.Add(time.Second)
	w.deliver(bu)
	if r := w.results[1]; r.Status != nemo.StatusIDMismatch || w.c.BadTimestamp != 1 {
		t.Fatalf("replay: status %d, counted %d", r.Status, w.c.BadTimestamp)
	}
}

func TestClockSkewIsCorrected(t *testing.T) {
	w := newWorld(t, routerConfig(), haConfig())
	w.r.skew = -time.Hour // the router's clock is an hour slow
	w.up(0, wifiCoA, netip.Addr{})
	w.step()
	if w.results[0].Status != nemo.StatusIDMismatch {
		t.Fatalf("status %d", w.results[0].Status)
	}
	w.step()
	if got := w.states(); !strings.HasPrefix(got, "wifi=registered") {
		t.Fatalf("after correction: %s", got)
	}
}

func TestOutOfOrderBUsRecover(t *testing.T) {
	w := newWorld(t, routerConfig(), haConfig())
	w.hold = true
	w.up(0, wifiCoA, netip.Addr{})
	w.up(1, netip.Addr{}, cellCoA)
	w.step()
	w.hold = false
	// The cell BU (newer sequence number) overtakes the Wi-Fi one.
	w.deliver(w.held[1])
	w.deliver(w.held[0])
	// Its timestamp is older than the last accepted one too, and RFC 4285
	// checks that first: status 144 (with no clock correction to make).
	if w.results[1].Status != nemo.StatusIDMismatch {
		t.Fatalf("late BU: status %d", w.results[1].Status)
	}
	w.step()
	if got := w.states(); got != "wifi=registered/ipv6 cell=registered/udp4" {
		t.Fatalf("after retry: %s", got)
	}
}

func TestBulkRefresh(t *testing.T) {
	rc := routerConfig()
	w := newWorld(t, rc, haConfig())
	w.up(0, wifiCoA, netip.Addr{})
	w.up(1, wifi2CoA, netip.Addr{})
	w.step()
	w.results = nil
	w.run(481 * time.Second)
	if len(w.results) != 1 {
		t.Fatalf("%d refresh messages, want one bulk refresh", len(w.results))
	}
	e := w.c.Entry(hoa)
	for _, b := range e.Bindings {
		if b.Expires.Sub(w.now) < 500*time.Second {
			t.Fatalf("binding %d not refreshed: expires in %v", b.BID, b.Expires.Sub(w.now))
		}
	}
	if b := w.haBindings()[2]; b.CoA != wifi2CoA || b.Encap != nemo.EncapIPv6 {
		t.Fatalf("refresh changed the second binding: %+v", b)
	}
	if got := w.states(); got != "wifi=registered/ipv6 cell=registered/ipv6" {
		t.Fatal(got)
	}
}

func TestHomeAgentExpiresSilentRouter(t *testing.T) {
	w := newWorld(t, routerConfig(), haConfig())
	w.up(0, wifiCoA, netip.Addr{})
	w.step()
	w.dead[0] = true
	w.run(601 * time.Second)
	if w.c.Entry(hoa).Registered() || w.c.Expired != 1 {
		t.Fatalf("binding not expired: %+v", w.c.Entry(hoa).Bindings)
	}
	// The router noticed too and is registering again.
	if got := w.states(); !strings.HasPrefix(got, "wifi=registering") {
		t.Fatal(got)
	}
}

func TestShutdownDeregistersEverything(t *testing.T) {
	w := bothUp(t, routerConfig(), haConfig())
	w.step()
	for _, s := range w.r.Shutdown(w.now) {
		w.deliver(s)
	}
	if !w.r.Done() || w.c.Entry(hoa).Registered() {
		t.Fatalf("done %v, bindings %+v", w.r.Done(), w.c.Entry(hoa).Bindings)
	}
	if len(w.c.Entry(hoa).MNPs) != 0 {
		t.Fatal("prefixes still forwarded")
	}
}

func TestRejectionAnswersAreRateLimited(t *testing.T) {
	hc := haConfig()
	hc.RejectRate, hc.RejectBurst = 10, 5
	c := NewCache(hc)
	rc := routerConfig()
	rc.Key = []byte("wrongwrongwrong!")
	r := NewUpdateList(rc, 1)
	r.SetLink(0, LinkState{Up: true, IPv6: wifiCoA}, t0)
	replies := 0
	for i := 0; i < 20; i++ {
		r.links[0].reg.retryAt = t0
		for _, s := range r.Poll(t0) {
			if res := c.HandlePacket(s.Packet, Arrival{Encap: nemo.EncapIPv6, Outer: netip.AddrPortFrom(wifiCoA, 0)}, t0); res.Reply != nil {
				replies++
			}
		}
	}
	if replies != 5 || c.RejectsDropped != 15 || c.AuthFailed != 20 {
		t.Fatalf("replies %d, dropped %d, counted %d", replies, c.RejectsDropped, c.AuthFailed)
	}
}

func TestRouterIgnoresForgedAndUnexpectedAnswers(t *testing.T) {
	w := newWorld(t, routerConfig(), haConfig())
	w.hold = true
	w.up(0, wifiCoA, netip.Addr{})
	w.step()
	// A BA signed with another key.
	hc := haConfig()
	hc.Peers[0].Key = []byte("attackerattacker")
	forger := NewCache(hc)
	res := forger.HandlePacket(w.held[0].Packet, Arrival{Encap: nemo.EncapIPv6, Outer: netip.AddrPortFrom(wifiCoA, 0)}, w.now)
	if res.Reply == nil {
		t.Fatal("no forged reply")
	}
	if err := w.r.HandlePacket(res.Reply, w.now); !errors.Is(err, nemo.ErrAuth) {
		t.Fatalf("forged BA: %v", err)
	}
	// The genuine answer, twice: the second answers nothing outstanding.
	genuine := w.c.HandlePacket(w.held[0].Packet, Arrival{Encap: nemo.EncapIPv6, Outer: netip.AddrPortFrom(wifiCoA, 0)}, w.now)
	if err := w.r.HandlePacket(genuine.Reply, w.now); err != nil {
		t.Fatal(err)
	}
	if err := w.r.HandlePacket(genuine.Reply, w.now); !errors.Is(err, ErrUnexpected) {
		t.Fatalf("second copy: %v", err)
	}
}

func TestUnknownMHTypeGetsBindingError(t *testing.T) {
	c := NewCache(haConfig())
	mh, _ := nemo.Marshal(&nemo.Unknown{Type: 99, Data: []byte{0, 0}})
	pkt, _ := nemo.AppendPacket(nil, hoa, haAddr, netip.Addr{}, netip.Addr{}, 64, mh)
	res := c.HandlePacket(pkt, Arrival{Encap: nemo.EncapUDP6, Outer: netip.AddrPortFrom(wifiCoA, 9)}, t0)
	p, err := nemo.ParsePacket(res.Reply)
	if err != nil {
		t.Fatal(err)
	}
	m, err := nemo.Decode(p.MH)
	be, ok := m.(*nemo.BindingError)
	if err != nil || !ok || be.Status != nemo.BEUnknownType || be.HomeAddress != hoa || res.ReplyTo.Port() != 9 {
		t.Fatalf("%#v %v", m, err)
	}
}

func TestMalformedBIDGets164(t *testing.T) {
	c := NewCache(haConfig())
	bu, _ := nemo.Marshal(&nemo.BindingUpdate{Seq: 1, Flags: nemo.BUFlagA | nemo.BUFlagH})
	bu = append(bu[:12:12], 35, 6, 0, 1, 0, 0, 1, 2, 3, 4, 0, 0)
	bu = append(bu, make([]byte, (8-len(bu)%8)%8)...)
	bu[1] = uint8(len(bu)/8 - 1)
	pkt, _ := nemo.AppendPacket(nil, wifiCoA, haAddr, hoa, netip.Addr{}, 64, bu)
	res := c.HandlePacket(pkt, Arrival{Encap: nemo.EncapIPv6, Outer: netip.AddrPortFrom(wifiCoA, 0)}, t0)
	if res.Status != nemo.StatusMCoAMalformed || c.Malformed != 1 || res.Reply == nil {
		t.Fatalf("%+v", res)
	}
}

func TestRestartedRouterAdoptsSequenceNumber(t *testing.T) {
	w := newWorld(t, routerConfig(), haConfig())
	w.up(0, wifiCoA, netip.Addr{})
	w.step()
	// The router restarts with a sequence number behind the home agent's.
	w.now = w.now.Add(time.Minute)
	rc := routerConfig()
	w.r = NewUpdateList(rc, 100)
	w.results = nil
	w.up(0, wifiCoA, netip.Addr{})
	w.step()
	if w.results[0].Status != nemo.StatusSeqOutOfWindow {
		t.Fatalf("status %d", w.results[0].Status)
	}
	w.step()
	if got := w.states(); !strings.HasPrefix(got, "wifi=registered") {
		t.Fatal(got)
	}
}

func TestSetPeersKeepsUnchangedRouters(t *testing.T) {
	w := newWorld(t, routerConfig(), haConfig())
	w.up(0, wifiCoA, netip.Addr{})
	w.step()
	hc := haConfig()
	other := Peer{Name: "car2", HoA: hoa.Next(), SPI: 300, Key: key}
	if changed := w.c.SetPeers(append(hc.Peers, other)); len(changed) != 0 || !w.c.Entry(hoa).Registered() {
		t.Fatalf("adding a router disturbed the first: %v", changed)
	}
	hc.Peers[0].Key = []byte("a brand new key!")
	if changed := w.c.SetPeers(hc.Peers); len(changed) != 1 || w.c.Entry(hoa).Registered() || w.c.Entry(other.HoA) != nil {
		t.Fatalf("new key: changed %v", changed)
	}
}

// A binding that fell back to UDP tries native IPv6 again at each refresh:
// while the firewall is still there it stays registered over UDP
// throughout; once it is gone, it moves back to native.
func TestFallbackReprobesNativeAtRefresh(t *testing.T) {
	w := newWorld(t, routerConfig(), haConfig())
	w.blockNative[0] = true
	w.up(0, wifiCoA, netip.Addr{})
	w.run(1300 * time.Millisecond)
	if got := w.states(); !strings.HasPrefix(got, "wifi=registered/udp6") {
		t.Fatalf("fallback: %s", got)
	}
	// First refresh: native still blocked.
	for end := w.now.Add(482 * time.Second); w.now.Before(end); {
		w.run(100 * time.Millisecond)
		if got := w.states(); !strings.HasPrefix(got, "wifi=registered/udp6") {
			t.Fatalf("at %v: %s", w.now.Sub(t0), got)
		}
	}
	if b := w.haBindings()[1]; b.Encap != nemo.EncapUDP6 || b.Expires.Sub(w.now) < 500*time.Second {
		t.Fatalf("not refreshed over UDP: %+v", b)
	}
	// The firewall goes; at the next refresh the binding moves back.
	delete(w.blockNative, 0)
	w.run(500 * time.Second)
	if got := w.states(); !strings.HasPrefix(got, "wifi=registered/ipv6") {
		t.Fatalf("after the firewall went: %s", got)
	}
	if b := w.haBindings()[1]; b.Encap != nemo.EncapIPv6 {
		t.Fatalf("home agent: %+v", b)
	}
}

func probingConfig() UpdateListConfig {
	rc := routerConfig()
	for i := range rc.Uplinks {
		rc.Uplinks[i].ProbeInterval, rc.Uplinks[i].ProbeFailures = 450*time.Millisecond, 2
	}
	return rc
}

// A silently dead path (the carrier stays up) is found by its unanswered
// probes within interval x failures: de-registered through the other
// uplink, and registered again through itself once it works again.
func TestDeadPathDetectedByProbes(t *testing.T) {
	w := bothUp(t, probingConfig(), haConfig())
	w.step()
	w.run(2 * time.Second)
	if w.probesAnswered < 6 {
		t.Fatalf("%d probes answered in 2 s on two uplinks", w.probesAnswered)
	}
	w.dead[0] = true
	dead := w.now
	for w.now.Sub(dead) < 2*time.Second {
		w.run(10 * time.Millisecond)
		if _, ok := w.haBindings()[1]; !ok {
			break
		}
	}
	took := w.now.Sub(dead)
	if _, ok := w.haBindings()[1]; ok || took > 900*time.Millisecond+10*time.Millisecond {
		t.Fatalf("Wi-Fi binding still at the home agent %v after its path died", took)
	}
	if got := w.states(); got != "wifi=registering/ipv6 cell=registered/udp4" {
		t.Fatalf("after the death: %s", got)
	}
	if w.r.DeadPaths != 1 {
		t.Fatalf("dead paths %d", w.r.DeadPaths)
	}
	// The path works again: the next retransmission registers it.
	delete(w.dead, 0)
	w.run(5 * time.Second)
	if got := w.states(); !strings.HasPrefix(got, "wifi=registered") || len(w.haBindings()) != 2 {
		t.Fatalf("after the path came back: %s %v", got, w.haBindings())
	}
}

// The carrier-grade NAT drops its mapping: the home agent's answers go to
// a port that leads nowhere, the probes time out, and the re-registration
// through the new mapping repairs the binding.
func TestNATRebindingRepaired(t *testing.T) {
	w := bothUp(t, probingConfig(), haConfig())
	w.step()
	w.run(time.Second)
	w.natPort = 40001 // the next packet through the NAT gets a new mapping
	start := w.now
	for w.now.Sub(start) < 3*time.Second {
		w.run(10 * time.Millisecond)
		if b, ok := w.haBindings()[2]; ok && b.Outer.Port() == 40001 {
			break
		}
	}
	b, ok := w.haBindings()[2]
	if !ok || b.Outer.Port() != 40001 || w.now.Sub(start) > time.Second {
		t.Fatalf("cellular binding %+v (%v) not repaired within 1 s (%v)", b, ok, w.now.Sub(start))
	}
	w.run(2 * time.Second)
	if got := w.states(); got != "wifi=registered/ipv6 cell=registered/udp4" || len(w.haBindings()) != 2 {
		t.Fatalf("after repair: %s %v", got, w.haBindings())
	}
}

func flowTable(t *testing.T, policyUCI string) *policy.Table {
	t.Helper()
	f, err := config.Parse("/x", []byte(`config router 'main'
	option home_agent '2001:db8:ffff::1'
	option home_address '2001:db8:ffff:1::100'
	list mnp '2001:db8:100::/56'
	option spi '256'
	option key '00112233445566778899aabbccddeeff'
config uplink 'wifi'
	option device 'wlan0'
	option bid '1'
config uplink 'cell'
	option device 'wwan0'
	option bid '2'
`+policyUCI))
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := policy.Compile(f.Router)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// The flow bindings ride in the registrations; the home agent's table
// equals the router's registered one; a reload's new table is registered
// at once by a refresh, without touching the bindings.
func TestFlowsRegisteredAndReplaced(t *testing.T) {
	voice := flowTable(t, `config policy 'voice'
	list use 'cell'
	list use 'wifi'
config rule 'sip'
	option proto 'udp'
	option dest_port '5060'
	option policy 'voice'
`)
	rc := routerConfig()
	rc.Flows = voice.FlowIDs()
	w := bothUp(t, rc, haConfig())
	w.step()
	e := w.c.Entry(hoa)
	if e.Flows == nil || !e.Flows.Equal(voice.Registered()) {
		t.Fatalf("home agent flows %v, want %v", e.Flows, voice.Registered())
	}
	for fid, st := range w.r.FlowStatus() {
		if st != 0 {
			t.Fatalf("FID %d refused: %d", fid, st)
		}
	}
	since := w.haBindings()
	video := flowTable(t, `config policy 'wifi_first'
	list use 'wifi'
	list use 'cell'
config rule 'video'
	option proto 'tcp'
	option dest_ip '2001:db8:c::/48'
	option policy 'wifi_first'
`)
	w.results = nil
	w.r.SetFlows(video.FlowIDs(), w.now)
	w.step()
	if len(w.results) != 1 || !w.c.Entry(hoa).Flows.Equal(video.Registered()) {
		t.Fatalf("after reload: %d messages, flows %v", len(w.results), w.c.Entry(hoa).Flows)
	}
	if after := w.haBindings(); after[1].Since != since[1].Since || after[2].Since != since[2].Since {
		t.Fatalf("bindings disturbed by the reload: %+v -> %+v", since, after)
	}
	// No flow options in a registration: the home agent forgets them.
	w.r.SetFlows(nil, w.now)
	w.step()
	if w.c.Entry(hoa).Flows != nil {
		t.Fatalf("flows kept: %v", w.c.Entry(hoa).Flows)
	}
}

// A path declared dead is registered again on the encapsulation it had:
// the path failed, not the encapsulation.
func TestDeadPathKeepsEncapsulation(t *testing.T) {
	w := newWorld(t, probingConfig(), haConfig())
	w.up(0, wifiCoA, netip.MustParseAddr("192.168.50.2"))
	w.up(1, netip.Addr{}, cellCoA)
	w.step()
	w.dead[0] = true
	w.sent = nil
	for end := w.now.Add(5 * time.Second); w.now.Before(end); { // dead within a second, then probed at the idle rate
		w.run(50 * time.Millisecond)
		if b := w.r.Bindings()[0]; b.Encap != nemo.EncapIPv6 {
			t.Fatalf("at %v the Wi-Fi binding is %s/%s", w.now.Sub(t0), b.State, b.Encap)
		}
	}
	// A dead path is probed (see paths.go), not registered, until it
	// answers: mostly on its own encapsulation, now and then on another
	// in case only the one it had is blocked.
	own, other := 0, 0
	for _, s := range w.sent {
		switch {
		case s.Path.Uplink != 0:
		case !s.Probe:
			t.Fatalf("a %s Binding Update through the dead path", s.Path.Encap)
		case s.Path.Encap == nemo.EncapIPv6:
			own++
		default:
			other++
		}
	}
	if w.r.DeadPaths != 1 || own < 2 || other > own {
		t.Fatalf("dead paths %d, %d probes through the dead path on its encapsulation, %d on others", w.r.DeadPaths, own, other)
	}
	delete(w.dead, 0)
	w.run(5 * time.Second)
	if got := w.states(); got != "wifi=registered/ipv6 cell=registered/udp4" {
		t.Fatalf("after the path came back: %s", got)
	}
}

// A path declared dead is de-registered through another uplink and
// registered again through itself; when the registration overtakes the
// de-registration, the home agent refuses the stale de-registration, and
// the router must not send it again (it would delete the registration).
func TestOvertakenDeregistrationNotResent(t *testing.T) {
	w := bothUp(t, probingConfig(), haConfig())
	w.step()
	w.run(time.Second)
	w.natPort = 40001 // the cellular NAT's mapping changes
	// Deliver everything until the path is declared dead (the home
	// agent's unbound answer to a probe through the new mapping), then
	// hold what follows: the de-registration through the Wi-Fi and the
	// registration through the new mapping.
	var dereg, reg *Send
	for i := 0; i < 200 && (dereg == nil || reg == nil); i++ {
		w.now = w.now.Add(10 * time.Millisecond)
		for _, s := range w.r.Poll(w.now) {
			switch {
			case s.Probe || w.r.DeadPaths == 0:
				w.deliver(s)
			case s.Path.Uplink == 0:
				dereg = &s
			default:
				reg = &s
			}
		}
	}
	if dereg == nil || reg == nil {
		t.Fatalf("dead %d: de-registration %v, registration %v", w.r.DeadPaths, dereg != nil, reg != nil)
	}
	// The registration through the new mapping overtakes the
	// de-registration sent through the Wi-Fi, and the home agent's refusal
	// of the late de-registration reaches the router before the
	// registration's acknowledgement.
	regAnswer := w.c.HandlePacket(reg.Packet, Arrival{Encap: nemo.EncapUDP4, Outer: netip.AddrPortFrom(natAddr, w.natPort)}, w.now)
	if regAnswer.Status != 0 {
		t.Fatalf("registration: %d", regAnswer.Status)
	}
	w.deliver(*dereg)
	if st := w.results[len(w.results)-1].Status; st != nemo.StatusIDMismatch && st != nemo.StatusSeqOutOfWindow {
		t.Fatalf("the late de-registration got status %d", st)
	}
	w.step() // whatever the router sends on that refusal
	if err := w.r.HandlePacket(regAnswer.Reply, w.now); err != nil {
		t.Fatal(err)
	}
	w.step()
	if b, ok := w.haBindings()[2]; !ok || b.Outer.Port() != 40001 {
		t.Fatalf("the registration was undone by a de-registration sent again: %+v %v", b, ok)
	}
	w.run(2 * time.Second)
	b, ok := w.haBindings()[2]
	if !ok || b.Outer.Port() != 40001 {
		t.Fatalf("the cellular binding is gone or stale: %+v %v", b, ok)
	}
	if got := w.states(); got != "wifi=registered/ipv6 cell=registered/udp4" {
		t.Fatal(got)
	}
}

// A reload's new probe timing takes effect at once: probes go out at the
// new pace, a dead path is found within the new timing, and
// a silence that began before the change is not judged by the new, shorter
// deadline.
func TestReloadedProbeTiming(t *testing.T) {
	w := bothUp(t, probingConfig(), haConfig())
	w.step()
	w.run(2 * time.Second)
	// Just before the next probe is due, 400 ms after the last answer,
	// the deadline shrinks from 900 ms to 100 ms.
	w.now = w.now.Add(400 * time.Millisecond)
	w.r.SetUplinkTiming(0, 50*time.Millisecond, 2, w.now)
	w.step()
	if w.r.DeadPaths != 0 {
		t.Fatalf("declared dead by a deadline set after the silence began")
	}
	probes := w.r.Probes
	w.run(time.Second)
	// 20 on the Wi-Fi, 2 or 3 on the cellular uplink.
	if n := w.r.Probes - probes; n < 21 || n > 24 {
		t.Fatalf("%d probes in a second after the reload", n)
	}
	w.dead[0] = true
	dead := w.now
	for w.now.Sub(dead) < time.Second {
		w.run(5 * time.Millisecond)
		if _, ok := w.haBindings()[1]; !ok {
			break
		}
	}
	// An idle path is dead one probe gap plus an episode (at least
	// TimeoutFloor) after it went silent: 200 ms at the new timing, 900 ms
	// at the old one.
	if took, want := w.now.Sub(dead), ProbeGap(50*time.Millisecond, nemo.EncapIPv6)+TimeoutFloor; w.r.DeadPaths != 1 || took > want+5*time.Millisecond {
		t.Fatalf("dead paths %d, found after %v; want within %v", w.r.DeadPaths, took, want)
	}
	// Setting the same timing again changes nothing.
	w.r.SetUplinkTiming(1, 450*time.Millisecond, 2, w.now)
	if l := w.r.links[1]; !l.retimed.IsZero() {
		t.Fatal("an unchanged timing counted as a change")
	}
}

// A reload's lifetime is asked for from the next refresh on; the binding
// keeps what it was granted until then.
func TestReloadedLifetime(t *testing.T) {
	w := newWorld(t, routerConfig(), haConfig())
	w.up(0, wifiCoA, netip.Addr{})
	w.step()
	granted := w.haBindings()[1].Expires
	w.r.SetLifetime(120 * time.Second)
	w.run(time.Second)
	if b := w.haBindings()[1]; !b.Expires.Equal(granted) {
		t.Fatalf("the reload changed a granted lifetime: %v -> %v", granted, b.Expires)
	}
	// The refresh at 80 % of 600 s asks for 120 s, and the next one
	// follows at 80 % of that.
	w.run(480 * time.Second)
	refreshed := w.now
	if b := w.haBindings()[1]; b.Expires.Sub(refreshed) > 120*time.Second || b.Expires.Sub(refreshed) < 119*time.Second {
		t.Fatalf("refreshed for %v, want 120 s", b.Expires.Sub(refreshed))
	}
	if d := w.r.links[0].refreshAt.Sub(refreshed); d > 96*time.Second || d < 95*time.Second {
		t.Fatalf("next refresh in %v, want 96 s", d)
	}
}

// A reload's max_lifetime caps the next registration, and its replay
// window judges the next timestamp.
func TestReloadedLimits(t *testing.T) {
	w := newWorld(t, routerConfig(), haConfig())
	w.up(0, wifiCoA, netip.Addr{})
	w.step()
	if b := w.haBindings()[1]; b.Expires.Sub(w.now) != 600*time.Second {
		t.Fatalf("granted %v", b.Expires.Sub(w.now))
	}
	w.c.SetLimits(60*time.Second, 4*time.Second)
	// A refresh (through a reload of the flows) gets 60 s.
	w.r.SetFlows(nil, w.now)
	w.step()
	if b := w.haBindings()[1]; b.Expires.Sub(w.now) != 60*time.Second {
		t.Fatalf("granted %v after the reload, want 60 s", b.Expires.Sub(w.now))
	}
	// A router whose clock is 5 s slow is within the default window of 7 s,
	// not within 4 s.
	for _, window := range []time.Duration{0, 4 * time.Second} {
		w := newWorld(t, routerConfig(), haConfig())
		w.c.SetLimits(0, window)
		w.r.skew = -5 * time.Second
		w.up(0, wifiCoA, netip.Addr{})
		w.step()
		want := uint8(0)
		if window != 0 {
			want = nemo.StatusIDMismatch
		}
		if st := w.results[0].Status; st != want || w.c.Config().MaxLifetime != time.Hour {
			t.Errorf("window %v: status %d, want %d; max lifetime %v", window, st, want, w.c.Config().MaxLifetime)
		}
	}
}

// Every message is counted once among the outcomes, and a refusal or a
// message not acted on carries the reason it was counted under.
func TestCountersAddUp(t *testing.T) {
	w := bothUp(t, probingConfig(), haConfig())
	w.step()
	w.deliver(w.sent[0]) // a replay: refused with status 144, which answers nothing the router has outstanding
	w.down(0)
	w.step()
	w.c.HandlePacket([]byte{1, 2, 3}, Arrival{Encap: nemo.EncapIPv6}, w.now)
	mh, _ := nemo.Marshal(&nemo.Heartbeat{Seq: 1})
	hb, _ := nemo.AppendPacket(nil, hoa, haAddr, netip.Addr{}, netip.Addr{}, 64, mh)
	w.c.HandlePacket(hb, Arrival{Encap: nemo.EncapUDP6, Outer: netip.AddrPortFrom(wifiCoA, 1)}, w.now)
	c := w.c.Counters
	sum := c.Accepted + c.Deregistrations
	for _, n := range c.Rejected() {
		sum += n
	}
	for _, n := range c.NotActedOn() {
		sum += n
	}
	if sum != c.Received || c.Received < 6 || c.BadTimestamp != 1 || c.Malformed != 1 || c.Ignored != 1 || c.Deregistrations != 1 {
		t.Fatalf("outcomes add up to %d of %d received: %+v", sum, c.Received, c)
	}
	var reasons []string
	for _, r := range w.results {
		reasons = append(reasons, r.Reason)
	}
	if !slices.Contains(reasons, ReasonBadTimestamp) || slices.ContainsFunc(reasons, func(r string) bool { return r != "" && r != ReasonBadTimestamp }) {
		t.Fatalf("reasons %q", reasons)
	}
	if w.r.Received != w.r.Acked+w.r.Ignored || w.r.Ignored != 1 || w.r.Acked != 3 {
		t.Fatalf("router: received %d, acked %d, ignored %d", w.r.Received, w.r.Acked, w.r.Ignored)
	}
	if err := w.r.HandlePacket(hb, w.now); Reason(err) != ReasonNotOurs || w.r.Ignored != 2 || w.r.Received != w.r.Acked+2 {
		t.Fatalf("not for us: %v (%s), counters %d %d %d", err, Reason(err), w.r.Received, w.r.Acked, w.r.Ignored)
	}
	if Reason(nil) != "" || Reason(errors.New("x")) != "other" {
		t.Fatal("Reason")
	}
}

// A registration whose every BID is refused leaves the router without a
// binding, and then its prefixes are not forwarded either.
func TestAllBIDsRefusedForwardsNothing(t *testing.T) {
	r := NewUpdateList(routerConfig(), 7)
	r.SetLink(1, LinkState{Up: true, IPv4: cellCoA}, t0)
	sends := r.Poll(t0)
	c := NewCache(haConfig())
	// The IPv4 care-of address arrives natively through another path: a
	// bulk registration of an IPv4 address, which RFC 5648 does not allow.
	res := c.HandlePacket(sends[0].Packet, Arrival{Encap: nemo.EncapIPv6, Outer: netip.AddrPortFrom(wifiCoA, 0)}, t0)
	e := c.Entry(hoa)
	if res.Status != nemo.StatusMCoANotComplete || c.BIDsRefused != 1 || e.Registered() || len(e.MNPs) != 0 {
		t.Fatalf("status %d, refused %d, bindings %v, prefixes %v", res.Status, c.BIDsRefused, e.Bindings, e.MNPs)
	}
}

// A NAT keepalive of decades (the option holds up to 2^32-2 s) leaves
// the refresh at 80 % of the lifetime; it once overflowed into the past,
// refreshing the binding at every poll.
func TestLongNATKeepalive(t *testing.T) {
	hc := haConfig()
	hc.NATKeepalive = 1_100_000_000 * time.Second
	w := newWorld(t, routerConfig(), hc)
	w.up(1, netip.Addr{}, cellCoA)
	w.step()
	if l := w.r.links[1]; l.state != StateRegistered || !l.nat || l.refreshAt.Sub(t0) != 480*time.Second {
		t.Fatalf("state %s, NAT %v, refresh after %v", l.state, l.nat, l.refreshAt.Sub(t0))
	}
}
