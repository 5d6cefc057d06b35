package dhcp4

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// golden builds a message field by field as RFC 2131 §2 lays it out, with
// the options area given (cookie included by the caller or not).
func golden(op byte, xid uint32, flags uint16, ciaddr, yiaddr, siaddr, giaddr string, mac net.HardwareAddr, options []byte) []byte {
	b := []byte{op, 1, byte(len(mac)), 0, byte(xid >> 24), byte(xid >> 16), byte(xid >> 8), byte(xid), 0, 0, byte(flags >> 8), byte(flags)}
	for _, a := range []string{ciaddr, yiaddr, siaddr, giaddr} {
		b = append(b, net.ParseIP(a).To4()...)
	}
	ch := make([]byte, 16)
	copy(ch, mac)
	b = append(b, ch...)
	b = append(b, make([]byte, 64+128)...) // sname, file
	return append(b, options...)
}

var cookie = []byte{99, 130, 83, 99}

// A DISCOVER as a client writes it decodes field by field.
func TestParseGolden(t *testing.T) {
	opts := append(append([]byte(nil), cookie...),
		53, 1, 1, // DISCOVER
		61, 7, 1, 2, 0, 0, 0, 0, 1, // client identifier: type 1, the MAC
		50, 4, 10, 201, 5, 9, // requested address
		12, 4, 'c', 'a', 'r', '1', // host name
		55, 4, 1, 3, 6, 51, // parameter request list
		57, 2, 0x05, 0xdc, // maximum message size 1500
		255, 0, 0, 0)
	b := golden(1, 0x3903f326, FlagBroadcast, "0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0", mac1, opts)
	m, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Op != OpRequest || m.XID != 0x3903f326 || m.Flags != FlagBroadcast || m.Type() != Discover || m.HardwareAddr().String() != mac1.String() ||
		m.Addr(OptRequestedIP) != netip.MustParseAddr("10.201.5.9") || m.CIAddr != netip.IPv4Unspecified() {
		t.Fatalf("%+v", m)
	}
	if h, _ := m.Option(OptHostname); string(h) != "car1" {
		t.Fatalf("host name %q", h)
	}
	if p, _ := m.Option(OptParamRequest); !bytes.Equal(p, []byte{1, 3, 6, 51}) {
		t.Fatalf("parameter request list %v", p)
	}
	// insomniacslk reads the same message the same way.
	ref, err := dhcpv4.FromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	if ref.TransactionID != (dhcpv4.TransactionID{0x39, 0x03, 0xf3, 0x26}) || ref.MessageType() != dhcpv4.MessageTypeDiscover ||
		!ref.RequestedIPAddress().Equal(net.ParseIP("10.201.5.9")) || ref.HostName() != "car1" {
		t.Fatalf("reference: %s", ref.Summary())
	}
}

// An ACK as the server builds it is, byte for byte, the layout of RFC 2131
// §2 and RFC 2132, padded to 300 octets.
func TestAppendGolden(t *testing.T) {
	req := &Message{Op: OpRequest, HType: 1, HLen: 6, XID: 0x01020304, Flags: FlagBroadcast, CIAddr: netip.IPv4Unspecified(),
		YIAddr: netip.IPv4Unspecified(), SIAddr: netip.IPv4Unspecified(), GIAddr: netip.IPv4Unspecified()}
	copy(req.CHAddr[:], mac1)
	req.Set(OptClientID, []byte{1, 2, 0, 0, 0, 0, 1})
	r := NewReply(req, Ack)
	r.YIAddr, r.SIAddr = netip.MustParseAddr("10.201.5.2"), netip.MustParseAddr("10.201.5.1")
	r.Set(OptServerID, addrsData(netip.MustParseAddr("10.201.5.1")))
	r.Set(OptLeaseTime, secondsData(3600))
	opts := append(append([]byte(nil), cookie...),
		53, 1, 5,
		61, 7, 1, 2, 0, 0, 0, 0, 1,
		54, 4, 10, 201, 5, 1,
		51, 4, 0, 0, 0x0e, 0x10,
		255)
	want := golden(2, 0x01020304, FlagBroadcast, "0.0.0.0", "10.201.5.2", "10.201.5.1", "0.0.0.0", mac1, opts)
	want = append(want, make([]byte, 300-len(want))...)
	if got := r.Append(nil); !bytes.Equal(got, want) {
		t.Fatalf("ACK\n got %s\nwant %s", hex.EncodeToString(got), hex.EncodeToString(want))
	}
}

