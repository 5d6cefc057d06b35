package aaa

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"strconv"

	"layeh.com/radius"
)

// Attribute types layeh's permitted dictionaries do not define: they are
// taken from their RFCs and parsed raw.
const (
	typeAcctInputGigawords     radius.Type = 52  // RFC 2869 §5.8
	typeAcctOutputGigawords    radius.Type = 53  // RFC 2869 §5.9
	typeEventTimestamp         radius.Type = 55  // RFC 2869 §5.3
	typeMessageAuthenticator   radius.Type = 80  // RFC 3579 §3.2
	typeAcctInterimInterval    radius.Type = 85  // RFC 2869 §5.16
	typeErrorCause             radius.Type = 101 // RFC 5176 §3.5
	typePMIP6HomeIPv4HoA       radius.Type = 155 // RFC 6572 §3.9
	typeFramedIPv6Address      radius.Type = 168 // RFC 6911 §3.1
	messageAuthenticatorLength             = 16
)

const headerLen = 20

var (
	errShort       = errors.New("radius: packet shorter than its 20-byte header")
	errLength      = errors.New("radius: length field outside 20..4096 or beyond the datagram")
	errAttrLength  = errors.New("radius: attribute length runs past the packet or is below 2")
	errSecret      = errors.New("radius: empty shared secret")
	errMAMissing   = errors.New("radius: no Message-Authenticator (the server must send one; see the package documentation)")
	errMABad       = errors.New("radius: Message-Authenticator does not match")
	errMAMany      = errors.New("radius: more than one Message-Authenticator")
	errMALength    = errors.New("radius: Message-Authenticator is not 16 octets")
	errAuthBad     = errors.New("radius: authenticator does not match (wrong shared secret, or forged)")
	errPasswordLen = errors.New("radius: Tunnel-Password is not a salt and whole 16-octet blocks")
	errSalt        = errors.New("radius: Tunnel-Password salt lacks its high bit (RFC 2868 §3.5)")
	errPasswordPad = errors.New("radius: Tunnel-Password length octet exceeds the data")
)

