package homeagent_test

import (
	"reflect"
	"strings"
	"testing"

	"nemod/internal/twoends"
	"nemod/lab"
	"nemod/status"
)

// TestReloadReply: `ctl reload` takes what a running home agent can
// (max_lifetime, liveness_timeout, a new mobile router) and names what
// waits for a restart (its IPv4 address), which keeps its running value;
// car1 stays registered.
func TestReloadReply(t *testing.T) {
	e := twoends.New(t, "")
	e.Start()
	e.Registered()
	conf := lab.HomeAgentUCI(e.HASock)
	for _, r := range [][2]string{
		{"option max_lifetime '3600'", "option max_lifetime '600'\n\toption liveness_timeout '2s'"},
		{"option address_v4 '198.51.100.1'", "option address_v4 '198.51.100.2'"},
	} {
		if !strings.Contains(conf, r[0]) {
			t.Fatalf("the lab's configuration has no %q", r[0])
		}
		conf = strings.Replace(conf, r[0], r[1], 1)
	}
	conf += "config mobile_router 'car3'\n\toption home_address '2001:db8:ffff:1::300'\n\toption spi '258'\n" +
		"\toption key '0102030405060708090a0b0c0d0e0f10'\n\tlist mnp '2001:db8:300::/56'\n"
	e.WriteHomeAgentConfig(conf)
	var reply status.Reload
	if err := twoends.Ctl(e.HASock, "reload", &reply); err != nil {
		t.Fatal(err)
	}
	want := status.Reload{
		Reloaded:     true,
		Applied:      []string{"homeagent.max_lifetime", "homeagent.liveness_timeout", "mobile_router car3"},
		NeedsRestart: []string{"homeagent.address_v4"},
	}
	if !reflect.DeepEqual(reply, want) {
		t.Fatalf("reply\n got %+v\nwant %+v", reply, want)
	}
	s := e.HAStatus()
	if s.AddressV4 != lab.HA4.String() || len(s.MobileRouters) != 3 {
		t.Fatalf("after the reload: address_v4 %s, %d mobile routers", s.AddressV4, len(s.MobileRouters))
	}
	if got := e.HABindings(); strings.Join(got, ",") != "1 udp6,2 udp4" {
		t.Fatalf("car1's bindings after the reload: %v", got)
	}
}
