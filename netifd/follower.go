package netifd

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"nemod/ubus"
)

// Object is netifd's object for all interfaces.
const Object = "network.interface"

// FollowerOptions tune a Follower; the zero value is ready to use.
type FollowerOptions struct {
	// Now stamps each report (lifetimes and uptimes are relative); nil
	// is time.Now.
	Now func() time.Time
	// RetryDump is the wait before a failed dump is tried again; zero
	// means one second.
	RetryDump time.Duration
	// Logf hears of dropped reports and failed dumps; nil is silent.
	Logf func(format string, args ...any)
}

// FollowerStats count what a Follower did.
type FollowerStats struct {
	Dumps         uint64 // complete dumps taken
	Notifications uint64 // interface notifications taken
	Malformed     uint64 // reports that did not decode, dropped
	Failed        uint64 // dumps that failed (and were tried again)
}

// Follower keeps netifd's view of the interfaces on a ubus client: it
// subscribes to network.interface, dumps it, folds the interface.update
// and interface.down notifications in, and dumps again whenever the
// subscription is made anew (netifd restarted, or ubusd and the client
// reconnected). Changes come out one at a time with Next.
type Follower struct {
	c    *ubus.Client
	sub  *ubus.Subscriber
	opts FollowerOptions

	mu     sync.Mutex
	tr     *Tracker
	signal chan struct{}

	dumps, notifications, malformed, failed atomic.Uint64
}

// Follow starts following. If network.interface exists, the first dump is
// taken before it returns; otherwise it is taken when netifd appears. Call
// it from outside the client's handlers.
func Follow(ctx context.Context, c *ubus.Client, opts FollowerOptions) (*Follower, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RetryDump <= 0 {
		opts.RetryDump = time.Second
	}
	f := &Follower{c: c, opts: opts, tr: NewTracker(), signal: make(chan struct{}, 1)}
	sub, err := c.NewSubscriber(ctx, f.onNotify, f.onTarget)
	if err != nil {
		return nil, err
	}
	f.sub = sub
	id, err := sub.Follow(ctx, Object)
	if err != nil {
		sub.Close(ctx)
		return nil, err
	}
	if id != 0 {
		// On the delivery goroutine, so that no notification received
		// after the dump's answer is applied before it.
		done := make(chan error, 1)
		c.Post(func() { done <- f.dump(ctx) })
		select {
		case err := <-done:
			if err != nil {
				f.retry()
			}
		case <-ctx.Done():
			return f, ctx.Err()
		}
	}
	return f, nil
}

func (f *Follower) logf(format string, args ...any) {
	if f.opts.Logf != nil {
		f.opts.Logf(format, args...)
	}
}

// dump runs on the client's delivery goroutine.
func (f *Follower) dump(ctx context.Context) error {
	data, err := f.c.Call(ctx, Object, "dump", nil)
	if err == nil {
		var list []Interface
		if list, err = ParseDump(data, f.opts.Now()); err == nil {
			f.mu.Lock()
			f.tr.Sync(list)
			f.mu.Unlock()
			f.dumps.Add(1)
			f.wake()
			return nil
		}
		f.malformed.Add(1)
	}
	f.failed.Add(1)
	f.logf("netifd: dump: %v", err)
	return err
}

func (f *Follower) retry() {
	time.AfterFunc(f.opts.RetryDump, func() {
		f.c.Post(func() {
			ctx, cancel := context.WithTimeout(context.Background(), ubus.DefaultTimeout)
			defer cancel()
			if f.dump(ctx) != nil && f.c.Connected() {
				f.retry()
			}
		})
	})
}

func (f *Follower) onTarget(t ubus.Target) {
	if !t.Subscribed {
		return // netifd or ubusd went; what it said stays true until it is back
	}
	ctx, cancel := context.WithTimeout(context.Background(), ubus.DefaultTimeout)
	defer cancel()
	if f.dump(ctx) != nil {
		f.retry()
	}
}

func (f *Follower) onNotify(n ubus.Notification) {
	if n.Method != NotifyUpdate && n.Method != NotifyDown {
		return
	}
	i, err := ParseNotification(n.Method, n.Data, f.opts.Now())
	if err != nil {
		f.malformed.Add(1)
		f.logf("netifd: dropped a notification: %v", err)
		return
	}
	f.notifications.Add(1)
	f.mu.Lock()
	f.tr.Set(i)
	f.mu.Unlock()
	f.wake()
}

func (f *Follower) wake() {
	f.mu.Lock()
	n := f.tr.Pending()
	f.mu.Unlock()
	if n > 0 {
		select {
		case f.signal <- struct{}{}:
		default:
		}
	}
}

// Next waits for the next change.
func (f *Follower) Next(ctx context.Context) (Change, error) {
	for {
		f.mu.Lock()
		ch, ok := f.tr.Next()
		f.mu.Unlock()
		if ok {
			return ch, nil
		}
		select {
		case <-f.signal:
		case <-ctx.Done():
			return Change{}, ctx.Err()
		}
	}
}

// Changes is signalled when a change may be waiting; take it with Next
// (with a context that is done, not to block).
func (f *Follower) Changes() <-chan struct{} { return f.signal }

// Pending counts the interfaces with a change not yet taken.
func (f *Follower) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tr.Pending()
}

// Snapshot returns every interface's current state.
func (f *Follower) Snapshot() []Interface {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tr.Snapshot()
}

// Get returns one interface's current state.
func (f *Follower) Get(name string) (Interface, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tr.Get(name)
}

// Stats returns the counters.
func (f *Follower) Stats() FollowerStats {
	return FollowerStats{Dumps: f.dumps.Load(), Notifications: f.notifications.Load(),
		Malformed: f.malformed.Load(), Failed: f.failed.Load()}
}

// Close ends the subscription.
func (f *Follower) Close(ctx context.Context) error { return f.sub.Close(ctx) }
