// Package labtest builds a lab for a test: it skips (or, under CI, fails)
// without root or the tools, and closes the lab when the test ends,
// keeping the lab's directory of logs and captures if the test failed.
package labtest

import (
	"context"
	"testing"
	"time"

	"nemod/internal/testenv"
	"nemod/lab"
)

// Tools lists the commands a lab needs; radvd only without NoRadvd.
var Tools = []string{"ip", "nft", "sysctl", "ping", "dumpcap", "tshark", "conntrack"}

// New returns a ready lab that is closed when the test and its subtests
// end. Progress goes to t.Logf unless opts.Logf is set.
func New(t testing.TB, opts lab.Options) *lab.Lab {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedTool(t, Tools...)
	if !opts.NoRadvd {
		testenv.NeedTool(t, "radvd")
	}
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := lab.New(ctx, opts)
	if err != nil {
		t.Fatalf("lab.New: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			l.KeepDir()
			t.Logf("lab %s failed: logs and captures kept in %s", l.Prefix(), l.Dir())
		}
		if err := l.Close(); err != nil {
			t.Errorf("lab.Close: %v", err)
		}
	})
	return l
}
