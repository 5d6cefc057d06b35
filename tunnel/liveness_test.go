package tunnel_test

import (
	"net/netip"
	"testing"
	"time"

	"nemod/binding"
	"nemod/internal/netsim"
	"nemod/nemo"
	"nemod/tunnel"
)

// withHeartbeats registers the rig's bindings again as a router that
// answers the home agent's Heartbeats does.
func withHeartbeats(r *rig) {
	r.caps = nemo.CapHeartbeat
	r.register(nil, r.bindings...)
}

// downstream sends a packet to the LAN host through the home agent every
// 2 ms for d, draining the router's device, and returns how many came out.
func downstream(r *rig, d time.Duration) int {
	got := 0
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for end := time.Now().Add(d); time.Now().Before(end); {
		select {
		case <-r.mrTUN.Written():
			got++
		case <-tick.C:
			r.haTUN.Inject(netsim.UDP6(cn, lan, 7, 4000, 32, 'h'))
		}
	}
	return got
}

// The home agent sends traffic by a binding the router leaves unanswered
// (here the router sends nothing): it probes the binding itself, the
// router answers, and nothing changes. When the Wi-Fi path goes silent
// its probes go unanswered: the home agent moves the traffic to the
// cellular binding on its own, and back once it hears from the Wi-Fi.
func TestHomeAgentProbesBindingsItSends(t *testing.T) {
	r := newRig(t, nil)
	withHeartbeats(r)
	if n := downstream(r, 600*time.Millisecond); n < 100 {
		t.Fatalf("%d packets through", n)
	}
	if w, c := r.ha.Traffic(hoa, bidWifi), r.ha.Traffic(hoa, bidCell); w.TxPackets < 100 || c.TxPackets != 0 {
		t.Fatalf("healthy: Wi-Fi %+v, cellular %+v", w, c)
	}
	if n := r.mr.Drops().Count(tunnel.DropBadProbe); n != 0 {
		t.Fatalf("the router refused %d of the home agent's probes", n)
	}
	r.wlan.SetBlackhole(true)
	start := time.Now()
	before := r.ha.Traffic(hoa, bidCell).TxPackets
	for r.ha.Traffic(hoa, bidCell).TxPackets == before {
		downstream(r, 10*time.Millisecond)
		if time.Since(start) > 3*time.Second {
			t.Fatal("the home agent kept sending by the silent Wi-Fi binding")
		}
	}
	t.Logf("downstream moved to the cellular binding %v after the Wi-Fi went silent", time.Since(start).Round(time.Millisecond))
	wifi := r.ha.Traffic(hoa, bidWifi).TxPackets
	if downstream(r, 100*time.Millisecond) < 20 || r.ha.Traffic(hoa, bidWifi).TxPackets != wifi {
		t.Fatal("the dead Wi-Fi binding was still used")
	}
	r.wlan.SetBlackhole(false)
	hb, _ := nemo.AppendHeartbeatPacket(nil, wifi6, ha6, &nemo.Heartbeat{Seq: 99})
	if err := r.mr.SendSignal(0, nemo.EncapIPv6, hb); err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); r.ha.Traffic(hoa, bidWifi).TxPackets == wifi; {
		downstream(r, 10*time.Millisecond)
		if time.Since(start) > 3*time.Second {
			t.Fatal("the Wi-Fi binding was not used again once heard from")
		}
	}
}

// A router that does not say it answers Heartbeats (one from before
// them) is never probed by the home agent, so its silent bindings are not
// found dead by probes it would not answer.
func TestHomeAgentDoesNotProbeOldRouters(t *testing.T) {
	r := newRig(t, nil)
	r.wlan.SetBlackhole(true)
	downstream(r, 400*time.Millisecond)
	if c := r.ha.Traffic(hoa, bidCell); c.TxPackets != 0 {
		t.Fatalf("moved to the cellular binding: %+v", c)
	}
}

