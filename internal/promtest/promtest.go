// Package promtest reads Prometheus scrapes back and has promtool check
// them, for the tests of package metrics and of the daemons.
package promtest

import (
	"bytes"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"nemod/internal/testenv"
)

// Parse reads a scrape back: every sample by its name and its labels,
// sorted, as name{label=value,...} (values unescaped, unquoted).
func Parse(t testing.TB, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, rest := line, ""
		var labels []string
		if i := strings.IndexByte(line, '{'); i >= 0 {
			name, rest = line[:i], line[i+1:]
			for !strings.HasPrefix(rest, "}") {
				eq := strings.Index(rest, `="`)
				ln := rest[:eq]
				rest = rest[eq+2:]
				var v strings.Builder
				for rest[0] != '"' {
					if rest[0] == '\\' {
						v.WriteByte(map[byte]byte{'\\': '\\', 'n': '\n', '"': '"'}[rest[1]])
						rest = rest[2:]
						continue
					}
					v.WriteByte(rest[0])
					rest = rest[1:]
				}
				labels = append(labels, ln+"="+v.String())
				rest = strings.TrimPrefix(rest[1:], ",")
			}
			rest = rest[1:]
		} else {
			name, rest, _ = strings.Cut(line, " ")
			rest = " " + rest
		}
		val, err := strconv.ParseFloat(strings.TrimPrefix(rest, " "), 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		slices.Sort(labels)
		key := name + "{" + strings.Join(labels, ",") + "}"
		if _, dup := out[key]; dup {
			t.Fatalf("sample %s twice", key)
		}
		out[key] = val
	}
	return out
}

// Check has promtool, Prometheus's own checker, read the scrape: format,
// naming and units conventions; it fails the test on a complaint.
func Check(t testing.TB, text string) {
	t.Helper()
	bin := testenv.NeedTool(t, "promtool")
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s\nscrape:\n%s", err, out.String(), text)
	}
}

// Expect fails the test for each sample of want that got lacks or has
// another value of.
func Expect(t testing.TB, got map[string]float64, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("no sample %s", k)
		} else if g != v {
			t.Errorf("%s = %v, want %v", k, g, v)
		}
	}
}
