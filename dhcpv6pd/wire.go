package dhcpv6pd

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// Message types this package sends or accepts (RFC 8415 §7.3).
const (
	Solicit   = dhcpv6.MessageTypeSolicit
	Advertise = dhcpv6.MessageTypeAdvertise
	Request   = dhcpv6.MessageTypeRequest
	Renew     = dhcpv6.MessageTypeRenew
	Rebind    = dhcpv6.MessageTypeRebind
	Reply     = dhcpv6.MessageTypeReply
	Release   = dhcpv6.MessageTypeRelease
	Decline   = dhcpv6.MessageTypeDecline
	RelayForw = dhcpv6.MessageTypeRelayForward
	RelayRepl = dhcpv6.MessageTypeRelayReply
)

// Status codes (RFC 8415 §21.13, RFC 3633).
const (
	StatusSuccess       = uint16(iana.StatusSuccess)
	StatusUnspecFail    = uint16(iana.StatusUnspecFail)
	StatusNoBinding     = uint16(iana.StatusNoBinding)
	StatusNotOnLink     = uint16(iana.StatusNotOnLink)
	StatusUseMulticast  = uint16(iana.StatusUseMulticast)
	StatusNoPrefixAvail = uint16(iana.StatusNoPrefixAvail)
)

// Infinity is the lifetime value meaning "forever" (RFC 8415 §7.7).
const Infinity = 0xffffffff

// Ports of RFC 8415 §7.2.
const (
	ClientPort = 546
	ServerPort = 547 // servers and relay agents
)

// HopCountLimit is the most relay agents a message may pass (RFC 8415 §7.6).
const HopCountLimit = 8

// maxDUID is the longest DUID RFC 8415 §11.1 allows (2 bytes of type and at
// most 128 of identifier).
const maxDUID = 130

// Errors of the decoders. Each wraps the detail.
var (
	ErrMalformed  = errors.New("dhcpv6pd: malformed message")
	ErrNotRelay   = errors.New("dhcpv6pd: not a relay message")
	ErrIsRelay    = errors.New("dhcpv6pd: a relay message where a client or server message was expected")
	ErrHopCount   = errors.New("dhcpv6pd: hop count limit reached")
	ErrUnexpected = errors.New("dhcpv6pd: message not expected now")
)

// DUID is a DHCP Unique Identifier as its bytes on the wire (type first).
type DUID []byte

func (d DUID) String() string { return hex.EncodeToString(d) }

// Equal reports whether two DUIDs are the same bytes.
func (d DUID) Equal(e DUID) bool { return bytes.Equal(d, e) }

// NewDUIDUUID makes a DUID-UUID (RFC 6355) from 16 random bytes, marked as
// a version 4 (random) UUID. A router stores it once and keeps it: a DUID
// that changed at every boot would get a new prefix at every boot.
func NewDUIDUUID(random [16]byte) DUID {
	u := random
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return append(DUID{0, 4}, u[:]...)
}

func checkDUID(d []byte) error {
	if len(d) < 3 || len(d) > maxDUID {
		return fmt.Errorf("%w: DUID of %d bytes", ErrMalformed, len(d))
	}
	return nil
}

// rawDUID puts our DUID bytes into the library's option types unchanged:
// its own DUID types would re-encode what they parsed, and a DUID must go
// back to the server byte for byte.
type rawDUID DUID

func (d rawDUID) String() string            { return DUID(d).String() }
func (d rawDUID) ToBytes() []byte           { return []byte(d) }
func (d *rawDUID) FromBytes(p []byte) error { *d = append(rawDUID(nil), p...); return nil }
func (d rawDUID) DUIDType() dhcpv6.DUIDType { return dhcpv6.DUIDType(uint16(d[0])<<8 | uint16(d[1])) }
func (d rawDUID) Equal(e dhcpv6.DUID) bool  { return bytes.Equal(d, e.ToBytes()) }
func asDUID(d DUID) *rawDUID                { r := rawDUID(d); return &r }
func duidOf(d dhcpv6.DUID) DUID {
	if d == nil {
		return nil
	}
	return DUID(append([]byte(nil), d.ToBytes()...))
}
func opaque(code dhcpv6.OptionCode, data []byte) dhcpv6.Option {
	return &dhcpv6.OptionGeneric{OptionCode: code, OptionData: data}
}

