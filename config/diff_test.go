package config

import (
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"

	"nemod/nemo"
)

// edit returns the good file at path with each old string replaced by the
// new one after it, parsed.
func edit(t *testing.T, path string, pairs ...string) *File {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("%s has no %q", path, pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	f, err := parse(path, []byte(s), memFiles(map[string]string{
		"testdata/good/same.key": "00112233445566778899aabbccddeeff\n",
	}))
	if err != nil {
		t.Fatalf("%v\n%s", err, s)
	}
	return f
}

const (
	routerFile = "testdata/good/router.uci"
	haFile     = "testdata/good/homeagent.uci"
)

func TestDiffRouter(t *testing.T) {
	base := edit(t, routerFile)
	for _, tc := range []struct {
		name  string
		pairs []string
		want  []Change
	}{
		{"nothing", nil, nil},
		{"lifetime", []string{"option lifetime '600'", "option lifetime '300'"},
			[]Change{{Section: "router", Option: "lifetime", Line: 1, Reloadable: true}}},
		{"home address and prefix",
			[]string{"option home_address '2001:db8:ffff:1::100'", "option home_address '2001:db8:ffff:1::200'",
				"list mnp '2001:db8:100::/56'", "list mnp '2001:db8:100::/56'\n\tlist mnp '2001:db8:300::/56'"},
			[]Change{
				{Section: "router", Option: "home_address", Line: 1},
				{Section: "router", Option: "mnp", Line: 1},
			}},
		// The same key from a key file instead of the option: no change.
		{"same key, written another way",
			[]string{"option key '00112233445566778899aabbccddeeff'", "option key_file 'same.key'"}, nil},
		{"new key", []string{"option key '00112233445566778899aabbccddeeff'", "option key '00112233445566778899aabbccddeefe'"},
			[]Change{{Section: "router", Option: "key", Line: 1}}},
		// The section's name is the NAI when there is no option nai.
		{"NAI from the section name", []string{"config router 'main'", "config router 'car'"},
			[]Change{{Section: "router", Option: "nai", Line: 1}}},
		{"default policy", []string{"option control_socket '/var/run/nemod.sock'", "option control_socket '/run/n.sock'\n\toption default_policy 'voice'"},
			[]Change{
				{Section: "router", Option: "control_socket", Line: 1},
				{Section: "router", Option: "default_policy", Line: 1, Reloadable: true},
			}},
		{"uplink options",
			[]string{"option device 'wlan0'", "option device 'wlan1'\n\toption probe_interval '200ms'\n\toption priority '5'",
				"option bid '2'", "option bid '3'\n\toption encap 'udp'\n\toption probe_failures '4'"},
			[]Change{
				{Section: "uplink wifi", Option: "device", Line: 11},
				{Section: "uplink wifi", Option: "priority", Line: 11},
				{Section: "uplink wifi", Option: "probe_interval", Line: 11, Reloadable: true},
				{Section: "uplink cell", Option: "bid", Line: 17},
				{Section: "uplink cell", Option: "encap", Line: 17},
				{Section: "uplink cell", Option: "probe_failures", Line: 17, Reloadable: true},
			}},
		{"uplink added", []string{"config policy 'voice'", "config uplink 'sat'\n\toption device 'sat0'\n\toption bid '3'\nconfig policy 'voice'"},
			[]Change{{Section: "uplink sat", Line: 18}}},
		// A removed section is at its line in the old file.
		{"uplink removed",
			[]string{"config uplink 'cell'\n\toption device 'wwan0'\n\toption bid '2'\n", "",
				"list use 'cell'\n\tlist use 'wifi'", "list use 'wifi'",
				"list use 'wifi'\n\tlist use 'cell'", "list use 'wifi'",
				"list use 'cell'\n\tlist use 'wifi'\n\toption mode 'duplicate'", "list use 'wifi'"},
			[]Change{
				{Section: "uplink cell", Line: 15},
				{Section: "policy voice", Option: "use", Line: 15, Reloadable: true},
				{Section: "policy wifi_first", Option: "use", Line: 17, Reloadable: true},
				{Section: "policy control", Option: "use", Line: 19, Reloadable: true},
				{Section: "policy control", Option: "mode", Line: 19, Reloadable: true},
			}},
		{"policy added and rule changed",
			[]string{"config rule 'sip'", "config policy 'cell_only'\n\tlist use 'cell'\nconfig rule 'sip'",
				"option dest_port '5060-5061'\n\toption policy 'voice'", "option dest_port '5060'\n\toption policy 'cell_only'"},
			[]Change{
				{Section: "policy cell_only", Line: 28, Reloadable: true},
				{Section: "rule sip", Option: "dest_port", Line: 30, Reloadable: true},
				{Section: "rule sip", Option: "policy", Line: 30, Reloadable: true},
			}},
		// Rules match in file order: swapping two moves both.
		{"rules swapped",
			[]string{"config rule 'video'\n\toption dest_ip '2001:db8:c::/48'\n\toption proto 'tcp'\n\toption policy 'wifi_first'\n", "",
				"config rule 'sip'", "config rule 'video'\n\toption dest_ip '2001:db8:c::/48'\n\toption proto 'tcp'\n\toption policy 'wifi_first'\nconfig rule 'sip'"},
			[]Change{
				{Section: "rule video", Line: 28, Reloadable: true},
				{Section: "rule sip", Line: 32, Reloadable: true},
			}},
		// The router's IPv4 is set up at start.
		{"IPv4", []string{"list lan 'lan0'", "list lan 'lan0'\n\toption home_address_v4 '0.0.0.0'\n\toption mnp_v4_length '24'\n\toption lan_dhcp4 '0'"},
			[]Change{
				{Section: "router", Option: "home_address_v4", Line: 1},
				{Section: "router", Option: "mnp_v4_length", Line: 1},
				{Section: "router", Option: "lan_dhcp4", Line: 1},
			}},
		{"rule removed",
			[]string{"config rule 'roadside'\n\toption dest_ip '2001:db8:5::/48'\n\toption policy 'direct'\n", ""},
			[]Change{{Section: "rule roadside", Line: 36, Reloadable: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Diff(base, edit(t, routerFile, tc.pairs...))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("changes\n got %s\nwant %s", changes(got), changes(tc.want))
			}
		})
	}
}

func TestDiffHomeAgent(t *testing.T) {
	base := edit(t, haFile)
	const car2 = "config mobile_router 'car2'\n\toption home_address '2001:db8:ffff:1::200'\n\toption spi '257'\n\toption key '00112233445566778899aabbccddeeff'\n"
	for _, tc := range []struct {
		name  string
		pairs []string
		want  []Change
	}{
		{"nothing", nil, nil},
		{"limits",
			[]string{"option max_lifetime '3600'", "option max_lifetime '600'\n\toption replay_window '10'\n\toption liveness_timeout '2s'"},
			[]Change{
				{Section: "homeagent", Option: "max_lifetime", Line: 1, Reloadable: true},
				{Section: "homeagent", Option: "replay_window", Line: 1, Reloadable: true},
				{Section: "homeagent", Option: "liveness_timeout", Line: 1, Reloadable: true},
			}},
		{"addresses", []string{"option address_v4 '198.51.100.1'", "option address_v4 '198.51.100.2'",
			"option control_socket '/var/run/nemod-ha.sock'", "option control_socket '/run/ha.sock'"},
			[]Change{
				{Section: "homeagent", Option: "address_v4", Line: 1},
				{Section: "homeagent", Option: "control_socket", Line: 1},
			}},
		{"mobile router changed and added",
			[]string{"option key '00112233445566778899aabbccddeeff'", "option key '00112233445566778899aabbccddeefe'\n\toption nai 'car1@fleet'",
				"list mnp '2001:db8:100::/56'", "list mnp '2001:db8:100::/48'\n" + car2},
			[]Change{
				{Section: "mobile_router car1", Option: "key", Line: 7, Reloadable: true},
				{Section: "mobile_router car1", Option: "nai", Line: 7, Reloadable: true},
				{Section: "mobile_router car1", Option: "mnp", Line: 7, Reloadable: true},
				{Section: "mobile_router car2", Line: 13, Reloadable: true},
			}},
		// IPv4 (RFC 5555): masquerading and the routers' static claims are
		// taken running; the pool waits for a restart.
		{"IPv4",
			[]string{"option max_lifetime '3600'", "option max_lifetime '3600'\n\toption masquerade_v4 '1'\n\toption pool_v4 '10.200.0.0/16'",
				"list mnp '2001:db8:100::/56'", "list mnp '2001:db8:100::/56'\n\toption home_address_v4 '10.199.0.1'\n\tlist mnp_v4 '10.201.5.0/24'"},
			[]Change{
				{Section: "homeagent", Option: "pool_v4", Line: 1},
				{Section: "homeagent", Option: "masquerade_v4", Line: 1, Reloadable: true},
				{Section: "mobile_router car1", Option: "home_address_v4", Line: 9, Reloadable: true},
				{Section: "mobile_router car1", Option: "mnp_v4", Line: 9, Reloadable: true},
			}},
		{"mobile router removed",
			[]string{"config mobile_router 'car1'", car2 + "config mobile_router 'car9'"},
			[]Change{
				{Section: "mobile_router car2", Line: 7, Reloadable: true},
				{Section: "mobile_router car9", Line: 11, Reloadable: true},
				{Section: "mobile_router car1", Line: 7, Reloadable: true},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Diff(base, edit(t, haFile, tc.pairs...))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("changes\n got %s\nwant %s", changes(got), changes(tc.want))
			}
		})
	}
}

