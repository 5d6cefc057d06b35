package aaa

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/netip"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc4818"
)

// AcctStatus is Acct-Status-Type (RFC 2866 §5.1).
type AcctStatus uint32

const (
	AcctStart   = AcctStatus(rfc2866.AcctStatusType_Value_Start)
	AcctStop    = AcctStatus(rfc2866.AcctStatusType_Value_Stop)
	AcctInterim = AcctStatus(rfc2866.AcctStatusType_Value_InterimUpdate)
	// AcctOn and AcctOff say the home agent started or is stopping: the
	// server may close every session it still holds open for it.
	AcctOn  = AcctStatus(rfc2866.AcctStatusType_Value_AccountingOn)
	AcctOff = AcctStatus(rfc2866.AcctStatusType_Value_AccountingOff)
)

func (s AcctStatus) String() string {
	switch s {
	case AcctStart:
		return "Start"
	case AcctStop:
		return "Stop"
	case AcctInterim:
		return "Interim-Update"
	case AcctOn:
		return "Accounting-On"
	case AcctOff:
		return "Accounting-Off"
	}
	return "AcctStatus(" + itoa(int(s)) + ")"
}

// Acct-Terminate-Cause values (RFC 2866 §5.10) a home agent has reason to
// send with a Stop.
const (
	TerminateUserRequest    = uint32(rfc2866.AcctTerminateCause_Value_UserRequest)    // the router deregistered
	TerminateLostService    = uint32(rfc2866.AcctTerminateCause_Value_LostService)    // its bindings expired
	TerminateSessionTimeout = uint32(rfc2866.AcctTerminateCause_Value_SessionTimeout) // Session-Timeout ran out
	TerminateAdminReset     = uint32(rfc2866.AcctTerminateCause_Value_AdminReset)     // revoked: Disconnect-Request, or the operator
	TerminateAdminReboot    = uint32(rfc2866.AcctTerminateCause_Value_AdminReboot)    // the home agent is stopping
)

// AccountingRecord is one Accounting-Request: a mobile router's session
// (its registration, from the first binding to the last) starting, going
// on, or ending.
type AccountingRecord struct {
	Status AcctStatus
	// SessionID is Acct-Session-Id, the same in the Start, every
	// Interim-Update and the Stop of a session, and different for each
	// session (NewSessionID makes one).
	SessionID string
	NAI       string         // User-Name
	HoA       netip.Addr     // Framed-IPv6-Address
	MNPs      []netip.Prefix // Delegated-IPv6-Prefix, each
	CoA       netip.Addr     // Calling-Station-Id, when valid
	// Octets and packets: Input is what the router sent (into the home
	// agent), Output what the home agent sent to it (RFC 2866 §5.3, §5.4).
	// Octets go out as 32 bits plus the Gigawords attributes (RFC 2869
	// §5.8); packet counts, which have no Gigawords, wrap at 32 bits.
	InputOctets, OutputOctets   uint64
	InputPackets, OutputPackets uint64
	SessionTime                 time.Duration // Acct-Session-Time, whole seconds
	TerminateCause              uint32        // Acct-Terminate-Cause, with a Stop; 0 = none
	Class                       [][]byte      // from the Access-Accept, unchanged
	// Event is when the record's event happened: Event-Timestamp, and
	// Acct-Delay-Time is counted from it (RFC 2866 §5.2), so that a record
	// sent late says so.
	Event time.Time
}

func (r *AccountingRecord) check() error {
	switch r.Status {
	case AcctOn, AcctOff:
		return nil
	case AcctStart, AcctStop, AcctInterim:
	default:
		return errors.New("aaa: unknown Acct-Status-Type " + r.Status.String())
	}
	if r.SessionID == "" || len(r.SessionID) > 253 {
		return errors.New("aaa: an Acct-Session-Id is 1..253 octets")
	}
	if err := checkNAI(r.NAI); err != nil {
		return err
	}
	if len(r.Class) > 8 || len(r.MNPs) > 16 {
		return errors.New("aaa: too many Class or prefix attributes for one record")
	}
	for _, c := range r.Class {
		if len(c) == 0 || len(c) > 253 {
			return errors.New("aaa: a Class is 1..253 octets")
		}
	}
	return nil
}

