package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"nemod/binding"
)

// Config is one member's part in a cluster.
type Config struct {
	Store     Store
	Node      string
	Prefix    string
	Instances []netip.Addr // each instance by its IPv6 address
	LeaseTTL  time.Duration
	Logger    *slog.Logger
	// Stagger is how long a member waits per rank (Rank) before it
	// stands for an instance (default LeaseTTL/4).
	Stagger time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// MaxTxnOps is how many records one transaction writes at most:
	// etcd's --max-txn-ops (DefaultMaxTxnOps when 0).
	MaxTxnOps int
}

// DefaultMaxTxnOps is etcd's default --max-txn-ops.
const DefaultMaxTxnOps = 128

// Update is what a member reports to the daemon's event loop.
type Update struct {
	// Records changed by other members; Removed routers whose record is
	// gone (its lease ran out with its bindings).
	Records []*binding.Record
	Removed []netip.Addr
	// Owned, when OwnedChanged, are the instances this member owns now.
	Owned        []netip.Addr
	OwnedChanged bool
	// Committed are the tokens of Publish calls now in the store.
	Committed []uint64
}

// MemberStatus is what a member knows of one member of the cluster.
type MemberStatus struct {
	Node     string       `json:"node"`
	Alive    bool         `json:"alive"` // its lease holds
	Draining bool         `json:"draining,omitempty"`
	Owns     []netip.Addr `json:"owns"`
	Since    time.Time    `json:"since"`
}

// Status is a member's view of the cluster.
type Status struct {
	Node      string
	Owned     []netip.Addr
	Members   []MemberStatus
	Leaders   map[netip.Addr][]string // candidates by instance, the owner first
	LeaseTTL  time.Duration
	Deadline  time.Time // until when the lease surely holds
	Connected bool      // the last refresh was answered
	Draining  bool
	// Counters: transactions committed, records written, conflicts
	// settled, records taken from others, leases lost.
	Commits, Written, Conflicts, Imported, LeasesLost uint64
}

type memberValue struct {
	Node     string    `json:"node"`
	Since    time.Time `json:"since"`
	Draining bool      `json:"draining,omitempty"`
}

type publish struct {
	recs  []*binding.Record
	token uint64
}

type commitResult struct {
	keys      []string
	tokens    []uint64
	revs      map[string]int64
	theirs    []*binding.Record
	conflicts int
	written   int
	err       error
}

type keepResult struct {
	sent  time.Time
	lease int64
	ttl   time.Duration
	err   error
}

type grantResult struct {
	lease int64
	sent  time.Time // when the grant was asked for
	err   error
}

// Member is this home agent's membership: its lease, its candidacies, the
// watch of the cluster's keys and the writer of its routers' records.
type Member struct {
	cfg     Config
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	updates chan Update
	pub     chan publish
	drain   chan chan struct{}
	done    chan struct{}

	mu     sync.Mutex
	status Status
	// fence is the lease's deadline in Unix nanoseconds (0: no lease),
	// for the data plane to check per packet (Fence).
	fence atomic.Int64
}

// Fence is the member's lease deadline in Unix nanoseconds, 0 while it
// holds none: until when the instances it owns are surely its own. The
// member keeps it current from its own goroutine, so that a reader that
// checks it stops in time even when the daemon's event loop, which takes
// the instances off, runs late.
func (m *Member) Fence() *atomic.Int64 { return &m.fence }

// Start joins the cluster: a lease, the member's key, the watch, the
// candidacies. What the store holds arrives as the first Update.
func Start(ctx context.Context, cfg Config) (*Member, error) {
	if cfg.Store == nil || cfg.Node == "" || cfg.LeaseTTL <= 0 {
		return nil, errors.New("cluster: no store, node or lease time")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Stagger == 0 {
		cfg.Stagger = cfg.LeaseTTL / 4
	}
	if cfg.MaxTxnOps <= 0 {
		cfg.MaxTxnOps = DefaultMaxTxnOps
	}
	ctx, cancel := context.WithCancel(ctx)
	m := &Member{cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel, updates: make(chan Update, 64),
		pub: make(chan publish, 1024), drain: make(chan chan struct{}), done: make(chan struct{})}
	m.status = Status{Node: cfg.Node, LeaseTTL: cfg.LeaseTTL, Leaders: map[netip.Addr][]string{}}
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	defer ccancel()
	kvs, rev, err := cfg.Store.Get(cctx, cfg.Prefix+"/")
	if err != nil {
		cancel()
		return nil, err
	}
	go m.run(kvs, rev)
	return m, nil
}

// Updates is where the member reports; the daemon must read it.
func (m *Member) Updates() <-chan Update { return m.updates }

// Publish writes records this member changed; the token comes back in
// Update.Committed once they are in the store.
func (m *Member) Publish(recs []*binding.Record, token uint64) {
	select {
	case m.pub <- publish{recs: recs, token: token}:
	case <-m.ctx.Done():
	}
}

// Drain gives up every instance and stands for none again; it returns
// once the candidacies are withdrawn.
func (m *Member) Drain() {
	done := make(chan struct{})
	select {
	case m.drain <- done:
		<-done
	case <-m.ctx.Done():
	}
}

// Status returns the member's view of the cluster.
func (m *Member) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.status
	s.Owned = slices.Clone(s.Owned)
	s.Members = slices.Clone(s.Members)
	s.Leaders = maps.Clone(s.Leaders)
	return s
}

