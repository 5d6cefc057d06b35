package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The golden UCI corpus: inputs and what the real uci tool made of each
// (testdata/uci/README.md says how it was recorded).
const uciVectors = "testdata/uci"

type uciCase struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Input       string `json:"input"`
	Accepted    bool   `json:"accepted"`
	Export      *struct {
		File string `json:"file"`
	} `json:"export"`
	ExportN *struct {
		File string `json:"file"`
	} `json:"export_n"`
	Show *struct {
		File string `json:"file"`
	} `json:"show"`
	ShowX *struct {
		File string `json:"file"`
	} `json:"show_x"`
	Error *struct {
		File string `json:"file"`
	} `json:"error"`
}

func loadUCICases(t testing.TB) []uciCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(uciVectors, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []uciCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("index.json lists no cases")
	}
	return cases
}

func readVector(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(uciVectors, file))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestUCIVectors checks the parser and both renderings against what the
// real uci tool printed for every case of the corpus, byte for byte, and
// every rejected case against uci's reason, line and byte.
func TestUCIVectors(t *testing.T) {
	accepted, rejected := 0, 0
	for _, c := range loadUCICases(t) {
		t.Run(c.Name, func(t *testing.T) {
			input, err := os.ReadFile(filepath.Join(uciVectors, c.Input))
			if err != nil {
				t.Fatal(err)
			}
			pkg, err := ParseUCI(c.Name, input)
			if !c.Accepted {
				rejected++
				if c.Error == nil {
					t.Fatal("rejected case without an error file")
				}
				want := readVector(t, c.Error.File)
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("accepted, want\n%s", want)
				}
				got := "exit_code: 1\nuci: " + pe.UCIMessage() + "\n"
				if got != want {
					t.Errorf("error\n got %q\nwant %q", got, want)
				}
				if !strings.HasPrefix(pe.Error(), c.Name+":") {
					t.Errorf("Error() = %q does not start with the file name", pe.Error())
				}
				return
			}
			accepted++
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			for _, out := range []struct {
				what string
				file string
				got  string
			}{
				{"export", c.Export.File, pkg.Export(false)},
				{"export -n", c.ExportN.File, pkg.Export(true)},
				{"show", c.Show.File, pkg.Show(false)},
				{"show -X", c.ShowX.File, pkg.Show(true)},
			} {
				if want := readVector(t, out.file); out.got != want {
					t.Errorf("%s:\n got %q\nwant %q", out.what, out.got, want)
				}
			}
		})
	}
	if accepted == 0 || rejected == 0 {
		t.Errorf("corpus has %d accepted and %d rejected cases; expected both kinds", accepted, rejected)
	}
}

// TestUCIVectorsIndexed makes sure no input of the corpus escapes the table
// test because index.json forgot it.
func TestUCIVectorsIndexed(t *testing.T) {
	listed := make(map[string]bool)
	for _, c := range loadUCICases(t) {
		listed[c.Input] = true
	}
	inputs, err := filepath.Glob(filepath.Join(uciVectors, "*.uci"))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range inputs {
		if !listed[filepath.Base(in)] {
			t.Errorf("%s is not listed in index.json", in)
		}
	}
}

