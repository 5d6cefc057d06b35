package nemo

import (
	"encoding/binary"
	"net/netip"

	"nemod/header"
)

// MaxMHLen is the longest Mobility Header the Header Len octet can describe.
const MaxMHLen = 256 * 8

// Header is the fixed start of every Mobility Header (RFC 6275 §6.1.1).
type Header struct {
	Type     uint8
	Len      int // whole MH length in octets: (Header Len + 1) * 8
	Checksum uint16
}

// fixedLen is the length of each message's fixed part, MH header included;
// options start there. Types this package does not decode have none.
func fixedLen(t uint8) int {
	switch t {
	case TypeBRR:
		return 8
	case TypeBU, TypeBA, TypeRevocation, TypeHeartbeat:
		return 12
	case TypeBE:
		return 24
	case TypeHASwitch:
		return 8 // plus 16 per address
	case TypeHoTI, TypeCoTI:
		return 16
	case TypeHoT, TypeCoT:
		return 24
	}
	return 6
}

// ParseHeader checks the generic Mobility Header rules: Payload Proto 59, a
// Header Len that covers the message's fixed part, and exactly len(mh)
// octets. It does not check the checksum (see VerifyChecksum).
func ParseHeader(mh []byte) (Header, error) {
	if len(mh) < 8 {
		return Header{}, errAt("Mobility Header", "length", 0, "is "+itoa(len(mh))+" octets, want at least 8")
	}
	if mh[0] != header.ProtoNone {
		return Header{}, errAt(msgName(mh[2]), "Payload Proto", 0, "is "+itoa(int(mh[0]))+", want 59")
	}
	h := Header{Type: mh[2], Len: (int(mh[1]) + 1) * 8, Checksum: binary.BigEndian.Uint16(mh[4:])}
	if h.Len != len(mh) {
		return h, errAt(msgName(h.Type), "Header Len", 1, "says "+itoa(h.Len)+" octets, the packet holds "+itoa(len(mh)))
	}
	if h.Len < fixedLen(h.Type) {
		return h, errAt(msgName(h.Type), "Header Len", 1, "says "+itoa(h.Len)+" octets, shorter than the message's "+itoa(fixedLen(h.Type)))
	}
	return h, nil
}

// Message is a Mobility Header message this package encodes and decodes.
type Message interface {
	MHType() uint8
	// options returns the message's options, nil for messages without.
	options() *Options
	appendFixed(w *writer) error
	// decodeFixed decodes the fixed part of mh (already checked by
	// ParseHeader) and returns where the options start.
	decodeFixed(mh []byte) (int, error)
}

// BindingRefreshRequest (type 0, RFC 6275 §6.1.2).
type BindingRefreshRequest struct{ Options }

// BindingUpdate (type 5, RFC 6275 §6.1.7).
type BindingUpdate struct {
	Seq      uint16
	Flags    uint16 // BUFlag*
	Lifetime uint16 // 4-second units; 0 deletes
	Options
}

// BindingAck (type 6, RFC 6275 §6.1.8).
type BindingAck struct {
	Status   uint8
	Flags    uint8 // BAFlag*
	Seq      uint16
	Lifetime uint16
	Options
}

// BindingError (type 7, RFC 6275 §6.1.9).
type BindingError struct {
	Status      uint8
	HomeAddress netip.Addr
	Options
}

// HomeAgentSwitch (type 12, RFC 5142 §4). No addresses tells the mobile
// node to run home agent discovery.
type HomeAgentSwitch struct {
	Addresses []netip.Addr
	Options
}

// Heartbeat (type 13, RFC 5847 §5.1).
type Heartbeat struct {
	Unsolicited bool // U
	Response    bool // R
	Seq         uint32
	Options
}

// BindingRevocation is a Binding Revocation Indication or Acknowledgement
// (type 16, RFC 5846 §5, §6).
type BindingRevocation struct {
	Kind  uint8 // RevocationIndication or RevocationAck
	Code  uint8 // the Revocation Trigger of a BRI, the Status of a BRA
	Seq   uint16
	Flags uint16 // RevFlag*
	Options
}

// Experimental is an Experimental Mobility Header message (type 11,
// RFC 5096). Its message data is free-form; decoding returns everything
// after the checksum, padding included.
type Experimental struct{ Data []byte }

// Unknown is a message of a type this package does not decode. A home agent
// answers it with a Binding Error, status 2.
type Unknown struct {
	Type uint8
	Data []byte // everything after the checksum
}

func (*BindingRefreshRequest) MHType() uint8 { return TypeBRR }
func (*BindingUpdate) MHType() uint8         { return TypeBU }
func (*BindingAck) MHType() uint8            { return TypeBA }
func (*BindingError) MHType() uint8          { return TypeBE }
func (*HomeAgentSwitch) MHType() uint8       { return TypeHASwitch }
func (*Heartbeat) MHType() uint8             { return TypeHeartbeat }
func (*BindingRevocation) MHType() uint8     { return TypeRevocation }
func (*Experimental) MHType() uint8          { return TypeExperimental }
func (m *Unknown) MHType() uint8             { return m.Type }

