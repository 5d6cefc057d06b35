package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addSeeds adds every file matching the patterns to the fuzz corpus.
func addSeeds(f *testing.F, patterns ...string) {
	n := 0
	for _, pattern := range patterns {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
			n++
		}
	}
	if n == 0 {
		f.Fatalf("no seeds in %q", patterns)
	}
}

// exportable reports whether uci's export reads back as the same package.
// It does not for a section type holding one of the characters the export
// writes unquoted but the parser treats specially: uci writes the type
// without quotes, whatever it contains.
func exportable(p *Package) bool {
	for _, s := range p.Sections {
		if strings.ContainsAny(s.Type, `'"\#;`) {
			return false
		}
	}
	return true
}

// FuzzParseUCI: the parser never panics, every rejection is a *ParseError
// with sane position, and what an accepted file exports parses back to the
// same export.
func FuzzParseUCI(f *testing.F) {
	addSeeds(f, "testdata/uci/*.uci", "testdata/good/*.uci", "testdata/bad/*.uci")
	f.Fuzz(func(t *testing.T, data []byte) {
		pkg, err := ParseUCI("fuzz", data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if pe.Line < 0 || pe.Byte < 0 || pe.Reason == "" || pe.StmtLine < 1 {
				t.Fatalf("odd error position: %+v", pe)
			}
			return
		}
		out := pkg.Export(false)
		pkg.Export(true)
		pkg.Show(false)
		pkg.Show(true)
		// The decoder must hold up as well; key files are never there.
		parse("fuzz", data, memFiles(nil))
		if !exportable(pkg) {
			return
		}
		again, err := ParseUCI("fuzz", []byte(out))
		if err != nil {
			t.Fatalf("the export does not parse: %v\n%s", err, out)
		}
		if got := again.Export(false); got != out {
			t.Fatalf("export changed on the way back\nfirst  %q\nsecond %q", out, got)
		}
	})
}

// FuzzParse: decoding and validating never panics, whatever the input, and
// errors and warnings always carry the file name and a line.
func FuzzParse(f *testing.F) {
	addSeeds(f, "testdata/good/*.uci", "testdata/bad/*.uci", "testdata/uci/router_*.uci")
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := parse("fz", data, memFiles(map[string]string{"fz.key": "00112233445566778899aabbccddeeff"}))
		if err != nil {
			for _, e := range splitErrors(err) {
				if !strings.HasPrefix(e.Error(), "fz:") {
					t.Fatalf("error without file name: %v", e)
				}
			}
			return
		}
		if file.Router == nil && file.HomeAgent == nil {
			t.Fatal("accepted a file with neither role")
		}
		for _, w := range file.Warnings {
			if !strings.HasPrefix(w, "fz:") {
				t.Fatalf("warning without file name: %s", w)
			}
		}
	})
}
