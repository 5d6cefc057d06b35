package nemo

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"nemod/header"
)

var (
	coa6  = netip.MustParseAddr("2001:db8:a::2")
	coa4  = netip.MustParseAddr("100.64.0.2")
	hoa   = netip.MustParseAddr("2001:db8:ffff:1::100")
	haV6  = netip.MustParseAddr("2001:db8:ffff::1")
	mnp1  = netip.MustParsePrefix("2001:db8:100::/56")
	mnp2  = netip.MustParsePrefix("2001:db8:200::/48")
	cnNet = netip.MustParseAddr("2001:db8:c::")
)

func sampleTS6() TrafficSelector {
	return TrafficSelector{
		Format:       TSFormatIPv6,
		Present:      TSSrcAddrStart | TSSrcAddrEnd | TSDstPortStart | TSDstPortEnd | TSProtoStart,
		SrcAddrStart: cnNet, SrcAddrEnd: netip.MustParseAddr("2001:db8:c:ffff:ffff:ffff:ffff:ffff"),
		DstPortStart: 5060, DstPortEnd: 5061, ProtoStart: 17,
	}
}

func sampleTSAll6() TrafficSelector {
	return TrafficSelector{
		Format: TSFormatIPv6, Present: 0xffff,
		SrcAddrStart: cnNet, SrcAddrEnd: cnNet.Next(), DstAddrStart: hoa, DstAddrEnd: hoa.Next(),
		SPIStart: 1, SPIEnd: 2, FlowLabelStart: 3, FlowLabelEnd: 0xfffff,
		SrcPortStart: 4, SrcPortEnd: 5, DstPortStart: 6, DstPortEnd: 7,
		TCStart: 8, TCEnd: 9, ProtoStart: 6, ProtoEnd: 17,
	}
}

func sampleTSAll4() TrafficSelector {
	return TrafficSelector{
		Format: TSFormatIPv4, Present: 0xffff &^ (TSFlowLabelStart | TSFlowLabelEnd),
		SrcAddrStart: netip.MustParseAddr("192.0.2.1"), SrcAddrEnd: netip.MustParseAddr("192.0.2.9"),
		DstAddrStart: netip.MustParseAddr("10.0.0.1"), DstAddrEnd: netip.MustParseAddr("10.0.0.2"),
		SPIStart: 1, SPIEnd: 2, SrcPortStart: 4, SrcPortEnd: 5, DstPortStart: 6, DstPortEnd: 7,
		TCStart: 0xb8, TCEnd: 0xb8, ProtoStart: 6, ProtoEnd: 17,
	}
}

// allOptions carries every option type at least once.
func allOptions() Options {
	return Options{
		HasRefreshAdvice: true, RefreshAdvice: 75,
		AltCoA:    coa6,
		HasNonces: true, HomeNonce: 7, CareofNonce: 9,
		IPv4HoAs:        []IPv4HomeAddress{{PrefixLen: 32, Addr: netip.MustParseAddr("0.0.0.0")}, {PrefixLen: 20, P: true, Addr: netip.MustParseAddr("10.16.0.0")}},
		IPv4CoA:         coa4,
		IPv4AddrAcks:    []IPv4AddrAck{{Status: 0, PrefixLen: 24, Addr: netip.MustParseAddr("10.1.2.3")}, {Status: IPv4StatusIncorrectHoA, Addr: netip.MustParseAddr("10.9.9.9")}},
		HasNATDetection: true, NATDetection: NATDetection{F: true, Refresh: 110},
		MNPs: []netip.Prefix{mnp1, mnp2},
		BIDs: []BID{
			{ID: 1, Pri: 10, CoA: coa6},
			{ID: 2, H: true, CoA: coa4},
			{ID: 3, Status: 0},
		},
		FlowIDs: []FlowID{
			{FID: 1, Pri: 10, BIDs: []uint16{2, 1}, TS: sampleTS6()},
			{FID: 2, Pri: 20, BIDs: []uint16{1}},
			{FID: 3, Pri: 30, TS: sampleTSAll4()},
			{FID: 4, Pri: 40, Status: FlowStatusBIDNotFound, BIDs: []uint16{7}, TS: sampleTSAll6()},
		},
		FlowSummary:  []uint16{5, 6},
		Vendor:       []Vendor{{ID: 12345, SubType: 1, Data: []byte("hello")}, {ID: 1, SubType: 2, Data: []byte{}}},
		Experimental: [][]byte{{1, 2, 3}},
		HasMNID:      true, MNIDSubtype: MNIDSubtypeNAI, MNID: []byte("car1@fleet.example"),
		HasTimestamp: true, Timestamp: 0x0102030405060708,
		Auth:            []Auth{{Subtype: AuthMNHA, SPI: 256}, {Subtype: AuthMNAAA, SPI: 3, Data: []byte{1, 2, 3, 4}}},
		BindingAuthData: []byte{9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9},
		Unknown:         nil,
	}
}