// encodeAccountingRequest builds an Accounting-Request for r sent at now.
// Its Request Authenticator is MD5 over the packet with the secret
// (RFC 2866 §3), so every encoding differs when Acct-Delay-Time does, and
// each needs a new identifier.
func encodeAccountingRequest(r *AccountingRecord, nas *NAS, id byte, secret []byte, now time.Time) ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	p := newPacket(radius.CodeAccountingRequest, id, &zero16, secret, false)
	p.Add(rfc2866.AcctStatusType_Type, u32(uint32(r.Status)))
	if r.SessionID != "" {
		p.Add(rfc2866.AcctSessionID_Type, radius.Attribute(r.SessionID))
	}
	if r.NAI != "" {
		p.Add(rfc2865.UserName_Type, radius.Attribute(r.NAI))
	}
	nas.add(p)
	if r.HoA.IsValid() && r.HoA.Is6() {
		a := r.HoA.As16()
		p.Add(typeFramedIPv6Address, a[:])
	}
	for _, m := range r.MNPs {
		if v, ok := prefixValue(m); ok {
			p.Add(rfc4818.DelegatedIPv6Prefix_Type, v)
		}
	}
	if r.CoA.IsValid() {
		p.Add(rfc2865.CallingStationID_Type, radius.Attribute(r.CoA.Unmap().String()))
	}
	if r.Status == AcctStop || r.Status == AcctInterim {
		p.Add(rfc2866.AcctInputOctets_Type, u32(uint32(r.InputOctets)))
		p.Add(typeAcctInputGigawords, u32(uint32(r.InputOctets>>32)))
		p.Add(rfc2866.AcctOutputOctets_Type, u32(uint32(r.OutputOctets)))
		p.Add(typeAcctOutputGigawords, u32(uint32(r.OutputOctets>>32)))
		p.Add(rfc2866.AcctInputPackets_Type, u32(uint32(r.InputPackets)))
		p.Add(rfc2866.AcctOutputPackets_Type, u32(uint32(r.OutputPackets)))
		p.Add(rfc2866.AcctSessionTime_Type, u32(uint32(r.SessionTime/time.Second)))
	}
	if r.Status == AcctStop && r.TerminateCause != 0 {
		p.Add(rfc2866.AcctTerminateCause_Type, u32(r.TerminateCause))
	}
	for _, c := range r.Class {
		p.Add(rfc2865.Class_Type, c)
	}
	ev := r.Event
	if ev.IsZero() || ev.After(now) {
		ev = now
	}
	p.Add(typeEventTimestamp, u32(uint32(ev.Unix())))
	p.Add(rfc2866.AcctDelayTime_Type, u32(uint32(now.Sub(ev)/time.Second)))
	b, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	sum := md5Authenticator(b, &zero16, secret)
	copy(b[4:headerLen], sum[:])
	return b, nil
}

// prefixValue encodes a prefix attribute value (RFC 3162 §2.3) in as few
// octets as hold the prefix.
func prefixValue(p netip.Prefix) (radius.Attribute, bool) {
	if !p.IsValid() || !p.Addr().Is6() {
		return nil, false
	}
	p = p.Masked()
	a := p.Addr().As16()
	n := (p.Bits() + 7) / 8
	v := make(radius.Attribute, 2+n)
	v[1] = byte(p.Bits())
	copy(v[2:], a[:n])
	return v, true
}

// checkAccountingResponse checks that resp is the Accounting-Response to
// req, with the Response Authenticator the secret makes (and a valid
// Message-Authenticator if it has one).
func checkAccountingResponse(resp, req, secret []byte) error {
	return checkPlainResponse(resp, req, secret, radius.CodeAccountingResponse)
}

// checkPlainResponse checks identifier, code (when want is non-zero),
// Response Authenticator and any Message-Authenticator of a response that
// carries nothing else of interest.
func checkPlainResponse(resp, req, secret []byte, want radius.Code) error {
	reqPkt, err := frame(req)
	if err != nil {
		return err
	}
	pkt, err := frame(resp)
	if err != nil {
		return err
	}
	if pkt[1] != reqPkt[1] {
		return errors.New("radius: identifier is not the request's")
	}
	if want != 0 && radius.Code(pkt[0]) != want {
		return errors.New("radius: " + radius.Code(pkt[0]).String() + " where " + want.String() + " was due")
	}
	var reqAuth [16]byte
	copy(reqAuth[:], reqPkt[4:headerLen])
	if err := checkAuthenticator(pkt, &reqAuth, secret); err != nil {
		return err
	}
	_, err = checkMessageAuthenticator(pkt, &reqAuth, secret, false)
	return err
}

// NewSessionID returns a fresh Acct-Session-Id: 16 hex digits from
// crypto/rand, unique enough that two sessions of a fleet never share one.
func NewSessionID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("aaa: crypto/rand failed: " + err.Error()) // it does not, on Linux
	}
	return hex.EncodeToString(b[:])
}