// Prefix is one IA Prefix option (RFC 8415 §21.22): lifetimes in seconds as
// on the wire, Infinity meaning forever.
type Prefix struct {
	Prefix    netip.Prefix // zero for a length-only hint (::/0 on the wire, or ::/len)
	Preferred uint32
	Valid     uint32
	Status    *Status // a Status Code option inside the IA Prefix, if any
}

// IAPD is one IA_PD option (RFC 8415 §21.21).
type IAPD struct {
	IAID     [4]byte
	T1, T2   uint32
	Prefixes []Prefix
	Status   *Status // a Status Code option inside the IA_PD, if any
}

// Status is a Status Code option.
type Status struct {
	Code    uint16
	Message string
}

// Msg is a client or server message (not a relay message), decoded into the
// fields prefix delegation uses. Marshal and ParseMsg round trip: a Msg
// ParseMsg returned marshals to the bytes it was parsed from when those
// carry only the options below, in this order.
type Msg struct {
	Type     dhcpv6.MessageType
	XID      [3]byte
	ClientID DUID // nil: absent
	ServerID DUID // nil: absent
	IAPDs    []IAPD
	// Elapsed is the Elapsed Time option (RFC 8415 §21.9); HasElapsed says
	// whether it is present (it must be in every client message).
	Elapsed    time.Duration
	HasElapsed bool
	ORO        []uint16 // Option Request option; nil: absent
	// Preference is the Preference option (Advertise); HasPreference says
	// whether it is present (absent means 0, RFC 8415 §18.2.9).
	Preference    uint8
	HasPreference bool
	RapidCommit   bool
	Status        *Status // top-level Status Code option
	DNS           []netip.Addr
	// Other holds the options this type has no field for, in order, so
	// that nothing is silently lost on a round trip.
	Other []dhcpv6.Option
}

// Marshal encodes m. The options go in a fixed order: Client ID, Server ID,
// IA_PDs, Elapsed Time, ORO, Preference, Rapid Commit, Status Code, DNS,
// then Other.
func (m *Msg) Marshal() []byte {
	out := dhcpv6.Message{MessageType: m.Type, TransactionID: m.XID}
	o := &out.Options.Options
	if m.ClientID != nil {
		o.Add(dhcpv6.OptClientID(asDUID(m.ClientID)))
	}
	if m.ServerID != nil {
		o.Add(dhcpv6.OptServerID(asDUID(m.ServerID)))
	}
	for _, ia := range m.IAPDs {
		o.Add(ia.option())
	}
	if m.HasElapsed {
		// The field counts hundredths of a second and saturates at 0xffff
		// (RFC 8415 §21.9); the library's encoder would wrap around.
		e := min(m.Elapsed, 0xffff*10*time.Millisecond)
		o.Add(dhcpv6.OptElapsedTime(e))
	}
	if m.ORO != nil {
		codes := make(dhcpv6.OptionCodes, len(m.ORO))
		for i, c := range m.ORO {
			codes[i] = dhcpv6.OptionCode(c)
		}
		o.Add(dhcpv6.OptRequestedOption(codes...))
	}
	if m.HasPreference {
		o.Add(dhcpv6.OptPreference(m.Preference))
	}
	if m.RapidCommit {
		o.Add(opaque(dhcpv6.OptionRapidCommit, nil))
	}
	if m.Status != nil {
		o.Add(m.Status.option())
	}
	if len(m.DNS) > 0 {
		ips := make([]net.IP, len(m.DNS))
		for i, a := range m.DNS {
			ips[i] = a.AsSlice()
		}
		o.Add(dhcpv6.OptDNS(ips...))
	}
	*o = append(*o, m.Other...)
	return out.ToBytes()
}

