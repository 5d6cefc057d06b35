package e2e

import (
	"testing"
	"time"
)

// 200 carrier flaps in 20 s: the final state is right, and the daemons'
// goroutine and file descriptor counts come back to where they were.
func TestCarrierFlaps(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startHA()
	e.startMR()
	eventually(t, 5*time.Second, "both registered", func() bool {
		return e.mrStates() == "wifi=registered/ipv6 cell=registered/udp4"
	})
	mr0, ha0 := e.mrStatus().Runtime, e.haStatus().Runtime
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
	eventually(t, 5*time.Second, "registered after the flaps", func() bool {
		hb := e.haBindings()
		return e.mrStates() == "wifi=registered/ipv6 cell=registered/udp4" && len(hb) == 2
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
	var mr1, ha1 runtimeStats
	eventually(t, 10*time.Second, "goroutines and descriptors back to their counts", func() bool {
		mr1, ha1 = e.mrStatus().Runtime, e.haStatus().Runtime
		return mr1 == mr0 && ha1 == ha0
	})
	t.Logf("after: router %+v, home agent %+v", mr1, ha1)
}
