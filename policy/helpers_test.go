package policy

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"nemod/config"
	"nemod/header"
)

// exampleUCI is the README's example of flow policies: two uplinks, three
// policies, rules in file order. telemetry and dns are additions that give
// the duplicate policy and DSCP matching a rule, and put a tunnelled rule
// after the direct one.
const exampleUCI = `
config router 'mr'
	option home_agent '2001:db8:ffff::1'
	option home_address '2001:db8:ffff:1::100'
	list mnp '2001:db8:100::/56'
	option spi '256'
	option key '00112233445566778899aabbccddeeff'
%s
config uplink 'wifi'
	option device 'wlan0'
	option bid '1'
	option priority '10'

config uplink 'cell'
	option device 'wwan0'
	option bid '2'
	option priority '20'

config policy 'voice'
	list use 'cell'
	list use 'wifi'

config policy 'control'
	list use 'cell'
	list use 'wifi'
	option mode 'duplicate'

config policy 'wifi_first'
	list use 'wifi'
	list use 'cell'

config rule 'sip'
	option proto 'udp'
	option dest_port '5060-5061'
	option policy 'voice'

config rule 'video'
	option dest_ip '2001:db8:c::/48'
	option proto 'tcp'
	option policy 'wifi_first'

config rule 'roadside'
	option dest_ip '2001:db8:5::/48'
	option policy 'direct'

config rule 'telemetry'
	option src_ip '2001:db8:100::10'
	option dscp 'EF'
	option policy 'control'
%s`

// loadRouter parses exampleUCI, with extra lines for the router section
// and extra sections at the end.
func loadRouter(t testing.TB, routerExtra, sections string) *config.Router {
	t.Helper()
	src := fmt.Sprintf(exampleUCI, routerExtra, sections)
	f, err := config.Parse("example.uci", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return f.Router
}

func compileExample(t testing.TB, routerExtra, sections string) (*Table, *config.Router) {
	t.Helper()
	r := loadRouter(t, routerExtra, sections)
	tab, err := Compile(r)
	if err != nil {
		t.Fatal(err)
	}
	return tab, r
}

const (
	bidWifi = 1
	bidCell = 2
)

var (
	lanHost  = netip.MustParseAddr("2001:db8:100::10")
	lanOther = netip.MustParseAddr("2001:db8:100::20")
	remote   = netip.MustParseAddr("2001:db8:77::1")
	videoCN  = netip.MustParseAddr("2001:db8:c::1")
	roadCN   = netip.MustParseAddr("2001:db8:5::9")
)

// usableSet returns a usable function for the given BIDs.
func usableSet(bids ...uint16) func(uint16) bool {
	var m [4]bool
	for _, b := range bids {
		m[b] = true
	}
	return func(b uint16) bool { return int(b) < len(m) && m[b] }
}

// ext is an IPv6 extension header to put in a test packet; its first
// octet (Next Header) is filled in by build.
type ext struct {
	typ  uint8
	data []byte
}

func hopByHop() ext { return ext{header.ProtoHopByHop, []byte{0, 0, 1, 4, 0, 0, 0, 0}} }
func dstOpts() ext {
	return ext{header.ProtoDstOpts, []byte{0, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}
}
func routing() ext { return ext{header.ProtoRouting, []byte{0, 0, 4, 0, 0, 0, 0, 0}} }
func ah() ext {
	d := make([]byte, 24)
	d[1] = 24/4 - 2
	binary.BigEndian.PutUint32(d[4:], 0x1000)
	return ext{header.ProtoAH, d}
}

// fragment is a fragment header at the given offset in 8-octet units.
func fragment(offset uint16, more bool) ext {
	d := make([]byte, 8)
	v := offset << 3
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(d[2:], v)
	binary.BigEndian.PutUint32(d[4:], 0xdeadbeef)
	return ext{header.ProtoFragment, d}
}

// pkt describes a test packet.
type pkt struct {
	src, dst netip.Addr
	proto    uint8
	sport    uint16
	dport    uint16
	tc       uint8
	flow     uint32
	hops     uint8
	exts     []ext
	payload  []byte // after the ports, or the whole upper layer for protocols without
}

func (p pkt) build() []byte {
	b := make([]byte, 40, 128)
	b[0] = 6<<4 | p.tc>>4
	b[1] = p.tc<<4 | uint8(p.flow>>16)&0x0f
	b[2], b[3] = uint8(p.flow>>8), uint8(p.flow)
	b[7] = p.hops
	if b[7] == 0 {
		b[7] = 64
	}
	s, d := p.src.As16(), p.dst.As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	next := 6
	for _, e := range p.exts {
		b[next] = e.typ
		next = len(b)
		b = append(b, e.data...)
	}
	b[next] = p.proto
	switch p.proto {
	case header.ProtoTCP, header.ProtoUDP, header.ProtoUDPLite, header.ProtoSCTP, header.ProtoDCCP:
		b = binary.BigEndian.AppendUint16(b, p.sport)
		b = binary.BigEndian.AppendUint16(b, p.dport)
	}
	b = append(b, p.payload...)
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)-40))
	return b
}

// reverse is the packet going the other way.
func (p pkt) reverse() pkt {
	p.src, p.dst = p.dst, p.src
	p.sport, p.dport = p.dport, p.sport
	return p
}
