package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

const pdRouter = `config router 'me'
	option home_agent '2001:db8:1::1'
	option home_address '2001:db8:1::10'
	option spi '256'
	option key '00112233445566778899aabbccddeeff'
	option reqprefix '56'
	option ip6assign '62'
	list dns '2001:db8::53'
	list dns '2001:db8::54'
	list lan 'lan0'
config uplink 'wifi'
	option device 'wlan0'
	option bid '1'
`

const pdAgent = `config homeagent 'ha'
	option address '2001:db8:1::1'
	option home_prefix '2001:db8:1::/64'
	option lease_file '/tmp/pd.json'
	option pd_valid_lifetime '600'
	option pd_preferred_lifetime '300'

config pd_pool 'fleet'
	option prefix '2001:db8:200::/40'
	option length '56'

config pd_pool 'spare'
	option prefix '2001:db8:300::/48'

config mobile_router 'car1'
	option home_address '2001:db8:1::10'
	option spi '256'
	option key '00112233445566778899aabbccddeeff'
	option pd '1'

config mobile_router 'car2'
	option home_address '2001:db8:1::20'
	option spi '257'
	option key '00112233445566778899aabbccddeeff'
	option pd '1'
	option pd_pool 'spare'

config mobile_router 'car3'
	option home_address '2001:db8:1::30'
	option spi '258'
	option key '00112233445566778899aabbccddeeff'
	list mnp '2001:db8:400::/48'
`

func TestParsePD(t *testing.T) {
	f, err := Parse("/etc/config/nemod", []byte(pdRouter+pdAgent))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Warnings) != 0 {
		t.Fatalf("warnings %v", f.Warnings)
	}
	r := f.Router.PD
	if !r.Enabled || r.ReqPrefix != 56 || r.IP6Assign != 62 || !r.LanRA || r.LeaseFile != DefaultRouterLeaseFile || len(r.DNS) != 2 || r.Release {
		t.Fatalf("router %+v", r)
	}
	h := f.HomeAgent.PD
	if h.LeaseFile != "/tmp/pd.json" || h.Server.IsValid() || len(h.Pools) != 2 || h.Valid != 600*time.Second || h.Preferred != 300*time.Second ||
		h.Pools[0] != (PDPool{Name: "fleet", Prefix: netip.MustParsePrefix("2001:db8:200::/40"), Length: 56, Line: 21}) || h.Pools[1].Length != 56 {
		t.Fatalf("home agent %+v", h)
	}
	routers := f.HomeAgent.PDRouters()
	if len(routers) != 2 || routers[netip.MustParseAddr("2001:db8:1::10")] != "" || routers[netip.MustParseAddr("2001:db8:1::20")] != "spare" {
		t.Fatalf("routers %v", routers)
	}

	auto, err := Parse("x", []byte(strings.Replace(pdRouter, "'56'", "'auto'", 1)))
	if err != nil || auto.Router.PD.ReqPrefix != 0 || !auto.Router.PD.Enabled {
		t.Fatalf("auto: %+v %v", auto.Router.PD, err)
	}
	// Without reqprefix or pd: no delegation, and a home agent without
	// pools or server has no PD at all.
	plain, err := Parse("x", []byte(strings.Replace(pdRouter, "\toption reqprefix '56'\n", "", 1)+
		"config homeagent\n\toption address '2001:db8:1::1'\n\toption home_prefix '2001:db8:1::/64'\n"))
	if err != nil || plain.Router.PD.Enabled || plain.HomeAgent.PD != nil {
		t.Fatalf("plain: %+v %v", plain, err)
	}
	relay, err := Parse("x", []byte("config homeagent\n\toption address '2001:db8:1::1'\n\toption home_prefix '2001:db8:1::/64'\n\toption dhcpv6_server '2001:db8:ffff::547'\n"))
	if err != nil || relay.HomeAgent.PD == nil || relay.HomeAgent.PD.Server != netip.MustParseAddr("2001:db8:ffff::547") {
		t.Fatalf("relay: %+v %v", relay, err)
	}
}

