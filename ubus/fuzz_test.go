package ubus

import (
	"bytes"
	"testing"
)

// seedFrames adds every recorded message as a seed.
func seedFrames(f *testing.F) [][]byte {
	var out [][]byte
	for _, file := range allVectorFiles(f) {
		for _, fr := range file.Frames {
			out = append(out, fr.Bytes)
		}
	}
	return out
}

// FuzzParseMessage: the message decoder never panics, and whatever it
// accepts encodes back to the same bytes; the nested decoders never panic
// on what it accepted.
func FuzzParseMessage(f *testing.F) {
	for _, b := range seedFrames(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		if err != nil {
			return
		}
		out, err := m.Marshal()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("accepted %x, encodes to %x (%v)", b, out, err)
		}
		m.Data()
		m.Subscribers()
		if p, ok := m.Attr(AttrSignature); ok {
			ParseSignature(p)
		}
		if m.Type == MsgMonitor {
			parseMonitor(m)
		}
	})
}

// FuzzParseTable: the blobmsg decoder never panics, what it accepts
// encodes back to the same bytes, and formatting it never panics.
func FuzzParseTable(f *testing.F) {
	for _, b := range seedFrames(f) {
		if m, err := ParseMessage(b); err == nil {
			if p, ok := m.Attr(AttrData); ok {
				f.Add(p)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tab, err := ParseTable(b)
		if err != nil {
			return
		}
		out, err := EncodeTable(tab)
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("accepted %x, encodes to %x (%v)", b, out, err)
		}
		FormatJSON(tab, true)
		FormatJSON(tab, false)
	})
}

// FuzzParseJSON: the JSON reader never panics, and a table it returns
// encodes and decodes to itself.
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"b":[true,null,1.5,"x\u00e9"],"c":{"d":5000000000}}`,
		`{ "action": 0, "ip6prefix": [ "2001:db8:100::\/56" ] }`, `{"a":[[[[]]]]}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tab, err := ParseJSON(s)
		if err != nil {
			return
		}
		b, err := EncodeTable(tab)
		if err != nil {
			return // too large for a message
		}
		back, err := ParseTable(b)
		if err != nil || !Equal(back, tab) {
			t.Fatalf("%q: %v does not survive encoding (%v)", s, tab, err)
		}
	})
}
