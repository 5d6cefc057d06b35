package dbusapi

import (
	"encoding/xml"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"

	"nemod/status"
)

func TestEscapePathElement(t *testing.T) {
	for in, want := range map[string]string{
		"wifi": "wifi", "cell-1": "cell_2d1", "lte_2": "lte_5f2", "": "_", "bus 2": "bus_202", "é": "_c3_a9", "_": "_5f",
	} {
		got := EscapePathElement(in)
		if got != want {
			t.Errorf("EscapePathElement(%q) = %q, want %q", in, got, want)
		}
		if !dbus.ObjectPath("/x/" + got).IsValid() {
			t.Errorf("%q does not make a valid path", got)
		}
		back, ok := UnescapePathElement(got)
		if !ok || back != in {
			t.Errorf("UnescapePathElement(%q) = %q, %v", got, back, ok)
		}
	}
	for _, bad := range []string{"", "_6", "_zz", "_2D", "_61", "a-b", "__"} {
		if s, ok := UnescapePathElement(bad); ok {
			t.Errorf("UnescapePathElement(%q) accepted as %q", bad, s)
		}
	}
}

func FuzzEscapePathElement(f *testing.F) {
	f.Add("wifi")
	f.Add("a_b-c d")
	f.Fuzz(func(t *testing.T, s string) {
		e := EscapePathElement(s)
		if !dbus.ObjectPath("/" + e).IsValid() {
			t.Fatalf("%q -> invalid element %q", s, e)
		}
		if back, ok := UnescapePathElement(e); !ok || back != s {
			t.Fatalf("%q -> %q -> %q %v", s, e, back, ok)
		}
	})
}

// Every property's value has the type its introspection data declares:
// a client that trusts the XML decodes what it gets.
func TestPropertyTypesMatchIntrospection(t *testing.T) {
	full := routerSnap()
	check := func(tr *tree) {
		for p, obj := range tr.objects {
			for iface, ps := range obj {
				spec := tr.ifaces[iface]
				if len(spec.props) != len(ps) {
					t.Errorf("%s %s: %d values for %d properties", p, iface, len(ps), len(spec.props))
				}
				for _, sp := range spec.props {
					if got := ps[sp.name].Signature().String(); got != sp.sig {
						t.Errorf("%s %s.%s: value of type %s, declared %s", p, iface, sp.name, got, sp.sig)
					}
				}
			}
		}
	}
	check(routerTree(full))
	check(routerTree(status.Router{})) // nil slices and maps still have their types
	check(homeAgentTree(status.HomeAgent{MobileRouters: []status.MobileRouter{{Name: "car1", Bindings: full.Bindings}, {Name: "empty"}}}))
}

