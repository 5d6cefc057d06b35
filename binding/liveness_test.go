package binding

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"nemod/config"
	"nemod/nemo"
)

// defaultProbing is the router's configuration with the shipped probe
// settings on both uplinks.
func defaultProbing() UpdateListConfig {
	rc := routerConfig()
	for i := range rc.Uplinks {
		rc.Uplinks[i].ProbeInterval, rc.Uplinks[i].ProbeFailures = config.DefaultProbeInterval, config.DefaultProbeFailures
	}
	return rc
}

// flow moves uplink i's path clock as a 1000 packets/s flow each way
// does, for d in steps of a millisecond, polling the router whenever it is
// due: a packet goes to the home agent every millisecond, and one comes
// back when carries() says the path delivers it. It returns how many
// times the router was polled.
func (w *world) flow(i int, d time.Duration, carries func() bool) int {
	polls := 0
	for end := w.now.Add(d); w.now.Before(end); {
		w.now = w.now.Add(time.Millisecond)
		c := w.clocks[i]
		heard := c.Heard
		if h := w.heard[i]; h.After(heard) {
			heard = h
		}
		c.Sent = w.now
		if !c.Waiting.After(heard) {
			c.Waiting = w.now
		}
		if carries() {
			c.Heard, c.Data = w.now, w.now
		}
		w.clocks[i] = c
		if next := w.r.NextDeadline(); !next.IsZero() && !next.After(w.now) {
			w.step()
			polls++
		}
	}
	return polls
}

func always() bool { return true }
func never() bool  { return false }

// bothUp is a world with both uplinks up: the Wi-Fi with its IPv6
// care-of address, the cellular with its IPv4 one.
func bothUp(t *testing.T, rc UpdateListConfig, hc HAConfig) *world {
	t.Helper()
	w := newWorld(t, rc, hc)
	w.up(0, wifiCoA, netip.Addr{})
	w.up(1, netip.Addr{}, cellCoA)
	return w
}

// registeredBoth is bothUp once both uplinks are registered.
func registeredBoth(t *testing.T, rc UpdateListConfig, hc HAConfig) *world {
	t.Helper()
	w := bothUp(t, rc, hc)
	w.step()
	w.run(2 * time.Second)
	if got := w.states(); got != "wifi=registered/ipv6 cell=registered/udp4" {
		t.Fatalf("registered: %s", got)
	}
	return w
}

// A path black-holed while a flow runs both ways over it is dead, and
// de-registered through the other uplink, 200 ms after the fault: 50 ms
// of unanswered traffic, then three probes 50 ms apart (the 150 ms floor
// on a path this short), even when an idle probe's longer episode was
// open. The router is woken about every 50 ms while the
// traffic flows, not on every packet.
func TestTrafficFindsSilentPathFast(t *testing.T) {
	w := registeredBoth(t, defaultProbing(), haConfig())
	if polls := w.flow(0, 2*time.Second, always); polls > 100 {
		t.Fatalf("%d polls in 2 s of traffic", polls)
	}
	probes, fault := w.r.Probes, w.now
	w.dead[0] = true
	for w.r.DeadPaths == 0 && w.now.Sub(fault) < 2*time.Second {
		w.flow(0, time.Millisecond, never)
	}
	took := w.now.Sub(fault)
	// An idle probe that happens to go out first opens the episode sooner.
	if took < 140*time.Millisecond || took > 205*time.Millisecond {
		t.Fatalf("dead %v after the fault, want at most 200 ms", took)
	}
	if _, ok := w.haBindings()[1]; ok || !strings.HasPrefix(w.states(), "wifi=registering") {
		t.Fatalf("Wi-Fi binding not moved off: %s %v", w.states(), w.haBindings())
	}
	if n := w.r.Probes - probes; n < 3 || n > 5 {
		// Three for the episode, one recovery probe at once, maybe the
		// other uplink's idle one.
		t.Fatalf("%d probes sent finding it", n)
	}
	if w.r.Failovers != 1 {
		t.Fatalf("failovers %d", w.r.Failovers)
	}
}

