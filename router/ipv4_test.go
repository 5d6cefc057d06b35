package router_test

import (
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"nemod/internal/netsim"
	"nemod/internal/twoends"
	"nemod/lab"
	"nemod/router"
)

var (
	cn4  = netip.MustParseAddr("203.0.113.18")
	lan4 = twoends.LAN4Host
)

// ipv4Ends is the two daemons with car1's static IPv4 home address and
// prefix configured at both ends.
func ipv4Ends(t *testing.T, routerV4 string) *twoends.Ends {
	t.Helper()
	e := twoends.New(t, "")
	e.WriteRouterConfig(lab.RouterUCIv4(e.MRSock, "auto", routerV4, ""))
	e.WriteHomeAgentConfig(lab.HomeAgentIPv4(e.HASock, e.Dir, ""))
	e.Start()
	e.Registered()
	return e
}

// TestIPv4StaticRegistration: the router asks for its configured IPv4
// home address and prefix; the home agent grants both and forwards them;
// the router routes them into the tunnel, puts the prefix's first address
// on its first LAN interface with DHCPv4 on, and reports it all; IPv4
// flows both ways over IPv4-in-IPv6 on the Wi-Fi and, once it is lost,
// IPv4 in UDP through the cellular NAT.
func TestIPv4StaticRegistration(t *testing.T) {
	e := ipv4Ends(t, lab.RouterIPv4Static(""))
	e.Eventually(3*time.Second, "IPv4 granted", func() bool {
		v := e.MRIPv4()
		return v != nil && v.HomeAddress == lab.HoA4.String() && len(v.MNP) == 1 && v.MNP[0] == lab.MNP4.String()
	})
	v := e.MRIPv4()
	if len(v.Requests) != 2 || v.Requests[0].Status != 0 || v.Requests[1].Granted != lab.MNP4.String() || v.LANAddress != "10.201.5.1/24" {
		t.Fatalf("router's IPv4 status: %+v", v)
	}
	want := router.LANv4{Interface: "lan0", Address: netip.MustParsePrefix("10.201.5.1/24"), HoA: lab.HoA4,
		Prefixes: []netip.Prefix{lab.MNP4}, DNS: []netip.Addr{lab.DNS4}, DHCP: true,
		LeaseFile: filepath.Join("/var/lib/nemod", "dhcp4-lan0.leases")}
	if got := e.LAN4.Last(); !reflect.DeepEqual(got, want) {
		t.Fatalf("LAN assignment\n got %+v\nwant %+v", got, want)
	}
	if rt := e.MRSys.Routes4(); rt.HoA != lab.HoA4 || !reflect.DeepEqual(rt.MNPs, []netip.Prefix{lab.MNP4}) || !reflect.DeepEqual(rt.LANs, []string{"lan0"}) {
		t.Fatalf("IPv4 routing into the tunnel: %+v", rt)
	}
	car1 := e.HACar1()
	if car1.HomeAddressV4 != lab.HoA4.String() || !reflect.DeepEqual(car1.MNPv4, []string{lab.MNP4.String()}) {
		t.Fatalf("car1 at the home agent: %+v", car1)
	}
	up := netsim.UDP4(lan4, cn4, 4000, 7, 64, 'a', true)
	e.MRTUN().Inject(up)
	if !e.HATUN().Expect(up) {
		t.Fatal("IPv4 up over the Wi-Fi: not delivered")
	}
	down := netsim.UDP4(cn4, lan4, 7, 4000, 64, 'b', true)
	e.HATUN().Inject(down)
	if !e.MRTUN().Expect(down) {
		t.Fatal("IPv4 down over the Wi-Fi: not delivered")
	}
	if b := e.MRStatus().Bindings[0]; b.TxPacketsV4 != 1 || b.RxPacketsV4 != 1 {
		t.Fatalf("Wi-Fi binding's IPv4 counters: %+v", b)
	}
	e.Wifi.SetUp(false)
	e.Eventually(3*time.Second, "only the cellular binding", func() bool { return len(e.HABindings()) == 1 })
	up = netsim.UDP4(lan4, cn4, 4000, 7, 64, 'c', true)
	e.MRTUN().Inject(up)
	if !e.HATUN().Expect(up) {
		t.Fatal("IPv4 up over the cellular NAT: not delivered")
	}
	down = netsim.UDP4(cn4, lan4, 7, 4000, 64, 'd', true)
	e.HATUN().Inject(down)
	if !e.MRTUN().Expect(down) {
		t.Fatal("IPv4 down over the cellular NAT: not delivered")
	}
	if b := e.MRStatus().Bindings[1]; b.TxPacketsV4 != 1 || b.RxPacketsV4 != 1 {
		t.Fatalf("cellular binding's IPv4 counters: %+v", b)
	}
	// A foreign IPv4 source from the LAN is dropped and counted as IPv4.
	e.MRTUN().Inject(netsim.UDP4(netip.MustParseAddr("192.168.7.7"), cn4, 1, 2, 8, 'x', false))
	e.Eventually(2*time.Second, "foreign IPv4 source counted", func() bool {
		return e.MRStatus().DataPlane.DropsV4["foreign_source"] == 1
	})
}