// normalize makes a decoded message comparable with the one encoded: it
// drops offsets and fills in what the encoder writes on its own.
func normalize(m Message) {
	o := m.options()
	if o == nil {
		return
	}
	for i := range o.Auth {
		o.Auth[i].Off = 0
		if o.Auth[i].Subtype == AuthMNHA {
			o.Auth[i].Data = nil
		}
	}
	nilIfEmpty(o)
}

func nilIfEmpty(o *Options) {
	if len(o.IPv4HoAs) == 0 {
		o.IPv4HoAs = nil
	}
	if len(o.IPv4AddrAcks) == 0 {
		o.IPv4AddrAcks = nil
	}
	if len(o.MNPs) == 0 {
		o.MNPs = nil
	}
	if len(o.BIDs) == 0 {
		o.BIDs = nil
	}
	if len(o.FlowIDs) == 0 {
		o.FlowIDs = nil
	}
	if len(o.FlowSummary) == 0 {
		o.FlowSummary = nil
	}
	if len(o.Vendor) == 0 {
		o.Vendor = nil
	}
	if len(o.Experimental) == 0 {
		o.Experimental = nil
	}
	if len(o.Auth) == 0 {
		o.Auth = nil
	}
	if len(o.Unknown) == 0 {
		o.Unknown = nil
	}
}