func TestParsePDErrors(t *testing.T) {
	const ha = "config homeagent\n\toption address '2001:db8:1::1'\n\toption home_prefix '2001:db8:1::/64'\n" // lines 1-3
	const mr = "config mobile_router m\n\toption home_address '2001:db8:1::9'\n\toption spi '256'\n\toption key '00112233445566778899aabbccddeeff'\n"
	for name, c := range map[string]struct{ text, line string }{
		"reqprefix":          {strings.Replace(pdRouter, "'56'", "'129'", 1), "x:6:"},
		"dns":                {strings.Replace(pdRouter, "'2001:db8::54'", "'10.0.0.1'", 1), "x:9:"},
		"pd flag":            {strings.Replace(pdRouter, "\tlist lan 'lan0'\n", "\tlist lan 'lan0'\n\toption lan_ra 'maybe'\n", 1), "x:11:"},
		"pool overlaps":      {ha + "config pd_pool p\n\toption prefix '2001:db8::/32'\n", "x:5:"},
		"pool length":        {ha + "config pd_pool p\n\toption prefix '2001:db8:200::/40'\n\toption length '32'\n", "x:6:"},
		"two pools":          {ha + "config pd_pool p\n\toption prefix '2001:db8:200::/40'\nconfig pd_pool q\n\toption prefix '2001:db8:200::/44'\n", "x:7:"},
		"no pool":            {ha + mr + "\toption pd '1'\n", "x:8:"},
		"unknown pool":       {ha + "config pd_pool p\n\toption prefix '2001:db8:200::/40'\n" + mr + "\toption pd '1'\n\toption pd_pool 'q'\n", "x:11:"},
		"both":               {ha + "\toption dhcpv6_server '2001:db8::547'\nconfig pd_pool p\n\toption prefix '2001:db8:200::/40'\n", "x:4:"},
		"lease file":         {ha + "\toption lease_file 'rel/path'\n\toption dhcpv6_server '2001:db8::547'\n", "x:4:"},
		"no prefix":          {ha + "config pd_pool p\n", "x:4:"},
		"lifetimes":          {ha + "\toption dhcpv6_server '2001:db8::547'\n\toption pd_valid_lifetime '60'\n", "x:5:"},
		"no IPv6 home agent": {strings.Replace(pdRouter, "option home_agent '2001:db8:1::1'", "option home_agent_v4 '192.0.2.1'", 1), "x:6:"},
		"pool and mnp":       {ha + "config pd_pool p\n\toption prefix '2001:db8:200::/40'\n" + mr + "\tlist mnp '2001:db8:200::/56'\n", "x:4:"},
	} {
		_, err := Parse("x", []byte(c.text))
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		errs := splitErrors(err)
		if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), c.line) {
			t.Errorf("%s: %v, want one error at %s", name, err, c.line)
		}
	}
}

func TestParsePDWarnings(t *testing.T) {
	const text = "config homeagent\n\toption address '2001:db8:1::1'\n\toption home_prefix '2001:db8:1::/64'\n" +
		"config mobile_router m\n\toption home_address '2001:db8:1::9'\n\toption spi '256'\n\toption key '00112233445566778899aabbccddeeff'\n\toption pd_pool 'p'\n" +
		"config pd_pool p\n\toption prefix '2001:db8:200::/40'\n\toption size '3'\n"
	f, err := Parse("x", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Warnings) != 2 || !strings.HasPrefix(f.Warnings[0], "x:8:") || !strings.HasPrefix(f.Warnings[1], "x:11:") {
		t.Fatalf("warnings %q", f.Warnings)
	}
	// A pool without a home agent section is ignored, and said so.
	f, err = Parse("x", []byte(pdRouter+"config pd_pool p\n\toption prefix '2001:db8:200::/40'\n"))
	if err != nil || len(f.Warnings) != 1 || !strings.HasPrefix(f.Warnings[0], "x:14:") {
		t.Fatalf("%v %q", err, f.Warnings)
	}
}

func TestDiffPD(t *testing.T) {
	old, err := Parse("x", []byte(pdRouter+pdAgent))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(pdRouter+pdAgent, "option reqprefix '56'", "option reqprefix '60'", 1)
	text = strings.Replace(text, "option length '56'", "option length '60'", 1)
	text = strings.Replace(text, "\tlist mnp '2001:db8:400::/48'\n", "\tlist mnp '2001:db8:400::/48'\n\toption pd '1'\n", 1)
	text = strings.Replace(text, "config pd_pool 'spare'\n\toption prefix '2001:db8:300::/48'\n", "", 1)
	text = strings.Replace(text, "\toption pd_pool 'spare'\n", "", 1)
	n, err := Parse("x", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range Diff(old, n) {
		s := c.String()
		if c.Reloadable {
			s += "+"
		}
		got = append(got, s)
	}
	want := "router.reqprefix pd_pool fleet.length pd_pool spare mobile_router car2.pd_pool+ mobile_router car3.pd+"
	if strings.Join(got, " ") != want {
		t.Fatalf("diff %q\nwant %q", strings.Join(got, " "), want)
	}
}

func FuzzParsePD(f *testing.F) {
	f.Add([]byte(pdRouter + pdAgent))
	f.Fuzz(func(t *testing.T, b []byte) {
		pf, err := Parse("x", b)
		if err == nil && (pf == nil || pf.Router != nil && pf.Router.PD == nil) {
			t.Fatal("no PD without an error")
		}
	})
}
