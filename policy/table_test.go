package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"nemod/config"
	"nemod/nemo"
)

// The selectors the example's rules become, written out field by field:
// a rule's dest is the selector's source (the correspondent, RFC 6088 §3).
var (
	sipTS = nemo.TrafficSelector{
		Format:       nemo.TSFormatIPv6,
		Present:      nemo.TSSrcPortStart | nemo.TSSrcPortEnd | nemo.TSProtoStart,
		SrcPortStart: 5060, SrcPortEnd: 5061, ProtoStart: 17,
	}
	videoTS = nemo.TrafficSelector{
		Format:       nemo.TSFormatIPv6,
		Present:      nemo.TSSrcAddrStart | nemo.TSSrcAddrEnd | nemo.TSProtoStart,
		SrcAddrStart: netip.MustParseAddr("2001:db8:c::"),
		SrcAddrEnd:   netip.MustParseAddr("2001:db8:c:ffff:ffff:ffff:ffff:ffff"),
		ProtoStart:   6,
	}
	roadTS = nemo.TrafficSelector{
		Format:       nemo.TSFormatIPv6,
		Present:      nemo.TSSrcAddrStart | nemo.TSSrcAddrEnd,
		SrcAddrStart: netip.MustParseAddr("2001:db8:5::"),
		SrcAddrEnd:   netip.MustParseAddr("2001:db8:5:ffff:ffff:ffff:ffff:ffff"),
	}
	telemetryTS = nemo.TrafficSelector{
		Format:       nemo.TSFormatIPv6,
		Present:      nemo.TSDstAddrStart | nemo.TSTCStart | nemo.TSTCEnd,
		DstAddrStart: lanHost, TCStart: 46 << 2, TCEnd: 46 << 2,
	}
	anyTS = nemo.TrafficSelector{Format: nemo.TSFormatIPv6}
)

// The example without default_policy: each failover rule a chain of
// entries, one BID each, in the policy's order; the duplicate rule one
// entry; the direct rule in its place, unregistered.
var wantNoDefault = []Entry{
	{FID: 1, Pri: 16, Rule: "sip", Policy: "voice", BIDs: []uint16{bidCell}, TS: sipTS},
	{FID: 2, Pri: 17, Rule: "sip", Policy: "voice", BIDs: []uint16{bidWifi}, TS: sipTS},
	{FID: 3, Pri: 32, Rule: "video", Policy: "wifi_first", BIDs: []uint16{bidWifi}, TS: videoTS},
	{FID: 4, Pri: 33, Rule: "video", Policy: "wifi_first", BIDs: []uint16{bidCell}, TS: videoTS},
	{FID: 0, Pri: 48, Rule: "roadside", Policy: "direct", Direct: true, TS: roadTS},
	{FID: 5, Pri: 64, Rule: "telemetry", Policy: "control", BIDs: []uint16{bidCell, bidWifi}, Duplicate: true, TS: telemetryTS},
}

var wantDefault = append(slices.Clone(wantNoDefault),
	Entry{FID: 6, Pri: DefaultPri, Rule: "default", Policy: "wifi_first", BIDs: []uint16{bidWifi}, TS: anyTS},
	Entry{FID: 7, Pri: DefaultPri + 1, Rule: "default", Policy: "wifi_first", BIDs: []uint16{bidCell}, TS: anyTS},
)

func TestCompileExample(t *testing.T) {
	for _, tc := range []struct {
		name, extra string
		want        []Entry
	}{
		{"no default", "", wantNoDefault},
		{"default wifi_first", "\toption default_policy 'wifi_first'\n", wantDefault},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab, _ := compileExample(t, tc.extra, "")
			if !reflect.DeepEqual(tab.Entries, tc.want) {
				t.Errorf("entries:\n%s\nwant:\n%s", tab, (&Table{Entries: tc.want}))
			}
		})
	}
}

// A duplicate default policy is one catch-all listing every BID.
func TestCompileDuplicateDefault(t *testing.T) {
	tab, _ := compileExample(t, "\toption default_policy 'control'\n", "")
	last := tab.Entries[len(tab.Entries)-1]
	want := Entry{FID: 6, Pri: DefaultPri, Rule: "default", Policy: "control", BIDs: []uint16{bidCell, bidWifi}, Duplicate: true, TS: anyTS}
	if len(tab.Entries) != len(wantNoDefault)+1 || !reflect.DeepEqual(last, want) {
		t.Errorf("table:\n%s", tab)
	}
}

