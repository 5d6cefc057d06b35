package pubsched

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestPublishing(t *testing.T) {
	s := &Schedule{Publish: true}
	// The first step publishes at once.
	if p, w := s.Step(t0); !p || w {
		t.Fatalf("first step: publish %v, watchdog %v", p, w)
	}
	s.Published(t0, ms(1))
	if n := s.Next(); !n.Equal(t0.Add(time.Second)) {
		t.Fatalf("idle: next %v, want the refresh 1 s on", n.Sub(t0))
	}
	// A change 30 ms later waits for the gap; one after the gap goes at once.
	s.Changed()
	if p, _ := s.Step(t0.Add(ms(30))); p {
		t.Fatal("published within the gap")
	}
	if n := s.Next(); !n.Equal(t0.Add(ms(100))) {
		t.Fatalf("next %v, want the end of the gap", n.Sub(t0))
	}
	if p, _ := s.Step(t0.Add(ms(100))); !p {
		t.Fatal("the change was not published at the end of the gap")
	}
	s.Published(t0.Add(ms(100)), ms(1))
	s.Changed()
	if p, _ := s.Step(t0.Add(ms(700))); !p {
		t.Fatal("a change after the gap was not published at once")
	}
	s.Published(t0.Add(ms(700)), ms(1))
	// Nothing changed: the refresh.
	if p, _ := s.Step(t0.Add(ms(1699))); p {
		t.Fatal("published early without a change")
	}
	if p, _ := s.Step(t0.Add(ms(1700))); !p {
		t.Fatal("no refresh")
	}
	// An expensive snapshot widens the gap to ten times its cost.
	s.Published(t0.Add(ms(1700)), ms(30))
	s.Changed()
	if p, _ := s.Step(t0.Add(ms(1999))); p {
		t.Fatal("published within a gap of ten times the cost")
	}
	if p, _ := s.Step(t0.Add(ms(2000))); !p {
		t.Fatal("not published after ten times the cost")
	}
}

func TestWatchdog(t *testing.T) {
	s := &Schedule{Watchdog: ms(500)}
	if p, w := s.Step(t0); p || !w {
		t.Fatalf("first step: publish %v, watchdog %v", p, w)
	}
	if n := s.Next(); !n.Equal(t0.Add(ms(500))) {
		t.Fatalf("next %v", n.Sub(t0))
	}
	if _, w := s.Step(t0.Add(ms(499))); w {
		t.Fatal("keep-alive early")
	}
	if _, w := s.Step(t0.Add(ms(620))); !w {
		t.Fatal("no keep-alive when due")
	}
	// Counted from when it was sent.
	if n := s.Next(); !n.Equal(t0.Add(ms(1120))) {
		t.Fatalf("next %v", n.Sub(t0))
	}
	// Neither: never.
	var none Schedule
	if p, w := none.Step(t0); p || w || !none.Next().IsZero() {
		t.Fatal("the zero Schedule does something")
	}
}

func TestCalls(t *testing.T) {
	c := NewCalls()
	go func() {
		for f := range c.C {
			f()
		}
	}()
	n := 0
	if !c.Do(func() { n++ }, time.Second) || n != 1 {
		t.Fatalf("Do: ran %d times", n)
	}
	c2 := NewCalls() // a loop that never reads
	if c2.Do(func() { t.Error("ran without a loop") }, ms(20)) {
		t.Fatal("Do succeeded without a loop")
	}
	c2.Stop()
	c2.Stop()
	if c2.Do(func() { t.Error("ran after Stop") }, time.Minute) {
		t.Fatal("Do succeeded after Stop")
	}
	close(c.C)
}
