package cluster

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"
)

// KV is a key as the store holds it.
type KV struct {
	Key       string
	Value     []byte
	CreateRev int64 // the revision that created it
	ModRev    int64 // the revision of its last change
	Lease     int64 // 0: none
}

// Event is a change the store reports to a watch.
type Event struct {
	KV
	Deleted bool
}

// Op is one write of a Commit.
type Op struct {
	Key    string
	Value  []byte
	Lease  int64
	Delete bool
	// Rev is the revision the writer last saw of the key: the write
	// happens only if it is still the key's ModRev (0: the key must not
	// exist; AnyRev: whatever it is).
	Rev int64
}

// AnyRev makes an Op unconditional.
const AnyRev = -1

// ErrNoLease is the error for a lease that expired or never was.
var ErrNoLease = errors.New("lease not found")

// Store is what a cluster needs of its key-value store: etcd's data model
// (revisions, leases, watches), which EtcdStore implements (package
// cluster/etcdstore) and Memory imitates.
type Store interface {
	// Grant makes a lease of ttl; KeepAlive refreshes it and returns the
	// time to live it has again; Revoke ends it and deletes its keys.
	Grant(ctx context.Context, ttl time.Duration) (int64, error)
	KeepAlive(ctx context.Context, lease int64) (time.Duration, error)
	Revoke(ctx context.Context, lease int64) error
	// Commit applies every op in one transaction when each one's Rev
	// holds, and nothing (ok false) otherwise.
	Commit(ctx context.Context, ops []Op) (rev int64, ok bool, err error)
	// Get returns every key under prefix and the store's revision.
	Get(ctx context.Context, prefix string) ([]KV, int64, error)
	// Watch reports the changes under prefix after revision rev, in order,
	// until ctx ends or the watch fails: then the channel is closed.
	Watch(ctx context.Context, prefix string, rev int64) <-chan []Event
	Close() error
}

// Memory is a Store in memory, for tests: one per cluster, shared by its
// members. Leases expire by the clock Now (time.Now when nil), checked by
// Expire, which Run calls periodically.
type Memory struct {
	Now func() time.Time
	// Fail, when set, is asked before every call: an error it returns
	// makes the call fail (a partition, a store down).
	Fail func(op string) error

	mu       sync.Mutex
	rev      int64
	keys     map[string]*KV
	leases   map[int64]*memLease
	nextID   int64
	watchers []*memWatch
	commits  int
	// history holds every change, for a watch from an older revision.
	history []Event
}

// Commits counts the transactions applied.
func (m *Memory) Commits() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.commits
}

type memLease struct {
	ttl     time.Duration
	expires time.Time
}

type memWatch struct {
	prefix string
	ch     chan []Event
	ctx    context.Context
	queue  [][]Event
	wake   chan struct{}
}

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{keys: map[string]*KV{}, leases: map[int64]*memLease{}, nextID: 0x1000}
}

func (m *Memory) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Memory) fail(op string) error {
	if m.Fail != nil {
		return m.Fail(op)
	}
	return nil
}

// Run expires leases every interval until ctx ends.
func (m *Memory) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Expire()
		}
	}
}

// Expire removes the leases that ran out, and their keys.
func (m *Memory) Expire() {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var evs []Event
	for id, l := range m.leases {
		if !now.Before(l.expires) {
			evs = append(evs, m.revokeLocked(id)...)
		}
	}
	m.notifyLocked(evs)
}