// Under 5 % random loss each way, a path carrying a flow both ways is
// never declared dead: a silence of 50 packets does not happen. An idle
// path under the same loss is judged by its probes, five of which (or
// their answers) must be lost in a row: about one in a hundred thousand
// idle probes (one in a thousand with the three a path in use gets).
func TestRandomLossIsNoFailure(t *testing.T) {
	w := registeredBoth(t, defaultProbing(), haConfig())
	rng := rand.New(rand.NewPCG(1, 2))
	w.lose = func(bool) bool { return rng.Float64() < 0.05 }
	w.flow(0, 60*time.Second, func() bool { return rng.Float64() >= 0.05 })
	if w.r.DeadPaths != 0 {
		t.Fatalf("%d dead paths in 60 s of traffic under 5 %% loss", w.r.DeadPaths)
	}
	probes := w.r.Probes
	w.run(time.Hour)
	idle := w.r.Probes - probes
	t.Logf("idle hour under 5 %% loss: %d probes, %d paths declared dead", idle, w.r.DeadPaths)
	if w.r.DeadPaths*20000 > idle {
		t.Fatalf("%d dead paths for %d idle probes", w.r.DeadPaths, idle)
	}
}

// Traffic that only goes out (nothing comes back but the probes'
// answers) backs its suspicion off to the idle probe rate instead of
// probing every 50 ms.
func TestOneWayTrafficBacksOff(t *testing.T) {
	w := registeredBoth(t, defaultProbing(), haConfig())
	probes := w.r.links[0].path.log.n
	w.flow(0, 20*time.Second, never)
	n := w.r.links[0].path.log.n - probes
	if idle := int(20 * time.Second / ProbeGap(config.DefaultProbeInterval, nemo.EncapIPv6)); n > idle+maxBackoff || w.r.DeadPaths != 0 {
		t.Fatalf("%d probes in 20 s of one-way traffic (idle: %d), %d dead paths", n, idle, w.r.DeadPaths)
	}
}

// sendLog records what the router sent, per uplink.
type sendLog struct {
	at   time.Time
	send Send
}

func (w *world) recordFor(d time.Duration, step time.Duration) []sendLog {
	var out []sendLog
	for end := w.now.Add(d); w.now.Before(end); w.now = w.now.Add(step) {
		for _, s := range w.r.Poll(w.now) {
			out = append(out, sendLog{w.now, s})
			w.deliver(s)
		}
	}
	return out
}

// A dead path is probed at the idle rate for as long as it stays dead,
// with no Binding Update through it, under 1 kbit/s; whatever the
// outage's length, it is registered again within one probe gap of
// working again (the state machine on a fake clock: 5 s, 30 s, 2 min).
func TestRecoveryWhateverTheOutage(t *testing.T) {
	for _, outage := range []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute} {
		for _, enc := range []struct {
			name   string
			encap  nemo.Encap
			v6, v4 netip.Addr
		}{{"native", nemo.EncapIPv6, wifiCoA, netip.Addr{}}, {"udp4", nemo.EncapUDP4, netip.Addr{}, netip.MustParseAddr("192.168.50.2")}} {
			w := newWorld(t, defaultProbing(), haConfig())
			w.up(0, enc.v6, enc.v4)
			w.up(1, netip.Addr{}, cellCoA)
			w.step()
			w.run(2 * time.Second)
			w.dead[0] = true
			w.recordFor(time.Second, 5*time.Millisecond) // found dead
			if w.r.DeadPaths != 1 {
				t.Fatalf("%v %s: not found dead", outage, enc.name)
			}
			log := w.recordFor(outage, 5*time.Millisecond)
			// The bit rate from the first probe to the last, the first's own
			// octets left out: each gap pays for the probe after it.
			octets, probes := 0, 0
			var first, last time.Time
			for _, s := range log {
				if s.send.Path.Uplink != 0 {
					continue
				}
				if !s.send.Probe {
					t.Fatalf("%v %s: a Binding Update through the dead path at %v", outage, enc.name, s.at.Sub(t0))
				}
				if probes++; probes == 1 {
					first = s.at
					continue
				}
				last = s.at
				octets += ProbeSize(s.send.Path.Encap)
			}
			bps := float64(octets*8) / last.Sub(first).Seconds()
			gap := ProbeGap(config.DefaultProbeInterval, enc.encap)
			// Every fourth probe after the eighth tries another candidate,
			// UDP/IPv6 at the largest gap.
			if bps >= 1000 || probes < int(outage/ProbeGap(config.DefaultProbeInterval, nemo.EncapUDP6))-1 {
				t.Fatalf("%v %s: %d probes, %.0f bit/s while dead", outage, enc.name, probes, bps)
			}
			delete(w.dead, 0)
			back := w.now
			for !strings.HasPrefix(w.states(), "wifi=registered") && w.now.Sub(back) < 5*time.Second {
				w.recordFor(5*time.Millisecond, 5*time.Millisecond)
			}
			took := w.now.Sub(back)
			if took > gap+10*time.Millisecond {
				t.Fatalf("%v %s: registered %v after the path worked again (probe gap %v)", outage, enc.name, took, gap)
			}
			if b, ok := w.haBindings()[1]; !ok || b.Encap != enc.encap {
				t.Fatalf("%v %s: home agent %+v %v", outage, enc.name, b, ok)
			}
			t.Logf("%v outage, %s: %d probes (%.0f bit/s) while dead, registered %v after it worked", outage, enc.name, probes, bps, took)
		}
	}
}