func TestRoundTripEveryMessage(t *testing.T) {
	full := allOptions()
	msgs := []Message{
		&BindingRefreshRequest{},
		&BindingRefreshRequest{Options: Options{BIDs: []BID{{ID: 4}}}},
		&BindingUpdate{Seq: 65535, Flags: BUFlagA | BUFlagH | BUFlagR | BUFlagO | BUFlagF, Lifetime: 150, Options: full},
		&BindingUpdate{Seq: 1, Flags: BUFlagA | BUFlagH | BUFlagL | BUFlagK | BUFlagM | BUFlagP | BUFlagT},
		&BindingAck{Status: StatusMCoANotComplete, Flags: BAFlagK | BAFlagR | BAFlagP | BAFlagT | BAFlagB, Seq: 9, Lifetime: 900, Options: full},
		&BindingAck{Status: StatusAuthFailed},
		&BindingError{Status: BEUnknownType, HomeAddress: hoa},
		&BindingError{Status: BEUnknownBinding, HomeAddress: hoa, Options: Options{Vendor: []Vendor{{ID: 2, SubType: 3, Data: []byte{4}}}}},
		&HomeAgentSwitch{},
		&HomeAgentSwitch{Addresses: []netip.Addr{haV6, haV6.Next()}, Options: Options{HasRefreshAdvice: true, RefreshAdvice: 10}},
		&Heartbeat{Seq: 0xdeadbeef, Response: true},
		&Heartbeat{Seq: 1, Unsolicited: true},
		&BindingRevocation{Kind: RevocationIndication, Code: 1, Seq: 77, Flags: RevFlagG, Options: Options{BIDs: []BID{{ID: 2}}}},
		&BindingRevocation{Kind: RevocationAck, Code: 128, Seq: 77, Flags: RevFlagP | RevFlagV},
		&Experimental{Data: []byte{1, 2}},
		&Experimental{Data: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		&Unknown{Type: 99, Data: []byte{0, 0}},
	}
	for _, m := range msgs {
		mh, err := Marshal(m)
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if len(mh)%8 != 0 || int(mh[1]+1)*8 != len(mh) || mh[0] != header.ProtoNone || mh[2] != m.MHType() {
			t.Fatalf("%T: bad header % x", m, mh[:6])
		}
		got, err := Decode(mh)
		if err != nil {
			t.Fatalf("%T: decode: %v\n% x", m, err, mh)
		}
		normalize(got)
		want := m
		if o := want.options(); o != nil {
			nilIfEmpty(o)
			for i := range o.Auth {
				if o.Auth[i].Subtype == AuthMNHA {
					o.Auth[i].Data = nil
				}
			}
		}
		switch w := want.(type) {
		case *Experimental:
			// Free-form data comes back with its zero padding.
			g := got.(*Experimental)
			if !bytes.HasPrefix(g.Data, w.Data) || len(g.Data)+6 != len(mh) {
				t.Fatalf("experimental: got % x want % x", g.Data, w.Data)
			}
			continue
		case *Unknown:
			g := got.(*Unknown)
			if g.Type != w.Type || !bytes.HasPrefix(g.Data, w.Data) {
				t.Fatalf("unknown: got %+v", g)
			}
			continue
		case *HomeAgentSwitch:
			if len(w.Addresses) == 0 {
				w.Addresses = nil
				if g := got.(*HomeAgentSwitch); len(g.Addresses) == 0 {
					g.Addresses = nil
				}
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%T round trip:\n got %+v\nwant %+v", m, got, want)
		}
	}
}

// Option alignment: each option's Type octet must sit where its RFC says.
func TestOptionAlignment(t *testing.T) {
	o := allOptions()
	mh, err := Marshal(&BindingUpdate{Seq: 1, Flags: BUFlagA | BUFlagH, Options: o})
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint8]align{
		OptRefreshAdvice: align2n, OptAltCoA: align8n6, OptNonceIndices: align2n, OptMNP: align8n4,
		OptMesgID: align8n2, OptVendor: align4n2, OptIPv4HoA: align4n, OptIPv4AddrAck: align4n,
		OptNATDetection: align4n, OptIPv4CoA: align4n, OptFlowSummary: align2n, OptFlowID: align2n,
		OptBindingAuthData: align8n2,
	}
	var bu BindingUpdate
	if err := Unmarshal(mh, &bu); err != nil {
		t.Fatal(err)
	}
	for off := 12; off < len(mh); {
		typ := mh[off]
		if typ == OptPad1 {
			off++
			continue
		}
		if a, ok := want[typ]; ok && off%a.x != a.y {
			t.Errorf("option %d at offset %d, want %dn+%d", typ, off, a.x, a.y)
		}
		if typ == OptBID {
			if l := mh[off+1]; l > 4 && off%8 != 2 {
				t.Errorf("BID with CoA at offset %d, want 8n+2", off)
			}
		}
		if typ == OptAuth && off%4 != 1 {
			t.Errorf("AUTH at offset %d, want 4n+1", off)
		}
		off += 2 + int(mh[off+1])
	}
	// The MN-HA authenticator of a message whose last option is AUTH ends
	// the message exactly, with no padding after it.
	sig, err := Marshal(&BindingUpdate{Seq: 1, Options: Options{BIDs: []BID{{ID: 1, CoA: coa6}}, HasTimestamp: true, Auth: []Auth{{Subtype: AuthMNHA, SPI: 300}}}})
	if err != nil {
		t.Fatal(err)
	}
	off, err := findMNHA(sig)
	if err != nil || off+2+17 != len(sig) || off%8 != 5 {
		t.Fatalf("MN-HA option at %d of %d (%v)", off, len(sig), err)
	}
}

func TestEncoderRefusesBadValues(t *testing.T) {
	bad := []Message{
		&BindingUpdate{Options: Options{BIDs: []BID{{ID: 0}}}},
		&BindingUpdate{Options: Options{BIDs: []BID{{ID: 1, Pri: 200}}}},
		&BindingUpdate{Options: Options{BIDs: []BID{{ID: 1, CoA: netip.MustParseAddr("::ffff:1.2.3.4")}}}},
		&BindingUpdate{Options: Options{MNPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}},
		&BindingUpdate{Options: Options{AltCoA: coa4}},
		&BindingUpdate{Options: Options{IPv4CoA: coa6}},
		&BindingUpdate{Options: Options{IPv4HoAs: []IPv4HomeAddress{{PrefixLen: 0, Addr: coa4}}}},
		&BindingUpdate{Options: Options{IPv4HoAs: []IPv4HomeAddress{{PrefixLen: 33, Addr: coa4}}}},
		&BindingUpdate{Options: Options{IPv4HoAs: []IPv4HomeAddress{{PrefixLen: 32, Addr: coa6}}}},
		&BindingAck{Options: Options{IPv4AddrAcks: []IPv4AddrAck{{Status: 0, PrefixLen: 0, Addr: coa4}}}},
		&BindingAck{Options: Options{IPv4AddrAcks: []IPv4AddrAck{{Status: 0, PrefixLen: 24}}}},
		&BindingUpdate{Options: Options{FlowIDs: []FlowID{{FID: 0}}}},
		&BindingUpdate{Options: Options{FlowIDs: []FlowID{{FID: 1, BIDs: []uint16{}}}}},
		&BindingUpdate{Options: Options{FlowIDs: []FlowID{{FID: 1, BIDs: []uint16{0}}}}},
		&BindingUpdate{Options: Options{FlowIDs: []FlowID{{FID: 1, TS: TrafficSelector{Format: 3}}}}},
		&BindingUpdate{Options: Options{FlowIDs: []FlowID{{FID: 1, TS: TrafficSelector{Format: TSFormatIPv4, Present: TSFlowLabelStart}}}}},
		&BindingUpdate{Options: Options{FlowIDs: []FlowID{{FID: 1, TS: TrafficSelector{Format: TSFormatIPv6, Present: TSSrcPortEnd}}}}},
		&BindingUpdate{Options: Options{FlowIDs: []FlowID{{FID: 1, TS: TrafficSelector{Format: TSFormatIPv6, Present: TSSrcAddrStart, SrcAddrStart: coa4}}}}},
		&BindingUpdate{Options: Options{FlowSummary: []uint16{0}}},
		&BindingUpdate{Options: Options{Vendor: []Vendor{{Data: make([]byte, 251)}}}},
		&BindingUpdate{Options: Options{HasMNID: true}},
		&BindingUpdate{Options: Options{MNPs: make([]netip.Prefix, 120)}},
		&BindingError{HomeAddress: coa4},
		&HomeAgentSwitch{Addresses: make([]netip.Addr, 128)},
		&BindingRevocation{Kind: 3},
	}
	for i := range 120 {
		bad[len(bad)-4].options().MNPs[i] = mnp1
	}
	for _, m := range bad {
		if b, err := Marshal(m); err == nil {
			t.Errorf("%T %+v encoded to % x", m, m, b)
		} else if _, ok := err.(*Error); !ok {
			t.Errorf("error %v is not an *Error", err)
		}
	}
	// Many FIDs are split over several Flow Summary options.
	fids := make([]uint16, 300)
	for i := range fids {
		fids[i] = uint16(i + 1)
	}
	mh, err := Marshal(&BindingUpdate{Options: Options{FlowSummary: fids}})
	if err != nil {
		t.Fatal(err)
	}
	var bu BindingUpdate
	if err := Unmarshal(mh, &bu); err != nil || !reflect.DeepEqual(bu.FlowSummary, fids) {
		t.Fatalf("flow summary of 300: %v", err)
	}
}

func TestDecoderErrors(t *testing.T) {
	good, _ := Marshal(&BindingUpdate{Seq: 1, Options: Options{BIDs: []BID{{ID: 1, CoA: coa6}}, MNPs: []netip.Prefix{mnp1}}})
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name  string
		in    []byte
		field string
		off   int
	}{
		{"short", good[:7], "length", 0},
		{"payload proto", mut(func(b []byte) []byte { b[0] = 6; return b }), "Payload Proto", 0},
		{"header len too long", mut(func(b []byte) []byte { b[1]++; return b }), "Header Len", 1},
		{"header len under fixed part", []byte{59, 0, 5, 0, 0, 0, 0, 0}, "Header Len", 1},
		{"truncated", good[:len(good)-8], "Header Len", 1},
		{"option runs past end", mut(func(b []byte) []byte { b[12] = 19; b[13] = 200; return b }), "Vendor Specific option", 12},
		{"BID bad length", mustMH(t, &BindingUpdate{}, []byte{35, 5, 0, 1, 0, 0, 0, 0}), "length", 12},
	}
	for _, c := range cases {
		_, err := Decode(c.in)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%s: err = %v, want *Error", c.name, err)
			continue
		}
		if (e.Field != c.field && e.Msg != c.field) || e.Off != c.off {
			t.Errorf("%s: got %q (field %q off %d), want field %q off %d", c.name, e, e.Field, e.Off, c.field, c.off)
		}
	}
	// A BID option of a wrong length is answered with status 164.
	bad := mustMH(t, &BindingUpdate{}, []byte{35, 6, 0, 1, 0, 0, 1, 2, 3, 4})
	_, err := Decode(bad)
	var e *Error
	if !errors.As(err, &e) || e.Status != StatusMCoAMalformed {
		t.Errorf("bad BID: %v", err)
	}
}

