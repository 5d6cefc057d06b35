package logsum

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// A flood like a forged-BU attack: 6100 refusals in 10 s give 5 lines per
// reason and one summary with every count, due at the end of the interval.
func TestFlood(t *testing.T) {
	s := New("refused binding updates", 5, 10*time.Second)
	admitted := map[string]int{}
	for i := 0; i < 6100; i++ {
		reason := "auth_failed"
		if i%61 == 0 {
			reason = "unknown_home_address"
		}
		now := t0.Add(time.Duration(i) * time.Second / 610)
		if s.Admit(reason, now) {
			admitted[reason]++
		}
		if got := s.Flush(now); got != nil {
			t.Fatalf("summary before the interval is over: %+v", got)
		}
	}
	if !reflect.DeepEqual(admitted, map[string]int{"auth_failed": 5, "unknown_home_address": 5}) {
		t.Fatalf("admitted %v", admitted)
	}
	if due := s.Due(); !due.Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("due %v", due)
	}
	got := s.Flush(t0.Add(10 * time.Second))
	want := []Record{{
		What: "refused binding updates", Since: t0, Until: t0.Add(10 * time.Second), Total: 6100, Suppressed: 6090,
		Counts: []Count{{"auth_failed", 6000}, {"unknown_home_address", 100}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("summary\n got %+v\nwant %+v", got, want)
	}
	if s := got[0].String(); s != "6100 refused binding updates in the last 10s (6090 not logged): auth_failed=6000 unknown_home_address=100" {
		t.Errorf("line %q", s)
	}
	// Once flushed: nothing more is due, and the next interval lets the
	// first few through again.
	if s.Due() != (time.Time{}) || s.Flush(t0.Add(time.Hour)) != nil {
		t.Fatal("a summary left after Flush")
	}
	if !s.Admit("auth_failed", t0.Add(11*time.Second)) {
		t.Fatal("a new interval does not start over")
	}
}

// An interval whose events were all logged one by one has no summary.
func TestQuietInterval(t *testing.T) {
	s := New("x", 3, time.Second)
	for i := 0; i < 3; i++ {
		if !s.Admit("a", t0) {
			t.Fatal("within the burst")
		}
	}
	if s.Due() != (time.Time{}) || s.Flush(t0.Add(2*time.Second)) != nil {
		t.Fatal("a summary of nothing suppressed")
	}
}

// Intervals Admit finds over before anyone flushed are kept, in order, and
// the interval starts at the first event, not at a fixed boundary.
func TestIntervalsWithoutFlush(t *testing.T) {
	s := New("x", 1, time.Second)
	s.Admit("a", t0)
	s.Admit("a", t0.Add(100*time.Millisecond))
	s.Admit("b", t0.Add(1500*time.Millisecond)) // a new interval from 1.5 s
	s.Admit("b", t0.Add(2400*time.Millisecond))
	s.Admit("c", t0.Add(2600*time.Millisecond)) // and one from 2.6 s, nothing suppressed yet
	if due := s.Due(); !due.Equal(t0.Add(time.Second)) {
		t.Fatalf("due %v, want the end of the first interval", due)
	}
	got := s.Flush(t0.Add(2600 * time.Millisecond))
	want := []Record{
		{What: "x", Since: t0, Until: t0.Add(time.Second), Total: 2, Suppressed: 1, Counts: []Count{{"a", 2}}},
		{What: "x", Since: t0.Add(1500 * time.Millisecond), Until: t0.Add(2500 * time.Millisecond), Total: 2, Suppressed: 1, Counts: []Count{{"b", 2}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("summaries\n got %+v\nwant %+v", got, want)
	}
}

// Reasons beyond MaxReasons are counted as Other: what varies with the
// input cannot grow the summary.
func TestManyReasons(t *testing.T) {
	s := New("x", 0, time.Second)
	for i := 0; i < 1000; i++ {
		if s.Admit(fmt.Sprint("r", i), t0) {
			t.Fatal("a burst of 0 let one through")
		}
	}
	got := s.Flush(t0.Add(time.Second))
	if len(got) != 1 || len(got[0].Counts) != MaxReasons+1 || got[0].Total != 1000 {
		t.Fatalf("%d records, %d reasons", len(got), len(got[0].Counts))
	}
	var other uint64
	for _, c := range got[0].Counts {
		if c.Reason == Other {
			other = c.N
		}
	}
	if other != 1000-MaxReasons {
		t.Fatalf("other %d", other)
	}
}