// The selectors on the wire, octet by octet (RFC 6088 §3.2 flags A..P from
// the most significant bit): sip's ports are in the source port fields
// (I, J), telemetry's LAN host in the destination address (C) and its DSCP
// in both TC fields (M, N).
func TestCompiledSelectorOnWire(t *testing.T) {
	for _, tc := range []struct {
		ts   nemo.TrafficSelector
		want []byte
	}{
		{sipTS, []byte{0x00, 0xc2, 0, 0, 0x13, 0xc4, 0x13, 0xc5, 17}},
		{telemetryTS, append(append([]byte{0x20, 0x0c, 0, 0}, lanHost.AsSlice()...), 0xb8, 0xb8)},
		{anyTS, []byte{0, 0, 0, 0}},
	} {
		b, err := tc.ts.MarshalBinary()
		if err != nil || !bytes.Equal(b, tc.want) {
			t.Errorf("%s: % x, %v; want % x", Describe(&tc.ts), b, err, tc.want)
		}
	}
}

// Pri blocks follow the rule's position: changing one rule's policy or
// appending a rule leaves the other rules' FID-PRIs and the catch-alls'
// alone.
func TestPriStable(t *testing.T) {
	pris := func(tab *Table) map[string][]uint16 {
		m := map[string][]uint16{}
		for _, e := range tab.Entries {
			m[e.Rule] = append(m[e.Rule], e.Pri)
		}
		return m
	}
	r := loadRouter(t, "\toption default_policy 'voice'\n", "")
	before, err := Compile(r)
	if err != nil {
		t.Fatal(err)
	}
	r.Rules[0].Policy = "control" // sip: two entries become one
	r.Rules = append(r.Rules, config.Rule{Name: "new", Proto: 6, DSCP: -1, Policy: "voice"})
	after, err := Compile(r)
	if err != nil {
		t.Fatal(err)
	}
	b, a := pris(before), pris(after)
	for _, rule := range []string{"video", "roadside", "telemetry", "default"} {
		if !slices.Equal(b[rule], a[rule]) {
			t.Errorf("%s: FID-PRIs %v became %v", rule, b[rule], a[rule])
		}
	}
	if !slices.Equal(a["sip"], []uint16{16}) || !slices.Equal(a["new"], []uint16{80, 81}) {
		t.Errorf("sip %v, new %v", a["sip"], a["new"])
	}
}