// An IPv4-mapped address where an IPv6 one belongs is refused by the
// decoder as the encoder refuses it, at the address's offset; in a BID
// option with status 164.
func TestDecoderRefusesMappedAddresses(t *testing.T) {
	mapped := netip.MustParseAddr("::ffff:192.0.2.1").As16()
	for _, c := range []struct {
		m     Message
		v6    netip.Addr
		field string
	}{
		{&BindingUpdate{Options: Options{AltCoA: coa6}}, coa6, "address"},
		{&BindingUpdate{Options: Options{MNPs: []netip.Prefix{mnp1}}}, mnp1.Addr(), "prefix"},
		{&BindingUpdate{Options: Options{BIDs: []BID{{ID: 1, CoA: coa6}}}}, coa6, "care-of address"},
		{&BindingError{HomeAddress: hoa}, hoa, "Home Address"},
		{&HomeAgentSwitch{Addresses: []netip.Addr{haV6, haV6.Next()}}, haV6.Next(), "Home Agent Address"},
	} {
		mh, err := Marshal(c.m)
		if err != nil {
			t.Fatal(err)
		}
		v6 := c.v6.As16()
		at := bytes.Index(mh, v6[:])
		copy(mh[at:], mapped[:])
		_, err = Decode(mh)
		var e *Error
		if !errors.As(err, &e) || e.Field != c.field || e.Off != at || !strings.Contains(e.Reason, "IPv4-mapped") {
			t.Errorf("%T: %v, want field %q at %d", c.m, err, c.field, at)
		}
		if _, isBU := c.m.(*BindingUpdate); isBU && c.field == "care-of address" && e.Status != StatusMCoAMalformed {
			t.Errorf("BID care-of address: status %d", e.Status)
		}
	}
}

