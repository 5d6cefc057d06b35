package aaa

import (
	"errors"
	"time"
)

// CacheConfig sets how long the Cache remembers answers.
type CacheConfig struct {
	// DefaultLifetime is how long an Access-Accept without Session-Timeout
	// is trusted (default 10 minutes).
	DefaultLifetime time.Duration
	// RejectLifetime is how long an Access-Reject is remembered, so that a
	// router retransmitting its Binding Update does not cost the RADIUS
	// server a request each time (default 10 s; negative: not remembered).
	RejectLifetime time.Duration
	// PendingTimeout bounds how long a NAI counts as being asked about,
	// should a result never come (default 1 minute; the client always
	// delivers one well before).
	PendingTimeout time.Duration
	// MaxEntries bounds the NAIs remembered (default 100,000): NAIs come
	// from Binding Updates, which anyone can send. When full, new NAIs are
	// still asked about but not remembered.
	MaxEntries int
}

// State is what the Cache knows of a NAI.
type State int

const (
	// Miss: nothing; ask the RADIUS server (Begin, then Submit).
	Miss State = iota
	// Hit: authorized until Expires.
	Hit
	// Refresh: authorized until Expires, which is near (the last tenth of
	// the lifetime): serve the router and ask again (Begin, Submit).
	Refresh
	// Pending: a request is out; wait for its result.
	Pending
	// Rejected: the server refused the router a moment ago.
	Rejected
)

func (s State) String() string {
	switch s {
	case Miss:
		return "miss"
	case Hit:
		return "hit"
	case Refresh:
		return "refresh"
	case Pending:
		return "pending"
	case Rejected:
		return "rejected"
	}
	return "State(" + itoa(int(s)) + ")"
}

// Lookup is the answer to Cache.Lookup.
type Lookup struct {
	State State
	Auth  *Authorization // with Hit and Refresh
	// Expires is when the authorization lapses (Hit, Refresh): the home
	// agent caps binding lifetimes by it.
	Expires time.Time
}

// Cache remembers the authorizations of mobile routers by NAI, for as long
// as each lasts, and which NAIs are being asked about, so that one router's
// retransmissions make one Access-Request. It does no I/O and takes the
// time as a parameter; it is not safe for concurrent use: the home agent's
// event loop owns it.
type Cache struct {
	cfg CacheConfig
	m   map[string]*cacheEntry
}

type cacheEntry struct {
	auth               *Authorization
	refreshAt, expires time.Time
	rejectUntil        time.Time
	pending            bool
	pendingUntil       time.Time
}

// NewCache returns an empty cache.
func NewCache(cfg CacheConfig) *Cache {
	if cfg.DefaultLifetime <= 0 {
		cfg.DefaultLifetime = 10 * time.Minute
	}
	if cfg.RejectLifetime == 0 {
		cfg.RejectLifetime = 10 * time.Second
	}
	if cfg.PendingTimeout <= 0 {
		cfg.PendingTimeout = time.Minute
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 100000
	}
	return &Cache{cfg: cfg, m: make(map[string]*cacheEntry)}
}

// Lookup tells what is known of nai at now.
func (c *Cache) Lookup(nai string, now time.Time) Lookup {
	e := c.m[nai]
	if e == nil {
		return Lookup{}
	}
	pending := e.pending && now.Before(e.pendingUntil)
	if e.auth != nil && now.Before(e.expires) {
		st := Hit
		if !pending && !now.Before(e.refreshAt) {
			st = Refresh
		}
		return Lookup{State: st, Auth: e.auth, Expires: e.expires}
	}
	switch {
	case now.Before(e.rejectUntil):
		return Lookup{State: Rejected}
	case pending:
		return Lookup{State: Pending}
	}
	return Lookup{}
}

// Begin records that a request for nai is about to be submitted. It
// returns false when one is already out (the caller waits for its result
// instead).
func (c *Cache) Begin(nai string, now time.Time) bool {
	e := c.m[nai]
	if e == nil {
		if len(c.m) >= c.cfg.MaxEntries {
			c.Expire(now)
		}
		if len(c.m) >= c.cfg.MaxEntries {
			return true // asked about, not remembered
		}
		e = &cacheEntry{}
		c.m[nai] = e
	}
	if e.pending && now.Before(e.pendingUntil) {
		return false
	}
	e.pending, e.pendingUntil = true, now.Add(c.cfg.PendingTimeout)
	return true
}

// Abandon undoes Begin when the submission was refused (a full queue).
func (c *Cache) Abandon(nai string) {
	if e := c.m[nai]; e != nil {
		e.pending = false
		if e.auth == nil && e.rejectUntil.IsZero() {
			delete(c.m, nai)
		}
	}
}

// Complete records the result of an Access-Request for nai at now: an
// authorization (auth non-nil), a rejection (err matching ErrRejected), or
// a failure (any other err: timeout, unusable answer), which keeps an
// earlier authorization that has not lapsed, since an outage of the
// servers should not cut off routers already authorized.
func (c *Cache) Complete(nai string, auth *Authorization, err error, now time.Time) {
	e := c.m[nai]
	if e == nil {
		if len(c.m) >= c.cfg.MaxEntries {
			return
		}
		e = &cacheEntry{}
		c.m[nai] = e
	}
	e.pending = false
	switch {
	case err == nil && auth != nil:
		e.auth, e.rejectUntil = auth, time.Time{}
		e.expires = auth.Expires(now, c.cfg.DefaultLifetime)
		e.refreshAt = e.expires.Add(-e.expires.Sub(now) / 10)
	case errors.Is(err, ErrRejected):
		e.auth = nil
		if c.cfg.RejectLifetime > 0 {
			e.rejectUntil = now.Add(c.cfg.RejectLifetime)
		} else {
			delete(c.m, nai)
		}
	default:
		if e.auth == nil && !now.Before(e.rejectUntil) {
			delete(c.m, nai)
		}
	}
}

// Forget drops what is known of nai: its authorization was revoked.
func (c *Cache) Forget(nai string) { delete(c.m, nai) }

// Expire drops the entries that hold nothing valid any more and returns
// how many it dropped. The event loop calls it now and then (every few
// seconds is plenty; Lookup never returns a lapsed answer anyway).
func (c *Cache) Expire(now time.Time) int {
	n := 0
	for nai, e := range c.m {
		if e.auth != nil && !now.Before(e.expires) {
			e.auth = nil
		}
		if e.auth == nil && !now.Before(e.rejectUntil) && !(e.pending && now.Before(e.pendingUntil)) {
			delete(c.m, nai)
			n++
		}
	}
	return n
}

// Len returns the number of NAIs remembered.
func (c *Cache) Len() int { return len(c.m) }
