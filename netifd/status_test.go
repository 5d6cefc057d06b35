package netifd

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"nemod/ubus"
)

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func secs(n int) time.Time { return now.Add(time.Duration(n) * time.Second) }

// replyData returns the DATA of the reply a recorded client received.
func replyData(t testing.TB, name string) ubus.Table {
	t.Helper()
	for _, fr := range frames(t, name) {
		m, _ := ubus.ParseMessage(fr.Bytes)
		if !fr.C2S && m.Type == ubus.MsgData {
			if d, ok, err := m.Data(); ok && err == nil {
				if _, isLookup := m.Path(); !isLookup {
					return d
				}
			}
		}
	}
	t.Fatalf("%s: no reply data", name)
	return nil
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestParseStatusRecordings decodes netifd's recorded status replies and
// checks every member the uplink state carries.
func TestParseStatusRecordings(t *testing.T) {
	wan, err := ParseStatus("wan", replyData(t, "status.cli-wan.json"), now)
	if err != nil {
		t.Fatal(err)
	}
	want := Interface{
		Name: "wan", Up: true, Available: true, Autostart: true, UpSince: secs(-10),
		L3Device: "wan0", Device: "wan0", Proto: "static", Metric: 10, Delegation: true,
		Updated: []string{"addresses", "routes"},
		IPv4:    []AddrInfo{{Prefix: pfx("198.51.100.2/24")}},
		IPv6:    []AddrInfo{{Prefix: pfx("2001:db8:ffff::2/64")}},
		Routes: []RouteInfo{
			{Target: pfx("::/0"), Nexthop: addr("2001:db8:ffff::1"), Source: pfx("::/0"), Metric: -1},
			{Target: pfx("0.0.0.0/0"), Nexthop: addr("198.51.100.1"), Source: pfx("0.0.0.0/0"), Metric: -1},
		},
		DNS:  []netip.Addr{addr("2001:db8:ffff::53")},
		Data: ubus.Table{},
	}
	if !reflect.DeepEqual(wan, want) {
		t.Errorf("wan:\n%+v\nwant\n%+v", wan, want)
	}
	if d := wan.DefaultRoutes(6); len(d) != 1 || d[0].Nexthop != addr("2001:db8:ffff::1") || d[0].SourceSpecific() {
		t.Errorf("IPv6 default routes %+v", d)
	}
	if d := wan.DefaultRoutes(4); len(d) != 1 || d[0].Nexthop != addr("198.51.100.1") {
		t.Errorf("IPv4 default routes %+v", d)
	}

	nemo, err := ParseStatus("nemo", replyData(t, "notify-proto.cli-status.json"), now)
	if err != nil {
		t.Fatal(err)
	}
	if !nemo.Up || nemo.L3Device != "nemo0" || nemo.Device != "" || nemo.Proto != "nemo" ||
		!reflect.DeepEqual(nemo.IPv6, []AddrInfo{{Prefix: pfx("2001:db8:ff00::10/128"), Preferred: secs(3597), Valid: secs(7197)}}) ||
		!reflect.DeepEqual(nemo.Prefixes, []PrefixInfo{{Prefix: pfx("2001:db8:100::/56"), Preferred: secs(3597), Valid: secs(7197),
			Class: "nemo", Assigned: map[string]netip.Prefix{"lan": pfx("2001:db8:100::/64")}}}) {
		t.Errorf("nemo: %+v", nemo)
	}
	wantRoutes := []RouteInfo{
		{Target: pfx("2001:db8:ff00::/64"), Nexthop: addr("fe80::1"), Source: pfx("::/0"), Metric: 256},
		{Target: pfx("::/0"), Nexthop: addr("fe80::1"), Source: pfx("2001:db8:100::/56"), Metric: -1},
	}
	if !reflect.DeepEqual(nemo.Routes, wantRoutes) {
		t.Errorf("nemo routes %+v", nemo.Routes)
	}
	if d := nemo.DefaultRoutes(6); len(d) != 1 || !d[0].SourceSpecific() {
		t.Errorf("nemo default %+v", d)
	}

	lan, err := ParseStatus("lan", replyData(t, "prefix-change.cli-status-lan.json"), now)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(lan.Assigned, []AssignmentInfo{{Prefix: pfx("2001:db8:200::/64"), Preferred: secs(3597),
		Valid: secs(7197), Local: pfx("2001:db8:200::1/64")}}) || len(lan.IPv4) != 1 {
		t.Errorf("lan %+v", lan)
	}

	for _, f := range []string{"notify-proto.cli-status-pending.json", "link-down.cli-status.json"} {
		p, err := ParseStatus("nemo", replyData(t, f), now)
		if err != nil || p.Up || !p.Pending || !p.Available || !p.UpSince.IsZero() || p.Routes != nil {
			t.Errorf("%s: %+v %v", f, p, err)
		}
	}
}

func TestParseDumpRecording(t *testing.T) {
	list, err := ParseDump(replyData(t, "status.cli-dump.json"), now)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range list {
		names = append(names, i.Name)
	}
	if strings.Join(names, " ") != "lan loopback nemo wan" {
		t.Fatalf("dump: %v", names)
	}
	// A dump member is the interface's status: the same as its own
	// status reply, recorded at the same moment.
	wan, _ := ParseStatus("wan", replyData(t, "status.cli-wan.json"), now)
	if !list[3].Same(wan) {
		t.Errorf("dump wan %+v\nstatus %+v", list[3], wan)
	}
}

// TestParseSessionMessages decodes every interface notification and every
// interface event netifd sent in the whole recorded run.
func TestParseSessionMessages(t *testing.T) {
	var updates, downs, events int
	actions := map[string]int{}
	for i, fr := range frames(t, "session.netifd.json") {
		m, err := ubus.ParseMessage(fr.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		method, _ := m.Method()
		if !fr.C2S {
			continue
		}
		d, _, _ := m.Data()
		switch {
		case m.Type == ubus.MsgNotify && strings.HasPrefix(method, "interface."):
			iface, err := ParseNotification(method, d, now)
			if err != nil {
				t.Fatalf("frame %d: %v", i+1, err)
			}
			if method == NotifyUpdate {
				updates++
				if !iface.Up || iface.L3Device == "" {
					t.Errorf("frame %d: update %+v", i+1, iface)
				}
			} else {
				downs++
			}
		case m.Type == ubus.MsgInvoke && method == "send":
			name, _ := d.String("id")
			data, _ := d.Table("data")
			ev, err := ParseEvent(name, data)
			if err != nil {
				t.Fatalf("frame %d: %v", i+1, err)
			}
			events++
			actions[ev.Action]++
		}
	}
	// Counted in the recording's own notes: each notification goes out on
	// network.interface and on the interface's own object.
	if updates != 22 || downs != 14 || events != 14 || actions["ifup"] != 7 || actions["ifdown"] != 7 {
		t.Errorf("%d updates, %d downs, %d events %v", updates, downs, events, actions)
	}
}

func TestParseErrors(t *testing.T) {
	good := replyData(t, "status.cli-wan.json")
	with := func(name string, v ubus.Value) ubus.Table {
		t := append(ubus.Table(nil), good...)
		for i := range t {
			if t[i].Name == name {
				t[i].Value = v
			}
		}
		return t
	}
	for name, tab := range map[string]ubus.Table{
		"up a string":     with("up", ubus.String("yes")),
		"uptime a string": with("uptime", ubus.String("10")),
		"bad address":     with("ipv4-address", ubus.Array{ubus.Table{{Name: "address", Value: ubus.String("x")}, {Name: "mask", Value: ubus.Int32(24)}}}),
		"mask too big":    with("ipv6-address", ubus.Array{ubus.Table{{Name: "address", Value: ubus.String("::1")}, {Name: "mask", Value: ubus.Int32(129)}}}),
		"IPv4 in IPv6":    with("ipv6-address", ubus.Array{ubus.Table{{Name: "address", Value: ubus.String("10.0.0.1")}, {Name: "mask", Value: ubus.Int32(8)}}}),
		"route source":    with("route", ubus.Array{ubus.Table{{Name: "target", Value: ubus.String("::")}, {Name: "mask", Value: ubus.Int32(0)}, {Name: "source", Value: ubus.String("nope")}}}),
		"entry not table": with("route", ubus.Array{ubus.Int32(1)}),
		"dns not string":  with("dns-server", ubus.Array{ubus.Int32(1)}),
	} {
		if _, err := ParseStatus("wan", tab, now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseNotification("interface.update", good, now); err == nil {
		t.Error("notification without the interface's name accepted")
	}
	if _, err := ParseNotification("interface.down", append(ubus.Table{{Name: "interface", Value: ubus.String("wan")}}, good...), now); err == nil {
		t.Error("interface.down saying up accepted")
	}
	if _, err := ParseNotification("link_up", good, now); err == nil {
		t.Error("device notification accepted")
	}
	if _, err := ParseDump(ubus.Table{{Name: "interface", Value: ubus.Array{good}}}, now); err == nil {
		t.Error("dump entry without a name accepted")
	}
	if _, err := ParseEvent("network.interface", ubus.Table{{Name: "action", Value: ubus.String("ifup")}}); err == nil {
		t.Error("event without an interface accepted")
	}
}

// TestSame: two reports of one state taken a second apart are the same;
// a renewed lifetime, another address or route is not.
func TestSame(t *testing.T) {
	d := replyData(t, "notify-proto.cli-status.json")
	a, _ := ParseStatus("nemo", d, now)
	b, _ := ParseStatus("nemo", d, now.Add(time.Second))
	if !a.Same(b) {
		t.Error("one state a second apart differs")
	}
	c, _ := ParseStatus("nemo", d, now.Add(time.Hour))
	if a.Same(c) {
		t.Error("lifetimes an hour apart are the same")
	}
	e := a
	e.Routes = e.Routes[:1]
	if a.Same(e) {
		t.Error("a route less is the same")
	}
}