func TestCompileErrors(t *testing.T) {
	base := func() *config.Router {
		return &config.Router{
			Path: "x.uci", Line: 1,
			Uplinks:  []config.Uplink{{Name: "a", BID: 1, Line: 3}, {Name: "b", BID: 2, Line: 4}},
			Policies: []config.Policy{{Name: "p", Use: []string{"a", "b"}, Line: 5}},
			Rules:    []config.Rule{{Name: "r", Proto: -1, DSCP: -1, Policy: "p", Line: 7}},
		}
	}
	many := make([]config.Uplink, maxBindingRef+1)
	names := make([]string, len(many))
	for i := range many {
		many[i] = config.Uplink{Name: fmt.Sprint("u", i), BID: uint16(i + 1), Line: 10 + i}
		names[i] = many[i].Name
	}
	// Every error names the file and the line of the section it is about,
	// as config.Load's do.
	for _, tc := range []struct {
		name   string
		change func(r *config.Router)
		want   string
	}{
		{"IPv4 dest", func(r *config.Router) { r.Rules[0].DestIP = netip.MustParsePrefix("192.0.2.0/24") }, `x.uci:7: rule "r": an IPv4 rule, and the router has no IPv4 home address or prefix`},
		{"IPv4 src", func(r *config.Router) { r.Rules[0].SrcIP = netip.MustParsePrefix("10.0.0.1/32") }, "x.uci:7: rule \"r\": an IPv4 rule, and the router has no IPv4"},
		{"mixed families", func(r *config.Router) {
			r.MNPsV4 = []netip.Prefix{netip.MustParsePrefix("10.201.5.0/24")}
			r.Rules[0].SrcIP, r.Rules[0].DestIP = netip.MustParsePrefix("10.201.5.0/24"), netip.MustParsePrefix("2001:db8::/32")
		}, `x.uci:7: rule "r": src_ip and dest_ip are of different address families`},
		{"dual-family failover too long", func(r *config.Router) {
			r.MNPs = []netip.Prefix{netip.MustParsePrefix("2001:db8:100::/56")}
			r.MNPsV4 = []netip.Prefix{netip.MustParsePrefix("10.201.5.0/24")}
			r.Uplinks, r.Policies[0].Use = many[:PriBlock/2+1], names[:PriBlock/2+1]
		}, `x.uci:5: failover policy "p" lists 9 uplinks, at most 8 for a rule of both IPv6 and IPv4 (two FID-PRI values per uplink; rule "r" (line 7) uses it)`},
		{"no policy", func(r *config.Router) { r.Rules[0].Policy = "q" }, `x.uci:7: rule "r" (line 7): no policy "q"`},
		{"no uplink", func(r *config.Router) { r.Policies[0].Use = []string{"a", "z"} }, `x.uci:5: policy "p" uses "z", which is not an uplink`},
		{"empty policy", func(r *config.Router) { r.Policies[0].Use = nil }, `x.uci:5: policy "p" uses no uplink`},
		{"BID 0", func(r *config.Router) { r.Uplinks[1].BID = 0 }, `x.uci:4: uplink "b" has BID 0`},
		{"bad default", func(r *config.Router) { r.DefaultPolicy = "q" }, `x.uci:1: default_policy: no policy "q"`},
		{"direct default", func(r *config.Router) { r.DefaultPolicy = config.DirectPolicy }, "x.uci:1: default_policy cannot be direct"},
		{"reversed ports", func(r *config.Router) { r.Rules[0].DestPort = config.PortRange{Lo: 9, Hi: 8} }, `x.uci:7: rule "r": dest_port: range 9-8 is reversed`},
		{"DSCP", func(r *config.Router) { r.Rules[0].DSCP = 64 }, `x.uci:7: rule "r": DSCP 64`},
		{"long failover", func(r *config.Router) { r.Uplinks, r.Policies[0].Use = many[:PriBlock+1], names[:PriBlock+1] },
			`x.uci:5: failover policy "p" lists 17 uplinks, at most 16`},
		{"long default failover", func(r *config.Router) {
			r.Uplinks, r.Policies[0].Use, r.Rules, r.DefaultPolicy = many[:PriBlock+1], names[:PriBlock+1], nil, "p"
		}, `x.uci:5: failover policy "p" lists 17 uplinks, at most 16 (each rule has 16 FID-PRI values; default_policy uses it)`},
		{"long duplicate", func(r *config.Router) {
			r.Uplinks, r.Policies[0].Use, r.Policies[0].Mode = many, names, config.ModeDuplicate
		}, `x.uci:5: duplicate policy "p" lists 127 uplinks, a Binding Reference holds at most 126`},
		{"too many rules", func(r *config.Router) {
			r.Rules = slices.Repeat(r.Rules, MaxRules+1)
			r.Rules[MaxRules].Name, r.Rules[MaxRules].Line = "last", 9000
		}, `x.uci:9000: rule "last" is rule 4095: at most 4094 rules`},
	} {
		r := base()
		tc.change(r)
		tab, err := Compile(r)
		var ce *config.Error
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || !errors.As(err, &ce) || ce.Path != "x.uci" {
			t.Errorf("%s: %v, %v; want a *config.Error starting %q", tc.name, tab, err, tc.want)
		}
	}
	if _, err := Compile(base()); err != nil {
		t.Errorf("base: %v", err)
	}
	if _, err := Compile(nil); err == nil {
		t.Error("nil router compiled")
	}
	// The most rules there is room for, each with a full failover chain,
	// stay below the catch-alls.
	r := base()
	r.Uplinks, r.Policies[0].Use = many[:PriBlock], names[:PriBlock]
	r.Rules = slices.Repeat(r.Rules, MaxRules)
	r.DefaultPolicy = "p"
	tab, err := Compile(r)
	if err != nil {
		t.Fatal(err)
	}
	n := len(tab.Entries)
	if n != (MaxRules+1)*PriBlock || tab.Entries[n-PriBlock-1].Pri != DefaultPri-1 || tab.Entries[n-1].Pri != 0xffff {
		t.Errorf("%d entries, last rule's %d, last %d", n, tab.Entries[n-PriBlock-1].Pri, tab.Entries[n-1].Pri)
	}
}

