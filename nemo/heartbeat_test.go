package nemo

import (
	"bytes"
	"net/netip"
	"testing"
)

// A Heartbeat packet is 56 octets, decodes to what went in, is told apart
// from tunnelled traffic by the cheap test, and is an IPv6 packet to the
// RFC 5555 framing.
func TestHeartbeatPacket(t *testing.T) {
	for _, hb := range []Heartbeat{{Seq: 7}, {Response: true, Seq: 0xfffffffe}, {Unsolicited: true, Seq: 1}} {
		p, err := AppendHeartbeatPacket(nil, hoa, haV6, &hb)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != HeartbeatPacketLen {
			t.Fatalf("%d octets, want %d", len(p), HeartbeatPacketLen)
		}
		if f, err := ParseUDPPayload(p); err != nil || f.Version != 6 || len(f.Packet) != len(p) {
			t.Fatalf("RFC 5555 framing: %+v %v", f, err)
		}
		if !IsHeartbeatPacket(p, haV6) || IsHeartbeatPacket(p, hoa) {
			t.Fatal("classified by the wrong destination")
		}
		var got Heartbeat
		src, err := ParseHeartbeatPacket(p, &got)
		if err != nil || src != hoa || got.Seq != hb.Seq || got.Response != hb.Response || got.Unsolicited != hb.Unsolicited {
			t.Fatalf("decoded %+v from %s: %v", got, src, err)
		}
	}
	if _, err := AppendHeartbeatPacket(nil, netip.MustParseAddr("192.0.2.1"), haV6, &Heartbeat{}); err == nil {
		t.Fatal("an IPv4 source was accepted")
	}
}

// Bad Heartbeat packets are refused with an error, never a panic: a wrong
// checksum, another message, another next header, a truncation.
func TestHeartbeatPacketRefused(t *testing.T) {
	good, err := AppendHeartbeatPacket(nil, hoa, haV6, &Heartbeat{Seq: 3})
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(p []byte) []byte) []byte { return f(bytes.Clone(good)) }
	bu, _ := AppendPacket(nil, hoa, haV6, netip.Addr{}, netip.Addr{}, 64, mustMarshal(t, &BindingRefreshRequest{}))
	data := []byte{0x60, 0, 0, 0, 0, 8, 17, 64}
	data = append(append(data, good[8:40]...), make([]byte, 8)...)
	for name, p := range map[string][]byte{
		"checksum":    mutate(func(p []byte) []byte { p[45] ^= 1; return p }),
		"sequence":    mutate(func(p []byte) []byte { p[55] ^= 1; return p }),
		"next header": mutate(func(p []byte) []byte { p[6] = 17; return p }),
		"truncated":   good[:50],
		"empty":       nil,
		"other type":  bu,
		"UDP":         data,
	} {
		var hb Heartbeat
		if _, err := ParseHeartbeatPacket(p, &hb); err == nil {
			t.Errorf("%s: accepted", name)
		}
		// The cheap test only sorts datagrams; a truncated one fails the decode.
		if name == "UDP" || name == "other type" || name == "next header" || name == "empty" {
			if IsHeartbeatPacket(p, haV6) {
				t.Errorf("%s: classified as a Heartbeat", name)
			}
		}
	}
}

func mustMarshal(t *testing.T, m Message) []byte {
	t.Helper()
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nemod's capabilities option survives a signed Binding Update, is found
// among other vendors' options, and a malformed one counts as absent.
func TestNemodCaps(t *testing.T) {
	bu := &BindingUpdate{Seq: 1, Flags: BUFlagA | BUFlagH | BUFlagR, Lifetime: 10, Options: Options{
		Vendor: []Vendor{{ID: 8072, SubType: NemodCapsSubType, Data: []byte{0xff, 0xff}}},
	}}
	if _, ok := bu.NemodCaps(); ok {
		t.Fatal("another vendor's option read as ours")
	}
	bu.SetNemodCaps(CapUDP6Offload)
	bu.SetNemodCaps(CapUDP6Offload) // replaces, does not add
	if len(bu.Vendor) != 2 {
		t.Fatalf("%d vendor options", len(bu.Vendor))
	}
	mh := mustMarshal(t, bu)
	var got BindingUpdate
	if err := Unmarshal(mh, &got); err != nil {
		t.Fatal(err)
	}
	if c, ok := got.NemodCaps(); !ok || c != CapUDP6Offload {
		t.Fatalf("caps %v %v", c, ok)
	}
	short := Options{Vendor: []Vendor{{ID: NemodVendorID, SubType: NemodCapsSubType, Data: []byte{1}}}}
	if _, ok := short.NemodCaps(); ok {
		t.Fatal("a one-octet option read as caps")
	}
}

// The unbound mark rides in a Heartbeat response and is read back; a
// response without it is not unbound.
func TestNemodUnbound(t *testing.T) {
	hb := Heartbeat{Response: true, Seq: 4}
	hb.SetNemodUnbound()
	hb.SetNemodUnbound()
	p, err := AppendHeartbeatPacket(nil, haV6, hoa, &hb)
	if err != nil {
		t.Fatal(err)
	}
	var got Heartbeat
	if _, err := ParseHeartbeatPacket(p, &got); err != nil || !got.NemodUnbound() || len(got.Vendor) != 1 || got.Seq != 4 {
		t.Fatalf("%+v %v", got, err)
	}
	if plain := (Heartbeat{Response: true}); plain.NemodUnbound() {
		t.Fatal("a plain response is unbound")
	}
}
