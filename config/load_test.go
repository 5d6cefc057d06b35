package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"nemod/nemo"
)

// splitErrors undoes errors.Join.
func splitErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// TestBadCorpus loads every file of testdata/bad, each with one mistake,
// and checks that exactly one error comes back, that it names the file and
// the line in PATH:LINE: form and says what NAME.want expects.
func TestBadCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.uci")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("only %d files in testdata/bad", len(files))
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".uci")
		t.Run(name, func(t *testing.T) {
			line, contains := readWant(t, strings.TrimSuffix(path, ".uci")+".want")
			f, err := Load(path)
			if err == nil {
				t.Fatalf("loaded without error: %+v", f)
			}
			errs := splitErrors(err)
			if len(errs) != 1 {
				t.Errorf("%d errors for one mistake:\n%v", len(errs), err)
			}
			msg := errs[0].Error()
			prefix := path + ":" + strconv.Itoa(line) + ": "
			if !strings.HasPrefix(msg, prefix) {
				t.Errorf("error %q does not start with %q", msg, prefix)
			}
			if !strings.Contains(msg, contains) {
				t.Errorf("error %q does not contain %q", msg, contains)
			}
			var pe *ParseError
			var ce *Error
			switch {
			case errors.As(errs[0], &pe):
				if pe.File != path || pe.Line != line {
					t.Errorf("ParseError names %s:%d", pe.File, pe.Line)
				}
			case errors.As(errs[0], &ce):
				if ce.Path != path || ce.Line != line {
					t.Errorf("Error names %s:%d", ce.Path, ce.Line)
				}
			default:
				t.Errorf("error of type %T", errs[0])
			}
		})
	}
}

func readWant(t *testing.T, path string) (line int, contains string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		k, v, ok := strings.Cut(l, ": ")
		switch {
		case ok && k == "line":
			if line, err = strconv.Atoi(v); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		case ok && k == "contains":
			contains = v
		default:
			t.Fatalf("%s: cannot read %q", path, l)
		}
	}
	if line == 0 || contains == "" {
		t.Fatalf("%s needs a line and a contains entry", path)
	}
	return line, contains
}

func mustLoad(t *testing.T, path string) *File {
	t.Helper()
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Warnings) != 0 {
		t.Errorf("warnings: %q", f.Warnings)
	}
	return f
}

func addr(s string) netip.Addr     { return netip.MustParseAddr(s) }
func prefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

var testKey = []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}

// TestGoodRouter loads the reference router configuration and checks every
// decoded value, defaults included.
func TestGoodRouter(t *testing.T) {
	f := mustLoad(t, "testdata/good/router.uci")
	if f.HomeAgent != nil {
		t.Errorf("home agent decoded from a router file: %+v", f.HomeAgent)
	}
	want := &Router{
		Name:           "main",
		HomeAgent:      addr("2001:db8:ffff::1"),
		HomeAgentV4:    addr("198.51.100.1"),
		HomeAddress:    addr("2001:db8:ffff:1::100"),
		MNPs:           []netip.Prefix{prefix("2001:db8:100::/56")},
		LAN:            []string{"lan0"},
		SPI:            256,
		Key:            testKey,
		NAI:            "main", // the default: the section's name
		Lifetime:       600 * time.Second,
		ControlSocket:  "/var/run/nemod.sock",
		ReplayWindow:   7 * time.Second,
		RevokedHoldoff: DefaultRevokedHoldoff,
		Uplinks: []Uplink{
			{Name: "wifi", Device: "wlan0", BID: 1, Encap: nemo.EncapAuto, ProbeInterval: 450 * time.Millisecond, ProbeFailures: 3, Line: 11},
			{Name: "cell", Device: "wwan0", BID: 2, Encap: nemo.EncapAuto, ProbeInterval: 450 * time.Millisecond, ProbeFailures: 3, Line: 15},
		},
		Policies: []Policy{
			{Name: "voice", Use: []string{"cell", "wifi"}, Mode: ModeFailover, Line: 18},
			{Name: "wifi_first", Use: []string{"wifi", "cell"}, Mode: ModeFailover, Line: 21},
			{Name: "control", Use: []string{"cell", "wifi"}, Mode: ModeDuplicate, Line: 24},
		},
		Rules: []Rule{
			{Name: "sip", Proto: 17, DestPort: PortRange{5060, 5061}, DSCP: -1, Policy: "voice", Line: 28},
			{Name: "video", Proto: 6, DestIP: prefix("2001:db8:c::/48"), DSCP: -1, Policy: "wifi_first", Line: 32},
			{Name: "roadside", Proto: -1, DestIP: prefix("2001:db8:5::/48"), DSCP: -1, Policy: DirectPolicy, Line: 36},
		},
		Line:       1,
		Path:       "testdata/good/router.uci",
		PD:         &RouterPD{LeaseFile: DefaultRouterLeaseFile, LanRA: true, IP6Assign: 64},
		HomeAgents: []HomeAgentAddr{{Address: netip.MustParseAddr("2001:db8:ffff::1"), AddressV4: netip.MustParseAddr("198.51.100.1")}},
		HATimeout:  DefaultHATimeout,
		OpenWrt:    OpenWrt{UbusSocket: "/var/run/ubus/ubus.sock", NetifdInterface: "nemo", LanRAUnset: true},
		StateDir:   DefaultStateDir,
	}
	if !reflect.DeepEqual(f.Router, want) {
		t.Errorf("router\n got %+v\nwant %+v", f.Router, want)
	}
}

