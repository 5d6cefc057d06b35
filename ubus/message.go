package ubus

import (
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
)

// MsgType is the type octet of the message header.
type MsgType uint8

// The message types, numbered as on the wire.
const (
	MsgHello        MsgType = 0  // ubusd's greeting; peer = the client's id
	MsgStatus       MsgType = 1  // final answer to a request
	MsgData         MsgType = 2  // data answering a request
	MsgPing         MsgType = 3  // answered by a DATA echo and STATUS 0
	MsgLookup       MsgType = 4  // find objects by path
	MsgInvoke       MsgType = 5  // call a method; also event and notification delivery
	MsgAddObject    MsgType = 6  // publish an object
	MsgRemoveObject MsgType = 7  // withdraw an object
	MsgSubscribe    MsgType = 8  // subscribe an object to another's notifications
	MsgUnsubscribe  MsgType = 9  // from ubusd: the target went away
	MsgNotify       MsgType = 10 // from an owner: notify subscribers; from ubusd: subscribers came or went
	MsgMonitor      MsgType = 11 // a copy of a message, for a monitor
)

var msgNames = [...]string{"HELLO", "STATUS", "DATA", "PING", "LOOKUP", "INVOKE", "ADD_OBJECT",
	"REMOVE_OBJECT", "SUBSCRIBE", "UNSUBSCRIBE", "NOTIFY", "MONITOR"}

func (t MsgType) String() string {
	if int(t) < len(msgNames) {
		return msgNames[t]
	}
	return "TYPE" + strconv.Itoa(int(t))
}

// AttrID is the id of a plain blob attribute inside a message container.
type AttrID uint8

// The message attributes, numbered as on the wire.
const (
	AttrStatus      AttrID = 1  // u32
	AttrObjPath     AttrID = 2  // string
	AttrObjID       AttrID = 3  // u32
	AttrMethod      AttrID = 4  // string
	AttrObjType     AttrID = 5  // u32
	AttrSignature   AttrID = 6  // nested blobmsg: one table per method
	AttrData        AttrID = 7  // nested blobmsg: the arguments or the reply
	AttrTarget      AttrID = 8  // u32
	AttrActive      AttrID = 9  // u8
	AttrNoReply     AttrID = 10 // u8
	AttrSubscribers AttrID = 11 // nested plain attributes (id 0), each a u32
	AttrUser        AttrID = 12 // string
	AttrGroup       AttrID = 13 // string
)

// The attributes of a MONITOR message's container, numbered as on the wire.
const (
	MonitorClient AttrID = 0 // u32: the client the message went to or came from
	MonitorPeer   AttrID = 1 // u32: the header peer of the observed message
	MonitorSend   AttrID = 2 // u8: 1 = ubusd sent it, 0 = ubusd received it
	MonitorSeq    AttrID = 3 // u32
	MonitorType   AttrID = 4 // u32: the observed message type
	MonitorData   AttrID = 5 // the observed message's attributes
)

// The objects ubusd itself provides.
const (
	ObjectEvents  = 1 // methods "register" and "send"
	ObjectACL     = 2
	ObjectMonitor = 3 // methods "add" and "remove"
	// SystemObjectMax: ids below it are never given to clients or objects.
	SystemObjectMax = 1024
)

// Status is the status code of a STATUS message. A non-OK Status is an
// error; errors.Is(err, StatusNotFound) works on what the client returns.
type Status uint32

// The status codes, numbered as on the wire.
const (
	StatusOK               Status = 0
	StatusInvalidCommand   Status = 1
	StatusInvalidArgument  Status = 2
	StatusMethodNotFound   Status = 3
	StatusNotFound         Status = 4
	StatusNoData           Status = 5
	StatusPermissionDenied Status = 6
	StatusTimeout          Status = 7
	StatusNotSupported     Status = 8
	StatusUnknownError     Status = 9
	StatusConnectionFailed Status = 10
	StatusNoMemory         Status = 11
	StatusParseError       Status = 12
	StatusSystemError      Status = 13
)

var statusNames = [...]string{"OK", "INVALID_COMMAND", "INVALID_ARGUMENT", "METHOD_NOT_FOUND",
	"NOT_FOUND", "NO_DATA", "PERMISSION_DENIED", "TIMEOUT", "NOT_SUPPORTED", "UNKNOWN_ERROR",
	"CONNECTION_FAILED", "NO_MEMORY", "PARSE_ERROR", "SYSTEM_ERROR"}

// The texts the ubus tool prints for the codes.
var statusTexts = [...]string{"Success", "Invalid command", "Invalid argument", "Method not found",
	"Not found", "No response", "Permission denied", "Request timed out", "Operation not supported",
	"Unknown error", "Connection failed", "Out of memory", "Parsing message data failed", "System error"}

// Name is the code's usual name, e.g. NOT_FOUND.
func (s Status) Name() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "STATUS_" + strconv.FormatUint(uint64(s), 10)
}

func (s Status) String() string { return s.Name() }

// Error is the text the ubus tool prints for the code, e.g. "Not found".
func (s Status) Error() string {
	if int(s) < len(statusTexts) {
		return "ubus: " + statusTexts[s]
	}
	return "ubus: Unknown error: " + strconv.FormatUint(uint64(s), 10)
}