// The router's registered entries survive the trip through a Binding
// Update, and the home agent's table equals them.
func TestRoundTrip(t *testing.T) {
	for _, extra := range []string{"", "\toption default_policy 'wifi_first'\n"} {
		tab, _ := compileExample(t, extra, "")
		bu := &nemo.BindingUpdate{
			Seq: 7, Lifetime: 150,
			Options: nemo.Options{
				BIDs:    []nemo.BID{{ID: bidWifi, Pri: 10}, {ID: bidCell, Pri: 20}},
				FlowIDs: tab.FlowIDs(),
			},
		}
		if n := len(bu.FlowIDs); n != len(tab.Entries)-1 {
			t.Errorf("%d Flow Identification options for %d entries, one direct", n, len(tab.Entries))
		}
		mh, err := nemo.Marshal(bu)
		if err != nil {
			t.Fatal(err)
		}
		var got nemo.BindingUpdate
		if err := nemo.Unmarshal(mh, &got); err != nil {
			t.Fatal(err)
		}
		ha, status := FromFlowIDs(got.FlowIDs)
		if slices.ContainsFunc(status, func(s uint8) bool { return s != nemo.FlowStatusOK }) {
			t.Errorf("statuses %v", status)
		}
		if !ha.Equal(tab.Registered()) {
			t.Errorf("home agent's table:\n%s\nrouter's:\n%s", ha, tab)
		}
		if ha.Equal(tab) {
			t.Error("the home agent's table equals the one with the direct entry")
		}
	}
}

// FlowIDs shares nothing with the table: the binding code may change the
// options it sends.
func TestFlowIDsCopy(t *testing.T) {
	tab, _ := compileExample(t, "", "")
	ids := tab.FlowIDs()
	ids[0].BIDs[0] = 99
	if tab.Entries[0].BIDs[0] != bidCell {
		t.Error("FlowIDs aliases the table's BIDs")
	}
}

