package nemo

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"hash"
	"net/netip"
	"time"
)

// Authenticator computes and checks RFC 4285 MN-HA authenticators with one
// key: First(96, HMAC-SHA1(key, care-of address | home address | MH data)),
// where MH data runs from the Payload Proto octet through the SPI of the
// authentication option, with the checksum taken as zero (RFC 4285 §5.1).
// It keeps its HMAC state between calls and is not safe for concurrent use.
type Authenticator struct {
	mac  hash.Hash
	sum  [sha1.Size]byte
	addr [32]byte // scratch for the two addresses: a local would escape
}

// NewAuthenticator returns an Authenticator for the MN-HA key.
func NewAuthenticator(key []byte) *Authenticator {
	return &Authenticator{mac: hmac.New(sha1.New, key)}
}

// mac96 computes the authenticator of mh for the option at authOff.
func (a *Authenticator) mac96(mh []byte, authOff int, coa, hoa netip.Addr) []byte {
	a.mac.Reset()
	c, h := coa.As16(), hoa.As16()
	copy(a.addr[:16], c[:])
	copy(a.addr[16:], h[:])
	a.mac.Write(a.addr[:])
	a.mac.Write(mh[:4])
	a.mac.Write(zeroChecksum[:])
	a.mac.Write(mh[6 : authOff+7])
	return a.mac.Sum(a.sum[:0])[:MACLen]
}

// Sign fills in the authenticator of the MN-HA authentication option of an
// encoded Mobility Header (as AppendMessage leaves it, before the checksum
// is set). Set the checksum afterwards: it covers the authenticator.
func (a *Authenticator) Sign(mh []byte, coa, hoa netip.Addr) error {
	off, err := findMNHA(mh)
	if err != nil {
		return err
	}
	if int(mh[off+1]) != 5+MACLen {
		return errAt("authentication option", "length", off+1, "is "+itoa(int(mh[off+1]))+", want 17 for HMAC-SHA1-96")
	}
	copy(mh[off+7:off+7+MACLen], a.mac96(mh, off, coa, hoa))
	return nil
}

// Verify checks the MN-HA authenticator of mh, a decoded message whose
// options are o. It returns ErrNoAuth when there is no MN-HA option and
// ErrAuth when the authenticator does not match; the comparison takes the
// same time whatever the data.
func (a *Authenticator) Verify(mh []byte, o *Options, coa, hoa netip.Addr) error {
	auth, ok := o.MNHA()
	if !ok {
		return ErrNoAuth
	}
	if len(auth.Data) != MACLen || auth.Off+7+MACLen > len(mh) {
		return ErrAuth
	}
	if subtle.ConstantTimeCompare(a.mac96(mh, auth.Off, coa, hoa), auth.Data) != 1 {
		return ErrAuth
	}
	return nil
}

// findMNHA returns the offset of the MN-HA authentication option in an
// encoded Mobility Header.
func findMNHA(mh []byte) (int, error) {
	h, err := ParseHeader(mh)
	if err != nil {
		return 0, err
	}
	off := fixedLen(h.Type)
	if h.Type == TypeHASwitch {
		off += 16 * int(mh[6])
	}
	for off < len(mh) {
		t := mh[off]
		if t == OptPad1 {
			off++
			continue
		}
		if off+2 > len(mh) || off+2+int(mh[off+1]) > len(mh) {
			break
		}
		if t == OptAuth && mh[off+1] >= 5 && mh[off+2] == AuthMNHA {
			return off, nil
		}
		off += 2 + int(mh[off+1])
	}
	return 0, ErrNoAuth
}

// DefaultReplayWindow is how far a timestamp may be from the receiver's
// clock (RFC 4285 §6 suggests 7 s; it must be more than 3 s).
const DefaultReplayWindow = 7 * time.Second

// CheckTimestamp applies RFC 4285 §6 replay protection: ts must be within
// window of now and newer than last, the newest timestamp accepted from the
// same peer (0 when none). It returns ErrTimestamp otherwise.
func CheckTimestamp(ts uint64, now time.Time, window time.Duration, last uint64) error {
	if last != 0 && ts <= last {
		return ErrTimestamp
	}
	d := NTPToTime(ts).Sub(now)
	if d > window || d < -window {
		return ErrTimestamp
	}
	return nil
}

// MismatchTimestamp is the timestamp a home agent returns with status 144:
// the low 32 bits from the rejected message, the high 32 bits from its own
// clock, so that the mobile node can correct its clock (RFC 4285 §6).
func MismatchTimestamp(rejected uint64, now time.Time) uint64 {
	return NTPTime(now)&^0xffffffff | rejected&0xffffffff
}
