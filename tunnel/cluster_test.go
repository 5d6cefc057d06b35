package tunnel

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// An owned instance is forwarded for only while the member's lease surely
// holds: past the fence (or with no lease at all) its bindings are on
// standby at once, before the event loop takes the instance off.
func TestInstanceFencedByLeaseDeadline(t *testing.T) {
	c := newClusterState([]Instance{{Address: netip.MustParseAddr("2001:db8:fffe::1")}})
	inst := c.list[0]
	b := &agentBinding{}
	b.fill(inst)
	if !b.onStandby() {
		t.Fatal("an instance not owned is forwarded for")
	}
	inst.standby.Store(false)
	if b.onStandby() {
		t.Fatal("owned, no fence given: on standby")
	}
	var fence atomic.Int64
	c.fence.Store(&fence)
	for _, tc := range []struct {
		name     string
		deadline int64
		standby  bool
	}{
		{"no lease", 0, true},
		{"lease holds another second", time.Now().Add(time.Second).UnixNano(), false},
		{"lease past its deadline", time.Now().Add(-time.Millisecond).UnixNano(), true},
	} {
		fence.Store(tc.deadline)
		if got := b.onStandby(); got != tc.standby {
			t.Errorf("%s: on standby %v, want %v", tc.name, got, tc.standby)
		}
	}
	inst.standby.Store(true)
	fence.Store(time.Now().Add(time.Second).UnixNano())
	if !b.onStandby() {
		t.Error("an instance given up is forwarded for while the lease holds")
	}
}
