package ubus

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"nemod/ubus/ubusvec"
)

// noteHeader is the decoded summary every recorded frame's note carries,
// e.g. "LOOKUP seq=1 peer=0x00000000 len=24": an independent reading of the
// header to check ours against.
var noteHeader = regexp.MustCompile(`\| (\w+) seq=(\d+) peer=0x([0-9a-f]{8}) len=(\d+)`)

// monitorQuirk reports whether the DATA of m holds plain attributes rather
// than blobmsg: libubus reuses its request buffer for the monitor object's
// add/remove calls.
func monitorQuirk(m *Message) bool {
	id, _ := m.ObjID()
	return m.Type == MsgInvoke && id == ObjectMonitor
}

// TestVectorsRoundTrip decodes every recorded message, checks the header
// against the recording's own summary, decodes every nested payload and
// encodes everything again: the bytes must come back identical.
func TestVectorsRoundTrip(t *testing.T) {
	n := 0
	for _, f := range allVectorFiles(t) {
		for i, fr := range f.Frames {
			where := fmt.Sprintf("%s frame %d", f.Name, i+1)
			m, err := ParseMessage(fr.Bytes)
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			checkNoteHeader(t, where, fr.Note, m, len(fr.Bytes))
			out, err := m.Marshal()
			if err != nil || !bytes.Equal(out, fr.Bytes) {
				t.Fatalf("%s: re-encoded\n%x\nwant\n%x (%v)", where, out, fr.Bytes, err)
			}
			checkNested(t, where, m)
			n++
		}
	}
	if n < 1000 {
		t.Fatalf("only %d frames checked", n)
	}
}

func checkNoteHeader(t *testing.T, where, note string, m *Message, n int) {
	t.Helper()
	sm := noteHeader.FindStringSubmatch(note)
	if sm == nil {
		t.Fatalf("%s: note without a header summary: %q", where, note)
	}
	name := m.Type.String()
	if m.Type > MsgMonitor {
		name = "TYPE" + strconv.Itoa(int(m.Type))
	}
	seq, _ := strconv.Atoi(sm[2])
	peer, _ := strconv.ParseUint(sm[3], 16, 32)
	l, _ := strconv.Atoi(sm[4])
	if sm[1] != name || seq != int(m.Seq) || uint32(peer) != m.Peer || l != n {
		t.Fatalf("%s: decoded %s seq=%d peer=%#08x len=%d, the recording says %q", where, name, m.Seq, m.Peer, n, sm[0])
	}
}