func (m *Memory) revokeLocked(id int64) []Event {
	delete(m.leases, id)
	var gone []string
	for k, kv := range m.keys {
		if kv.Lease == id {
			gone = append(gone, k)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	slices.Sort(gone)
	m.rev++
	var evs []Event
	for _, k := range gone {
		kv := *m.keys[k]
		kv.ModRev = m.rev
		delete(m.keys, k)
		evs = append(evs, Event{KV: kv, Deleted: true})
	}
	return evs
}

// Grant implements Store.
func (m *Memory) Grant(ctx context.Context, ttl time.Duration) (int64, error) {
	if err := m.fail("grant"); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextID++
	m.leases[m.nextID] = &memLease{ttl: ttl, expires: m.now().Add(ttl)}
	return m.nextID, nil
}

// KeepAlive implements Store.
func (m *Memory) KeepAlive(ctx context.Context, id int64) (time.Duration, error) {
	if err := m.fail("keepalive"); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.leases[id]
	if l == nil || !m.now().Before(l.expires) {
		return 0, ErrNoLease
	}
	l.expires = m.now().Add(l.ttl)
	return l.ttl, nil
}

// Revoke implements Store.
func (m *Memory) Revoke(ctx context.Context, id int64) error {
	if err := m.fail("revoke"); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.leases[id] == nil {
		return ErrNoLease
	}
	m.notifyLocked(m.revokeLocked(id))
	return nil
}

// Commit implements Store.
func (m *Memory) Commit(ctx context.Context, ops []Op) (int64, bool, error) {
	if err := m.fail("commit"); err != nil {
		return 0, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, op := range ops {
		kv := m.keys[op.Key]
		switch {
		case op.Rev == AnyRev:
		case op.Rev == 0 && kv != nil, op.Rev != 0 && (kv == nil || kv.ModRev != op.Rev):
			return m.rev, false, nil
		}
		if !op.Delete && op.Lease != 0 && m.leases[op.Lease] == nil {
			return m.rev, false, ErrNoLease
		}
	}
	m.rev++
	m.commits++
	var evs []Event
	for _, op := range ops {
		if op.Delete {
			if kv := m.keys[op.Key]; kv != nil {
				d := *kv
				d.ModRev = m.rev
				delete(m.keys, op.Key)
				evs = append(evs, Event{KV: d, Deleted: true})
			}
			continue
		}
		kv := m.keys[op.Key]
		n := &KV{Key: op.Key, Value: slices.Clone(op.Value), CreateRev: m.rev, ModRev: m.rev, Lease: op.Lease}
		if kv != nil {
			n.CreateRev = kv.CreateRev
		}
		m.keys[op.Key] = n
		evs = append(evs, Event{KV: *n})
	}
	m.notifyLocked(evs)
	return m.rev, true, nil
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, prefix string) ([]KV, int64, error) {
	if err := m.fail("get"); err != nil {
		return nil, 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []KV
	for k, kv := range m.keys {
		if strings.HasPrefix(k, prefix) {
			out = append(out, *kv)
		}
	}
	slices.SortFunc(out, func(a, b KV) int { return strings.Compare(a.Key, b.Key) })
	return out, m.rev, nil
}

// Watch implements Store. Changes are delivered in order; a slow reader
// holds them in a queue rather than blocking the writers.
func (m *Memory) Watch(ctx context.Context, prefix string, rev int64) <-chan []Event {
	w := &memWatch{prefix: prefix, ch: make(chan []Event), ctx: ctx, wake: make(chan struct{}, 1)}
	m.mu.Lock()
	var past []Event
	for _, e := range m.history {
		if e.ModRev >= rev && strings.HasPrefix(e.Key, prefix) {
			past = append(past, e)
		}
	}
	if len(past) > 0 {
		w.queue = append(w.queue, past)
	}
	m.watchers = append(m.watchers, w)
	m.mu.Unlock()
	w.wake <- struct{}{}
	go func() {
		defer close(w.ch)
		for {
			m.mu.Lock()
			var next []Event
			if len(w.queue) > 0 {
				next = w.queue[0]
				w.queue = w.queue[1:]
			}
			m.mu.Unlock()
			if next != nil {
				select {
				case w.ch <- next:
				case <-ctx.Done():
					m.drop(w)
					return
				}
				continue
			}
			select {
			case <-w.wake:
			case <-ctx.Done():
				m.drop(w)
				return
			}
		}
	}()
	return w.ch
}

func (m *Memory) drop(w *memWatch) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.watchers = slices.DeleteFunc(m.watchers, func(x *memWatch) bool { return x == w })
}

func (m *Memory) notifyLocked(evs []Event) {
	if len(evs) == 0 {
		return
	}
	m.history = append(m.history, evs...)
	for _, w := range m.watchers {
		var mine []Event
		for _, e := range evs {
			if strings.HasPrefix(e.Key, w.prefix) {
				mine = append(mine, e)
			}
		}
		if len(mine) > 0 {
			w.queue = append(w.queue, mine)
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	}
}

// Close implements Store.
func (m *Memory) Close() error { return nil }
