package aaa

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"errors"
	"net/netip"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc3162"
)

// disconnectRequest builds a Disconnect-Request (or another code) as a
// dynamic authorization client does: the Message-Authenticator over the
// packet with a zero authenticator, then the Request Authenticator, MD5
// over the packet and the secret (RFC 5176 §2.3, §3.3).
func disconnectRequest(t testing.TB, code radius.Code, id byte, secret []byte, withMA bool, add func(p *radius.Packet)) []byte {
	t.Helper()
	p := &radius.Packet{Code: code, Identifier: id, Secret: secret}
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
	if withMA {
		m := hmac.New(md5.New, secret)
		m.Write(b)
		copy(b[22:38], m.Sum(nil))
	}
	h := md5.New()
	h.Write(b)
	h.Write(secret)
	copy(b[4:20], h.Sum(nil))
	if !radius.IsAuthenticRequest(b, secret) {
		t.Fatal("the test's request is not authentic to layeh")
	}
	return b
}

var testNow = time.Unix(1767225600, 0)

func byName(p *radius.Packet) {
	p.Add(rfc2865.UserName_Type, []byte("car9@fleet.example"))
}

func TestParseDisconnect(t *testing.T) {
	pol := &DynAuthPolicy{Secret: testSecret, NAS: testNAS, RequireMessageAuthenticator: true}
	hoa := netip.MustParseAddr("2001:db8:ffff:1::9")
	pkt := disconnectRequest(t, radius.CodeDisconnectRequest, 77, testSecret, true, func(p *radius.Packet) {
		byName(p)
		p.Add(rfc2866.AcctSessionID_Type, []byte("5f3a9c0e12d4b7a1"))
		h := hoa.As16()
		p.Add(typeFramedIPv6Address, h[:])
		p.Add(rfc2865.FramedIPAddress_Type, []byte{198, 51, 100, 9})
		p.Add(rfc2865.NASIdentifier_Type, []byte(testNAS.Identifier))
		n := testNAS.IPv6.As16()
		p.Add(rfc3162.NASIPv6Address_Type, n[:])
		p.Add(typeEventTimestamp, u32(uint32(testNow.Unix())))
		p.Add(rfc2865.ProxyState_Type, []byte("ps1"))
		p.Add(rfc2865.ProxyState_Type, []byte("ps2"))
		p.Add(rfc2866.AcctTerminateCause_Type, u32(TerminateAdminReset))
	})
	keep := bytes.Clone(pkt)
	d, err := ParseDisconnect(pkt, pol, testNow.Add(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	want := Selector{NAI: "car9@fleet.example", SessionID: "5f3a9c0e12d4b7a1", HoA: hoa, HoA4: netip.MustParseAddr("198.51.100.9")}
	if d.Selector != want || d.Identifier != 77 || d.Code != radius.CodeDisconnectRequest || !d.Event.Equal(testNow) ||
		len(d.ProxyState) != 2 || string(d.ProxyState[1]) != "ps2" {
		t.Errorf("got %+v", d)
	}
	if !bytes.Equal(pkt, keep) {
		t.Error("the request was modified")
	}
	if !d.Matches("car9@fleet.example", "5f3a9c0e12d4b7a1", hoa, want.HoA4) || d.Matches("car9@fleet.example", "other", hoa, want.HoA4) {
		t.Error("Matches")
	}
	if (&Selector{NAI: "car9@fleet.example"}).Matches("car8@fleet.example", "", hoa, netip.Addr{}) {
		t.Error("Matches another NAI")
	}

	// The ACK: Message-Authenticator and Response Authenticator over the
	// request's authenticator, Proxy-States echoed in order.
	ack, err := encodeDynAuthReply(d, radius.CodeDisconnectACK, 0, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if !radius.IsAuthenticResponse(ack, pkt, testSecret) {
		t.Error("ACK not authentic to layeh")
	}
	c := bytes.Clone(ack)
	copy(c[4:20], pkt[4:20])
	clear(c[22:38])
	m := hmac.New(md5.New, testSecret)
	m.Write(c)
	if !bytes.Equal(m.Sum(nil), ack[22:38]) {
		t.Error("ACK Message-Authenticator wrong")
	}
	rp, err := radius.Parse(ack, testSecret)
	if err != nil || rp.Code != radius.CodeDisconnectACK || rp.Identifier != 77 {
		t.Fatalf("ACK %v %v", rp, err)
	}
	var ps []string
	for _, a := range rp.Attributes {
		if a.Type == rfc2865.ProxyState_Type {
			ps = append(ps, string(a.Attribute))
		}
	}
	if len(ps) != 2 || ps[0] != "ps1" || ps[1] != "ps2" || rp.Get(typeErrorCause) != nil {
		t.Errorf("ACK attributes %v", rp.Attributes)
	}
	nak, _ := encodeDynAuthReply(d, radius.CodeDisconnectNAK, CauseSessionNotFound, testSecret)
	rp, _ = radius.Parse(nak, testSecret)
	if n, _ := radius.Integer(rp.Get(typeErrorCause)); rp.Code != radius.CodeDisconnectNAK || n != 503 || !radius.IsAuthenticResponse(nak, pkt, testSecret) {
		t.Errorf("NAK %v cause %d", rp.Code, n)
	}
}

func TestParseDisconnectRefusals(t *testing.T) {
	pol := &DynAuthPolicy{Secret: testSecret, NAS: testNAS}
	naks := []struct {
		name  string
		code  radius.Code
		add   func(p *radius.Packet)
		cause ErrorCause
	}{
		{"no session attributes", radius.CodeDisconnectRequest, func(p *radius.Packet) {
			p.Add(rfc2865.NASIdentifier_Type, []byte(testNAS.Identifier))
		}, CauseMissingAttribute},
		{"another NAS-Identifier", radius.CodeDisconnectRequest, func(p *radius.Packet) {
			byName(p)
			p.Add(rfc2865.NASIdentifier_Type, []byte("ha2.fleet.example"))
		}, CauseNASMismatch},
		{"another NAS-IPv6-Address", radius.CodeDisconnectRequest, func(p *radius.Packet) {
			byName(p)
			p.Add(rfc3162.NASIPv6Address_Type, make([]byte, 16))
		}, CauseNASMismatch},
		{"a NAS-IP-Address the home agent lacks", radius.CodeDisconnectRequest, func(p *radius.Packet) {
			byName(p)
			p.Add(rfc2865.NASIPAddress_Type, []byte{192, 0, 2, 1})
		}, CauseNASMismatch},
		{"unsupported attribute", radius.CodeDisconnectRequest, func(p *radius.Packet) {
			byName(p)
			p.Add(rfc2865.FilterID_Type, []byte("x"))
		}, CauseUnsupportedAttribute},
		{"twice", radius.CodeDisconnectRequest, func(p *radius.Packet) { byName(p); byName(p) }, CauseInvalidRequest},
		{"bad User-Name", radius.CodeDisconnectRequest, func(p *radius.Packet) {
			p.Add(rfc2865.UserName_Type, []byte("a b"))
		}, CauseInvalidAttributeValue},
		{"short Framed-IPv6-Address", radius.CodeDisconnectRequest, func(p *radius.Packet) {
			p.Add(typeFramedIPv6Address, make([]byte, 8))
		}, CauseInvalidAttributeValue},
		{"short Framed-IP-Address", radius.CodeDisconnectRequest, func(p *radius.Packet) {
			p.Add(rfc2865.FramedIPAddress_Type, make([]byte, 3))
		}, CauseInvalidAttributeValue},
		{"empty Acct-Session-Id", radius.CodeDisconnectRequest, func(p *radius.Packet) {
			p.Add(rfc2866.AcctSessionID_Type, nil)
		}, CauseInvalidAttributeValue},
		{"short Event-Timestamp", radius.CodeDisconnectRequest, func(p *radius.Packet) {
			byName(p)
			p.Add(typeEventTimestamp, []byte{1})
		}, CauseInvalidAttributeValue},
		{"CoA", radius.CodeCoARequest, byName, CauseUnsupportedExtension},
	}
	for _, c := range naks {
		pkt := disconnectRequest(t, c.code, 5, testSecret, true, func(p *radius.Packet) {
			c.add(p)
			p.Add(rfc2865.ProxyState_Type, []byte("echo"))
		})
		d, err := ParseDisconnect(pkt, pol, testNow)
		var nak *NakError
		if !errors.As(err, &nak) || nak.Cause != c.cause || d == nil || d.Identifier != 5 || len(d.ProxyState) != 1 {
			t.Errorf("%s: %+v, %v; want NAK %d", c.name, d, err, c.cause)
			continue
		}
		reply, err := encodeDynAuthReply(d, nakCode(d.Code), nak.Cause, testSecret)
		if err != nil || !radius.IsAuthenticResponse(reply, pkt, testSecret) {
			t.Errorf("%s: NAK not authentic: %v", c.name, err)
		}
		if want := map[bool]radius.Code{true: radius.CodeCoANAK, false: radius.CodeDisconnectNAK}[c.code == radius.CodeCoARequest]; radius.Code(reply[0]) != want {
			t.Errorf("%s: answered %v", c.name, radius.Code(reply[0]))
		}
	}

	good := disconnectRequest(t, radius.CodeDisconnectRequest, 5, testSecret, true, byName)
	tampered := bytes.Clone(good)
	tampered[len(tampered)-1] ^= 1
	badMA := disconnectRequest(t, radius.CodeDisconnectRequest, 5, testSecret, true, byName)
	badMA[25] ^= 1
	h := md5.New() // the Request Authenticator made right again
	c := bytes.Clone(badMA)
	clear(c[4:20])
	h.Write(c)
	h.Write(testSecret)
	copy(badMA[4:20], h.Sum(nil))
	discards := map[string]struct {
		pkt []byte
		pol *DynAuthPolicy
		now time.Time
	}{
		"wrong secret":              {disconnectRequest(t, radius.CodeDisconnectRequest, 5, []byte("other"), true, byName), pol, testNow},
		"tampered":                  {tampered, pol, testNow},
		"bad Message-Authenticator": {badMA, pol, testNow},
		"no Message-Authenticator, required": {disconnectRequest(t, radius.CodeDisconnectRequest, 5, testSecret, false, byName),
			&DynAuthPolicy{Secret: testSecret, NAS: testNAS, RequireMessageAuthenticator: true}, testNow},
		"Access-Request": {testRequest(t, 1), pol, testNow},
		"replayed": {disconnectRequest(t, radius.CodeDisconnectRequest, 5, testSecret, true, func(p *radius.Packet) {
			byName(p)
			p.Add(typeEventTimestamp, u32(uint32(testNow.Unix())))
		}), pol, testNow.Add(301 * time.Second)},
		"from the future": {disconnectRequest(t, radius.CodeDisconnectRequest, 5, testSecret, true, func(p *radius.Packet) {
			byName(p)
			p.Add(typeEventTimestamp, u32(uint32(testNow.Unix())))
		}), pol, testNow.Add(-301 * time.Second)},
		"short":     {good[:19], pol, testNow},
		"no secret": {good, &DynAuthPolicy{}, testNow},
	}
	for name, c := range discards {
		d, err := ParseDisconnect(c.pkt, c.pol, c.now)
		if d != nil || !errors.Is(err, ErrDiscard) {
			t.Errorf("%s: %+v, %v; want discarded", name, d, err)
		}
	}
	// Without Message-Authenticator and not required: carried out.
	if d, err := ParseDisconnect(disconnectRequest(t, radius.CodeDisconnectRequest, 5, testSecret, false, byName), pol, testNow); err != nil || d.NAI != "car9@fleet.example" {
		t.Errorf("no Message-Authenticator, not required: %v", err)
	}
}
