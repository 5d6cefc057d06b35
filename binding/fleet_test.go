package binding

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"nemod/nemo"
)

// registeredWorld has both uplinks registered: wifi natively, cell in UDP
// through the NAT.
func registeredWorld(t *testing.T, rc UpdateListConfig, hc HAConfig) *world {
	t.Helper()
	w := bothUp(t, rc, hc)
	w.run(5 * time.Second)
	if got := w.states(); got != "wifi=registered/ipv6 cell=registered/udp4" {
		t.Fatalf("states %s", got)
	}
	return w
}

// revoke has the home agent revoke bids and carries the indication to the
// router; it returns the revocation.
func (w *world) revoke(bids ...uint16) *Revocation {
	w.t.Helper()
	rev, res, err := w.c.Revoke(hoa, bids, nemo.RevTriggerAdministrative, w.now)
	if err != nil {
		w.t.Fatal(err)
	}
	if res.Changed == nil || res.Reply == nil {
		w.t.Fatalf("revocation result %+v", res)
	}
	if err := w.r.HandlePacket(res.Reply, w.now); err != nil {
		w.t.Fatalf("router refused the indication: %v", err)
	}
	return rev
}

func TestRevokeOneBindingAnsweredAndHeldOff(t *testing.T) {
	w := registeredWorld(t, routerConfig(), haConfig())
	gen := w.r.Gen()
	rev := w.revoke(1)
	if _, ok := w.haBindings()[1]; ok {
		t.Fatal("the home agent kept the revoked binding")
	}
	if got := w.states(); got != "wifi=revoked/ipv6 cell=registered/udp4" {
		t.Fatalf("states after the revocation: %s", got)
	}
	if w.r.Gen() == gen {
		t.Fatal("the data plane is not told")
	}
	if w.r.AllRevoked() || !slices.Equal(w.r.Revoked(), []uint16{1}) {
		t.Fatalf("revoked %v, all %v", w.r.Revoked(), w.r.AllRevoked())
	}
	// The acknowledgement goes out at the next Poll, natively from the
	// revoked binding's care-of address, and completes the revocation.
	sends := w.r.Poll(w.now)
	if len(sends) != 1 || sends[0].Path.Encap != nemo.EncapIPv6 || sends[0].Path.Src != wifiCoA {
		t.Fatalf("answer %+v", sends)
	}
	w.deliver(sends[0])
	last := w.results[len(w.results)-1]
	if last.Revoked != rev || !rev.Done || !rev.Answered || rev.Status != nemo.RevStatusSuccess {
		t.Fatalf("revocation %+v after the answer %+v", rev, last)
	}
	if w.c.RevocationAcks != 1 || w.c.Revoking() != 0 || w.r.Revocations.Taken != 1 {
		t.Fatalf("acks %d revoking %d taken %d", w.c.RevocationAcks, w.c.Revoking(), w.r.Revocations.Taken)
	}
	// No retransmission of an answered indication.
	if s, gaveUp := w.c.PollRevocations(w.now.Add(time.Minute)); len(s)+len(gaveUp) != 0 {
		t.Fatalf("after the answer: %d sends, %d given up", len(s), len(gaveUp))
	}
	// Held off: not registered again before the holdoff, even when the
	// link changes, and registered again after it.
	w.run(30 * time.Second)
	w.up(0, wifi2CoA, netip.Addr{})
	w.run(29 * time.Second)
	if got := w.states(); got != "wifi=revoked/ipv6 cell=registered/udp4" {
		t.Fatalf("states within the holdoff: %s", got)
	}
	w.run(2 * time.Second)
	if got := w.states(); got != "wifi=registered/ipv6 cell=registered/udp4" {
		t.Fatalf("states after the holdoff: %s", got)
	}
	if b := w.haBindings()[1]; b.CoA != wifi2CoA {
		t.Fatalf("re-registered binding %+v", b)
	}
}

