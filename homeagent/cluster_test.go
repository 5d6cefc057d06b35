package homeagent_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"nemod/cluster"
	"nemod/control"
	"nemod/internal/netsim"
	"nemod/internal/twoends"
	"nemod/lab"
	"nemod/status"
)

// Home agents in a cluster, in one process over netsim, sharing a memory
// store: the router registers with the owner of its instance, the other
// member stands by with the same bindings, and takes over when the owner
// is cut off from the store, forwarding at once from the shared cache.

var instB = netip.MustParseAddr("2001:db8:fffe::1")

func memoryStore(t *testing.T) *cluster.Memory {
	st := cluster.NewMemory()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go st.Run(ctx, 20*time.Millisecond)
	return st
}

func members(t *testing.T, e *twoends.Ends, router string) (*twoends.Agent, *twoends.Agent) {
	st := memoryStore(t)
	m1 := e.AddAgent("ha1", twoends.ClusterUCI("ha1"), "2001:db8:ff01::1", "198.51.101.1")
	m2 := e.AddAgent("ha2", twoends.ClusterUCI("ha2"), "2001:db8:ff02::1", "198.51.101.2")
	m1.Start(st)
	m2.Start(st)
	e.Eventually(5*time.Second, "the instances owned", func() bool {
		return m1.Owned() == lab.HA6.String() && m2.Owned() == instB.String()
	})
	if router != "" {
		e.WriteRouterConfig(router)
	}
	e.StartRouterOnly()
	e.Registered()
	return m1, m2
}

func bindingsOf(s status.HomeAgent, name string) []status.Binding {
	for _, r := range s.MobileRouters {
		if r.Name == name {
			return r.Bindings
		}
	}
	return nil
}

func outers(bs []status.Binding) string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Encap+" "+b.Outer)
	}
	return strings.Join(out, ", ")
}

func TestClusterTakeover(t *testing.T) {
	e := twoends.New(t, "")
	m1, m2 := members(t, e, "")
	var at1 string
	e.Eventually(3*time.Second, "the standby member has car1's bindings", func() bool {
		at1 = outers(bindingsOf(m1.Status(), "car1"))
		return at1 != "" && outers(bindingsOf(m2.Status(), "car1")) == at1
	})
	if !strings.Contains(at1, "udp4 192.0.2.2:") {
		t.Fatalf("car1's bindings: %s", at1)
	}
	down := netsim.UDP6(twoends.CN, twoends.LANHost, 5000, 6000, 100, 1)
	m1.TUN().Inject(down)
	if !e.MRTUN().Expect(down) {
		t.Fatal("the owner does not forward")
	}
	// The standby has the bindings, and forwards nothing.
	m2.TUN().Inject(down)
	if !e.MRTUN().Quiet(down, 300*time.Millisecond) || m2.Status().DataPlane.Drops["standby"] == 0 {
		t.Fatalf("the standby forwarded: drops %v", m2.Status().DataPlane.Drops)
	}
	if slices.Contains(m2.Sys.Prefixes(), lab.MNP) || !slices.Contains(m1.Sys.Prefixes(), lab.MNP) {
		t.Fatalf("routes: owner %v, standby %v", m1.Sys.Prefixes(), m2.Sys.Prefixes())
	}
	// The owner is cut off from the store: it gives the instance up, and
	// only then does the other take it, addresses, routes and all.
	m1.Store.Cut(true)
	cut := time.Now()
	var gaveUp, took time.Duration
	e.Eventually(5*time.Second, "ha2 takes the instance over", func() bool {
		if gaveUp == 0 && !slices.Contains(m1.Sys.Instances(), lab.HA6) {
			gaveUp = time.Since(cut)
		}
		if took == 0 && slices.Contains(m2.Sys.Instances(), lab.HA6) {
			took = time.Since(cut)
			if gaveUp == 0 {
				t.Fatalf("ha2 took the instance while ha1 still had it")
			}
		}
		return took != 0
	})
	t.Logf("cut off at 0: ha1 gave its instance up at %v, ha2 took it at %v", gaveUp.Round(time.Millisecond), took.Round(time.Millisecond))
	if !slices.Contains(m2.Sys.Prefixes(), lab.MNP) || slices.Contains(m1.Sys.Prefixes(), lab.MNP) {
		t.Fatalf("routes after the takeover: ha1 %v, ha2 %v", m1.Sys.Prefixes(), m2.Sys.Prefixes())
	}
	m2.TUN().Inject(down)
	if !e.MRTUN().Expect(down) {
		t.Fatal("the new owner does not forward")
	}
	// The router's probes may have found the gap; registering again, it
	// is accepted by the new owner, its sequence numbers and timestamps
	// known there, its NAT mapping the same.
	e.Registered()
	s2 := m2.Status()
	if s2.Counters.Rejected["seq_out_of_window"]+s2.Counters.Rejected["bad_timestamp"] != 0 {
		t.Fatalf("the new owner refused the router: %+v", s2.Counters)
	}
	if got := outers(bindingsOf(s2, "car1")); got != at1 {
		t.Fatalf("bindings at the new owner %q, before %q", got, at1)
	}
	if s2.Cluster == nil || s2.Cluster.Counters["takeovers"] < 2 {
		t.Fatalf("cluster status: %+v", s2.Cluster)
	}
}

