package dbusapi

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"nemod/internal/dbustest"
	"nemod/status"
)

func routerSnap() status.Router {
	return status.Router{
		Role: status.RoleRouter, HomeAddress: "2001:db8:1::10", HomeAgent: "2001:db8:1::1",
		MNP: []string{"2001:db8:100::/64"}, Uptime: 100,
		Bindings: []status.Binding{
			{BID: 1, Uplink: "wifi", Device: "wlan0", CoA: "2001:db8:a::2", Encap: "ip6ip6", State: status.StateRegistered,
				Lifetime: 200, RTTms: 12.5, Loss: 0.25, Traffic: status.Traffic{TxPackets: 3, TxBytes: 300, RxPackets: 4, RxBytes: 400}},
			{BID: 2, Uplink: "cell-1", Device: "wwan0", CoA: "198.51.100.7", Encap: "udp", NAT: true, State: status.StateRegistered, Lifetime: 200},
		},
		Counters: status.Counters{Sent: 10, Received: 9, Accepted: 9, Probes: 50, Failovers: 1,
			Rejected: map[string]uint64{"auth": 1}},
		DataPlane: status.DataPlane{Backend: "userspace", Device: "nemo0", MTU: 1400, Drops: map[string]uint64{"no_binding": 2}},
	}
}

