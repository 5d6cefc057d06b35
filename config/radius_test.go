package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func addrPorts(ss ...string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, s := range ss {
		out = append(out, netip.MustParseAddrPort(s))
	}
	return out
}

// TestGoodRadius loads a home agent with every option of the radius
// section and checks each decoded value.
func TestGoodRadius(t *testing.T) {
	f := mustLoad(t, "testdata/good/radius.uci")
	want := &Radius{
		Name:                        "aaa",
		Servers:                     addrPorts("[2001:db8:ffff::18]:1812", "192.0.2.18:1812", "[2001:db8:ffff::19]:18120"),
		Secret:                      "a long shared secret, 32 chars!",
		Timeout:                     500 * time.Millisecond,
		Retries:                     3,
		DeadTime:                    time.Minute,
		Accounting:                  true,
		InterimInterval:             600 * time.Second,
		DynAuthListen:               netip.MustParseAddrPort("[::1]:3799"),
		DynAuthClients:              []netip.Addr{addr("2001:db8:ffff::18"), addr("192.0.2.20")},
		NASIdentifier:               "ha1.fleet.example",
		CacheLifetime:               300 * time.Second,
		RequireMessageAuthenticator: false,
		Line:                        5,
	}
	if !reflect.DeepEqual(f.Radius, want) {
		t.Errorf("radius\n got %+v\nwant %+v", f.Radius, want)
	}
	if f.HomeAgent == nil || len(f.HomeAgent.MobileRouters) != 1 {
		t.Errorf("the home agent around it: %+v", f.HomeAgent)
	}
}

const minimalHA = "config homeagent 'main'\n\toption address '2001:db8:ffff::1'\n\toption home_prefix '2001:db8:ffff:1::/64'\n"

func TestRadiusDefaults(t *testing.T) {
	f, err := parse("nemod", []byte(minimalHA+"config radius\n\toption server '[2001:db8:ffff::18]'\n\toption secret '0123456789abcdef'\n\toption dynauth_listen '::'\n"), memFiles(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := &Radius{
		Name:    "@radius[0]",
		Servers: addrPorts("[2001:db8:ffff::18]:1812"),
		Secret:  "0123456789abcdef",
		Timeout: time.Second, Retries: 2, DeadTime: 30 * time.Second, CacheLifetime: 600 * time.Second,
		RequireMessageAuthenticator: true,
		// Every address, the RFC 5176 port; the server may send.
		DynAuthListen:  netip.MustParseAddrPort("[::]:3799"),
		DynAuthClients: []netip.Addr{addr("2001:db8:ffff::18")},
		Line:           4,
	}
	if !reflect.DeepEqual(f.Radius, want) || len(f.Warnings) != 0 {
		t.Errorf("radius\n got %+v\nwant %+v\nwarnings %q", f.Radius, want, f.Warnings)
	}
	// Without the section, no RADIUS.
	f, err = parse("nemod", []byte(minimalHA), memFiles(nil))
	if err != nil || f.Radius != nil {
		t.Errorf("no radius section: %+v, %v", f.Radius, err)
	}
}

// TestRadiusWarnings: what loads but was probably not meant.
func TestRadiusWarnings(t *testing.T) {
	in := minimalHA + // 1-3
		"config radius 'aaa'\n" + // 4
		"\tlist server '2001:db8:ffff::18:1812'\n" + // 5
		"\toption secret 'short'\n" + // 6
		"\toption interim_interval '600'\n" + // 7
		"\tlist dynauth_client '192.0.2.18'\n" + // 8
		"\toption colour 'red'\n" // 9
	f, err := parse("/etc/config/nemod", []byte(in), memFiles(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/etc/config/nemod:5: list server: 2001:db8:ffff::18:1812 is taken as an IPv6 address with port 1812; for port 1812 write [ADDRESS]:1812",
		"/etc/config/nemod:6: option secret: 5 characters; RFC 2865 prefers at least 16, and a short one can be guessed from one captured exchange",
		"/etc/config/nemod:7: option interim_interval is ignored: option accounting is not '1'",
		"/etc/config/nemod:8: list dynauth_client is ignored: no option dynauth_listen",
		`/etc/config/nemod:9: unknown option "colour" in radius "aaa"`,
	}
	if !reflect.DeepEqual(f.Warnings, want) {
		t.Errorf("warnings\n got %q\nwant %q", f.Warnings, want)
	}
	f, err = parse("/x", []byte(minimalRouter+"config radius 'aaa'\n\toption server '192.0.2.18'\n"), memFiles(nil))
	if err != nil || f.Radius != nil || !strings.Contains(strings.Join(f.Warnings, "\n"), `/x:6: radius "aaa" is ignored: the file has no homeagent section`) {
		t.Errorf("radius in a router file: %+v %q %v", f.Radius, f.Warnings, err)
	}
}

func TestRadiusValues(t *testing.T) {
	for in, want := range map[string]bool{"1": true, "on": true, "Yes": true, "true": true, "enabled": true, "0": false, "off": false, "no": false, "FALSE": false, "disabled": false} {
		if got, msg := boolean(in); msg != "" || got != want {
			t.Errorf("boolean(%q) = %v, %q", in, got, msg)
		}
	}
	for _, bad := range []string{"", "2", "y", "-1"} {
		if _, msg := boolean(bad); msg == "" {
			t.Errorf("boolean(%q) accepted", bad)
		}
	}
	for in, want := range map[string]string{
		"192.0.2.18": "192.0.2.18:1812", "[2001:db8::18]:1645": "[2001:db8::18]:1645", "::ffff:192.0.2.18": "192.0.2.18:1812",
		"[::ffff:192.0.2.18]:1": "192.0.2.18:1", "127.0.0.1:18120": "127.0.0.1:18120", "[2001:db8::18]": "[2001:db8::18]:1812",
	} {
		if got, msg := hostPort(in, 1812); msg != "" || got != netip.MustParseAddrPort(want) {
			t.Errorf("hostPort(%q) = %v, %q", in, got, msg)
		}
	}
	for _, bad := range []string{"", "radius", "radius:1812", "::1]:1812", "192.0.2.18:65536", "192.0.2.18:0", "[192.0.2.18]", "[::1]:", "0.0.0.0", "[::]:1812", "224.0.0.1", "[fe80::1%eth0]:1812", "fe80::1%eth0"} {
		if _, msg := hostPort(bad, 1812); msg == "" {
			t.Errorf("hostPort(%q) accepted", bad)
		}
	}
	if got, msg := listenPort("0.0.0.0", 3799); msg != "" || got != netip.MustParseAddrPort("0.0.0.0:3799") {
		t.Errorf("listenPort(0.0.0.0) = %v, %q", got, msg)
	}
	if _, msg := listenPort("[ff02::1]:3799", 3799); msg == "" {
		t.Error("listenPort(multicast) accepted")
	}
}