// A path that comes back with its encapsulation blocked (a firewall that
// came up during the outage) is found through another candidate, which
// every fourth probe tries after the first eight.
func TestRecoveryOnAnotherEncapsulation(t *testing.T) {
	w := registeredBoth(t, defaultProbing(), haConfig())
	w.dead[0] = true
	w.run(5 * time.Second)
	delete(w.dead, 0)
	w.blockNative[0] = true
	w.run(10 * time.Second)
	if got := w.states(); got != "wifi=registered/udp6 cell=registered/udp4" {
		t.Fatalf("after the outage, native blocked: %s", got)
	}
}

// When another encapsulation's probe is answered first but the path came
// back whole, the binding returns on the one it had.
func TestRecoveryConfirmsItsEncapsulation(t *testing.T) {
	w := registeredBoth(t, defaultProbing(), haConfig())
	w.dead[0] = true
	w.run(time.Second)
	w.hold = true
	var alt *Send
	for i := 0; i < 2000 && alt == nil; i++ {
		w.now = w.now.Add(10 * time.Millisecond)
		w.step()
		for _, s := range w.held {
			if s.Probe && s.Path.Uplink == 0 && s.Path.Encap != nemo.EncapIPv6 {
				alt = &s
			}
		}
		w.held = nil
	}
	if alt == nil {
		t.Fatal("no probe on another encapsulation")
	}
	w.hold = false
	delete(w.dead, 0)
	w.deliver(*alt)
	w.run(time.Second)
	if got := w.states(); got != "wifi=registered/ipv6 cell=registered/udp4" {
		t.Fatalf("came back on %s", got)
	}
}

// The router offers UDP over IPv6 with offload; a home agent that
// agrees moves the Wi-Fi binding onto it, one that ignores the option
// (a home agent of any other make) keeps it IPv6-in-IPv6. A home agent
// that stops agreeing gets it back on IPv6-in-IPv6 at the next refresh.
func TestFastEncapsulationNegotiated(t *testing.T) {
	for _, c := range []struct {
		name              string
		offer, agree      nemo.Caps
		want              string
		optionInTheAnswer bool
	}{
		{"both offer", nemo.CapUDP6Offload, nemo.CapUDP6Offload, "udp6", true},
		{"home agent ignores it", nemo.CapUDP6Offload, 0, "ipv6", true},
		{"router does not offer", 0, nemo.CapUDP6Offload, "ipv6", false},
	} {
		rc, hc := defaultProbing(), haConfig()
		rc.Offer, hc.Offer = c.offer, c.agree
		w := bothUp(t, rc, hc)
		w.run(2 * time.Second)
		if got := w.states(); got != "wifi=registered/"+c.want+" cell=registered/udp4" {
			t.Fatalf("%s: %s", c.name, got)
		}
		if b := w.haBindings()[1]; b.Encap.String() != c.want {
			t.Fatalf("%s: home agent %+v", c.name, b)
		}
		var ba nemo.BindingAck
		p, _ := nemo.ParsePacket(w.results[len(w.results)-1].Reply)
		if err := nemo.Unmarshal(p.MH, &ba); err != nil {
			t.Fatal(err)
		}
		if _, ok := ba.NemodCaps(); ok != c.optionInTheAnswer {
			t.Fatalf("%s: option in the answer %v", c.name, ok)
		}
	}
	rc, hc := defaultProbing(), haConfig()
	rc.Offer, hc.Offer = nemo.CapUDP6Offload, nemo.CapUDP6Offload
	w := newWorld(t, rc, hc)
	w.up(0, wifiCoA, netip.Addr{})
	w.run(2 * time.Second)
	w.c.cfg.Offer = 0
	w.run(20 * time.Minute)
	if got := w.states(); got != "wifi=registered/ipv6 cell=down/none" {
		t.Fatalf("after the home agent stopped agreeing: %s", got)
	}
}

