package router_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"nemod/control"
	"nemod/internal/netsim"
	"nemod/internal/twoends"
	"nemod/status"
)

// TestRevokedBindingHeldOffUntilReload: a binding the home agent revokes
// is no longer used (the LAN's traffic moves to the other one at once),
// stays unregistered during the holdoff, and a reload registers it again.
func TestRevokedBindingHeldOffUntilReload(t *testing.T) {
	e := twoends.New(t, "")
	e.Start()
	e.Registered()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var r status.Revocation
	if err := control.Do(ctx, e.HASock, "revoke", map[string]any{"target": "car1@fleet", "bids": []uint16{1}}, &r); err != nil || !r.Answered {
		t.Fatalf("revoke: %+v %v", r, err)
	}
	if got := e.States(); got != "wifi=revoked/udp6 cell=registered/udp4" {
		t.Fatalf("after the revocation: %s", got)
	}
	s := e.MRStatus()
	if s.Revocation.Taken != 1 || len(s.Revocation.Revoked) != 1 || s.Revocation.Revoked[0] != 1 || s.Revocation.AllRevoked {
		t.Fatalf("revocation status %+v", s.Revocation)
	}
	up := netsim.UDP6(twoends.LANHost, twoends.CN, 4000, 7, 64, 'v')
	e.MRTUN().Inject(up)
	if !e.HATUN().Expect(up) {
		t.Fatal("LAN packet lost after the revocation")
	}
	if b := e.MRStatus().Bindings; b[0].TxPackets != 0 || b[1].TxPackets != 1 {
		t.Fatalf("bindings' counters: %+v", b)
	}
	// Held off (60 s by default): still revoked a while later.
	time.Sleep(1500 * time.Millisecond)
	if got := e.States(); got != "wifi=revoked/udp6 cell=registered/udp4" {
		t.Fatalf("within the holdoff: %s", got)
	}
	e.MRSignals <- syscall.SIGHUP
	e.Registered()
	if s := e.MRStatus(); len(s.Revocation.Revoked) != 0 || s.Revocation.HoldoffUntil != "" {
		t.Fatalf("after the reload: %+v", s.Revocation)
	}
}