// Close leaves the cluster: the lease is revoked, so that the instances
// pass to other members at once.
func (m *Member) Close() {
	m.cancel()
	<-m.done
}

// run is the member's event loop.
func (m *Member) run(kvs []KV, rev int64) {
	defer close(m.done)
	st := m.cfg.Store
	now := m.cfg.Now
	var (
		lease     int64
		clock     = LeaseClock{Margin: min(250*time.Millisecond, m.cfg.LeaseTTL/8)}
		el        = NewElections(m.cfg.Prefix)
		members   = map[string]memberValue{}
		revs      = map[string]int64{}
		writing   = map[string]string{} // what the commit in flight writes
		owned     []netip.Addr
		draining  bool
		since     = now()
		queue     []publish
		inFlight  int
		startOne  func() bool
		keeping   bool
		granting  bool
		standing  = map[netip.Addr]bool{} // a candidacy sent or held
		standAt   = map[netip.Addr]time.Time{}
		buckets   = &leaseBuckets{m: map[int64]int64{}}
		keepRes   = make(chan keepResult, 1)
		grantRes  = make(chan grantResult, 1)
		commitRes = make(chan commitResult, 1)
		standRes  = make(chan netip.Addr, len(m.cfg.Instances))
		watchCtx  context.Context
		stopWatch context.CancelFunc = func() {}
		watch     <-chan []Event
		counters  struct{ commits, written, conflicts, imported, lost uint64 }
		connected bool
	)
	send := func(u Update) {
		select {
		case m.updates <- u:
		case <-m.ctx.Done():
		}
	}
	first := Update{}
	apply := func(evs []Event, u *Update) {
		for _, ev := range evs {
			switch {
			case el.Apply(ev):
			case strings.HasPrefix(ev.Key, m.cfg.Prefix+"/members/"):
				node := strings.TrimPrefix(ev.Key, m.cfg.Prefix+"/members/")
				if ev.Deleted {
					delete(members, node)
				} else {
					var v memberValue
					if json.Unmarshal(ev.Value, &v) == nil {
						members[node] = v
					}
				}
			case strings.HasPrefix(ev.Key, m.cfg.Prefix+"/bindings/"):
				if ev.ModRev <= revs[ev.Key] {
					continue // older than what we have
				}
				if w, ok := writing[ev.Key]; ok && !ev.Deleted && w == string(ev.Value) {
					revs[ev.Key] = ev.ModRev // our own write
					continue
				}
				if ev.Deleted {
					delete(revs, ev.Key)
					if a, err := netip.ParseAddr(strings.TrimPrefix(ev.Key, m.cfg.Prefix+"/bindings/")); err == nil {
						u.Removed = append(u.Removed, a)
					}
					continue
				}
				revs[ev.Key] = ev.ModRev
				var r binding.Record
				if err := json.Unmarshal(ev.Value, &r); err != nil {
					m.log.Warn("cluster: a record that does not decode", "key", ev.Key, "err", err)
					continue
				}
				counters.imported++
				u.Records = append(u.Records, &r)
			}
		}
	}
	evs := make([]Event, 0, len(kvs))
	for _, kv := range kvs {
		evs = append(evs, Event{KV: kv})
	}
	apply(evs, &first)
	send(first)
	startWatch := func(from int64) {
		stopWatch()
		watchCtx, stopWatch = context.WithCancel(m.ctx)
		watch = st.Watch(watchCtx, m.cfg.Prefix+"/", from)
	}
	startWatch(rev + 1)
	defer func() { stopWatch() }()

	grant := func() {
		if granting {
			return
		}
		granting = true
		go func() {
			ctx, cancel := context.WithTimeout(m.ctx, m.cfg.LeaseTTL)
			defer cancel()
			// The lease runs from when the store granted it, which is
			// after this and before the answer: its deadline counts from
			// here, not from the answer, however late that arrives.
			sent := now()
			id, err := st.Grant(ctx, m.cfg.LeaseTTL)
			if err == nil {
				v, _ := json.Marshal(memberValue{Node: m.cfg.Node, Since: since, Draining: draining})
				if _, _, err = st.Commit(ctx, []Op{{Key: memberKey(m.cfg.Prefix, m.cfg.Node), Value: v, Lease: id, Rev: AnyRev}}); err != nil {
					st.Revoke(context.Background(), id)
				}
			}
			grantRes <- grantResult{id, sent, err}
		}()
	}
	needResync := false
	resync := func() bool {
		ctx, cancel := context.WithTimeout(m.ctx, m.cfg.LeaseTTL)
		kvs, rev, err := st.Get(ctx, m.cfg.Prefix+"/")
		cancel()
		if err != nil {
			return false
		}
		needResync = false
		el = NewElections(m.cfg.Prefix)
		members = map[string]memberValue{}
		all := make([]Event, 0, len(kvs))
		for _, kv := range kvs {
			all = append(all, Event{KV: kv})
		}
		clear(revs)
		var u Update
		apply(all, &u)
		send(u)
		startWatch(rev + 1)
		return true
	}
	grant()
	keepTick := time.NewTicker(m.cfg.LeaseTTL / 4)
	defer keepTick.Stop()
	deadline := time.NewTimer(time.Hour)
	defer deadline.Stop()
	standTimer := time.NewTimer(time.Hour)
	defer standTimer.Stop()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()

	recompute := func() {
		next := Owned(el, m.cfg.Instances, lease, &clock, now())
		if draining {
			next = nil
		}
		if !slices.Equal(next, owned) {
			owned = next
			send(Update{Owned: slices.Clone(owned), OwnedChanged: true})
		}
		if d := clock.Deadline(); d.IsZero() {
			m.fence.Store(0)
		} else {
			m.fence.Store(d.UnixNano())
		}
		deadline.Reset(max(time.Until(clock.Deadline()), time.Millisecond))
		if clock.Deadline().IsZero() {
			deadline.Reset(time.Hour)
		}
		// Candidacies to send, staggered by rank among the members alive.
		var alive []string
		for n := range members {
			alive = append(alive, n)
		}
		if !slices.Contains(alive, m.cfg.Node) {
			alive = append(alive, m.cfg.Node)
		}
		next2 := time.Time{}
		for i, inst := range m.cfg.Instances {
			if lease == 0 || draining || standing[inst] {
				continue
			}
			if standAt[inst].IsZero() {
				standAt[inst] = now().Add(m.cfg.Stagger)
			}
			// The rank counts the members seen by now: one that joined
			// meanwhile may come first.
			at := standAt[inst].Add(time.Duration(Rank(i, m.cfg.Node, alive)) * m.cfg.Stagger)
			if next2.IsZero() || at.Before(next2) {
				next2 = at
			}
		}
		if !next2.IsZero() {
			standTimer.Reset(max(time.Until(next2), 0))
		}
		m.mu.Lock()
		m.status.Owned, m.status.Deadline, m.status.Connected, m.status.Draining = slices.Clone(owned), clock.Deadline(), connected, draining
		m.status.Members = m.status.Members[:0]
		for n, v := range members {
			ms := MemberStatus{Node: n, Alive: true, Draining: v.Draining, Since: v.Since, Owns: []netip.Addr{}}
			for _, inst := range m.cfg.Instances {
				if leader, _, ok := el.Leader(inst); ok && leader == n {
					ms.Owns = append(ms.Owns, inst)
				}
			}
			m.status.Members = append(m.status.Members, ms)
		}
		slices.SortFunc(m.status.Members, func(a, b MemberStatus) int { return strings.Compare(a.Node, b.Node) })
		m.status.Leaders = make(map[netip.Addr][]string, len(m.cfg.Instances))
		for _, inst := range m.cfg.Instances {
			m.status.Leaders[inst] = el.Candidates(inst)
		}
		m.status.Commits, m.status.Written, m.status.Conflicts, m.status.Imported, m.status.LeasesLost =
			counters.commits, counters.written, counters.conflicts, counters.imported, counters.lost
		m.mu.Unlock()
	}
	lostLease := func(why string) {
		if lease == 0 {
			return
		}
		m.log.Warn("cluster: lease lost; standing again", "node", m.cfg.Node, "why", why)
		counters.lost++
		lease = 0
		clock.Lost()
		clear(standing)
		clear(standAt)
		recompute()
		grant()
	}
	startCommit := func() {
		for inFlight < maxInFlight && len(queue) > 0 && startOne() {
		}
	}
	startOne = func() bool {
		// A record whose key is being written waits for that commit: its
		// revision comes with the answer.
		busy := func(p publish) bool {
			for _, r := range p.recs {
				if _, ok := writing[bindingKey(m.cfg.Prefix, r.HoA)]; ok {
					return true
				}
			}
			return false
		}
		var batch []publish
		n := 0
		for len(queue) > 0 && (len(batch) == 0 || n+len(queue[0].recs) <= m.cfg.MaxTxnOps) && !busy(queue[0]) {
			batch = append(batch, queue[0])
			n += len(queue[0].recs)
			queue = queue[1:]
		}
		if len(batch) == 0 {
			return false // the commit in the way comes back first
		}
		inFlight++
		known := map[string]int64{}
		var recs []*binding.Record
		var tokens []uint64
		latest := map[netip.Addr]*binding.Record{}
		for _, p := range batch {
			tokens = append(tokens, p.token)
			for _, r := range p.recs {
				latest[r.HoA] = r
			}
		}
		for _, r := range latest {
			recs = append(recs, r)
			k := bindingKey(m.cfg.Prefix, r.HoA)
			known[k] = revs[k]
		}
		slices.SortFunc(recs, func(a, b *binding.Record) int { return a.HoA.Compare(b.HoA) })
		vals := make([][]byte, len(recs))
		for i, r := range recs {
			vals[i], _ = json.Marshal(r)
			writing[bindingKey(m.cfg.Prefix, r.HoA)] = string(vals[i])
		}
		go func() { commitRes <- m.commit(st, recs, vals, known, tokens, buckets) }()
		return true
	}

	for {
		select {
		case <-m.ctx.Done():
			if lease != 0 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				st.Revoke(ctx, lease)
				cancel()
			}
			return
		case g := <-grantRes:
			granting = false
			if g.err != nil {
				connected = false
				m.log.Warn("cluster: no lease", "err", g.err)
				retry.Reset(m.cfg.LeaseTTL / 4)
				continue
			}
			lease, connected = g.lease, true
			clock.Answered(g.sent, m.cfg.LeaseTTL)
			recompute()
		case <-retry.C:
			if lease == 0 {
				grant()
			}
			if needResync && !resync() {
				retry.Reset(m.cfg.LeaseTTL / 4)
			}
			recompute()
		case <-keepTick.C:
			if lease == 0 || keeping {
				continue
			}
			keeping = true
			l := lease
			go func() {
				ctx, cancel := context.WithTimeout(m.ctx, m.cfg.LeaseTTL/2)
				defer cancel()
				sent := now()
				ttl, err := st.KeepAlive(ctx, l)
				keepRes <- keepResult{sent: sent, lease: l, ttl: ttl, err: err}
			}()
		case k := <-keepRes:
			keeping = false
			if k.lease != lease {
				continue
			}
			switch {
			case k.err == nil:
				connected = true
				clock.Answered(k.sent, k.ttl)
			case errors.Is(k.err, ErrNoLease):
				lostLease("expired at the store")
			default:
				connected = false
			}
			recompute()
		case <-deadline.C:
			recompute()
		case <-standTimer.C:
			for i, inst := range m.cfg.Instances {
				var alive []string
				for n := range members {
					alive = append(alive, n)
				}
				if !slices.Contains(alive, m.cfg.Node) {
					alive = append(alive, m.cfg.Node)
				}
				if lease == 0 || draining || standing[inst] || standAt[inst].IsZero() ||
					now().Before(standAt[inst].Add(time.Duration(Rank(i, m.cfg.Node, alive))*m.cfg.Stagger)) {
					continue
				}
				standing[inst] = true
				l := lease
				go func() {
					ctx, cancel := context.WithTimeout(m.ctx, m.cfg.LeaseTTL)
					defer cancel()
					_, _, err := st.Commit(ctx, []Op{{Key: electionKey(m.cfg.Prefix, inst, l), Value: []byte(m.cfg.Node), Lease: l, Rev: 0}})
					if err != nil {
						standRes <- inst
					}
				}()
			}
			recompute()
		case inst := <-standRes:
			// The candidacy did not reach the store: stand again.
			delete(standing, inst)
			standAt[inst] = now().Add(m.cfg.Stagger)
			recompute()
		case evs, ok := <-watch:
			if !ok {
				if m.ctx.Err() != nil {
					return
				}
				// The watch failed (compaction, a lost connection): read
				// everything again and watch from there.
				watch = nil
				if !resync() {
					needResync = true
					retry.Reset(m.cfg.LeaseTTL / 4)
				}
				recompute()
				continue
			}
			var u Update
			apply(evs, &u)
			if lease != 0 {
				for _, inst := range m.cfg.Instances {
					if standing[inst] && !el.Standing(inst, lease) && !draining {
						// Our candidacy went with an old lease, or was
						// withdrawn: stand again.
						for _, ev := range evs {
							if ev.Deleted && ev.Key == electionKey(m.cfg.Prefix, inst, lease) {
								delete(standing, inst)
								delete(standAt, inst)
							}
						}
					}
				}
			}
			if len(u.Records) > 0 || len(u.Removed) > 0 {
				send(u)
			}
			recompute()
		case p := <-m.pub:
			queue = append(queue, p)
			// Take whatever else is waiting: one transaction for all.
			for more := true; more; {
				select {
				case p := <-m.pub:
					queue = append(queue, p)
				default:
					more = false
				}
			}
			startCommit()
		case r := <-commitRes:
			inFlight--
			for _, k := range r.keys {
				delete(writing, k)
			}
			for k, v := range r.revs {
				if v > revs[k] {
					revs[k] = v
				}
			}
			counters.commits++
			counters.written += uint64(r.written)
			counters.conflicts += uint64(r.conflicts)
			if r.err != nil {
				m.log.Warn("cluster: writing bindings", "err", r.err)
			}
			send(Update{Records: r.theirs, Committed: r.tokens})
			startCommit()
			recompute()
		case done := <-m.drain:
			draining = true
			var ops []Op
			for _, inst := range m.cfg.Instances {
				if lease != 0 && el.Standing(inst, lease) {
					ops = append(ops, Op{Key: electionKey(m.cfg.Prefix, inst, lease), Delete: true, Rev: AnyRev})
				}
			}
			if lease != 0 {
				v, _ := json.Marshal(memberValue{Node: m.cfg.Node, Since: since, Draining: true})
				ops = append(ops, Op{Key: memberKey(m.cfg.Prefix, m.cfg.Node), Value: v, Lease: lease, Rev: AnyRev})
			}
			recompute() // owned: none, at once
			if len(ops) > 0 {
				ctx, cancel := context.WithTimeout(m.ctx, 5*time.Second)
				if _, _, err := st.Commit(ctx, ops); err != nil {
					m.log.Warn("cluster: withdrawing the candidacies", "err", err)
				}
				cancel()
			}
			close(done)
		}
	}
}