func checkNested(t *testing.T, where string, m *Message) {
	t.Helper()
	if m.Type == MsgMonitor {
		p, ok := m.Attr(MonitorData)
		if !ok {
			t.Fatalf("%s: MONITOR without DATA", where)
		}
		typ, _ := m.U32(MonitorType)
		inner := &Message{Header: Header{Type: MsgType(typ)}}
		attrs, err := splitAttrs(p, 0, "monitored")
		if err != nil {
			t.Fatalf("%s: monitored message: %v", where, err)
		}
		for _, a := range attrs {
			inner.Attrs = append(inner.Attrs, Attr{AttrID(a.id), a.payload})
		}
		checkNested(t, where+" (monitored)", inner)
		return
	}
	if p, ok := m.Attr(AttrData); ok && !monitorQuirk(m) {
		tab, err := ParseTable(p)
		if err != nil {
			t.Fatalf("%s: DATA: %v", where, err)
		}
		b, err := EncodeTable(tab)
		if err != nil || !bytes.Equal(b, p) {
			t.Fatalf("%s: DATA re-encoded\n%x\nwant\n%x (%v)", where, b, p, err)
		}
	}
	if p, ok := m.Attr(AttrSignature); ok {
		sig, err := ParseSignature(p)
		if err != nil {
			t.Fatalf("%s: SIGNATURE: %v", where, err)
		}
		b, err := sig.Encode()
		if err != nil || !bytes.Equal(b, p) {
			t.Fatalf("%s: SIGNATURE re-encoded\n%x\nwant\n%x (%v)", where, b, p, err)
		}
	}
	if _, err := m.Subscribers(); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "|", "", "\n", "").Replace(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWorkedBytes encodes the examples worked out byte by byte in the
// research notes and the vectors' README.
func TestWorkedBytes(t *testing.T) {
	for _, c := range []struct {
		name string
		v    Value
		want string
	}{
		{"id", Int32(1), "85 00 00 10 | 00 02 69 64 00 00 00 00 | 00 00 00 01"},
		{"msg", String("hi"), "83 00 00 0f | 00 03 6d 73 67 00 00 00 | 68 69 00 00"},
		{"flag", Bool(true), "87 00 00 0d | 00 04 66 6c 61 67 00 00 | 01 00 00 00"},
		{"e", Table{}, "82 00 00 08 | 00 01 65 00"},
		{"e", Null{}, "80 00 00 08 | 00 01 65 00"},
	} {
		got, err := AppendValue(nil, c.name, c.v)
		if err != nil || !bytes.Equal(got, unhex(t, c.want)) {
			t.Errorf("%s=%v: %x, want %s (%v)", c.name, c.v, got, c.want, err)
		}
	}
	m := NewMessage(MsgLookup, 1, 0).PutString(AttrObjPath, "test")
	got, _ := m.Marshal()
	if want := unhex(t, "00 04 00 01 00 00 00 00 | 00 00 00 10 | 02 00 00 09 74 65 73 74 00 00 00 00"); !bytes.Equal(got, want) {
		t.Errorf("LOOKUP test: %x, want %x", got, want)
	}
}

// TestTypesRoundTrip encodes one value of every type, decodes and compares,
// including the edges of each integer range and doubles' special values.
func TestTypesRoundTrip(t *testing.T) {
	tab := Table{
		{"null", Null{}},
		{"s", String("")},
		{"s2", String("\u00e9\t\"x\"")},
		{"i64", Int64(math.MinInt64)},
		{"i64b", Int64(math.MaxInt64)},
		{"i32", Int32(math.MinInt32)},
		{"i16", Int16(-2)},
		{"i8", Int8(-1)},
		{"d", Double(math.Copysign(0, -1))},
		{"nan", Double(math.NaN())},
		{"inf", Double(math.Inf(-1))},
		{"a", Array{Int32(1), Array{}, Table{}, Null{}}},
		{"t", Table{{"x", Table{{"y", Array{String("z")}}}}}},
		{"dup", Int32(1)},
		{"dup", Int32(2)},
		{strings.Repeat("n", 300), Int8(2)},
	}
	b, err := EncodeTable(tab)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseTable(b)
	if err != nil {
		t.Fatal(err)
	}
	if !Equal(back, tab) {
		t.Fatalf("round trip changed the table:\n%v\n%v", back, tab)
	}
}

// TestDecodeErrors feeds malformed blobmsg and messages: each gives an
// error wrapping ErrMalformed with the offset of the fault, never a panic.
func TestDecodeErrors(t *testing.T) {
	good := unhex(t, "85 00 00 10 00 02 69 64 00 00 00 00 00 00 00 01")
	mod := func(off int, v byte) []byte {
		b := bytes.Clone(good)
		b[off] = v
		return b
	}
	for _, c := range []struct {
		name string
		b    []byte
		off  int
	}{
		{"truncated header", good[:3], 0},
		{"length below header", mod(3, 2), 0},
		{"length past end", mod(3, 0x20), 0},
		{"plain attribute", mod(0, 0x05), 0},
		{"unknown type", mod(0, 0x89), 0},
		{"int32 too short", append(unhex(t, "85 00 00 0f 00 02 69 64 00 00 00 00 00 00 01"), 0), 12},
		{"name unterminated", mod(8, 'x'), 8},
		{"name padding", mod(9, 1), 9},
		{"name runs past", mod(5, 0x40), 4},
		{"missing padding", unhex(t, "83 00 00 0e 00 02 69 64 00 00 00 00 68 00"), 14},
		{"non-zero padding", unhex(t, "83 00 00 0e 00 02 69 64 00 00 00 00 68 00 00 07"), 15},
		{"string without NUL", unhex(t, "83 00 00 0d 00 02 69 64 00 00 00 00 68 00 00 00"), 12},
		{"NUL in string", unhex(t, "83 00 00 0f 00 02 69 64 00 00 00 00 68 00 68 00"), 12},
		{"unnamed member", unhex(t, "85 00 00 0c 00 00 00 00 00 00 00 01"), 0},
		{"unspec with payload", unhex(t, "80 00 00 0c 00 01 65 00 00 00 00 01"), 8},
	} {
		_, err := ParseTable(c.b)
		var de *DecodeError
		if !errors.As(err, &de) || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want a DecodeError", c.name, err)
			continue
		}
		if de.Off != c.off {
			t.Errorf("%s: offset %d, want %d (%v)", c.name, de.Off, c.off, err)
		}
	}
	// An array element must not have a name.
	named := unhex(t, "81 00 00 18 00 01 61 00 | 85 00 00 10 00 02 69 64 00 00 00 00 00 00 00 01")
	if _, err := ParseTable(named); err == nil {
		t.Error("named array element accepted")
	}
	// Nesting beyond MaxDepth.
	v := Value(Table{})
	for range MaxDepth + 1 {
		v = Table{{"t", v}}
	}
	if _, err := EncodeTable(v.(Table)); err == nil {
		t.Error("encoder accepted nesting beyond MaxDepth")
	}
	var deep []byte
	for i := 0; i <= MaxDepth; i++ {
		hdr := binary.BigEndian.AppendUint32(nil, 0x82000000|uint32(8+len(deep)))
		deep = append(append(hdr, 0, 1, 't', 0), deep...)
	}
	if _, err := ParseTable(deep); err == nil || !errors.Is(err, ErrMalformed) {
		t.Errorf("decoder accepted nesting beyond MaxDepth: %v", err)
	}

	for _, c := range []struct {
		name string
		hex  string
	}{
		{"short", "00 04 00 01 00 00 00 00 00 00"},
		{"version", "01 04 00 01 00 00 00 00 00 00 00 04"},
		{"container id", "00 04 00 01 00 00 00 00 01 00 00 04"},
		{"container extended", "00 04 00 01 00 00 00 00 80 00 00 04"},
		{"container length", "00 04 00 01 00 00 00 00 00 00 00 08"},
		{"trailing bytes", "00 04 00 01 00 00 00 00 00 00 00 04 00 00 00 00"},
		{"status size", "00 01 00 01 00 00 00 00 00 00 00 0a 01 00 00 06 00 00 00 00"},
		{"path unterminated", "00 04 00 01 00 00 00 00 00 00 00 0c 02 00 00 08 74 65 73 74"},
		{"bad nested", "00 05 00 01 00 00 00 00 00 00 00 0c 07 00 00 08 00 00 00 02"},
		{"extended attribute", "00 05 00 01 00 00 00 00 00 00 00 0c 87 00 00 08 00 00 00 00"},
	} {
		if _, err := ParseMessage(unhex(t, c.hex)); err == nil || !errors.Is(err, ErrMalformed) {
			t.Errorf("message %s: %v, want an error", c.name, err)
		}
	}
}

// TestEncodeErrors: values the wire cannot carry are refused.
func TestEncodeErrors(t *testing.T) {
	for _, tab := range []Table{
		{{"", Int32(1)}},
		{{"a\x00b", Int32(1)}},
		{{"s", String("a\x00b")}},
		{{"nil", nil}},
		{{strings.Repeat("x", 70000), Null{}}},
		{{"a", Array{nil}}},
	} {
		if _, err := EncodeTable(tab); err == nil {
			t.Errorf("%q encoded", tab)
		}
	}
	m := NewMessage(MsgInvoke, 1, 1).PutRaw(AttrData, make([]byte, MaxMessageLen))
	if _, err := m.Marshal(); err == nil {
		t.Error("message over MaxMessageLen encoded")
	}
}

// TestVectorFiles: the copies are complete (a guard against a truncated
// copy making every replay test pass vacuously).
func TestVectorFiles(t *testing.T) {
	u, n := loadVectors(t)
	if got := len(ubusvec.Files(u)); got != 44 {
		t.Errorf("%d ubus transcripts, want 44", got)
	}
	if got := len(ubusvec.Files(n)); got != 52 {
		t.Errorf("%d netifd transcripts, want 52", got)
	}
}