// TestUCISourceQuirks covers behaviour the corpus does not record, derived
// from reading libuci's parser (file.c): what it does with input a person
// rarely writes but a fuzzer or a broken editor produces.
func TestUCISourceQuirks(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		export   string // "" when an error is expected
		err      string // UCIMessage of the expected error
	}{
		{
			// After a ';' the rest of the line must be a statement; a
			// newline is not blank there because the keyword is split
			// off at spaces and tabs only.
			name: "semicolon at end of line",
			in:   "config t 'a';\n",
			err:  "Parse error (invalid command) at line 1, byte 13",
		},
		{
			name: "keyword ending the file",
			in:   "config t 'a'\nconfig",
			err:  "Parse error (config without name) at line 1, byte 0",
		},
		{
			// libuci counts only lines that end in a newline.
			name: "error on a last line without newline",
			in:   "config t 'a'\n\toption bad-name 'y'",
			err:  "Parse error (invalid character in name field) at line 1, byte 17",
		},
		{
			name:   "generated name reopens an anonymous section",
			in:     "config t\n\toption a '1'\nconfig t 'cfg01b619'\n\toption b '2'\n",
			export: "package q\n\nconfig t\n\toption a '1'\n\toption b '2'\n\n",
		},
		{
			// The ';' is overwritten by the end of a plain token ...
			name:   "semicolon after a plain token",
			in:     "config t 'a'\n\toption x foo;option y 'lost'\n\toption z 'kept'\n",
			export: "package q\n\nconfig t 'a'\n\toption x 'foo'\n\toption z 'kept'\n\n",
		},
		{
			// ... but not when an escape shifted the token's text.
			name:   "semicolon after an escaped token",
			in:     "config t 'a'\n\toption x fo\\o;option y 'kept'\n",
			export: "package q\n\nconfig t 'a'\n\toption x 'foo'\n\toption y 'kept'\n\n",
		},
		{
			// A continued token ends where the next line's indentation
			// begins; what follows is one argument too many.
			name: "continuation into an indented line",
			in:   "config t 'a'\n\toption x foo\\\n\tbar\n",
			err:  "Parse error (too many arguments) at line 3, byte 19",
		},
		{
			// fgets hands over the line, strlen stops at the NUL: the
			// rest of that line is lost and the next is glued on.
			name: "NUL byte inside a quoted value",
			in:   "config t 'a'\n\toption x 'a\x00b'\n\toption y 'z'\n",
			err:  "Parse error (EOF with unterminated ') at line 2, byte 26",
		},
		{
			name:   "line starting with a NUL byte",
			in:     "config t 'a'\n\x00option x 'y'\n\toption y 'z'\n",
			export: "package q\n\nconfig t 'a'\n\toption y 'z'\n\n",
		},
		{
			name:   "backslash CRLF continuation in double quotes",
			in:     "config t 'a'\n\toption b \"x\\\r\ny\"\n",
			export: "package q\n\nconfig t 'a'\n\toption b 'xy'\n\n",
		},
		{
			name: "package statement name is a name",
			in:   "package 'bad.name'\n",
			err:  "Parse error (invalid character in name field) at line 1, byte 19",
		},
		{
			name: "empty type",
			in:   "config '' 'x'\n",
			err:  "Parse error (insufficient arguments) at line 1, byte 10",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkg, err := ParseUCI("q", []byte(tc.in))
			if tc.err != "" {
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("err = %v, want %s", err, tc.err)
				}
				if pe.UCIMessage() != tc.err {
					t.Fatalf("error %q, want %q", pe.UCIMessage(), tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := pkg.Export(false); got != tc.export {
				t.Errorf("export\n got %q\nwant %q", got, tc.export)
			}
		})
	}
}

// TestUCILines checks the line numbers the configuration errors rely on:
// where a section starts, where an option was last set and where each list
// item came from, across comments, continuations, multi-line values and
// statements joined by ';'.
func TestUCILines(t *testing.T) {
	in := "# comment\n" + // 1
		"config t 'a'\n" + // 2
		"\toption x '1\n" + // 3
		"2'; option y 'z'\n" + // 4
		"\tlist l 'p'\n" + // 5
		"\toption w foo\\\n" + // 6
		"bar\n" + // 7
		"\n" + // 8
		"config u\n" + // 9
		"\toption y 'again'\n" + // 10
		"config t 'a'\n" + // 11
		"\tlist l 'q'\n" + // 12
		"\toption y 'last'\n" // 13
	pkg, err := ParseUCI("q", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(pkg.Sections) != 2 {
		t.Fatalf("%d sections, want 2", len(pkg.Sections))
	}
	a, u := pkg.Sections[0], pkg.Sections[1]
	if a.Line != 2 || u.Line != 9 {
		t.Errorf("section lines %d, %d; want 2, 9", a.Line, u.Line)
	}
	want := map[string]struct {
		line  int
		items []int
	}{
		"x": {3, []int{3}},
		"y": {13, []int{13}},
		"l": {12, []int{5, 12}},
		"w": {6, []int{6}},
	}
	for name, w := range want {
		o := a.Option(name)
		if o == nil {
			t.Errorf("option %s missing", name)
			continue
		}
		if o.Line != w.line || fmt.Sprint(o.ValueLines) != fmt.Sprint(w.items) {
			t.Errorf("option %s: line %d items %v; want %d %v", name, o.Line, o.ValueLines, w.line, w.items)
		}
	}
	if o := u.Option("y"); o == nil || o.Line != 10 {
		t.Errorf("option y of the anonymous section: %+v", o)
	}
	if got := pkg.ShowRef(1); got != "@u[0]" {
		t.Errorf("ShowRef = %q", got)
	}
	if pkg.Section("cfg02"+fmt.Sprintf("%04x", djbHash("u")%65536)) != u {
		t.Error("Section does not find the anonymous section by its generated name")
	}
}
