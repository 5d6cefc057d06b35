package netifd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"nemod/ubus"
	"nemod/ubus/ubusvec"
)

// The testdata files are copies of recordings of the real netifd and ubus
// tool (testdata/README.md).

func frames(t testing.TB, name string) []ubusvec.Frame {
	t.Helper()
	fr, err := ubusvec.LoadFrames("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return fr
}

// recordedCall returns the DATA of the last call a recorded client made.
func recordedCall(t testing.TB, name string) []byte {
	t.Helper()
	var data []byte
	for _, fr := range frames(t, name) {
		m, err := ubus.ParseMessage(fr.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if fr.C2S && m.Type == ubus.MsgInvoke {
			data, _ = m.Attr(ubus.AttrData)
		}
	}
	if data == nil {
		t.Fatalf("%s: no call", name)
	}
	return data
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// recordedState is the tunnel of the recordings: the home address on the
// tunnel device, the mobile network prefix delegated with lifetimes, a
// link-local next hop (the recording's tunnel stand-in is a veth) and a
// route to the home link.
func recordedState(mnp string, homeRoute bool) TunnelState {
	s := TunnelState{
		Interface:     "nemo",
		Device:        "nemo0",
		Up:            true,
		HomeAddress:   pfx("2001:db8:ff00::10/128"),
		HomeLifetimes: &Lifetimes{Preferred: 3600, Valid: 7200},
		Gateway:       netip.MustParseAddr("fe80::1"),
		Prefixes:      []Prefix{{Prefix: pfx(mnp), Lifetimes: &Lifetimes{Preferred: 3600, Valid: 7200}}},
	}
	if homeRoute {
		s.Routes = []Route{{Target: pfx("2001:db8:ff00::/64"), Gateway: netip.MustParseAddr("fe80::1"), Metric: 256}}
	}
	return s
}

// TestUpdateMatchesRecordings: for the tunnel states of the recorded
// daemon calls, the builder gives exactly the bytes netifd was sent and
// answered OK to: the first update, the prefix change, the link loss, and
// a keep-alive to the interface's own object.
func TestUpdateMatchesRecordings(t *testing.T) {
	for _, c := range []struct {
		file string
		u    Update
	}{
		{"notify-proto.cli-notify.json", recordedState("2001:db8:100::/56", true).Update()},
		{"prefix-change.cli-notify.json", recordedState("2001:db8:200::/56", false).Update()},
		{"link-down.cli-notify.json", TunnelState{Interface: "nemo", Device: "nemo0"}.Update()},
		{"notify-proto-errors.cli-per-iface-object.json", Update{LinkUp: true, Keep: true}},
	} {
		args, err := c.u.Args()
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		got, err := ubus.EncodeTable(args)
		if err != nil {
			t.Fatal(err)
		}
		if want := recordedCall(t, c.file); !bytes.Equal(got, want) {
			t.Errorf("%s:\n%s\nrecorded\n%s", c.file, ubus.FormatJSON(args, false), mustTable(t, want))
		}
	}
}

func mustTable(t testing.TB, b []byte) string {
	tab, err := ubus.ParseTable(b)
	if err != nil {
		t.Fatal(err)
	}
	return ubus.FormatJSON(tab, false)
}

// TestUpdateTypes: the members netifd's policies read by type have the
// type netifd wants, whatever the state (a member of another type is
// silently ignored by netifd).
func TestUpdateTypes(t *testing.T) {
	s := recordedState("2001:db8:100::/56", true)
	s.IPv4Address = pfx("192.0.2.77/32")
	s.IPv4Default = true
	s.Metric = 512
	args, err := s.Args()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]ubus.Type{"action": ubus.TypeInt32, "interface": ubus.TypeString, "ifname": ubus.TypeString,
		"link-up": ubus.TypeBool, "keep": ubus.TypeBool, "ipaddr": ubus.TypeArray, "ip6addr": ubus.TypeArray,
		"routes": ubus.TypeArray, "routes6": ubus.TypeArray, "ip6prefix": ubus.TypeArray}
	inner := map[string]ubus.Type{"ipaddr": ubus.TypeString, "mask": ubus.TypeString, "preferred": ubus.TypeInt32,
		"valid": ubus.TypeInt32, "target": ubus.TypeString, "netmask": ubus.TypeString, "gateway": ubus.TypeString,
		"metric": ubus.TypeInt32, "source": ubus.TypeString, "table": ubus.TypeString}
	for _, f := range args {
		if want[f.Name] != f.Value.Type() {
			t.Errorf("%s is a %s", f.Name, f.Value.Type())
		}
		arr, _ := f.Value.(ubus.Array)
		for _, e := range arr {
			tab, ok := e.(ubus.Table)
			if !ok {
				continue
			}
			for _, g := range tab {
				if inner[g.Name] != g.Value.Type() {
					t.Errorf("%s.%s is a %s", f.Name, g.Name, g.Value.Type())
				}
			}
		}
	}
	got := ubus.FormatJSON(args, false)
	for _, frag := range []string{
		`"ipaddr":[{"ipaddr":"192.0.2.77","mask":"32"}]`,
		`"routes":[{"target":"0.0.0.0","netmask":"0","metric":4096}]`,
		`{"target":"::","netmask":"0","gateway":"fe80::1","metric":512,"source":"2001:db8:100::/56"}`,
		`"ip6prefix":["2001:db8:100::/56,3600,7200"]`,
	} {
		if !strings.Contains(got, frag) {
			t.Errorf("%s\nlacks %s", got, frag)
		}
	}
	// Without a prefix, the default route is from the home address.
	s = recordedState("2001:db8:100::/56", false)
	s.Prefixes = nil
	args, _ = s.Args()
	if got := ubus.FormatJSON(args, false); !strings.Contains(got, `"source":"2001:db8:ff00::10/128"`) {
		t.Errorf("default route without a prefix: %s", got)
	}
}

func TestPrefixString(t *testing.T) {
	for _, c := range []struct {
		p    Prefix
		want string
	}{
		{Prefix{Prefix: pfx("2001:db8:100::/56")}, "2001:db8:100::/56"},
		{Prefix{Prefix: pfx("2001:db8:100::1/56"), Lifetimes: &Lifetimes{0, 60}}, "2001:db8:100::/56,0,60"},
		{Prefix{Prefix: pfx("2001:db8:100::/56"), Class: "nemo"}, "2001:db8:100::/56,4294967295,4294967295,class=nemo"},
		{Prefix{Prefix: pfx("2001:db8:100::/56"), Lifetimes: &Lifetimes{1, 2}, Excluded: pfx("2001:db8:100:ff::/64")},
			"2001:db8:100::/56,1,2,excluded=2001:db8:100:ff::/64"},
	} {
		if got, err := c.p.String(); err != nil || got != c.want {
			t.Errorf("%+v: %q %v, want %q", c.p, got, err, c.want)
		}
	}
}

// TestUpdateErrors: what netifd would refuse or misread is refused here,
// with an error and nothing to send.
func TestUpdateErrors(t *testing.T) {
	v6 := netip.MustParseAddr("fe80::1")
	for name, u := range map[string]Update{
		"prefix too long":     {LinkUp: true, Prefixes: []Prefix{{Prefix: pfx("2001:db8::/80")}}},
		"prefix zero":         {LinkUp: true, Prefixes: []Prefix{{Prefix: pfx("::/0")}}},
		"IPv4 prefix":         {LinkUp: true, Prefixes: []Prefix{{Prefix: pfx("192.0.2.0/24")}}},
		"preferred > valid":   {LinkUp: true, IPv6: []Address{{Prefix: pfx("2001:db8::1/128"), Lifetimes: &Lifetimes{10, 5}}}},
		"IPv4 lifetimes":      {LinkUp: true, IPv4: []Address{{Prefix: pfx("192.0.2.1/32"), Lifetimes: &Lifetimes{1, 1}}}},
		"IPv6 in ipaddr":      {LinkUp: true, IPv4: []Address{{Prefix: pfx("2001:db8::1/128")}}},
		"multicast":           {LinkUp: true, IPv6: []Address{{Prefix: pfx("ff02::1/128")}}},
		"gateway family":      {LinkUp: true, Routes: []Route{{Target: pfx("0.0.0.0/0"), Gateway: v6}}},
		"no target":           {LinkUp: true, Routes: []Route{{Gateway: v6}}},
		"source family":       {LinkUp: true, Routes: []Route{{Target: pfx("::/0"), Source: pfx("10.0.0.0/8")}}},
		"excluded outside":    {LinkUp: true, Prefixes: []Prefix{{Prefix: pfx("2001:db8::/56"), Excluded: pfx("2001:db9::/64")}}},
		"class with a comma":  {LinkUp: true, Prefixes: []Prefix{{Prefix: pfx("2001:db8::/56"), Class: "a,b"}}},
		"ptp on IPv6":         {LinkUp: true, IPv6: []Address{{Prefix: pfx("2001:db8::1/128"), PtP: v6}}},
		"no address":          {LinkUp: true, IPv6: []Address{{}}},
		"mapped IPv4 address": {LinkUp: true, IPv4: []Address{{Prefix: pfx("::ffff:192.0.2.1/128")}}},
	} {
		if args, err := u.Args(); err == nil {
			t.Errorf("%s: no error, gives %s", name, ubus.FormatJSON(args, false))
		}
	}
	if err := Notify(context.Background(), nil, Update{LinkUp: true}); err == nil {
		t.Error("Notify without an interface name")
	}
}

// replayer plays the recorded ubusd side of one connection to a client and
// checks what the client sends, byte for byte.
func replayer(t *testing.T, name string) (ubus.Options, func()) {
	fr := frames(t, name)
	a, b := net.Pipe()
	errc := make(chan error, 1)
	go func() {
		for i, f := range fr {
			if !f.C2S {
				if _, err := a.Write(f.Bytes); err != nil {
					errc <- err
					return
				}
				continue
			}
			a.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := ubus.ReadFrame(a)
			if err != nil {
				errc <- err
				return
			}
			if !bytes.Equal(got, f.Bytes) {
				errc <- fmt.Errorf("%s frame %d: client sent\n%s\nrecorded\n%s", name, i+1, ubusvec.Hex(got), ubusvec.Hex(f.Bytes))
				return
			}
		}
		errc <- nil
	}()
	dial := func(context.Context) (io.ReadWriteCloser, error) { return b, nil }
	return ubus.Options{Dial: dial}, func() {
		if err := <-errc; err != nil {
			t.Error(err)
		}
		a.Close()
	}
}

// TestNotifyReplay: Notify, against the recorded ubusd side of the
// recorded calls, sends the recorded bytes and returns netifd's answer:
// OK, or NOT_SUPPORTED for a static interface, NOT_FOUND for an unknown one.
func TestNotifyReplay(t *testing.T) {
	for _, c := range []struct {
		file string
		u    Update
		want error
	}{
		{"notify-proto.cli-notify.json", recordedState("2001:db8:100::/56", true).Update(), nil},
		{"link-down.cli-notify.json", Update{Interface: "nemo"}, nil},
		{"notify-proto-errors.cli-static-iface.json", Update{Interface: "lan", LinkUp: true}, ubus.StatusNotSupported},
		{"notify-proto-errors.cli-unknown-iface.json", Update{Interface: "nosuch", LinkUp: true}, ubus.StatusNotFound},
	} {
		opts, done := replayer(t, c.file)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cl, err := ubus.Connect(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		// The two refused calls were recorded without "keep", which an
		// Update with link-up always sends: they are made by hand, to
		// check that netifd's refusals come back as statuses.
		if c.want != nil {
			args := ubus.Table{{Name: "action", Value: ubus.Int32(0)}, {Name: "interface", Value: ubus.String(c.u.Interface)},
				{Name: "link-up", Value: ubus.Bool(true)}}
			_, err = cl.Call(ctx, Object, "notify_proto", args)
		} else {
			err = Notify(ctx, cl, c.u)
		}
		if !errors.Is(err, c.want) && !(err == nil && c.want == nil) {
			t.Errorf("%s: %v, want %v", c.file, err, c.want)
		}
		cl.Close()
		done()
		cancel()
	}
}
