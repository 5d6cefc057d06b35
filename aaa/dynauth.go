package aaa

import (
	"errors"
	"net/netip"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc3162"
)

// ErrorCause is the Error-Cause of a Disconnect-NAK (RFC 5176 §3.5).
type ErrorCause uint32

const (
	CauseUnsupportedAttribute  ErrorCause = 401
	CauseMissingAttribute      ErrorCause = 402
	CauseNASMismatch           ErrorCause = 403
	CauseInvalidRequest        ErrorCause = 404
	CauseUnsupportedExtension  ErrorCause = 406 // e.g. a CoA-Request: only Disconnect is supported
	CauseInvalidAttributeValue ErrorCause = 407
	CauseAdminProhibited       ErrorCause = 501
	CauseSessionNotFound       ErrorCause = 503
	CauseSessionNotRemovable   ErrorCause = 504
	CauseResourcesUnavailable  ErrorCause = 506
)

// Selector names the session a Disconnect-Request is for. Each field set
// must match the session (RFC 5176 §3: all session identification
// attributes given apply).
type Selector struct {
	NAI       string     // User-Name
	SessionID string     // Acct-Session-Id
	HoA       netip.Addr // Framed-IPv6-Address
	HoA4      netip.Addr // Framed-IP-Address
}

// Matches reports whether a session with these identifiers is the one
// selected.
func (s *Selector) Matches(nai, sessionID string, hoa, hoa4 netip.Addr) bool {
	return (s.NAI == "" || s.NAI == nai) &&
		(s.SessionID == "" || s.SessionID == sessionID) &&
		(!s.HoA.IsValid() || s.HoA == hoa) &&
		(!s.HoA4.IsValid() || s.HoA4 == hoa4)
}

func (s *Selector) empty() bool {
	return s.NAI == "" && s.SessionID == "" && !s.HoA.IsValid() && !s.HoA4.IsValid()
}

// DynAuthPolicy is what a Disconnect-Request is checked against.
type DynAuthPolicy struct {
	Secret []byte
	// NAS is the home agent's identity: a request naming another NAS is
	// refused (Error-Cause 403).
	NAS NAS
	// RequireMessageAuthenticator discards requests without one. One that
	// is present is checked either way.
	RequireMessageAuthenticator bool
	// EventWindow is how far an Event-Timestamp may be from now before the
	// request is discarded as a replay (RFC 5176 §3.5 suggests 300 s, the
	// default).
	EventWindow time.Duration
}

// Disconnect is a Disconnect-Request that passed its checks.
type Disconnect struct {
	Selector
	// Code, Identifier and Authenticator are the request's, to answer it.
	Code          radius.Code
	Identifier    byte
	Authenticator [16]byte
	// ProxyState holds each Proxy-State, echoed in the answer (RFC 2865 §5.33).
	ProxyState [][]byte
	Event      time.Time // Event-Timestamp; zero when absent
}

// NakError is a request that is answered with a NAK carrying Cause: it is
// authentic, but cannot be carried out.
type NakError struct {
	Cause ErrorCause
	Msg   string
}

func (e *NakError) Error() string {
	return "aaa: dynamic authorization refused (" + itoa(int(e.Cause)) + "): " + e.Msg
}

// ErrDiscard is what errors of ParseDisconnect match when the datagram is
// to be dropped without an answer (RFC 5176 §3: a request that fails
// authentication is silently discarded).
var ErrDiscard = errors.New("aaa: discarded")

type discard struct{ msg string }

func (e *discard) Error() string        { return "aaa: discarded: " + e.msg }
func (e *discard) Is(target error) bool { return target == ErrDiscard }

