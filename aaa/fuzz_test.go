package aaa

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"layeh.com/radius"
)

// signedFromFuzz makes a packet the checks will pass: code, then a
// Message-Authenticator and the fuzzer's attribute bytes, with the length,
// the Message-Authenticator and the authenticator computed as a sender with
// the secret would. auth is the authenticator the signatures cover (the
// request's, or zeros for a Disconnect-Request); respAuth says whether the
// authenticator is a Response Authenticator over auth, or a Request
// Authenticator over zeros.
func signedFromFuzz(code byte, id byte, attrs []byte, auth []byte) []byte {
	if len(attrs) > radius.MaxPacketLength-38 {
		attrs = attrs[:radius.MaxPacketLength-38]
	}
	b := make([]byte, 38, 38+len(attrs))
	b[0], b[1] = code, id
	b[20], b[21] = byte(typeMessageAuthenticator), 18
	b = append(b, attrs...)
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	copy(b[4:20], auth)
	m := hmac.New(md5.New, testSecret)
	m.Write(b)
	copy(b[22:38], m.Sum(nil))
	h := md5.New()
	h.Write(b)
	h.Write(testSecret)
	copy(b[4:20], h.Sum(nil))
	return b
}

// FuzzParseAccessResponse: no response, however malformed, panics the
// parser, changes its input, or yields an authorization a router could not
// safely be given.
func FuzzParseAccessResponse(f *testing.F) {
	req := testRequest(f, 7)
	f.Add(response(f, req, radius.CodeAccessAccept, testSecret, true, fullAccept(f)), false)
	f.Add(response(f, req, radius.CodeAccessReject, testSecret, true, nil), false)
	full := response(f, req, radius.CodeAccessAccept, testSecret, true, fullAccept(f))
	f.Add(append([]byte{byte(radius.CodeAccessAccept)}, full[38:]...), true)
	f.Add([]byte{byte(radius.CodeAccessAccept), 168, 18, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 69, 3, 1}, true)
	fr := readHex(f, "testdata/freeradius/accept.hex")
	f.Add(fr[1], false)
	f.Fuzz(func(t *testing.T, data []byte, sign bool) {
		resp := data
		if sign && len(data) > 0 {
			resp = signedFromFuzz(data[0], req[1], data[1:], req[4:20])
		}
		keep := bytes.Clone(resp)
		a, err := ParseAccessResponse(resp, req, testSecret, false)
		if !bytes.Equal(resp, keep) {
			t.Fatal("input modified")
		}
		if (a == nil) == (err == nil) {
			t.Fatalf("authorization %v with error %v", a, err)
		}
		if err != nil {
			return
		}
		if !a.HoA.IsGlobalUnicast() || len(a.Key) < minKeyLen || a.SPI < 256 {
			t.Fatalf("unsafe authorization %+v", a)
		}
		for _, p := range a.MNPs {
			if p.Masked() != p || p.Bits() == 0 {
				t.Fatalf("prefix %v", p)
			}
		}
		if a.Prefix4.IsValid() && a.Prefix4.Addr() != a.HoA4 {
			t.Fatalf("IPv4 %v vs %v", a.Prefix4, a.HoA4)
		}
	})
}

// FuzzParseDisconnect: no datagram panics the Disconnect-Request checks;
// what they accept names a session, and what they refuse can be answered.
func FuzzParseDisconnect(f *testing.F) {
	pol := &DynAuthPolicy{Secret: testSecret, NAS: testNAS}
	now := time.Unix(1767225600, 0)
	f.Add(disconnectRequest(f, radius.CodeDisconnectRequest, 1, testSecret, true, byName), false)
	f.Add(disconnectRequest(f, radius.CodeCoARequest, 2, testSecret, true, byName), false)
	f.Add([]byte{byte(radius.CodeDisconnectRequest), 1, 5, 'a', '@', 'b', 55, 6, 0x69, 0x55, 0xb9, 0, 33, 3, 'x'}, true)
	f.Add([]byte{byte(radius.CodeDisconnectRequest), 168, 18, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 32, 4, 'h', 'a'}, true)
	f.Add(readHex(f, "testdata/freeradius/disconnect.hex")[0], false)
	f.Fuzz(func(t *testing.T, data []byte, sign bool) {
		pkt := data
		if sign && len(data) > 0 {
			pkt = signedFromFuzz(data[0], 9, data[1:], zero16[:])
		}
		keep := bytes.Clone(pkt)
		d, err := ParseDisconnect(pkt, pol, now)
		if !bytes.Equal(pkt, keep) {
			t.Fatal("input modified")
		}
		var nak *NakError
		switch {
		case err == nil:
			if d == nil || d.Selector.empty() {
				t.Fatalf("accepted without a session: %+v", d)
			}
		case errors.As(err, &nak):
			if d == nil {
				t.Fatal("a NAK with nothing to answer")
			}
		case errors.Is(err, ErrDiscard):
			if d != nil {
				t.Fatal("discarded, yet a request")
			}
			return
		default:
			t.Fatalf("error of no class: %v", err)
		}
		reply, err := encodeDynAuthReply(d, radius.CodeDisconnectNAK, CauseSessionNotFound, testSecret)
		if err != nil || !radius.IsAuthenticResponse(reply, pkt, testSecret) {
			t.Fatalf("answer: %v", err)
		}
	})
}
