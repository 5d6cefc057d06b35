package twoends

import (
	"sync"
	"sync/atomic"
	"time"

	"nemod/internal/netsim"
)

// Flow is UDP traffic both ways between the LAN host and the
// correspondent through the two daemons: a packet each way every
// interval, injected into the router's and the home agent's devices, and
// what comes out of the other ends counted.
type Flow struct {
	Up, Down atomic.Uint64 // packets delivered LAN -> CN and CN -> LAN
	quit     chan struct{}
	wg       sync.WaitGroup
}

// StartFlow starts a flow on ports 4000 (LAN) and 7 (correspondent); the
// test's cleanup stops it.
func (e *Ends) StartFlow(interval time.Duration) *Flow {
	f := &Flow{quit: make(chan struct{})}
	up := netsim.UDP6(LANHost, CN, 4000, 7, 100, 'u')
	down := netsim.UDP6(CN, LANHost, 7, 4000, 100, 'd')
	mr, ha := e.MRTUN(), e.HATUN()
	f.wg.Add(3)
	go func() {
		defer f.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-f.quit:
				return
			case <-t.C:
				mr.Inject(up)
				ha.Inject(down)
			}
		}
	}()
	drain := func(dev *netsim.TUN, n *atomic.Uint64) {
		defer f.wg.Done()
		for {
			select {
			case <-f.quit:
				return
			case <-dev.Written():
				n.Add(1)
			}
		}
	}
	go drain(ha, &f.Up)
	go drain(mr, &f.Down)
	e.t.Cleanup(f.Stop)
	return f
}

// Stop ends the flow; idempotent.
func (f *Flow) Stop() {
	select {
	case <-f.quit:
	default:
		close(f.quit)
		f.wg.Wait()
	}
}
