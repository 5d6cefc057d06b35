package dhcp4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
)

// The DHCPv4 wire format (RFC 2131 §2) and the options the server reads
// and writes (RFC 2132), nothing more: the router's binary carries no
// general DHCP library. Parse is strict (a message it returns encodes
// back to what it read, option by option) and never panics on any input.

// Ports of DHCPv4 (RFC 2131 §4.1).
const (
	ServerPort = 67
	ClientPort = 68
)

// Op codes (RFC 2131 §2).
const (
	OpRequest = 1 // BOOTREQUEST: client to server
	OpReply   = 2 // BOOTREPLY: server to client
)

// FlagBroadcast is the flags field's broadcast bit (RFC 2131 §2): the
// client cannot receive unicast before it has its address.
const FlagBroadcast = 0x8000

// MessageType is option 53 (RFC 2132 §9.6).
type MessageType uint8

// The message types the server knows.
const (
	Discover MessageType = 1
	Offer    MessageType = 2
	Request  MessageType = 3
	Decline  MessageType = 4
	Ack      MessageType = 5
	Nak      MessageType = 6
	Release  MessageType = 7
	Inform   MessageType = 8
)

func (t MessageType) String() string {
	names := [...]string{"", "DISCOVER", "OFFER", "REQUEST", "DECLINE", "ACK", "NAK", "RELEASE", "INFORM"}
	if int(t) < len(names) && t != 0 {
		return names[t]
	}
	return "MessageType(" + strconv.Itoa(int(t)) + ")"
}

// Option codes (RFC 2132; 61 is also RFC 6842's in replies).
const (
	OptPad          = 0
	OptSubnetMask   = 1
	OptRouter       = 3
	OptDNS          = 6
	OptHostname     = 12
	OptBroadcast    = 28
	OptRequestedIP  = 50
	OptLeaseTime    = 51
	OptOverload     = 52
	OptMessageType  = 53
	OptServerID     = 54
	OptParamRequest = 55
	OptMessage      = 56
	OptMaxSize      = 57
	OptRenewalTime  = 58
	OptRebindTime   = 59
	OptClientID     = 61
	OptEnd          = 255
)

// magic is the options field's cookie (RFC 2131 §3).
var magic = [4]byte{99, 130, 83, 99}

const (
	fixedLen = 236 // op .. file
	minLen   = fixedLen + len(magic)
	// bootpMin is the length a message is padded to: BOOTP relays and
	// clients may drop shorter ones (RFC 1542 §2.1).
	bootpMin = 300
)

// Option is one option, its instances concatenated (RFC 3396).
type Option struct {
	Code uint8
	Data []byte
}

// Message is a DHCPv4 message.
type Message struct {
	Op, HType, HLen, Hops uint8
	XID                   uint32
	Secs, Flags           uint16
	// The addresses: 0.0.0.0 when unset (Parse never leaves them invalid).
	CIAddr, YIAddr, SIAddr, GIAddr netip.Addr
	CHAddr                         [16]byte
	// Options in the order they first appear (option 53 first when
	// encoded), without pad, end and overload.
	Options []Option
}

