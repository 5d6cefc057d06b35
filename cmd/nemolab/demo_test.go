package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"nemod/internal/testenv"
	"nemod/lab"
	"nemod/lab/labtest"
)

// The README's first command must keep working: the demo runs to its end
// (it returns an error on any registration, de-registration or TCP
// failure along the way) with race-built daemons, and tells the story it
// promises.
func TestDemo(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTool(t, labtest.Tools...)
	testenv.NeedTool(t, "radvd")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := lab.Build(ctx, t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	out = &buf
	defer func() { out = os.Stdout }()
	err = demo([]string{"-nemod", bin})
	story := buf.String()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, story)
	}
	t.Logf("the demo's story:\n%s", story)
	for _, want := range []string{
		"Both uplinks are registered",
		"which sees it as [2001:db8:100::10]",
		"control  duplicate  1 2   udp dport 7001",
		"The TCP transfer opened before the first failure is still open",
		"the home agent holds no binding for car1 any more",
		"by DHCPv6 from its home agent's built-in server",
		"The LAN host configured itself from the router's advertisements",
		"and reaches the correspondent 2001:db8:c::1 from it through the tunnel",
	} {
		if !strings.Contains(story, want) {
			t.Errorf("the story lacks %q", want)
		}
	}
	// The duplicated flow loses nothing through both failures and returns.
	lost := regexp.MustCompile(`control, every 10 ms: +longest silence +\d+ ms, +(\d+) datagrams lost`).FindAllStringSubmatch(story, -1)
	if len(lost) != 4 {
		t.Fatalf("%d reports of the control flow, want 4", len(lost))
	}
	for i, m := range lost {
		if m[1] != "0" {
			t.Errorf("report %d: the duplicated control flow lost %s datagrams", i+1, m[1])
		}
	}
}
