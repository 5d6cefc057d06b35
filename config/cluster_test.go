package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCluster(t *testing.T) {
	text := minimalHA + "\toption address_v4 '198.51.100.1'\n" + `config cluster 'fleet'
	list etcd_endpoint 'http://[2001:db8:e::1]:2379'
	list etcd_endpoint 'https://etcd2.example:2379'
	option node 'ha1'
	option lease_ttl '3'
	option tls_ca '/etc/ca.pem'
	option tls_cert '/etc/c.pem'
	option tls_key '/etc/k.pem'
	list instance '2001:db8:fffe::1 198.51.100.129'
	list instance '2001:db8:fffd::1'
	option switch_rate '20'
`
	f, err := parse("nemod", []byte(text), memFiles(nil))
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr
	want := &Cluster{Name: "fleet", Endpoints: []string{"http://[2001:db8:e::1]:2379", "https://etcd2.example:2379"}, Node: "ha1",
		TLSCA: "/etc/ca.pem", TLSCert: "/etc/c.pem", TLSKey: "/etc/k.pem", LeaseTTL: 3 * time.Second, Prefix: "/nemod/fleet",
		Instances:  []Instance{{a("2001:db8:ffff::1"), a("198.51.100.1")}, {a("2001:db8:fffe::1"), a("198.51.100.129")}, {Address: a("2001:db8:fffd::1")}},
		SwitchRate: 20, MaxTxnOps: DefaultMaxTxnOps, Line: 5}
	if got := f.HomeAgent.Cluster; !reflect.DeepEqual(got, want) {
		t.Fatalf("cluster\n got %+v\nwant %+v", got, want)
	}
	if len(f.Warnings) != 0 {
		t.Fatal(f.Warnings)
	}
	f, err = parse("nemod", []byte(minimalHA+"config cluster\n\tlist etcd_endpoint 'http://[::1]:2379'\n\toption node 'a'\n"), memFiles(nil))
	if err != nil || f.HomeAgent.Cluster.LeaseTTL != DefaultLeaseTTL || f.HomeAgent.Cluster.SwitchRate != DefaultSwitchRate ||
		f.HomeAgent.Cluster.Prefix != "/nemod/@cluster[0]" || len(f.HomeAgent.Cluster.Instances) != 1 {
		t.Fatalf("defaults: %v %+v", err, f.HomeAgent.Cluster)
	}
	if f, err := parse("nemod", []byte(minimalHA), memFiles(nil)); err != nil || f.HomeAgent.Cluster != nil {
		t.Fatalf("no cluster section: %v", err)
	}
}

// A mistake in the cluster section is reported at its line, and nothing
// of the file is taken.
func TestClusterErrors(t *testing.T) {
	base := minimalHA + "config cluster\n" // line 4
	for _, c := range []struct{ text, want string }{
		{base + "\toption node 'a'\n", "nemod:4: cluster \"@cluster[0]\": list etcd_endpoint is required"},
		{base + "\tlist etcd_endpoint 'http://[::1]:2379'\n", "nemod:4: cluster \"@cluster[0]\": option node is required"},
		{base + "\tlist etcd_endpoint '[::1]:2379'\n\toption node 'a'\n", "nemod:5: list etcd_endpoint: "},
		{base + "\tlist etcd_endpoint 'http://a:1'\n\tlist etcd_endpoint 'http://a:1'\n\toption node 'a'\n", "nemod:6: list etcd_endpoint: http://a:1 is listed twice"},
		{base + "\tlist etcd_endpoint 'http://a:1'\n\toption node 'a b'\n", "nemod:6: option node: "},
		{base + "\tlist etcd_endpoint 'http://a:1'\n\toption node 'a'\n\toption lease_ttl '0'\n", "nemod:7: option lease_ttl: "},
		{base + "\tlist etcd_endpoint 'http://a:1'\n\toption node 'a'\n\toption tls_cert '/c'\n", "nemod:7: option tls_cert: tls_cert and tls_key go together"},
		{base + "\tlist etcd_endpoint 'http://a:1'\n\toption node 'a'\n\tlist instance '2001:db8:ffff::1'\n", "nemod:7: list instance: 2001:db8:ffff::1 shares an address"},
		{base + "\tlist etcd_endpoint 'http://a:1'\n\toption node 'a'\n\tlist instance '2001:db8:ffff:1::9'\n", "nemod:7: list instance: 2001:db8:ffff:1::9 is inside home_prefix"},
		{base + "\tlist etcd_endpoint 'http://a:1'\n\toption node 'a'\n\tlist instance '198.51.100.1'\n", "nemod:7: list instance: "},
		{base + "\tlist etcd_endpoint 'http://a:1'\n\toption node 'a'\n\toption switch_rate 'fast'\n", "nemod:7: option switch_rate: "},
		{base + "\tlist etcd_endpoint 'http://a:1'\n\toption node 'a'\n\toption prefix 'nemod'\n", "nemod:7: option prefix: "},
		{base + "\tlist etcd_endpoint 'http://a:1'\n\toption node 'a'\nconfig cluster\n", "nemod:7: a second cluster section"},
	} {
		_, err := parse("nemod", []byte(c.text), memFiles(nil))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n got %v\nwant %s", c.text, err, c.want)
		}
	}
	// Without a homeagent section the cluster section is only a warning.
	f, err := parse("nemod", []byte(minimalRouter+"config cluster\n\toption node 'a'\n"), memFiles(nil))
	if err != nil || len(f.Warnings) != 2 || !strings.Contains(f.Warnings[1], "no homeagent section") {
		t.Fatalf("%v %v", err, f.Warnings)
	}
}

func TestRouterHomeAgentList(t *testing.T) {
	text := `config router 'r'
	list home_agent '2001:db8:ffff::1'
	list home_agent '2001:db8:fffe::1'
	list home_agent_v4 '198.51.100.1'
	list home_agent_v4 '198.51.100.129'
	option ha_timeout '1.5'
	option home_address '2001:db8:ffff:1::100'
	option spi '256'
	option key '00112233445566778899aabbccddeeff'
`
	f, err := parse("nemod", []byte(text), memFiles(nil))
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr
	r := f.Router
	want := []HomeAgentAddr{{a("2001:db8:ffff::1"), a("198.51.100.1")}, {a("2001:db8:fffe::1"), a("198.51.100.129")}}
	if !reflect.DeepEqual(r.HomeAgents, want) || r.HomeAgent != want[0].Address || r.HomeAgentV4 != want[0].AddressV4 || r.HATimeout != 1500*time.Millisecond {
		t.Fatalf("%+v %v %v %v", r.HomeAgents, r.HomeAgent, r.HomeAgentV4, r.HATimeout)
	}
	for _, c := range []struct{ text, want string }{
		{strings.Replace(text, "list home_agent_v4 '198.51.100.129'\n", "", 1), "nemod:4: list home_agent_v4: 1 addresses for 2 home agents"},
		{strings.Replace(text, "2001:db8:fffe::1", "2001:db8:ffff::1", 1), "nemod:3: list home_agent: 2001:db8:ffff::1 is listed twice"},
		{strings.Replace(text, "'1.5'", "'0.1'", 1), "nemod:6: option ha_timeout: "},
	} {
		if _, err := parse("nemod", []byte(c.text), memFiles(nil)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want %s", err, c.want)
		}
	}
	// One home agent, written as an option, as before.
	f, err = parse("nemod", []byte(minimalRouter), memFiles(nil))
	if err != nil || len(f.Router.HomeAgents) != 1 || f.Router.HATimeout != DefaultHATimeout {
		t.Fatalf("%v %+v", err, f.Router)
	}
}