// What insomniacslk encodes, Parse reads with the same fields; what Append
// encodes, insomniacslk reads with the same fields: every message type
// the server sees or sends.
func TestAgainstReference(t *testing.T) {
	ip := func(s string) net.IP { return net.ParseIP(s).To4() }
	build := func(t *testing.T, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
		t.Helper()
		m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(mac1)}, mods...)...)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, ref := range []*dhcpv4.DHCPv4{
		build(t, dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover), dhcpv4.WithBroadcast(true),
			dhcpv4.WithOption(dhcpv4.OptClientIdentifier([]byte{1, 2, 0, 0, 0, 0, 1})), dhcpv4.WithOption(dhcpv4.OptHostName("lan-host")),
			dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer)),
		build(t, dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip("10.201.5.2"))),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip("10.201.5.1")))),
		build(t, dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithClientIP(ip("10.201.5.2"))),
		build(t, dhcpv4.WithMessageType(dhcpv4.MessageTypeRelease), dhcpv4.WithClientIP(ip("10.201.5.2")),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip("10.201.5.1")))),
		build(t, dhcpv4.WithMessageType(dhcpv4.MessageTypeDecline), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip("10.201.5.2")))),
		build(t, dhcpv4.WithMessageType(dhcpv4.MessageTypeInform), dhcpv4.WithClientIP(ip("10.201.5.9")), dhcpv4.WithGatewayIP(ip("10.201.6.1"))),
		build(t, dhcpv4.WithReply(build(t)), dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer), dhcpv4.WithYourIP(ip("10.201.5.2")),
			dhcpv4.WithNetmask(net.CIDRMask(24, 32)), dhcpv4.WithRouter(ip("10.201.5.1")), dhcpv4.WithDNS(ip("192.0.2.53"), ip("192.0.2.54")),
			dhcpv4.WithLeaseTime(600), dhcpv4.WithOption(dhcpv4.OptBroadcastAddress(ip("10.201.5.255")))),
		build(t, dhcpv4.WithReply(build(t)), dhcpv4.WithMessageType(dhcpv4.MessageTypeNak), dhcpv4.WithOption(dhcpv4.OptMessage("no"))),
	} {
		t.Run(ref.MessageType().String(), func(t *testing.T) {
			m, err := Parse(ref.ToBytes())
			if err != nil {
				t.Fatal(err)
			}
			same(t, "parsed", m, ref)
			back, err := dhcpv4.FromBytes(m.Append(nil))
			if err != nil {
				t.Fatal(err)
			}
			same(t, "encoded", m, back)
			again, err := Parse(m.Append(nil))
			if err != nil || !reflect.DeepEqual(again, m) {
				t.Fatalf("round trip: %+v (%v), was %+v", again, err, m)
			}
		})
	}
}

// same checks that our message and the reference library's agree.
func same(t *testing.T, what string, m *Message, ref *dhcpv4.DHCPv4) {
	t.Helper()
	a := func(ip net.IP) netip.Addr {
		x, _ := netip.AddrFromSlice(ip.To4())
		return x
	}
	if m.Op != uint8(ref.OpCode) || m.HType != uint8(ref.HWType) || m.XID != uint32(ref.TransactionID[0])<<24|uint32(ref.TransactionID[1])<<16|uint32(ref.TransactionID[2])<<8|uint32(ref.TransactionID[3]) ||
		m.Flags != ref.Flags || m.HardwareAddr().String() != ref.ClientHWAddr.String() ||
		m.CIAddr != a(ref.ClientIPAddr) || m.YIAddr != a(ref.YourIPAddr) || m.SIAddr != a(ref.ServerIPAddr) || m.GIAddr != a(ref.GatewayIPAddr) ||
		m.Type() != MessageType(ref.MessageType()) {
		t.Fatalf("%s: %+v\nreference %s", what, m, ref.Summary())
	}
	if len(m.Options) != len(ref.Options) {
		t.Fatalf("%s: %d options, the reference %d", what, len(m.Options), len(ref.Options))
	}
	for _, o := range m.Options {
		if !bytes.Equal(o.Data, ref.Options.Get(dhcpv4.GenericOptionCode(o.Code))) {
			t.Fatalf("%s: option %d %x, the reference %x", what, o.Code, o.Data, ref.Options.Get(dhcpv4.GenericOptionCode(o.Code)))
		}
	}
}

// An option longer than 255 octets goes in several instances, which Parse
// joins again (RFC 3396); so does insomniacslk.
func TestLongOption(t *testing.T) {
	m := &Message{Op: OpReply, HType: 1, HLen: 6}
	m.Set(OptMessageType, []byte{byte(Ack)})
	var dns []netip.Addr
	for i := range 100 {
		dns = append(dns, netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}))
	}
	m.Set(OptDNS, addrsData(dns...))
	b := m.Append(nil)
	got, err := Parse(b)
	if err != nil || !reflect.DeepEqual(got.Addrs(OptDNS), dns) {
		t.Fatalf("%v %v", got, err)
	}
	ref, err := dhcpv4.FromBytes(b)
	if err != nil || len(ref.DNS()) != 100 {
		t.Fatalf("reference: %v %v", ref, err)
	}
}

