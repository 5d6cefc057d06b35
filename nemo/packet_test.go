package nemo

import (
	"errors"
	"net/netip"
	"testing"

	"nemod/header"
)

func TestPacketWithBothHeaders(t *testing.T) {
	mh, _ := Marshal(&BindingAck{Seq: 3})
	pkt, err := AppendPacket(nil, haV6, coa6, hoa, hoa, 64, mh)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePacket(pkt)
	if err != nil {
		t.Fatal(err)
	}
	if p.HomeAddress != hoa || p.RH2Address != hoa || !VerifyChecksum(p.MH, p.PseudoSrc(), p.PseudoDst()) {
		t.Fatalf("%+v", p)
	}
	// Link-layer padding after the packet is ignored.
	if _, err := ParsePacket(append(pkt, 0, 0, 0)); err != nil {
		t.Fatal(err)
	}
}

func TestParsePacketErrors(t *testing.T) {
	mh, _ := Marshal(&BindingUpdate{Seq: 3})
	good, _ := AppendPacket(nil, coa6, haV6, hoa, netip.Addr{}, 64, mh)
	mut := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	for name, in := range map[string][]byte{
		"short":               good[:39],
		"version 4":           mut(func(b []byte) { b[0] = 0x45 }),
		"payload past end":    mut(func(b []byte) { b[5] += 8 }),
		"ext header past end": good[:44],
		"ext len past end":    mut(func(b []byte) { b[41] = 9 }),
		"two HAOs": mut(func(b []byte) {
			b[42], b[43], b[44], b[45] = 0xc9, 2, 0, 0 // HAO of length 2 where PadN was
		}),
		"HAO length":           mut(func(b []byte) { b[47] = 15 }),
		"discard option":       mut(func(b []byte) { b[42] = 0x80; b[43] = 2 }),
		"hop-by-hop not first": mut(func(b []byte) { b[40] = 0; copy(b[64:], []byte{135, 0, 1, 4, 0, 0, 0, 0}) }),
	} {
		_, err := ParsePacket(in)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%s: %v", name, err)
		}
	}
	udp := mut(func(b []byte) { b[6] = 17 })
	if _, err := ParsePacket(udp); err != ErrNotMH {
		t.Errorf("UDP packet: %v", err)
	}
	rh0 := append([]byte(nil), good[:40]...)
	rh0[6] = header.ProtoRouting
	rh0 = append(rh0, 135, 0, 0, 1, 0, 0, 0, 0)
	rh0[5] = 8
	if _, err := ParsePacket(rh0); err == nil {
		t.Error("routing header type 0 with segments left accepted")
	}
}

func TestParseUDPPayload(t *testing.T) {
	mh, _ := Marshal(&BindingUpdate{Seq: 3})
	inner, _ := AppendPacket(nil, hoa, haV6, netip.Addr{}, netip.Addr{}, 64, mh)
	f, err := ParseUDPPayload(append(inner, 1, 2, 3))
	if err != nil || f.Version != 6 || len(f.Packet) != len(inner) {
		t.Fatalf("%+v %v", f, err)
	}
	v4 := []byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
	if f, err := ParseUDPPayload(v4); err != nil || f.Version != 4 {
		t.Fatalf("%+v %v", f, err)
	}
	if f, err := ParseUDPPayload([]byte{0x01, 2}); err != nil || f.Version != 0 {
		t.Fatalf("probe: %+v %v", f, err)
	}
	for _, in := range [][]byte{nil, {0x60}, inner[:39], {0x45, 0, 0, 19}, append(v4[:2:2], 0, 30), {0x75}, {0x44, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}} {
		if _, err := ParseUDPPayload(in); err == nil {
			t.Errorf("accepted % x", in)
		}
	}
}
