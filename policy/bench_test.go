package policy

import (
	"net/netip"
	"strconv"
	"testing"
)

// benchRules brings the example to 10 entries.
const benchRules = `
config rule 'dns'
	option proto 'udp'
	option dest_port '53'
	option policy 'voice'

config rule 'ssh'
	option proto 'tcp'
	option src_ip '2001:db8:100:1::/64'
	option dest_port '22'
	option policy 'wifi_first'
`

// ParsePacket and Targets for one packet on a 10-entry table: a packet the
// first entry takes, one the last takes, and one no entry takes (every
// selector tried, then the fallback).
func BenchmarkParseTargets(b *testing.B) {
	tab, r := compileExample(b, "", benchRules)
	if len(tab.Entries) != 10 {
		b.Fatalf("%d entries", len(tab.Entries))
	}
	order := UplinkOrder(r)
	var alive [3]bool
	alive[bidWifi], alive[bidCell] = true, true
	usable := func(bid uint16) bool { return int(bid) < len(alive) && alive[bid] }
	for _, bc := range []struct {
		name string
		p    pkt
		rule string
	}{
		{"first", udp(lanHost, remote, 40000, 5060), "sip"},
		{"last", tcp(netip.MustParseAddr("2001:db8:100:1::7"), remote, 40000, 22), "ssh"},
		{"none", udp(lanHost, remote, 40000, 9999), ""},
	} {
		raw := bc.p.build()
		buf := make([]uint16, 0, 4)
		b.Run(bc.name, func(b *testing.B) {
			p, _ := ParsePacket(raw)
			_, e, _ := tab.Targets(&p, FromMN, usable, order, buf[:0])
			if (e == nil) != (bc.rule == "") || e != nil && e.Rule != bc.rule {
				b.Fatalf("matched %v", e)
			}
			b.ReportAllocs()
			for b.Loop() {
				p, _ := ParsePacket(raw)
				tab.Targets(&p, FromMN, usable, order, buf[:0])
			}
		})
	}
}

func BenchmarkDedupSeen(b *testing.B) {
	for _, size := range []int{100, 1280} {
		p := udp(lanHost, remote, 1, 2)
		p.payload = make([]byte, size-44)
		raw := p.build()
		d := NewDedup(64)
		b.Run(strconv.Itoa(size)+"B", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for i := 0; b.Loop(); i++ {
				// Each packet arrives twice, as over a duplicate
				// policy's two uplinks: half the calls insert.
				raw[60], raw[61] = byte(i>>1), byte(i>>9)
				d.Seen(1, raw)
			}
		})
	}
}