func (m *BindingRefreshRequest) options() *Options { return &m.Options }
func (m *BindingUpdate) options() *Options         { return &m.Options }
func (m *BindingAck) options() *Options            { return &m.Options }
func (m *BindingError) options() *Options          { return &m.Options }
func (m *HomeAgentSwitch) options() *Options       { return &m.Options }
func (m *Heartbeat) options() *Options             { return &m.Options }
func (m *BindingRevocation) options() *Options     { return &m.Options }
func (*Experimental) options() *Options            { return nil }
func (*Unknown) options() *Options                 { return nil }

func (m *BindingRefreshRequest) appendFixed(w *writer) error { w.u16(0); return nil }

func (m *BindingRefreshRequest) decodeFixed(mh []byte) (int, error) { return 8, nil }

func (m *BindingUpdate) appendFixed(w *writer) error {
	w.u16(m.Seq)
	w.u16(m.Flags)
	w.u16(m.Lifetime)
	return nil
}

func (m *BindingUpdate) decodeFixed(mh []byte) (int, error) {
	m.Seq = binary.BigEndian.Uint16(mh[6:])
	m.Flags = binary.BigEndian.Uint16(mh[8:])
	m.Lifetime = binary.BigEndian.Uint16(mh[10:])
	return 12, nil
}

func (m *BindingAck) appendFixed(w *writer) error {
	w.u8(m.Status)
	w.u8(m.Flags)
	w.u16(m.Seq)
	w.u16(m.Lifetime)
	return nil
}

func (m *BindingAck) decodeFixed(mh []byte) (int, error) {
	m.Status = mh[6]
	m.Flags = mh[7]
	m.Seq = binary.BigEndian.Uint16(mh[8:])
	m.Lifetime = binary.BigEndian.Uint16(mh[10:])
	return 12, nil
}

func (m *BindingError) appendFixed(w *writer) error {
	if !m.HomeAddress.Is6() || m.HomeAddress.Is4In6() {
		return errAt("Binding Error", "Home Address", -1, "needs an IPv6 address")
	}
	w.u8(m.Status)
	w.u8(0)
	w.addr(m.HomeAddress)
	return nil
}

func (m *BindingError) decodeFixed(mh []byte) (int, error) {
	m.Status = mh[6]
	if m.HomeAddress = addr16(mh[8:]); m.HomeAddress.Is4In6() {
		return 0, errAt("Binding Error", "Home Address", 8, mappedReason)
	}
	return 24, nil
}

func (m *HomeAgentSwitch) appendFixed(w *writer) error {
	// 8 + 16N octets must leave the message within MaxMHLen.
	if len(m.Addresses) > 127 {
		return errAt("Home Agent Switch", "# of Addresses", -1, itoa(len(m.Addresses))+" addresses do not fit")
	}
	w.u8(uint8(len(m.Addresses)))
	w.u8(0)
	for _, a := range m.Addresses {
		if !a.Is6() || a.Is4In6() {
			return errAt("Home Agent Switch", "Home Agent Address", -1, a.String()+" is not an IPv6 address")
		}
		w.addr(a)
	}
	return nil
}

func (m *HomeAgentSwitch) decodeFixed(mh []byte) (int, error) {
	n := int(mh[6])
	end := 8 + 16*n
	if end > len(mh) {
		return 0, errAt("Home Agent Switch", "# of Addresses", 6, itoa(n)+" addresses do not fit in "+itoa(len(mh))+" octets")
	}
	m.Addresses = m.Addresses[:0]
	for i := 0; i < n; i++ {
		a := addr16(mh[8+16*i:])
		if a.Is4In6() {
			return 0, errAt("Home Agent Switch", "Home Agent Address", 8+16*i, mappedReason)
		}
		m.Addresses = append(m.Addresses, a)
	}
	return end, nil
}

func (m *Heartbeat) appendFixed(w *writer) error {
	var fl uint16
	if m.Unsolicited {
		fl |= 2
	}
	if m.Response {
		fl |= 1
	}
	w.u16(fl)
	w.u32(m.Seq)
	return nil
}

func (m *Heartbeat) decodeFixed(mh []byte) (int, error) {
	fl := binary.BigEndian.Uint16(mh[6:])
	m.Unsolicited = fl&2 != 0
	m.Response = fl&1 != 0
	m.Seq = binary.BigEndian.Uint32(mh[8:])
	return 12, nil
}

func (m *BindingRevocation) appendFixed(w *writer) error {
	if m.Kind != RevocationIndication && m.Kind != RevocationAck {
		return errAt("Binding Revocation", "B.R. Type", -1, itoa(int(m.Kind))+" is neither 1 (indication) nor 2 (acknowledgement)")
	}
	w.u8(m.Kind)
	w.u8(m.Code)
	w.u16(m.Seq)
	w.u16(m.Flags)
	return nil
}

