package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// The operations options: their defaults on each role, every spelling they
// take, a web_token on the router being only a warning, and Diff naming
// each change as one that waits for a restart.
func TestOps(t *testing.T) {
	r := edit(t, routerFile)
	if r.Router.Ops != (Ops{}) {
		t.Errorf("router defaults: %+v, want D-Bus auto and no listener", r.Router.Ops)
	}
	h := edit(t, haFile)
	if h.HomeAgent.Ops != (Ops{MetricsListen: netip.MustParseAddrPort("[::1]:9110")}) {
		t.Errorf("home agent defaults: %+v, want D-Bus auto and [::1]:9110", h.HomeAgent.Ops)
	}
	const ha = "option control_socket '/var/run/nemod-ha.sock'"
	for _, tc := range []struct {
		opts string
		want Ops
	}{
		{"option dbus '1'", Ops{DBus: On, DBusLine: 7, MetricsListen: DefaultMetricsListen}},
		{"option dbus 'off'", Ops{DBus: Off, DBusLine: 7, MetricsListen: DefaultMetricsListen}},
		{"option metrics_listen 'off'", Ops{}},
		{"option metrics_listen '0.0.0.0:9100'", Ops{MetricsListen: netip.MustParseAddrPort("0.0.0.0:9100")}},
		{"option metrics_listen '[2001:db8:ffff::1]'", Ops{MetricsListen: netip.MustParseAddrPort("[2001:db8:ffff::1]:9110")}},
		{"option metrics_listen '192.0.2.1'", Ops{MetricsListen: netip.MustParseAddrPort("192.0.2.1:9110")}},
		{"option web_token '0123456789abcdef0123'", Ops{MetricsListen: DefaultMetricsListen, WebToken: "0123456789abcdef0123"}},
	} {
		f := edit(t, haFile, ha, ha+"\n\t"+tc.opts)
		if f.HomeAgent.Ops != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.opts, f.HomeAgent.Ops, tc.want)
		}
	}
	// The router has no fleet page: its web_token is unknown.
	f := edit(t, routerFile, "option lifetime '600'", "option lifetime '600'\n\toption web_token '0123456789abcdef0123'\n\toption metrics_listen '[::1]:9111'")
	if f.Router.Ops != (Ops{MetricsListen: netip.MustParseAddrPort("[::1]:9111")}) {
		t.Errorf("router: %+v", f.Router.Ops)
	}
	if len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0], `unknown option "web_token" in router "main"`) {
		t.Errorf("warnings %q", f.Warnings)
	}

	got := Diff(h, edit(t, haFile, ha, ha+"\n\toption dbus '0'\n\toption metrics_listen 'off'\n\toption web_token 'abcdefghijklmnopq'"))
	want := []Change{
		{Section: "homeagent", Option: "dbus", Line: 1},
		{Section: "homeagent", Option: "metrics_listen", Line: 1},
		{Section: "homeagent", Option: "web_token", Line: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("home agent changes\n got %s\nwant %s", changes(got), changes(want))
	}
	got = Diff(r, edit(t, routerFile, "option lifetime '600'", "option lifetime '600'\n\toption dbus '1'\n\toption metrics_listen '[::1]:9110'"))
	want = []Change{
		{Section: "router", Option: "dbus", Line: 1},
		{Section: "router", Option: "metrics_listen", Line: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("router changes\n got %s\nwant %s", changes(got), changes(want))
	}
	for _, tg := range []Toggle{Auto, On, Off} {
		if tg.String() == "" {
			t.Errorf("Toggle %d has no name", tg)
		}
	}
}
