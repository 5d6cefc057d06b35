package config

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// TestGoodRouterIPv4 decodes every IPv4 option of a router, and derives
// the home agent's signalling address when only home_agent_v4 is given.
func TestGoodRouterIPv4(t *testing.T) {
	r := mustLoad(t, "testdata/good/router_ipv4.uci").Router
	on := true
	if r.HomeAddressV4 != netip.IPv4Unspecified() || r.MNPsV4 != nil || r.MNPv4Length != 24 ||
		!reflect.DeepEqual(r.LANDHCP4, &on) || r.StateDir != "/tmp/nemod" ||
		!reflect.DeepEqual(r.DNSv4, []netip.Addr{addr("192.0.2.53"), addr("192.0.2.54")}) {
		t.Errorf("IPv4 settings: %+v", r)
	}
	if !r.HasIPv4() || r.HomeAgent.IsValid() {
		t.Errorf("HasIPv4 %v, home agent %s", r.HasIPv4(), r.HomeAgent)
	}
	if got := r.SignallingHomeAgent(); got != addr("2001:db8:ffff:1:fdff:ffff:ffff:fffe") {
		t.Errorf("signalling home agent %s", got)
	}
	if len(r.Rules) != 1 || r.Rules[0].DestIP != prefix("192.0.2.53/32") {
		t.Errorf("rules %+v", r.Rules)
	}
	g := mustLoad(t, "testdata/good/router.uci").Router
	if g.HasIPv4() || g.SignallingHomeAgent() != g.HomeAgent || g.LANDHCP4 != nil {
		t.Errorf("an IPv6-only router: %+v", g)
	}
}

// TestGoodHomeAgentIPv4: a home agent without an IPv6 address answers on
// its home prefix's Home-Agents anycast address.
func TestGoodHomeAgentIPv4(t *testing.T) {
	h := mustLoad(t, "testdata/good/homeagent_ipv4.uci").HomeAgent
	if !h.IPv4Only || h.Address != addr("2001:db8:ffff:1:fdff:ffff:ffff:fffe") || h.PoolV4 != prefix("10.200.0.0/16") ||
		h.LeaseV4 != 2*time.Hour || !h.MasqueradeV4 || h.StateDir != "/var/lib/nemod-ha" {
		t.Errorf("home agent: %+v", h)
	}
	if m := h.MobileRouters[0]; m.HomeAddressV4.IsValid() || m.MNPsV4 != nil {
		t.Errorf("car1 claims %v %v", m.HomeAddressV4, m.MNPsV4)
	}
	if m := h.MobileRouters[1]; m.HomeAddressV4 != addr("10.199.0.2") ||
		!reflect.DeepEqual(m.MNPsV4, []netip.Prefix{prefix("10.201.5.0/24"), prefix("10.201.6.0/25")}) {
		t.Errorf("car2 claims %v %v", m.HomeAddressV4, m.MNPsV4)
	}
}

func TestHomeAgentsAnycast(t *testing.T) {
	// RFC 2526 §3: the top 128 interface identifiers, u/l bit clear; the
	// Home-Agents one is 0x7e.
	if got := HomeAgentsAnycast(prefix("2001:db8:1:2::/64")); got != addr("2001:db8:1:2:fdff:ffff:ffff:fffe") {
		t.Fatal(got)
	}
}