func TestRevokeEveryBindingThroughUDP(t *testing.T) {
	rc := routerConfig()
	rc.RevokedHoldoff = 10 * time.Second
	w := registeredWorld(t, rc, haConfig())
	// The cell binding's indication goes inside UDP to the NAT's mapping.
	rev, res, err := w.c.Revoke(hoa, []uint16{2}, nemo.RevTriggerAdministrative, w.now)
	if err != nil || res.Encap != nemo.EncapUDP4 || res.ReplyTo != netip.AddrPortFrom(natAddr, w.natPort) {
		t.Fatalf("revocation through UDP: %+v %v", res, err)
	}
	if err := w.r.HandlePacket(res.Reply, w.now); err != nil {
		t.Fatal(err)
	}
	sends := w.r.Poll(w.now)
	if len(sends) != 1 || sends[0].Path.Encap != nemo.EncapUDP4 {
		t.Fatalf("answer %+v", sends)
	}
	w.deliver(sends[0])
	if !rev.Answered {
		t.Fatal("the answer through UDP did not complete the revocation")
	}
	// Then every binding: no BID options.
	w.revoke()
	if !w.r.AllRevoked() || w.c.Entry(hoa).Registered() || len(w.c.Entry(hoa).MNPs) != 0 {
		t.Fatalf("all revoked %v, home agent entry %+v", w.r.AllRevoked(), w.c.Entry(hoa))
	}
	if !w.r.HoldoffUntil().Equal(w.now.Add(10 * time.Second)) {
		t.Fatalf("holdoff until %v", w.r.HoldoffUntil())
	}
	w.run(11 * time.Second)
	if got := w.states(); got != "wifi=registered/ipv6 cell=registered/udp4" {
		t.Fatalf("states after the holdoff: %s", got)
	}
}

func TestRevocationRetransmittedThenGivenUp(t *testing.T) {
	w := registeredWorld(t, routerConfig(), haConfig())
	rev, first, err := w.c.Revoke(hoa, nil, nemo.RevTriggerAdministrative, w.now)
	if err != nil {
		t.Fatal(err)
	}
	if next := w.c.NextRevocation(); !next.Equal(w.now.Add(InitialBRITimeout)) {
		t.Fatalf("first retransmission at %v", next)
	}
	if s, _ := w.c.PollRevocations(w.now.Add(InitialBRITimeout / 2)); len(s) != 0 {
		t.Fatal("retransmitted early")
	}
	s, gaveUp := w.c.PollRevocations(w.now.Add(InitialBRITimeout))
	// The second transmission takes the other binding's path.
	if len(s) != 1 || len(gaveUp) != 0 || s[0].Encap == first.Encap {
		t.Fatalf("retransmission %+v (first through %v)", s, first.Encap)
	}
	if s, gaveUp = w.c.PollRevocations(w.now.Add(2 * InitialBRITimeout)); len(s)+len(gaveUp) != 0 {
		t.Fatal("a second retransmission")
	}
	s, gaveUp = w.c.PollRevocations(w.now.Add(3 * InitialBRITimeout))
	if len(s) != 0 || len(gaveUp) != 1 || gaveUp[0] != rev || !rev.Done || rev.Answered {
		t.Fatalf("given up: %+v %+v", s, gaveUp)
	}
	if w.c.RevocationsSent != 2 || w.c.RevocationsUnanswered != 1 {
		t.Fatalf("sent %d unanswered %d", w.c.RevocationsSent, w.c.RevocationsUnanswered)
	}
	if _, _, err := w.c.Revoke(hoa, nil, 0, w.now); err == nil {
		t.Fatal("revoked a router without bindings")
	}
	if _, _, err := w.c.Revoke(netip.MustParseAddr("2001:db8:ffff:1::999"), nil, 0, w.now); err == nil {
		t.Fatal("revoked an unknown home address")
	}
}

