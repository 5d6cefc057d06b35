package aaa

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2868"
	"layeh.com/radius/rfc3162"
	"layeh.com/radius/rfc4818"
)

// NAS is how the home agent names itself to RADIUS servers, in every
// request (RFC 2865 §4.1 wants NAS-IP-Address or NAS-Identifier) and when
// checking that a Disconnect-Request is meant for it (RFC 5176 §3).
type NAS struct {
	Identifier string     // NAS-Identifier; sent when not empty
	IPv6       netip.Addr // NAS-IPv6-Address (RFC 3162); sent when valid
	IPv4       netip.Addr // NAS-IP-Address; sent when valid
}

func (n *NAS) check() error {
	if n.Identifier == "" && !n.IPv6.IsValid() && !n.IPv4.IsValid() {
		return errors.New("aaa: the NAS needs an identifier or an address (RFC 2865 §4.1)")
	}
	if len(n.Identifier) > 253 {
		return errors.New("aaa: NAS-Identifier longer than 253 octets")
	}
	if n.IPv6.IsValid() && !n.IPv6.Is6() || n.IPv4.IsValid() && !n.IPv4.Is4() {
		return errors.New("aaa: NAS addresses of the wrong family")
	}
	return nil
}

func (n *NAS) add(p *radius.Packet) {
	if n.Identifier != "" {
		p.Add(rfc2865.NASIdentifier_Type, radius.Attribute(n.Identifier))
	}
	if n.IPv6.IsValid() {
		a := n.IPv6.As16()
		p.Add(rfc3162.NASIPv6Address_Type, a[:])
	}
	if n.IPv4.IsValid() {
		a := n.IPv4.As4()
		p.Add(rfc2865.NASIPAddress_Type, a[:])
	}
}

// AccessRequest asks whether a mobile router may register.
type AccessRequest struct {
	// NAI is the router's Network Access Identifier, from the Mobile Node
	// Identifier option of its Binding Update (RFC 4283): the User-Name.
	NAI string
	// CoA, when valid, is sent as Calling-Station-Id: where the router is.
	CoA netip.Addr
	// HoA, when valid, is the home address the Binding Update claims, sent
	// as a Framed-IPv6-Address hint (RFC 6911 §3.1).
	HoA netip.Addr
}

// checkNAI applies the same rule as the configuration's option nai.
func checkNAI(nai string) error {
	if len(nai) == 0 || len(nai) > 253 {
		return errors.New("aaa: a NAI is 1..253 octets")
	}
	for i := 0; i < len(nai); i++ {
		if nai[i] <= ' ' || nai[i] > '~' {
			return errors.New("aaa: a NAI is printable ASCII without spaces")
		}
	}
	return nil
}

func (r *AccessRequest) check() error { return checkNAI(r.NAI) }

// newPacket starts a packet with a zero Message-Authenticator as its first
// attribute: first, so that no attribute before it can be chosen to steer
// an MD5 collision (the Blast-RADIUS mitigation), and at a known offset.
func newPacket(code radius.Code, id byte, auth *[16]byte, secret []byte, withMA bool) *radius.Packet {
	p := &radius.Packet{Code: code, Identifier: id, Authenticator: *auth, Secret: secret}
	if withMA {
		p.Add(typeMessageAuthenticator, make(radius.Attribute, messageAuthenticatorLength))
	}
	return p
}

// maOffset is where the value of the first attribute starts.
const maOffset = headerLen + 2

// encodeAccessRequest builds a signed Access-Request. auth is its Request
// Authenticator: 16 random octets, new for each identifier (RFC 5080 §2.2.1).
func encodeAccessRequest(r *AccessRequest, nas *NAS, id byte, auth *[16]byte, secret []byte) ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	p := newPacket(radius.CodeAccessRequest, id, auth, secret, true)
	p.Add(rfc2865.UserName_Type, radius.Attribute(r.NAI))
	p.Add(rfc2865.ServiceType_Type, radius.NewInteger(uint32(rfc2865.ServiceType_Value_FramedUser)))
	nas.add(p)
	if r.CoA.IsValid() {
		p.Add(rfc2865.CallingStationID_Type, radius.Attribute(r.CoA.Unmap().String()))
	}
	if r.HoA.IsValid() && r.HoA.Is6() {
		a := r.HoA.As16()
		p.Add(typeFramedIPv6Address, a[:])
	}
	b, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	signMessageAuthenticator(b, maOffset, auth, secret)
	return b, nil
}

