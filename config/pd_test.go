package config

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

const pdFile = `
config router 'me'
	option home_address '2001:db8:1::10'
	option pd '1'
	option reqprefix '56'
	option ip6assign '62'
	list dns '2001:db8::53'
	list dns '2001:db8::54'

config homeagent 'ha'
	option address '2001:db8:1::1'
	option home_prefix '2001:db8:1::/64'
	option lease_file '/tmp/pd.json'

config pd_pool 'fleet'
	option prefix '2001:db8:200::/40'
	option length '56'

config pd_pool 'spare'
	option prefix '2001:db8:300::/48'

config mobile_router 'car1'
	option home_address '2001:db8:1::10'
	option pd '1'

config mobile_router 'car2'
	option home_address '2001:db8:1::20'
	option pd '1'
	option pd_pool 'spare'

config mobile_router 'car3'
	option home_address '2001:db8:1::30'
`

func TestParsePD(t *testing.T) {
	pd, err := ParsePD("/etc/config/nemod", []byte(pdFile))
	if err != nil {
		t.Fatal(err)
	}
	r := pd.Router
	if !r.Enabled || r.ReqPrefix != 56 || r.IP6Assign != 62 || !r.LanRA || r.LeaseFile != DefaultRouterLeaseFile || len(r.DNS) != 2 {
		t.Fatalf("router %+v", r)
	}
	h := pd.HomeAgent
	if h.LeaseFile != "/tmp/pd.json" || h.Server.IsValid() || len(h.Pools) != 2 ||
		h.Pools[0] != (PDPool{Name: "fleet", Prefix: netip.MustParsePrefix("2001:db8:200::/40"), Length: 56, Line: 15}) || h.Pools[1].Length != 56 {
		t.Fatalf("home agent %+v", h)
	}
	if len(h.Routers) != 2 || h.Routers[netip.MustParseAddr("2001:db8:1::10")] != "" || h.Routers[netip.MustParseAddr("2001:db8:1::20")] != "spare" {
		t.Fatalf("routers %v", h.Routers)
	}
	auto, err := ParsePD("x", []byte("config router\n\toption reqprefix 'auto'\n"))
	if err != nil || auto.Router.ReqPrefix != 0 || auto.Router.Enabled || auto.HomeAgent != nil {
		t.Fatalf("auto: %+v %v", auto, err)
	}
}

func TestParsePDErrors(t *testing.T) {
	for name, c := range map[string]struct{ text, line string }{
		"reqprefix":     {"config router\n\toption reqprefix '129'\n", "x:2:"},
		"dns":           {"config router\n\tlist dns '10.0.0.1'\n", "x:2:"},
		"pd flag":       {"config router\n\toption pd 'maybe'\n", "x:2:"},
		"pool overlaps": {"config homeagent\n\toption home_prefix '2001:db8::/32'\nconfig pd_pool p\n\toption prefix '2001:db8:200::/40'\n", "x:4:"},
		"pool length":   {"config homeagent\nconfig pd_pool p\n\toption prefix '2001:db8:200::/40'\n\toption length '32'\n", "x:4:"},
		"two pools":     {"config homeagent\nconfig pd_pool p\n\toption prefix '2001:db8:200::/40'\nconfig pd_pool q\n\toption prefix '2001:db8:200::/44'\n", "x:5:"},
		"no pool":       {"config homeagent\nconfig mobile_router m\n\toption home_address '2001:db8::1'\n\toption pd '1'\n", "x:2:"},
		"unknown pool":  {"config homeagent\nconfig pd_pool p\n\toption prefix '2001:db8:200::/40'\nconfig mobile_router m\n\toption home_address '2001:db8::1'\n\toption pd '1'\n\toption pd_pool 'q'\n", "x:7:"},
		"both":          {"config homeagent\n\toption dhcpv6_server '2001:db8::547'\nconfig pd_pool p\n\toption prefix '2001:db8:200::/40'\n", "x:2:"},
		"lease file":    {"config homeagent\n\toption lease_file 'rel/path'\n", "x:2:"},
		"no prefix":     {"config homeagent\nconfig pd_pool p\n", "x:2:"},
	} {
		_, err := ParsePD("x", []byte(c.text))
		var e *Error
		if !errors.As(err, &e) || !strings.HasPrefix(err.Error(), c.line) {
			t.Errorf("%s: %v, want an error at %s", name, err, c.line)
		}
	}
}

func FuzzParsePD(f *testing.F) {
	f.Add([]byte(pdFile))
	f.Fuzz(func(t *testing.T, b []byte) {
		pd, err := ParsePD("x", b)
		if err == nil && pd == nil {
			t.Fatal("nil without an error")
		}
	})
}
