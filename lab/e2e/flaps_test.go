package e2e

import (
	"testing"
	"time"

	"nemod/status"
)

// 200 carrier flaps in 20 s: the final state is right, and the daemons'
// goroutine and file descriptor counts come back to where they were.
func TestCarrierFlaps(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startHA()
	e.startMR()
	eventually(t, 5*time.Second, "both registered", func() bool {
		return e.mrStates() == e.want
	})
	mr0, ha0 := e.settledRuntime()
	t.Logf("before: router %+v, home agent %+v", mr0, ha0)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for i := 0; i < 200; i++ {
		<-tick.C
		if err := e.lab.CarrierDown("wifi"); err != nil {
			t.Fatal(err)
		}
		<-tick.C
		if err := e.lab.CarrierUp("wifi"); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("200 flaps in %v", time.Since(start).Round(time.Millisecond))
	// The last flaps may leave the kernel's neighbour entry for the Wi-Fi
	// router failed, and it retries only after a second: the router may
	// get there over IPv6-in-IPv6 first (and moves to UDP at once when its
	// acknowledgement comes). Either way, registered.
	eventually(t, 5*time.Second, "registered after the flaps", func() bool {
		hb := e.haBindings()
		st := e.mrStates()
		return (st == nativeStates || st == defaultStates) && len(hb) == 2
	})
	// Then down for good: the binding goes.
	if err := e.lab.CarrierDown("wifi"); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "Wi-Fi binding gone after the last loss", func() bool {
		_, ok := e.haBindings()[1]
		return !ok
	})
	if err := e.lab.CarrierUp("wifi"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "back", func() bool { return len(e.haBindings()) == 2 })
	var mr1, ha1 status.Runtime
	eventually(t, 10*time.Second, "goroutines and descriptors back to their counts", func() bool {
		mr1, ha1 = e.settledRuntime()
		return mr1 == mr0 && ha1 == ha0
	})
	t.Logf("after: router %+v, home agent %+v", mr1, ha1)
}

// settledRuntime samples both daemons' goroutine and descriptor counts a few
// times and keeps the lowest: each status request is itself a connection
// (a goroutine and a descriptor) that lingers until the daemon reads its
// end, so a single sample can count the previous poll's.
func (e *env) settledRuntime() (mr, ha status.Runtime) {
	low := func(a, b status.Runtime) status.Runtime {
		return status.Runtime{Goroutines: min(a.Goroutines, b.Goroutines), FDs: min(a.FDs, b.FDs)}
	}
	mr, ha = e.mrStatus().Runtime, e.haStatus().Runtime
	for i := 0; i < 5; i++ {
		time.Sleep(20 * time.Millisecond)
		mr, ha = low(mr, e.mrStatus().Runtime), low(ha, e.haStatus().Runtime)
	}
	return mr, ha
}
