package e2e

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"nemod/lab"
	"nemod/nemo"
)

// What an operator's capture of every path kind shows to a standard
// decoder (tshark, told that UDP port 4191 carries RFC 5555 framing):
// registrations, the negotiation of the fast encapsulation, tunnelled
// traffic, and the Heartbeats both ends send, natively, in UDP over IPv6
// and in UDP over IPv4, and not one malformed packet. A negative
// control, the 8-octet probe nemod used to send in UDP, injected into the
// same capture, must be found by the same check, and be the only one.
func TestEveryPathKindDecodesClean(t *testing.T) {
	t.Parallel()
	for _, kind := range []struct {
		name   string
		native bool
		// wifiProbes is what the Wi-Fi's Heartbeats must look like.
		wifiProbes string
	}{
		{"udp6", false, "mip6.mhtype == 13 && udp.port == 4191 && ipv6.src == 2001:db8:ffff::1"},
		{"native", true, "mip6.mhtype == 13 && !udp && ipv6.nxt == 135"},
	} {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			checkCleanCapture(t, kind.native, kind.wifiProbes)
		})
	}
}

func checkCleanCapture(t *testing.T, native bool, wifiProbes string) {
	e := newEnv(t)
	if native {
		e.nativeWifi("")
	}
	e.startHA()
	wlan, err := e.lab.Capture(lab.MR, lab.MRWLANDev, "")
	if err != nil {
		t.Fatal(err)
	}
	wwan, err := e.lab.Capture(lab.MR, lab.MRWWANDev, "")
	if err != nil {
		t.Fatal(err)
	}
	e.startMR()
	e.registered()
	// Traffic over the Wi-Fi, idle probes on both uplinks, then traffic
	// over the cellular uplink alone: the home agent measures each
	// binding it sends by with a probe of its own.
	if out, err := e.ping6(lab.LAN, lab.CN6.String(), 5); err != nil {
		t.Fatalf("ping over the Wi-Fi: %v\n%s", err, out)
	}
	time.Sleep(2 * time.Second)
	e.inNS(lab.MR, func() error {
		c, err := net.ListenUDP("udp6", nil)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.WriteToUDPAddrPort(nemo.Probe{Seq: 1}.Append(nil), netip.AddrPortFrom(lab.HA6, nemo.UDPPort))
		return err
	})
	if err := e.lab.CarrierDown(lab.Wifi); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "only the cellular binding", func() bool { return len(e.haBindings()) == 1 })
	if out, err := e.ping6(lab.LAN, lab.CN6.String(), 5); err != nil {
		t.Fatalf("ping over the cellular uplink: %v\n%s", err, out)
	}
	time.Sleep(time.Second)
	wp, err := wlan.Stop()
	if err != nil {
		t.Fatal(err)
	}
	cp, err := wwan.Stop()
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	count := func(path, filter string) int {
		t.Helper()
		rows, err := lab.PcapFields(ctx, path, filter, "frame.number")
		if err != nil {
			t.Fatal(err)
		}
		return len(rows)
	}
	const bad = "_ws.malformed || _ws.expert.severity == error"
	// The negative control, on the Wi-Fi link: the only bad packet.
	rows, err := lab.PcapFields(ctx, wp, bad, "frame.number", "udp.length", "_ws.expert.message")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0][1] != "16" || !strings.Contains(rows[0][2], "Bogus IPv6 version") {
		t.Fatalf("Wi-Fi link: %d bad packets, want only the injected 8-octet probe: %q", len(rows), rows)
	}
	if n := count(cp, bad); n != 0 {
		rows, _ := lab.PcapFields(ctx, cp, bad, "frame.number", "_ws.col.Info")
		t.Fatalf("cellular link: %d bad packets: %q", n, rows)
	}
	checks := []struct {
		what, path, filter string
	}{
		{"the router's probes on the Wi-Fi", wp, strings.Replace(wifiProbes, "ipv6.src == 2001:db8:ffff::1", "ipv6.dst == 2001:db8:ffff::1", 1) + " && mip6.hb.r_flag == 0"},
		{"their answers", wp, wifiProbes + " && mip6.hb.r_flag == 1"},
		{"the home agent's probe on the Wi-Fi", wp, strings.Replace(wifiProbes, "&& ipv6.src == 2001:db8:ffff::1", "", 1) + " && mip6.hb.r_flag == 0 && ipv6.src == 2001:db8:ffff::1"},
		{"the router's probes on the cellular uplink", cp, "mip6.mhtype == 13 && ip.dst == 198.51.100.1 && mip6.hb.r_flag == 0"},
		{"their answers", cp, "mip6.mhtype == 13 && ip.src == 198.51.100.1 && mip6.hb.r_flag == 1"},
		{"the home agent's probe on the cellular uplink", cp, "mip6.mhtype == 13 && ip.src == 198.51.100.1 && mip6.hb.r_flag == 0"},
		{"the router's answer to it", cp, "mip6.mhtype == 13 && ip.dst == 198.51.100.1 && mip6.hb.r_flag == 1"},
		{"the offer in the Binding Updates", wp, "mip6.mhtype == 5 && mip6.vsm.vendorId == 32473"},
		{"the home agent's answer to it", wp, "mip6.mhtype == 6 && mip6.vsm.vendorId == 32473"},
		{"tunnelled traffic on the Wi-Fi", wp, "icmpv6.type == 128 && ipv6.src == 2001:db8:100::10"},
		{"tunnelled traffic on the cellular uplink", cp, "icmpv6.type == 128 && udp.port == 4191"},
	}
	for _, c := range checks {
		if n := count(c.path, c.filter); n == 0 {
			t.Errorf("%s: none in the capture (%s)", c.what, c.filter)
		}
	}
	t.Logf("Wi-Fi link: %d packets, cellular link: %d, none malformed but the control", count(wp, ""), count(cp, ""))
}