func TestFromFlowIDsStatus(t *testing.T) {
	good := func(fid, pri uint16) nemo.FlowID {
		return nemo.FlowID{FID: fid, Pri: pri, BIDs: []uint16{1}, TS: sipTS}
	}
	with := func(f nemo.FlowID, change func(*nemo.FlowID)) nemo.FlowID {
		f.BIDs = slices.Clone(f.BIDs)
		change(&f)
		return f
	}
	v4 := nemo.TrafficSelector{Format: nemo.TSFormatIPv4, Present: nemo.TSSrcAddrStart, SrcAddrStart: netip.MustParseAddr("192.0.2.1")}
	const ok, bad, unsup = nemo.FlowStatusOK, nemo.FlowStatusMalformed, nemo.FlowStatusTSUnsupported
	cases := []struct {
		name string
		f    nemo.FlowID
		want uint8
	}{
		{"good", good(1, 10), ok},
		{"no selector", with(good(2, 20), func(f *nemo.FlowID) { f.TS = nemo.TrafficSelector{} }), bad},
		{"no Binding Reference", with(good(3, 30), func(f *nemo.FlowID) { f.BIDs = nil }), bad},
		{"empty Binding Reference", with(good(4, 40), func(f *nemo.FlowID) { f.BIDs = []uint16{} }), bad},
		{"BID 0", with(good(5, 50), func(f *nemo.FlowID) { f.BIDs = []uint16{1, 0} }), bad},
		{"format 3", with(good(6, 60), func(f *nemo.FlowID) { f.TS.Format = 3 }), unsup},
		{"format 3, no BIDs: selector first", with(good(7, 70), func(f *nemo.FlowID) { f.TS.Format = 3; f.BIDs = nil }), unsup},
		{"IPv4 selector", with(good(8, 80), func(f *nemo.FlowID) { f.TS = v4 }), ok},
		{"FID repeated", good(1, 90), bad},
		{"FID-PRI repeated", good(9, 10), bad},
		{"FID-PRI 0", good(10, 0), bad},
		{"FID 0", good(0, 100), bad},
		{"reversed ports", with(good(11, 110), func(f *nemo.FlowID) { f.TS.SrcPortEnd = 5059 }), bad},
		{"reversed addresses", with(good(12, 120), func(f *nemo.FlowID) {
			f.TS = videoTS
			f.TS.SrcAddrStart, f.TS.SrcAddrEnd = f.TS.SrcAddrEnd, f.TS.SrcAddrStart
		}), bad},
		{"end without start", with(good(13, 130), func(f *nemo.FlowID) { f.TS.Present = nemo.TSProtoEnd }), bad},
		{"flow label in IPv4", with(good(14, 140), func(f *nemo.FlowID) { f.TS = v4; f.TS.Present |= nemo.TSFlowLabelStart }), bad},
		{"IPv4 address in IPv6", with(good(15, 150), func(f *nemo.FlowID) {
			f.TS.Present |= nemo.TSDstAddrStart
			f.TS.DstAddrStart = netip.MustParseAddr("10.0.0.1")
		}), bad},
		// The FID of a rejected option still counts as used; its FID-PRI
		// does not.
		{"FID of a rejected option", good(2, 160), bad},
		{"FID-PRI of a rejected option", good(16, 20), ok},
		{"BID listed twice", with(good(17, 170), func(f *nemo.FlowID) { f.BIDs = []uint16{2, 1, 2} }), ok},
	}
	ids := make([]nemo.FlowID, len(cases))
	for i, c := range cases {
		ids[i] = c.f
	}
	tab, status := FromFlowIDs(ids)
	if len(status) != len(cases) {
		t.Fatalf("%d statuses for %d options", len(status), len(cases))
	}
	for i, c := range cases {
		if status[i] != c.want {
			t.Errorf("%s: status %d, want %d", c.name, status[i], c.want)
		}
	}
	want := []Entry{
		{FID: 1, Pri: 10, BIDs: []uint16{1}, TS: sipTS},
		{FID: 16, Pri: 20, BIDs: []uint16{1}, TS: sipTS},
		{FID: 8, Pri: 80, BIDs: []uint16{1}, TS: v4},
		{FID: 17, Pri: 170, BIDs: []uint16{2, 1}, Duplicate: true, TS: sipTS},
	}
	if !reflect.DeepEqual(tab.Entries, want) {
		t.Errorf("table:\n%s", tab)
	}
}

func TestEqual(t *testing.T) {
	a, _ := compileExample(t, "", "")
	b, _ := compileExample(t, "", "")
	for i := range b.Entries {
		b.Entries[i].Rule, b.Entries[i].Policy = "", ""
	}
	// Traffic Class octets differing only in the ECN bits are one DSCP.
	b.Entries[5].TS.TCStart |= 3
	if !a.Equal(b) {
		t.Error("names or ECN bits made a difference")
	}
	b.Entries[0].BIDs = []uint16{bidWifi}
	if a.Equal(b) {
		t.Error("different BIDs are equal")
	}
	b, _ = compileExample(t, "", "")
	b.Entries[2].TS.ProtoStart = 17
	if a.Equal(b) {
		t.Error("different selectors are equal")
	}
	b.Entries = b.Entries[:3]
	if a.Equal(b) || b.Equal(a) {
		t.Error("different lengths are equal")
	}
	if !(*Table)(nil).Equal(&Table{}) || a.Equal(nil) {
		t.Error("nil table")
	}
}

