package homeagent_test

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"nemod/binding"
	"nemod/homeagent"
	"nemod/internal/netsim"
	"nemod/internal/twoends"
	"nemod/lab"
	"nemod/nemo"
)

var cn4 = netip.MustParseAddr("203.0.113.18")

// dynamicEnds is the two daemons with a router asking for an IPv4 home
// address and a /24, and a home agent with a pool and no static IPv4 for
// it; extraHA goes into the homeagent section.
func dynamicEnds(t *testing.T, extraHA string, saved []binding.Assignment4) *twoends.Ends {
	t.Helper()
	e := twoends.New(t, "")
	e.WriteRouterConfig(lab.RouterUCIv4(e.MRSock, "auto", lab.RouterIPv4Dynamic(e.Dir), ""))
	e.WriteHomeAgentConfig(lab.HomeAgentUCIv4(e.HASock, "\toption pool_v4 '10.200.0.0/16'\n\toption state_dir '"+e.Dir+"'\n"+extraHA, ""))
	if saved != nil {
		writePool(t, e, saved)
	}
	e.Start()
	e.Registered()
	return e
}

func poolFile(e *twoends.Ends) string { return filepath.Join(e.Dir, homeagent.PoolFile) }

func writePool(t *testing.T, e *twoends.Ends, as []binding.Assignment4) {
	b, err := json.Marshal(as)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(poolFile(e), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func readPool(t *testing.T, e *twoends.Ends) []binding.Assignment4 {
	var as []binding.Assignment4
	b, err := os.ReadFile(poolFile(e))
	if err != nil || json.Unmarshal(b, &as) != nil {
		t.Fatalf("state file: %v\n%s", err, b)
	}
	return as
}

func granted(e *twoends.Ends) (string, []string) {
	v := e.MRIPv4()
	if v == nil {
		return "", nil
	}
	return v.HomeAddress, v.MNP
}

// TestIPv4DynamicAssignmentSurvivesRestarts: the pool gives the router an
// IPv4 home address and a /24 (car2, in the state file from an earlier
// run, holds the first ones), which both ends show and the home agent
// routes; the assignment is in the state file, and after the home agent
// restarts (car2 gone meanwhile, so that a fresh assignment would give the
// first ones), and then the router (which forgets it and asks anew), the
// router gets the same again.
func TestIPv4DynamicAssignmentSurvivesRestarts(t *testing.T) {
	car2 := binding.Assignment4{HoA: netip.MustParseAddr("2001:db8:ffff:1::200"), Address: netip.MustParseAddr("10.200.0.1"),
		Prefixes: []netip.Prefix{netip.MustParsePrefix("10.200.1.0/24")}, Expires: time.Now().Add(-time.Hour)}
	e := dynamicEnds(t, "\toption lease_v4 '300'\n", []binding.Assignment4{car2})
	e.Eventually(3*time.Second, "IPv4 assigned", func() bool { h, p := granted(e); return h != "" && len(p) == 1 })
	hoa4, mnp4 := granted(e)
	if hoa4 != "10.200.0.2" || mnp4[0] != "10.200.2.0/24" {
		t.Fatalf("assigned %s %v", hoa4, mnp4)
	}
	car1 := e.HACar1()
	if car1.HomeAddressV4 != hoa4 || !reflect.DeepEqual(car1.MNPv4, mnp4) {
		t.Fatalf("car1 at the home agent: %+v", car1)
	}
	// The lease caps the lifetime granted (RFC 5555 §2.5): 300 s, not 600.
	for _, b := range e.MRStatus().Bindings {
		if b.Lifetime > 300 || b.Lifetime < 290 {
			t.Fatalf("binding lifetime %d s with a 300 s lease", b.Lifetime)
		}
	}
	if p := e.HAStatus().PoolV4; p == nil || p.Prefix != "10.200.0.0/16" || p.Assigned != 2 || p.Used != 2*257 {
		t.Fatalf("pool status %+v", p)
	}
	// Routed into the tunnel: what car1 registered, not car2's assignment
	// (car2 is not registered).
	routed := e.HASys.Prefixes()
	for _, want := range []string{"10.200.0.2/32", "10.200.2.0/24"} {
		if !contains(routed, want) {
			t.Fatalf("%s not routed into the tunnel: %v", want, routed)
		}
	}
	for _, not := range []string{"10.200.0.1/32", "10.200.1.0/24"} {
		if contains(routed, not) {
			t.Fatalf("%s of an unregistered router routed into the tunnel: %v", not, routed)
		}
	}
	saved := readPool(t, e)
	if len(saved) != 2 || saved[0].HoA != twoends.HoA || saved[0].Address.String() != hoa4 || len(saved[0].Prefixes) != 1 ||
		saved[0].Prefixes[0].String() != mnp4[0] || !saved[0].Expires.After(time.Now().Add(250*time.Second)) {
		t.Fatalf("state file: %+v", saved)
	}
	e.RestartHA(func() { writePool(t, e, saved[:1]) })
	e.Eventually(5*time.Second, "car1 registered again at the restarted home agent", func() bool { return len(e.HABindings()) == 2 })
	if h, p := granted(e); h != hoa4 || !reflect.DeepEqual(p, mnp4) {
		t.Fatalf("after the home agent's restart: %s %v", h, p)
	}
	e.RestartMR()
	e.Registered()
	e.Eventually(3*time.Second, "IPv4 assigned after the router's restart", func() bool { h, _ := granted(e); return h != "" })
	if h, p := granted(e); h != hoa4 || !reflect.DeepEqual(p, mnp4) {
		t.Fatalf("after the router's restart: %s %v", h, p)
	}
	if a := e.LAN4.Last(); a.Address.String() != "10.200.2.1/24" || !a.DHCP {
		t.Fatalf("LAN assignment %+v", a)
	}
	up := netsim.UDP4(netip.MustParseAddr("10.200.2.50"), cn4, 1, 2, 30, 'u', false)
	e.MRTUN().Inject(up)
	if !e.HATUN().Expect(up) {
		t.Fatal("IPv4 from the assigned prefix not carried")
	}
}

func contains(ps []netip.Prefix, s string) bool {
	for _, p := range ps {
		if p.String() == s {
			return true
		}
	}
	return false
}

// TestIPv4ClaimRefused: a static IPv4 prefix the router may not claim is
// refused with RFC 5555's 133 and counted at both ends; the IPv6
// registration goes on, and the router has no IPv4.
func TestIPv4ClaimRefused(t *testing.T) {
	e := twoends.New(t, "")
	e.WriteRouterConfig(lab.RouterUCIv4(e.MRSock, "auto", "\tlist mnp_v4 '10.201.6.0/24'\n\toption state_dir '"+e.Dir+"'\n", ""))
	e.WriteHomeAgentConfig(lab.HomeAgentIPv4(e.HASock, e.Dir, ""))
	e.Start()
	e.Registered()
	e.Eventually(3*time.Second, "refusal counted", func() bool {
		return e.MRStatus().Counters.Rejected["ipv4_status_133"] >= 1 && e.HAStatus().Counters.Rejected["ipv4_refused"] >= 1
	})
	v := e.MRIPv4()
	if v.HomeAddress != "" || len(v.MNP) != 0 || len(v.Requests) != 1 || v.Requests[0].Status != nemo.IPv4StatusPrefixUnauth || v.Requests[0].Granted != "" {
		t.Fatalf("router's IPv4: %+v", v)
	}
	if car1 := e.HACar1(); car1.HomeAddressV4 != "" || len(car1.MNPv4) != 0 || len(car1.Bindings) != 2 {
		t.Fatalf("car1 at the home agent: %+v", car1)
	}
	p := netsim.UDP4(netip.MustParseAddr("10.201.6.10"), cn4, 1, 2, 10, 'r', false)
	e.MRTUN().Inject(p)
	if !e.HATUN().Quiet(p, 200*time.Millisecond) {
		t.Fatal("IPv4 from a refused prefix was carried")
	}
}

// TestHomeAgentWithOnlyIPv4: a home agent configured with address_v4
// alone answers on its home prefix's Home-Agents anycast address; a router
// given only home_agent_v4 registers both uplinks in UDP over IPv4 and its
// IPv4 and IPv6 both flow; masquerade_v4 NATs its prefixes to the home
// agent's address.
func TestHomeAgentWithOnlyIPv4(t *testing.T) {
	e := twoends.New(t, "")
	e.WriteRouterConfig(strings.Replace(lab.RouterUCIv4(e.MRSock, "auto", lab.RouterIPv4Static(e.Dir), ""), "\toption home_agent '2001:db8:ffff::1'\n", "", 1))
	e.WriteHomeAgentConfig(strings.Replace(lab.HomeAgentIPv4(e.HASock, e.Dir, "\toption masquerade_v4 '1'\n"), "\toption address '2001:db8:ffff::1'\n", "", 1))
	e.Start()
	e.Eventually(5*time.Second, "both uplinks registered over IPv4", func() bool {
		return e.States() == "wifi=registered/udp4 cell=registered/udp4"
	})
	if s := e.HAStatus(); s.Address != "2001:db8:ffff:1:fdff:ffff:ffff:fffe" {
		t.Fatalf("home agent's signalling address %s", s.Address)
	}
	for _, up := range [][]byte{netsim.UDP4(twoends.LAN4Host, cn4, 1, 2, 30, '4', false), netsim.UDP6(lab.LANHost, lab.CN6, 1, 2, 30, '6')} {
		e.MRTUN().Inject(up)
		if !e.HATUN().Expect(up) {
			t.Fatalf("IPv%d not carried", up[0]>>4)
		}
	}
	masq, to := e.HASys.Masqueraded()
	if to != lab.HA4 || !contains(masq, "10.200.0.0/16") || !contains(masq, "10.201.5.0/24") || !contains(masq, "10.199.0.1/32") {
		t.Fatalf("masquerade %v to %s", masq, to)
	}
}
