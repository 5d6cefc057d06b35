package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"nemod/binding"
)

var (
	instA = netip.MustParseAddr("2001:db8:ffff::1")
	instB = netip.MustParseAddr("2001:db8:fffe::1")
	hoa1  = netip.MustParseAddr("2001:db8:ffff:1::100")
)

// cut is one member's view of a shared store, which a test can cut off
// (a partition, or the member dead to the store).
type cut struct {
	*Memory
	off atomic.Bool
}

var errCut = errors.New("partitioned")

func (c *cut) check() error {
	if c.off.Load() {
		return errCut
	}
	return nil
}
func (c *cut) Grant(ctx context.Context, ttl time.Duration) (int64, error) {
	if err := c.check(); err != nil {
		return 0, err
	}
	return c.Memory.Grant(ctx, ttl)
}
func (c *cut) KeepAlive(ctx context.Context, l int64) (time.Duration, error) {
	if err := c.check(); err != nil {
		return 0, err
	}
	return c.Memory.KeepAlive(ctx, l)
}
func (c *cut) Commit(ctx context.Context, ops []Op) (int64, bool, error) {
	if err := c.check(); err != nil {
		return 0, false, err
	}
	return c.Memory.Commit(ctx, ops)
}
func (c *cut) Get(ctx context.Context, p string) ([]KV, int64, error) {
	if err := c.check(); err != nil {
		return nil, 0, err
	}
	return c.Memory.Get(ctx, p)
}

// watcher follows one member's updates.
type watcher struct {
	m       *Member
	mu      sync.Mutex
	owned   []netip.Addr
	ownedAt time.Time
	changes []ownedChange
	records map[netip.Addr]*binding.Record
	removed []netip.Addr
	tokens  []uint64
}

type ownedChange struct {
	at    time.Time
	owned []netip.Addr
}

func follow(t *testing.T, m *Member) *watcher {
	w := &watcher{m: m, records: map[netip.Addr]*binding.Record{}}
	go func() {
		for {
			select {
			case u := <-m.Updates():
				w.mu.Lock()
				if u.OwnedChanged {
					w.owned, w.ownedAt = u.Owned, time.Now()
					w.changes = append(w.changes, ownedChange{time.Now(), u.Owned})
				}
				for _, r := range u.Records {
					w.records[r.HoA] = r
				}
				w.removed = append(w.removed, u.Removed...)
				w.tokens = append(w.tokens, u.Committed...)
				w.mu.Unlock()
			case <-m.done:
				return
			}
		}
	}()
	return w
}

// recordOf is the last record of hoa the member handed over.
func (w *watcher) recordOf(hoa netip.Addr) *binding.Record {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.records[hoa]
}

func (w *watcher) owns() []netip.Addr {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.owned)
}

func eventually(t *testing.T, within time.Duration, what string, f func() bool) {
	t.Helper()
	for start := time.Now(); !f(); time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
	}
}

const ttl = 400 * time.Millisecond

