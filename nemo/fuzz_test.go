package nemo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"nemod/header"
)

// seeds returns valid encodings of every message, for the fuzzers to start
// from.
func seeds(t testing.TB) [][]byte {
	full := allOptions()
	var out [][]byte
	for _, m := range []Message{
		&BindingRefreshRequest{Options: Options{BIDs: []BID{{ID: 4}}}},
		&BindingUpdate{Seq: 1, Flags: BUFlagA | BUFlagH | BUFlagR, Lifetime: 150, Options: full},
		&BindingAck{Status: 4, Options: full},
		&BindingError{Status: 2, HomeAddress: hoa},
		&HomeAgentSwitch{Addresses: []netip.Addr{haV6}, Options: Options{HasRefreshAdvice: true}},
		&Heartbeat{Seq: 5},
		&BindingRevocation{Kind: 1, Options: Options{BIDs: []BID{{ID: 2}}}},
		&Experimental{Data: []byte{1, 2}},
	} {
		mh, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, mh)
	}
	return append(out, signedBU(t, time.Unix(1_800_000_000, 0)))
}

// comparable makes a decoded message comparable with its re-encoding:
// what the encoder writes on its own (the MN-HA authenticator, reserved for
// Sign, and the order of authentication options, MN-HA first) and what it
// does not write (offsets, options it does not know) is left out.
func comparable(m Message) {
	if h, ok := m.(*HomeAgentSwitch); ok && len(h.Addresses) == 0 {
		h.Addresses = nil
	}
	o := m.options()
	if o == nil {
		return
	}
	normalize(m)
	o.Unknown = nil
	slices.SortStableFunc(o.Auth, func(a, b Auth) int {
		return boolInt(b.Subtype == AuthMNHA) - boolInt(a.Subtype == AuthMNHA)
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// tooLong reports whether an encoder's refusal is that the canonical form
// does not fit: it aligns every option, where the decoder accepts them
// packed, so the re-encoding of a message or option at its longest can
// grow past what the length field holds.
func tooLong(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Field == "Header Len" || strings.HasSuffix(e.Reason, "does not fit in 255 octets"))
}

// roundTrip checks that what decoded from mh re-encodes, and decodes
// again to the same value: decode(encode(decode(x))) == decode(x).
func roundTrip(t *testing.T, mh []byte, m Message) {
	t.Helper()
	out, err := Marshal(m)
	if tooLong(err) && len(mh) > MaxMHLen-256 {
		return
	}
	if err != nil {
		t.Fatalf("decoded %T does not encode: %v\nin  % x", m, err, mh)
	}
	again, err := Decode(out)
	if err != nil {
		t.Fatalf("re-encoded message does not decode: %v\nin  % x\nout % x", err, mh, out)
	}
	// Decode again from the input: m may alias it and be changed by
	// nothing, but comparable changes both.
	first, _ := Decode(mh)
	comparable(first)
	comparable(again)
	if !reflect.DeepEqual(first, again) {
		t.Fatalf("round trip changed the message\nin   % x\nout  % x\nfrom %+v\nto   %+v", mh, out, first, again)
	}
}

// FuzzDecode: message decoding never panics, and whatever decodes
// re-encodes to the same message.
func FuzzDecode(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, mh []byte) {
		m, err := Decode(mh)
		if err != nil {
			return
		}
		roundTrip(t, mh, m)
	})
}

// FuzzOptions: the option walk, fed raw option octets behind a BU header;
// what decodes round-trips.
func FuzzOptions(f *testing.F) {
	for _, s := range seeds(f) {
		if s[2] == TypeBU {
			f.Add(s[12:])
		}
	}
	f.Add([]byte{45, 6, 0, 1, 0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, opts []byte) {
		if len(opts) > MaxMHLen-12 {
			return
		}
		mh := make([]byte, 12, 12+len(opts)+8)
		mh[0], mh[2] = header.ProtoNone, TypeBU
		mh = append(mh, opts...)
		for len(mh)%8 != 0 {
			mh = append(mh, 0)
		}
		mh[1] = uint8(len(mh)/8 - 1)
		var bu BindingUpdate
		if Unmarshal(mh, &bu) != nil {
			return
		}
		roundTrip(t, mh, &bu)
	})
}

