package nemo

// Helpers for checking our codec against independent implementations
// (tshark, scapy). Nothing here calls the package's own checksum or packet
// code, so a bug there cannot cancel itself out in these tests.

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Values of the independent-checker tests, kept apart from the other
// tests' fixtures so that those can change freely. testdata/scapy_build.py
// repeats the home and care-of addresses, HA, prefixes, key, NAI and time.
var (
	indHoA  = netip.MustParseAddr("2001:db8:1::100")
	indCoA  = netip.MustParseAddr("2001:db8:99::5")
	indCoA2 = netip.MustParseAddr("2001:db8:98::7")
	indHA   = netip.MustParseAddr("2001:db8:1::1")
	indHA2  = netip.MustParseAddr("2001:db8:2::1")
	indCoA4 = netip.MustParseAddr("198.51.100.7")
	indHA4  = netip.MustParseAddr("192.0.2.1")
	indHoA4 = netip.MustParseAddr("10.20.30.40")
	indMNP1 = netip.MustParsePrefix("2001:db8:100::/56")
	indMNP2 = netip.MustParsePrefix("2001:db8:200:80::/57")
	indMNHA = []byte("0123456789abcdef")
	indNAI  = "mr7@fleet.example"
	indTime = time.Date(2025, 3, 14, 15, 9, 26, 500_000_000, time.UTC)
)

