package router_test

import (
	"strings"
	"testing"
	"time"

	"nemod/internal/netsim"
	"nemod/internal/twoends"
	"nemod/lab"
	"nemod/nemo"
	"nemod/tunnel"
)

// Path liveness between the two daemons (binding/liveness.go): traffic
// finds a silent path, idle paths are judged by slow probes, dead paths
// come back without the RFC 6275 back-off, the fast encapsulation is
// negotiated, and both ends answer each other's Heartbeats in UDP.

// slowIdle runs the daemons with the Wi-Fi's idle probes 5 s apart (its
// probe gap 5 s to 9 s), so that a silent Wi-Fi found within a second or
// two can only have been found by the traffic.
func slowIdle(t *testing.T, encap string) *twoends.Ends {
	e := twoends.New(t, "")
	e.WriteRouterConfig(lab.RouterUCIWith(e.MRSock, "\toption encap '"+encap+"'\n\toption probe_interval '5s'\n", ""))
	if encap == "ipv6" {
		e.Want = twoends.NativeStates
	}
	e.Start()
	e.Registered()
	return e
}

// A path black-holed while a flow runs both ways over it is found dead
// and de-registered within a few hundred milliseconds (no idle probe
// could have been due), and the flow goes on over the other uplink, on
// both kinds of Wi-Fi path.
func TestTrafficFindsSilentPath(t *testing.T) {
	t.Parallel()
	for _, encap := range []string{"auto", "ipv6"} {
		t.Run(encap, func(t *testing.T) {
			e := slowIdle(t, encap)
			f := e.StartFlow(2 * time.Millisecond)
			time.Sleep(300 * time.Millisecond)
			if w := e.MRStatus().Bindings[0]; w.TxPackets < 50 || w.RxPackets < 50 {
				t.Fatalf("the flow is not on the Wi-Fi: %+v", w)
			}
			e.Wifi.SetBlackhole(true)
			took := e.Eventually(2*time.Second, "Wi-Fi dead and gone at the home agent", func() bool {
				return e.MRStatus().Counters.DeadPaths > 0 && strings.Join(e.HABindings(), ",") == "2 udp4"
			})
			t.Logf("dead and de-registered %v after the black hole", took.Round(time.Millisecond))
			up, down := f.Up.Load(), f.Down.Load()
			e.Eventually(time.Second, "the flow on the cellular uplink", func() bool {
				return f.Up.Load() > up+20 && f.Down.Load() > down+20
			})
			if c := e.MRStatus().Counters; c.Failovers != 1 {
				t.Fatalf("counters %+v", c)
			}
		})
	}
}

// An idle path is probed at the low rate (a native Heartbeat every
// 450 ms, UDP ones proportionally less often) and a silent one is still
// found by those probes.
func TestIdlePathJudgedBySlowProbes(t *testing.T) {
	t.Parallel()
	e := twoends.New(t, "")
	e.Start()
	e.Registered()
	time.Sleep(500 * time.Millisecond)
	before := e.MRStatus().Counters.Probes
	time.Sleep(2 * time.Second)
	n := e.MRStatus().Counters.Probes - before
	// 2 s / 836 ms on the Wi-Fi (UDP/IPv6), 2 s / 675 ms on the cellular
	// uplink (UDP/IPv4).
	if n < 3 || n > 8 {
		t.Fatalf("%d probes in 2 s on two idle uplinks", n)
	}
	e.Wifi.SetBlackhole(true)
	took := e.Eventually(3*time.Second, "silent idle Wi-Fi found", func() bool { return e.MRStatus().Counters.DeadPaths > 0 })
	t.Logf("idle path found dead %v after the black hole (its probe gap 836 ms)", took.Round(time.Millisecond))
}