// frame checks the header and attribute framing of a datagram and returns
// the packet without the padding after its Length (RFC 2865 §3: octets past
// Length are ignored). It never panics, whatever b holds.
func frame(b []byte) ([]byte, error) {
	if len(b) < headerLen {
		return nil, errShort
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n < headerLen || n > radius.MaxPacketLength || n > len(b) {
		return nil, errLength
	}
	b = b[:n]
	for off := headerLen; off < n; {
		if n-off < 2 || b[off+1] < 2 || int(b[off+1]) > n-off {
			return nil, errAttrLength
		}
		off += int(b[off+1])
	}
	return b, nil
}

// findAttr returns the offset of the value of the only attribute of type t
// in a framed packet, -1 if there is none, or an error if there are more.
func findAttr(pkt []byte, t radius.Type) (int, int, error) {
	at, size := -1, 0
	// The bound checks repeat frame's: a packet that was not framed must
	// not make this loop forever.
	for off := headerLen; off+1 < len(pkt) && pkt[off+1] >= 2 && int(pkt[off+1]) <= len(pkt)-off; off += int(pkt[off+1]) {
		if radius.Type(pkt[off]) != t {
			continue
		}
		if at >= 0 {
			return -1, 0, errMAMany
		}
		at, size = off+2, int(pkt[off+1])-2
	}
	return at, size, nil
}

var zero16 [16]byte

// messageAuthenticator computes HMAC-MD5 keyed with the secret over the
// packet (RFC 3579 §3.2) with its authenticator field replaced by auth and
// the 16 octets at maOff (the attribute's value) taken as zero. auth is the
// packet's own Request Authenticator for Access-Request and Status-Server,
// sixteen zero octets for Accounting-, Disconnect- and CoA-Request (RFC 5176
// §3.3), and the request's authenticator for every response.
func messageAuthenticator(pkt []byte, maOff int, auth *[16]byte, secret []byte) [16]byte {
	m := hmac.New(md5.New, secret)
	m.Write(pkt[:4])
	m.Write(auth[:])
	m.Write(pkt[headerLen:maOff])
	m.Write(zero16[:])
	m.Write(pkt[maOff+messageAuthenticatorLength:])
	var sum [16]byte
	m.Sum(sum[:0])
	return sum
}

// checkMessageAuthenticator verifies the Message-Authenticator of a framed
// packet. present reports whether the packet has one; err is non-nil when
// it is malformed or wrong (or, with required, absent).
func checkMessageAuthenticator(pkt []byte, auth *[16]byte, secret []byte, required bool) (present bool, err error) {
	off, size, err := findAttr(pkt, typeMessageAuthenticator)
	switch {
	case err != nil:
		return true, err
	case off < 0 && required:
		return false, errMAMissing
	case off < 0:
		return false, nil
	case size != messageAuthenticatorLength:
		return true, errMALength
	}
	want := messageAuthenticator(pkt, off, auth, secret)
	if !hmac.Equal(want[:], pkt[off:off+messageAuthenticatorLength]) {
		return true, errMABad
	}
	return true, nil
}

// signMessageAuthenticator fills in the Message-Authenticator at maOff.
func signMessageAuthenticator(pkt []byte, maOff int, auth *[16]byte, secret []byte) {
	sum := messageAuthenticator(pkt, maOff, auth, secret)
	copy(pkt[maOff:], sum[:])
}

// md5Authenticator is MD5(Code+Identifier+Length+auth+Attributes+Secret):
// with the request's authenticator, the Response Authenticator of every
// reply (RFC 2865 §3); with sixteen zero octets, the Request Authenticator
// of Accounting-Request (RFC 2866 §3) and of Disconnect- and CoA-Request
// (RFC 5176 §2.3).
func md5Authenticator(pkt []byte, auth *[16]byte, secret []byte) [16]byte {
	h := md5.New()
	h.Write(pkt[:4])
	h.Write(auth[:])
	h.Write(pkt[headerLen:])
	h.Write(secret)
	var sum [16]byte
	h.Sum(sum[:0])
	return sum
}

// checkAuthenticator compares the authenticator field of pkt with
// md5Authenticator(pkt, auth, secret) in constant time.
func checkAuthenticator(pkt []byte, auth *[16]byte, secret []byte) error {
	want := md5Authenticator(pkt, auth, secret)
	if subtle.ConstantTimeCompare(want[:], pkt[4:headerLen]) != 1 {
		return errAuthBad
	}
	return nil
}

// maxTunnelPassword is the longest plaintext whose encryption (a length
// octet, the text, padding to 16) fits an attribute with its tag and salt.
const maxTunnelPassword = 239

// encryptTunnelPassword salt-encrypts plain as RFC 2868 §3.5 describes:
// the value after the tag octet (salt, then the encrypted blocks).
func encryptTunnelPassword(plain []byte, salt [2]byte, secret []byte, reqAuth *[16]byte) ([]byte, error) {
	if len(plain) > maxTunnelPassword {
		return nil, errors.New("radius: Tunnel-Password longer than " + strconv.Itoa(maxTunnelPassword) + " octets")
	}
	if len(secret) == 0 {
		return nil, errSecret
	}
	if salt[0]&0x80 == 0 {
		return nil, errSalt
	}
	n := (1 + len(plain) + 15) / 16 * 16
	out := make([]byte, 2+n)
	copy(out, salt[:])
	out[2] = byte(len(plain))
	copy(out[3:], plain)
	prev := append(append(make([]byte, 0, 18), reqAuth[:]...), salt[:]...)
	for i := 2; i < len(out); i += 16 {
		h := md5.New()
		h.Write(secret)
		h.Write(prev)
		b := h.Sum(nil)
		for j := range 16 {
			out[i+j] ^= b[j]
		}
		prev = out[i : i+16]
	}
	return out, nil
}

// decryptTunnelPassword reverses encryptTunnelPassword. v is the value
// after the tag octet.
func decryptTunnelPassword(v, secret []byte, reqAuth *[16]byte) ([]byte, error) {
	if len(v) < 2+16 || (len(v)-2)%16 != 0 {
		return nil, errPasswordLen
	}
	if len(secret) == 0 {
		return nil, errSecret
	}
	if v[0]&0x80 == 0 {
		return nil, errSalt
	}
	plain := make([]byte, len(v)-2)
	prev := append(append(make([]byte, 0, 18), reqAuth[:]...), v[:2]...)
	for i := 0; i < len(plain); i += 16 {
		h := md5.New()
		h.Write(secret)
		h.Write(prev)
		b := h.Sum(nil)
		c := v[2+i : 2+i+16]
		for j := range 16 {
			plain[i+j] = c[j] ^ b[j]
		}
		prev = c
	}
	n := int(plain[0])
	if n > len(plain)-1 {
		return nil, errPasswordPad
	}
	return plain[1 : 1+n], nil
}

// untag splits an RFC 2868 tagged value: a first octet of 0x00..0x1F is the
// tag, anything else is data (RFC 2868 §3.1). Tunnel-Password always has
// its tag octet, so it is not split with this.
func untag(v []byte) (byte, []byte) {
	if len(v) > 0 && v[0] <= 0x1f {
		return v[0], v[1:]
	}
	return 0, v
}

func itoa(n int) string { return strconv.Itoa(n) }