func TestDiff(t *testing.T) {
	a := routerSnap()
	ta := routerTree(a)
	if d := diff(nil, ta); d != nil {
		t.Errorf("first tree: %v", d)
	}
	if d := diff(ta, routerTree(a)); len(d) != 0 {
		t.Errorf("the same snapshot again: %v", d)
	}
	clock := routerSnap()
	clock.Uptime += 10
	clock.Bindings[0].Lifetime = 1
	clock.Runtime.Goroutines = 99
	if d := diff(ta, routerTree(clock)); len(d) != 0 {
		t.Errorf("only quiet properties changed: %v", d)
	}

	b := routerSnap()
	b.Counters.Sent++
	b.Counters.Rejected = map[string]uint64{"auth": 2}
	b.Bindings[0].RTTms = 20
	b.Bindings = b.Bindings[:1]
	b.Bindings = append(b.Bindings, status.Binding{BID: 7, State: status.StateDown}) // unnamed uplink
	d := diff(ta, routerTree(b))
	var got []string
	for _, s := range d {
		line := string(s.path) + " " + s.member
		switch s.member {
		case propertiesIntf + ".PropertiesChanged":
			line += " " + s.body[0].(string)
			for _, k := range slices.Sorted(maps.Keys(s.body[1].(map[string]dbus.Variant))) {
				line += " " + k
			}
		default:
			line += " " + string(s.body[0].(dbus.ObjectPath))
		}
		got = append(got, line)
	}
	want := []string{
		"/org/nemod/Router1 org.freedesktop.DBus.ObjectManager.InterfacesRemoved /org/nemod/Router1/Uplink/cell_2d1",
		"/org/nemod/Router1 org.freedesktop.DBus.Properties.PropertiesChanged org.nemod.Router1 BindingUpdatesSent Rejections",
		"/org/nemod/Router1/Uplink/wifi org.freedesktop.DBus.Properties.PropertiesChanged org.nemod.Router1.Uplink RoundTripTimeMs",
		"/org/nemod/Router1 org.freedesktop.DBus.ObjectManager.InterfacesAdded /org/nemod/Router1/Uplink/bid7",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Two bindings on one uplink name are two objects.
	dup := routerSnap()
	dup.Bindings[1].Uplink = "wifi"
	if n := len(routerTree(dup).children()); n != 2 {
		t.Errorf("%d objects for two bindings of one uplink", n)
	}
}

func TestIntrospectNodes(t *testing.T) {
	tr := homeAgentTree(status.HomeAgent{MobileRouters: []status.MobileRouter{{Name: "car1"}, {Name: "bus2"}}})
	for path, want := range map[dbus.ObjectPath][]string{
		"/":                                  {"org"},
		"/org/nemod":                         {"HomeAgent1"},
		"/org/nemod/HomeAgent1":              {"MobileRouter"},
		"/org/nemod/HomeAgent1/MobileRouter": {"bus2", "car1"},
	} {
		x, ok := tr.introspect(path)
		if !ok {
			t.Fatalf("%s: no node", path)
		}
		var n xmlNode
		if err := xml.Unmarshal([]byte(x), &n); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var names []string
		for _, c := range n.Nodes {
			names = append(names, c.Name)
		}
		if strings.Join(names, ",") != strings.Join(want, ",") {
			t.Errorf("%s: children %v, want %v", path, names, want)
		}
		hasProps := strings.Contains(x, propertiesIntf)
		_, isObject := tr.objects[path]
		if hasProps != isObject {
			t.Errorf("%s: Properties listed %v, object %v", path, hasProps, isObject)
		}
	}
	x, _ := tr.introspect("/org/nemod/HomeAgent1/MobileRouter/car1")
	if !strings.Contains(x, `<property name="Bindings" type="a(qsssbssddtttt)" access="read">`) ||
		!strings.Contains(x, `value="`+bindingFields+`"`) {
		t.Errorf("mobile router introspection:\n%s", x)
	}
	for _, p := range []dbus.ObjectPath{"/org/nemod/HomeAgent1/MobileRouter/van3", "/org/other", "/org/nemod/HomeAgent"} {
		if _, ok := tr.introspect(p); ok {
			t.Errorf("%s answers Introspect", p)
		}
	}
}

func TestDialTargets(t *testing.T) {
	got, err := dialTargets("unix:path=/run/x%20y,guid=1;tcp:host=127.0.0.1,port=4;unix:abstract=/tmp/dbus-x;launchd:env=X")
	if err != nil {
		t.Fatal(err)
	}
	want := []dialTarget{{"unix", "/run/x y"}, {"tcp", "127.0.0.1:4"}, {"unix", "@/tmp/dbus-x"}}
	if len(got) != len(want) {
		t.Fatalf("%v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%d: %v, want %v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"", "nocolon", "unix:path", "launchd:env=X", "unix:path=%zz"} {
		if _, err := dialTargets(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSystemBusAvailable(t *testing.T) {
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+t.TempDir()+"/none")
	if SystemBusAvailable() {
		t.Error("a bus where no socket is")
	}
	if SystemBusAddress() == DefaultSystemBusAddress {
		t.Error("DBUS_SYSTEM_BUS_ADDRESS ignored")
	}
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "")
	if SystemBusAddress() != DefaultSystemBusAddress {
		t.Error("no default")
	}
}