func startMember(t *testing.T, st Store, node string, insts ...netip.Addr) (*Member, *watcher) {
	t.Helper()
	m, err := Start(context.Background(), Config{Store: st, Node: node, Prefix: "/t", Instances: insts, LeaseTTL: ttl, Stagger: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m, follow(t, m)
}

func newStore(t *testing.T) *Memory { return newStoreAt(t, nil) }

// newStoreAt is a store whose leases expire by the clock now.
func newStoreAt(t *testing.T, now func() time.Time) *Memory {
	st := NewMemory()
	st.Now = now
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go st.Run(ctx, 10*time.Millisecond)
	return st
}

func record(ts uint64, bids ...uint16) *binding.Record {
	r := &binding.Record{HoA: hoa1, Name: "car1", HA: instA, HasSeq: true, Seq: uint16(ts), TS: ts}
	for _, b := range bids {
		r.Bindings = append(r.Bindings, binding.RecordBinding{BID: b, Outer: netip.MustParseAddrPort("192.0.2.2:40000"),
			Expires: time.Now().Add(time.Minute).UnixNano()})
	}
	return r
}

// One instance, two members: the first owns it; cut off from the store,
// it gives it up before the other can take it, and the other takes it
// within about a lease.
func TestTakeoverAfterPartition(t *testing.T) {
	st := newStore(t)
	c1 := &cut{Memory: st}
	_, w1 := startMember(t, c1, "ha1", instA)
	eventually(t, 2*time.Second, "ha1 owns the instance", func() bool { return slices.Equal(w1.owns(), []netip.Addr{instA}) })
	_, w2 := startMember(t, st, "ha2", instA)
	time.Sleep(3 * ttl)
	if len(w2.owns()) != 0 || len(w1.owns()) != 1 {
		t.Fatalf("ha2 took an owned instance: %v %v", w1.owns(), w2.owns())
	}
	if f := w1.m.Fence().Load(); f <= time.Now().UnixNano() {
		t.Fatalf("the owner's fence %v is not ahead", time.Unix(0, f))
	}
	c1.off.Store(true)
	cutAt := time.Now()
	eventually(t, 4*ttl, "ha2 takes over", func() bool { return len(w2.owns()) == 1 })
	w1.mu.Lock()
	gaveUp := w1.ownedAt
	w1.mu.Unlock()
	w2.mu.Lock()
	took := w2.ownedAt
	w2.mu.Unlock()
	t.Logf("cut at 0: ha1 gave up at %v, ha2 took over at %v", gaveUp.Sub(cutAt), took.Sub(cutAt))
	if len(w1.owns()) != 0 || !gaveUp.Before(took) || gaveUp.Sub(cutAt) > ttl {
		t.Fatalf("ha1 still owned it when ha2 took it: gave up %v, taken %v", gaveUp, took)
	}
	// The data plane's fence fell before the other member took over.
	if f := w1.m.Fence().Load(); f != 0 && !time.Unix(0, f).Before(took) {
		t.Fatalf("ha1's fence %v is not before ha2's takeover at %v", time.Unix(0, f), took)
	}
	// Healed: ha1 stands again behind ha2.
	c1.off.Store(false)
	eventually(t, 4*ttl, "ha1 stands again", func() bool { return len(w1.m.Status().Leaders[instA]) == 2 })
	if len(w1.owns()) != 0 || len(w2.owns()) != 1 {
		t.Fatalf("after the partition: %v %v", w1.owns(), w2.owns())
	}
}

// A member that leaves (Close) hands its instances over at once.
func TestCloseHandsOver(t *testing.T) {
	st := newStore(t)
	m1, w1 := startMember(t, st, "ha1", instA)
	eventually(t, 2*time.Second, "ha1 owns", func() bool { return len(w1.owns()) == 1 })
	_, w2 := startMember(t, st, "ha2", instA)
	eventually(t, 2*time.Second, "ha2 stands", func() bool { return len(w2.m.Status().Leaders[instA]) == 2 })
	start := time.Now()
	m1.Close()
	eventually(t, ttl, "ha2 takes over", func() bool { return len(w2.owns()) == 1 })
	t.Logf("handed over in %v", time.Since(start))
}

// Records published by one member reach the other, with their token
// back to the writer once committed; a batch is one transaction.
func TestReplication(t *testing.T) {
	st := newStore(t)
	m1, w1 := startMember(t, st, "ha1", instA)
	_, w2 := startMember(t, st, "ha2", instA)
	commits := st.Commits()
	for i := range 50 {
		r := record(uint64(100+i), 1, 2)
		r.HoA = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 1, 15: byte(i + 1)})
		m1.Publish([]*binding.Record{r}, uint64(i+1))
	}
	eventually(t, 2*time.Second, "50 records at ha2", func() bool {
		w2.mu.Lock()
		defer w2.mu.Unlock()
		return len(w2.records) == 50
	})
	eventually(t, time.Second, "tokens back", func() bool {
		w1.mu.Lock()
		defer w1.mu.Unlock()
		return len(w1.tokens) == 50
	})
	w1.mu.Lock()
	echoed := len(w1.records)
	w1.mu.Unlock()
	if echoed != 0 {
		t.Fatalf("the writer took its own records back: %d", echoed)
	}
	if n := st.Commits() - commits; n > 25 {
		t.Fatalf("%d transactions for 50 records: not batched", n)
	}
}

// Two members write one router's record, each from what it had: the
// later message wins at both, whatever order the writes came in.
func TestConflictSettledByAge(t *testing.T) {
	st := newStore(t)
	m1, w1 := startMember(t, st, "ha1", instA)
	m2, w2 := startMember(t, st, "ha2", instA)
	m1.Publish([]*binding.Record{record(10, 1)}, 1)
	eventually(t, time.Second, "ha2 has it", func() bool { return w2.recordOf(hoa1) != nil })
	// Both change it; neither has seen the other's write.
	newer := record(12, 1, 2)
	m1.Publish([]*binding.Record{record(11, 2)}, 2)
	m2.Publish([]*binding.Record{newer}, 3)
	eventually(t, 2*time.Second, "the newer record everywhere", func() bool {
		kvs, _, _ := st.Get(context.Background(), "/t/bindings/")
		w1.mu.Lock()
		defer w1.mu.Unlock()
		return len(kvs) == 1 && w1.records[hoa1] != nil && w1.records[hoa1].TS == 12 && string(kvs[0].Value) != "" &&
			func() bool { var r binding.Record; return jsonDecode(kvs[0].Value, &r) == nil && r.TS == 12 }()
	})
}