// encodeStatusServer builds a Status-Server (RFC 5997), the probe that tells
// whether a server marked dead answers again. RFC 5997 §3 requires its
// Message-Authenticator.
func encodeStatusServer(nas *NAS, id byte, auth *[16]byte, secret []byte) ([]byte, error) {
	p := newPacket(radius.CodeStatusServer, id, auth, secret, true)
	nas.add(p)
	b, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	signMessageAuthenticator(b, maOffset, auth, secret)
	return b, nil
}

// Authorization is what an Access-Accept grants a mobile router. Its
// fields mirror the binding cache's Peer: Name and NAI are the NAI, and
// HoA, SPI, Key and MNPs are used as they are.
type Authorization struct {
	// NAI is the User-Name it was asked for (set by the Client).
	NAI string
	// HoA is the home address (Framed-IPv6-Address).
	HoA netip.Addr
	// MNPs are the mobile network prefixes the router may claim: every
	// Delegated-IPv6-Prefix, then every Framed-IPv6-Prefix, in packet order.
	MNPs []netip.Prefix
	// HoA4 is the IPv4 home address (Framed-IP-Address, or the address of
	// PMIP6-Home-IPv4-HoA); Prefix4 is PMIP6-Home-IPv4-HoA itself: that
	// address and its prefix length. Invalid when not sent.
	HoA4    netip.Addr
	Prefix4 netip.Prefix
	// Lifetime is Session-Timeout: how long the authorization lasts. Zero
	// when the server set none.
	Lifetime time.Duration
	// SPI and Key are the MN-HA security association (RFC 4285): the key
	// from Tunnel-Password, its SPI from Tunnel-Client-Auth-ID.
	SPI uint32
	Key []byte
	// InterimInterval is Acct-Interim-Interval, zero when not sent.
	InterimInterval time.Duration
	// Class holds each Class attribute, to be sent back unchanged in
	// accounting (RFC 2865 §5.25).
	Class [][]byte
}

// ErrRejected is what a result's error matches (errors.Is) when the server
// answered Access-Reject: the router is not authorized, and the home agent
// answers its Binding Update with status 129 (administratively prohibited).
var ErrRejected = errors.New("aaa: Access-Reject")

// RejectError is an Access-Reject, with its Reply-Message if it had one.
type RejectError struct{ Message string }

func (e *RejectError) Error() string {
	if e.Message == "" {
		return ErrRejected.Error()
	}
	return ErrRejected.Error() + ": " + strconv.Quote(e.Message)
}

func (e *RejectError) Is(target error) bool { return target == ErrRejected }

// ErrBadResponse is what a result's error matches when an authentic
// response could not be used: an Access-Accept lacking what a mobile router
// needs, or with a malformed attribute, or a response without the required
// Message-Authenticator.
var ErrBadResponse = errors.New("aaa: unusable response")

type badResponse struct{ msg string }

func (e *badResponse) Error() string        { return "aaa: unusable response: " + e.msg }
func (e *badResponse) Is(target error) bool { return target == ErrBadResponse }

func bad(format string, args ...any) error { return &badResponse{fmt.Sprintf(format, args...)} }

// minKeyLen is the shortest MN-HA key accepted, as for option key: 128
// bits, the strength of the HMAC-SHA1-96 authenticator of RFC 4285.
const minKeyLen = 16

// ParseAccessResponse checks a response to the Access-Request req (as sent)
// and decodes it. The response must have req's identifier, a Response
// Authenticator made with the shared secret, and a valid
// Message-Authenticator (absent only when allowMissingMA). An Access-Reject
// yields a *RejectError; an Access-Accept the Authorization, or an error
// matching ErrBadResponse when it cannot be used. Other errors (framing,
// identifier, authenticator) mean the datagram is not an answer to req and
// must be ignored. It never panics and changes nothing it is given.
func ParseAccessResponse(resp, req, secret []byte, allowMissingMA bool) (*Authorization, error) {
	if len(secret) == 0 {
		return nil, errSecret
	}
	reqPkt, err := frame(req)
	if err != nil {
		return nil, fmt.Errorf("aaa: the request: %w", err)
	}
	pkt, err := frame(resp)
	if err != nil {
		return nil, err
	}
	if pkt[1] != reqPkt[1] {
		return nil, errors.New("radius: identifier is not the request's")
	}
	var reqAuth [16]byte
	copy(reqAuth[:], reqPkt[4:headerLen])
	code := radius.Code(pkt[0])
	if code != radius.CodeAccessAccept && code != radius.CodeAccessReject && code != radius.CodeAccessChallenge {
		return nil, errors.New("radius: " + code.String() + " is not an answer to an Access-Request")
	}
	if err := checkAuthenticator(pkt, &reqAuth, secret); err != nil {
		return nil, err
	}
	if _, err := checkMessageAuthenticator(pkt, &reqAuth, secret, !allowMissingMA); err != nil {
		return nil, &badResponse{err.Error()}
	}
	attrs, err := radius.ParseAttributes(pkt[headerLen:])
	if err != nil {
		return nil, err // frame has checked it; kept for safety
	}
	switch code {
	case radius.CodeAccessReject:
		e := &RejectError{}
		for _, a := range attrs {
			if a.Type == rfc2865.ReplyMessage_Type {
				e.Message += string(a.Attribute)
			}
		}
		return nil, e
	case radius.CodeAccessChallenge:
		return nil, bad("Access-Challenge: a mobile router has nothing to answer a challenge with")
	}
	return decodeAccept(attrs, secret, &reqAuth)
}