// inetSum is the RFC 1071 Internet checksum of the concatenation of parts,
// written out naively on purpose (nemo has its own, optimised one).
func inetSum(parts ...[]byte) uint16 {
	var all []byte
	for _, p := range parts {
		all = append(all, p...)
	}
	if len(all)%2 == 1 {
		all = append(all, 0)
	}
	var s uint32
	for i := 0; i < len(all); i += 2 {
		s += uint32(all[i])<<8 | uint32(all[i+1])
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// pseudo6 is the RFC 8200 §8.1 upper-layer pseudo-header.
func pseudo6(src, dst netip.Addr, length int, next uint8) []byte {
	s, d := src.As16(), dst.As16()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(length))
	return append(b, 0, 0, 0, next)
}

// mhChecksum recomputes a Mobility Header checksum from scratch
// (RFC 6275 §6.1.1): pseudo-header with the home address as source when a
// Home Address option is present and the RH2 address as destination, the
// whole MH with its checksum field taken as zero.
func mhChecksum(src, dst netip.Addr, mh []byte) uint16 {
	c := append([]byte(nil), mh...)
	c[4], c[5] = 0, 0
	return inetSum(pseudo6(src, dst, len(c), 135), c)
}

// ipv6Header builds a fixed IPv6 header.
func ipv6Header(src, dst netip.Addr, next uint8, payloadLen int) []byte {
	b := []byte{0x60, 0, 0, 0, 0, 0, next, 64}
	binary.BigEndian.PutUint16(b[4:], uint16(payloadLen))
	s, d := src.As16(), dst.As16()
	b = append(b, s[:]...)
	return append(b, d[:]...)
}

// udpIn4 wraps payload in IPv4 and UDP with correct lengths and checksums.
func udpIn4(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	udp := udpHeader(sport, dport, payload)
	s, d := src.As4(), dst.As4()
	ph := append(append(s[:], d[:]...), 0, 17, 0, 0)
	binary.BigEndian.PutUint16(ph[10:], uint16(len(udp)))
	binary.BigEndian.PutUint16(udp[6:], nonZero(inetSum(ph, udp)))

	ip := []byte{0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 17, 0, 0}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
	ip = append(append(ip, s[:]...), d[:]...)
	binary.BigEndian.PutUint16(ip[10:], inetSum(ip))
	return append(ip, udp...)
}

// udpIn6 wraps payload in IPv6 and UDP (the checksum is mandatory here).
func udpIn6(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	udp := udpHeader(sport, dport, payload)
	binary.BigEndian.PutUint16(udp[6:], nonZero(inetSum(pseudo6(src, dst, len(udp), 17), udp)))
	return append(ipv6Header(src, dst, 17, len(udp)), udp...)
}

func udpHeader(sport, dport uint16, payload []byte) []byte {
	u := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(u, sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	return append(u, payload...)
}

// nonZero maps a computed UDP checksum of 0 to 0xffff (RFC 768).
func nonZero(c uint16) uint16 {
	if c == 0 {
		return 0xffff
	}
	return c
}

// writePcap writes packets as a classic pcap file with LINKTYPE_RAW (101):
// every record is a bare IPv4 or IPv6 packet.
func writePcap(w io.Writer, pkts [][]byte) error {
	var b bytes.Buffer
	le := binary.LittleEndian
	hdr := make([]byte, 24)
	le.PutUint32(hdr[0:], 0xa1b2c3d4)
	le.PutUint16(hdr[4:], 2)
	le.PutUint16(hdr[6:], 4)
	le.PutUint32(hdr[16:], 65535)
	le.PutUint32(hdr[20:], 101)
	b.Write(hdr)
	for i, p := range pkts {
		rec := make([]byte, 16)
		le.PutUint32(rec[0:], uint32(1700000000+i))
		le.PutUint32(rec[8:], uint32(len(p)))
		le.PutUint32(rec[12:], uint32(len(p)))
		b.Write(rec)
		b.Write(p)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// dissection is one packet of tshark's JSON output, flattened: every value
// under every key at any depth, in document order. Duplicate keys (tshark
// writes them unless --no-duplicate-keys is given) and arrays both just add
// values, so the walk does not depend on how tshark groups repeats.
type dissection struct {
	fields map[string][]string
	keys   []string // every object key, to search for labels such as "Malformed Packet"
	raw    json.RawMessage
}

// parseTsharkJSON splits the output of `tshark -T json` into packets.
func parseTsharkJSON(out []byte) ([]*dissection, error) {
	var pkts []json.RawMessage
	if err := json.Unmarshal(out, &pkts); err != nil {
		return nil, err
	}
	res := make([]*dissection, 0, len(pkts))
	for _, raw := range pkts {
		d := &dissection{fields: map[string][]string{}, raw: raw}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := d.walk(dec, ""); err != nil {
			return nil, err
		}
		res = append(res, d)
	}
	return res, nil
}

// walk consumes one JSON value; key is the object key it belongs to.
func (d *dissection) walk(dec *json.Decoder, key string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				k, _ := kt.(string)
				d.keys = append(d.keys, k)
				if err := d.walk(dec, k); err != nil {
					return err
				}
			}
		case '[':
			for dec.More() {
				if err := d.walk(dec, key); err != nil {
					return err
				}
			}
		}
		_, err := dec.Token() // the closing delimiter
		return err
	case string:
		d.fields[key] = append(d.fields[key], v)
	case json.Number:
		d.fields[key] = append(d.fields[key], v.String())
	case bool:
		d.fields[key] = append(d.fields[key], strconv.FormatBool(v))
	case nil:
		d.fields[key] = append(d.fields[key], "")
	}
	return nil
}

// String is the packet's JSON, indented, for failure messages.
func (d *dissection) String() string {
	var b bytes.Buffer
	if json.Indent(&b, d.raw, "", " ") != nil {
		return string(d.raw)
	}
	return b.String()
}

// reporter is the part of testing.TB the comparison helpers use, so that a
// unit test can check that they do report mismatches.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// want checks that field has exactly the values given, in order. Values
// compare tolerantly: numbers in any base tshark prints, booleans as
// 1/0/true/false, addresses in any notation, bytes with or without colons.
func want(t reporter, d *dissection, field string, values ...string) {
	t.Helper()
	got := d.fields[field]
	ok := len(got) == len(values)
	for i := 0; ok && i < len(got); i++ {
		ok = sameValue(got[i], values[i])
	}
	if !ok {
		t.Errorf("%s = %q, want %q", field, got, values)
	}
}

// wantContains checks that field has each of the values at least once.
func wantContains(t reporter, d *dissection, field string, values ...string) {
	t.Helper()
	for _, v := range values {
		found := false
		for _, g := range d.fields[field] {
			found = found || sameValue(g, v)
		}
		if !found {
			t.Errorf("%s = %q, want it to contain %q", field, d.fields[field], v)
		}
	}
}

// wantNum checks an integer field.
func wantNum[T ~uint8 | ~uint16 | ~uint32 | ~int](t reporter, d *dissection, field string, values ...T) {
	t.Helper()
	s := make([]string, len(values))
	for i, v := range values {
		s[i] = strconv.FormatUint(uint64(v), 10)
	}
	want(t, d, field, s...)
}

// wantFlag checks a boolean field.
func wantFlag(t reporter, d *dissection, field string, set bool) {
	t.Helper()
	v := "0"
	if set {
		v = "1"
	}
	want(t, d, field, v)
}

func sameValue(got, want string) bool {
	if got == want {
		return true
	}
	if g, ok := numValue(got); ok {
		w, ok := numValue(want)
		return ok && g == w
	}
	if g, err := netip.ParseAddr(got); err == nil {
		w, err := netip.ParseAddr(want)
		return err == nil && g == w
	}
	if g, ok := hexValue(got); ok {
		w, ok := hexValue(want)
		return ok && bytes.Equal(g, w)
	}
	return false
}

func numValue(s string) (uint64, bool) {
	switch strings.ToLower(s) {
	case "true":
		return 1, true
	case "false":
		return 0, true
	}
	v, err := strconv.ParseUint(s, 0, 64)
	return v, err == nil
}

func hexValue(s string) ([]byte, bool) {
	b, err := hex.DecodeString(strings.ReplaceAll(s, ":", ""))
	return b, err == nil
}

// expertErrors lists what tshark flagged as malformed, and its expert
// warnings and errors, in the packet. Notes ("IE data not dissected yet"
// for options 44 and 45) are not problems of the packet.
func (d *dissection) expertErrors() []string {
	var bad []string
	for _, k := range d.keys {
		if k == "_ws.malformed" || strings.Contains(k, "Malformed Packet") {
			bad = append(bad, k)
		}
	}
	msgs := d.fields["_ws.expert.message"]
	for i, sev := range d.fields["_ws.expert.severity"] {
		v, ok := numValue(sev)
		if !ok || v < 0x00600000 { // below PI_WARN
			continue
		}
		kind := "expert warning: "
		if v >= 0x00800000 { // PI_ERROR
			kind = "expert error: "
		}
		msg := fmt.Sprint(msgs)
		if len(msgs) == len(d.fields["_ws.expert.severity"]) {
			msg = msgs[i]
		}
		bad = append(bad, kind+msg)
	}
	return bad
}

// recorder is a reporter that only counts, for checking the helpers.
type recorder struct{ errs []string }

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// The walker must see values under duplicate keys and inside arrays, and
// the comparison must tolerate tshark's notations yet catch a difference.
func TestDissectionHelpers(t *testing.T) {
	const doc = `[{"_source":{"layers":{"ipv6":{"ipv6.src":"2001:db8::1"},
		"mip6":{"mip6.bi.bid":"1","Binding Identifier":{"mip6.bi.bid":"2"},"mip6.bi.bid":"3",
		"mip6.csum":"0x6fdd","mip6.bu.a_flag":"1","mip6.auth.auth_data":"0a:0b:0c",
		"mip6.mobility_opt":["44","45"],
		"x":{"_ws.expert":{"_ws.expert.severity":"4194304","_ws.expert.message":"note"}},
		"y":{"_ws.expert":{"_ws.expert.severity":"6291456","_ws.expert.message":"warn"}},
		"_ws.malformed":{"_ws.expert":{"_ws.expert.severity":"8388608","_ws.expert.message":"boom"}}}}}},
		{"_source":{"layers":{}}}]`
	ds, err := parseTsharkJSON([]byte(doc))
	if err != nil || len(ds) != 2 {
		t.Fatalf("%d packets, %v", len(ds), err)
	}
	d := ds[0]
	want(t, d, "mip6.bi.bid", "1", "2", "3")
	want(t, d, "mip6.csum", "28637")
	want(t, d, "ipv6.src", "2001:0db8:0:0::1")
	want(t, d, "mip6.auth.auth_data", "0a0b0c")
	wantFlag(t, d, "mip6.bu.a_flag", true)
	wantContains(t, d, "mip6.mobility_opt", "45", "44")
	if e := d.expertErrors(); strings.Join(e, "|") != "_ws.malformed|expert warning: warn|expert error: boom" {
		t.Errorf("expert errors %q, want the malformed key, the warning and the error", e)
	}
	if e := ds[1].expertErrors(); len(e) != 0 {
		t.Errorf("empty packet has errors %q", e)
	}

	var r recorder
	want(&r, d, "mip6.bi.bid", "1", "2")      // one missing
	want(&r, d, "mip6.bi.bid", "1", "2", "4") // one wrong
	want(&r, d, "mip6.csum", "0x6fde")
	want(&r, d, "ipv6.src", "2001:db8::2")
	want(&r, d, "mip6.auth.auth_data", "0a0b0d")
	wantFlag(&r, d, "mip6.bu.a_flag", false)
	wantContains(&r, d, "mip6.mobility_opt", "46")
	want(&r, d, "mip6.absent", "1")
	if len(r.errs) != 8 {
		t.Errorf("%d mismatches reported, want 8: %q", len(r.errs), r.errs)
	}
}
