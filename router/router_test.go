package router_test

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"nemod/header"
	"nemod/internal/netsim"
	"nemod/internal/twoends"
	"nemod/lab"
	"nemod/status"
	"nemod/tunnel"
)

// The mobile router daemon against a real home agent daemon, in one
// process over netsim's network (package twoends): registration, traffic,
// link changes, silent paths, NAT changes, reload, the control socket and
// shutdown.

func TestRegistersAndCarriesTraffic(t *testing.T) {
	e := twoends.New(t, "")
	e.Start()
	e.Registered()
	if got := e.HABindings(); strings.Join(got, ",") != "1 udp6,2 udp4" {
		t.Fatalf("home agent's bindings: %v", got)
	}
	s := e.MRStatus()
	if s.Role != status.RoleRouter || s.HomeAddress != twoends.HoA.String() || len(s.MNP) != 1 || s.Counters.Accepted < 2 || s.Counters.Sent < 2 {
		t.Fatalf("router status: %+v", s)
	}
	if !s.Bindings[1].NAT || s.Bindings[1].Lifetime <= 0 {
		t.Fatalf("cellular binding: %+v", s.Bindings[1])
	}
	up := netsim.UDP6(twoends.LANHost, twoends.CN, 4000, 7, 64, 'u')
	e.MRTUN().Inject(up)
	if !e.HATUN().Expect(up) {
		t.Fatal("LAN packet did not come out of the home agent")
	}
	down := netsim.UDP6(twoends.CN, twoends.LANHost, 7, 4000, 64, 'd')
	e.HATUN().Inject(down)
	if !e.MRTUN().Expect(down) {
		t.Fatal("correspondent's packet did not reach the LAN")
	}
	if tr := e.MRStatus().Bindings[0]; tr.TxPackets != 1 || tr.RxPackets != 1 {
		t.Fatalf("Wi-Fi binding counters: %+v", tr)
	}
	if e.MRSys.Routes().HoA != twoends.HoA || len(e.MRSys.Routes().LANs) != 1 || e.MRSys.Routes().LANs[0] != lab.MRLANDev {
		t.Fatalf("routing asked of the host: %+v", e.MRSys.Routes())
	}
}

// TestCarrierLossAndReturn: the Wi-Fi binding goes at the home agent the
// moment its carrier does (de-registered through the cellular uplink), and
// comes back with it.
func TestCarrierLossAndReturn(t *testing.T) {
	e := twoends.New(t, "")
	e.Start()
	e.Registered()
	e.Wifi.SetUp(false)
	took := e.Eventually(2*time.Second, "Wi-Fi binding gone at the home agent", func() bool {
		return strings.Join(e.HABindings(), ",") == "2 udp4"
	})
	t.Logf("Wi-Fi binding gone at the home agent %v after the carrier", took)
	if st := e.States(); st != "wifi=down/none cell=registered/udp4" {
		t.Fatalf("router states after the loss: %s", st)
	}
	up := netsim.UDP6(twoends.LANHost, twoends.CN, 4000, 7, 64, 'c')
	e.MRTUN().Inject(up)
	if !e.HATUN().Expect(up) {
		t.Fatal("traffic did not move to the cellular uplink")
	}
	e.Wifi.SetUp(true)
	e.Registered()
}

// TestSilentPathIsFoundByProbes: a black-holed Wi-Fi path (carrier up) is
// declared dead by the probes and registered again once it carries again.
func TestSilentPathIsFoundByProbes(t *testing.T) {
	e := twoends.New(t, "")
	e.Start()
	e.Registered()
	e.Wifi.SetBlackhole(true)
	e.Eventually(3*time.Second, "dead path noticed", func() bool { return e.MRStatus().Counters.DeadPaths > 0 })
	e.Wifi.SetBlackhole(false)
	e.Eventually(10*time.Second, "Wi-Fi registered again", func() bool {
		return e.States() == e.Want
	})
}

// TestNATMappingLossIsRepaired: when the carrier's NAT forgets the
// cellular mapping, the probes find the path dead and the registration
// through the new mapping repairs it.
func TestNATMappingLossIsRepaired(t *testing.T) {
	e := twoends.New(t, "")
	e.Start()
	e.Registered()
	before := e.HAStatus().MobileRouters[0].Bindings[1].Outer
	e.NAT.Reset()
	e.Eventually(10*time.Second, "new NAT mapping registered", func() bool {
		bs := e.HAStatus().MobileRouters[0].Bindings
		return len(bs) == 2 && bs[1].Outer != before
	})
}