// xmlNode is what we read back of introspection data.
type xmlNode struct {
	Interfaces []struct {
		Name    string `xml:"name,attr"`
		Methods []struct {
			Name string `xml:"name,attr"`
			Args []struct {
				Name      string `xml:"name,attr"`
				Type      string `xml:"type,attr"`
				Direction string `xml:"direction,attr"`
			} `xml:"arg"`
		} `xml:"method"`
		Properties []struct {
			Name        string `xml:"name,attr"`
			Type        string `xml:"type,attr"`
			Access      string `xml:"access,attr"`
			Annotations []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:"value,attr"`
			} `xml:"annotation"`
		} `xml:"property"`
	} `xml:"interface"`
	Nodes []struct {
		Name string `xml:"name,attr"`
	} `xml:"node"`
}

func TestRouterOnBus(t *testing.T) {
	// The users and group first: the bus resolves a policy's group name
	// when it reads its configuration.
	member := dbustest.MakeUser(t, true)
	outsider := dbustest.MakeUser(t, false)
	b := dbustest.Start(t)

	var reloads atomic.Int32
	r := NewRouter(Config{Address: b.Address, RetryMin: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		Reload: func() (status.Reload, error) {
			reloads.Add(1)
			return status.Reload{Reloaded: true, Applied: []string{"wifi.metric"}, NeedsRestart: []string{"global.home_agent"}}, nil
		}})
	defer r.Close()
	snap := routerSnap()
	r.Update(snap)
	dbustest.WaitFor(t, 5*time.Second, "the router on the bus", r.Published)

	wifi := "/org/nemod/Router1/Uplink/wifi"
	cell := "/org/nemod/Router1/Uplink/cell_2d1" // "-" escaped

	t.Run("tree", func(t *testing.T) {
		out, errs, ok := b.Run(nil, "busctl", "--address="+b.Address, "--list", "tree", RouterName)
		if !ok {
			t.Fatal(errs)
		}
		for _, p := range []string{"/org/nemod/Router1", "/org/nemod/Router1/Uplink", wifi, cell} {
			if !strings.Contains("\n"+out, "\n"+p+"\n") {
				t.Errorf("busctl tree lacks %s:\n%s", p, out)
			}
		}
	})

	t.Run("introspect", func(t *testing.T) {
		// gdbus reads our XML with its own parser.
		out, errs, ok := b.Run(nil, "gdbus", "introspect", "--address", b.Address, "--dest", RouterName, "--object-path", "/org/nemod/Router1", "--xml")
		if !ok {
			t.Fatal(errs)
		}
		var n xmlNode
		if err := xml.Unmarshal([]byte(out), &n); err != nil {
			t.Fatalf("%v in %s", err, out)
		}
		ifaces := map[string]bool{}
		for _, i := range n.Interfaces {
			ifaces[i.Name] = true
			if i.Name != RouterName {
				continue
			}
			props := map[string]string{}
			for _, p := range i.Properties {
				emits := ""
				for _, a := range p.Annotations {
					if a.Name == "org.freedesktop.DBus.Property.EmitsChangedSignal" {
						emits = a.Value
					}
				}
				props[p.Name] = p.Type + " " + p.Access + " " + emits
			}
			for name, want := range map[string]string{
				"HomeAddress": "s read true", "MobileNetworkPrefixes": "as read true", "Uptime": "x read false",
				"Failovers": "t read true", "Rejections": "a{st} read true", "DataPlaneDrops": "a{st} read true",
			} {
				if props[name] != want {
					t.Errorf("property %s: %q, want %q", name, props[name], want)
				}
			}
			if len(i.Methods) != 1 || i.Methods[0].Name != "Reload" || len(i.Methods[0].Args) != 3 ||
				i.Methods[0].Args[1].Type != "as" || i.Methods[0].Args[1].Direction != "out" {
				t.Errorf("methods %+v", i.Methods)
			}
		}
		for _, want := range []string{RouterName, propertiesIntf, introspectIntf, peerIntf, objectManagerIntf} {
			if !ifaces[want] {
				t.Errorf("no interface %s on the root", want)
			}
		}
		if len(n.Nodes) != 1 || n.Nodes[0].Name != "Uplink" {
			t.Errorf("child nodes %+v", n.Nodes)
		}
	})

	t.Run("properties", func(t *testing.T) {
		for _, c := range []struct {
			path, iface, prop string
			want              string
		}{
			{"/org/nemod/Router1", RouterName, "HomeAddress", `{"type":"s","data":"2001:db8:1::10"}`},
			{"/org/nemod/Router1", RouterName, "MobileNetworkPrefixes", `{"type":"as","data":["2001:db8:100::/64"]}`},
			{"/org/nemod/Router1", RouterName, "Failovers", `{"type":"t","data":1}`},
			{"/org/nemod/Router1", RouterName, "DataPlaneDrops", `{"type":"a{st}","data":{"no_binding":2}}`},
			{wifi, UplinkInterface, "BID", `{"type":"q","data":1}`},
			{wifi, UplinkInterface, "CareOfAddress", `{"type":"s","data":"2001:db8:a::2"}`},
			{wifi, UplinkInterface, "Encapsulation", `{"type":"s","data":"ip6ip6"}`},
			{wifi, UplinkInterface, "State", `{"type":"s","data":"registered"}`},
			{wifi, UplinkInterface, "RoundTripTimeMs", `{"type":"d","data":12.5}`},
			{wifi, UplinkInterface, "ProbeLoss", `{"type":"d","data":0.25}`},
			{wifi, UplinkInterface, "TxBytes", `{"type":"t","data":300}`},
			{cell, UplinkInterface, "Name", `{"type":"s","data":"cell-1"}`},
			{cell, UplinkInterface, "NAT", `{"type":"b","data":true}`},
		} {
			var got, want any
			b.BusctlJSON(&got, "get-property", RouterName, c.path, c.iface, c.prop)
			json.Unmarshal([]byte(c.want), &want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s %s: %v, want %v", c.path, c.prop, got, want)
			}
		}
		// Set is refused and changes nothing.
		_, errs, ok := b.Run(nil, "busctl", "--address="+b.Address, "set-property", RouterName, wifi, UplinkInterface, "State", "s", "down")
		if ok || !strings.Contains(errs, "read-only") {
			t.Errorf("set-property: ok=%v %s", ok, errs)
		}
		_, errs, ok = b.Run(nil, "gdbus", "call", "--address", b.Address, "--dest", RouterName, "--object-path", wifi,
			"--method", "org.freedesktop.DBus.Properties.Get", UplinkInterface, "Nope")
		if ok || !strings.Contains(errs, ErrorUnknownProperty) {
			t.Errorf("Get of an unknown property: ok=%v %s", ok, errs)
		}
	})

	t.Run("managed objects", func(t *testing.T) {
		var got struct {
			Data []map[string]map[string]map[string]struct {
				Type string `json:"type"`
				Data any    `json:"data"`
			} `json:"data"`
		}
		b.BusctlJSON(&got, "call", RouterName, "/org/nemod/Router1", objectManagerIntf, "GetManagedObjects")
		objs := got.Data[0]
		if len(objs) != 2 {
			t.Fatalf("managed objects %v", objs)
		}
		w := objs[wifi][UplinkInterface]
		if w["CareOfAddress"].Data != "2001:db8:a::2" || w["BID"].Data != float64(1) || w["State"].Data != "registered" {
			t.Errorf("wifi %+v", w)
		}
		if objs[cell][UplinkInterface]["Encapsulation"].Data != "udp" {
			t.Errorf("cell %+v", objs[cell])
		}
		// A second, independent client reads the same.
		out, errs, ok := b.Run(nil, "gdbus", "call", "--address", b.Address, "--dest", RouterName, "--object-path", "/org/nemod/Router1",
			"--method", objectManagerIntf+".GetManagedObjects")
		if !ok {
			t.Fatal(errs)
		}
		// gdbus writes the type before the first key only, whichever
		// object comes first.
		for _, want := range []string{"{objectpath '", "'" + cell + "'", "'" + wifi + "'", "'CareOfAddress': <'198.51.100.7'>", "'BID': <uint16 1>"} {
			if !strings.Contains(out, want) {
				t.Errorf("gdbus GetManagedObjects lacks %s: %s", want, out)
			}
		}
	})

	t.Run("signals", func(t *testing.T) {
		m := b.StartMonitor(RouterName)

		// Only the clock moved: nothing to tell.
		snap.Uptime += 5
		snap.Bindings[0].Lifetime -= 5
		r.Update(snap)
		// The Wi-Fi binding goes down.
		snap = routerSnap()
		snap.Bindings[0].State = status.StateDown
		r.Update(snap)
		dbustest.WaitFor(t, 5*time.Second, "PropertiesChanged", func() bool { return len(m.Signals("PropertiesChanged")) > 0 })
		// The cellular uplink goes, a new one comes.
		snap = routerSnap()
		snap.Bindings[0].State = status.StateDown
		snap.Bindings = []status.Binding{snap.Bindings[0], {BID: 3, Uplink: "lte_2", CoA: "2001:db8:c::3", State: status.StateRegistering}}
		r.Update(snap)
		dbustest.WaitFor(t, 5*time.Second, "InterfacesAdded", func() bool { return len(m.Signals("InterfacesAdded")) > 0 })

		pc := m.Signals("PropertiesChanged")
		if len(pc) != 1 {
			t.Fatalf("%d PropertiesChanged, want 1 (the clock alone changes nothing):\n%s", len(pc), m.Text())
		}
		if !strings.Contains(pc[0].Header, "path="+wifi+";") ||
			!strings.Contains(pc[0].Body, `string "org.nemod.Router1.Uplink"`) ||
			!strings.Contains(pc[0].Body, `string "State"`) || !strings.Contains(pc[0].Body, `string "down"`) ||
			strings.Count(pc[0].Body, "dict entry(") != 1 {
			t.Errorf("PropertiesChanged %+v", pc[0])
		}
		rm := m.Signals("InterfacesRemoved")
		if len(rm) != 1 || !strings.Contains(rm[0].Header, "path=/org/nemod/Router1;") ||
			!strings.Contains(rm[0].Body, `object path "`+cell+`"`) || !strings.Contains(rm[0].Body, `string "org.nemod.Router1.Uplink"`) {
			t.Errorf("InterfacesRemoved %+v", rm)
		}
		add := m.Signals("InterfacesAdded")
		if len(add) != 1 || !strings.Contains(add[0].Body, `object path "/org/nemod/Router1/Uplink/lte_5f2"`) ||
			!strings.Contains(add[0].Body, `string "2001:db8:c::3"`) {
			t.Errorf("InterfacesAdded %+v", add)
		}
		// And the objects are what the signals said.
		var st struct{ Data string }
		b.BusctlJSON(&st, "get-property", RouterName, "/org/nemod/Router1/Uplink/lte_5f2", UplinkInterface, "State")
		if st.Data != status.StateRegistering {
			t.Errorf("new uplink's state %q", st.Data)
		}
		if _, _, ok := b.Run(nil, "busctl", "--address="+b.Address, "get-property", RouterName, cell, UplinkInterface, "State"); ok {
			t.Error("the removed uplink still answers")
		}
	})

	t.Run("reload as root", func(t *testing.T) {
		before := reloads.Load()
		var got struct {
			Type string
			Data []any
		}
		b.BusctlJSON(&got, "call", RouterName, "/org/nemod/Router1", RouterName, "Reload")
		if got.Type != "basas" || fmt.Sprint(got.Data) != "[true [wifi.metric] [global.home_agent]]" || reloads.Load() != before+1 {
			t.Errorf("Reload answered %+v, callback calls %d", got, reloads.Load()-before)
		}
		// An argument it does not take: refused before the callback.
		_, errs, ok := b.Run(nil, "gdbus", "call", "--address", b.Address, "--dest", RouterName, "--object-path", "/org/nemod/Router1",
			"--method", RouterName+".Reload", "now")
		if ok || !strings.Contains(errs, ErrorInvalidArgs) || reloads.Load() != before+1 {
			t.Errorf("Reload with an argument: ok=%v %s", ok, errs)
		}
	})

	t.Run("policy", func(t *testing.T) {
		before := reloads.Load()
		get := []string{"call", "--address", b.Address, "--dest", RouterName, "--object-path", wifi,
			"--method", "org.freedesktop.DBus.Properties.Get", UplinkInterface, "State"}
		reload := []string{"call", "--address", b.Address, "--dest", RouterName, "--object-path", "/org/nemod/Router1", "--method", RouterName + ".Reload"}
		managed := []string{"call", "--address", b.Address, "--dest", RouterName, "--object-path", "/org/nemod/Router1", "--method", objectManagerIntf + ".GetManagedObjects"}
		introspect := []string{"introspect", "--address", b.Address, "--dest", RouterName, "--object-path", "/org/nemod/Router1", "--xml"}
		for _, c := range []struct {
			who  *dbustest.User
			args []string
			ok   bool
		}{
			{member, get, true},
			{member, managed, true},
			{member, introspect, true},
			{member, reload, false},
			{outsider, get, false},
			{outsider, managed, false},
			{outsider, introspect, false},
			{outsider, reload, false},
			{dbustest.Nobody(t), reload, false},
			{dbustest.Nobody(t), get, false},
		} {
			out, errs, ok := b.Run(c.who, "gdbus", c.args...)
			if ok != c.ok {
				t.Errorf("%s %s: ok=%v, want %v: %s %s", c.who.Name, c.args[len(c.args)-1], ok, c.ok, out, errs)
			}
			if !ok && !strings.Contains(errs, "org.freedesktop.DBus.Error.AccessDenied") {
				t.Errorf("%s %s: refused other than AccessDenied: %s", c.who.Name, c.args[len(c.args)-1], errs)
			}
			if ok && c.args[len(c.args)-1] == "State" && !strings.Contains(out, "'down'") {
				t.Errorf("%s read %q", c.who.Name, out)
			}
		}
		if n := reloads.Load() - before; n != 0 {
			t.Errorf("refused Reloads reached the daemon %d times", n)
		}

		// Signals reach the group and no one else.
		mon := func(u *dbustest.User) *dbustest.Monitor {
			return b.StartClient(u, "gdbus monitor to find the name's owner", func(text string) bool {
				return strings.Contains(text, "is owned by")
			}, "gdbus", "monitor", "--address", b.Address, "--dest", RouterName)
		}
		mm, mo := mon(member), mon(outsider)
		snap.HomeAgent = "2001:db8:1::2"
		r.Update(snap)
		dbustest.WaitFor(t, 5*time.Second, "the group member to hear the change", func() bool {
			return strings.Contains(mm.Text(), "PropertiesChanged") && strings.Contains(mm.Text(), "2001:db8:1::2")
		})
		// The outsider had the same time and more to hear it.
		time.Sleep(200 * time.Millisecond)
		if strings.Contains(mo.Text(), "PropertiesChanged") {
			t.Errorf("a user outside group nemod heard: %s", mo.Text())
		}
	})

	t.Run("reconnect", func(t *testing.T) {
		b.Stop()
		dbustest.WaitFor(t, 5*time.Second, "the publisher to notice", func() bool { return !r.Published() })
		snap.HomeAgent = "2001:db8:1::3" // changed while off the bus
		r.Update(snap)
		b.Restart()
		dbustest.WaitFor(t, 10*time.Second, "the router back on the bus", r.Published)
		if n := r.p.connects.Load(); n != 2 {
			t.Errorf("%d connections, want 2", n)
		}
		var got struct{ Data string }
		b.BusctlJSON(&got, "get-property", RouterName, "/org/nemod/Router1", RouterName, "HomeAgent")
		if got.Data != "2001:db8:1::3" {
			t.Errorf("after the restart HomeAgent is %q", got.Data)
		}
	})

	t.Run("close", func(t *testing.T) {
		r.Close()
		if r.Published() {
			t.Error("still published after Close")
		}
		out, _, _ := b.Run(nil, "busctl", "--address="+b.Address, "--json=short", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
			"org.freedesktop.DBus", "NameHasOwner", "s", RouterName)
		if strings.TrimSpace(out) != `{"type":"b","data":[false]}` {
			t.Errorf("NameHasOwner after Close: %s", out)
		}
	})
}

func TestHomeAgentOnBus(t *testing.T) {
	b := dbustest.Start(t)
	var mu sync.Mutex
	var revoked []string
	revoke := func(home netip.Addr, bid uint16) error {
		mu.Lock()
		defer mu.Unlock()
		if bid == 9 {
			return fmt.Errorf("%v BID %d: %w", home, bid, ErrNoSuchBinding)
		}
		revoked = append(revoked, fmt.Sprintf("%v/%d", home, bid))
		return nil
	}
	snap := status.HomeAgent{Role: status.RoleHomeAgent, Address: "2001:db8:1::1", HomePrefix: "2001:db8:1::/64",
		MobileRouters: []status.MobileRouter{{Name: "car1", HomeAddress: "2001:db8:1::10", MNP: []string{"2001:db8:100::/64"},
			Bindings: []status.Binding{
				{BID: 1, CoA: "2001:db8:a::2", Outer: "[2001:db8:a::2]:0", Encap: "ip6ip6", State: status.StateRegistered, Since: "2026-01-01T00:00:00Z", Lifetime: 100,
					Traffic: status.Traffic{TxBytes: 11, RxBytes: 22}},
				{BID: 2, CoA: "198.51.100.7", Outer: "203.0.113.9:4500", Encap: "udp", NAT: true, State: status.StateRegistering},
			}}}}

	for _, withRevoke := range []bool{false, true} {
		cfg := Config{Address: b.Address}
		if withRevoke {
			cfg.Revoke = revoke
		}
		h := NewHomeAgent(cfg)
		h.Update(snap)
		dbustest.WaitFor(t, 5*time.Second, "the home agent on the bus", h.Published)
		call := func(args ...string) (string, string, bool) {
			return b.Run(nil, "gdbus", append([]string{"call", "--address", b.Address, "--dest", HomeAgentName,
				"--object-path", string(HomeAgentPath), "--method"}, args...)...)
		}
		if !withRevoke {
			_, errs, ok := call(HomeAgentName+".Revoke", "2001:db8:1::10", "1")
			if ok || !strings.Contains(errs, ErrorNotSupported) {
				t.Errorf("Revoke without a callback: ok=%v %s", ok, errs)
			}
			_, errs, ok = call(HomeAgentName + ".Reload")
			if ok || !strings.Contains(errs, ErrorNotSupported) {
				t.Errorf("Reload without a callback: ok=%v %s", ok, errs)
			}

			var got struct {
				Type string
				Data [][]any
			}
			b.BusctlJSON(&got, "get-property", HomeAgentName, string(HomeAgentPath)+"/MobileRouter/car1", MobileRouterIntf, "Bindings")
			if got.Type != "a(qsssbssddtttt)" || len(got.Data) != 2 ||
				fmt.Sprint(got.Data[0]) != "[1 2001:db8:a::2 [2001:db8:a::2]:0 ip6ip6 false registered 2026-01-01T00:00:00Z 0 0 0 11 0 22]" ||
				fmt.Sprint(got.Data[1][:6]) != "[2 198.51.100.7 203.0.113.9:4500 udp true registering]" {
				t.Errorf("Bindings %+v", got)
			}
			var st struct{ Data string }
			b.BusctlJSON(&st, "get-property", HomeAgentName, string(HomeAgentPath)+"/MobileRouter/car1", MobileRouterIntf, "State")
			if st.Data != status.StateRegistered {
				t.Errorf("router state %q", st.Data)
			}

			// A router goes: InterfacesRemoved; its binding changes: one
			// PropertiesChanged with the whole set.
			m := b.StartMonitor(HomeAgentName)
			next := snap
			next.MobileRouters = []status.MobileRouter{snap.MobileRouters[0], {Name: "bus 2", HomeAddress: "2001:db8:1::20"}}
			h.Update(next)
			dbustest.WaitFor(t, 5*time.Second, "InterfacesAdded", func() bool { return len(m.Signals("InterfacesAdded")) == 1 })
			if !strings.Contains(m.Signals("InterfacesAdded")[0].Body, `object path "/org/nemod/HomeAgent1/MobileRouter/bus_202"`) {
				t.Errorf("InterfacesAdded %+v", m.Signals("InterfacesAdded"))
			}
			changed := next
			changed.MobileRouters = []status.MobileRouter{snap.MobileRouters[0]}
			changed.MobileRouters[0].Bindings = snap.MobileRouters[0].Bindings[1:]
			h.Update(changed)
			dbustest.WaitFor(t, 5*time.Second, "PropertiesChanged", func() bool { return len(m.Signals("PropertiesChanged")) == 1 })
			pc := m.Signals("PropertiesChanged")[0]
			if !strings.Contains(pc.Header, "path=/org/nemod/HomeAgent1/MobileRouter/car1;") || !strings.Contains(pc.Body, `string "Bindings"`) ||
				!strings.Contains(pc.Body, `string "State"`) || !strings.Contains(pc.Body, `string "registering"`) {
				t.Errorf("PropertiesChanged %+v", pc)
			}
			dbustest.WaitFor(t, 5*time.Second, "InterfacesRemoved", func() bool { return len(m.Signals("InterfacesRemoved")) == 1 })
			h.Update(snap)
		} else {
			for _, c := range []struct{ home, bid, errName string }{
				{"car1", "1", ErrorInvalidArgs},
				{"fe80::1%eth0", "1", ErrorInvalidArgs},
				{"2001:db8:1::10", "0", ErrorInvalidArgs},
				{"2001:db8:1::10", "9", ErrorNoSuchBinding},
			} {
				_, errs, ok := call(HomeAgentName+".Revoke", c.home, c.bid)
				if ok || !strings.Contains(errs, c.errName) {
					t.Errorf("Revoke(%s, %s): ok=%v %s, want %s", c.home, c.bid, ok, errs, c.errName)
				}
			}
			out, errs, ok := b.Run(nil, "busctl", "--address="+b.Address, "call", HomeAgentName, string(HomeAgentPath), HomeAgentName, "Revoke", "sq", "2001:db8:1::10", "2")
			mu.Lock()
			if !ok || out != "" || fmt.Sprint(revoked) != "[2001:db8:1::10/2]" {
				t.Errorf("Revoke answered %v %q %s; the daemon was asked %v", ok, out, errs, revoked)
			}
			mu.Unlock()
		}
		h.Close()
	}
}

// The publisher keeps trying while the name is taken, and takes it when
// it is free; Update never blocks meanwhile.
func TestNameTaken(t *testing.T) {
	b := dbustest.Start(t)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", b.Address)
	if !SystemBusAvailable() {
		t.Error("the running bus is not seen as available")
	}
	first := NewRouter(Config{Address: b.Address})
	first.Update(routerSnap())
	dbustest.WaitFor(t, 5*time.Second, "the first router", first.Published)
	second := NewRouter(Config{Address: b.Address, RetryMin: 20 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	defer second.Close()
	start := time.Now()
	for i := 0; i < 1000; i++ {
		s := routerSnap()
		s.Uptime = int64(i)
		second.Update(s)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("1000 Updates took %v", d)
	}
	time.Sleep(200 * time.Millisecond)
	if second.Published() {
		t.Fatal("two publishers own the name")
	}
	first.Close()
	dbustest.WaitFor(t, 5*time.Second, "the second router to take the name", second.Published)
	var got struct{ Data int64 }
	b.BusctlJSON(&got, "get-property", RouterName, string(RouterPath), RouterName, "Uptime")
	if got.Data != 999 {
		t.Errorf("Uptime %d: the latest snapshot is not the one served", got.Data)
	}
}
