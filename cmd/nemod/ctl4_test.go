package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"nemod/status"
)

// The human-readable status shows each role's IPv4: the router's grant,
// LAN and refusals; the home agent's per-router IPv4 and its pool.
func TestPrintStatusIPv4(t *testing.T) {
	r := status.Router{Role: status.RoleRouter, HomeAddress: "2001:db8:ffff:1::100", IPv4: &status.RouterIPv4{
		HomeAddress: "10.199.0.1", MNP: []string{"10.201.5.0/24"}, LANAddress: "10.201.5.1/24",
		DHCP:     &status.DHCPv4Leases{Interface: "lan0", Range: "10.201.5.0/24", Active: 2},
		Requests: []status.IPv4Request{{Requested: "10.201.6.0/24", Prefix: true, Status: 133}},
	}}
	h := status.HomeAgent{Role: status.RoleHomeAgent, PoolV4: &status.PoolV4{Prefix: "10.200.0.0/16", Assigned: 1, Used: 257},
		MobileRouters: []status.MobileRouter{{Name: "car1", HomeAddress: "2001:db8:ffff:1::100", MNP: []string{"2001:db8:100::/56"},
			HomeAddressV4: "10.200.0.1", MNPv4: []string{"10.200.1.0/24"}, Bindings: []status.Binding{{BID: 1, State: "registered"}}}}}
	for _, tc := range []struct {
		v    any
		want []string
	}{
		{r, []string{"IPv4: home address 10.199.0.1, prefixes 10.201.5.0/24, LAN 10.201.5.1/24 (DHCPv4 on lan0: 2 leases)", "IPv4: 10.201.6.0/24 refused by the home agent, status 133"}},
		{h, []string{"2001:db8:100::/56 10.200.0.1 10.200.1.0/24", "IPv4 pool 10.200.0.0/16: 1 routers hold 257 addresses"}},
	} {
		raw, _ := json.Marshal(tc.v)
		var out bytes.Buffer
		if err := printStatus(&out, raw); err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("no %q in\n%s", w, out.String())
			}
		}
	}
}