func (s *Status) option() dhcpv6.Option {
	return &dhcpv6.OptStatusCode{StatusCode: iana.StatusCode(s.Code), StatusMessage: s.Message}
}

func (ia *IAPD) option() dhcpv6.Option {
	opt := &dhcpv6.OptIAPD{IaId: ia.IAID, T1: secs(ia.T1), T2: secs(ia.T2)}
	for _, p := range ia.Prefixes {
		opt.Options.Add(p.option())
	}
	if ia.Status != nil {
		opt.Options.Add(ia.Status.option())
	}
	return opt
}

func (p *Prefix) option() dhcpv6.Option {
	opt := &dhcpv6.OptIAPrefix{PreferredLifetime: secs(p.Preferred), ValidLifetime: secs(p.Valid)}
	if p.Prefix.IsValid() {
		opt.Prefix = &net.IPNet{IP: p.Prefix.Addr().AsSlice(), Mask: net.CIDRMask(p.Prefix.Bits(), 128)}
	}
	if p.Status != nil {
		opt.Options.Add(p.Status.option())
	}
	return opt
}

func secs(s uint32) time.Duration { return time.Duration(s) * time.Second }

// seconds reads back a lifetime the library decoded: it multiplied a
// uint32 by a second, so this is exact.
func seconds(d time.Duration) uint32 { return uint32(d / time.Second) }

// ParseMsg decodes a client or server message. It never panics; an error
// wraps ErrMalformed (or ErrIsRelay for a relay message).
func ParseMsg(b []byte) (m *Msg, err error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	if t := dhcpv6.MessageType(b[0]); t == RelayForw || t == RelayRepl {
		return nil, ErrIsRelay
	}
	lm, err := dhcpv6.MessageFromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := checkTLVs(b[4:], 0); err != nil {
		return nil, err
	}
	m = &Msg{Type: lm.MessageType, XID: lm.TransactionID}
	seen := map[dhcpv6.OptionCode]bool{}
	for _, opt := range lm.Options.Options {
		code := opt.Code()
		if code != dhcpv6.OptionIAPD && seen[code] && code != dhcpv6.OptionORO {
			return nil, fmt.Errorf("%w: option %d twice", ErrMalformed, code)
		}
		seen[code] = true
		switch v := opt.(type) {
		case *dhcpv6.OptIAPD:
			ia, err := fromIAPD(v)
			if err != nil {
				return nil, err
			}
			m.IAPDs = append(m.IAPDs, ia)
		case *dhcpv6.OptStatusCode:
			m.Status = &Status{Code: uint16(v.StatusCode), Message: v.StatusMessage}
		case *dhcpv6.OptionGeneric:
			switch code {
			case dhcpv6.OptionRapidCommit:
				if len(v.OptionData) != 0 {
					return nil, fmt.Errorf("%w: Rapid Commit option with data", ErrMalformed)
				}
				m.RapidCommit = true
			default:
				m.Other = append(m.Other, v)
			}
		default:
			switch code {
			case dhcpv6.OptionClientID, dhcpv6.OptionServerID:
				one := dhcpv6.MessageOptions{Options: dhcpv6.Options{opt}}
				var d DUID
				if code == dhcpv6.OptionClientID {
					d = duidOf(one.ClientID())
				} else {
					d = duidOf(one.ServerID())
				}
				if err := checkDUID(d); err != nil {
					return nil, err
				}
				if code == dhcpv6.OptionClientID {
					m.ClientID = d
				} else {
					m.ServerID = d
				}
			case dhcpv6.OptionElapsedTime:
				m.HasElapsed = true
				m.Elapsed = dhcpv6.MessageOptions{Options: dhcpv6.Options{opt}}.ElapsedTime()
			case dhcpv6.OptionORO:
				for _, c := range (dhcpv6.MessageOptions{Options: dhcpv6.Options{opt}}).RequestedOptions() {
					m.ORO = append(m.ORO, uint16(c))
				}
				if m.ORO == nil {
					m.ORO = []uint16{}
				}
			case dhcpv6.OptionPreference:
				m.HasPreference = true
				m.Preference = dhcpv6.MessageOptions{Options: dhcpv6.Options{opt}}.Preference()
			case dhcpv6.OptionDNSRecursiveNameServer:
				for _, ip := range (dhcpv6.MessageOptions{Options: dhcpv6.Options{opt}}).DNS() {
					a, ok := netip.AddrFromSlice(ip)
					if !ok || !a.Is6() {
						return nil, fmt.Errorf("%w: DNS server address", ErrMalformed)
					}
					m.DNS = append(m.DNS, a)
				}
			default:
				m.Other = append(m.Other, opt)
			}
		}
	}
	return m, nil
}