func TestGoodHomeAgent(t *testing.T) {
	f := mustLoad(t, "testdata/good/homeagent.uci")
	if f.Router != nil {
		t.Errorf("router decoded from a home agent file: %+v", f.Router)
	}
	want := &HomeAgent{
		Name:            "main",
		Address:         addr("2001:db8:ffff::1"),
		AddressV4:       addr("198.51.100.1"),
		HomePrefix:      prefix("2001:db8:ffff:1::/64"),
		MaxLifetime:     time.Hour,
		ControlSocket:   "/var/run/nemod-ha.sock",
		ReplayWindow:    7 * time.Second,
		LivenessTimeout: DefaultLivenessTimeout,
		RouteTable:      MainRouteTable,
		MobileRouters: []MobileRouter{{
			Name:        "car1",
			HomeAddress: addr("2001:db8:ffff:1::100"),
			SPI:         256,
			Key:         testKey,
			MNPs:        []netip.Prefix{prefix("2001:db8:100::/56")},
			Line:        7,
		}},
		// The home agent serves /metrics and the fleet page on loopback
		// unless told otherwise.
		Ops:      Ops{MetricsListen: DefaultMetricsListen},
		Line:     1,
		LeaseV4:  DefaultLeaseV4,
		StateDir: DefaultStateDir,
	}
	if !reflect.DeepEqual(f.HomeAgent, want) {
		t.Errorf("home agent\n got %+v\nwant %+v", f.HomeAgent, want)
	}
}

// TestGoodFlows covers the hand-written style (comments, unquoted values,
// anonymous rules), the key file, and every value syntax of the options.
func TestGoodFlows(t *testing.T) {
	f := mustLoad(t, "testdata/good/flows.uci")
	r := f.Router
	if r == nil {
		t.Fatal("no router")
	}
	wantKey := append(append([]byte{}, testKey...), testKey[:8]...)
	if r.Name != "main" || r.SPI != 4096 || !reflect.DeepEqual(r.Key, wantKey) ||
		r.Lifetime != 300*time.Second || r.ReplayWindow != 10*time.Second ||
		r.DefaultPolicy != "best" || r.ControlSocket != DefaultControlSocket ||
		r.HomeAgentV4.IsValid() {
		t.Errorf("router settings: %+v", r)
	}
	if want := []netip.Prefix{prefix("2001:db8:100::/56"), prefix("2001:db8:200::/64")}; !reflect.DeepEqual(r.MNPs, want) {
		t.Errorf("MNPs %v", r.MNPs)
	}
	if want := []string{"lan0", "wlan1"}; !reflect.DeepEqual(r.LAN, want) {
		t.Errorf("LAN %v", r.LAN)
	}
	wantUplinks := []Uplink{
		{Name: "wifi", Device: "wlan0", BID: 1, Priority: 10, Encap: nemo.EncapAuto, ProbeInterval: 200 * time.Millisecond, ProbeFailures: DefaultProbeFailures, Line: 18},
		{Name: "cell", Device: "wwan0", BID: 2, Priority: 20, Encap: nemo.EncapUDP, ProbeInterval: 1500 * time.Millisecond, ProbeFailures: 3, Line: 24},
		{Name: "sat", Device: "sat0", BID: 3, Encap: nemo.EncapIPv6, ProbeInterval: 2 * time.Second, ProbeFailures: DefaultProbeFailures, Line: 32},
	}
	if !reflect.DeepEqual(r.Uplinks, wantUplinks) {
		t.Errorf("uplinks\n got %+v\nwant %+v", r.Uplinks, wantUplinks)
	}
	wantPolicies := []Policy{
		{Name: "best", Use: []string{"wifi", "cell", "sat"}, Line: 38},
		{Name: "voice", Use: []string{"cell", "wifi"}, Mode: ModeDuplicate, Line: 43},
		{Name: "bulk", Use: []string{"sat"}, Line: 48},
	}
	if !reflect.DeepEqual(r.Policies, wantPolicies) {
		t.Errorf("policies\n got %+v\nwant %+v", r.Policies, wantPolicies)
	}
	wantRules := []Rule{
		{Name: "sip", Proto: 17, DestPort: PortRange{5060, 5061}, DSCP: -1, Policy: "voice", Line: 52},
		{Name: "@rule[1]", Proto: 17, SrcPort: PortRange{10000, 20000}, DSCP: 46, Policy: "voice", Line: 57},
		{Name: "@rule[2]", Proto: 58, DestIP: prefix("2001:db8:5::/48"), DSCP: -1, Policy: DirectPolicy, Line: 64},
		{Name: "backup", Proto: 6, SrcIP: prefix("2001:db8:100:1::10/128"), DestPort: PortRange{873, 873}, DSCP: 10, Policy: "bulk", Line: 69},
	}
	if !reflect.DeepEqual(r.Rules, wantRules) {
		t.Errorf("rules\n got %+v\nwant %+v", r.Rules, wantRules)
	}
}

