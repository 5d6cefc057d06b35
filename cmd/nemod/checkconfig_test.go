package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every file of the malformed corpus is rejected with a non-zero exit and
// an error that names the file and the line of the mistake; the good
// examples pass.
func TestCheckConfigCorpus(t *testing.T) {
	bad, err := filepath.Glob("../../config/testdata/bad/*.uci")
	if err != nil || len(bad) < 20 {
		t.Fatalf("corpus: %d files, %v", len(bad), err)
	}
	for _, f := range bad {
		want, err := os.ReadFile(strings.TrimSuffix(f, ".uci") + ".want")
		if err != nil {
			t.Fatal(err)
		}
		var line, contains string
		for _, l := range strings.Split(string(want), "\n") {
			if v, ok := strings.CutPrefix(l, "line: "); ok {
				line = v
			}
			if v, ok := strings.CutPrefix(l, "contains: "); ok {
				contains = v
			}
		}
		var out, errb bytes.Buffer
		code := runCheckConfig([]string{"-c", f}, &out, &errb)
		msg := errb.String()
		if code != 1 || !strings.Contains(msg, f+":"+line+":") || !strings.Contains(msg, contains) {
			t.Errorf("%s: exit %d, stderr %q; want exit 1 with %q and %q", filepath.Base(f), code, msg, f+":"+line+":", contains)
		}
	}
	good, _ := filepath.Glob("../../config/testdata/good/*.uci")
	for _, f := range good {
		var out, errb bytes.Buffer
		if code := runCheckConfig([]string{"-c", f}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "ok: ") {
			t.Errorf("%s: exit %d: %s%s", f, code, out.String(), errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := runCheckConfig(nil, &out, &errb); code != 2 {
		t.Errorf("no -c: exit %d", code)
	}
}