// HeaderLen is the size of the message header.
const HeaderLen = 8

// Header is the fixed part of every message.
type Header struct {
	Version uint8 // always 0
	Type    MsgType
	Seq     uint16
	Peer    uint32
}

// Attr is one plain blob attribute of a message container, its payload
// without the padding.
type Attr struct {
	ID   AttrID
	Data []byte
}

// Message is a header and the attributes of its container, in wire order.
// Marshal writes them back in that order, so a parsed message re-encodes to
// the same bytes.
type Message struct {
	Header
	Attrs []Attr
}

// NewMessage starts a message; add attributes with the Put methods.
func NewMessage(t MsgType, seq uint16, peer uint32) *Message {
	return &Message{Header: Header{Type: t, Seq: seq, Peer: peer}}
}

// PutU32 appends a u32 attribute.
func (m *Message) PutU32(id AttrID, v uint32) *Message {
	m.Attrs = append(m.Attrs, Attr{id, binary.BigEndian.AppendUint32(nil, v)})
	return m
}

// PutU8 appends a one-byte attribute.
func (m *Message) PutU8(id AttrID, v uint8) *Message {
	m.Attrs = append(m.Attrs, Attr{id, []byte{v}})
	return m
}

// PutString appends a NUL-terminated string attribute.
func (m *Message) PutString(id AttrID, s string) *Message {
	m.Attrs = append(m.Attrs, Attr{id, append([]byte(s), 0)})
	return m
}

// PutRaw appends an attribute with the payload as given (nested attributes
// already encoded).
func (m *Message) PutRaw(id AttrID, payload []byte) *Message {
	m.Attrs = append(m.Attrs, Attr{id, payload})
	return m
}

// PutTable appends a nested blobmsg attribute (DATA, SIGNATURE) holding t.
func (m *Message) PutTable(id AttrID, t Table) error {
	b, err := EncodeTable(t)
	if err != nil {
		return err
	}
	if b == nil {
		b = []byte{}
	}
	m.PutRaw(id, b)
	return nil
}

// Attr returns the payload of the first attribute with this id.
func (m *Message) Attr(id AttrID) ([]byte, bool) {
	for _, a := range m.Attrs {
		if a.ID == id {
			return a.Data, true
		}
	}
	return nil, false
}

// U32 returns a u32 attribute; a payload of the wrong size counts as
// absent, as it does for ubusd.
func (m *Message) U32(id AttrID) (uint32, bool) {
	p, ok := m.Attr(id)
	if !ok || len(p) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(p), true
}

// U8 returns a one-byte attribute.
func (m *Message) U8(id AttrID) (uint8, bool) {
	p, ok := m.Attr(id)
	if !ok || len(p) != 1 {
		return 0, false
	}
	return p[0], true
}

// String returns a string attribute.
func (m *Message) String(id AttrID) (string, bool) {
	p, ok := m.Attr(id)
	if !ok {
		return "", false
	}
	return cString(p)
}

// Status returns the STATUS attribute.
func (m *Message) Status() (Status, bool) {
	v, ok := m.U32(AttrStatus)
	return Status(v), ok
}

// ObjID returns the OBJID attribute.
func (m *Message) ObjID() (uint32, bool) { return m.U32(AttrObjID) }

// Method returns the METHOD attribute.
func (m *Message) Method() (string, bool) { return m.String(AttrMethod) }

// Path returns the OBJPATH attribute.
func (m *Message) Path() (string, bool) { return m.String(AttrObjPath) }

// Data decodes the DATA attribute; a message without one gives an empty
// table and false.
func (m *Message) Data() (Table, bool, error) {
	p, ok := m.Attr(AttrData)
	if !ok {
		return Table{}, false, nil
	}
	t, err := ParseTable(p)
	return t, true, err
}

// Subscribers returns the object ids of a SUBSCRIBERS attribute.
func (m *Message) Subscribers() ([]uint32, error) {
	p, ok := m.Attr(AttrSubscribers)
	if !ok {
		return nil, nil
	}
	attrs, err := splitAttrs(p, 0, "SUBSCRIBERS")
	if err != nil {
		return nil, err
	}
	ids := make([]uint32, 0, len(attrs))
	for _, a := range attrs {
		if a.ext || a.id != 0 || len(a.payload) != 4 {
			return nil, &DecodeError{"SUBSCRIBERS", a.off, "entry is not a u32 with id 0"}
		}
		ids = append(ids, binary.BigEndian.Uint32(a.payload))
	}
	return ids, nil
}

// Len is the size Marshal gives.
func (m *Message) Len() int {
	n := HeaderLen + blobHdrLen
	for _, a := range m.Attrs {
		n += pad4(blobHdrLen + len(a.Data))
	}
	return n
}

