package homeagent_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"nemod/internal/forge"
	"nemod/internal/twoends"
	"nemod/lab"
	"nemod/nemo"
	"nemod/netio"
	"nemod/status"
)

// The home agent daemon with a real mobile router daemon, in one process
// over netsim's network (package twoends): registrations, refusals, reload,
// the control socket and shutdown. A stranger on the network plays the
// attacker.

var (
	ha      = lab.HA6
	car2HoA = netip.MustParseAddr("2001:db8:ffff:1::200")
	car2Key = []byte{0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00}
	car2MNP = netip.MustParsePrefix("2001:db8:200::/56")
)

// exchange sends a Binding Update from the stranger and returns the
// status of the answer, or -1 without one within a second.
func exchange(t *testing.T, c netio.Conn, bu forge.BU) int {
	t.Helper()
	pkt, err := bu.Packet(ha)
	if err != nil {
		t.Fatal(err)
	}
	b := netio.NewBatch(1, 2048)
	b.N[0] = copy(b.Bufs[0], pkt)
	b.Addr[0] = netip.AddrPortFrom(ha, nemo.UDPPort)
	if _, err := c.Send(b, 1); err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 1)
	go func() {
		in := netio.NewBatch(1, 2048)
		if n, err := c.Recv(in); err == nil && n == 1 {
			st, err := forge.AckStatus(in.Bufs[0][:in.N[0]])
			if err == nil {
				got <- st
				return
			}
		}
		got <- -2
	}()
	select {
	case st := <-got:
		return st
	case <-time.After(time.Second):
		return -1
	}
}

func stranger(t *testing.T, e *twoends.Ends) netio.Conn {
	c, err := e.Stranger.Stack().ListenUDP("udp6", "", netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRefusalsAreAnsweredAndCounted: a wrong key, an unknown home address
// and a prefix the router may not claim are each answered with their RFC
// status and counted by reason; a good registration from the same place is
// accepted; car1 never notices.
func TestRefusalsAreAnsweredAndCounted(t *testing.T) {
	e := twoends.New(t, "")
	e.Start()
	e.Registered()
	c := stranger(t, e)
	now := time.Now()
	good := forge.BU{HoA: car2HoA, CoA: lab.CN6, SPI: 257, Key: car2Key, MNPs: []netip.Prefix{car2MNP}, Seq: 10, TS: now}
	for i, tc := range []struct {
		name    string
		f       func(*forge.BU)
		status  int
		counter string
	}{
		{"wrong key", func(f *forge.BU) { f.Key = []byte("not the key") }, int(nemo.StatusAuthFailed), "auth_failed"},
		{"unknown home address", func(f *forge.BU) { f.HoA = netip.MustParseAddr("2001:db8:ffff:1::999") }, int(nemo.StatusNotHomeAgent), "unknown_home_address"},
		{"car1's prefix", func(f *forge.BU) { f.MNPs = []netip.Prefix{lab.MNP} }, int(nemo.StatusNotAuthorizedPrefix), "prefix_rejected"},
	} {
		f := good
		f.Seq, f.TS = uint16(20+i), now.Add(time.Duration(i)*time.Millisecond)
		tc.f(&f)
		was := e.HAStatus().Counters.Rejected[tc.counter]
		if got := exchange(t, c, f); got != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.status)
		}
		if now := e.HAStatus().Counters.Rejected[tc.counter]; now != was+1 {
			t.Errorf("%s: %s went from %d to %d", tc.name, tc.counter, was, now)
		}
	}
	good.Seq, good.TS = 30, now.Add(time.Second) // newer than every refused one
	if got := exchange(t, c, good); got != 0 {
		t.Fatalf("car2's genuine registration: status %d", got)
	}
	s := e.HAStatus()
	if len(s.MobileRouters) != 2 || len(s.MobileRouters[1].Bindings) != 1 || s.MobileRouters[1].Bindings[0].CoA != lab.CN6.String() {
		t.Fatalf("car2 at the home agent: %+v", s.MobileRouters)
	}
	if s.Counters.Received < 6 || s.Counters.Sent < 6 || s.Counters.Accepted < 3 {
		t.Fatalf("counters: %+v", s.Counters)
	}
	if st := e.States(); st != e.Want {
		t.Fatalf("car1: %s", st)
	}
}