// FuzzTrafficSelector: selectors decode without panicking and re-encode to
// the same octets, which decode to the same selector.
func FuzzTrafficSelector(f *testing.F) {
	for _, ts := range []TrafficSelector{sampleTS6(), sampleTSAll6(), sampleTSAll4()} {
		b, _ := ts.MarshalBinary()
		f.Add(ts.Format, b)
	}
	f.Fuzz(func(t *testing.T, format uint8, data []byte) {
		var ts TrafficSelector
		if ts.UnmarshalBinary(format, data) != nil {
			return
		}
		out, err := ts.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded selector does not encode: %v", err)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("re-encoded % x, was % x", out, data)
		}
		var again TrafficSelector
		if err := again.UnmarshalBinary(format, out); err != nil || !reflect.DeepEqual(again, ts) {
			t.Fatalf("decodes again to %+v (%v), was %+v", again, err, ts)
		}
	})
}

// FuzzUDPPayload: the RFC 5555 framing and the IPv6 packet parser behind it,
// as the home agent runs them on every datagram to port 4191; a packet that
// parses is built again from what was parsed and parses to the same.
func FuzzUDPPayload(f *testing.F) {
	for _, s := range seeds(f) {
		p, _ := AppendPacket(nil, hoa, haV6, netip.Addr{}, netip.Addr{}, 64, s)
		f.Add(p)
		p, _ = AppendPacket(nil, coa6, haV6, hoa, hoa, 64, s)
		f.Add(p)
	}
	f.Add([]byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2})
	f.Fuzz(func(t *testing.T, payload []byte) {
		fr, err := ParseUDPPayload(payload)
		if err != nil || fr.Version != 6 {
			return
		}
		p, err := ParsePacket(fr.Packet)
		if err != nil {
			return
		}
		ok := VerifyChecksum(p.MH, p.PseudoSrc(), p.PseudoDst())
		if m, err := Decode(p.MH); err == nil {
			roundTrip(t, p.MH, m)
		}
		// Built again from what was parsed: the same addresses, and the
		// checksum AppendPacket computes is right exactly when it is the
		// one received.
		if len(p.MH) < 6 {
			return // no checksum field: nothing AppendPacket could set
		}
		sum := binary.BigEndian.Uint16(p.MH[4:])
		again, err := AppendPacket(nil, p.Src, p.Dst, p.HomeAddress, p.RH2Address, p.HopLimit, slices.Clone(p.MH))
		if err != nil {
			if len(p.MH)+48 <= 0xffff {
				t.Fatalf("parsed packet does not build: %v", err)
			}
			return
		}
		q, err := ParsePacket(again)
		if err != nil {
			t.Fatalf("rebuilt packet does not parse: %v\n% x", err, again)
		}
		if q.Src != p.Src || q.Dst != p.Dst || q.HopLimit != p.HopLimit || q.HomeAddress != p.HomeAddress || q.RH2Address != p.RH2Address ||
			len(q.MH) != len(p.MH) || !bytes.Equal(q.MH[6:], p.MH[6:]) || !VerifyChecksum(q.MH, q.PseudoSrc(), q.PseudoDst()) ||
			ok != (binary.BigEndian.Uint16(q.MH[4:]) == sum) {
			t.Fatalf("rebuilt packet differs: %+v, was %+v", q, p)
		}
	})
}

// FuzzVerify: authentication of arbitrary messages never panics and never
// succeeds for a message the key did not sign.
func FuzzVerify(f *testing.F) {
	signed := signedBU(f, time.Unix(1_800_000_000, 0))
	f.Add(signed)
	for _, s := range seeds(f) {
		f.Add(s)
	}
	a := NewAuthenticator(testKey)
	f.Fuzz(func(t *testing.T, mh []byte) {
		var bu BindingUpdate
		if Unmarshal(mh, &bu) != nil {
			return
		}
		if a.Verify(mh, &bu.Options, coa6, hoa) == nil && !sameSigned(mh, signed) {
			t.Fatalf("a message we did not sign verified: % x", mh)
		}
	})
}

// sameSigned reports whether mh equals the signed message except for the
// checksum and the padding contents, which authentication does not cover.
func sameSigned(mh, signed []byte) bool {
	if len(mh) != len(signed) {
		return false
	}
	a := append([]byte(nil), mh...)
	b := append([]byte(nil), signed...)
	a[4], a[5], b[4], b[5] = 0, 0, 0, 0
	return bytes.Equal(a, b)
}