func TestForgedAndReplayedIndicationsRefused(t *testing.T) {
	w := registeredWorld(t, routerConfig(), haConfig())
	// Forged: signed with another key.
	hc := haConfig()
	hc.Peers[0].Key = []byte("not the right key")
	forger := NewCache(hc)
	forger.entries[hoa].Bindings = slices.Clone(w.c.Entry(hoa).Bindings)
	_, forged, err := forger.Revoke(hoa, nil, nemo.RevTriggerAdministrative, w.now)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.r.HandlePacket(forged.Reply, w.now); Reason(err) != ReasonAuthFailed {
		t.Fatalf("forged indication: %v", err)
	}
	// For another NAI, with the right key.
	hc = haConfig()
	hc.Peers[0].NAI = "car2@fleet"
	other := NewCache(hc)
	other.entries[hoa].Bindings = slices.Clone(w.c.Entry(hoa).Bindings)
	_, wrongNAI, _ := other.Revoke(hoa, []uint16{1}, nemo.RevTriggerAdministrative, w.now)
	if err := w.r.HandlePacket(wrongNAI.Reply, w.now); Reason(err) != ReasonNotOurs {
		t.Fatalf("indication for another NAI: %v", err)
	}
	if got := w.states(); got != "wifi=registered/ipv6 cell=registered/udp4" {
		t.Fatalf("states after refused indications: %s", got)
	}
	// A genuine one is taken; its retransmission is answered again and
	// changes nothing; replayed later, it is refused.
	_, genuine, err := w.c.Revoke(hoa, []uint16{1}, nemo.RevTriggerAdministrative, w.now)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.r.HandlePacket(genuine.Reply, w.now); err != nil {
		t.Fatal(err)
	}
	ack := w.r.Poll(w.now)
	w.now = w.now.Add(time.Second)
	if err := w.r.HandlePacket(genuine.Reply, w.now); err != nil {
		t.Fatal(err)
	}
	again := w.r.Poll(w.now)
	if len(ack) != 1 || len(again) != 1 || string(ack[0].Packet) != string(again[0].Packet) || w.r.Revocations.Repeated != 1 {
		t.Fatalf("answers %d and %d, repeated %d", len(ack), len(again), w.r.Revocations.Repeated)
	}
	w.run(61 * time.Second)
	if got := w.states(); got != "wifi=registered/ipv6 cell=registered/udp4" {
		t.Fatalf("states after the holdoff: %s", got)
	}
	if err := w.r.HandlePacket(genuine.Reply, w.now); Reason(err) != ReasonReplayed {
		t.Fatalf("replayed indication: %v", err)
	}
	// An older one, never seen, is refused too: its timestamp is behind.
	if err := w.r.HandlePacket(wrongNAI.Reply, w.now); Reason(err) == "" {
		t.Fatal("an old indication was taken")
	}
	if got := w.states(); got != "wifi=registered/ipv6 cell=registered/udp4" {
		t.Fatalf("states after the replays: %s", got)
	}
	if w.r.Revocations.Taken != 1 || w.r.IgnoredBy[ReasonReplayed] != 1 || w.r.IgnoredBy[ReasonAuthFailed] != 1 {
		t.Fatalf("taken %d, ignored %v", w.r.Revocations.Taken, w.r.IgnoredBy)
	}
	// A forged acknowledgement does not complete a revocation.
	rev, res, _ := w.c.Revoke(hoa, []uint16{2}, nemo.RevTriggerAdministrative, w.now)
	if err := w.r.HandlePacket(res.Reply, w.now); err != nil {
		t.Fatal(err)
	}
	bra := w.r.Poll(w.now)[0]
	bad := slices.Clone(bra.Packet)
	bad[len(bad)-1] ^= 1
	arr := Arrival{Encap: nemo.EncapUDP4, Outer: netip.AddrPortFrom(natAddr, w.natPort)}
	if r := w.c.HandlePacket(bad, arr, w.now); r.Revoked != nil || rev.Done {
		t.Fatalf("forged acknowledgement taken: %+v", r)
	}
	if r := w.c.HandlePacket(bra.Packet, arr, w.now); r.Revoked != rev || !rev.Answered {
		t.Fatalf("genuine acknowledgement: %+v", r)
	}
}

var (
	radHoA = netip.MustParseAddr("2001:db8:ffff:1::900")
	radMNP = netip.MustParsePrefix("2001:db8:900::/56")
)

func radiusRouter() UpdateListConfig {
	rc := routerConfig()
	rc.HoA, rc.MNPs, rc.NAI, rc.SPI = radHoA, []netip.Prefix{radMNP}, "car9@fleet", 4097
	return rc
}