func decodeAccept(attrs radius.Attributes, secret []byte, reqAuth *[16]byte) (*Authorization, error) {
	a := &Authorization{}
	var (
		key      []byte
		keyTag   byte
		keys     int
		spis     = map[byte]string{}
		haveTime bool
	)
	for _, avp := range attrs {
		v := avp.Attribute
		switch avp.Type {
		case typeFramedIPv6Address:
			if a.HoA.IsValid() {
				return nil, bad("more than one Framed-IPv6-Address")
			}
			if len(v) != 16 {
				return nil, bad("Framed-IPv6-Address of %d octets", len(v))
			}
			a.HoA = netip.AddrFrom16([16]byte(v))
			if !a.HoA.IsGlobalUnicast() || a.HoA.Is4In6() {
				return nil, bad("Framed-IPv6-Address %s is not a global unicast IPv6 address", a.HoA)
			}
		case rfc4818.DelegatedIPv6Prefix_Type, rfc3162.FramedIPv6Prefix_Type:
			p, err := ipv6Prefix(v)
			if err != nil {
				return nil, bad("%s: %v", attrName(avp.Type), err)
			}
			a.MNPs = append(a.MNPs, p)
		case rfc2865.FramedIPAddress_Type:
			if len(v) != 4 {
				return nil, bad("Framed-IP-Address of %d octets", len(v))
			}
			ip := netip.AddrFrom4([4]byte(v))
			// 255.255.255.255 and .254 ask the NAS to choose (RFC 2865
			// §5.8): no address is assigned.
			if ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) || ip == netip.AddrFrom4([4]byte{255, 255, 255, 254}) {
				continue
			}
			if !ip.IsGlobalUnicast() {
				return nil, bad("Framed-IP-Address %s is not a unicast address", ip)
			}
			if a.HoA4.IsValid() && a.HoA4 != ip {
				return nil, bad("Framed-IP-Address %s and PMIP6-Home-IPv4-HoA %s disagree", ip, a.HoA4)
			}
			a.HoA4 = ip
		case typePMIP6HomeIPv4HoA:
			// Reserved (10 bits), Prefix-Len (6 bits), address (RFC 6572 §3.9).
			if len(v) != 6 {
				return nil, bad("PMIP6-Home-IPv4-HoA of %d octets, want 6", len(v))
			}
			bits := int(v[1] & 0x3f)
			ip := netip.AddrFrom4([4]byte(v[2:6]))
			if ip.IsUnspecified() {
				continue // the request form: "assign one"
			}
			if bits > 32 || !ip.IsGlobalUnicast() {
				return nil, bad("PMIP6-Home-IPv4-HoA %s/%d is not a unicast address and prefix length", ip, bits)
			}
			if a.HoA4.IsValid() && a.HoA4 != ip {
				return nil, bad("Framed-IP-Address %s and PMIP6-Home-IPv4-HoA %s disagree", a.HoA4, ip)
			}
			a.HoA4, a.Prefix4 = ip, netip.PrefixFrom(ip, bits)
		case rfc2865.SessionTimeout_Type:
			n, err := radius.Integer(v)
			if err != nil {
				return nil, bad("Session-Timeout of %d octets", len(v))
			}
			if haveTime {
				return nil, bad("more than one Session-Timeout")
			}
			haveTime = true
			a.Lifetime = time.Duration(n) * time.Second
		case typeAcctInterimInterval:
			n, err := radius.Integer(v)
			if err != nil {
				return nil, bad("Acct-Interim-Interval of %d octets", len(v))
			}
			a.InterimInterval = time.Duration(n) * time.Second
		case rfc2868.TunnelPassword_Type:
			keys++
			if keys > 1 {
				return nil, bad("more than one Tunnel-Password: one MN-HA key per router")
			}
			if len(v) < 1 || v[0] > 0x1f {
				return nil, bad("Tunnel-Password without its tag octet")
			}
			plain, err := decryptTunnelPassword(v[1:], secret, reqAuth)
			if err != nil {
				return nil, bad("%v", err)
			}
			keyTag, key = v[0], plain
		case rfc2868.TunnelClientAuthID_Type:
			tag, text := untag(v)
			if _, dup := spis[tag]; dup {
				return nil, bad("more than one Tunnel-Client-Auth-ID with tag %d", tag)
			}
			spis[tag] = string(text)
		case rfc2865.Class_Type:
			a.Class = append(a.Class, append([]byte(nil), v...))
		}
	}
	if !a.HoA.IsValid() {
		return nil, bad("no Framed-IPv6-Address: the router's home address")
	}
	if key == nil {
		return nil, bad("no Tunnel-Password: the MN-HA key")
	}
	var err error
	if a.Key, err = hexKey(key); err != nil {
		return nil, err
	}
	text, ok := spis[keyTag]
	if !ok {
		return nil, bad("no Tunnel-Client-Auth-ID with tag %d: the SPI of the MN-HA key", keyTag)
	}
	n, err := strconv.ParseUint(text, 10, 32)
	if err != nil || n < 256 || !isDigits(text) {
		return nil, bad("Tunnel-Client-Auth-ID %q is not an SPI (256..4294967295)", text)
	}
	a.SPI = uint32(n)
	return a, nil
}

