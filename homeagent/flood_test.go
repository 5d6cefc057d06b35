package homeagent_test

import (
	"strings"
	"testing"
	"time"

	"net/netip"

	"nemod/internal/forge"
	"nemod/internal/twoends"
	"nemod/lab"
	"nemod/nemo"
	"nemod/netio"
)

// TestForgeryFloodLeavesFewLogLines: 2000 Binding Updates signed with the
// wrong key, every one refused and counted, write at most a few lines to
// the home agent's log (a few per reason, then one summary with the
// counts), not one per refusal or per answer the rate limiter held back.
func TestForgeryFloodLeavesFewLogLines(t *testing.T) {
	e := twoends.New(t, "")
	e.Start()
	e.Registered()
	c := stranger(t, e)
	lines := func() int { return strings.Count(e.HALog.String(), "\n") }
	before, refused := lines(), e.HAStatus().Counters.Rejected["auth_failed"]
	const flood = 2000
	now := time.Now()
	b := netio.NewBatch(1, 2048)
	for i := 0; i < flood; i++ {
		bu := forge.BU{HoA: car2HoA, CoA: lab.CN6, SPI: 257, Key: []byte("not the key"), MNPs: []netip.Prefix{car2MNP},
			Seq: uint16(i), TS: now.Add(time.Duration(i) * time.Microsecond)}
		pkt, err := bu.Packet(ha)
		if err != nil {
			t.Fatal(err)
		}
		b.N[0] = copy(b.Bufs[0], pkt)
		b.Addr[0] = netip.AddrPortFrom(ha, nemo.UDPPort)
		if _, err := c.Send(b, 1); err != nil {
			t.Fatal(err)
		}
		if i%100 == 99 {
			// Paced, so that every forgery reaches the daemon and is
			// counted rather than dropped by a full socket.
			time.Sleep(5 * time.Millisecond)
		}
	}
	e.Eventually(10*time.Second, "every forgery refused", func() bool {
		return e.HAStatus().Counters.Rejected["auth_failed"]-refused >= flood
	})
	if n := lines() - before; n > 10 {
		written := strings.SplitAfterN(e.HALog.String(), "\n", before+12)
		t.Fatalf("%d forgeries wrote %d log lines, want at most 10; the first:\n%s", flood, n, strings.Join(written[before:len(written)-1], ""))
	}
}