// ErrMalformed wraps every reason Parse refuses a message.
var ErrMalformed = errors.New("dhcp4: malformed message")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Parse decodes a message: the fixed fields, the magic cookie and the
// options, including those option 52 moves into the file and sname fields.
// The options must end with option 255, followed by nothing but pad; those
// the server reads must have the lengths RFC 2132 gives them.
func Parse(b []byte) (*Message, error) {
	if len(b) < minLen {
		return nil, malformed("%d octets, fewer than %d", len(b), minLen)
	}
	m := &Message{Op: b[0], HType: b[1], HLen: b[2], Hops: b[3],
		XID: binary.BigEndian.Uint32(b[4:]), Secs: binary.BigEndian.Uint16(b[8:]), Flags: binary.BigEndian.Uint16(b[10:]),
		CIAddr: addr4(b[12:]), YIAddr: addr4(b[16:]), SIAddr: addr4(b[20:]), GIAddr: addr4(b[24:])}
	if m.Op != OpRequest && m.Op != OpReply {
		return nil, malformed("op %d", m.Op)
	}
	if m.HLen > 16 {
		return nil, malformed("hardware address length %d", m.HLen)
	}
	copy(m.CHAddr[:], b[28:44])
	if [4]byte(b[fixedLen:minLen]) != magic {
		return nil, malformed("no magic cookie")
	}
	var p optParser
	if err := p.parse(b[minLen:], "options"); err != nil {
		return nil, err
	}
	if over, ok := p.find(OptOverload); ok {
		if len(over) != 1 || over[0] < 1 || over[0] > 3 {
			return nil, malformed("option 52 of %d octets, value %v", len(over), over)
		}
		// The file field first, then sname (RFC 2131 §4.1).
		if over[0]&1 != 0 {
			if err := p.parse(b[108:236], "file"); err != nil {
				return nil, err
			}
		}
		if over[0]&2 != 0 {
			if err := p.parse(b[44:108], "sname"); err != nil {
				return nil, err
			}
		}
	}
	for _, o := range p.opts {
		if o.Code == OptOverload {
			continue
		}
		if err := checkOption(o); err != nil {
			return nil, err
		}
		m.Options = append(m.Options, o)
	}
	// Option 53 first, as Append writes it.
	if i := slices.IndexFunc(m.Options, func(o Option) bool { return o.Code == OptMessageType }); i > 0 {
		t := m.Options[i]
		copy(m.Options[1:i+1], m.Options[:i])
		m.Options[0] = t
	}
	return m, nil
}

type optParser struct{ opts []Option }

func (p *optParser) find(code uint8) ([]byte, bool) {
	for _, o := range p.opts {
		if o.Code == code {
			return o.Data, true
		}
	}
	return nil, false
}

// parse reads one options area: code, length, data up to option 255;
// several instances of a code are one option, concatenated (RFC 3396).
func (p *optParser) parse(b []byte, area string) error {
	for i := 0; ; {
		if i >= len(b) {
			return malformed("%s: no end option", area)
		}
		code := b[i]
		switch code {
		case OptPad:
			i++
			continue
		case OptEnd:
			for _, c := range b[i+1:] {
				if c != OptPad {
					return malformed("%s: octets other than pad after the end option", area)
				}
			}
			return nil
		}
		if i+2 > len(b) || i+2+int(b[i+1]) > len(b) {
			return malformed("%s: option %d runs past the end", area, code)
		}
		data := b[i+2 : i+2+int(b[i+1])]
		i += 2 + len(data)
		if j := slices.IndexFunc(p.opts, func(o Option) bool { return o.Code == code }); j >= 0 {
			p.opts[j].Data = append(p.opts[j].Data, data...)
			continue
		}
		p.opts = append(p.opts, Option{Code: code, Data: slices.Clone(data)})
	}
}

// checkOption checks the length (and for some the value) of an option the
// server reads or writes.
func checkOption(o Option) error {
	n := len(o.Data)
	bad := false
	switch o.Code {
	case OptMessageType:
		bad = n != 1 || o.Data[0] == 0
	case OptSubnetMask, OptBroadcast, OptRequestedIP, OptServerID, OptLeaseTime, OptRenewalTime, OptRebindTime:
		bad = n != 4
	case OptRouter, OptDNS:
		bad = n == 0 || n%4 != 0
	case OptHostname, OptParamRequest, OptMessage:
		bad = n == 0
	case OptMaxSize:
		bad = n != 2 || binary.BigEndian.Uint16(o.Data) < 576
	case OptClientID:
		bad = n < 2
	}
	if bad {
		return malformed("option %d of %d octets: %x", o.Code, n, o.Data)
	}
	return nil
}

func addr4(b []byte) netip.Addr { return netip.AddrFrom4([4]byte(b[:4])) }

