package aaa

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2868"
	"layeh.com/radius/rfc3162"
)

// TestAccessRequest: the request carries what the brief of a home agent
// asks for, and its Message-Authenticator is HMAC-MD5 over the packet as
// the standard library computes it.
func TestAccessRequest(t *testing.T) {
	var auth [16]byte
	copy(auth[:], "request-auth-016")
	r := AccessRequest{NAI: "car9@fleet.example", CoA: netip.MustParseAddr("::ffff:192.0.2.7"), HoA: netip.MustParseAddr("2001:db8:ffff:1::9")}
	nas := NAS{Identifier: "ha1", IPv6: netip.MustParseAddr("2001:db8:ffff::1"), IPv4: netip.MustParseAddr("192.0.2.1")}
	b, err := encodeAccessRequest(&r, &nas, 42, &auth, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	p, err := radius.Parse(b, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if p.Code != radius.CodeAccessRequest || p.Identifier != 42 || p.Authenticator != auth {
		t.Errorf("header %v %d %x", p.Code, p.Identifier, p.Authenticator)
	}
	if p.Attributes[0].Type != typeMessageAuthenticator {
		t.Errorf("first attribute %d, want Message-Authenticator", p.Attributes[0].Type)
	}
	str := func(typ radius.Type) string { return string(p.Get(typ)) }
	if str(rfc2865.UserName_Type) != "car9@fleet.example" || str(rfc2865.NASIdentifier_Type) != "ha1" ||
		str(rfc2865.CallingStationID_Type) != "192.0.2.7" {
		t.Errorf("attributes %v", p.Attributes)
	}
	if st, _ := radius.Integer(p.Get(rfc2865.ServiceType_Type)); st != uint32(rfc2865.ServiceType_Value_FramedUser) {
		t.Errorf("Service-Type %d", st)
	}
	ip6 := nas.IPv6.As16()
	hoa := r.HoA.As16()
	if !bytes.Equal(p.Get(rfc3162.NASIPv6Address_Type), ip6[:]) || !bytes.Equal(p.Get(rfc2865.NASIPAddress_Type), []byte{192, 0, 2, 1}) ||
		!bytes.Equal(p.Get(typeFramedIPv6Address), hoa[:]) {
		t.Errorf("addresses %v", p.Attributes)
	}
	// The Message-Authenticator, recomputed from the wire with zeroed value.
	z := bytes.Clone(b)
	clear(z[22:38])
	if want := signResponseMA(z, testSecret); !bytes.Equal(b[22:38], want) {
		t.Errorf("Message-Authenticator %x, want %x", b[22:38], want)
	}
	for _, bad := range []AccessRequest{{}, {NAI: "with space@x"}, {NAI: strings.Repeat("a", 254)}, {NAI: "bell\a"}} {
		if _, err := encodeAccessRequest(&bad, &nas, 1, &auth, testSecret); err == nil {
			t.Errorf("NAI %q accepted", bad.NAI)
		}
	}
}

// TestParseAccept decodes an Access-Accept carrying every attribute a
// router's authorization uses, the key decrypted from Tunnel-Password.
func TestParseAccept(t *testing.T) {
	req := testRequest(t, 7)
	resp := response(t, req, radius.CodeAccessAccept, testSecret, true, fullAccept(t))
	keep := bytes.Clone(resp)
	a, err := ParseAccessResponse(resp, req, testSecret, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := wantFull(); !reflect.DeepEqual(a, want) {
		t.Errorf("authorization\n got %+v\nwant %+v", a, want)
	}
	if !bytes.Equal(resp, keep) {
		t.Error("the response was modified")
	}
	if err := a.Validate(netip.MustParsePrefix("2001:db8:ffff:1::/64")); err != nil {
		t.Errorf("Validate: %v", err)
	}
	// Without Message-Authenticator: refused unless allowed.
	bare := response(t, req, radius.CodeAccessAccept, testSecret, false, fullAccept(t))
	if _, err := ParseAccessResponse(bare, req, testSecret, false); !errors.Is(err, ErrBadResponse) {
		t.Errorf("no Message-Authenticator: %v", err)
	}
	if a, err := ParseAccessResponse(bare, req, testSecret, true); err != nil || a.SPI != 4097 {
		t.Errorf("no Message-Authenticator, allowed: %v", err)
	}
}

func TestParseReject(t *testing.T) {
	req := testRequest(t, 9)
	resp := response(t, req, radius.CodeAccessReject, testSecret, true, func(p *radius.Packet) {
		p.Add(rfc2865.ReplyMessage_Type, []byte("router "))
		p.Add(rfc2865.ReplyMessage_Type, []byte("unknown"))
	})
	a, err := ParseAccessResponse(resp, req, testSecret, false)
	var rej *RejectError
	if a != nil || !errors.Is(err, ErrRejected) || !errors.As(err, &rej) || rej.Message != "router unknown" {
		t.Errorf("got %v, %v", a, err)
	}
	// A Reject without a valid Message-Authenticator is not believed
	// either: it would let a forger cut routers off.
	resp = response(t, req, radius.CodeAccessReject, testSecret, false, nil)
	if _, err := ParseAccessResponse(resp, req, testSecret, false); errors.Is(err, ErrRejected) || !errors.Is(err, ErrBadResponse) {
		t.Errorf("Reject without Message-Authenticator: %v", err)
	}
}

// TestParseAcceptErrors: each flaw of an Access-Accept is refused with an
// error of the right class, and no authorization.
func TestParseAcceptErrors(t *testing.T) {
	req := testRequest(t, 11)
	without := func(drop ...radius.Type) func(p *radius.Packet) {
		return func(p *radius.Packet) {
			fullAccept(t)(p)
			for _, d := range drop {
				p.Attributes.Del(d)
			}
		}
	}
	with := func(f func(p *radius.Packet)) func(p *radius.Packet) {
		return func(p *radius.Packet) { fullAccept(t)(p); f(p) }
	}
	replaceSPI := func(v []byte) func(p *radius.Packet) {
		return with(func(p *radius.Packet) { p.Set(rfc2868.TunnelClientAuthID_Type, v) })
	}
	replaceKey := func(text string) func(p *radius.Packet) {
		return with(func(p *radius.Packet) {
			p.Attributes.Del(rfc2868.TunnelPassword_Type)
			if err := rfc2868.TunnelPassword_AddString(p, 1, text); err != nil {
				t.Fatal(err)
			}
		})
	}
	badUse := []struct {
		name string
		add  func(p *radius.Packet)
		msg  string
	}{
		{"no home address", without(typeFramedIPv6Address), "no Framed-IPv6-Address"},
		{"no key", without(rfc2868.TunnelPassword_Type), "no Tunnel-Password"},
		{"no SPI", without(rfc2868.TunnelClientAuthID_Type), "no Tunnel-Client-Auth-ID with tag 1"},
		{"SPI of another tag", replaceSPI(append([]byte{2}, "4097"...)), "no Tunnel-Client-Auth-ID with tag 1"},
		{"SPI reserved", replaceSPI(append([]byte{1}, "255"...)), "is not an SPI"},
		{"SPI too big", replaceSPI(append([]byte{1}, "4294967296"...)), "is not an SPI"},
		{"SPI not decimal", replaceSPI(append([]byte{1}, "+4097"...)), "is not an SPI"},
		{"two SPIs", with(func(p *radius.Packet) { p.Add(rfc2868.TunnelClientAuthID_Type, append([]byte{1}, "4098"...)) }), "more than one Tunnel-Client-Auth-ID"},
		{"key odd", replaceKey(testKeyHex[1:]), "odd number of hex digits"},
		{"key not hex", replaceKey("zz" + testKeyHex[2:]), "not a hex string"},
		{"key short", replaceKey(testKeyHex[:30]), "the Tunnel-Password key is 15 bytes"},
		{"two keys", with(func(p *radius.Packet) { rfc2868.TunnelPassword_AddString(p, 1, testKeyHex) }), "more than one Tunnel-Password"},
		{"key bad tag", with(func(p *radius.Packet) {
			v := p.Get(rfc2868.TunnelPassword_Type)
			v[0] = 0x20
		}), "without its tag octet"},
		{"key bad salt", with(func(p *radius.Packet) {
			v := p.Get(rfc2868.TunnelPassword_Type)
			v[1] &^= 0x80
		}), "salt lacks its high bit"},
		{"key truncated", with(func(p *radius.Packet) {
			for _, a := range p.Attributes {
				if a.Type == rfc2868.TunnelPassword_Type {
					a.Attribute = a.Attribute[:len(a.Attribute)-1]
				}
			}
		}), "whole 16-octet blocks"},
		{"two home addresses", with(func(p *radius.Packet) { p.Add(typeFramedIPv6Address, make([]byte, 16)) }), "more than one Framed-IPv6-Address"},
		{"home address short", with(func(p *radius.Packet) { p.Set(typeFramedIPv6Address, make([]byte, 15)) }), "of 15 octets"},
		{"home address link-local", with(func(p *radius.Packet) {
			a := netip.MustParseAddr("fe80::1").As16()
			p.Set(typeFramedIPv6Address, a[:])
		}), "not a global unicast"},
		{"prefix host bits", with(func(p *radius.Packet) { p.Add(123, []byte{0, 48, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0xff}) }), "bits set past its length"},
		{"prefix too few octets", with(func(p *radius.Packet) { p.Add(123, []byte{0, 56, 0x20, 0x01}) }), "a /56 in 2 octets"},
		{"prefix /0", with(func(p *radius.Packet) { p.Add(97, []byte{0, 0}) }), "prefix length 0"},
		{"prefix /129", with(func(p *radius.Packet) { p.Add(97, append([]byte{0, 129}, make([]byte, 16)...)) }), "prefix length 129"},
		{"prefix long", with(func(p *radius.Packet) { p.Add(97, append([]byte{0, 64}, make([]byte, 17)...)) }), "19 octets"},
		{"IPv4 HoA short", with(func(p *radius.Packet) { p.Set(typePMIP6HomeIPv4HoA, []byte{0, 24, 1, 2, 3}) }), "of 5 octets, want 6"},
		{"IPv4 HoAs disagree", with(func(p *radius.Packet) { p.Set(typePMIP6HomeIPv4HoA, []byte{0, 24, 198, 51, 100, 10}) }), "disagree"},
		{"IPv4 prefix /33", with(func(p *radius.Packet) { p.Set(typePMIP6HomeIPv4HoA, []byte{0, 33, 198, 51, 100, 9}) }), "prefix length"},
		{"Framed-IP-Address multicast", with(func(p *radius.Packet) {
			p.Attributes.Del(typePMIP6HomeIPv4HoA)
			p.Set(rfc2865.FramedIPAddress_Type, []byte{224, 0, 0, 1})
		}), "not a unicast"},
		{"Session-Timeout short", with(func(p *radius.Packet) { p.Set(rfc2865.SessionTimeout_Type, []byte{1}) }), "Session-Timeout of 1 octets"},
		{"two Session-Timeouts", with(func(p *radius.Packet) { p.Add(rfc2865.SessionTimeout_Type, radius.NewInteger(5)) }), "more than one Session-Timeout"},
		{"Acct-Interim-Interval short", with(func(p *radius.Packet) { p.Set(typeAcctInterimInterval, []byte{1, 2}) }), "Acct-Interim-Interval"},
		{"challenge", nil, "Access-Challenge"},
	}
	for _, c := range badUse {
		code := radius.CodeAccessAccept
		if c.add == nil {
			code = radius.CodeAccessChallenge
		}
		resp := response(t, req, code, testSecret, true, c.add)
		a, err := ParseAccessResponse(resp, req, testSecret, false)
		if a != nil || !errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: got %v, %v; want ErrBadResponse with %q", c.name, a, err, c.msg)
		}
		if strings.Contains(err.Error(), testKeyHex[4:]) {
			t.Errorf("%s: the error repeats the key: %v", c.name, err)
		}
	}

	// Not answers to the request at all: not ErrBadResponse, not
	// ErrRejected; the client ignores them and goes on waiting.
	good := response(t, req, radius.CodeAccessAccept, testSecret, true, fullAccept(t))
	notAnswers := map[string][]byte{
		"wrong secret": response(t, req, radius.CodeAccessAccept, []byte("other"), true, fullAccept(t)),
		"wrong id":     response(t, testRequest(t, 12), radius.CodeAccessAccept, testSecret, true, fullAccept(t)),
		"wrong code":   response(t, req, radius.CodeAccountingResponse, testSecret, true, nil),
		"truncated":    good[:len(good)-1],
		"short":        good[:19],
	}
	tampered := bytes.Clone(good)
	tampered[len(tampered)-1] ^= 1
	notAnswers["tampered"] = tampered
	for name, resp := range notAnswers {
		a, err := ParseAccessResponse(resp, req, testSecret, false)
		if a != nil || err == nil || errors.Is(err, ErrBadResponse) || errors.Is(err, ErrRejected) {
			t.Errorf("%s: got %v, %v", name, a, err)
		}
	}
	// A forged Message-Authenticator behind a right Response Authenticator
	// (what a Blast-RADIUS forger can make) is refused.
	forged := bytes.Clone(good)
	forged[30] ^= 0xff
	forged = signResponse(forged[:], req[4:20], testSecret, false) // re-sign the MD5 only
	if _, err := ParseAccessResponse(forged, req, testSecret, false); !errors.Is(err, ErrBadResponse) || !strings.Contains(fmtErr(err), "Message-Authenticator does not match") {
		t.Errorf("forged Message-Authenticator: %v", err)
	}
	if _, err := ParseAccessResponse(good, req, nil, false); err == nil {
		t.Error("parsed with no secret")
	}
}

func fmtErr(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// signResponseMA is HMAC-MD5 of b, straight from the standard library.
func signResponseMA(b, secret []byte) []byte {
	c := bytes.Clone(b)
	return signResponse(c, c[4:20], secret, true)[22:38]
}

func TestFramedIPAddressChoose(t *testing.T) {
	req := testRequest(t, 3)
	resp := response(t, req, radius.CodeAccessAccept, testSecret, true, func(p *radius.Packet) {
		fullAccept(t)(p)
		p.Attributes.Del(typePMIP6HomeIPv4HoA)
		p.Set(rfc2865.FramedIPAddress_Type, []byte{255, 255, 255, 254})
	})
	a, err := ParseAccessResponse(resp, req, testSecret, false)
	if err != nil || a.HoA4.IsValid() || a.Prefix4.IsValid() {
		t.Errorf("255.255.255.254 (NAS chooses): %+v, %v", a, err)
	}
	// PMIP6-Home-IPv4-HoA alone gives both, its reserved bits ignored.
	resp = response(t, req, radius.CodeAccessAccept, testSecret, true, func(p *radius.Packet) {
		fullAccept(t)(p)
		p.Attributes.Del(rfc2865.FramedIPAddress_Type)
		p.Set(typePMIP6HomeIPv4HoA, []byte{0xff, 0xc0 | 28, 203, 0, 113, 5})
	})
	a, err = ParseAccessResponse(resp, req, testSecret, false)
	if err != nil || a.HoA4 != netip.MustParseAddr("203.0.113.5") || a.Prefix4 != netip.MustParsePrefix("203.0.113.5/28") {
		t.Errorf("PMIP6-Home-IPv4-HoA alone: %+v, %v", a, err)
	}
}

func TestValidate(t *testing.T) {
	home := netip.MustParsePrefix("2001:db8:ffff:1::/64")
	for _, c := range []struct {
		hoa  string
		mnps []string
		msg  string
	}{
		{"2001:db8:ffff:2::9", nil, "outside the home prefix"},
		{"2001:db8:ffff:1::9", []string{"2001:db8:ffff::/48"}, "overlaps the home prefix"},
		{"2001:db8:ffff:1::9", []string{"2001:db8:900::/56", "2001:db8:900:10::/64"}, "overlap"},
		{"2001:db8:ffff:1::9", []string{"fc00::/48"}, ""},
		{"2001:db8:ffff:1::9", []string{"ff00::/48"}, "not global unicast"},
	} {
		a := &Authorization{HoA: netip.MustParseAddr(c.hoa)}
		for _, m := range c.mnps {
			a.MNPs = append(a.MNPs, netip.MustParsePrefix(m))
		}
		err := a.Validate(home)
		if (c.msg == "") != (err == nil) || err != nil && (!strings.Contains(err.Error(), c.msg) || !errors.Is(err, ErrBadResponse)) {
			t.Errorf("%s %v: %v, want %q", c.hoa, c.mnps, err, c.msg)
		}
	}
	a := &Authorization{HoA: netip.MustParseAddr("2001:db8:900::1"), MNPs: []netip.Prefix{netip.MustParsePrefix("2001:db8:900::/56")}}
	if err := a.Validate(netip.Prefix{}); err == nil || !strings.Contains(err.Error(), "contains the home address") {
		t.Errorf("prefix holding the home address: %v", err)
	}
}
