// Package forge builds the Binding Updates tests send as an attacker or a
// misconfigured router would, and reads the answers: one builder for the
// daemons' in-process tests and the lab's.
package forge

import (
	"errors"
	"net/netip"
	"time"

	"nemod/nemo"
)

// BU is a Binding Update from a mobile router's home address, signed with
// key under spi, registering coa as BID 1 and claiming mnps.
type BU struct {
	HoA  netip.Addr
	CoA  netip.Addr
	SPI  uint32
	Key  []byte
	NAI  string
	MNPs []netip.Prefix
	Seq  uint16
	TS   time.Time
}

// Packet is the Binding Update as an IPv6 packet to the home agent ha, as
// it travels inside UDP (RFC 5555).
func (f BU) Packet(ha netip.Addr) ([]byte, error) {
	bu := &nemo.BindingUpdate{
		Seq: f.Seq, Flags: nemo.BUFlagA | nemo.BUFlagH | nemo.BUFlagR, Lifetime: nemo.Lifetime(10 * time.Minute),
		Options: nemo.Options{
			MNPs: f.MNPs, BIDs: []nemo.BID{{ID: 1, CoA: f.CoA}},
			HasMNID: f.NAI != "", MNIDSubtype: nemo.MNIDSubtypeNAI, MNID: []byte(f.NAI),
			HasTimestamp: true, Timestamp: nemo.NTPTime(f.TS),
			Auth: []nemo.Auth{{Subtype: nemo.AuthMNHA, SPI: f.SPI}},
		},
	}
	mh, err := nemo.Marshal(bu)
	if err != nil {
		return nil, err
	}
	if err := nemo.NewAuthenticator(f.Key).Sign(mh, f.HoA, f.HoA); err != nil {
		return nil, err
	}
	return nemo.AppendPacket(nil, f.HoA, ha, netip.Addr{}, netip.Addr{}, 64, mh)
}

// AckStatus is the status of the Binding Acknowledgement in pkt.
func AckStatus(pkt []byte) (int, error) {
	p, err := nemo.ParsePacket(pkt)
	if err != nil {
		return 0, err
	}
	var ba nemo.BindingAck
	if err := nemo.Unmarshal(p.MH, &ba); err != nil {
		return 0, err
	}
	if ba.MHType() != nemo.TypeBA {
		return 0, errors.New("not a binding acknowledgement")
	}
	return int(ba.Status), nil
}