// Append encodes m after b: the fixed fields (sname and file empty), the
// magic cookie, option 53 first and the others in order, each longer than
// 255 octets split in instances (RFC 3396), option 255, and pad up to 300
// octets. The addresses must be IPv4 or invalid (0.0.0.0).
func (m *Message) Append(b []byte) []byte {
	start := len(b)
	var h [fixedLen]byte
	h[0], h[1], h[2], h[3] = m.Op, m.HType, m.HLen, m.Hops
	binary.BigEndian.PutUint32(h[4:], m.XID)
	binary.BigEndian.PutUint16(h[8:], m.Secs)
	binary.BigEndian.PutUint16(h[10:], m.Flags)
	for i, a := range []netip.Addr{m.CIAddr, m.YIAddr, m.SIAddr, m.GIAddr} {
		if a.Is4() {
			v := a.As4()
			copy(h[12+4*i:], v[:])
		}
	}
	copy(h[28:44], m.CHAddr[:])
	b = append(append(b, h[:]...), magic[:]...)
	put := func(o Option) {
		d := o.Data
		for {
			n := min(len(d), 255)
			b = append(append(b, o.Code, byte(n)), d[:n]...)
			d = d[n:]
			if len(d) == 0 {
				return
			}
		}
	}
	for _, o := range m.Options {
		if o.Code == OptMessageType {
			put(o)
		}
	}
	for _, o := range m.Options {
		if o.Code != OptMessageType && o.Code != OptPad && o.Code != OptEnd && o.Code != OptOverload {
			put(o)
		}
	}
	b = append(b, OptEnd)
	for len(b)-start < bootpMin {
		b = append(b, OptPad)
	}
	return b
}

// Option returns the data of an option and whether the message has it.
func (m *Message) Option(code uint8) ([]byte, bool) {
	for _, o := range m.Options {
		if o.Code == code {
			return o.Data, true
		}
	}
	return nil, false
}

// Set replaces (or adds) an option.
func (m *Message) Set(code uint8, data []byte) {
	for i := range m.Options {
		if m.Options[i].Code == code {
			m.Options[i].Data = data
			return
		}
	}
	m.Options = append(m.Options, Option{Code: code, Data: data})
}

// Del removes an option.
func (m *Message) Del(code uint8) {
	m.Options = slices.DeleteFunc(m.Options, func(o Option) bool { return o.Code == code })
}

// Type is option 53; 0 for a BOOTP message, which has none.
func (m *Message) Type() MessageType {
	if d, ok := m.Option(OptMessageType); ok && len(d) == 1 {
		return MessageType(d[0])
	}
	return 0
}

// Addr is an option holding one IPv4 address (50, 54, 1, 28); invalid
// when absent.
func (m *Message) Addr(code uint8) netip.Addr {
	if d, ok := m.Option(code); ok && len(d) == 4 {
		return addr4(d)
	}
	return netip.Addr{}
}

// Addrs is an option holding IPv4 addresses (3, 6).
func (m *Message) Addrs(code uint8) []netip.Addr {
	d, _ := m.Option(code)
	var out []netip.Addr
	for ; len(d) >= 4; d = d[4:] {
		out = append(out, addr4(d))
	}
	return out
}

// Seconds is an option holding a time in seconds (51, 58, 59); 0 and false
// when absent.
func (m *Message) Seconds(code uint8) (uint32, bool) {
	if d, ok := m.Option(code); ok && len(d) == 4 {
		return binary.BigEndian.Uint32(d), true
	}
	return 0, false
}

// HardwareAddr is chaddr as long as hlen says.
func (m *Message) HardwareAddr() net.HardwareAddr {
	return net.HardwareAddr(slices.Clone(m.CHAddr[:m.HLen]))
}

// addrsData is the data of an option of addresses.
func addrsData(as ...netip.Addr) []byte {
	out := make([]byte, 0, 4*len(as))
	for _, a := range as {
		v := a.As4()
		out = append(out, v[:]...)
	}
	return out
}

func secondsData(s uint32) []byte { return binary.BigEndian.AppendUint32(nil, s) }

// NewReply is the answer of type t to req, with the fields RFC 2131's
// table 3 copies from a request (xid, flags, giaddr, chaddr; ciaddr in an
// ACK) and the client identifier (RFC 6842 §3).
func NewReply(req *Message, t MessageType) *Message {
	r := &Message{Op: OpReply, HType: req.HType, HLen: req.HLen, XID: req.XID, Flags: req.Flags, GIAddr: req.GIAddr, CHAddr: req.CHAddr,
		CIAddr: netip.IPv4Unspecified(), YIAddr: netip.IPv4Unspecified(), SIAddr: netip.IPv4Unspecified()}
	if t == Ack {
		r.CIAddr = req.CIAddr
	}
	r.Set(OptMessageType, []byte{byte(t)})
	if id, ok := req.Option(OptClientID); ok {
		r.Set(OptClientID, slices.Clone(id))
	}
	return r
}
