package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"nemod/config"
	"nemod/policy"
	"nemod/setup"
)

// badCorpus is every file a daemon must refuse: config.Load's mistakes,
// and files config.Load accepts but the router's setup refuses.
func badCorpus(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"../../config/testdata/bad/*.uci", "../../setup/testdata/bad/*.uci"} {
		f, err := filepath.Glob(pattern)
		if err != nil || len(f) < 5 {
			t.Fatalf("%s: %d files, %v", pattern, len(f), err)
		}
		files = append(files, f...)
	}
	return files
}

// Every file of the malformed corpus is rejected with a non-zero exit and
// an error that names the file and the line of the mistake; the good
// examples pass.
func TestCheckConfigCorpus(t *testing.T) {
	for _, f := range badCorpus(t) {
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

// generated writes the corpus files too big or too mixed to keep: one rule
// more than can be numbered, and a file of both roles whose router part
// the router refuses.
func generated(t *testing.T) []string {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("config router 'main'\n\toption home_agent '2001:db8:ffff::1'\n\toption home_address '2001:db8:ffff:1::100'\n" +
		"\toption spi '256'\n\toption key '00112233445566778899aabbccddeeff'\n" +
		"config uplink 'wifi'\n\toption device 'wlan0'\n\toption bid '1'\nconfig policy 'p'\n\tlist use 'wifi'\n")
	for i := 0; i <= policy.MaxRules; i++ {
		fmt.Fprintf(&b, "config rule 'r%d'\n\toption dscp '%d'\n\toption policy 'p'\n", i, i%64)
	}
	many := filepath.Join(dir, "too_many_rules.uci")
	r, err1 := os.ReadFile("../../config/testdata/good/router.uci")
	h, err2 := os.ReadFile("../../config/testdata/good/homeagent.uci")
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	both := filepath.Join(dir, "both_roles_ipv4_rule.uci")
	mixed := string(h) + strings.Replace(string(r), "'2001:db8:5::/48'", "'192.0.2.0/24'", 1)
	for path, data := range map[string]string{many: b.String(), both: mixed} {
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return []string{many, both}
}

var fileLine = regexp.MustCompile(`^[^:]+:[0-9]+: `)

// check-config and the daemons agree on every file of the corpus: the
// daemon of each role the file configures starts from it exactly when
// check-config accepts it, and when not, check-config's first error line
// is the daemon's, at the file and line of the mistake.
func TestCheckConfigAgreesWithDaemons(t *testing.T) {
	good, _ := filepath.Glob("../../config/testdata/good/*.uci")
	bad := append(badCorpus(t), generated(t)...)
	files := append(bad, good...)
	refused := 0
	for _, path := range files {
		// What the daemons do: each role's daemon on the file, if the file
		// configures that role (one that does not, neither does check-config
		// run it for).
		var daemonErr error
		f, err := config.Load(path)
		switch {
		case err != nil:
			_, daemonErr = setup.Router(path)
			if _, herr := setup.HomeAgent(path); firstLine(herr) != firstLine(daemonErr) {
				t.Errorf("%s: the two daemons disagree: %v / %v", path, daemonErr, herr)
			}
		default:
			if f.Router != nil {
				_, daemonErr = setup.Router(path)
			}
			if f.HomeAgent != nil && daemonErr == nil {
				_, daemonErr = setup.HomeAgent(path)
			}
		}
		var out, errb bytes.Buffer
		code := runCheckConfig([]string{"-c", path}, &out, &errb)
		name := filepath.Base(path)
		switch {
		case daemonErr == nil && code != 0:
			t.Errorf("%s: the daemon starts, check-config exits %d: %s", name, code, errb.String())
		case daemonErr != nil && code != 1:
			t.Errorf("%s: the daemon refuses it (%v), check-config exits %d", name, daemonErr, code)
		case daemonErr != nil:
			refused++
			got, want := firstLine(fmt.Errorf("%s", strings.TrimSuffix(errb.String(), "\n"))), firstLine(daemonErr)
			if got != want || !strings.HasPrefix(got, path+":") || !fileLine.MatchString(got) {
				t.Errorf("%s: check-config says %q, the daemon %q; want the same PATH:LINE: error", name, got, want)
			}
		}
	}
	if refused != len(bad) {
		t.Errorf("%d files refused, want the %d of the bad corpus", refused, len(bad))
	}
}

func firstLine(err error) string {
	if err == nil {
		return ""
	}
	l, _, _ := strings.Cut(err.Error(), "\n")
	return l
}
