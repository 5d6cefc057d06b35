package e2e

import (
	"strings"
	"testing"
	"time"

	"nemod/lab"
)

// A Wi-Fi path black-holed at the access router (the carrier stays up) is
// found by the probes: the home agent stops using it, it is de-registered
// through the cellular uplink, traffic keeps flowing over the cellular
// one; when the black hole goes, the Wi-Fi binding comes back.
func TestBlackholedPathFoundByProbes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startHA()
	e.startMR()
	e.registered()
	if err := e.lab.Blackhole("wifi", true); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	took := eventually(t, 3*time.Second, "black-holed Wi-Fi binding gone at the home agent", func() bool {
		_, ok := e.haBindings()[1]
		return !ok
	})
	t.Logf("binding gone %v after the path went silent (probes every 450 ms, dead after 2)", took.Round(time.Millisecond))
	if out, err := e.ping6(lab.LAN, "2001:db8:c::1", 5); err != nil {
		t.Fatalf("ping during the black hole: %v\n%s", err, out)
	}
	if c := e.mrStatus().Counters; c.DeadPaths == 0 {
		t.Fatalf("router counters %+v: no dead path", c)
	}
	if err := e.lab.Blackhole("wifi", false); err != nil {
		t.Fatal(err)
	}
	eventually(t, 40*time.Second, "Wi-Fi registered again after the black hole", func() bool {
		_, ok := e.haBindings()[1]
		return ok && strings.HasPrefix(e.mrStates(), "wifi=registered")
	})
	t.Logf("whole episode %v", time.Since(start).Round(time.Millisecond))
}

// The carrier NAT drops its mapping: the home agent's traffic to the old
// outside port goes nowhere, the probes notice, and the re-registration
// through the new mapping repairs the binding.
func TestNATMappingLossRepaired(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startHA()
	e.startMR()
	e.registered()
	outer := func() string {
		for _, r := range e.haStatus().MobileRouters {
			if r.Name == "car1" {
				for _, b := range r.Bindings {
					if b.BID == 2 {
						return b.Outer
					}
				}
			}
		}
		return ""
	}
	before := outer()
	if err := e.lab.FlushNAT("cell"); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 3*time.Second, "cellular binding repaired through the new mapping", func() bool {
		o := outer()
		return o != "" && o != before
	})
	t.Logf("binding moved from %s to %s %v after the mapping was dropped", before, outer(), took.Round(time.Millisecond))
	if err := e.lab.CarrierDown("wifi"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "only the cellular binding", func() bool { return len(e.haBindings()) == 1 })
	if out, err := e.ping6(lab.LAN, "2001:db8:c::1", 3); err != nil {
		t.Fatalf("ping over the repaired cellular binding: %v\n%s", err, out)
	}
}