// mustMH builds a message whose options are the raw octets given (padded).
func mustMH(t *testing.T, m Message, opts []byte) []byte {
	t.Helper()
	mh, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	fl := fixedLen(m.MHType())
	b := append(mh[:fl:fl], opts...)
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	b[1] = uint8(len(b)/8 - 1)
	return b
}

func TestUnknownOptionsSkipped(t *testing.T) {
	mh := mustMH(t, &BindingUpdate{Seq: 3}, []byte{200, 3, 1, 2, 3, 0, 35, 4, 0, 9, 0, 0})
	var bu BindingUpdate
	if err := Unmarshal(mh, &bu); err != nil {
		t.Fatal(err)
	}
	if len(bu.Unknown) != 1 || bu.Unknown[0].Type != 200 || len(bu.BIDs) != 1 || bu.BIDs[0].ID != 9 {
		t.Fatalf("got %+v", bu.Options)
	}
}

func TestUnmarshalReusesWithoutAllocating(t *testing.T) {
	mh, _ := Marshal(&BindingUpdate{Seq: 1, Options: Options{BIDs: []BID{{ID: 1, CoA: coa6}, {ID: 2, CoA: coa4}}, MNPs: []netip.Prefix{mnp1}, HasTimestamp: true, Auth: []Auth{{Subtype: AuthMNHA, SPI: 256}}}})
	var bu BindingUpdate
	_ = Unmarshal(mh, &bu)
	if n := testing.AllocsPerRun(100, func() { _ = Unmarshal(mh, &bu) }); n != 0 {
		t.Fatalf("%v allocations per decode", n)
	}
	if err := Unmarshal(mh, &BindingAck{}); err == nil {
		t.Fatal("decoded a BU as a BA")
	}
}