// TestFirewallFallsBackToUDP: with protocols 135 and 41 dropped on the
// Wi-Fi path, the router registers it in UDP over IPv6.
func TestFirewallFallsBackToUDP(t *testing.T) {
	e := twoends.New(t, "")
	e.Wifi.Block(header.ProtoMH, header.ProtoIPv6)
	e.Start()
	e.Eventually(10*time.Second, "Wi-Fi registered in UDP", func() bool {
		return e.States() == "wifi=registered/udp6 cell=registered/udp4"
	})
	up := netsim.UDP6(twoends.LANHost, twoends.CN, 4000, 7, 64, 'f')
	e.MRTUN().Inject(up)
	if !e.HATUN().Expect(up) {
		t.Fatal("no traffic over UDP/IPv6")
	}
}

const voice = `
config policy 'voice'
	list use 'cell'
	list use 'wifi'
config rule 'sip'
	option proto 'udp'
	option dest_port '5060'
	option policy 'voice'
`

// TestReloadChangesPolicy: SIGHUP and `ctl reload` take a new flow policy
// without touching the registrations; a bad file is refused and the
// running policy stays.
func TestReloadChangesPolicy(t *testing.T) {
	e := twoends.New(t, "")
	e.Start()
	e.Registered()
	var fl status.RouterFlows
	if err := twoends.Ctl(e.MRSock, "flows", &fl); err != nil || len(fl.Flows.Flows) != 0 {
		t.Fatalf("flows before: %+v %v", fl, err)
	}
	e.WriteRouterConfig(lab.RouterUCI(e.MRSock, voice))
	e.MRSignals <- syscall.SIGHUP
	e.Eventually(2*time.Second, "policy after SIGHUP", func() bool {
		var fl status.RouterFlows
		return twoends.Ctl(e.MRSock, "flows", &fl) == nil && len(fl.Flows.Flows) > 0 && fl.Flows.Flows[0].Rule == "sip"
	})
	sip := netsim.UDP6(twoends.LANHost, twoends.CN, 4000, 5060, 64, 's')
	e.MRTUN().Inject(sip)
	if !e.HATUN().Expect(sip) {
		t.Fatal("SIP packet lost")
	}
	if c := e.MRStatus().Bindings[1]; c.TxPackets != 1 {
		t.Fatalf("SIP not on the cellular binding: %+v", c)
	}
	e.WriteRouterConfig("config router 'main'\n\toption home_address 'nonsense'\n")
	var reply map[string]any
	if err := twoends.Ctl(e.MRSock, "reload", &reply); err == nil {
		t.Fatal("a bad configuration was reloaded")
	}
	e.WriteRouterConfig(lab.RouterUCI(e.MRSock, ""))
	if err := twoends.Ctl(e.MRSock, "reload", &reply); err != nil {
		t.Fatal(err)
	}
	if st := e.States(); st != e.Want {
		t.Fatalf("registrations after reloads: %s", st)
	}
}

// TestMonitorRestarts: an interface monitor that gives up is replaced, and
// link changes are followed again.
func TestMonitorRestarts(t *testing.T) {
	e := twoends.New(t, "")
	e.Start()
	e.Registered()
	e.StopMonitor()
	e.Eventually(2*time.Second, "monitor restarted", func() bool { return e.MonitorStarts() == 2 })
	e.Wifi.SetUp(false)
	e.Eventually(2*time.Second, "carrier loss seen by the new monitor", func() bool {
		return strings.HasPrefix(e.States(), "wifi=down")
	})
}

// TestShutdownDeregisters: SIGTERM de-registers every binding before the
// daemon exits, and the home agent stops forwarding to it.
func TestShutdownDeregisters(t *testing.T) {
	e := twoends.New(t, "")
	e.Start()
	e.Registered()
	if err := e.StopMR(); err != nil {
		t.Fatal(err)
	}
	if got := e.HABindings(); len(got) != 0 {
		t.Fatalf("bindings left at the home agent: %v", got)
	}
	if !e.MRSys.Closed() {
		t.Fatal("the router left its routing behind")
	}
	down := netsim.UDP6(twoends.CN, twoends.LANHost, 7, 4000, 64, 'x')
	e.HATUN().Inject(down)
	e.Eventually(2*time.Second, "no-binding drop", func() bool {
		return e.HAStatus().DataPlane.Drops[tunnel.DropNoBinding.String()] == 1
	})
}

// TestControlSocket: every command answers; an unknown one is an error.
func TestControlSocket(t *testing.T) {
	e := twoends.New(t, "")
	e.Start()
	e.Registered()
	var mem status.Memory
	if err := twoends.Ctl(e.MRSock, "memstats", &mem); err != nil || mem.HeapInuse == 0 {
		t.Fatalf("memstats: %+v %v", mem, err)
	}
	var any map[string]any
	if err := twoends.Ctl(e.MRSock, "launch-missiles", &any); err == nil {
		t.Fatal("an unknown command was answered")
	}
	s := e.MRStatus()
	if s.DataPlane.Device != "nemo0" || s.Runtime.Goroutines == 0 || s.Uptime < 0 {
		t.Fatalf("status: %+v", s)
	}
}