// maxInFlight is how many transactions a member has under way at once:
// etcd's raft pipelines them, and a key is in one at a time.
const maxInFlight = 4

// leaseBuckets are the leases of the records, by expiry bucket, shared
// by the commits under way.
type leaseBuckets struct {
	mu sync.Mutex
	m  map[int64]int64
}

func (b *leaseBuckets) clear() {
	b.mu.Lock()
	clear(b.m)
	b.mu.Unlock()
}

// leaseBucket groups records by when they expire, so that a lease serves
// many: each record's lease ends within bucketSize after its last binding.
const bucketSize = 10 * time.Second

// noBindingKeep is how long a record without bindings stays: its replay
// state outlives the replay window.
const noBindingKeep = 60 * time.Second

// commit writes records in one transaction, guarded by the revisions
// known; on a conflict, key by key, each settled (binding.Settle).
func (m *Member) commit(st Store, recs []*binding.Record, vals [][]byte, known map[string]int64, tokens []uint64, buckets *leaseBuckets) commitResult {
	res := commitResult{tokens: tokens, revs: map[string]int64{}}
	for _, r := range recs {
		res.keys = append(res.keys, bindingKey(m.cfg.Prefix, r.HoA))
	}
	ctx, cancel := context.WithTimeout(m.ctx, 5*time.Second)
	defer cancel()
	now := m.cfg.Now()
	leaseFor := func(r *binding.Record) (int64, error) {
		exp := r.Expires()
		if exp.IsZero() || exp.Before(now) {
			exp = now.Add(noBindingKeep)
		}
		b := exp.UnixNano()/int64(bucketSize) + 1
		buckets.mu.Lock()
		defer buckets.mu.Unlock()
		if id, ok := buckets.m[b]; ok {
			return id, nil
		}
		ttl := time.Unix(0, b*int64(bucketSize)).Sub(now) + m.cfg.LeaseTTL
		id, err := st.Grant(ctx, ttl)
		if err != nil {
			return 0, err
		}
		for old := range buckets.m {
			if old*int64(bucketSize) < now.UnixNano() {
				delete(buckets.m, old)
			}
		}
		buckets.m[b] = id
		return id, nil
	}
	ops := make([]Op, 0, len(recs))
	for i, r := range recs {
		v := vals[i]
		l, err := leaseFor(r)
		if err != nil {
			res.err = err
			return res
		}
		k := bindingKey(m.cfg.Prefix, r.HoA)
		ops = append(ops, Op{Key: k, Value: v, Lease: l, Rev: known[k]})
	}
	// A record without bindings may be the router leaving one instance
	// after it registered with another's owner, whose record this member
	// may not have taken yet: it is settled against the stored record
	// first (Settle), on its own, and not written over it blindly.
	var batch []int
	var apart []int
	for i, r := range recs {
		if r.LeavesOnly() {
			apart = append(apart, i)
		} else {
			batch = append(batch, i)
		}
	}
	if len(batch) > 0 {
		bops := make([]Op, 0, len(batch))
		for _, i := range batch {
			bops = append(bops, ops[i])
		}
		rev, ok, err := st.Commit(ctx, bops)
		if err != nil && !errors.Is(err, ErrNoLease) {
			res.err = err
			return res
		}
		if ok {
			for _, op := range bops {
				res.revs[op.Key] = rev
			}
			res.written += len(bops)
		} else {
			if errors.Is(err, ErrNoLease) {
				buckets.clear()
			}
			// Someone else wrote: each key on its own.
			apart = append(apart, batch...)
		}
	}
	for _, i := range apart {
		if err := m.commitOne(ctx, st, recs[i], ops[i], recs[i].LeavesOnly(), leaseFor, buckets, &res); err != nil {
			res.err = err
			return res
		}
	}
	return res
}