// ParseDisconnect checks a datagram sent to the dynamic authorization port
// at now. It returns the request and nil when it is to be carried out; the
// request and a *NakError when it is to be refused with that cause (Code,
// Identifier, Authenticator and ProxyState are then set, for the answer);
// or nil and an error matching ErrDiscard when it must be dropped. It never
// panics and changes nothing it is given.
func ParseDisconnect(pkt []byte, pol *DynAuthPolicy, now time.Time) (*Disconnect, error) {
	if len(pol.Secret) == 0 {
		return nil, &discard{"no shared secret"}
	}
	pkt, err := frame(pkt)
	if err != nil {
		return nil, &discard{err.Error()}
	}
	code := radius.Code(pkt[0])
	if code != radius.CodeDisconnectRequest && code != radius.CodeCoARequest {
		return nil, &discard{code.String() + " is not a dynamic authorization request"}
	}
	if err := checkAuthenticator(pkt, &zero16, pol.Secret); err != nil {
		return nil, &discard{"Request Authenticator: " + err.Error()}
	}
	if _, err := checkMessageAuthenticator(pkt, &zero16, pol.Secret, pol.RequireMessageAuthenticator); err != nil {
		return nil, &discard{err.Error()}
	}
	d := &Disconnect{Code: code, Identifier: pkt[1]}
	copy(d.Authenticator[:], pkt[4:headerLen])
	attrs, err := radius.ParseAttributes(pkt[headerLen:])
	if err != nil {
		return nil, &discard{err.Error()}
	}
	for _, a := range attrs {
		if a.Type == rfc2865.ProxyState_Type {
			d.ProxyState = append(d.ProxyState, append([]byte(nil), a.Attribute...))
		}
	}
	// From here on the request is authentic: it is answered, if only with
	// a NAK.
	if code == radius.CodeCoARequest {
		return d, &NakError{CauseUnsupportedExtension, "CoA-Request: only Disconnect-Request is supported"}
	}
	window := pol.EventWindow
	if window <= 0 {
		window = 300 * time.Second
	}
	seen := map[radius.Type]bool{}
	for _, a := range attrs {
		v := a.Attribute
		switch a.Type {
		case rfc2865.ProxyState_Type, typeMessageAuthenticator, rfc2865.ReplyMessage_Type, rfc2866.AcctTerminateCause_Type:
			continue
		}
		if seen[a.Type] {
			return d, &NakError{CauseInvalidRequest, "an attribute appears twice"}
		}
		seen[a.Type] = true
		switch a.Type {
		case typeEventTimestamp:
			n, err := radius.Integer(v)
			if err != nil {
				return d, &NakError{CauseInvalidAttributeValue, "Event-Timestamp is not 4 octets"}
			}
			d.Event = time.Unix(int64(n), 0)
			if d.Event.Before(now.Add(-window)) || d.Event.After(now.Add(window)) {
				return nil, &discard{"Event-Timestamp outside the replay window"}
			}
		case rfc2865.NASIdentifier_Type:
			if string(v) != pol.NAS.Identifier {
				return d, &NakError{CauseNASMismatch, "NAS-Identifier names another NAS"}
			}
		case rfc2865.NASIPAddress_Type:
			if len(v) != 4 || !pol.NAS.IPv4.IsValid() || netip.AddrFrom4([4]byte(v)) != pol.NAS.IPv4 {
				return d, &NakError{CauseNASMismatch, "NAS-IP-Address names another NAS"}
			}
		case rfc3162.NASIPv6Address_Type:
			if len(v) != 16 || !pol.NAS.IPv6.IsValid() || netip.AddrFrom16([16]byte(v)) != pol.NAS.IPv6 {
				return d, &NakError{CauseNASMismatch, "NAS-IPv6-Address names another NAS"}
			}
		case rfc2865.UserName_Type:
			if checkNAI(string(v)) != nil {
				return d, &NakError{CauseInvalidAttributeValue, "User-Name is not a NAI"}
			}
			d.NAI = string(v)
		case rfc2866.AcctSessionID_Type:
			if len(v) == 0 {
				return d, &NakError{CauseInvalidAttributeValue, "Acct-Session-Id is empty"}
			}
			d.SessionID = string(v)
		case typeFramedIPv6Address:
			if len(v) != 16 {
				return d, &NakError{CauseInvalidAttributeValue, "Framed-IPv6-Address is not 16 octets"}
			}
			d.HoA = netip.AddrFrom16([16]byte(v))
		case rfc2865.FramedIPAddress_Type:
			if len(v) != 4 {
				return d, &NakError{CauseInvalidAttributeValue, "Framed-IP-Address is not 4 octets"}
			}
			d.HoA4 = netip.AddrFrom4([4]byte(v))
		default:
			return d, &NakError{CauseUnsupportedAttribute, "attribute " + itoa(int(a.Type)) + " is not supported in a Disconnect-Request"}
		}
	}
	if d.Selector.empty() {
		return d, &NakError{CauseMissingAttribute, "no session identification (User-Name, Acct-Session-Id, Framed-IPv6-Address or Framed-IP-Address)"}
	}
	return d, nil
}

// encodeDynAuthReply answers the request d with code (ACK or NAK), the
// Error-Cause when cause is not zero, and d's Proxy-States. Its
// Message-Authenticator and Response Authenticator are made with the
// request's authenticator (RFC 5176 §3.3, §2.3).
func encodeDynAuthReply(d *Disconnect, code radius.Code, cause ErrorCause, secret []byte) ([]byte, error) {
	p := newPacket(code, d.Identifier, &d.Authenticator, secret, true)
	if cause != 0 {
		p.Add(typeErrorCause, u32(uint32(cause)))
	}
	for _, ps := range d.ProxyState {
		p.Add(rfc2865.ProxyState_Type, ps)
	}
	b, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	signMessageAuthenticator(b, maOffset, &d.Authenticator, secret)
	sum := md5Authenticator(b, &d.Authenticator, secret)
	copy(b[4:headerLen], sum[:])
	return b, nil
}

// ackCode and nakCode are the answers to a request code.
func ackCode(c radius.Code) radius.Code {
	if c == radius.CodeCoARequest {
		return radius.CodeCoAACK
	}
	return radius.CodeDisconnectACK
}

func nakCode(c radius.Code) radius.Code {
	if c == radius.CodeCoARequest {
		return radius.CodeCoANAK
	}
	return radius.CodeDisconnectNAK
}