// A registered binding whose NAT moved it to a new port is registered
// again as soon as the home agent answers a probe from no binding: no
// waiting for probes to go unanswered.
func TestUnboundAnswerRegistersAgain(t *testing.T) {
	w := registeredBoth(t, defaultProbing(), haConfig())
	w.natPort = 40001
	start := w.now
	for w.now.Sub(start) < 3*time.Second {
		w.run(10 * time.Millisecond)
		if b, ok := w.haBindings()[2]; ok && b.Outer.Port() == 40001 {
			break
		}
	}
	if took := w.now.Sub(start); took > ProbeGap(config.DefaultProbeInterval, nemo.EncapUDP4)+20*time.Millisecond {
		t.Fatalf("repaired %v after the NAT moved", took)
	}
}

// The status figures: the smoothed RTT of the probes' answers and the
// share of recent probes unanswered.
func TestProbeFigures(t *testing.T) {
	w := bothUp(t, defaultProbing(), haConfig())
	w.step()
	w.hold = true
	n := 0
	for i := 0; i < 400 && n < 40; i++ {
		w.now = w.now.Add(50 * time.Millisecond)
		w.step()
		for _, s := range w.held {
			if !s.Probe || s.Path.Uplink != 0 {
				continue
			}
			n++
			if n%4 == 0 {
				continue // lost
			}
			var hb nemo.Heartbeat
			nemo.ParseHeartbeatPacket(s.Packet, &hb)
			w.heard[0] = w.now.Add(30 * time.Millisecond)
			w.r.ProbeAnswered(0, hb.Seq, w.now.Add(30*time.Millisecond), false)
		}
		w.held = nil
	}
	w.now = w.now.Add(time.Second)
	w.r.Poll(w.now)
	b := w.r.Bindings()[0]
	if b.RTT < 25*time.Millisecond || b.RTT > 35*time.Millisecond {
		t.Fatalf("RTT %v, want about 30 ms", b.RTT)
	}
	if b.Loss < 0.2 || b.Loss > 0.3 {
		t.Fatalf("loss %v, want one in four", b.Loss)
	}
}

// Failovers count the usable bindings lost while another could take
// over: a carrier loss and a dead path, not the loss of the last one.
func TestFailoversCounted(t *testing.T) {
	w := registeredBoth(t, defaultProbing(), haConfig())
	w.down(0)
	w.step()
	w.up(0, wifiCoA, netip.Addr{})
	w.run(time.Second)
	w.dead[1] = true
	w.run(time.Second)
	w.down(0)
	if w.r.Failovers != 2 || w.r.Counters(0).Failovers != 2 {
		t.Fatalf("failovers %d", w.r.Failovers)
	}
}

// An episode's probes go Gap apart (150 ms shared by three) and the path
// is dead one Gap after the last; anything heard ends it. Next says when Judge acts, never earlier
// than the last look while traffic flows.
func TestWatchEpisode(t *testing.T) {
	var w Watch
	c := Clock{Heard: t0, Data: t0, Sent: t0.Add(time.Millisecond), Waiting: t0.Add(time.Millisecond)}
	if v := w.Judge(c, t0.Add(50*time.Millisecond), 3, time.Second); v != Alive {
		t.Fatalf("probed after 49 ms of silence: %v", v)
	}
	if next := w.Next(c, t0.Add(50*time.Millisecond), 3, time.Second); !next.Equal(t0.Add(51 * time.Millisecond)) {
		t.Fatalf("next %v", next.Sub(t0))
	}
	at := t0.Add(51 * time.Millisecond)
	var got []time.Duration
	for now := at; now.Before(t0.Add(time.Second)); now = now.Add(time.Millisecond) {
		v := w.Judge(c, now, 3, time.Second)
		if v == ProbeNow {
			got = append(got, now.Sub(at))
		}
		if v == Dead {
			got = append(got, -now.Sub(at))
			break
		}
	}
	if len(got) != 4 || got[0] != 0 || got[1] < 50*time.Millisecond || got[1] > 51*time.Millisecond || got[3] > -150*time.Millisecond || got[3] < -152*time.Millisecond {
		t.Fatalf("episode %v (probes, then minus the death)", got)
	}
	w.Reset()
	w.Probed(t0, 0)
	c.Heard = t0.Add(time.Millisecond)
	if v := w.Judge(c, t0.Add(200*time.Millisecond), 3, time.Second); v == Dead || w.Probing() {
		t.Fatal("an answered episode did not end")
	}
	idle := Clock{Heard: t0, Sent: t0.Add(-time.Hour)}
	if next := w.Next(idle, t0, 3, time.Second); !next.IsZero() {
		t.Fatalf("an idle path wakes the router at %v", next.Sub(t0))
	}
}