// commitOne writes one record on its own, guarded by op.Rev: as it is
// first unless look, and after a conflict (or first, when look) settled
// against what the store holds (binding.Settle). A record that stands
// and is not the one published goes back to the daemon.
func (m *Member) commitOne(ctx context.Context, st Store, rec *binding.Record, op Op, look bool, leaseFor func(*binding.Record) (int64, error), buckets *leaseBuckets, res *commitResult) error {
	merged := false
	for try := 0; try < 3; try++ {
		if look {
			kvs, _, err := st.Get(ctx, op.Key)
			if err != nil {
				return err
			}
			var cur *KV
			for j := range kvs {
				if kvs[j].Key == op.Key {
					cur = &kvs[j]
				}
			}
			op.Rev = 0
			if cur != nil {
				op.Rev = cur.ModRev
				var theirs binding.Record
				if json.Unmarshal(cur.Value, &theirs) == nil {
					switch s := binding.Settle(rec, &theirs); s {
					case &theirs:
						// Theirs is the later message: it stands, and
						// this member takes it.
						res.revs[op.Key] = cur.ModRev
						res.theirs = append(res.theirs, &theirs)
						return nil
					case rec:
					default:
						v, err := json.Marshal(s)
						if err != nil {
							return err
						}
						// Under the lease of its bindings, not of a
						// record without any.
						l, err := leaseFor(s)
						if err != nil {
							return err
						}
						rec, op.Value, op.Lease, merged = s, v, l, true
					}
				}
			}
		}
		rev, ok, err := st.Commit(ctx, []Op{op})
		if err != nil && !errors.Is(err, ErrNoLease) {
			return err
		}
		if ok {
			res.revs[op.Key] = rev
			res.written++
			if merged {
				res.theirs = append(res.theirs, rec)
			}
			return nil
		}
		if errors.Is(err, ErrNoLease) {
			// Its bucket's lease ended: a new one, the same guard.
			buckets.clear()
			if op.Lease, err = leaseFor(rec); err != nil {
				return err
			}
			look = false
			continue
		}
		res.conflicts++
		look = true
	}
	return nil
}