// Probes from paths with no binding: one in UDP with a configured
// router's home address inside, and a native one from an address a
// binding had, are answered with the unbound mark, which the router hands
// on without counting it as hearing from the binding; a native one from
// an address no binding had is not answered.
func TestUnboundAnswers(t *testing.T) {
	r := newRig(t, nil)
	r.nat.Reset() // the cellular path now comes from another port
	hb, _ := nemo.AppendHeartbeatPacket(nil, hoa, ha6, &nemo.Heartbeat{Seq: 21})
	if err := r.mr.SendSignal(1, nemo.EncapUDP4, hb); err != nil {
		t.Fatal(err)
	}
	if a := waitAnswer(t, r); a != (answer{1, 21, true}) {
		t.Fatalf("answer %+v", a)
	}
	if !r.mr.Heard(1).IsZero() {
		t.Fatal("an unbound answer counted as hearing from the binding")
	}
	// The Wi-Fi binding de-registered (its path died): its address is
	// still answered, unbound.
	r.register(nil, r.bindings[1])
	native, _ := nemo.AppendHeartbeatPacket(nil, wifi6, ha6, &nemo.Heartbeat{Seq: 22})
	if err := r.mr.SendSignal(0, nemo.EncapIPv6, native); err != nil {
		t.Fatal(err)
	}
	if a := waitAnswer(t, r); a != (answer{0, 22, true}) {
		t.Fatalf("answer %+v", a)
	}
	bad := r.ha.Drops().Count(tunnel.DropBadProbe)
	mh, _ := nemo.Marshal(&nemo.Heartbeat{Seq: 23})
	c, err := r.evil.Stack().ListenIP(135, "", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nemo.SetChecksum(mh, forger, ha6)
	c.Send(batchOf(mh, netip.AddrPortFrom(ha6, 0)), 1)
	counted(t, r.ha.Drops(), tunnel.DropBadProbe, bad+1)
	// A router no longer served: its addresses are forgotten too.
	if err := r.ha.SetRouters([]tunnel.HARouter{{HoA: hoa2, Prefixes: []netip.Prefix{mnp2}}}); err != nil {
		t.Fatal(err)
	}
	if err := r.mr.SendSignal(0, nemo.EncapIPv6, native); err != nil {
		t.Fatal(err)
	}
	counted(t, r.ha.Drops(), tunnel.DropBadProbe, bad+2)
}

func waitAnswer(t *testing.T, r *rig) answer {
	t.Helper()
	select {
	case a := <-r.answers:
		return a
	case <-time.After(2 * time.Second):
		t.Fatal("no answer")
	}
	return answer{}
}

// The unbound answers of one reader stop at its bucket: a flood of
// probes with a router's home address gets at most the burst answered,
// the rest counted.
func TestUnboundAnswersRateLimited(t *testing.T) {
	r := newRig(t, nil)
	c, err := r.evil.Stack().ListenUDP("udp6", "", netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 2500
	for i := range n {
		hb, _ := nemo.AppendHeartbeatPacket(nil, hoa, ha6, &nemo.Heartbeat{Seq: uint32(i)})
		c.Send(batchOf(hb, netip.AddrPortFrom(ha6, nemo.UDPPort)), 1)
	}
	// Wait for the reader to go through the flood: the counter stops.
	last := uint64(0)
	for start := time.Now(); time.Since(start) < 3*time.Second; time.Sleep(100 * time.Millisecond) {
		got := r.ha.Drops().Count(tunnel.DropProbeRateLimited)
		if got == last && got > 0 {
			break
		}
		last = got
	}
	// The burst of 2000, and what the bucket refilled while the reader
	// went through them (2000 a second).
	if got := r.ha.Drops().Count(tunnel.DropProbeRateLimited); got > n-2000 || got < 100 {
		t.Fatalf("%d of %d rate limited", got, n)
	}
}

// The router's clock of a binding: sending moves Sent and, until
// something comes back, Waiting; what comes back moves Heard and Data.
func TestRouterClock(t *testing.T) {
	r := newRig(t, nil)
	before := time.Now()
	r.mrTUN.Inject(netsim.UDP6(lan, cn, 4000, 7, 10, 'c'))
	expect(t, r.haTUN, netsim.UDP6(lan, cn, 4000, 7, 10, 'c'), "uplink")
	c := r.mr.Clock(0)
	if c.Sent.Before(before) || !c.Waiting.Equal(c.Sent) || c.Waiting.Before(c.Heard) {
		t.Fatalf("after sending: %+v", c)
	}
	down := netsim.UDP6(cn, lan, 7, 4000, 10, 'd')
	r.haTUN.Inject(down)
	expect(t, r.mrTUN, down, "downlink")
	c = r.mr.Clock(0)
	if c.Heard.Before(c.Sent) || !c.Data.Equal(c.Heard) || c.Waiting.After(c.Heard) {
		t.Fatalf("after the answer: %+v", c)
	}
	var w binding.Watch
	if w.Judge(c, time.Now().Add(time.Second), 3, time.Second) != binding.Alive {
		t.Fatal("an answered binding is suspected")
	}
}

// In a cluster, a Heartbeat from an address a router's binding had is
// answered from the router's instance, which the event loop changes
// while the readers answer: under the race detector, the two never race.
func TestUnboundAnswerFromInstanceWhileItChanges(t *testing.T) {
	r := newRig(t, nil, func(_ *tunnel.MRConfig, hc *tunnel.HAConfig) {
		hc.Instances = []tunnel.Instance{{Address: ha6}}
	})
	r.ha.SetRouterInstance(hoa, ha6)
	r.ha.SetActive(ha6, true)
	r.register(nil, r.bindings[1]) // the Wi-Fi binding goes: its address is known, unbound
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				r.ha.SetRouterInstance(hoa, ha6) // as the event loop does on every change
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for seq := uint32(1); seq <= 20; seq++ {
		native, _ := nemo.AppendHeartbeatPacket(nil, wifi6, ha6, &nemo.Heartbeat{Seq: seq})
		if err := r.mr.SendSignal(0, nemo.EncapIPv6, native); err != nil {
			t.Fatal(err)
		}
		if a := waitAnswer(t, r); a != (answer{0, seq, true}) {
			t.Fatalf("answer %+v", a)
		}
	}
}
