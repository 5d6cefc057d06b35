package dhcpv6pd

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// The codec is this package's own: the messages of prefix delegation are a
// handful of options, and a general DHCP library costs a router's flash
// several hundred kilobytes. The tests check it byte for byte against RFC
// 8415's layouts, against a general library's decoder and against tshark.

// MessageType is a DHCPv6 message type (RFC 8415 §7.3).
type MessageType uint8

// Message types this package sends or accepts.
const (
	Solicit            MessageType = 1
	Advertise          MessageType = 2
	Request            MessageType = 3
	Confirm            MessageType = 4
	Renew              MessageType = 5
	Rebind             MessageType = 6
	Reply              MessageType = 7
	Release            MessageType = 8
	Decline            MessageType = 9
	Reconfigure        MessageType = 10
	InformationRequest MessageType = 11
	RelayForw          MessageType = 12
	RelayRepl          MessageType = 13
)

var messageNames = [...]string{"", "SOLICIT", "ADVERTISE", "REQUEST", "CONFIRM", "RENEW", "REBIND", "REPLY", "RELEASE",
	"DECLINE", "RECONFIGURE", "INFORMATION-REQUEST", "RELAY-FORW", "RELAY-REPL"}

func (t MessageType) String() string {
	if int(t) < len(messageNames) && t != 0 {
		return messageNames[t]
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// Option codes (RFC 8415 §21, RFC 3646, RFC 8357).
const (
	OptClientID    = 1
	OptServerID    = 2
	OptORO         = 6
	OptPreference  = 7
	OptElapsedTime = 8
	OptRelayMsg    = 9
	OptStatusCode  = 13
	OptRapidCommit = 14
	OptInterfaceID = 18
	OptDNS         = 23
	OptIAPD        = 25
	OptIAPrefix    = 26
	OptSolMaxRT    = 82
	OptRelayPort   = 135
)

// Status codes (RFC 8415 §21.13, RFC 3633).
const (
	StatusSuccess       uint16 = 0
	StatusUnspecFail    uint16 = 1
	StatusNoBinding     uint16 = 3
	StatusNotOnLink     uint16 = 4
	StatusUseMulticast  uint16 = 5
	StatusNoPrefixAvail uint16 = 6
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

// Option is an option this package has no field for, kept as its code
// and content so that nothing is silently lost on a round trip.
type Option struct {
	Code uint16
	Data []byte
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
	Type     MessageType
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
	Other []Option
}

// opt appends one option.
func opt(b []byte, code uint16, data ...[]byte) []byte {
	n := 0
	for _, d := range data {
		n += len(d)
	}
	b = binary.BigEndian.AppendUint16(b, code)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	for _, d := range data {
		b = append(b, d...)
	}
	return b
}

// Marshal encodes m. The options go in a fixed order: Client ID, Server ID,
// IA_PDs, Elapsed Time, ORO, Preference, Rapid Commit, Status Code, DNS,
// then Other.
func (m *Msg) Marshal() []byte {
	b := []byte{byte(m.Type), m.XID[0], m.XID[1], m.XID[2]}
	if m.ClientID != nil {
		b = opt(b, OptClientID, m.ClientID)
	}
	if m.ServerID != nil {
		b = opt(b, OptServerID, m.ServerID)
	}
	for _, ia := range m.IAPDs {
		b = ia.append(b)
	}
	if m.HasElapsed {
		// The field counts hundredths of a second and saturates at 0xffff
		// (RFC 8415 §21.9).
		e := min(m.Elapsed.Round(10*time.Millisecond)/(10*time.Millisecond), 0xffff)
		b = opt(b, OptElapsedTime, binary.BigEndian.AppendUint16(nil, uint16(e)))
	}
	if m.ORO != nil {
		var codes []byte
		for _, c := range m.ORO {
			codes = binary.BigEndian.AppendUint16(codes, c)
		}
		b = opt(b, OptORO, codes)
	}
	if m.HasPreference {
		b = opt(b, OptPreference, []byte{m.Preference})
	}
	if m.RapidCommit {
		b = opt(b, OptRapidCommit)
	}
	if m.Status != nil {
		b = m.Status.append(b)
	}
	if len(m.DNS) > 0 {
		var addrs []byte
		for _, a := range m.DNS {
			a16 := a.As16()
			addrs = append(addrs, a16[:]...)
		}
		b = opt(b, OptDNS, addrs)
	}
	for _, o := range m.Other {
		b = opt(b, o.Code, o.Data)
	}
	return b
}

func (s *Status) append(b []byte) []byte {
	return opt(b, OptStatusCode, binary.BigEndian.AppendUint16(nil, s.Code), []byte(s.Message))
}

func (ia *IAPD) append(b []byte) []byte {
	var body []byte
	body = append(body, ia.IAID[:]...)
	body = binary.BigEndian.AppendUint32(body, ia.T1)
	body = binary.BigEndian.AppendUint32(body, ia.T2)
	for _, p := range ia.Prefixes {
		body = p.append(body)
	}
	if ia.Status != nil {
		body = ia.Status.append(body)
	}
	return opt(b, OptIAPD, body)
}

func (p *Prefix) append(b []byte) []byte {
	var body []byte
	body = binary.BigEndian.AppendUint32(body, p.Preferred)
	body = binary.BigEndian.AppendUint32(body, p.Valid)
	var a [16]byte
	bits := 0
	if p.Prefix.IsValid() {
		bits, a = p.Prefix.Bits(), p.Prefix.Addr().As16()
	}
	body = append(body, byte(bits))
	body = append(body, a[:]...)
	if p.Status != nil {
		body = p.Status.append(body)
	}
	return opt(b, OptIAPrefix, body)
}

// options splits an option area (checkTLVs has made sure it does split).
func options(b []byte, f func(code uint16, data []byte) error) error {
	for len(b) >= 4 {
		code, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if err := f(code, b[4:4+n]); err != nil {
			return err
		}
		b = b[4+n:]
	}
	return nil
}

func parseStatus(d []byte) (*Status, error) {
	if len(d) < 2 {
		return nil, fmt.Errorf("%w: Status Code of %d bytes", ErrMalformed, len(d))
	}
	return &Status{Code: binary.BigEndian.Uint16(d), Message: string(d[2:])}, nil
}

// ParseMsg decodes a client or server message. It never panics; an error
// wraps ErrMalformed (or ErrIsRelay for a relay message).
func ParseMsg(b []byte) (m *Msg, err error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	if t := MessageType(b[0]); t == RelayForw || t == RelayRepl {
		return nil, ErrIsRelay
	}
	if err := checkTLVs(b[4:], 0); err != nil {
		return nil, err
	}
	m = &Msg{Type: MessageType(b[0]), XID: [3]byte(b[1:4])}
	seen := map[uint16]bool{}
	err = options(b[4:], func(code uint16, d []byte) error {
		if code != OptIAPD && seen[code] && code != OptORO {
			return fmt.Errorf("%w: option %d twice", ErrMalformed, code)
		}
		seen[code] = true
		switch code {
		case OptIAPD:
			ia, err := parseIAPD(d)
			if err != nil {
				return err
			}
			m.IAPDs = append(m.IAPDs, ia)
		case OptStatusCode:
			st, err := parseStatus(d)
			if err != nil {
				return err
			}
			m.Status = st
		case OptRapidCommit:
			if len(d) != 0 {
				return fmt.Errorf("%w: Rapid Commit option with data", ErrMalformed)
			}
			m.RapidCommit = true
		case OptClientID, OptServerID:
			if err := checkDUID(d); err != nil {
				return err
			}
			if code == OptClientID {
				m.ClientID = DUID(bytes.Clone(d))
			} else {
				m.ServerID = DUID(bytes.Clone(d))
			}
		case OptElapsedTime:
			if len(d) != 2 {
				return fmt.Errorf("%w: Elapsed Time of %d bytes", ErrMalformed, len(d))
			}
			m.HasElapsed = true
			m.Elapsed = time.Duration(binary.BigEndian.Uint16(d)) * 10 * time.Millisecond
		case OptORO:
			if len(d)%2 != 0 {
				return fmt.Errorf("%w: Option Request of %d bytes", ErrMalformed, len(d))
			}
			if m.ORO == nil {
				m.ORO = []uint16{}
			}
			for i := 0; i < len(d); i += 2 {
				m.ORO = append(m.ORO, binary.BigEndian.Uint16(d[i:]))
			}
		case OptPreference:
			if len(d) != 1 {
				return fmt.Errorf("%w: Preference of %d bytes", ErrMalformed, len(d))
			}
			m.HasPreference, m.Preference = true, d[0]
		case OptDNS:
			if len(d)%16 != 0 {
				return fmt.Errorf("%w: DNS server address", ErrMalformed)
			}
			for i := 0; i < len(d); i += 16 {
				m.DNS = append(m.DNS, netip.AddrFrom16([16]byte(d[i:i+16])))
			}
		default:
			m.Other = append(m.Other, Option{Code: code, Data: bytes.Clone(d)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// parseIAPD decodes an IA_PD option's content (checkTLVs checked its
// layout).
func parseIAPD(d []byte) (IAPD, error) {
	ia := IAPD{IAID: [4]byte(d[0:4]), T1: binary.BigEndian.Uint32(d[4:]), T2: binary.BigEndian.Uint32(d[8:])}
	err := options(d[12:], func(code uint16, o []byte) error {
		switch code {
		case OptIAPrefix:
			pp := Prefix{Preferred: binary.BigEndian.Uint32(o), Valid: binary.BigEndian.Uint32(o[4:])}
			if bits := int(o[8]); bits != 0 {
				// Length 0 is a hint of no length, whatever the address.
				pp.Prefix = netip.PrefixFrom(netip.AddrFrom16([16]byte(o[9:25])), bits)
			}
			err := options(o[25:], func(code uint16, so []byte) error {
				if code == OptStatusCode {
					st, err := parseStatus(so)
					if err != nil {
						return err
					}
					pp.Status = st
				}
				return nil
			})
			ia.Prefixes = append(ia.Prefixes, pp)
			return err
		case OptStatusCode:
			st, err := parseStatus(o)
			if err != nil {
				return err
			}
			ia.Status = st
		}
		return nil
	})
	return ia, err
}

// checkTLVs walks an option area and the areas nested in IA_PD and IA
// Prefix options: every option must fit exactly, with nothing left over.
// The library's decoder accepts up to three stray bytes at the end.
func checkTLVs(b []byte, depth int) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return fmt.Errorf("%w: %d stray bytes after the options", ErrMalformed, len(b))
		}
		code := binary.BigEndian.Uint16(b)
		n := int(b[2])<<8 | int(b[3])
		if len(b) < 4+n {
			return fmt.Errorf("%w: option %d overruns the message", ErrMalformed, code)
		}
		data := b[4 : 4+n]
		switch {
		case code == OptIAPD && depth == 0:
			if n < 12 {
				return fmt.Errorf("%w: IA_PD of %d bytes", ErrMalformed, n)
			}
			if err := checkTLVs(data[12:], depth+1); err != nil {
				return err
			}
		case code == OptIAPrefix && depth == 1:
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

// relayHeader is the size of a relay message's fixed part (RFC 8415 §9).
const relayHeader = 34

// Relay is a Relay-forward or Relay-reply message (RFC 8415 §9) with the
// relayed message kept as raw bytes: a relay passes it on unchanged.
type Relay struct {
	Type        MessageType // RelayForw or RelayRepl
	HopCount    uint8
	LinkAddr    netip.Addr
	PeerAddr    netip.Addr
	InterfaceID []byte // nil: absent
	// RelayPort is the Relay Source Port option (RFC 8357): the UDP port a
	// relay sent from when that is not 547. Zero: absent.
	RelayPort    uint16
	HasRelayPort bool
	Inner        []byte // the Relay Message option's content
	Other        []Option
}

// Marshal encodes r. Options: Interface-Id, Relay Source Port, Other, then
// the Relay Message.
func (r *Relay) Marshal() []byte {
	la, pa := r.LinkAddr.As16(), r.PeerAddr.As16()
	b := append([]byte{byte(r.Type), r.HopCount}, la[:]...)
	b = append(b, pa[:]...)
	if r.InterfaceID != nil {
		b = opt(b, OptInterfaceID, r.InterfaceID)
	}
	if r.HasRelayPort {
		b = opt(b, OptRelayPort, binary.BigEndian.AppendUint16(nil, r.RelayPort))
	}
	for _, o := range r.Other {
		b = opt(b, o.Code, o.Data)
	}
	return opt(b, OptRelayMsg, r.Inner)
}

// ParseRelay decodes a relay message. It requires exactly one Relay Message
// option and IPv6 link and peer addresses; it never panics.
func ParseRelay(b []byte) (*Relay, error) {
	if len(b) < relayHeader {
		if len(b) > 0 && MessageType(b[0]) != RelayForw && MessageType(b[0]) != RelayRepl {
			return nil, ErrNotRelay
		}
		return nil, fmt.Errorf("%w: relay message of %d bytes", ErrMalformed, len(b))
	}
	r := &Relay{Type: MessageType(b[0]), HopCount: b[1]}
	if r.Type != RelayForw && r.Type != RelayRepl {
		return nil, ErrNotRelay
	}
	r.LinkAddr = netip.AddrFrom16([16]byte(b[2:18]))
	r.PeerAddr = netip.AddrFrom16([16]byte(b[18:34]))
	if err := checkTLVs(b[relayHeader:], 3); err != nil {
		return nil, err
	}
	found := false
	err := options(b[relayHeader:], func(code uint16, d []byte) error {
		switch code {
		case OptRelayMsg:
			if found {
				return fmt.Errorf("%w: two Relay Message options", ErrMalformed)
			}
			found = true
			r.Inner = bytes.Clone(d)
		case OptInterfaceID:
			r.InterfaceID = append([]byte{}, d...)
		case OptRelayPort:
			if len(d) != 2 {
				return fmt.Errorf("%w: Relay Source Port of %d bytes", ErrMalformed, len(d))
			}
			r.HasRelayPort, r.RelayPort = true, binary.BigEndian.Uint16(d)
		default:
			r.Other = append(r.Other, Option{Code: code, Data: bytes.Clone(d)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%w: relay message without a Relay Message option", ErrMalformed)
	}
	if len(r.Inner) == 0 {
		return nil, fmt.Errorf("%w: empty Relay Message option", ErrMalformed)
	}
	return r, nil
}
