package ubus

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"nemod/ubus/ubusvec"
)

// TestJSONAgainstCLI holds our JSON conversion to the real ubus tool, both
// ways, on every recorded run of it:
//   - the JSON argument of `ubus call` and `ubus send`, parsed by ParseJSON
//     and encoded, must give exactly the DATA the tool sent;
//   - every reply the tool printed for `ubus call` must be what FormatJSON
//     (indented) makes of the DATA it received;
//   - every line `ubus listen` and `ubus subscribe` printed must be
//     `{ "name": ... }` around FormatJSON (compact) of what it received.
//
// An argument the tool could not parse must fail ParseJSON as well.
func TestJSONAgainstCLI(t *testing.T) {
	checked := map[string]int{}
	for _, f := range allVectorFiles(t) {
		c, ok := ubusvec.ParseCLI(f.Command)
		if !ok {
			continue
		}
		msgs := parseFrames(t, f)
		switch c.Verb {
		case "call", "send":
			var arg Table
			argIdx := 2
			if c.Verb == "send" {
				argIdx = 1
			}
			if len(c.Args) > argIdx {
				var err error
				arg, err = ParseJSON(c.Args[argIdx])
				if f.ExitCode != nil && *f.ExitCode == 244 {
					// The tool's "Parsing message data failed".
					if err == nil {
						t.Errorf("%s: %q parsed, the tool refused it", f.Name, c.Args[argIdx])
					}
					checked["parse error"]++
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", f.Name, err)
				}
			}
			want := arg
			if c.Verb == "send" {
				if arg == nil {
					arg = Table{}
				}
				want = Table{{"id", String(c.Args[0])}, {"data", arg}}
			}
			inv := lastInvoke(msgs)
			if inv == nil {
				if f.ExitCode == nil || *f.ExitCode != 4 {
					t.Errorf("%s: no INVOKE", f.Name)
				}
				continue
			}
			wb, _ := EncodeTable(want)
			got, _ := inv.Attr(AttrData)
			if !bytes.Equal(wb, got) {
				t.Errorf("%s: ParseJSON gives\n%x\nthe tool sent\n%x", f.Name, wb, got)
			}
			checked[c.Verb+" argument"]++
			if c.Verb == "call" {
				var out strings.Builder
				for _, m := range msgs {
					if !m.c2s && m.Type == MsgData && m.Seq == inv.Seq && m.Peer == inv.Peer {
						d, _, err := m.Data()
						if err != nil {
							t.Fatalf("%s: %v", f.Name, err)
						}
						out.WriteString(FormatJSON(d, true) + "\n")
					}
				}
				if out.String() != f.Stdout {
					t.Errorf("%s: FormatJSON gives\n%s\nthe tool printed\n%s", f.Name, out.String(), f.Stdout)
				}
				checked["call output"]++
			}
		case "listen", "subscribe":
			var out strings.Builder
			for _, m := range msgs {
				if m.c2s || m.Type != MsgInvoke {
					continue
				}
				name, _ := m.Method()
				d, _, err := m.Data()
				if err != nil {
					t.Fatalf("%s: %v", f.Name, err)
				}
				out.WriteString(`{ "` + name + `": ` + FormatJSON(d, false) + " }\n")
			}
			if out.String() != f.Stdout {
				t.Errorf("%s: FormatJSON gives\n%s\nthe tool printed\n%s", f.Name, out.String(), f.Stdout)
			}
			checked[c.Verb+" output"]++
		}
	}
	for what, min := range map[string]int{"call argument": 30, "call output": 30, "send argument": 4,
		"listen output": 3, "subscribe output": 5, "parse error": 1} {
		if checked[what] < min {
			t.Errorf("%s checked %d times, want at least %d", what, checked[what], min)
		}
	}
}

// dirMsg is a decoded recorded message and its direction.
type dirMsg struct {
	c2s bool
	*Message
}

