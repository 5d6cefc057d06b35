package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"nemod/status"
)

func TestPrintStatusPD(t *testing.T) {
	r := status.Router{Role: "router", HomeAddress: "2001:db8:ffff:1::100", MNP: []string{"2001:db8:300::/56"},
		PD: &status.RouterPD{State: "bound", Server: "[2001:db8:ffff::1]:547", T1: 7200, T2: 11520, LeaseFile: "/var/lib/nemod/pd-lease.json",
			Prefixes: []status.Lease{{Prefix: "2001:db8:300::/56", Preferred: 14400, Valid: 0xffffffff, ValidUntil: "9999-12-31T00:00:00Z"}}},
		LANs: []status.LAN{{Interface: "lan0", Prefixes: []string{"2001:db8:300::/64"}, Address: []string{"2001:db8:300::1"}, Counters: map[string]uint64{"sent": 4}}}}
	h := status.HomeAgent{Role: "homeagent", PD: &status.HomeAgentPD{Mode: "relay", Server: "[2001:db8:ffff::547]:547", Listen: "[2001:db8:ffff::1]:547"},
		MobileRouters: []status.MobileRouter{{Name: "car1", Leases: []status.Lease{{Prefix: "2001:db8:300::/56", Preferred: 60, Valid: 120}}}}}
	for _, c := range []struct {
		s    any
		want []string
	}{
		{r, []string{"prefix delegation: bound, server [2001:db8:ffff::1]:547, renews in 2h0m0s, rebinds in 3h12m0s",
			"2001:db8:300::/56  4h0m0s     infinite", "lan0  2001:db8:300::/64  2001:db8:300::1  4"}},
		{h, []string{"prefix delegation: relayed to [2001:db8:ffff::547]:547, listening on [2001:db8:ffff::1]:547",
			"car1    2001:db8:300::/56  1m0s       2m0s"}},
	} {
		raw, _ := json.Marshal(c.s)
		var buf bytes.Buffer
		if err := printStatus(&buf, raw); err != nil {
			t.Fatal(err)
		}
		for _, w := range c.want {
			if !strings.Contains(buf.String(), w) {
				t.Errorf("no %q in\n%s", w, buf.String())
			}
		}
	}
}