func (m *BindingRevocation) decodeFixed(mh []byte) (int, error) {
	m.Kind = mh[6]
	if m.Kind != RevocationIndication && m.Kind != RevocationAck {
		return 0, errAt("Binding Revocation", "B.R. Type", 6, itoa(int(m.Kind))+" is neither 1 nor 2")
	}
	m.Code = mh[7]
	m.Seq = binary.BigEndian.Uint16(mh[8:])
	m.Flags = binary.BigEndian.Uint16(mh[10:])
	return 12, nil
}

func (m *Experimental) appendFixed(w *writer) error { w.bytes(m.Data); return nil }

func (m *Experimental) decodeFixed(mh []byte) (int, error) {
	m.Data = mh[6:]
	return len(mh), nil
}

func (m *Unknown) appendFixed(w *writer) error { w.bytes(m.Data); return nil }

func (m *Unknown) decodeFixed(mh []byte) (int, error) {
	m.Data = mh[6:]
	return len(mh), nil
}

// AppendMessage appends m as a Mobility Header to b, padded to a multiple of
// 8 octets, with a zero checksum: sign it (Authenticator.Sign) and then set
// the checksum (SetChecksum) or build the packet with AppendPacket.
func AppendMessage(b []byte, m Message) ([]byte, error) {
	start := len(b)
	w := writer{b: append(b, header.ProtoNone, 0, m.MHType(), 0, 0, 0), start: start}
	if err := m.appendFixed(&w); err != nil {
		return b, err
	}
	if o := m.options(); o != nil {
		if err := o.encode(&w, msgName(m.MHType())); err != nil {
			return b, err
		}
		w.pad((8 - w.off()%8) % 8)
	} else {
		// Free-form message data: pad with zeros, not with options.
		for w.off()%8 != 0 {
			w.u8(0)
		}
	}
	n := w.off()
	if n > MaxMHLen {
		return b, errAt(msgName(m.MHType()), "Header Len", -1, "message of "+itoa(n)+" octets is longer than "+itoa(MaxMHLen))
	}
	w.b[start+1] = uint8(n/8 - 1)
	return w.b, nil
}

// Marshal encodes m into a new buffer (see AppendMessage).
func Marshal(m Message) ([]byte, error) { return AppendMessage(make([]byte, 0, 128), m) }

// Unmarshal decodes mh into m, which must be of the message's type. It
// reuses m's slices, so a long-lived m decodes without allocating.
func Unmarshal(mh []byte, m Message) error {
	h, err := ParseHeader(mh)
	if err != nil {
		return err
	}
	if u, ok := m.(*Unknown); ok {
		u.Type = h.Type
	} else if h.Type != m.MHType() {
		return errAt(msgName(m.MHType()), "MH Type", 2, "is "+itoa(int(h.Type))+" ("+msgName(h.Type)+")")
	}
	off, err := m.decodeFixed(mh)
	if err != nil {
		return err
	}
	if o := m.options(); o != nil {
		o.Reset()
		return o.decode(mh, off, len(mh), msgName(h.Type))
	}
	return nil
}

// Decode decodes a Mobility Header into a new message of its type; types
// this package does not decode come back as *Unknown.
func Decode(mh []byte) (Message, error) {
	h, err := ParseHeader(mh)
	if err != nil {
		return nil, err
	}
	var m Message
	switch h.Type {
	case TypeBRR:
		m = new(BindingRefreshRequest)
	case TypeBU:
		m = new(BindingUpdate)
	case TypeBA:
		m = new(BindingAck)
	case TypeBE:
		m = new(BindingError)
	case TypeHASwitch:
		m = new(HomeAgentSwitch)
	case TypeHeartbeat:
		m = new(Heartbeat)
	case TypeRevocation:
		m = new(BindingRevocation)
	case TypeExperimental:
		m = new(Experimental)
	default:
		m = new(Unknown)
	}
	if err := Unmarshal(mh, m); err != nil {
		return nil, err
	}
	return m, nil
}

func msgName(t uint8) string {
	switch t {
	case TypeBRR:
		return "Binding Refresh Request"
	case TypeHoTI:
		return "Home Test Init"
	case TypeCoTI:
		return "Care-of Test Init"
	case TypeHoT:
		return "Home Test"
	case TypeCoT:
		return "Care-of Test"
	case TypeBU:
		return "Binding Update"
	case TypeBA:
		return "Binding Acknowledgement"
	case TypeBE:
		return "Binding Error"
	case TypeExperimental:
		return "Experimental message"
	case TypeHASwitch:
		return "Home Agent Switch"
	case TypeHeartbeat:
		return "Heartbeat"
	case TypeRevocation:
		return "Binding Revocation"
	}
	return "MH type " + itoa(int(t))
}
