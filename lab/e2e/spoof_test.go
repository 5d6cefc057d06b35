package e2e

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"nemod/header"
	"nemod/lab"
	"nemod/netio"
)

// inNS runs f in a role's namespace: sockets it opens stay there.
func (e *env) inNS(role string, f func() error) {
	e.t.Helper()
	if err := e.lab.InNS(role, f); err != nil {
		e.t.Fatal(err)
	}
}

// echo is an ICMPv6 echo request from src to dst, as a whole IPv6 packet.
func echo(src, dst netip.Addr, id uint16) []byte {
	icmp := []byte{128, 0, 0, 0, byte(id >> 8), byte(id), 0, 1, 's', 'p', 'o', 'o', 'f'}
	binary.BigEndian.PutUint16(icmp[2:], header.TransportChecksum(src, dst, header.ProtoICMPv6, icmp))
	p := []byte{0x60, 0, 0, 0, 0, byte(len(icmp)), header.ProtoICMPv6, 64}
	s, d := src.As16(), dst.As16()
	p = append(append(append(p, s[:]...), d[:]...), icmp...)
	return p
}

func (e *env) haDrops() map[string]uint64 { return e.haStatus().DataPlane.Drops }

// Spoofing at the home agent: tunnelled packets from an unregistered outer
// source, with an inner source outside the router's prefixes, or with
// another router's prefix from this router's care-of address, are dropped
// and counted; none reaches the correspondent; genuine traffic flows.
func TestHomeAgentDropsSpoofing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startHA()
	e.startMR()
	e.registered()
	// car2 registers from the correspondent, so that its prefix has a
	// binding (not car1's).
	c := e.udpIn("cn", "udp6")
	f := forgery{HoA: car2HoA, CoA: cnAddr, SPI: 257, Key: car2Key, MNPs: []netip.Prefix{car2MNP}, Seq: 5, TS: time.Now()}
	if st := exchange(t, c, f.packet(t)); st != 0 {
		t.Fatalf("car2's registration: %d", st)
	}
	capCN, err := e.lab.Capture(lab.CN, "eth0", "icmp6 and ip6[40] == 128")
	if err != nil {
		t.Fatal(err)
	}
	cn := netip.MustParseAddr("2001:db8:c::1")
	ha := netip.MustParseAddr("2001:db8:ffff::1")
	lanHost := netip.MustParseAddr("2001:db8:100::10")
	before := e.haDrops()

	// 1. From an address no router registered (the correspondent's), both
	// as IPv6-in-IPv6 and in UDP: inner source car1's LAN host.
	e.inNS(lab.CN, func() error {
		raw, err := netio.ListenIP("ip6:41", "", netip.Addr{})
		if err != nil {
			return err
		}
		defer raw.Close()
		for i := 0; i < 5; i++ {
			if _, err := raw.WriteToIP(echo(lanHost, cn, 0x5f01), &net.IPAddr{IP: ha.AsSlice()}); err != nil {
				return err
			}
			if _, err := c.WriteToUDPAddrPort(echo(lanHost, cn, 0x5f02), haUDP); err != nil {
				return err
			}
		}
		return nil
	})
	// 2 and 3. From car1's registered Wi-Fi care-of address: an inner source
	// outside its prefixes, and one in car2's prefix.
	e.inNS(lab.MR, func() error {
		raw, err := netio.ListenIP("ip6:41", lab.MRWLANDev, netip.Addr{})
		if err != nil {
			return err
		}
		defer raw.Close()
		for i := 0; i < 5; i++ {
			if _, err := raw.WriteToIP(echo(netip.MustParseAddr("2001:db8:999::1"), cn, 0x5f03), &net.IPAddr{IP: ha.AsSlice()}); err != nil {
				return err
			}
			if _, err := raw.WriteToIP(echo(netip.MustParseAddr("2001:db8:200::1"), cn, 0x5f04), &net.IPAddr{IP: ha.AsSlice()}); err != nil {
				return err
			}
		}
		return nil
	})
	eventually(t, 3*time.Second, "spoofed packets counted", func() bool {
		d := e.haDrops()
		return d["bad_outer_source"]-before["bad_outer_source"] >= 15 && d["bad_inner_source"]-before["bad_inner_source"] >= 5
	})
	// Genuine traffic still flows.
	if out, err := e.ping6(lab.LAN, "2001:db8:c::1", 2); err != nil {
		t.Fatalf("genuine ping: %v\n%s", err, out)
	}
	path, err := capCN.Stop()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rows, err := lab.PcapFields(ctx, path, "icmpv6.type == 128", "ipv6.src", "icmpv6.echo.identifier")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if !strings.HasPrefix(r[1], "0x5f0") {
			continue
		}
		t.Errorf("a spoofed packet reached the correspondent: %q", r)
	}
	if len(rows) < 2 {
		t.Errorf("the genuine echo requests did not arrive: %q", rows)
	}
	d := e.haDrops()
	t.Logf("home agent drops: bad_outer_source +%d, bad_inner_source +%d",
		d["bad_outer_source"]-before["bad_outer_source"], d["bad_inner_source"]-before["bad_inner_source"])
}