// AppendTo appends the encoded message.
func (m *Message) AppendTo(b []byte) ([]byte, error) {
	if n := m.Len() - HeaderLen; n > MaxMessageLen {
		return b, fmt.Errorf("ubus: %s message of %d bytes is longer than %d", m.Type, n, MaxMessageLen)
	}
	b = append(b, m.Version, uint8(m.Type))
	b = binary.BigEndian.AppendUint16(b, m.Seq)
	b = binary.BigEndian.AppendUint32(b, m.Peer)
	b, s := beginAttr(b)
	for _, a := range m.Attrs {
		b = appendRawAttr(b, uint8(a.ID), a.Data)
	}
	return endAttr(b, s, 0, false), nil
}

// Marshal encodes the message.
func (m *Message) Marshal() ([]byte, error) {
	return m.AppendTo(make([]byte, 0, m.Len()))
}

// ParseMessage decodes exactly one message. It checks the header, the
// container and the layout of every attribute, and the sizes of the
// scalar attributes it knows; nested payloads (DATA, SIGNATURE) are decoded
// by the accessors, because ubusd passes them on untouched (libubus even
// sends plain attributes inside DATA to the monitor object).
func ParseMessage(b []byte) (*Message, error) {
	fail := func(off int, format string, a ...any) (*Message, error) {
		return nil, &DecodeError{"message", off, fmt.Sprintf(format, a...)}
	}
	if len(b) < HeaderLen+blobHdrLen {
		return fail(0, "%d bytes, shorter than a header and a container", len(b))
	}
	m := &Message{Header: Header{
		Version: b[0],
		Type:    MsgType(b[1]),
		Seq:     binary.BigEndian.Uint16(b[2:]),
		Peer:    binary.BigEndian.Uint32(b[4:]),
	}}
	if m.Version != 0 {
		return fail(0, "version %d", m.Version)
	}
	w := binary.BigEndian.Uint32(b[HeaderLen:])
	if w&^blobLenMask != 0 {
		return fail(HeaderLen, "container header 0x%08x has an id or the extended bit", w)
	}
	l := int(w & blobLenMask)
	if l < blobHdrLen {
		return fail(HeaderLen, "container length %d", l)
	}
	if l > MaxMessageLen {
		return fail(HeaderLen, "container length %d exceeds %d", l, MaxMessageLen)
	}
	if HeaderLen+l != len(b) {
		return fail(HeaderLen, "container length %d does not match the %d bytes after the header", l, len(b)-HeaderLen)
	}
	attrs, err := splitAttrs(b[HeaderLen+blobHdrLen:], HeaderLen+blobHdrLen, "message")
	if err != nil {
		return nil, err
	}
	m.Attrs = make([]Attr, 0, len(attrs))
	for _, a := range attrs {
		if a.ext {
			return fail(a.off, "message attribute with the extended bit")
		}
		if err := checkAttr(m.Type, a); err != nil {
			return nil, err
		}
		m.Attrs = append(m.Attrs, Attr{AttrID(a.id), a.payload})
	}
	return m, nil
}

func checkAttr(t MsgType, a attr) error {
	want := -1 // exact payload size; -1 none, -2 C string, -3 nested attributes
	if t == MsgMonitor {
		switch AttrID(a.id) {
		case MonitorClient, MonitorPeer, MonitorSeq, MonitorType:
			want = 4
		case MonitorSend:
			want = 1
		case MonitorData:
			want = -3
		}
	} else {
		switch AttrID(a.id) {
		case AttrStatus, AttrObjID, AttrObjType, AttrTarget:
			want = 4
		case AttrActive, AttrNoReply:
			want = 1
		case AttrObjPath, AttrMethod, AttrUser, AttrGroup:
			want = -2
		case AttrSignature, AttrData, AttrSubscribers:
			want = -3
		}
	}
	switch {
	case want >= 0 && len(a.payload) != want:
		return &DecodeError{"message", a.off, fmt.Sprintf("attribute %d has %d bytes, want %d", a.id, len(a.payload), want)}
	case want == -2:
		if _, ok := cString(a.payload); !ok {
			return &DecodeError{"message", a.off, fmt.Sprintf("attribute %d is not a NUL-terminated string", a.id)}
		}
	case want == -3:
		if _, err := splitAttrs(a.payload, a.off+blobHdrLen, "message"); err != nil {
			return err
		}
	}
	return nil
}

// FrameLen tells, from the first 12 bytes of a message, how long the whole
// message is.
func FrameLen(hdr []byte) (int, error) {
	if len(hdr) < HeaderLen+blobHdrLen {
		return 0, &DecodeError{"message", 0, "short header"}
	}
	w := binary.BigEndian.Uint32(hdr[HeaderLen:])
	l := int(w & blobLenMask)
	if l < blobHdrLen || l > MaxMessageLen {
		return 0, &DecodeError{"message", HeaderLen, fmt.Sprintf("container length %d", l)}
	}
	return HeaderLen + l, nil
}

// ReadFrame reads one message's bytes from a stream. A bad length is an
// error the stream cannot recover from: the caller drops the connection,
// as ubusd does.
func ReadFrame(r io.Reader) ([]byte, error) {
	var hdr [HeaderLen + blobHdrLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n, err := FrameLen(hdr[:])
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	copy(b, hdr[:])
	if _, err := io.ReadFull(r, b[len(hdr):]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}
