// Package logsum keeps a flood of alike events from filling a log: it lets
// the first few of each reason in an interval be logged one by one, and
// folds the rest into one summary per interval, with counts per reason.
//
// It does no I/O and reads no clock: the caller passes the time, logs what
// Admit lets through, and calls Flush from its event loop (on a tick, or
// at Due) to get the summaries that are due.
package logsum

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Other is the reason the events of reasons beyond MaxReasons are counted
// under, so that what an attacker can vary cannot grow the summary.
const Other = "other"

// MaxReasons is the most reasons an interval counts apart.
const MaxReasons = 32

// Count is how many events of one reason an interval saw.
type Count struct {
	Reason string
	N      uint64
}

// Record is the summary of one interval in which some events were not
// logged one by one.
type Record struct {
	What         string
	Since, Until time.Time
	Total        uint64 // every event of the interval, logged or not
	Suppressed   uint64 // the events Admit did not let through
	Counts       []Count
}

// String is the summary as a log line, for instance "6100 refused binding
// updates in the last 10s (6090 not logged): auth_failed=6000
// unknown_home_address=100".
func (r Record) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s in the last %s (%d not logged):", r.Total, r.What, r.Until.Sub(r.Since).Round(time.Millisecond), r.Suppressed)
	for _, c := range r.Counts {
		fmt.Fprintf(&b, " %s=%d", c.Reason, c.N)
	}
	return b.String()
}

// Summarizer counts events by reason, interval by interval. It is not
// safe for concurrent use: one event loop owns it.
type Summarizer struct {
	what     string
	burst    uint64
	interval time.Duration
	// The open interval, if start is not zero.
	start      time.Time
	counts     map[string]uint64
	total      uint64
	suppressed uint64
	// closed are summaries of intervals Admit found over, for Flush.
	closed []Record
}

// New returns a Summarizer that lets burst events of each reason per
// interval through; what names the events in summaries ("refused binding
// updates").
func New(what string, burst int, interval time.Duration) *Summarizer {
	return &Summarizer{what: what, burst: uint64(max(burst, 0)), interval: interval, counts: make(map[string]uint64)}
}

// Admit counts an event of the reason at now and reports whether to log
// it one by one.
func (s *Summarizer) Admit(reason string, now time.Time) bool {
	s.close(now)
	if s.start.IsZero() {
		s.start = now
	}
	if _, ok := s.counts[reason]; !ok && len(s.counts) >= MaxReasons {
		reason = Other
	}
	s.counts[reason]++
	s.total++
	if s.counts[reason] <= s.burst {
		return true
	}
	s.suppressed++
	return false
}

// close ends the open interval if it is over at now, keeping its summary
// when some of its events were not logged.
func (s *Summarizer) close(now time.Time) {
	if s.start.IsZero() || now.Before(s.start.Add(s.interval)) {
		return
	}
	if s.suppressed > 0 {
		r := Record{What: s.what, Since: s.start, Until: s.start.Add(s.interval), Total: s.total, Suppressed: s.suppressed}
		for reason, n := range s.counts {
			r.Counts = append(r.Counts, Count{reason, n})
		}
		// sort.SliceStable: its code is in the router's binary already,
		// slices.SortFunc would add 9 KB for this element type.
		sort.SliceStable(r.Counts, func(i, j int) bool { return r.Counts[i].Reason < r.Counts[j].Reason })
		s.closed = append(s.closed, r)
	}
	s.start, s.total, s.suppressed = time.Time{}, 0, 0
	clear(s.counts)
}

// Flush returns the summaries due at now, oldest first: of the intervals
// that are over and had events not logged one by one.
func (s *Summarizer) Flush(now time.Time) []Record {
	s.close(now)
	out := s.closed
	s.closed = nil
	return out
}

// Due returns when Flush next has a summary to return: the end of the open
// interval when some of its events were not logged, now-ish when a summary
// is waiting; zero when there is none.
func (s *Summarizer) Due() time.Time {
	switch {
	case len(s.closed) > 0:
		return s.closed[0].Until
	case s.suppressed > 0:
		return s.start.Add(s.interval)
	}
	return time.Time{}
}