func fromIAPD(v *dhcpv6.OptIAPD) (IAPD, error) {
	ia := IAPD{IAID: v.IaId, T1: seconds(v.T1), T2: seconds(v.T2)}
	for _, o := range v.Options.Options {
		switch p := o.(type) {
		case *dhcpv6.OptIAPrefix:
			pp := Prefix{Preferred: seconds(p.PreferredLifetime), Valid: seconds(p.ValidLifetime)}
			if p.Prefix != nil {
				bits, _ := p.Prefix.Mask.Size()
				a, ok := netip.AddrFromSlice(p.Prefix.IP)
				if !ok {
					return ia, fmt.Errorf("%w: IA Prefix address", ErrMalformed)
				}
				pp.Prefix = netip.PrefixFrom(a, bits)
			}
			for _, so := range p.Options.Options {
				if sc, ok := so.(*dhcpv6.OptStatusCode); ok {
					pp.Status = &Status{Code: uint16(sc.StatusCode), Message: sc.StatusMessage}
				}
			}
			ia.Prefixes = append(ia.Prefixes, pp)
		case *dhcpv6.OptStatusCode:
			ia.Status = &Status{Code: uint16(p.StatusCode), Message: p.StatusMessage}
		}
	}
	return ia, nil
}

// checkTLVs walks an option area and the areas nested in IA_PD and IA
// Prefix options: every option must fit exactly, with nothing left over.
// The library's decoder accepts up to three stray bytes at the end.
func checkTLVs(b []byte, depth int) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return fmt.Errorf("%w: %d stray bytes after the options", ErrMalformed, len(b))
		}
		code := dhcpv6.OptionCode(uint16(b[0])<<8 | uint16(b[1]))
		n := int(b[2])<<8 | int(b[3])
		if len(b) < 4+n {
			return fmt.Errorf("%w: option %d overruns the message", ErrMalformed, code)
		}
		data := b[4 : 4+n]
		switch {
		case code == dhcpv6.OptionIAPD && depth == 0:
			if n < 12 {
				return fmt.Errorf("%w: IA_PD of %d bytes", ErrMalformed, n)
			}
			if err := checkTLVs(data[12:], depth+1); err != nil {
				return err
			}
		case code == dhcpv6.OptionIAPrefix && depth == 1:
			if n < 25 {
				return fmt.Errorf("%w: IA Prefix of %d bytes", ErrMalformed, n)
			}
			if data[8] > 128 {
				return fmt.Errorf("%w: prefix length %d", ErrMalformed, data[8])
			}
			if err := checkTLVs(data[25:], depth+1); err != nil {
				return err
			}
		}
		b = b[4+n:]
	}
	return nil
}