// FuzzHeartbeatPacket: the probe decoder both data planes run on what
// arrives on the UDP port and the Mobility Header sockets never panics,
// and what it accepts encodes back to the same octets.
func FuzzHeartbeatPacket(f *testing.F) {
	for _, hb := range []Heartbeat{{Seq: 1}, {Response: true, Seq: 1 << 31}} {
		p, _ := AppendHeartbeatPacket(nil, hoa, haV6, &hb)
		f.Add(p)
	}
	p, _ := AppendPacket(nil, coa6, haV6, hoa, netip.Addr{}, 64, []byte{59, 1, 13, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 0})
	f.Add(p)
	f.Fuzz(func(t *testing.T, p []byte) {
		_ = IsHeartbeatPacket(p, haV6)
		var hb Heartbeat
		src, err := ParseHeartbeatPacket(p, &hb)
		if err != nil || len(hb.Options.Unknown)+len(hb.Vendor) > 0 || len(p) != HeartbeatPacketLen || p[41] != 1 {
			return
		}
		again, err := AppendHeartbeatPacket(nil, src, netip.AddrFrom16([16]byte(p[24:40])), &hb)
		if err != nil {
			t.Fatal(err)
		}
		// The hop limit, traffic class, flow label and padding are not the
		// message's: the addresses and the message must be.
		var back Heartbeat
		if _, err := ParseHeartbeatPacket(again, &back); err != nil || !bytes.Equal(again[8:40], p[8:40]) ||
			back.Seq != hb.Seq || back.Response != hb.Response || back.Unsolicited != hb.Unsolicited {
			t.Fatalf("re-encoded\n% x\nfrom\n% x: %v", again, p, err)
		}
	})
}

// FuzzIPv4Options: the RFC 5555 address options, any number of them in any
// order behind a BA header: decoding never panics, and what decodes
// re-encodes to options that decode to the same values (a refusal's prefix
// length read as 0, as §3.2.1 says).
func FuzzIPv4Options(f *testing.F) {
	for _, o := range []Options{
		{IPv4HoAs: []IPv4HomeAddress{{PrefixLen: 32, Addr: netip.IPv4Unspecified()}, {PrefixLen: 24, P: true, Addr: netip.IPv4Unspecified()}}},
		{IPv4AddrAcks: []IPv4AddrAck{{Status: 0, PrefixLen: 32, Addr: netip.MustParseAddr("10.200.0.1")}, {Status: IPv4StatusPrefixUnauth, Addr: netip.MustParseAddr("10.9.0.0")}}},
	} {
		mh, err := Marshal(&BindingAck{Options: o})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(mh[12:])
	}
	f.Add([]byte{OptIPv4HoA, 6, 0, 0, 1, 2, 3, 4})
	f.Add([]byte{OptIPv4AddrAck, 6, 200, 0xff, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, opts []byte) {
		if len(opts) > MaxMHLen-16 {
			return
		}
		mh := make([]byte, 12, 12+len(opts)+8)
		mh[0], mh[2] = header.ProtoNone, TypeBA
		mh = append(mh, opts...)
		for len(mh)%8 != 0 {
			mh = append(mh, 0)
		}
		mh[1] = uint8(len(mh)/8 - 1)
		var ba BindingAck
		if Unmarshal(mh, &ba) != nil {
			return
		}
		for _, a := range ba.IPv4AddrAcks {
			if a.Status >= 128 && (a.PrefixLen != 0 || a.Prefix().IsValid()) {
				t.Fatalf("refusal with a prefix: %+v", a)
			}
		}
		again := BindingAck{Options: Options{IPv4HoAs: ba.IPv4HoAs, IPv4AddrAcks: ba.IPv4AddrAcks}}
		out, err := Marshal(&again)
		if err != nil {
			t.Fatalf("decoded options do not encode: %v", err)
		}
		var back BindingAck
		if err := Unmarshal(out, &back); err != nil {
			t.Fatalf("re-encoded options do not decode: %v", err)
		}
		if len(back.IPv4HoAs) != len(ba.IPv4HoAs) || len(back.IPv4AddrAcks) != len(ba.IPv4AddrAcks) {
			t.Fatalf("options lost: %d/%d of %d/%d", len(back.IPv4HoAs), len(back.IPv4AddrAcks), len(ba.IPv4HoAs), len(ba.IPv4AddrAcks))
		}
		for i := range ba.IPv4HoAs {
			if back.IPv4HoAs[i] != ba.IPv4HoAs[i] {
				t.Fatalf("home address option %d: %+v, was %+v", i, back.IPv4HoAs[i], ba.IPv4HoAs[i])
			}
		}
		for i := range ba.IPv4AddrAcks {
			if back.IPv4AddrAcks[i] != ba.IPv4AddrAcks[i] {
				t.Fatalf("acknowledgement %d: %+v, was %+v", i, back.IPv4AddrAcks[i], ba.IPv4AddrAcks[i])
			}
		}
	})
}