// An idle probe's episode sends IdleExtraProbes more probes than a
// suspicion's, within the same span: five probes 90 ms apart for the
// native path's 450 ms, and the path is dead when the span ends.
func TestIdleEpisodeSendsMore(t *testing.T) {
	var w Watch
	c := Clock{Heard: t0.Add(-time.Millisecond)}
	w.Probed(t0, 450*time.Millisecond)
	got := []time.Duration{0}
	for now := t0; now.Before(t0.Add(2 * time.Second)); now = now.Add(time.Millisecond) {
		v := w.Judge(c, now, 3, 450*time.Millisecond)
		if v == ProbeNow {
			got = append(got, now.Sub(t0))
		}
		if v == Dead {
			got = append(got, -now.Sub(t0))
			break
		}
	}
	want := []time.Duration{0, 90 * time.Millisecond, 180 * time.Millisecond, 270 * time.Millisecond, 360 * time.Millisecond, -450 * time.Millisecond}
	if !slices.Equal(got, want) {
		t.Fatalf("episode %v (probes, then minus the death), want %v", got, want)
	}
}

func TestBucket(t *testing.T) {
	b := Bucket{Rate: 10, Burst: 2}
	n := 0
	for i := 0; i < 100; i++ {
		if b.Allow(t0.Add(time.Duration(i) * 10 * time.Millisecond)) {
			n++
		}
	}
	// 2 saved, then 10 a second for 0.99 s.
	if n < 10 || n > 12 {
		t.Fatalf("%d allowed in a second", n)
	}
	var zero Bucket
	if zero.Allow(t0) {
		t.Fatal("the zero bucket allowed one")
	}
}

func TestProbeGap(t *testing.T) {
	for e, want := range map[nemo.Encap]time.Duration{
		nemo.EncapIPv6: 450 * time.Millisecond, nemo.EncapUDP4: 675 * time.Millisecond, nemo.EncapUDP6: 835714285,
	} {
		gap := ProbeGap(450*time.Millisecond, e)
		if gap != want {
			t.Errorf("%s: %v, want %v", e, gap, want)
		}
		if bps := float64(ProbeSize(e)*8) / gap.Seconds(); bps >= 1000 {
			t.Errorf("%s: %.0f bit/s", e, bps)
		}
	}
}

// A dead UDP/IPv6 path is probed natively (the same addresses, the
// smallest probe, the shortest gap) and registered again in UDP; when
// UDP has become blocked meanwhile, natively.
func TestNegotiatedPathRecoversNatively(t *testing.T) {
	for _, blockUDP := range []bool{false, true} {
		rc, hc := defaultProbing(), haConfig()
		rc.Offer, hc.Offer = nemo.CapUDP6Offload, nemo.CapUDP6Offload
		w := bothUp(t, rc, hc)
		w.run(2 * time.Second)
		if got := w.states(); got != "wifi=registered/udp6 cell=registered/udp4" {
			t.Fatalf("negotiated: %s", got)
		}
		w.dead[0] = true
		w.recordFor(2*time.Second, 5*time.Millisecond)
		log := w.recordFor(3*time.Second, 5*time.Millisecond)
		for _, s := range log {
			if s.send.Path.Uplink == 0 && s.send.Path.Encap != nemo.EncapIPv6 {
				t.Fatalf("a recovery probe in %s", s.send.Path.Encap)
			}
		}
		delete(w.dead, 0)
		want := "wifi=registered/udp6 cell=registered/udp4"
		if blockUDP {
			w.blockUDP6 = map[int]bool{0: true}
			want = "wifi=registered/ipv6 cell=registered/udp4"
		}
		back := w.now
		for w.states() != want && w.now.Sub(back) < 10*time.Second {
			w.recordFor(5*time.Millisecond, 5*time.Millisecond)
		}
		took := w.now.Sub(back)
		if w.states() != want || (!blockUDP && took > ProbeGap(config.DefaultProbeInterval, nemo.EncapIPv6)+10*time.Millisecond) {
			t.Fatalf("UDP blocked %v: %s %v after the path came back", blockUDP, w.states(), took)
		}
		t.Logf("UDP blocked %v: %s %v after the path came back", blockUDP, want, took)
	}
}
