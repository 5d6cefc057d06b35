package aaa

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"net/netip"
	"os"
	"strings"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2868"
	"layeh.com/radius/rfc4818"
)

// The test side of the protocol is built from layeh's encoder and the
// standard library's HMAC and MD5 directly, not from this package's
// helpers, so that a mistake in them cannot cancel out in a round trip.

var testSecret = []byte("s3cret-for-tests")

var testNAS = NAS{Identifier: "ha1.fleet.example", IPv6: netip.MustParseAddr("2001:db8:ffff::1")}

const testKeyHex = "00112233445566778899aabbccddeeff"

// signResponse fills in the Message-Authenticator (first attribute, when
// withMA) and the Response Authenticator of a response built with the
// request's authenticator in its header.
func signResponse(b []byte, reqAuth []byte, secret []byte, withMA bool) []byte {
	copy(b[4:20], reqAuth)
	if withMA {
		clear(b[22:38])
		m := hmac.New(md5.New, secret)
		m.Write(b)
		copy(b[22:38], m.Sum(nil))
	}
	h := md5.New()
	h.Write(b[:4])
	h.Write(reqAuth)
	h.Write(b[20:])
	h.Write(secret)
	copy(b[4:20], h.Sum(nil))
	return b
}

// response builds a response to req with code, a Message-Authenticator
// first when withMA, and whatever add puts in.
func response(t testing.TB, req []byte, code radius.Code, secret []byte, withMA bool, add func(p *radius.Packet)) []byte {
	t.Helper()
	p := &radius.Packet{Code: code, Identifier: req[1], Secret: secret}
	copy(p.Authenticator[:], req[4:20])
	if withMA {
		p.Add(typeMessageAuthenticator, make([]byte, 16))
	}
	if add != nil {
		add(p)
	}
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	b = signResponse(b, req[4:20], secret, withMA)
	if !radius.IsAuthenticResponse(b, req, secret) {
		t.Fatal("the test's response is not authentic to layeh")
	}
	return b
}

func mustPrefix(t testing.TB, p netip.Prefix) radius.Attribute {
	t.Helper()
	a := p.Addr().As16()
	n := (p.Bits() + 7) / 8
	return append([]byte{0, byte(p.Bits())}, a[:n]...)
}

// fullAccept adds every attribute an Access-Accept for a router carries.
func fullAccept(t testing.TB) func(p *radius.Packet) {
	return func(p *radius.Packet) {
		hoa := netip.MustParseAddr("2001:db8:ffff:1::9").As16()
		p.Add(typeFramedIPv6Address, hoa[:])
		p.Add(rfc4818.DelegatedIPv6Prefix_Type, mustPrefix(t, netip.MustParsePrefix("2001:db8:900::/56")))
		// A prefix sent with all 16 octets, as some servers do.
		full := netip.MustParseAddr("2001:db8:901::").As16()
		p.Add(rfc4818.DelegatedIPv6Prefix_Type, append([]byte{0, 56}, full[:]...))
		p.Add(97, mustPrefix(t, netip.MustParsePrefix("2001:db8:a00::/64"))) // Framed-IPv6-Prefix
		p.Add(rfc2865.FramedIPAddress_Type, []byte{198, 51, 100, 9})
		p.Add(typePMIP6HomeIPv4HoA, []byte{0, 24, 198, 51, 100, 9})
		p.Add(rfc2865.SessionTimeout_Type, radius.NewInteger(3600))
		p.Add(typeAcctInterimInterval, radius.NewInteger(300))
		p.Add(rfc2865.Class_Type, []byte("fleet-gold"))
		if err := rfc2868.TunnelPassword_AddString(p, 1, testKeyHex); err != nil {
			t.Fatal(err)
		}
		p.Add(rfc2868.TunnelClientAuthID_Type, append([]byte{1}, "4097"...))
		// An attribute nobody asked for is ignored.
		p.Add(rfc2865.ReplyMessage_Type, []byte("welcome"))
	}
}

func wantFull() *Authorization {
	key, _ := hex.DecodeString(testKeyHex)
	return &Authorization{
		HoA: netip.MustParseAddr("2001:db8:ffff:1::9"),
		MNPs: []netip.Prefix{
			netip.MustParsePrefix("2001:db8:900::/56"),
			netip.MustParsePrefix("2001:db8:901::/56"),
			netip.MustParsePrefix("2001:db8:a00::/64"),
		},
		HoA4:            netip.MustParseAddr("198.51.100.9"),
		Prefix4:         netip.MustParsePrefix("198.51.100.9/24"),
		Lifetime:        3600e9,
		SPI:             4097,
		Key:             key,
		InterimInterval: 300e9,
		Class:           [][]byte{[]byte("fleet-gold")},
	}
}

func testRequest(t testing.TB, id byte) []byte {
	t.Helper()
	var auth [16]byte
	for i := range auth {
		auth[i] = byte(i*7 + int(id))
	}
	b, err := encodeAccessRequest(&AccessRequest{NAI: "car9@fleet.example", CoA: netip.MustParseAddr("2001:db8:c0a::5")}, &testNAS, id, &auth, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readHex reads the hex lines of a testdata file.
func readHex(t testing.TB, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, l := range strings.Fields(string(data)) {
		b, err := hex.DecodeString(l)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, b)
	}
	return out
}
