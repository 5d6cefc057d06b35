package tunnel_test

import (
	"slices"
	"testing"

	"nemod/internal/netsim"
	"nemod/nemo"
)

// TestSetDevice: an uplink moved to another device loses its sockets at
// once (nothing is sent through the old device), local breakout names the
// new device, and once the uplink is back on a device that exists, its
// sockets open there and carry again.
func TestSetDevice(t *testing.T) {
	r := newRig(t, nil)
	if err := r.mr.SetDirect(nil); err != nil {
		t.Fatal(err)
	}
	if err := r.mr.SetDevice(0, "wlan1"); err != nil {
		t.Fatal(err)
	}
	if r.mr.Device(0) != "wlan1" || !slices.Equal(r.mrSys.Breakout().Uplinks, []string{"wlan1", "wwan0"}) {
		t.Fatalf("device %s, breakout %v", r.mr.Device(0), r.mrSys.Breakout().Uplinks)
	}
	if err := r.mr.SendSignal(0, nemo.EncapIPv6, signal(t, wifi6, ha6)); err == nil {
		t.Fatal("signalling went out of the old device")
	}
	if err := r.mr.SetDevice(0, "wlan0"); err != nil {
		t.Fatal(err)
	}
	if err := r.mr.SetUplink(0, r.wlan.Index); err != nil {
		t.Fatal(err)
	}
	r.mr.SetBindings(r.bindings, nil)
	up := netsim.UDP6(lan, cn, 4000, 7, 100, 'm')
	r.mrTUN.Inject(up)
	expect(t, r.haTUN, up, "LAN to correspondent over Wi-Fi, back on wlan0")
}