// memFiles stands in for the file system in Parse's key_file lookups.
func memFiles(files map[string]string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		if s, ok := files[name]; ok {
			return []byte(s), nil
		}
		return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrNotExist}
	}
}

const minimalRouter = `config router 'r'
	option home_agent '2001:db8:ffff::1'
	option home_address '2001:db8:ffff:1::100'
	option spi '256'
	option key '00112233445566778899aabbccddeeff'
`

// TestWarnings: what nemod does not know is reported, in line order, and
// does not stop the file from loading.
func TestWarnings(t *testing.T) {
	in := minimalRouter + // lines 1-5
		"\toption colour 'red'\n" + // 6
		"config uplink 'wifi'\n" + // 7
		"\toption device 'wlan0'\n" + // 8
		"\toption bid '1'\n" + // 9
		"\toption metered '1'\n" + // 10
		"config firewall\n" + // 11
		"config rule\n" + // 12
		"\toption policy 'direct'\n" + // 13
		"\tlist x '1'\n" + // 14
		"config mobile_router 'car'\n" // 15
	f, err := parse("/etc/config/nemod", []byte(in), memFiles(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`/etc/config/nemod:6: unknown option "colour" in router "r"`,
		`/etc/config/nemod:10: unknown option "metered" in uplink "wifi"`,
		`/etc/config/nemod:11: unknown section type "firewall"`,
		`/etc/config/nemod:14: unknown option "x" in rule "@rule[0]"`,
		`/etc/config/nemod:15: mobile_router "car" is ignored: the file has no homeagent section`,
	}
	if !reflect.DeepEqual(f.Warnings, want) {
		t.Errorf("warnings\n got %q\nwant %q", f.Warnings, want)
	}
}

// TestAllErrors: every mistake of a file is reported, each once, in line
// order, the same way on every run.
func TestAllErrors(t *testing.T) {
	in := "config router 'r'\n" + // 1: home_address missing
		"\toption home_agent '2001:db8:ffff::1'\n" + // 2
		"\toption spi '10'\n" + // 3
		"\toption key 'zz'\n" + // 4
		"config uplink 'a'\n" + // 5
		"\toption device 'eth0'\n" + // 6
		"\toption bid '0'\n" + // 7
		"config rule\n" + // 8
		"\toption dest_port '80'\n" + // 9
		"\toption policy 'nope'\n" // 10
	want := "x.uci:1: router \"r\": option home_address is required\n" +
		"x.uci:3: option spi: 10 is reserved (RFC 4285 reserves SPIs 0..255); use 256 or more\n" +
		"x.uci:4: option key: the key is not a hex string\n" +
		"x.uci:7: option bid: 0 is not a Binding ID (1..65535)\n" +
		"x.uci:9: option dest_port: ports need option proto tcp or udp\n" +
		"x.uci:10: option policy: no policy \"nope\" (known: direct)"
	for range 3 {
		_, err := parse("x.uci", []byte(in), memFiles(nil))
		if err == nil || err.Error() != want {
			t.Fatalf("errors\n got %v\nwant %s", err, want)
		}
		if n := len(splitErrors(err)); n != 6 {
			t.Errorf("%d errors, want 6", n)
		}
	}
}

func TestKeyFile(t *testing.T) {
	const hexKey = "00112233445566778899aabbccddeeff"
	in := strings.Replace(minimalRouter, "option key '"+hexKey+"'", "option key_file 'keys/r.key'", 1)
	f, err := parse("/etc/config/nemod", []byte(in), memFiles(map[string]string{
		"/etc/config/keys/r.key": "\n " + hexKey + "\r\n",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Router.Key, testKey) {
		t.Errorf("key %x", f.Router.Key)
	}

	in = strings.Replace(minimalRouter, "option key '"+hexKey+"'", "option key_file '/secret/r.key'", 1)
	if _, err := parse("/etc/config/nemod", []byte(in), memFiles(map[string]string{"/secret/r.key": hexKey})); err != nil {
		t.Errorf("absolute key_file: %v", err)
	}
	_, err = parse("/etc/config/nemod", []byte(in), memFiles(map[string]string{"/secret/r.key": "secret-words"}))
	if err == nil || !strings.Contains(err.Error(), "/etc/config/nemod:5: option key_file: /secret/r.key: the key is not a hex string") {
		t.Errorf("bad key file: %v", err)
	}
	if strings.Contains(err.Error(), "secret-words") {
		t.Errorf("the error repeats the key file's content: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	f, err := parse("nemod", []byte(minimalRouter+"config uplink 'u'\n\toption device 'eth0'\n\toption bid '9'\n"), memFiles(nil))
	if err != nil {
		t.Fatal(err)
	}
	r := f.Router
	if r.Lifetime != DefaultLifetime || r.ReplayWindow != DefaultReplayWindow ||
		r.ControlSocket != DefaultControlSocket || r.DefaultPolicy != "" || r.HomeAgentV4.IsValid() {
		t.Errorf("router defaults: %+v", r)
	}
	u := r.Uplinks[0]
	if u.Encap != nemo.EncapAuto || u.Priority != 0 || u.ProbeInterval != DefaultProbeInterval || u.ProbeFailures != DefaultProbeFailures {
		t.Errorf("uplink defaults: %+v", u)
	}
	f, err = parse("nemod", []byte("config homeagent\n\toption address '2001:db8::1'\n\toption home_prefix '2001:db8:1::/64'\n"), memFiles(nil))
	if err != nil {
		t.Fatal(err)
	}
	h := f.HomeAgent
	if h.Name != "@homeagent[0]" || h.MaxLifetime != DefaultMaxLifetime || h.ReplayWindow != DefaultReplayWindow ||
		h.ControlSocket != DefaultHAControlSocket || len(h.MobileRouters) != 0 {
		t.Errorf("home agent defaults: %+v", h)
	}
}

// TestBothRoles: one file may configure a router and a home agent (a lab
// machine, or a home agent that is itself mobile).
func TestBothRoles(t *testing.T) {
	in := minimalRouter + "config homeagent 'ha'\n\toption address '2001:db8::1'\n\toption home_prefix '2001:db8:1::/64'\n"
	f, err := parse("nemod", []byte(in), memFiles(nil))
	if err != nil {
		t.Fatal(err)
	}
	if f.Router == nil || f.HomeAgent == nil {
		t.Errorf("router %v, home agent %v", f.Router, f.HomeAgent)
	}
}

func TestSyntaxErrorForm(t *testing.T) {
	_, err := Parse("/etc/config/nemod", []byte("config router 'r'\n\toption bad-name 'x'\n"))
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v", err)
	}
	if want := "/etc/config/nemod:2: invalid character in name field (byte 17)"; err.Error() != want {
		t.Errorf("got %q, want %q", err.Error(), want)
	}
}

// TestSyntaxErrorLines: where uci's line number is unhelpful, the error
// text adds or substitutes the statement's line; the fields keep uci's.
func TestSyntaxErrorLines(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"config router 'r'\n\toption a 'open\n\toption b 'x'\n\n",
			"f:4: EOF with unterminated ' (byte 31 of the statement starting at line 2)"},
		{"config router 'r'\n\toption bad-name 'x'",
			"f:2: invalid character in name field (byte 17)"},
	} {
		_, err := Parse("f", []byte(tc.in))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: got %v, want %s", tc.in, err, tc.want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/no-such-file")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v", err)
	}
}

func TestValues(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"EF", 46}, {"ef", 46}, {"be", 0}, {"CS0", 0}, {"cs7", 56}, {"AF11", 10}, {"af43", 38}, {"63", 63}, {"0", 0},
	} {
		if got, msg := dscp(tc.in); msg != "" || got != tc.want {
			t.Errorf("dscp(%q) = %d, %q; want %d", tc.in, got, msg, tc.want)
		}
	}
	for _, bad := range []string{"64", "AF14", "AF51", "CS8", "-1", "", " 1", "0x2e", "EF "} {
		if _, msg := dscp(bad); msg == "" {
			t.Errorf("dscp(%q) accepted", bad)
		}
	}
	for in, want := range map[string]int{"tcp": 6, "UDP": 17, "icmp": 1, "icmpv6": 58, "ipv6-icmp": 58, "all": -1, "0": 0, "255": 255, "47": 47} {
		if got, msg := protocol(in); msg != "" || got != want {
			t.Errorf("protocol(%q) = %d, %q; want %d", in, got, msg, want)
		}
	}
	for _, bad := range []string{"256", "gre", "-1", "+6", ""} {
		if _, msg := protocol(bad); msg == "" {
			t.Errorf("protocol(%q) accepted", bad)
		}
	}
	for in, want := range map[string]PortRange{"80": {80, 80}, "5060-5061": {5060, 5061}, "1-65535": {1, 65535}} {
		if got, msg := portRange(in); msg != "" || got != want {
			t.Errorf("portRange(%q) = %v, %q", in, got, msg)
		}
	}
	for _, bad := range []string{"0", "65536", "80-", "-80", "80:90", "1-2-3", "22 2222", "90-80", ""} {
		if _, msg := portRange(bad); msg == "" {
			t.Errorf("portRange(%q) accepted", bad)
		}
	}
	ms := time.Millisecond
	for in, want := range map[string]time.Duration{"400ms": 400 * ms, "1s": time.Second, "1.5s": 1500 * ms, "0.4": 400 * ms, "60": time.Minute, "50ms": 50 * ms, ".05": 50 * ms, "1m": time.Minute} {
		if got, msg := interval(in, 50*ms, 60*time.Second); msg != "" || got != want {
			t.Errorf("interval(%q) = %v, %q; want %v", in, got, msg, want)
		}
	}
	for _, bad := range []string{"10ms", "61s", "-1s", "0", "1e3", "1.2.3", "ms", "", "9223372036854775807"} {
		if _, msg := interval(bad, 50*ms, 60*time.Second); msg == "" {
			t.Errorf("interval(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "eth0:1", "a b", "0123456789abcdef", "x\x7f"} {
		if ifname(bad) == "" {
			t.Errorf("ifname(%q) accepted", bad)
		}
	}
	for _, good := range []string{"eth0", "wwan0", "phy0-sta0", "br-lan", "0123456789abcde"} {
		if msg := ifname(good); msg != "" {
			t.Errorf("ifname(%q): %s", good, msg)
		}
	}
	for in, want := range map[string]string{"10.0.0.1": "10.0.0.1/32", "2001:db8::1": "2001:db8::1/128", "10.0.0.0/8": "10.0.0.0/8", "2001:db8::/32": "2001:db8::/32"} {
		if got, msg := matchPrefix(in); msg != "" || got != prefix(want) {
			t.Errorf("matchPrefix(%q) = %v, %q", in, got, msg)
		}
	}
	for _, bad := range []string{"10.0.0.1/8", "fe80::1%eth0", "::ffff:10.0.0.1", "10.0.0.0/33", "host"} {
		if _, msg := matchPrefix(bad); msg == "" {
			t.Errorf("matchPrefix(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"::", "::1", "ff02::1", "fe80::1", "fe80::1%eth0", "::ffff:1.2.3.4", "1.2.3.4"} {
		if _, msg := ipv6Addr(bad, ""); msg == "" {
			t.Errorf("ipv6Addr(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"0.0.0.0", "255.255.255.255", "224.0.0.1", "127.0.0.1", "::ffff:1.2.3.4", "1.2.3"} {
		if _, msg := ipv4Addr(bad); msg == "" {
			t.Errorf("ipv4Addr(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"::/0", "2001:db8::", "2001:db8::1/64", "10.0.0.0/8", "::ffff:0:0/96"} {
		if _, msg := ipv6Prefix(bad); msg == "" {
			t.Errorf("ipv6Prefix(%q) accepted", bad)
		}
	}
	if msg := show(strings.Repeat("x", 5000)); len(msg) > 80 {
		t.Errorf("show does not shorten: %d bytes", len(msg))
	}
	if got := show("a\x01b"); got != `"a\x01b"` {
		t.Errorf("show = %s", got)
	}
}

func TestStrings(t *testing.T) {
	if nemo.EncapUDP.String() != "udp" || nemo.EncapIPv6.String() != "ipv6" || nemo.EncapAuto.String() != "auto" || nemo.Encap(9).String() != "Encap(9)" {
		t.Error("Encap.String")
	}
	if ModeDuplicate.String() != "duplicate" || ModeFailover.String() != "failover" || PolicyMode(7).String() != "PolicyMode(7)" {
		t.Error("PolicyMode.String")
	}
	if !(PortRange{}).Any() || (PortRange{1, 1}).Any() {
		t.Error("PortRange.Any")
	}
}

func TestNAI(t *testing.T) {
	f, err := Parse("/etc/config/nemod", []byte(`
config homeagent 'main'
	option address '2001:db8:ffff::1'
	option home_prefix '2001:db8:ffff:1::/64'
config mobile_router 'car1'
	option home_address '2001:db8:ffff:1::100'
	option spi '256'
	option key '00112233445566778899aabbccddeeff'
	option nai 'car1@fleet.example'
config mobile_router 'car2'
	option home_address '2001:db8:ffff:1::200'
	option spi '257'
	option key '00112233445566778899aabbccddeeff'
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.HomeAgent.MobileRouters; got[0].NAI != "car1@fleet.example" || got[1].NAI != "" {
		t.Fatalf("NAIs %q %q", got[0].NAI, got[1].NAI)
	}
}

// Overlaps between routers are found in a single pass over sorted
// prefixes: a prefix inside an earlier, wider one several places back
// (other prefixes in between) is still caught, and the one written later
// gets the error.
func TestOverlapAcrossManyRouters(t *testing.T) {
	var b strings.Builder
	b.WriteString("config homeagent 'main'\n\toption address '2001:db8:ffff::1'\n\toption home_prefix '2001:db8:ffff:1::/64'\n")
	for i, p := range []string{"2001:db8:100::/56", "2001:db8:180::/56", "2001:db8:100::/40", "2001:db8:1c0::/56"} {
		fmt.Fprintf(&b, "config mobile_router 'r%d'\n\toption home_address '2001:db8:ffff:1::%d'\n\toption spi '%d'\n\toption key '00112233445566778899aabbccddeeff'\n\tlist mnp '%s'\n", i, i+1, 300+i, p)
	}
	_, err := Parse("/x", []byte(b.String()))
	if err == nil {
		t.Fatal("overlap not found")
	}
	msg := err.Error()
	// r2's /40 (line 18) contains r0's, r1's and r3's /56: r2 is reported
	// against r0 and r1 (written before it), r3 against r2.
	for _, want := range []string{"/x:18: list mnp: 2001:db8:100::/40 overlaps mnp 2001:db8:100::/56", "/x:18: list mnp: 2001:db8:100::/40 overlaps mnp 2001:db8:180::/56", "/x:23: list mnp: 2001:db8:1c0::/56 overlaps mnp 2001:db8:100::/40"} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
}

func TestLoadFor(t *testing.T) {
	for _, c := range []struct {
		path string
		role Role
		err  string
	}{
		{"testdata/good/router.uci", RoleRouter, ""},
		{"testdata/good/homeagent.uci", RoleHomeAgent, ""},
		{"testdata/good/router.uci", RoleHomeAgent, "testdata/good/router.uci: no homeagent section"},
		{"testdata/good/homeagent.uci", RoleRouter, "testdata/good/homeagent.uci: no router section"},
	} {
		f, err := LoadFor(c.path, c.role)
		if c.err == "" && (err != nil || f == nil) {
			t.Errorf("%s as %s: %v", c.path, c.role, err)
		}
		if c.err != "" && (err == nil || err.Error() != c.err || f != nil) {
			t.Errorf("%s as %s: got %v, want %q", c.path, c.role, err, c.err)
		}
	}
}
