package nemo

import (
	"crypto/hmac"
	"crypto/sha1"
	"errors"
	"net/netip"
	"testing"
	"time"
)

var testKey = []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}

func signedBU(t testing.TB, now time.Time) []byte {
	t.Helper()
	bu := &BindingUpdate{
		Seq: 42, Flags: BUFlagA | BUFlagH | BUFlagR, Lifetime: Lifetime(600 * time.Second),
		Options: Options{
			MNPs:         []netip.Prefix{mnp1},
			BIDs:         []BID{{ID: 1, CoA: coa6}, {ID: 2, CoA: coa4}},
			FlowIDs:      []FlowID{{FID: 1, Pri: 1, BIDs: []uint16{1, 2}, TS: sampleTS6()}},
			HasTimestamp: true, Timestamp: NTPTime(now),
			Auth: []Auth{{Subtype: AuthMNHA, SPI: 256}},
		},
	}
	mh, err := Marshal(bu)
	if err != nil {
		t.Fatal(err)
	}
	if err := NewAuthenticator(testKey).Sign(mh, coa6, hoa); err != nil {
		t.Fatal(err)
	}
	return mh
}

// The authenticator is HMAC-SHA1-96 over exactly CoA | HoA | MH data up to
// and including the SPI, with the checksum as zero (RFC 4285 §5.1),
// computed here independently of Authenticator.
func TestAuthCoversExactlyTheRFCBytes(t *testing.T) {
	mh := signedBU(t, time.Now())
	SetChecksum(mh, hoa, haV6) // the checksum must not matter
	off, err := findMNHA(mh)
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha1.New, testKey)
	c, h := coa6.As16(), hoa.As16()
	m.Write(c[:])
	m.Write(h[:])
	data := append([]byte(nil), mh[:off+7]...)
	data[4], data[5] = 0, 0
	m.Write(data)
	want := m.Sum(nil)[:12]
	if got := mh[off+7 : off+19]; !hmac.Equal(got, want) {
		t.Fatalf("authenticator % x, want % x", got, want)
	}
	var bu BindingUpdate
	if err := Unmarshal(mh, &bu); err != nil {
		t.Fatal(err)
	}
	if err := NewAuthenticator(testKey).Verify(mh, &bu.Options, coa6, hoa); err != nil {
		t.Fatal(err)
	}
}

func TestAuthRejects(t *testing.T) {
	mh := signedBU(t, time.Now())
	a := NewAuthenticator(testKey)
	var bu BindingUpdate
	if err := Unmarshal(mh, &bu); err != nil {
		t.Fatal(err)
	}
	if err := a.Verify(mh, &bu.Options, coa6, hoa); err != nil {
		t.Fatal(err)
	}
	wrongKey := append([]byte(nil), testKey...)
	wrongKey[0] ^= 1
	if err := NewAuthenticator(wrongKey).Verify(mh, &bu.Options, coa6, hoa); !errors.Is(err, ErrAuth) {
		t.Errorf("wrong key: %v", err)
	}
	if err := a.Verify(mh, &bu.Options, coa6.Next(), hoa); !errors.Is(err, ErrAuth) {
		t.Errorf("other CoA: %v", err)
	}
	if err := a.Verify(mh, &bu.Options, coa6, hoa.Next()); !errors.Is(err, ErrAuth) {
		t.Errorf("other HoA: %v", err)
	}
	// Every octet before the authenticator is covered, except the checksum.
	off, _ := findMNHA(mh)
	for i := 0; i < off+7; i++ {
		if i == 4 || i == 5 {
			continue
		}
		b := append([]byte(nil), mh...)
		b[i] ^= 0x10
		var m BindingUpdate
		if Unmarshal(b, &m) != nil {
			continue // no longer decodes: rejected anyway
		}
		if err := a.Verify(b, &m.Options, coa6, hoa); !errors.Is(err, ErrAuth) && !errors.Is(err, ErrNoAuth) {
			t.Errorf("flipping octet %d: %v", i, err)
		}
	}
	// A message without the option.
	plain, _ := Marshal(&BindingUpdate{Seq: 1})
	var p BindingUpdate
	_ = Unmarshal(plain, &p)
	if err := a.Verify(plain, &p.Options, coa6, hoa); !errors.Is(err, ErrNoAuth) {
		t.Errorf("no auth: %v", err)
	}
	if err := a.Sign(plain, coa6, hoa); !errors.Is(err, ErrNoAuth) {
		t.Errorf("sign without option: %v", err)
	}
}

func TestReplayProtection(t *testing.T) {
	now := time.Now()
	ts := NTPTime(now)
	if err := CheckTimestamp(ts, now, DefaultReplayWindow, 0); err != nil {
		t.Fatal(err)
	}
	if err := CheckTimestamp(ts, now, DefaultReplayWindow, ts); !errors.Is(err, ErrTimestamp) {
		t.Error("replay accepted")
	}
	if err := CheckTimestamp(NTPTime(now.Add(-8*time.Second)), now, DefaultReplayWindow, 0); !errors.Is(err, ErrTimestamp) {
		t.Error("old timestamp accepted")
	}
	if err := CheckTimestamp(NTPTime(now.Add(8*time.Second)), now, DefaultReplayWindow, 0); !errors.Is(err, ErrTimestamp) {
		t.Error("future timestamp accepted")
	}
	if err := CheckTimestamp(NTPTime(now.Add(6*time.Second)), now, DefaultReplayWindow, ts); err != nil {
		t.Errorf("within window: %v", err)
	}
	// Status 144 answer: low half from the BU, high half from our clock.
	skewed := NTPTime(now.Add(-time.Hour))
	m := MismatchTimestamp(skewed, now)
	if m&0xffffffff != skewed&0xffffffff || m>>32 != ts>>32 {
		t.Errorf("mismatch timestamp %x", m)
	}
}

func TestAuthenticatorDoesNotAllocate(t *testing.T) {
	mh := signedBU(t, time.Now())
	a := NewAuthenticator(testKey)
	var bu BindingUpdate
	_ = Unmarshal(mh, &bu)
	if n := testing.AllocsPerRun(100, func() { _ = a.Verify(mh, &bu.Options, coa6, hoa) }); n != 0 {
		t.Errorf("Verify: %v allocations", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = a.Sign(mh, coa6, hoa) }); n != 0 {
		t.Errorf("Sign: %v allocations", n)
	}
}