// routerList is car1 with both instances in its list.
func routerList(sock string) string {
	r := lab.RouterUCI(sock, "")
	r = strings.Replace(r, "option home_agent '2001:db8:ffff::1'\n", "list home_agent '2001:db8:ffff::1'\n\tlist home_agent '2001:db8:fffe::1'\n", 1)
	return strings.Replace(r, "option home_agent_v4 '198.51.100.1'\n", "list home_agent_v4 '198.51.100.1'\n\tlist home_agent_v4 '198.51.100.129'\n", 1)
}

func TestClusterSwitchAndDrain(t *testing.T) {
	e := twoends.New(t, "")
	m1, m2 := members(t, e, routerList(e.MRSock))
	var reply status.SwitchReply
	ctl := func(sock, cmd string, args any, out any) error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return control.Do(ctx, sock, cmd, args, out)
	}
	if err := ctl(m1.Sock, "switch", map[string]any{"target": "car1@fleet", "to": []string{instB.String()}}, &reply); err != nil {
		t.Fatal(err)
	}
	if len(reply.Switched) != 1 {
		t.Fatalf("switch: %+v", reply)
	}
	e.Eventually(5*time.Second, "car1 at instance B", func() bool {
		s := e.MRStatus()
		return s.HomeAgentInUse.Address == instB.String() && s.HomeAgentInUse.Reason == "home_agent_switch" &&
			e.States() == twoends.DefaultStates
	})
	down := netsim.UDP6(twoends.CN, twoends.LANHost, 5000, 6000, 100, 2)
	e.Eventually(3*time.Second, "ha2 announces car1", func() bool { return slices.Contains(m2.Sys.Prefixes(), lab.MNP) })
	m2.TUN().Inject(down)
	if !e.MRTUN().Expect(down) {
		t.Fatal("the owner of instance B does not forward for car1")
	}
	e.Eventually(3*time.Second, "ha1 withdraws car1", func() bool { return !slices.Contains(m1.Sys.Prefixes(), lab.MNP) })
	if got := outers(bindingsOf(m1.Status(), "car1")); got == "" {
		t.Fatal("the de-registration from instance A took car1's bindings off the shared entry")
	}
	// Drain ha2: car1 moves back to instance A, then ha2 gives B up.
	if err := ctl(m2.Sock, "drain", map[string]any{}, &reply); err != nil {
		t.Fatal(err)
	}
	if len(reply.Moved) != 1 || len(reply.HandedOver) != 1 || reply.HandedOver[0] != instB.String() {
		t.Fatalf("drain: %+v", reply)
	}
	e.Eventually(3*time.Second, "ha1 owns both", func() bool {
		return m1.Owned() == lab.HA6.String()+" "+instB.String() && m2.Owned() == ""
	})
	if s := e.MRStatus(); s.HomeAgentInUse.Address != lab.HA6.String() || e.States() != twoends.DefaultStates {
		t.Fatalf("car1 after the drain: %+v %s", s.HomeAgentInUse, e.States())
	}
}