// TestReload: a new mobile router in the file is served after SIGHUP and
// `ctl reload`; a bad file is refused and the running configuration stays.
func TestReload(t *testing.T) {
	e := twoends.New(t, "")
	e.Start()
	e.Registered()
	extra := `config mobile_router 'car3'
	option home_address '2001:db8:ffff:1::300'
	option spi '258'
	option key '0102030405060708090a0b0c0d0e0f10'
	list mnp '2001:db8:300::/56'
`
	e.WriteHomeAgentConfig(lab.HomeAgentUCI(e.HASock) + extra)
	e.HASignals <- syscall.SIGHUP
	e.Eventually(2*time.Second, "car3 configured", func() bool { return len(e.HAStatus().MobileRouters) == 3 })
	// Routed: the home link and what is registered (car1's home address
	// and prefix), not car3, which is configured only.
	if got := e.HASys.Prefixes(); len(got) != 3 || slices.Contains(got, netip.MustParsePrefix("2001:db8:300::/56")) {
		t.Fatalf("routes after reload: %v", got)
	}
	e.WriteHomeAgentConfig("config homeagent 'main'\n\toption address 'nowhere'\n")
	var reply map[string]any
	if err := twoends.Ctl(e.HASock, "reload", &reply); err == nil {
		t.Fatal("a bad configuration was reloaded")
	}
	if n := len(e.HAStatus().MobileRouters); n != 3 {
		t.Fatalf("%d mobile routers after a refused reload", n)
	}
	e.WriteHomeAgentConfig(lab.HomeAgentUCI(e.HASock))
	if err := twoends.Ctl(e.HASock, "reload", &reply); err != nil {
		t.Fatal(err)
	}
	if got := e.HABindings(); strings.Join(got, ",") != "1 udp6,2 udp4" {
		t.Fatalf("car1's bindings after reloads: %v", got)
	}
}

// TestControlSocket: status, flows and memstats answer in the shapes of
// package status; an unknown command is an error.
func TestControlSocket(t *testing.T) {
	e := twoends.New(t, `
config policy 'voice'
	list use 'cell'
config rule 'sip'
	option proto 'udp'
	option dest_port '5060'
	option policy 'voice'
`)
	e.Start()
	e.Registered()
	var fl status.HomeAgentFlows
	e.Eventually(2*time.Second, "car1's flows at the home agent", func() bool {
		return twoends.Ctl(e.HASock, "flows", &fl) == nil && len(fl.MobileRouters) == 2 && len(fl.MobileRouters[0].Flows.Flows) > 0
	})
	if fl.Role != status.RoleHomeAgent || fl.MobileRouters[0].Flows.Flows[0].Selector != "udp dport 5060" || fl.MobileRouters[0].Flows.Flows[0].BIDs[0] != 2 {
		t.Fatalf("flows: %+v", fl)
	}
	var mem status.Memory
	if err := twoends.Ctl(e.HASock, "memstats", &mem); err != nil || mem.HeapInuse == 0 {
		t.Fatalf("memstats: %+v %v", mem, err)
	}
	var any map[string]any
	if err := twoends.Ctl(e.HASock, "frobnicate", &any); err == nil {
		t.Fatal("an unknown command was answered")
	}
	s := e.HAStatus()
	if s.Role != status.RoleHomeAgent || s.Address != ha.String() || s.AddressV4 != lab.HA4.String() || s.DataPlane.Device != "nemoha0" {
		t.Fatalf("status: %+v", s)
	}
	b := s.MobileRouters[0].Bindings[1]
	if !b.NAT || b.Outer == "" || b.Since == "" || b.State != status.StateRegistered || b.Lifetime <= 0 {
		t.Fatalf("cellular binding: %+v", b)
	}
}

// TestStopsOnSignal: SIGTERM ends the home agent, which removes its routes.
func TestStopsOnSignal(t *testing.T) {
	e := twoends.New(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.StartHA(ctx)
	e.HASignals <- syscall.SIGTERM
	e.Eventually(2*time.Second, "home agent stopped", func() bool { return e.HASys.Closed() })
}