func TestUnknownRouterHeldForAuthorization(t *testing.T) {
	hc := haConfig()
	hc.Authorize = true
	w := newWorld(t, radiusRouter(), hc)
	w.up(0, wifiCoA, netip.Addr{})
	s := w.r.Poll(w.now)
	arr := Arrival{Encap: nemo.EncapIPv6, Outer: netip.AddrPortFrom(wifiCoA, 0)}
	res := w.c.HandlePacket(s[0].Packet, arr, w.now)
	if res.Reply != nil || res.Reason != ReasonNeedsAuth || res.Authorize == nil ||
		*res.Authorize != (AuthRequest{NAI: "car9@fleet", HoA: radHoA, CoA: wifiCoA}) {
		t.Fatalf("held: %+v", res)
	}
	// Authorized for 100 s: the lifetime granted is capped by it.
	changed, err := w.c.AddPeer(Peer{Name: "car9@fleet", NAI: "car9@fleet", HoA: radHoA, SPI: 4097, Key: key, MNPs: []netip.Prefix{radMNP}}, w.now.Add(100*time.Second))
	if err != nil || len(changed) != 0 {
		t.Fatalf("AddPeer: %v %v", changed, err)
	}
	res = w.c.Retry(s[0].Packet, arr, w.now)
	if res.Err != nil || res.Changed == nil {
		t.Fatalf("retried: %+v", res)
	}
	e := w.c.Entry(radHoA)
	if got := e.Bindings[0].Expires.Sub(w.now); got != 100*time.Second {
		t.Fatalf("lifetime %v, want the authorization's 100 s", got)
	}
	if dyn, until := e.Authorized(); !dyn || !until.Equal(w.now.Add(100*time.Second)) {
		t.Fatalf("authorized %v until %v", dyn, until)
	}
	if err := w.r.HandlePacket(res.Reply, w.now); err != nil {
		t.Fatalf("router: %v", err)
	}
	c := w.c.Counters
	if c.Received != 1 || c.Accepted != 1 || c.NeedsAuth != 0 {
		t.Fatalf("counters %+v", c)
	}
	// A configured router takes precedence.
	if _, err := w.c.AddPeer(Peer{Name: "x", NAI: "x", HoA: hoa, SPI: 300, Key: key}, w.now.Add(time.Hour)); !errors.Is(err, ErrStaticPeer) {
		t.Fatalf("AddPeer over a configured home address: %v", err)
	}
	if _, err := w.c.AddPeer(Peer{Name: "car1@fleet", NAI: "car1@fleet", HoA: radHoA.Next(), SPI: 300, Key: key}, w.now.Add(time.Hour)); !errors.Is(err, ErrStaticPeer) {
		t.Fatalf("AddPeer of a configured NAI: %v", err)
	}
	// A reload keeps it; a new key drops its bindings.
	if ch := w.c.SetPeers(haConfig().Peers); len(ch) != 0 || !w.c.Entry(radHoA).Registered() {
		t.Fatalf("reload: %v", ch)
	}
	if w.c.ByNAI("car9@fleet") != w.c.Entry(radHoA) || len(w.c.DynamicPeers()) != 1 {
		t.Fatal("lookup by NAI")
	}
	changed, _ = w.c.AddPeer(Peer{Name: "car9@fleet", NAI: "car9@fleet", HoA: radHoA, SPI: 4097, Key: []byte("another key 0123"), MNPs: []netip.Prefix{radMNP}}, w.now.Add(time.Hour))
	if len(changed) != 1 || w.c.Entry(radHoA).Registered() {
		t.Fatalf("new key: %v", changed)
	}
	if e := w.c.RemovePeer(radHoA); e != nil || w.c.Entry(radHoA) != nil || w.c.ByNAI("car9@fleet") != nil {
		t.Fatal("RemovePeer")
	}
	if w.c.RemovePeer(hoa) != nil || w.c.Entry(hoa) == nil {
		t.Fatal("RemovePeer removed a configured router")
	}
}

func TestRefusedRouterGets129(t *testing.T) {
	hc := haConfig()
	hc.Authorize = true
	w := newWorld(t, radiusRouter(), hc)
	w.up(0, wifiCoA, netip.Addr{})
	s := w.r.Poll(w.now)
	arr := Arrival{Encap: nemo.EncapIPv6, Outer: netip.AddrPortFrom(wifiCoA, 0)}
	if res := w.c.HandlePacket(s[0].Packet, arr, w.now); res.Authorize == nil {
		t.Fatalf("not held: %+v", res)
	}
	res := w.c.Refuse(s[0].Packet, arr, errors.New("Access-Reject"), w.now)
	if res.Status != nemo.StatusProhibited || res.Reply == nil {
		t.Fatalf("refused: %+v", res)
	}
	p, err := nemo.ParsePacket(res.Reply)
	if err != nil {
		t.Fatal(err)
	}
	var ba nemo.BindingAck
	if err := nemo.Unmarshal(p.MH, &ba); err != nil || ba.Status != nemo.StatusProhibited || len(ba.Auth) != 0 {
		t.Fatalf("answer %+v %v", ba, err)
	}
	c := w.c.Counters
	if c.Received != 1 || c.Prohibited != 1 || c.NeedsAuth != 0 {
		t.Fatalf("counters %+v", c)
	}
	// Without authorization configured, the unknown home address is
	// refused as before.
	w2 := newWorld(t, radiusRouter(), haConfig())
	w2.up(0, wifiCoA, netip.Addr{})
	if res := w2.c.HandlePacket(w2.r.Poll(w2.now)[0].Packet, arr, w2.now); res.Status != nemo.StatusNotHomeAgent {
		t.Fatalf("without authorization: %+v", res)
	}
}
