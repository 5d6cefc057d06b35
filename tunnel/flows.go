package tunnel

import (
	"sync"
	"sync/atomic"
	"time"

	"nemod/policy"
	"nemod/status"
)

// flowState is a flow binding table as the data plane uses it: with a
// packet counter per entry and, when some entry duplicates its packets,
// the receiving side's duplicate suppression. Immutable but for the
// counters and the suppression's own lock.
type flowState struct {
	table   *policy.Table
	packets []atomic.Uint64 // by entry
	dedup   *lockedDedup    // nil without duplicate entries
}

var emptyTable = &policy.Table{}

func newFlowState(t *policy.Table) *flowState {
	if t == nil {
		t = emptyTable
	}
	f := &flowState{table: t, packets: make([]atomic.Uint64, len(t.Entries))}
	for i := range t.Entries {
		if t.Entries[i].Duplicate {
			f.dedup = &lockedDedup{d: policy.NewDedup(256)}
			break
		}
	}
	return f
}

// carry returns the state of table t that keeps f's counters: the packet
// count of every entry whose FID stays, and the duplicates suppressed. The
// home agent gets a new table with every refresh that re-registers the
// flows; the counts must not start again at each one.
func (f *flowState) carry(t *policy.Table) *flowState {
	n := newFlowState(t)
	if f == nil {
		return n
	}
	byFID := make(map[uint16]uint64, len(f.table.Entries))
	for i := range f.table.Entries {
		if fid := f.table.Entries[i].FID; fid != 0 {
			byFID[fid] += f.packets[i].Load()
		}
	}
	for i := range n.table.Entries {
		if fid := n.table.Entries[i].FID; fid != 0 {
			n.packets[i].Store(byFID[fid])
			delete(byFID, fid) // an FID's count goes to one entry
		}
	}
	if f.dedup != nil && n.dedup != nil {
		n.dedup.Hits.Store(f.dedup.Hits.Load())
	}
	return n
}

// count counts a packet on entry e.
func (f *flowState) count(e *policy.Entry) {
	for i := range f.table.Entries {
		if &f.table.Entries[i] == e {
			f.packets[i].Add(1)
			return
		}
	}
}

// duplicate reports whether a received packet of a duplicated flow was
// already delivered through another binding: both copies of each packet
// come in, and the mobile network (or the correspondent) must see one.
func (f *flowState) duplicate(p []byte, d policy.Direction, usable func(uint16) bool, now int64) bool {
	if f.dedup == nil {
		return false
	}
	pkt, ok := policy.ParsePacket(p)
	if !ok {
		return false
	}
	e, ok := f.table.Match(&pkt, d, usable)
	if !ok || !e.Duplicate {
		return false
	}
	return f.dedup.seen(e.FID, p, now)
}

// lockedDedup shares one duplicate suppression between the readers of all
// paths: both copies of a packet must meet in it, whichever path each
// came by.
type lockedDedup struct {
	mu   sync.Mutex
	d    *policy.Dedup
	tick int64
	Hits atomic.Uint64
}

// dedupPeriod bounds how far apart two copies may arrive and still count
// as one: beyond it a packet repeated by its sender (a retransmission)
// is delivered again.
const dedupPeriod = int64(500 * time.Millisecond)

func (l *lockedDedup) seen(fid uint16, p []byte, now int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now-l.tick > dedupPeriod {
		l.d.Tick()
		l.tick = now
	}
	if l.d.Seen(fid, p) {
		l.Hits.Add(1)
		return true
	}
	return false
}

// view is the table as status shows it: each entry's state and packet
// count.
func (f *flowState) view(usable func(uint16) bool) status.Flows {
	v := status.Flows{Flows: []status.Flow{}}
	v.Flows = append(v.Flows, f.table.View(usable)...)
	for i := range v.Flows {
		v.Flows[i].Packets = f.packets[i].Load()
	}
	if f.dedup != nil {
		v.Duplicates = f.dedup.Hits.Load()
	}
	return v
}
