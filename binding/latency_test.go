package binding

import (
	"net/netip"
	"testing"
	"time"

	"nemod/nemo"
)

// An accepted Binding Update's round trip is reported once, measured from
// its last transmission; a refused one reports nothing; a daemon that
// never asks keeps only the newest round trips.
func TestTakeAccepted(t *testing.T) {
	w := newWorld(t, routerConfig(), haConfig())
	w.hold = true
	w.up(0, wifiCoA, netip.Addr{})
	w.step()
	if len(w.held) != 1 {
		t.Fatalf("%d sends held", len(w.held))
	}
	w.now = w.now.Add(40 * time.Millisecond)
	w.hold = false
	w.deliver(w.held[0])
	w.held = nil
	if got := w.r.TakeAccepted(); len(got) != 1 || got[0] != 40*time.Millisecond {
		t.Fatalf("accepted round trips %v, want [40ms]", got)
	}
	if got := w.r.TakeAccepted(); len(got) != 0 {
		t.Fatalf("taken twice: %v", got)
	}

	rc := routerConfig()
	rc.Key = []byte("fedcba9876543210")
	w = newWorld(t, rc, haConfig())
	w.up(0, wifiCoA, netip.Addr{})
	w.step()
	if len(w.results) != 1 || w.results[0].Status != nemo.StatusAuthFailed {
		t.Fatalf("results %+v", w.results)
	}
	if got := w.r.TakeAccepted(); len(got) != 0 {
		t.Fatalf("a refusal counted as a registration: %v", got)
	}

	var r UpdateList
	for i := 1; i <= maxAccepts+10; i++ {
		r.noteAccepted(time.Duration(i))
	}
	got := r.TakeAccepted()
	if len(got) != maxAccepts || got[0] != 11 || got[maxAccepts-1] != maxAccepts+10 {
		t.Fatalf("kept %d round trips, %v first", len(got), got[0])
	}
}