// A path that was dead is registered again promptly once it carries,
// while it was dead no Binding Update went through it.
func TestDeadPathComesBackPromptly(t *testing.T) {
	t.Parallel()
	e := twoends.New(t, "")
	e.Start()
	e.Registered()
	e.Wifi.SetBlackhole(true)
	e.Eventually(3*time.Second, "dead", func() bool { return e.MRStatus().Counters.DeadPaths > 0 })
	sent := e.MRStatus().Counters.Sent
	time.Sleep(3 * time.Second)
	// The de-registration through the cellular uplink, maybe once again.
	if n := e.MRStatus().Counters.Sent - sent; n > 2 {
		t.Fatalf("%d Binding Updates while the path was dead", n)
	}
	e.Wifi.SetBlackhole(false)
	took := e.Eventually(3*time.Second, "registered again", func() bool { return e.States() == e.Want })
	t.Logf("registered again %v after the path carried again", took.Round(time.Millisecond))
}

// A home agent that does not negotiate (one of another make ignores
// nemod's option) keeps an auto Wi-Fi in IPv6-in-IPv6; a nemod one moves
// it to UDP over IPv6 (every other test: twoends.DefaultStates).
func TestStandardPeerKeepsIPv6InIPv6(t *testing.T) {
	t.Parallel()
	e := twoends.New(t, "")
	e.HAOffer = func() nemo.Caps { return 0 }
	e.Want = twoends.NativeStates
	e.Start()
	e.Registered()
	time.Sleep(200 * time.Millisecond)
	if got := strings.Join(e.HABindings(), ","); got != "1 ipv6,2 udp4" || e.States() != twoends.NativeStates {
		t.Fatalf("home agent %s, router %s", got, e.States())
	}
}

// The status shows each binding's probe round trip and loss, and the
// failovers.
func TestStatusShowsProbeFigures(t *testing.T) {
	t.Parallel()
	e := twoends.New(t, "")
	e.Start()
	e.Registered()
	e.Eventually(3*time.Second, "probes answered on both uplinks", func() bool {
		s := e.MRStatus()
		return s.Bindings[0].RTTms > 0 && s.Bindings[1].RTTms > 0
	})
	for _, b := range e.MRStatus().Bindings {
		if b.Loss != 0 || b.RTTms > 1000 {
			t.Fatalf("binding %+v", b)
		}
	}
	e.Wifi.SetUp(false)
	e.Eventually(2*time.Second, "failover counted", func() bool { return e.MRStatus().Counters.Failovers == 1 })
}

// Both ends answer each other's Heartbeats inside UDP: with traffic only
// towards the router, the home agent probes its bindings, and the router's
// answers keep them in use: over UDP/IPv6 (the Wi-Fi, whose own probes are
// 9 s apart) and UDP/IPv4 (the cellular uplink alone).
func TestHomeAgentsProbesAnsweredInUDP(t *testing.T) {
	t.Parallel()
	e := slowIdle(t, "auto")
	downOnly := func(d time.Duration) {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for end := time.Now().Add(d); time.Now().Before(end); {
			select {
			case <-e.MRTUN().Written():
			case <-tick.C:
				e.HATUN().Inject(twoendsDown)
			}
		}
	}
	downOnly(1500 * time.Millisecond)
	s := e.HAStatus()
	if w, c := s.MobileRouters[0].Bindings[0], s.MobileRouters[0].Bindings[1]; w.TxPackets < 300 || c.TxPackets != 0 {
		t.Fatalf("the home agent gave up on the Wi-Fi: %+v, %+v", w, c)
	}
	e.Wifi.SetUp(false)
	e.Eventually(2*time.Second, "Wi-Fi gone", func() bool { return strings.Join(e.HABindings(), ",") == "2 udp4" })
	downOnly(1500 * time.Millisecond)
	if n := e.HAStatus().DataPlane.Drops[tunnel.DropNoBinding.String()]; n != 0 {
		t.Fatalf("the home agent found the cellular binding dead: %d packets without a binding", n)
	}
}

// twoendsDown is a packet from the correspondent to the LAN host.
var twoendsDown = netsim.UDP6(twoends.CN, twoends.LANHost, 7, 4000, 100, 'd')