// TestIPv4OnlyMobileNetwork: a router with no IPv6 prefix at either end
// still signals with its IPv6 home address, and carries only IPv4 for its
// LAN; its flow table is IPv4's.
func TestIPv4OnlyMobileNetwork(t *testing.T) {
	e := twoends.New(t, "")
	noMNP := func(s string) string { return strings.Replace(s, "\tlist mnp '2001:db8:100::/56'\n", "", 1) }
	e.WriteRouterConfig(noMNP(lab.RouterUCIv4(e.MRSock, "auto", lab.RouterIPv4Static(e.Dir),
		"config policy 'cellular'\n\tlist use 'cell'\nconfig rule 'dns'\n\toption proto 'udp'\n\toption dest_port '53'\n\toption policy 'cellular'\n")))
	e.WriteHomeAgentConfig(noMNP(lab.HomeAgentIPv4(e.HASock, e.Dir, "")))
	e.Start()
	e.Registered()
	e.Eventually(3*time.Second, "IPv4 granted", func() bool {
		v := e.MRIPv4()
		return v != nil && len(v.MNP) == 1
	})
	if car1 := e.HACar1(); len(car1.MNP) != 0 || len(car1.MNPv4) != 1 {
		t.Fatalf("car1 at the home agent: %+v", car1)
	}
	dns := netsim.UDP4(lan4, cn4, 4000, 53, 20, 'q', false)
	e.MRTUN().Inject(dns)
	if !e.HATUN().Expect(dns) {
		t.Fatal("IPv4 not carried")
	}
	var ff struct {
		Flows []struct {
			Rule, Selector string
			BIDs           []uint16
		}
	}
	if err := twoends.Ctl(e.MRSock, "flows", &ff); err != nil {
		t.Fatal(err)
	}
	if len(ff.Flows) != 1 || ff.Flows[0].Rule != "dns" || !reflect.DeepEqual(ff.Flows[0].BIDs, []uint16{2}) {
		t.Fatalf("flows: %+v", ff.Flows)
	}
	if w, c := e.MRStatus().Bindings[0], e.MRStatus().Bindings[1]; w.TxPacketsV4 != 0 || c.TxPacketsV4 != 1 {
		t.Fatalf("the DNS rule's packet: Wi-Fi %+v, cellular %+v", w.Traffic, c.Traffic)
	}
	// IPv6 from the LAN has no prefix of the mobile network's: foreign.
	e.MRTUN().Inject(netsim.UDP6(lab.LANHost, lab.CN6, 1, 2, 10, 'z'))
	e.Eventually(2*time.Second, "IPv6 dropped", func() bool {
		return e.MRStatus().DataPlane.Drops["foreign_source"] >= 1
	})
}
