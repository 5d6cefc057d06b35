package main

import (
	"fmt"
	"strings"
	"time"

	"nemod/lab"
	"nemod/status"
)

// meterResult is what both uplinks' access routers forwarded for the
// mobile router while nothing but its probes crossed them.
type meterResult struct {
	dur    time.Duration
	by     map[string]lab.Metered
	encaps map[string]string
}

// measureIdle meters both uplinks for d with no traffic: the probes'
// own bit rate, both ways, at the IP layer.
func measureIdle(r *rig, d time.Duration) (*meterResult, error) {
	m := &meterResult{dur: d, by: map[string]lab.Metered{}, encaps: map[string]string{}}
	states, err := r.routerStates()
	if err != nil {
		return nil, err
	}
	for _, up := range []string{lab.Wifi, lab.Cell} {
		m.encaps[up] = states[up].encap
		if err := r.lab.StartMeter(up); err != nil {
			return nil, err
		}
	}
	time.Sleep(d)
	for _, up := range []string{lab.Wifi, lab.Cell} {
		v, err := r.lab.Meter(up)
		if err != nil {
			return nil, err
		}
		m.by[up] = v
	}
	return m, nil
}

// bps is an uplink's probe bit rate each way.
func (m *meterResult) bps(uplink string) (up, down float64) {
	v := m.by[uplink]
	s := m.dur.Seconds()
	return float64(v.UpOctets*8) / s, float64(v.DownOctets*8) / s
}

func (m *meterResult) print() {
	var parts []string
	for _, up := range []string{lab.Wifi, lab.Cell} {
		u, d := m.bps(up)
		v := m.by[up]
		parts = append(parts, fmt.Sprintf("%s (%s) %.0f bit/s up, %.0f down (%d and %d packets)", up, m.encaps[up], u, d, v.UpPackets, v.DownPackets))
	}
	fmt.Printf("    idle probes, %v metered at the access routers (IP layer): %s\n", m.dur, strings.Join(parts, "; "))
}

// deadPaths is the router's count of paths it declared dead.
func (r *rig) deadPaths() (uint64, error) {
	var s status.Router
	if err := statusOf(r.mrSock, &s); err != nil {
		return 0, err
	}
	return s.Counters.DeadPaths, nil
}

// waitInUse waits until the faulted uplink's binding is in use again:
// registered at both ends and, where the streams cross it, carrying
// packets both ways between two looks 10 ms apart.
func (r *rig) waitInUse(f fault, within time.Duration) error {
	deadline := time.Now().Add(within)
	var lastTx, lastRx uint64
	seen := false
	for time.Now().Before(deadline) {
		var s status.Router
		if err := statusOf(r.mrSock, &s); err != nil {
			return err
		}
		for _, b := range s.Bindings {
			if b.Uplink != f.uplink || b.State != status.StateRegistered {
				continue
			}
			if m, err := r.agentBindings(); err != nil || m[f.bid] == "" {
				break
			}
			if f.idle {
				return nil
			}
			if seen && b.TxPackets > lastTx && b.RxPackets > lastRx {
				return nil
			}
			seen, lastTx, lastRx = true, b.TxPackets, b.RxPackets
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("%s not in use again within %v", f.uplink, within)
}
