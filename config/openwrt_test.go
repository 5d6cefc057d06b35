package config

import (
	"strings"
	"testing"
)

const owrtRouter = minimalRouter + `	option ubus_socket '/tmp/ubus.sock'
	option netifd_interface 'tun_nemo'
	option lan_ra '1'
config uplink 'wifi'
	option device 'phy0-sta0'
	option bid '1'
config uplink 'cell'
	option interface 'wwan'
	option bid '2'
`

// TestOpenWrtOptions: option interface replaces option device, the
// router's ubus socket and netifd interface are read, and lan_ra written
// out is told from lan_ra left to the daemon.
func TestOpenWrtOptions(t *testing.T) {
	f, err := parse("/etc/config/nemod", []byte(owrtRouter), memFiles(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Warnings) != 0 {
		t.Errorf("warnings: %q", f.Warnings)
	}
	r := f.Router
	if want := (OpenWrt{UbusSocket: "/tmp/ubus.sock", NetifdInterface: "tun_nemo"}); r.OpenWrt != want {
		t.Errorf("OpenWrt %+v, want %+v", r.OpenWrt, want)
	}
	if r.Uplinks[0].Device != "phy0-sta0" || r.Uplinks[0].Interface != "" || r.Uplinks[1].Device != "" || r.Uplinks[1].Interface != "wwan" {
		t.Errorf("uplinks %+v", r.Uplinks)
	}
	if !r.HasInterfaceUplinks() {
		t.Error("HasInterfaceUplinks false")
	}
	off, err := parse("x", []byte(minimalRouter+"\toption ubus_socket 'off'\n\toption netifd_interface '0'\n"), memFiles(nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := (OpenWrt{LanRAUnset: true}); off.Router.OpenWrt != want {
		t.Errorf("off: %+v", off.Router.OpenWrt)
	}
	if DefaultUbusSocket != "/var/run/ubus/ubus.sock" {
		t.Errorf("default ubus socket %s", DefaultUbusSocket)
	}
}

// TestOpenWrtErrors: each mistake is one error at its line, and the
// file is refused.
func TestOpenWrtErrors(t *testing.T) {
	for name, c := range map[string]struct {
		in, line, msg string
	}{
		"both":        {owrtRouter + "\toption device 'wwan0'\n", "x:13:", "not both (option device is at line 15)"},
		"name":        {strings.Replace(owrtRouter, "'wwan'", "'ww-an'", 1), "x:13:", "not a netifd interface name"},
		"twice":       {owrtRouter + "config uplink 'lte'\n\toption interface 'wwan'\n\toption bid '3'\n", "x:16:", "already the interface of uplink \"cell\" (line 12)"},
		"tunnel":      {strings.Replace(owrtRouter, "'wwan'", "'tun_nemo'", 1), "x:13:", "the tunnel's own"},
		"no ubus":     {strings.Replace(owrtRouter, "'/tmp/ubus.sock'", "'off'", 1), "x:13:", "ubus_socket is 'off'"},
		"socket":      {strings.Replace(owrtRouter, "'/tmp/ubus.sock'", "'ubus.sock'", 1), "x:6:", "not an absolute path"},
		"netifd name": {strings.Replace(owrtRouter, "'tun_nemo'", "'a b'", 1), "x:7:", "not a netifd interface name"},
		"neither":     {minimalRouter + "config uplink 'u'\n\toption bid '1'\n", "x:6:", "option device is required (or interface)"},
	} {
		_, err := parse("x", []byte(c.in), memFiles(nil))
		errs := splitErrors(err)
		if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), c.line) || !strings.Contains(errs[0].Error(), c.msg) {
			t.Errorf("%s: %v, want one error at %s with %q", name, err, c.line, c.msg)
		}
	}
}

// TestDiffOpenWrt: the OpenWrt options wait for a restart.
func TestDiffOpenWrt(t *testing.T) {
	old, err := parse("x", []byte(owrtRouter), memFiles(nil))
	if err != nil {
		t.Fatal(err)
	}
	in := strings.Replace(strings.Replace(owrtRouter, "'wwan'", "'lte'", 1), "\toption lan_ra '1'\n", "", 1)
	in = strings.Replace(in, "'/tmp/ubus.sock'", "'/tmp/u.sock'", 1)
	n, err := parse("x", []byte(in), memFiles(nil))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range Diff(old, n) {
		if c.Reloadable {
			t.Errorf("%s reloadable", c)
		}
		got = append(got, c.String())
	}
	if want := "router.ubus_socket router.lan_ra uplink cell.interface"; strings.Join(got, " ") != want {
		t.Errorf("diff %q, want %q", strings.Join(got, " "), want)
	}
}
