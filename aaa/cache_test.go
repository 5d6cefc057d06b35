package aaa

import (
	"errors"
	"testing"
	"time"
)

// TestCacheLifecycle walks one NAI through a fake clock: asked about,
// authorized for its Session-Timeout, refreshed in its last tenth, lapsed.
func TestCacheLifecycle(t *testing.T) {
	c := NewCache(CacheConfig{})
	t0 := time.Unix(1000, 0)
	const nai = "car9@fleet.example"
	if l := c.Lookup(nai, t0); l.State != Miss || l.Auth != nil {
		t.Fatalf("empty cache: %+v", l)
	}
	if !c.Begin(nai, t0) {
		t.Fatal("first Begin refused")
	}
	if c.Begin(nai, t0.Add(time.Second)) {
		t.Error("second Begin while pending: a duplicate request")
	}
	if l := c.Lookup(nai, t0.Add(time.Second)); l.State != Pending {
		t.Errorf("pending: %v", l.State)
	}
	a := &Authorization{NAI: nai, Lifetime: 100 * time.Second, SPI: 300}
	granted := t0.Add(2 * time.Second)
	c.Complete(nai, a, nil, granted)
	expires := granted.Add(100 * time.Second)
	for _, c2 := range []struct {
		at   time.Duration
		want State
	}{
		{0, Hit}, {89 * time.Second, Hit}, {90 * time.Second, Refresh}, {99 * time.Second, Refresh}, {100 * time.Second, Miss},
	} {
		l := c.Lookup(nai, granted.Add(c2.at))
		if l.State != c2.want {
			t.Errorf("at +%v: %v, want %v", c2.at, l.State, c2.want)
		}
		if (c2.want == Hit || c2.want == Refresh) && (l.Auth != a || !l.Expires.Equal(expires)) {
			t.Errorf("at +%v: %+v", c2.at, l)
		}
	}
	// A refresh in flight: still served, no second request.
	at := granted.Add(95 * time.Second)
	if !c.Begin(nai, at) || c.Begin(nai, at) {
		t.Error("refresh Begin")
	}
	if l := c.Lookup(nai, at); l.State != Hit {
		t.Errorf("refresh pending: %v", l.State)
	}
	// The refresh times out: the old authorization stays until it lapses.
	c.Complete(nai, nil, errors.New("no server answered"), at.Add(time.Second))
	if l := c.Lookup(nai, at.Add(2*time.Second)); l.State != Refresh || l.Auth != a {
		t.Errorf("after a failed refresh: %+v", l)
	}
	if n := c.Expire(expires.Add(-time.Nanosecond)); n != 0 || c.Len() != 1 {
		t.Errorf("Expire before the end dropped %d", n)
	}
	if n := c.Expire(expires); n != 1 || c.Len() != 0 {
		t.Errorf("Expire at the end dropped %d, %d left", n, c.Len())
	}
}

func TestCacheDefaultLifetimeAndReject(t *testing.T) {
	c := NewCache(CacheConfig{DefaultLifetime: time.Minute, RejectLifetime: 5 * time.Second})
	t0 := time.Unix(5000, 0)
	c.Begin("a@x", t0)
	c.Complete("a@x", &Authorization{NAI: "a@x"}, nil, t0)
	if l := c.Lookup("a@x", t0.Add(59*time.Second)); l.State != Refresh || !l.Expires.Equal(t0.Add(time.Minute)) {
		t.Errorf("no Session-Timeout: %+v", l)
	}
	// A rejection replaces an authorization (a refresh refused).
	c.Begin("a@x", t0.Add(59*time.Second))
	c.Complete("a@x", nil, &RejectError{}, t0.Add(59*time.Second))
	if l := c.Lookup("a@x", t0.Add(60*time.Second)); l.State != Rejected || l.Auth != nil {
		t.Errorf("after a rejection: %+v", l)
	}
	if l := c.Lookup("a@x", t0.Add(64*time.Second)); l.State != Miss {
		t.Errorf("rejection remembered too long: %v", l.State)
	}
	// A failure of a NAI never authorized leaves nothing behind.
	c.Begin("b@x", t0)
	c.Complete("b@x", nil, errors.New("boom"), t0)
	if l := c.Lookup("b@x", t0); l.State != Miss {
		t.Errorf("after a failure: %v", l.State)
	}
	// Abandon: the submission was refused.
	c.Begin("c@x", t0)
	c.Abandon("c@x")
	if !c.Begin("c@x", t0) {
		t.Error("Begin after Abandon refused")
	}
	c.Forget("c@x")
	c.Forget("a@x")
	if c.Len() != 0 { // b@x was dropped already; c@x and a@x forgotten
		t.Errorf("%d left", c.Len())
	}
	// A pending request whose result never came stops blocking.
	c2 := NewCache(CacheConfig{PendingTimeout: 10 * time.Second, RejectLifetime: -1})
	c2.Begin("d@x", t0)
	if c2.Begin("d@x", t0.Add(9*time.Second)) || !c2.Begin("d@x", t0.Add(10*time.Second)) {
		t.Error("PendingTimeout")
	}
	c2.Complete("d@x", nil, ErrRejected, t0)
	if l := c2.Lookup("d@x", t0); l.State != Miss || c2.Len() != 0 {
		t.Errorf("RejectLifetime -1: %v, %d", l.State, c2.Len())
	}
}

// TestCacheBounded: NAIs come from the network; past MaxEntries they are
// still asked about (Begin says yes) but not remembered.
func TestCacheBounded(t *testing.T) {
	c := NewCache(CacheConfig{MaxEntries: 3})
	t0 := time.Unix(0, 0)
	for _, n := range []string{"a@x", "b@x", "c@x"} {
		c.Begin(n, t0)
	}
	first := c.Begin("d@x", t0)
	again := c.Begin("d@x", t0) // not remembered as pending either
	if !first || !again || c.Len() != 3 {
		t.Errorf("full: Begin must still allow the request; %d entries", c.Len())
	}
	c.Complete("d@x", &Authorization{}, nil, t0)
	if c.Lookup("d@x", t0).State != Miss {
		t.Error("remembered past MaxEntries")
	}
	// Once the pending ones time out, there is room again.
	later := t0.Add(2 * time.Minute)
	if !c.Begin("e@x", later) || c.Begin("e@x", later) {
		t.Error("no room made by expiry")
	}
}
