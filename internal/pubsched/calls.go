package pubsched

import (
	"sync"
	"time"
)

// Calls hands work from other goroutines (a bus method call, a scrape) to
// the event loop, which runs it between events: the loop's state is only
// ever touched by the loop.
type Calls struct {
	// C is what the loop selects on; it runs each function it receives.
	C       chan func()
	stopped chan struct{}
	once    sync.Once
}

// NewCalls returns Calls for a loop that has not stopped.
func NewCalls() *Calls { return &Calls{C: make(chan func()), stopped: make(chan struct{})} }

// Do runs f on the loop and waits for it to finish; false when the loop
// stopped, or did not take f within timeout (then f never runs).
func (c *Calls) Do(f func(), timeout time.Duration) bool {
	done := make(chan struct{})
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case c.C <- func() { f(); close(done) }:
	case <-c.stopped:
		return false
	case <-t.C:
		return false
	}
	// Taken: the loop runs it before anything else.
	<-done
	return true
}

// Stop says the loop is gone: Do returns false from now on.
func (c *Calls) Stop() { c.once.Do(func() { close(c.stopped) }) }