func TestView(t *testing.T) {
	tab, _ := compileExample(t, "\toption default_policy 'wifi_first'\n", "")
	v := tab.View(usableSet(bidWifi)) // cell is down
	want := []struct {
		sel    string
		mode   string
		active bool
	}{
		{"udp dport 5060-5061", "failover", false},
		{"udp dport 5060-5061", "failover", true},
		{"tcp daddr 2001:db8:c::/48", "failover", true},
		{"tcp daddr 2001:db8:c::/48", "failover", false},
		{"daddr 2001:db8:5::/48", "direct", true},
		{"saddr 2001:db8:100::10 dscp 46", "duplicate", true},
		{"any", "failover", true},
		{"any", "failover", false},
	}
	if len(v) != len(want) {
		t.Fatalf("%d views", len(v))
	}
	for i, w := range want {
		if v[i].Selector != w.sel || v[i].Mode != w.mode || v[i].Active != w.active {
			t.Errorf("entry %d: %+v, want %+v", i, v[i], w)
		}
	}
	js, err := json.Marshal(v[4:6])
	if err != nil {
		t.Fatal(err)
	}
	const wantJSON = `[{"rule":"roadside","policy":"direct","fid_pri":48,"mode":"direct","selector":"daddr 2001:db8:5::/48","active":true,"packets":0},` +
		`{"rule":"telemetry","policy":"control","fid":5,"fid_pri":64,"mode":"duplicate","bids":[2,1],"selector":"saddr 2001:db8:100::10 dscp 46","active":true,"packets":0}]`
	if string(js) != wantJSON {
		t.Errorf("JSON\n%s\nwant\n%s", js, wantJSON)
	}
	s := tab.String()
	for _, line := range []string{
		"FID-PRI  FID  RULE       POLICY      MODE       BIDS  SELECTOR",
		"17       2    sip        voice       failover   1     udp dport 5060-5061",
		"48       -    roadside   direct      direct     -     daddr 2001:db8:5::/48",
		"65521    7    default    wifi_first  failover   2     any",
	} {
		if !strings.Contains(s, line+"\n") {
			t.Errorf("String() has no line %q:\n%s", line, s)
		}
	}
}

func TestDescribe(t *testing.T) {
	a := netip.MustParseAddr("2001:db8::1")
	for _, tc := range []struct {
		ts   nemo.TrafficSelector
		want string
	}{
		{nemo.TrafficSelector{}, "none"},
		{nemo.TrafficSelector{Format: nemo.TSFormatIPv6, Present: nemo.TSSrcAddrStart | nemo.TSSrcAddrEnd,
			SrcAddrStart: a, SrcAddrEnd: netip.MustParseAddr("2001:db8::7")}, "daddr 2001:db8::1-2001:db8::7"},
		{nemo.TrafficSelector{Format: nemo.TSFormatIPv6, Present: nemo.TSProtoStart | nemo.TSProtoEnd | nemo.TSSPIStart |
			nemo.TSFlowLabelStart | nemo.TSDstPortStart, ProtoStart: 6, ProtoEnd: 17, SPIStart: 300, FlowLabelStart: 0x12345, DstPortStart: 99},
			"proto 6-17 sport 99 flowlabel 74565 spi 300"},
		{nemo.TrafficSelector{Format: nemo.TSFormatIPv4, Present: nemo.TSDstAddrStart | nemo.TSDstAddrEnd | nemo.TSProtoStart,
			DstAddrStart: netip.MustParseAddr("10.1.0.0"), DstAddrEnd: netip.MustParseAddr("10.1.255.255"), ProtoStart: 1},
			"icmp saddr 10.1.0.0/16"},
		{nemo.TrafficSelector{Format: nemo.TSFormatIPv6, Present: nemo.TSProtoStart, ProtoStart: 200}, "proto 200"},
	} {
		if got := Describe(&tc.ts); got != tc.want {
			t.Errorf("Describe = %q, want %q", got, tc.want)
		}
	}
}

func TestBindingOrder(t *testing.T) {
	bids := []nemo.BID{{ID: 3}, {ID: 2, Pri: 20}, {ID: 1, Pri: 20}, {ID: 4, Pri: 5}}
	if got := BindingOrder(bids, []uint16{9}); !slices.Equal(got, []uint16{9, 4, 1, 2, 3}) {
		t.Errorf("BindingOrder = %v", got)
	}
	if bids[0].ID != 3 {
		t.Error("BindingOrder sorted its input")
	}
	r := loadRouter(t, "", "")
	r.Uplinks[0].Priority = 30 // wifi behind cell
	if got := UplinkOrder(r); !slices.Equal(got, []uint16{bidCell, bidWifi}) {
		t.Errorf("UplinkOrder = %v", got)
	}
}