// A role appearing or going is one change, which no daemon takes running.
func TestDiffRoles(t *testing.T) {
	r, h := edit(t, routerFile), edit(t, haFile)
	want := []Change{{Section: "router", Line: 1}, {Section: "homeagent", Line: 1}}
	if got := Diff(r, h); !reflect.DeepEqual(got, want) {
		t.Errorf("router to home agent: %+v", got)
	}
	if got := Diff(nil, r); !reflect.DeepEqual(got, want[:1]) {
		t.Errorf("from nothing: %+v", got)
	}
	both := &File{Router: r.Router, HomeAgent: h.HomeAgent}
	if got := Diff(both, both); got != nil {
		t.Errorf("same file: %+v", got)
	}
	if got := (Change{Section: "uplink wifi", Option: "device"}).String(); got != "uplink wifi.device" {
		t.Errorf("String %q", got)
	}
	if got := (Change{Section: "uplink sat"}).String(); got != "uplink sat" {
		t.Errorf("String %q", got)
	}
}

// The table of reloadable options names only options Diff reports: a
// misspelt entry would leave an option needing a restart it does not need.
func TestReloadableTable(t *testing.T) {
	if !Reloadable("router", "lifetime") || Reloadable("router", "home_address") || Reloadable("uplink", "") ||
		!Reloadable("mobile_router", "") || Reloadable("homeagent", "address") || Reloadable("nonsense", "x") {
		t.Error("table")
	}
	// Two files that differ in every option there is.
	r, h := edit(t, routerFile).Router, edit(t, haFile).HomeAgent
	h.PD = &HomeAgentPD{Server: addr("2001:db8::547"), LeaseFile: "/a", Pools: []PDPool{{Name: "p", Prefix: prefix("2001:db8:200::/40"), Length: 56}}}
	nr, nh := *r, *h
	nr.PD = &RouterPD{Enabled: true, ReqPrefix: 56, LeaseFile: "/x", DNS: []netip.Addr{addr("2001:db8::53")}, LanRA: !r.PD.LanRA, IP6Assign: 60, Release: true}
	nh.PD = &HomeAgentPD{LeaseFile: "/x", Preferred: 1, Valid: 1, Pools: []PDPool{{Name: "p", Prefix: prefix("2001:db8:300::/40"), Length: 60}, {Name: "new"}}}
	a := addr("2001:db8:9::9")
	nr.HomeAgent, nr.HomeAgentV4, nr.HomeAddress, nr.MNPs, nr.LAN = a, addr("192.0.2.9"), a, nil, nil
	nr.HomeAgents, nr.HATimeout = []HomeAgentAddr{{Address: a}}, 1
	h.Cluster = &Cluster{Endpoints: []string{"http://[::1]:2379"}, Node: "a", Instances: []Instance{{Address: a}}}
	nh.Cluster = &Cluster{Endpoints: []string{"http://[::1]:2380"}, Node: "b", TLSCA: "/c", TLSCert: "/c", TLSKey: "/k",
		LeaseTTL: 1, Prefix: "/x", SwitchRate: 2, MaxTxnOps: 9, Instances: []Instance{{Address: a}, {Address: addr("2001:db8:9::8")}}}
	nr.SPI, nr.Key, nr.NAI, nr.Lifetime, nr.ControlSocket, nr.ReplayWindow, nr.DefaultPolicy = 9, nil, "x", 1, "/x", 1, "x"
	nr.RevokedHoldoff, nh.RouteTable = 1, 1
	off := false
	nr.HomeAddressV4, nr.MNPsV4, nr.MNPv4Length, nr.LANDHCP4, nr.DNSv4, nr.StateDir =
		addr("10.199.0.9"), []netip.Prefix{prefix("10.201.9.0/24")}, 28, &off, []netip.Addr{addr("192.0.2.53")}, "/x"
	nh.PoolV4, nh.LeaseV4, nh.MasqueradeV4, nh.StateDir = prefix("10.200.0.0/16"), 1, true, "/x"
	nr.Uplinks = []Uplink{{Name: "wifi", Device: "x", BID: 9, Encap: nemo.EncapUDP, Priority: 9, ProbeInterval: 1, ProbeFailures: 9}, {Name: "new"}}
	nr.Policies = []Policy{{Name: "voice", Mode: ModeDuplicate}, {Name: "new"}}
	nr.Rules = []Rule{{Name: "sip", Proto: 1, SrcIP: prefix("2001:db8::/32"), DestIP: prefix("2001:db8::/32"),
		SrcPort: PortRange{1, 1}, DestPort: PortRange{1, 1}, DSCP: 1, Policy: "x"}, {Name: "new"}}
	nh.Address, nh.AddressV4, nh.HomePrefix, nh.MaxLifetime, nh.ControlSocket, nh.ReplayWindow, nh.LivenessTimeout =
		a, addr("192.0.2.9"), prefix("2001:db8:9::/64"), 1, "/x", 1, 1
	nh.MobileRouters = []MobileRouter{{Name: "car1", HomeAddress: a, SPI: 9, NAI: "x", MNPs: []netip.Prefix{prefix("2001:db8:9::/48")}, PD: true, PDPool: "x",
		HomeAddressV4: addr("10.199.0.9"), MNPsV4: []netip.Prefix{prefix("10.201.9.0/24")}}, {Name: "new"}}
	nr.Ops = Ops{DBus: On, MetricsListen: netip.MustParseAddrPort("[::1]:1")}
	nr.OpenWrt = OpenWrt{UbusSocket: "/x", NetifdInterface: "x", LanRAUnset: !r.OpenWrt.LanRAUnset}
	nr.Uplinks[0].Interface = "x"
	nh.Ops = Ops{DBus: Off, MetricsListen: netip.MustParseAddrPort("[::1]:1"), WebToken: "x"}
	seen := map[string]bool{}
	withoutCluster := *h
	withoutCluster.Cluster = nil
	for _, c := range append(Diff(&File{Router: r, HomeAgent: h}, &File{Router: &nr, HomeAgent: &nh}), DiffHomeAgent(&withoutCluster, h)...) {
		typ, _, _ := strings.Cut(c.Section, " ")
		seen[typ+"."+c.Option] = true
		if c.Reloadable != Reloadable(typ, c.Option) {
			t.Errorf("%s: reloadable %v, the table says otherwise", c, c.Reloadable)
		}
	}
	for typ, opts := range reloadable {
		for o := range opts {
			if !seen[typ+"."+o] {
				t.Errorf("the table has %s.%s, which Diff never reports", typ, o)
			}
		}
	}
	if n := len(seen); n != 93 {
		t.Errorf("%d kinds of change, want every option of every section and each section type whole (93)", n)
	}
}

// changes prints every field, where %v would print String.
func changes(cs []Change) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "{%q %q line %d reloadable %v} ", c.Section, c.Option, c.Line, c.Reloadable)
	}
	return b.String()
}
