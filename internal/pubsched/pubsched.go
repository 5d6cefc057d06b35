// Package pubsched decides, on a daemon's event loop, when to build a
// status snapshot for the publishers (D-Bus, metrics, the fleet page) and
// when to send systemd's watchdog keep-alive. It is pure: the loop gives
// it the time and tells it of changes; it says what to do and when to
// wake up next.
//
// A change is published at once unless the last snapshot is younger than
// the gap, and then when the gap has passed, so that a burst of changes
// costs one snapshot while a single one (a carrier lost) goes out
// immediately. The gap grows with what a snapshot costs (ten times its
// building time), so that a home agent with a large fleet spends at most
// a tenth of its loop on them. Without changes a snapshot still goes out
// every Refresh: traffic counters and round-trip times move without
// telling the loop.
package pubsched

import "time"

// Defaults of Schedule's periods.
const (
	DefaultMinGap  = 100 * time.Millisecond
	DefaultRefresh = time.Second
)

// Schedule is the state of one loop's publishing and watchdog. The zero
// value publishes nothing and sends no keep-alive; set the fields first.
type Schedule struct {
	// Publish enables snapshots (some publisher is on).
	Publish bool
	// MinGap and Refresh: see the package documentation (defaults
	// DefaultMinGap and DefaultRefresh).
	MinGap, Refresh time.Duration
	// Watchdog is the keep-alive period (half systemd's WatchdogSec);
	// 0: none.
	Watchdog time.Duration

	started bool
	dirty   bool
	last    time.Time // the last snapshot
	cost    time.Duration
	wdLast  time.Time
}

// Changed notes that something a snapshot shows changed.
func (s *Schedule) Changed() { s.dirty = true }

func (s *Schedule) gap() time.Duration {
	g := s.MinGap
	if g <= 0 {
		g = DefaultMinGap
	}
	return max(g, 10*s.cost)
}

func (s *Schedule) refresh() time.Duration {
	if s.Refresh <= 0 {
		return DefaultRefresh
	}
	return s.Refresh
}

// Step says what is due at now: a snapshot (report its cost with
// Published), a keep-alive (counted as sent).
func (s *Schedule) Step(now time.Time) (publish, watchdog bool) {
	if !s.started {
		// The first step publishes and sends a keep-alive at once.
		s.started, s.dirty = true, true
		s.wdLast = now.Add(-s.Watchdog)
	}
	if s.Watchdog > 0 && !now.Before(s.wdLast.Add(s.Watchdog)) {
		watchdog = true
		s.wdLast = now
	}
	if s.Publish {
		age := now.Sub(s.last)
		publish = s.last.IsZero() || (s.dirty && age >= s.gap()) || age >= s.refresh()
	}
	return publish, watchdog
}

// Published records a snapshot built at now in cost.
func (s *Schedule) Published(now time.Time, cost time.Duration) {
	s.last, s.cost, s.dirty = now, cost, false
}

// Next is when Step next has something to do; zero: never.
func (s *Schedule) Next() time.Time {
	var next time.Time
	earlier := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if s.Watchdog > 0 {
		earlier(s.wdLast.Add(s.Watchdog))
	}
	if s.Publish && s.started {
		if s.dirty {
			earlier(s.last.Add(s.gap()))
		} else {
			earlier(s.last.Add(s.refresh()))
		}
	}
	return next
}