// Options moved into the file and sname fields (option 52) are read, the
// file field's first.
func TestOverload(t *testing.T) {
	b := golden(1, 7, 0, "0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0", mac1, append(append([]byte(nil), cookie...), 52, 1, 3, 53, 1, 3, 255))
	copy(b[108:], []byte{50, 4, 10, 201, 5, 7, 12, 2, 'a', 'b', 255})
	copy(b[44:], []byte{12, 2, 'c', 'd', 255})
	m, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := m.Option(OptHostname)
	if m.Type() != Request || m.Addr(OptRequestedIP) != netip.MustParseAddr("10.201.5.7") || string(h) != "abcd" {
		t.Fatalf("%+v", m)
	}
	if _, ok := m.Option(OptOverload); ok {
		t.Fatal("option 52 kept: it describes where the options were, not the message")
	}
}

// What is not a well-formed message is refused, never read in part.
func TestParseRefuses(t *testing.T) {
	base := func(opts ...byte) []byte {
		return golden(1, 1, 0, "0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0", mac1, append(append([]byte(nil), cookie...), opts...))
	}
	bad := map[string][]byte{
		"short":              base(53, 1, 1, 255)[:239],
		"no cookie":          golden(1, 1, 0, "0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0", mac1, []byte{1, 2, 3, 4, 53, 1, 1, 255}),
		"op 3":               append([]byte{3}, base(53, 1, 1, 255)[1:]...),
		"hlen 17":            append([]byte{1, 1, 17}, base(53, 1, 1, 255)[3:]...),
		"no end":             base(53, 1, 1),
		"option past end":    base(53, 1, 1, 50, 4, 10, 201),
		"length past end":    base(53),
		"junk after end":     base(53, 1, 1, 255, 0, 7),
		"type of 2 octets":   base(53, 2, 1, 1, 255),
		"type 0":             base(53, 1, 0, 255),
		"requested 3 octets": base(53, 1, 1, 50, 3, 10, 201, 5, 255),
		"server id 5":        base(53, 1, 3, 54, 5, 10, 201, 5, 1, 1, 255),
		"lease time 2":       base(53, 1, 5, 51, 2, 0, 1, 255),
		"routers 6":          base(53, 1, 5, 3, 6, 1, 2, 3, 4, 5, 6, 255),
		"empty host name":    base(53, 1, 1, 12, 0, 255),
		"max size 500":       base(53, 1, 1, 57, 2, 1, 244, 255),
		"client id 1":        base(53, 1, 1, 61, 1, 1, 255),
		"overload 4":         base(53, 1, 1, 52, 1, 4, 255),
		"overload, no end":   base(53, 1, 1, 52, 1, 2, 255), // sname all pad: no end option there
	}
	for name, b := range bad {
		if m, err := Parse(b); err == nil || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %+v, %v", name, m, err)
		}
	}
	// A BOOTP message (no option 53) parses, of type 0, for the server to
	// ignore.
	if m, err := Parse(base(255)); err != nil || m.Type() != 0 {
		t.Fatalf("BOOTP: %+v %v", m, err)
	}
	if s := MessageType(9).String(); !strings.Contains(s, "9") || Discover.String() != "DISCOVER" {
		t.Fatal(s)
	}
}

// FuzzParse: Parse never panics; what it accepts encodes to a message it
// reads back the same, byte for byte on a second encoding, which the
// independent library decodes to the same fields and options.
func FuzzParse(f *testing.F) {
	d, _ := dhcpv4.NewDiscovery(mac1, dhcpv4.WithOption(dhcpv4.OptHostName("h")), dhcpv4.WithOption(dhcpv4.OptClientIdentifier([]byte{1, 2, 3})))
	f.Add(d.ToBytes())
	o, _ := dhcpv4.NewReplyFromRequest(d, dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer), dhcpv4.WithDNS(net.IPv4(192, 0, 2, 53)))
	f.Add(o.ToBytes())
	b := golden(1, 7, 0, "0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0", mac1, append(append([]byte(nil), cookie...), 52, 1, 3, 53, 1, 3, 255))
	copy(b[108:], []byte{50, 4, 10, 201, 5, 7, 255})
	copy(b[44:], []byte{255})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		enc := m.Append(nil)
		again, err := Parse(enc)
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip: %+v (%v), was %+v", again, err, m)
		}
		if enc2 := again.Append(nil); !bytes.Equal(enc, enc2) {
			t.Fatal("encoded twice, differently")
		}
		ref, err := dhcpv4.FromBytes(enc)
		if err != nil {
			t.Fatalf("the reference does not decode what Append wrote: %v", err)
		}
		same(t, "reference", m, ref)
	})
}