// Relay is a Relay-forward or Relay-reply message (RFC 8415 §9) with the
// relayed message kept as raw bytes: a relay passes it on unchanged.
type Relay struct {
	Type        dhcpv6.MessageType // RelayForw or RelayRepl
	HopCount    uint8
	LinkAddr    netip.Addr
	PeerAddr    netip.Addr
	InterfaceID []byte // nil: absent
	// RelayPort is the Relay Source Port option (RFC 8357): the UDP port a
	// relay sent from when that is not 547. Zero: absent.
	RelayPort    uint16
	HasRelayPort bool
	Inner        []byte // the Relay Message option's content
	Other        []dhcpv6.Option
}

// Marshal encodes r. Options: Interface-Id, Relay Source Port, Other, then
// the Relay Message.
func (r *Relay) Marshal() []byte {
	out := dhcpv6.RelayMessage{
		MessageType: r.Type,
		HopCount:    r.HopCount,
		LinkAddr:    r.LinkAddr.AsSlice(),
		PeerAddr:    r.PeerAddr.AsSlice(),
	}
	o := &out.Options.Options
	if r.InterfaceID != nil {
		o.Add(dhcpv6.OptInterfaceID(r.InterfaceID))
	}
	if r.HasRelayPort {
		o.Add(dhcpv6.OptRelayPort(r.RelayPort))
	}
	*o = append(*o, r.Other...)
	o.Add(opaque(dhcpv6.OptionRelayMsg, r.Inner))
	return out.ToBytes()
}

// keepRaw parses a relay message's options, keeping the Relay Message
// option's content as bytes instead of decoding it.
func keepRaw(code dhcpv6.OptionCode, data []byte) (dhcpv6.Option, error) {
	if code == dhcpv6.OptionRelayMsg {
		return opaque(code, append([]byte(nil), data...)), nil
	}
	return dhcpv6.ParseOption(code, data)
}

// ParseRelay decodes a relay message. It requires exactly one Relay Message
// option and IPv6 link and peer addresses; it never panics.
func ParseRelay(b []byte) (*Relay, error) {
	if len(b) < dhcpv6.RelayHeaderSize {
		if len(b) > 0 && dhcpv6.MessageType(b[0]) != RelayForw && dhcpv6.MessageType(b[0]) != RelayRepl {
			return nil, ErrNotRelay
		}
		return nil, fmt.Errorf("%w: relay message of %d bytes", ErrMalformed, len(b))
	}
	r := &Relay{Type: dhcpv6.MessageType(b[0]), HopCount: b[1]}
	if r.Type != RelayForw && r.Type != RelayRepl {
		return nil, ErrNotRelay
	}
	r.LinkAddr = netip.AddrFrom16([16]byte(b[2:18]))
	r.PeerAddr = netip.AddrFrom16([16]byte(b[18:34]))
	if err := checkTLVs(b[34:], 3); err != nil {
		return nil, err
	}
	var opts dhcpv6.Options
	if err := opts.FromBytesWithParser(b[34:], keepRaw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	found := false
	for _, o := range opts {
		switch o.Code() {
		case dhcpv6.OptionRelayMsg:
			if found {
				return nil, fmt.Errorf("%w: two Relay Message options", ErrMalformed)
			}
			found = true
			r.Inner = o.(*dhcpv6.OptionGeneric).OptionData
		case dhcpv6.OptionInterfaceID:
			r.InterfaceID = dhcpv6.RelayOptions{Options: dhcpv6.Options{o}}.InterfaceID()
			if r.InterfaceID == nil {
				r.InterfaceID = []byte{}
			}
		case dhcpv6.OptionRelayPort:
			r.HasRelayPort = true
			r.RelayPort = dhcpv6.RelayOptions{Options: dhcpv6.Options{o}}.RelayPort().DownstreamSourcePort
		default:
			r.Other = append(r.Other, o)
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: relay message without a Relay Message option", ErrMalformed)
	}
	if len(r.Inner) == 0 {
		return nil, fmt.Errorf("%w: empty Relay Message option", ErrMalformed)
	}
	return r, nil
}