func TestSequenceAndLifetime(t *testing.T) {
	// RFC 6275 §9.5.1: with last = 15, 0..15 and 32783..65535 are stale.
	for _, v := range []uint16{0, 15, 32783, 65535} {
		if SeqNewer(v, 15) {
			t.Errorf("%d newer than 15", v)
		}
	}
	for _, v := range []uint16{16, 32782} {
		if !SeqNewer(v, 15) {
			t.Errorf("%d not newer than 15", v)
		}
	}
	if !SeqNewer(0, 65535) || SeqNewer(65535, 0) {
		t.Error("wrap-around")
	}
	for d, u := range map[time.Duration]uint16{0: 0, time.Second: 1, 600 * time.Second: 150, 601 * time.Second: 150, 300 * time.Hour: 65535} {
		if Lifetime(d) != u {
			t.Errorf("Lifetime(%v) = %d, want %d", d, Lifetime(d), u)
		}
	}
}

func TestNTP(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 500_000_000, time.UTC)
	ts := NTPTime(now)
	if ts>>32 != uint64(now.Unix()+2208988800) || ts&0xffffffff != 1<<31 {
		t.Fatalf("NTP %x", ts)
	}
	if d := NTPToTime(ts).Sub(now); d < -time.Microsecond || d > time.Microsecond {
		t.Fatalf("round trip off by %v", d)
	}
}

func TestTrafficSelectorRoundTrip(t *testing.T) {
	for _, ts := range []TrafficSelector{sampleTS6(), sampleTSAll6(), sampleTSAll4(), {Format: TSFormatIPv4}, {Format: TSFormatIPv6, Present: TSProtoStart, ProtoStart: 58}} {
		b, err := ts.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got TrafficSelector
		if err := got.UnmarshalBinary(ts.Format, b); err != nil {
			t.Fatalf("%+v: %v", ts, err)
		}
		if !reflect.DeepEqual(got, ts) {
			t.Fatalf("got %+v want %+v", got, ts)
		}
	}
	// Wire flags: IPv6 A (start source address) is the top bit; IPv4 G is
	// the source port where IPv6 G is the flow label.
	b, _ := (&TrafficSelector{Format: TSFormatIPv6, Present: TSSrcAddrStart, SrcAddrStart: cnNet}).MarshalBinary()
	if b[0] != 0x80 || len(b) != 20 {
		t.Fatalf("% x", b)
	}
	b, _ = (&TrafficSelector{Format: TSFormatIPv4, Present: TSSrcPortStart, SrcPortStart: 80}).MarshalBinary()
	if b[0] != 0x02 || len(b) != 6 {
		t.Fatalf("% x", b)
	}
	var ts TrafficSelector
	for _, in := range [][]byte{{}, {0, 0, 0, 1}, {0x80, 0, 0, 0}, {0x40, 0, 0, 0, 1, 2, 3, 4}, {0, 0, 0, 0, 1}} {
		if err := ts.UnmarshalBinary(TSFormatIPv4, in); err == nil {
			t.Errorf("accepted % x", in)
		}
	}
}