// A router told to leave instance A registers with B through one member,
// then de-registers at A through another: whether or not that member had
// taken the registration yet (a stale or a current guard), the bindings
// at B stand in the store and at both members, with the
// de-registration's replay state.
func TestLeavingKeepsBindingsElsewhere(t *testing.T) {
	for _, seen := range []bool{false, true} {
		// The store's clock can be moved on, for the record's lease.
		var skew atomic.Int64
		st := newStoreAt(t, func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })
		m1, w1 := startMember(t, st, "ha1", instA)
		m2, w2 := startMember(t, st, "ha2", instA)
		m1.Publish([]*binding.Record{record(10, 1)}, 1)
		eventually(t, time.Second, "ha2 has the first record", func() bool { return w2.recordOf(hoa1) != nil })
		atB := record(11, 1)
		atB.HA = instB
		atB.Bindings[0].Expires = time.Now().Add(10 * time.Minute).UnixNano()
		if !seen {
			// ha2's guard is stale: its write conflicts.
			st.Commit(context.Background(), []Op{{Key: bindingKey("/t", hoa1), Value: mustJSON(t, atB), Rev: AnyRev}})
		} else {
			m1.Publish([]*binding.Record{atB}, 2)
			eventually(t, time.Second, "ha2 has the registration at B", func() bool {
				r := w2.recordOf(hoa1)
				return r != nil && r.HA == instB
			})
		}
		leave := record(12)
		m2.Publish([]*binding.Record{leave}, 3)
		settled := func(r *binding.Record) bool {
			return r != nil && r.HA == instB && len(r.Bindings) == 1 && r.TS == 12 && r.Seq == 12
		}
		eventually(t, 2*time.Second, fmt.Sprintf("the bindings at B stand (ha2 saw them: %v)", seen), func() bool {
			kvs, _, _ := st.Get(context.Background(), "/t/bindings/")
			var stored binding.Record
			if len(kvs) != 1 || jsonDecode(kvs[0].Value, &stored) != nil || !settled(&stored) {
				return false
			}
			return settled(w1.recordOf(hoa1)) && settled(w2.recordOf(hoa1))
		})
		// The record stays as long as its bindings, not as a record
		// without any would.
		skew.Store(int64(3 * time.Minute))
		st.Expire()
		if kvs, _, _ := st.Get(context.Background(), "/t/bindings/"); len(kvs) != 1 {
			t.Fatalf("the settled record went with the lease of a record without bindings (ha2 saw them: %v)", seen)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Two members started together share two instances; a drained one gives
// its instance up to the other and stands for none.
func TestSpreadAndDrain(t *testing.T) {
	st := newStore(t)
	m1, w1 := startMember(t, st, "ha1", instA, instB)
	_, w2 := startMember(t, st, "ha2", instA, instB)
	eventually(t, 2*time.Second, "both instances owned", func() bool { return len(w1.owns())+len(w2.owns()) == 2 })
	time.Sleep(ttl)
	if !slices.Equal(w1.owns(), []netip.Addr{instA}) || !slices.Equal(w2.owns(), []netip.Addr{instB}) {
		t.Fatalf("not shared: ha1 owns %v, ha2 owns %v", w1.owns(), w2.owns())
	}
	m1.Drain()
	eventually(t, time.Second, "ha2 owns both", func() bool { return len(w2.owns()) == 2 && len(w1.owns()) == 0 })
	time.Sleep(ttl)
	if len(w1.owns()) != 0 || !m1.Status().Draining {
		t.Fatal("a drained member took an instance again")
	}
	var ms []MemberStatus
	eventually(t, time.Second, "status", func() bool {
		ms = w2.m.Status().Members
		return len(ms) == 2 && ms[0].Draining && len(ms[1].Owns) == 2
	})
}

func TestRank(t *testing.T) {
	members := []string{"ha2", "ha1", "ha3"}
	for i := range 3 {
		seen := map[int]bool{}
		for _, n := range members {
			seen[Rank(i, n, members)] = true
		}
		if len(seen) != 3 {
			t.Fatalf("ranks of instance %d not distinct: %v", i, seen)
		}
	}
	if Rank(0, "ha1", members) != 0 || Rank(1, "ha2", members) != 0 || Rank(3, "ha1", members) != 0 || Rank(1, "ha1", members) != 2 {
		t.Fatal("not in turn")
	}
	if Rank(5, "ha1", []string{"ha1"}) != 0 {
		t.Fatal("alone is not first")
	}
}

func TestLeaseClock(t *testing.T) {
	c := LeaseClock{Margin: 100 * time.Millisecond}
	t0 := time.Unix(1000, 0)
	if c.Valid(t0) {
		t.Fatal("valid before any answer")
	}
	c.Answered(t0, 2*time.Second)
	if !c.Valid(t0.Add(1899*time.Millisecond)) || c.Valid(t0.Add(1900*time.Millisecond)) {
		t.Fatal("deadline is not sent + ttl - margin")
	}
	c.Answered(t0.Add(-time.Second), 2*time.Second) // a late answer to an older refresh
	if c.Deadline() != t0.Add(1900*time.Millisecond) {
		t.Fatal("an older answer moved the deadline back")
	}
}

func jsonDecode(b []byte, v any) error { return json.Unmarshal(b, v) }
