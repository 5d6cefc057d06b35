package netifd

import (
	"testing"
)

func iface(name string, up bool, l3 string) Interface {
	return Interface{Name: name, Up: up, L3Device: l3, Available: true}
}

func next(t *testing.T, tr *Tracker) Change {
	t.Helper()
	ch, ok := tr.Next()
	if !ok {
		t.Fatal("no change")
	}
	return ch
}

// TestTrackerCoalesces: changes come one per interface, in the order the
// interfaces changed; later reports of an interface with a change waiting
// move its new side; a report that brings an interface back to what was
// last reported cancels its change; Sync drops interfaces it does not list.
func TestTrackerCoalesces(t *testing.T) {
	tr := NewTracker()
	tr.Sync([]Interface{iface("lan", true, "lan0"), iface("wan", true, "wan0"), iface("nemo", false, "")})
	for _, name := range []string{"lan", "wan", "nemo"} {
		if ch := next(t, tr); ch.Name != name || ch.Old != nil || ch.New == nil || ch.New.Name != name {
			t.Fatalf("%+v, want %s appearing", ch, name)
		}
	}
	if _, ok := tr.Next(); ok || tr.Pending() != 0 {
		t.Fatal("a change too many")
	}

	// nemo comes up, wan goes down, nemo goes down (back to what was
	// reported: its change is cancelled, so wan's is first now) and comes
	// up with another device: one change each.
	tr.Set(iface("nemo", true, "nemo0"))
	tr.Set(iface("wan", false, ""))
	tr.Set(iface("nemo", false, ""))
	tr.Set(iface("nemo", true, "tun0"))
	if tr.Pending() != 2 {
		t.Fatalf("%d pending", tr.Pending())
	}
	if ch := next(t, tr); ch.Name != "wan" || !ch.Old.Up || ch.New.Up {
		t.Errorf("%+v", ch)
	}
	if ch := next(t, tr); ch.Name != "nemo" || ch.Old.Up || !ch.New.Up || ch.New.L3Device != "tun0" {
		t.Errorf("%+v", ch)
	}
	// wan goes down and back up before anyone looks: nothing to tell.
	tr.Set(iface("wan", true, "wan0"))
	tr.Set(iface("wan", false, ""))
	if tr.Pending() != 0 {
		t.Errorf("%d pending after a round trip", tr.Pending())
	}
	// A dump without lan: lan went.
	tr.Sync([]Interface{iface("wan", false, ""), iface("nemo", true, "tun0")})
	if ch := next(t, tr); ch.Name != "lan" || ch.New != nil || ch.Old == nil {
		t.Errorf("%+v", ch)
	}
	if _, ok := tr.Get("lan"); ok || len(tr.Snapshot()) != 2 {
		t.Errorf("snapshot %+v", tr.Snapshot())
	}
	// Removed and back as it was: nothing.
	tr.Remove("wan")
	tr.Set(iface("wan", false, ""))
	if tr.Pending() != 0 {
		t.Errorf("%d pending", tr.Pending())
	}
}
