package nemo

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"time"
)

// writer appends to a buffer and knows the offset of the Mobility Header's
// first octet in it, which option alignment is counted from.
type writer struct {
	b     []byte
	start int
}

func (w *writer) off() int       { return len(w.b) - w.start }
func (w *writer) u8(v uint8)     { w.b = append(w.b, v) }
func (w *writer) u16(v uint16)   { w.b = binary.BigEndian.AppendUint16(w.b, v) }
func (w *writer) u32(v uint32)   { w.b = binary.BigEndian.AppendUint32(w.b, v) }
func (w *writer) u64(v uint64)   { w.b = binary.BigEndian.AppendUint64(w.b, v) }
func (w *writer) bytes(p []byte) { w.b = append(w.b, p...) }
func (w *writer) addr(a netip.Addr) {
	if a.Is4() {
		v := a.As4()
		w.b = append(w.b, v[:]...)
		return
	}
	v := a.As16()
	w.b = append(w.b, v[:]...)
}

// pad appends n octets of padding: Pad1 for one, PadN otherwise.
func (w *writer) pad(n int) {
	switch {
	case n == 1:
		w.u8(OptPad1)
	case n >= 2:
		w.u8(OptPadN)
		w.u8(uint8(n - 2))
		for i := 0; i < n-2; i++ {
			w.u8(0)
		}
	}
}

// option pads to the alignment and writes the option's Type and Length.
func (w *writer) option(a align, t uint8, length int) {
	w.pad(((a.y-w.off())%a.x + a.x) % a.x)
	w.u8(t)
	w.u8(uint8(length))
}

func addr16(b []byte) netip.Addr { return netip.AddrFrom16([16]byte(b[:16])) }
func addr4(b []byte) netip.Addr  { return netip.AddrFrom4([4]byte(b[:4])) }

func itoa(n int) string { return strconv.Itoa(n) }

// SeqNewer reports whether sequence number a is newer than b, modulo 2^16
// (RFC 6275 §9.5.1): a is newer when (a-b) mod 65536 is in [1, 32767].
func SeqNewer(a, b uint16) bool {
	d := a - b
	return d != 0 && d < 0x8000
}

// LifetimeUnit is the unit of BU, BA and Binding Refresh Advice lifetimes.
const LifetimeUnit = 4 * time.Second

// MaxLifetime is the longest lifetime a BU or BA can carry.
const MaxLifetime = 65535 * LifetimeUnit

// Lifetime converts a duration to 4-second units, rounding down and
// saturating at 65535. A positive duration under 4 s gives 1, so that a
// registration is never turned into a de-registration by rounding.
func Lifetime(d time.Duration) uint16 {
	switch {
	case d <= 0:
		return 0
	case d >= MaxLifetime:
		return 65535
	case d < LifetimeUnit:
		return 1
	}
	return uint16(d / LifetimeUnit)
}

// LifetimeDuration converts 4-second units to a duration.
func LifetimeDuration(units uint16) time.Duration { return time.Duration(units) * LifetimeUnit }

// ntpEpochOffset is the number of seconds from 1900-01-01 to 1970-01-01.
const ntpEpochOffset = 2208988800

// NTPTime converts t to the 64-bit NTP timestamp format used by the replay
// protection option (RFC 4285 §6): seconds since 1900 and a binary fraction.
func NTPTime(t time.Time) uint64 {
	sec := uint64(t.Unix() + ntpEpochOffset)
	frac := (uint64(t.Nanosecond()) << 32) / 1e9
	return sec<<32 | frac
}

// NTPToTime is the inverse of NTPTime (for dates after 1968, era 0).
func NTPToTime(ts uint64) time.Time {
	sec := int64(ts>>32) - ntpEpochOffset
	nsec := int64((ts & 0xffffffff) * 1e9 >> 32)
	return time.Unix(sec, nsec)
}