// parseFrames decodes the frames of a file, in order.
func parseFrames(t testing.TB, f *ubusvec.File) []dirMsg {
	t.Helper()
	out := make([]dirMsg, len(f.Frames))
	for i, fr := range f.Frames {
		m, err := ParseMessage(fr.Bytes)
		if err != nil {
			t.Fatalf("%s frame %d: %v", f.Name, i+1, err)
		}
		out[i] = dirMsg{fr.C2S, m}
	}
	return out
}

// lastInvoke is the last call the program made.
func lastInvoke(msgs []dirMsg) *Message {
	var inv *Message
	for _, m := range msgs {
		if m.c2s && m.Type == MsgInvoke {
			inv = m.Message
		}
	}
	return inv
}

func TestFormatJSON(t *testing.T) {
	tab := Table{
		{"s", String("a\"b\\c\n\t\r\b\f\x01\x7f/é")},
		{"d", Double(3.25)},
		{"i16", Int16(-3)},
		{"b", Int8(2)},
		{"n", Null{}},
		{"e", Array{}},
		{"t", Table{{"x", Array{Int64(5000000000), Table{}}}}},
	}
	compact := `{"s":"a\"b\\c\n\t\r\b\u000c\u0001` + "\x7f/é" + `","d":3.250000,"i16":-3,"b":true,"n":null,"e":[],"t":{"x":[5000000000,{}]}}`
	if got := FormatJSON(tab, false); got != compact {
		t.Errorf("compact:\n%s\nwant\n%s", got, compact)
	}
	indented := "{\n\t\"d\": 3.250000,\n\t\"e\": [\n\t\t\n\t],\n\t\"t\": {\n\t\t\"x\": [\n\t\t\t5000000000,\n\t\t\t{\n\t\t\t\t\n\t\t\t}\n\t\t]\n\t}\n}"
	if got := FormatJSON(tab[1:2:2], true) + FormatJSON(nil, true); got != "{\n\t\"d\": 3.250000\n}{\n\t\n}" {
		t.Errorf("indented scalar: %q", got)
	}
	if got := FormatJSON(Table{tab[1], tab[5], tab[6]}, true); got != indented {
		t.Errorf("indented:\n%s\nwant\n%s", got, indented)
	}
	for d, want := range map[float64]string{math.NaN(): "nan", math.Inf(1): "inf", math.Inf(-1): "-inf", -0.5: "-0.500000", 1e20: "100000000000000000000.000000"} {
		if got := FormatValueJSON(Double(d), false); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
	}
}

func TestParseJSON(t *testing.T) {
	got, err := ParseJSON(` {"a":1,"b":-2147483648,"c":2147483648,"d":-2147483649,"e":1.5,"f":1e3,` +
		`"g":true,"h":false,"i":null,"j":"x\u00e9\ud83d\ude00\/","k":[],"l":{},"a":7} `)
	if err != nil {
		t.Fatal(err)
	}
	want := Table{{"a", Int32(7)}, {"b", Int32(math.MinInt32)}, {"c", Int64(2147483648)}, {"d", Int64(-2147483649)},
		{"e", Double(1.5)}, {"f", Double(1000)}, {"g", Int8(1)}, {"h", Int8(0)}, {"i", Null{}},
		{"j", String("xé😀/")}, {"k", Array{}}, {"l", Table{}}}
	if !Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	for _, bad := range []string{``, `[]`, `1`, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":01}`, `{"a":1}x`,
		`{"a":"\u0000"}`, `{"a":99999999999999999999}`, `{"":1}`, `{"a":[1,]}`, `{"a":tru}`, `{"a":"x` + "\x01" + `"}`,
		`{"a":"\q"}`, `{"a":1.}`, `{"a":-}`, `{"a":1e}`, strings.Repeat(`{"a":`, MaxDepth+1) + "1" + strings.Repeat("}", MaxDepth+1)} {
		_, err := ParseJSON(bad)
		var je *JSONError
		if !errors.As(err, &je) {
			t.Errorf("%q: %v, want a JSONError", bad, err)
		}
	}
}
