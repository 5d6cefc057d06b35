package owrt

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"nemod/binding"
	"nemod/ifmon"
	"nemod/nemo"
	"nemod/netifd"
	"nemod/ra"
	"nemod/status"
	"nemod/ubus"
	"nemod/ubus/ubusvec"
)

var (
	t0  = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	hoa = netip.MustParseAddr("2001:db8:ff00::10")
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func registered(bid uint16, life, refresh time.Duration) binding.BindingStatus {
	return binding.BindingStatus{BID: bid, State: binding.StateRegistered, Expires: t0.Add(life), RefreshAt: t0.Add(refresh), Since: t0}
}

// TestTunnel: the state netifd is told, from the bindings and prefixes.
func TestTunnel(t *testing.T) {
	in := TunnelInput{Interface: "nemo", Device: "nemo0", HoA: hoa,
		Bindings: []binding.BindingStatus{registered(1, 600*time.Second, 480*time.Second), {BID: 2, State: binding.StateDown}},
		MNPs: []ra.MNP{
			{Prefix: pfx("2001:db8:100::/56"), PreferredUntil: ra.Forever, ValidUntil: ra.Forever},
			{Prefix: pfx("2001:db8:200::/56"), PreferredUntil: t0.Add(time.Hour), ValidUntil: t0.Add(2 * time.Hour)},
			{Prefix: pfx("2001:db8:300::/56"), PreferredUntil: t0.Add(-time.Hour), ValidUntil: t0.Add(-time.Second)},
		}}
	st := Tunnel(in, t0.Add(10*time.Second))
	if !st.Up || st.HomeAddress != pfx("2001:db8:ff00::10/128") || *st.HomeLifetimes != (netifd.Lifetimes{Preferred: 470, Valid: 590}) {
		t.Fatalf("tunnel %+v", st)
	}
	if len(st.Prefixes) != 2 || st.Prefixes[0].Lifetimes != nil || *st.Prefixes[1].Lifetimes != (netifd.Lifetimes{Preferred: 3590, Valid: 7190}) {
		t.Fatalf("prefixes %+v", st.Prefixes)
	}
	if st.Gateway.IsValid() || st.IPv4Address.IsValid() || len(st.Routes) != 0 {
		t.Fatalf("tunnel %+v", st)
	}
	args, err := st.Args()
	if err != nil {
		t.Fatal(err)
	}
	if got := ubus.FormatJSON(args, false); !strings.Contains(got, `"routes6":[{"target":"::","netmask":"0","source":"2001:db8:100::/56"},{"target":"::","netmask":"0","source":"2001:db8:200::/56"}]`) {
		t.Errorf("args %s", got)
	}
	// Past the refresh: deprecated; then the binding lapses: down.
	if st := Tunnel(in, t0.Add(500*time.Second)); st.HomeLifetimes.Preferred != 0 || st.HomeLifetimes.Valid != 100 {
		t.Errorf("after the refresh time %+v", st.HomeLifetimes)
	}
	in.Bindings[0].State = binding.StateRegistering
	if st := Tunnel(in, t0); st.Up || st.HomeAddress.IsValid() || st.Prefixes != nil {
		t.Errorf("no binding: %+v", st)
	}
	if u := Tunnel(in, t0).Update(); u.LinkUp || u.Interface != "nemo" {
		t.Errorf("link loss %+v", u)
	}
}

// TestTunnelIPv4: the IPv4 home address on the tunnel, each IPv4 prefix
// unreachable behind whatever routes its parts, a default route on
// request only.
func TestTunnelIPv4(t *testing.T) {
	in := TunnelInput{Interface: "nemo", Device: "nemo0", HoA: hoa, Bindings: []binding.BindingStatus{registered(1, time.Hour, time.Hour)},
		IPv4: IPv4{HoA: netip.MustParseAddr("192.0.2.10"), Prefixes: []netip.Prefix{pfx("198.51.100.0/28")}}}
	args, err := Tunnel(in, t0).Args()
	if err != nil {
		t.Fatal(err)
	}
	got := ubus.FormatJSON(args, false)
	for _, frag := range []string{`"ipaddr":[{"ipaddr":"192.0.2.10","mask":"32"}]`,
		`"routes":[{"target":"198.51.100.0","netmask":"28","metric":2147483647,"type":"unreachable"}]`} {
		if !strings.Contains(got, frag) {
			t.Errorf("no %s in %s", frag, got)
		}
	}
	in.IPv4.Default = true
	args, _ = Tunnel(in, t0).Args()
	if got := ubus.FormatJSON(args, false); !strings.Contains(got, `{"target":"0.0.0.0","netmask":"0","metric":4096}`) {
		t.Errorf("default route: %s", got)
	}
}

// TestFingerprint: the passing of time changes nothing; a refresh, a
// renewed lease and a lost binding do.
func TestFingerprint(t *testing.T) {
	in := TunnelInput{Interface: "nemo", HoA: hoa, Bindings: []binding.BindingStatus{registered(1, time.Hour, time.Hour)},
		MNPs: []ra.MNP{{Prefix: pfx("2001:db8:200::/56"), PreferredUntil: t0.Add(time.Hour), ValidUntil: t0.Add(2 * time.Hour)}}}
	a := in.Fingerprint()
	if in.Fingerprint() != a {
		t.Fatal("unstable")
	}
	seen := map[string]bool{a: true}
	for name, f := range map[string]func(*TunnelInput){
		"refresh": func(i *TunnelInput) { i.Bindings[0].Expires = i.Bindings[0].Expires.Add(time.Minute) },
		"renewal": func(i *TunnelInput) { i.MNPs[0].ValidUntil = i.MNPs[0].ValidUntil.Add(time.Minute) },
		"lost":    func(i *TunnelInput) { i.Bindings[0].State = binding.StateDown },
		"ipv4":    func(i *TunnelInput) { i.IPv4.HoA = netip.MustParseAddr("192.0.2.1") },
	} {
		c := in
		c.Bindings = append([]binding.BindingStatus(nil), in.Bindings...)
		c.MNPs = append([]ra.MNP(nil), in.MNPs...)
		f(&c)
		if seen[c.Fingerprint()] {
			t.Errorf("%s: fingerprint unchanged", name)
		}
		seen[c.Fingerprint()] = true
	}
}

// recordedChanges are netifd's recorded interface notifications (its
// whole session, netifd/testdata/session.netifd.json: the ones on
// network.interface), decoded and folded as the daemon's follower does.
func recordedChanges(t *testing.T) []netifd.Change {
	frames, err := ubusvec.LoadFrames("../netifd/testdata/session.netifd.json")
	if err != nil {
		t.Fatal(err)
	}
	var main uint32
	var addSeq uint16
	tr := netifd.NewTracker()
	var out []netifd.Change
	for _, f := range frames {
		m, err := ubus.ParseMessage(f.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		// network.interface's id is in ubusd's answer to its ADD_OBJECT.
		if path, _ := m.Path(); f.C2S && m.Type == ubus.MsgAddObject && path == netifd.Object {
			addSeq = m.Seq
		}
		if !f.C2S && m.Type == ubus.MsgData && main == 0 && addSeq != 0 && m.Seq == addSeq {
			main, _ = m.ObjID()
		}
		if !f.C2S || m.Type != ubus.MsgNotify {
			continue
		}
		id, _ := m.ObjID()
		meth, _ := m.Method()
		if id != main || meth != netifd.NotifyUpdate && meth != netifd.NotifyDown {
			continue
		}
		data, _, err := m.Data()
		if err != nil {
			t.Fatal(err)
		}
		i, err := netifd.ParseNotification(meth, data, t0.Add(time.Duration(f.T*float64(time.Second))))
		if err != nil {
			t.Fatal(err)
		}
		tr.Set(i)
		for {
			ch, ok := tr.Next()
			if !ok {
				break
			}
			out = append(out, ch)
		}
	}
	return out
}

// TestUplinksFromRecordedNotifications: netifd's recorded reports decoded
// into uplinks: wan (a static interface with default routes of both
// families) up on wan0; nemo (recorded as the shell handler's tunnel,
// followed here as if an uplink) up on nemo0 with its handler's plain
// IPv6 default route, down with its device kept, up again; then up from
// the daemon-sent update, whose default route is source-specific (no
// default for an uplink), and the prefix change, which changes nothing
// an uplink uses; then down. The monitor's
// carrier counts only while netifd has the interface up.
func TestUplinksFromRecordedNotifications(t *testing.T) {
	u := NewUplinks([]string{"", "wan", "nemo"})
	if !u.Follows() || NewUplinks([]string{"", ""}).Follows() {
		t.Fatal("Follows")
	}
	var trace []string
	for _, ch := range recordedChanges(t) {
		changed, dev := u.Apply(ch)
		for _, i := range changed {
			s := u.State(i)
			trace = append(trace, ch.Name+":"+map[bool]string{true: "up", false: "down"}[s.Up]+"/"+s.Device+
				map[bool]string{true: "/v6", false: ""}[s.Default6]+map[bool]string{true: "/v4", false: ""}[s.Default4]+
				map[bool]string{true: " (device)", false: ""}[dev])
		}
	}
	want := "wan:up/wan0/v6/v4 (device) nemo:up/nemo0/v6 (device) nemo:down/nemo0 nemo:up/nemo0/v6 nemo:down/nemo0 nemo:up/nemo0/v6 nemo:down/nemo0 nemo:up/nemo0 nemo:down/nemo0"
	if got := strings.Join(trace, " "); got != want {
		t.Errorf("uplinks\n got %s\nwant %s", got, want)
	}
	if u.Device(0, "wlan0") != "wlan0" || u.Device(1, "") != "wan0" {
		t.Error("Device")
	}
	carrier := ifmon.Link{Name: "nemo0", Index: 4, Exists: true, Up: true, IPv6: hoa}
	if l := u.Link(2, carrier); l.Up || l.Default6 {
		t.Errorf("netifd has nemo down, the link is %+v", l)
	}
	if l := u.Link(1, ifmon.Link{Up: true}); !l.Up || !l.Default6 || !l.Default4 {
		t.Errorf("wan %+v", l)
	}
	if l := u.Link(0, carrier); l != carrier {
		t.Errorf("a device uplink changed: %+v", l)
	}
	// An interface that goes from the dump is unknown and down.
	changed, _ := u.Apply(netifd.Change{Name: "wan", Old: &netifd.Interface{Name: "wan"}})
	if len(changed) != 1 || u.State(1).Known || u.State(1).Up || u.State(1).Device != "wan0" {
		t.Errorf("wan gone: %+v", u.State(1))
	}
}

// TestSourceSpecificDefaultIsNoUplink: a default route netifd holds from a
// source prefix only is not one the uplink can register through.
func TestSourceSpecificDefaultIsNoUplink(t *testing.T) {
	u := NewUplinks([]string{"wwan"})
	i := &netifd.Interface{Name: "wwan", Up: true, L3Device: "wwan0", Routes: []netifd.RouteInfo{
		{Target: pfx("::/0"), Source: pfx("2001:db8:1::/48")}, {Target: pfx("0.0.0.0/0"), Source: pfx("0.0.0.0/0")}}}
	u.Apply(netifd.Change{Name: "wwan", New: i})
	if s := u.State(0); !s.Up || s.Default6 || !s.Default4 {
		t.Errorf("%+v", s)
	}
	if changed, _ := u.Apply(netifd.Change{Name: "other", New: i}); changed != nil {
		t.Error("another interface changed the uplink")
	}
}

// TestBindingEvents: one event per binding that changed, everything at
// start, nothing when nothing changed.
func TestBindingEvents(t *testing.T) {
	names := []UplinkNames{{Device: "wlan0"}, {Device: "wwan0", Interface: "wwan"}}
	wifi := binding.BindingStatus{BID: 1, Uplink: "wifi", State: binding.StateRegistered, CoA: netip.MustParseAddr("2001:db8:a::2"), Encap: nemo.EncapIPv6}
	cell := binding.BindingStatus{BID: 2, Uplink: "cell", State: binding.StateRegistering, Encap: nemo.EncapUDP4}
	cur := []binding.BindingStatus{wifi, cell}
	ev := BindingEvents(nil, cur, names)
	if len(ev) != 2 {
		t.Fatalf("start: %d events", len(ev))
	}
	if got := ubus.FormatJSON(ev[0], false); got != `{"uplink":"wifi","bid":1,"device":"wlan0","state":"registered","previous":"none","coa":"2001:db8:a::2","encap":"ipv6","nat":false,"registered":1}` {
		t.Errorf("wifi %s", got)
	}
	if ev := BindingEvents(cur, cur, names); len(ev) != 0 {
		t.Errorf("no change: %d events", len(ev))
	}
	next := []binding.BindingStatus{{BID: 1, Uplink: "wifi", State: binding.StateDown}, cell}
	ev = BindingEvents(cur, next, names)
	if len(ev) != 1 {
		t.Fatalf("loss: %d events", len(ev))
	}
	if got := ubus.FormatJSON(ev[0], false); got != `{"uplink":"wifi","bid":1,"device":"wlan0","state":"down","previous":"registered","encap":"none","nat":false,"registered":0}` {
		t.Errorf("loss %s", got)
	}
	next[1].State, next[1].NAT = binding.StateRegistered, true
	ev = BindingEvents(cur, next, names)
	if len(ev) != 2 || !strings.Contains(ubus.FormatJSON(ev[1], false), `"interface":"wwan","state":"registered","previous":"registering"`) {
		t.Errorf("cell: %v", ev)
	}
}

// TestHealth: online and uptime from the binding, RTT and loss from the
// status.
func TestHealth(t *testing.T) {
	st := status.Router{Bindings: []status.Binding{{BID: 1, Uplink: "wifi", RTTms: 12.5, Loss: 0.25}, {BID: 2, Uplink: "cell"}}}
	bs := []binding.BindingStatus{registered(1, time.Hour, time.Hour), {BID: 2}}
	h := Health(st, bs, []UplinkNames{{Device: "wlan0"}, {Device: "", Interface: "wwan"}}, t0.Add(90*time.Second))
	if w := h["wifi"]; w != (status.UplinkHealth{BID: 1, Device: "wlan0", Status: "online", Online: true, Uptime: 90, RTTms: 12.5, Loss: 0.25}) {
		t.Errorf("wifi %+v", w)
	}
	if c := h["cell"]; c != (status.UplinkHealth{BID: 2, Interface: "wwan", Status: "offline"}) {
		t.Errorf("cell %+v", c)
	}
}

// FuzzTunnel: whatever the deadlines, the state netifd is told encodes
// (netifd drops a preferred lifetime beyond the valid one, and the
// encoder refuses it), and a lease that ended is never sent.
func FuzzTunnel(f *testing.F) {
	f.Add(int64(600), int64(480), int64(3600), int64(7200), int64(10))
	f.Add(int64(1), int64(5), int64(-4), int64(2), int64(100))
	f.Fuzz(func(t *testing.T, life, refresh, pref, valid, at int64) {
		sec := func(n int64) time.Time { return t0.Add(time.Duration(n%(1<<40)) * time.Second) }
		in := TunnelInput{Interface: "nemo", Device: "nemo0", HoA: hoa,
			Bindings: []binding.BindingStatus{{BID: 1, State: binding.StateRegistered, Expires: sec(life), RefreshAt: sec(refresh)}},
			MNPs:     []ra.MNP{{Prefix: pfx("2001:db8:200::/56"), PreferredUntil: sec(pref), ValidUntil: sec(valid)}}}
		now := sec(at)
		st := Tunnel(in, now)
		if _, err := st.Args(); err != nil {
			t.Fatalf("%+v: %v", st, err)
		}
		if len(st.Prefixes) == 1 && !sec(valid).After(now) {
			t.Fatalf("an ended lease sent: %+v", st.Prefixes[0])
		}
	})
}