// hexKey decodes the key text as option key does. Messages never repeat
// the key: they end up in logs.
func hexKey(text []byte) ([]byte, error) {
	if len(text)%2 != 0 {
		return nil, bad("the Tunnel-Password key has an odd number of hex digits")
	}
	k := make([]byte, len(text)/2)
	if _, err := hex.Decode(k, text); err != nil {
		return nil, bad("the Tunnel-Password key is not a hex string")
	}
	if len(k) < minKeyLen {
		return nil, bad("the Tunnel-Password key is %d bytes; at least %d are needed", len(k), minKeyLen)
	}
	return k, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func attrName(t radius.Type) string {
	switch t {
	case rfc4818.DelegatedIPv6Prefix_Type:
		return "Delegated-IPv6-Prefix"
	case rfc3162.FramedIPv6Prefix_Type:
		return "Framed-IPv6-Prefix"
	}
	return "attribute " + strconv.Itoa(int(t))
}

// ipv6Prefix decodes the value of an RFC 3162 §2.3 prefix attribute:
// Reserved, Prefix-Length, then at most 16 octets holding at least the
// prefix's bits, with the bits past it zero.
func ipv6Prefix(v []byte) (netip.Prefix, error) {
	if len(v) < 2 || len(v) > 18 {
		return netip.Prefix{}, fmt.Errorf("%d octets, want 2..18", len(v))
	}
	bits := int(v[1])
	if bits == 0 || bits > 128 {
		return netip.Prefix{}, fmt.Errorf("prefix length %d", bits)
	}
	if (bits+7)/8 > len(v)-2 {
		return netip.Prefix{}, fmt.Errorf("a /%d in %d octets", bits, len(v)-2)
	}
	var a [16]byte
	copy(a[:], v[2:])
	p := netip.PrefixFrom(netip.AddrFrom16(a), bits)
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%s has bits set past its length", p)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%s is IPv4-mapped", p)
	}
	return p, nil
}

// Validate checks an authorization against the home agent's home prefix,
// as the configuration checks a mobile_router section: the home address
// inside it, each prefix outside it, not containing the home address, and
// no two prefixes overlapping.
func (a *Authorization) Validate(home netip.Prefix) error {
	if home.IsValid() && !home.Contains(a.HoA) {
		return bad("home address %s is outside the home prefix %s", a.HoA, home)
	}
	for i, p := range a.MNPs {
		switch {
		case !p.Addr().IsGlobalUnicast():
			return bad("prefix %s is not global unicast", p)
		case home.IsValid() && p.Overlaps(home):
			return bad("prefix %s overlaps the home prefix %s", p, home)
		case p.Contains(a.HoA):
			return bad("prefix %s contains the home address %s", p, a.HoA)
		}
		for _, q := range a.MNPs[:i] {
			if q.Overlaps(p) {
				return bad("prefixes %s and %s overlap", q, p)
			}
		}
	}
	return nil
}

// Expires returns when an authorization granted at now lapses: after its
// Session-Timeout, or after def when the server set none.
func (a *Authorization) Expires(now time.Time, def time.Duration) time.Time {
	if a.Lifetime > 0 {
		return now.Add(a.Lifetime)
	}
	return now.Add(def)
}

// u32 is a shorthand for a 4-octet integer attribute value.
func u32(n uint32) radius.Attribute {
	b := make(radius.Attribute, 4)
	binary.BigEndian.PutUint32(b, n)
	return b
}
