package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"nemod/lab"
)

// Both uplinks register within 3 s of the router's start, the Wi-Fi one
// natively over IPv6 and the cellular one in UDP through the carrier-grade
// NAT; tshark, an independent decoder, finds the BID, MNP, MN-ID and
// authentication options in the Binding Updates on the access links.
func TestBothUplinksRegister(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// The native Binding Update is what this looks at: the Wi-Fi stays on
	// IPv6-in-IPv6 (TestEveryPathKindDecodesClean sees the negotiated
	// UDP over IPv6).
	e.nativeWifi("")
	e.startHA()
	wifiCap, err := e.lab.Capture(lab.Wifi, "eth0", "ip6 proto 60 or ip6 proto 43")
	if err != nil {
		t.Fatal(err)
	}
	cellIn, err := e.lab.Capture(lab.Cell, "eth0", "udp port 4191")
	if err != nil {
		t.Fatal(err)
	}
	cellOut, err := e.lab.Capture(lab.Cell, "eth1", "udp port 4191")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	e.startMR()
	eventually(t, 3*time.Second-time.Since(start), "both uplinks registered within 3 s", func() bool {
		return e.mrStates() == e.want
	})
	t.Logf("both uplinks registered %v after the router was started", time.Since(start).Round(time.Millisecond))
	hb := e.haBindings()
	slaac, _ := e.lab.Addr(lab.MR, lab.MRWLANDev, 6)
	if hb[1] != "ipv6 "+slaac.String() || hb[2] != "udp4 100.64.0.2" {
		t.Fatalf("home agent bindings: %v (wlan0 has %v)", hb, slaac)
	}
	for _, r := range e.haStatus().MobileRouters {
		if r.Name == "car1" && (len(r.MNP) != 1 || r.MNP[0] != "2001:db8:100::/56") {
			t.Fatalf("forwarded prefixes %v", r.MNP)
		}
		if r.Name == "car1" && (!r.Bindings[1].NAT || r.Bindings[1].Outer == "" || !strings.HasPrefix(r.Bindings[1].Outer, "192.0.2.2:")) {
			t.Fatalf("cellular binding not seen through the NAT: %+v", r.Bindings[1])
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Native Binding Update on the Wi-Fi access link.
	path, err := wifiCap.Stop()
	if err != nil {
		t.Fatal(err)
	}
	rows, err := lab.PcapFields(ctx, path, "mip6.mhtype == 5",
		"ipv6.src", "ipv6.opt.mipv6.home_address", "mip6.bi.bid", "mip6.bi.coa_ipv6", "mip6.nemo.mnp.mnp",
		"mip6.nemo.mnp.pfl", "mip6.auth.mobility_spi", "mip6.mnid.identifier", "mip6.nemo.bu.r_flag", "_ws.malformed")
	if err != nil || len(rows) == 0 {
		t.Fatalf("no BU on the Wi-Fi link: %v", err)
	}
	r := rows[0]
	want := []string{slaac.String(), "2001:db8:ffff:1::100", "1", slaac.String(), "2001:db8:100::", "56", "256", "car1@fleet", "1", ""}
	for i := range want {
		if !sameField(r[i], want[i]) {
			t.Errorf("Wi-Fi BU field %d = %q, want %q (row %q)", i, r[i], want[i], r)
		}
	}
	// Its answer, with a type 2 routing header. (Both uplinks register at
	// once and share one sequence number space: when the cellular BU
	// overtakes the Wi-Fi one, the first Wi-Fi answer is a 144 and the
	// retry at once is accepted.)
	rows, err = lab.PcapFields(ctx, path, "mip6.mhtype == 6 && mip6.ba.status == 0", "ipv6.routing.type", "ipv6.routing.mipv6.home_address", "mip6.bi.bid", "mip6.nemo.ba.r_flag")
	if err != nil || len(rows) != 1 || rows[0][0] != "2" || rows[0][1] != "2001:db8:ffff:1::100" || rows[0][2] != "1" || !sameField(rows[0][3], "1") {
		t.Errorf("BA on the Wi-Fi link: %q %v", rows, err)
	}

	// The cellular BU before and after the NAT.
	for _, c := range []struct {
		capture *lab.Capture
		src     string
	}{{cellIn, "100.64.0.2"}, {cellOut, "192.0.2.2"}} {
		path, err := c.capture.Stop()
		if err != nil {
			t.Fatal(err)
		}
		rows, err := lab.PcapFields(ctx, path, "mip6.mhtype == 5 && udp.dstport == 4191",
			"ip.src", "ip.dst", "mip6.bi.bid", "mip6.bi.coa_ipv4", "mip6.nemo.mnp.mnp", "mip6.auth.mobility_spi", "mip6.bu.f_flag")
		if err != nil || len(rows) == 0 {
			t.Fatalf("no UDP BU at %s: %v", path, err)
		}
		want := []string{c.src, "198.51.100.1", "2", "100.64.0.2", "2001:db8:100::", "256", "1"}
		for i := range want {
			if !sameField(rows[0][i], want[i]) {
				t.Errorf("cellular BU at %s field %d = %q, want %q", path, i, rows[0][i], want[i])
			}
		}
		rows, err = lab.PcapFields(ctx, path, "mip6.mhtype == 6", "mip6.ba.status", "mip6.natd.refresh_t")
		if err != nil || len(rows) == 0 || rows[0][0] != "0" || rows[0][1] != "110" {
			t.Errorf("BA with NAT detection at %s: %q %v", path, rows, err)
		}
	}
}

// sameField compares a tshark field (booleans as True/1) with a want.
func sameField(got, want string) bool {
	if got == want {
		return true
	}
	switch want {
	case "1":
		return got == "True" || got == "true"
	}
	return false
}

// A firewall on the Wi-Fi path drops protocols 135 and 41: the router gets
// no answer natively and registers in UDP over IPv6 (RFC 4487's case).
func TestFirewallFallsBackToUDP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.lab.BlockProtocols("wifi", 135, 41); err != nil {
		t.Fatal(err)
	}
	e.startHA()
	e.startMR()
	took := eventually(t, 10*time.Second, "Wi-Fi registered over UDP", func() bool {
		return strings.HasPrefix(e.mrStates(), "wifi=registered/udp6")
	})
	t.Logf("registered over UDP/IPv6 after %v", took.Round(time.Millisecond))
	dropped, err := e.lab.Dropped("wifi")
	if err != nil || dropped == 0 {
		t.Fatalf("the firewall dropped nothing (%d, %v): the test proves nothing", dropped, err)
	}
	if hb := e.haBindings(); !strings.HasPrefix(hb[1], "udp6 2001:db8:a:") {
		t.Fatalf("home agent: %v", hb)
	}
}

// Carrier loss on the Wi-Fi uplink: its binding is gone at the home agent
// within 100 ms (de-registered through the cellular uplink); carrier back:
// registered again within 1 s. Not parallel: it measures time, so it runs
// while the package's other labs wait (their five sets of race-built
// daemons on two cores add tens of milliseconds of scheduling delay).
func TestUplinkLossAndReturn(t *testing.T) {
	e := newEnv(t)
	e.startHA()
	e.startMR()
	eventually(t, 5*time.Second, "both registered", func() bool {
		return e.mrStates() == e.want
	})
	for round := 0; round < 3; round++ {
		if err := e.lab.CarrierDown("wifi"); err != nil {
			t.Fatal(err)
		}
		down := time.Now()
		eventually(t, 100*time.Millisecond, "Wi-Fi binding gone at the home agent", func() bool {
			_, ok := e.haBindings()[1]
			return !ok
		})
		t.Logf("round %d: binding gone at the home agent %v after carrier loss", round, time.Since(down).Round(time.Millisecond))
		if hb := e.haBindings(); hb[2] != "udp4 100.64.0.2" {
			t.Fatalf("cellular binding disturbed: %v", hb)
		}
		if err := e.lab.CarrierUp("wifi"); err != nil {
			t.Fatal(err)
		}
		up := time.Now()
		eventually(t, time.Second, "Wi-Fi registered again", func() bool {
			_, ok := e.haBindings()[1]
			return ok && strings.HasPrefix(e.mrStates(), "wifi=registered")
		})
		t.Logf("round %d: registered again %v after carrier came back", round, time.Since(up).Round(time.Millisecond))
	}
}
