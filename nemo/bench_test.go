package nemo

import (
	"net/netip"
	"testing"
	"time"
)

// The home agent's per-registration work: decode a BU with two BID options,
// one Flow Identification and the authentication options, and verify it.
func BenchmarkDecodeVerifyBU(b *testing.B) {
	mh := signedBU(b, time.Now())
	a := NewAuthenticator(testKey)
	var bu BindingUpdate
	b.ReportAllocs()
	b.SetBytes(int64(len(mh)))
	for b.Loop() {
		if err := Unmarshal(mh, &bu); err != nil {
			b.Fatal(err)
		}
		if err := a.Verify(mh, &bu.Options, coa6, hoa); err != nil {
			b.Fatal(err)
		}
	}
}

// The mobile router's: encode and sign the same BU.
func BenchmarkEncodeSignBU(b *testing.B) {
	bu := &BindingUpdate{
		Seq: 42, Flags: BUFlagA | BUFlagH | BUFlagR, Lifetime: 150,
		Options: Options{
			MNPs:         []netip.Prefix{mnp1},
			BIDs:         []BID{{ID: 1, CoA: coa6}, {ID: 2, CoA: coa4}},
			FlowIDs:      []FlowID{{FID: 1, Pri: 1, BIDs: []uint16{1, 2}, TS: sampleTS6()}},
			HasTimestamp: true, Timestamp: NTPTime(time.Now()),
			Auth: []Auth{{Subtype: AuthMNHA, SPI: 256}},
		},
	}
	a := NewAuthenticator(testKey)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		mh, err := AppendMessage(buf[:0], bu)
		if err != nil {
			b.Fatal(err)
		}
		if err := a.Sign(mh, coa6, hoa); err != nil {
			b.Fatal(err)
		}
		SetChecksum(mh, hoa, haV6)
	}
}
