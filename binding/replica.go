package binding

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"nemod/nemo"
	"nemod/policy"
)

// Replication of the binding cache between the members of a cluster of
// home agents (package cluster): an entry's whole state as a Record,
// exported by the member that changed it and imported by the others, so
// that any member can forward for the router, and accept its next Binding
// Update, the moment it takes over. A Record carries what a takeover
// needs: the bindings with their outer addresses (a NAT's mapping, by
// address and port) and absolute expiry times, the flow binding list, the
// prefixes registered and delegated, and the replay state (the last
// sequence number and timestamp accepted); and, for a router authorized
// at run time, its authorization (key included: the members share the
// store the way they share their configuration).

// Record is one entry's replicated state.
type Record struct {
	HoA  netip.Addr `json:"hoa"`
	Name string     `json:"name"`
	// HA is the home agent address (the cluster's instance) the router
	// last registered with.
	HA        netip.Addr      `json:"ha,omitzero"`
	Router    bool            `json:"router,omitempty"`
	Implicit  bool            `json:"implicit,omitempty"`
	MNPs      []netip.Prefix  `json:"mnps,omitempty"`
	Bindings  []RecordBinding `json:"bindings,omitempty"`
	Flows     []policy.Entry  `json:"flows,omitempty"`
	HasFlows  bool            `json:"has_flows,omitempty"`
	Delegated []netip.Prefix  `json:"delegated,omitempty"`
	HasSeq    bool            `json:"has_seq,omitempty"`
	Seq       uint16          `json:"seq"`
	TS        uint64          `json:"ts"`
	Peer      *RecordPeer     `json:"peer,omitempty"`
}

// RecordBinding is a Binding as replicated; times in Unix nanoseconds.
type RecordBinding struct {
	BID     uint16         `json:"bid"`
	CoA     netip.Addr     `json:"coa"`
	Outer   netip.AddrPort `json:"outer"`
	Encap   uint8          `json:"encap"`
	NAT     bool           `json:"nat,omitempty"`
	Pri     uint8          `json:"pri,omitempty"`
	Since   int64          `json:"since"`
	Expires int64          `json:"expires"`
}

// RecordPeer is a router authorized at run time (AddPeer).
type RecordPeer struct {
	Name      string         `json:"name"`
	NAI       string         `json:"nai"`
	SPI       uint32         `json:"spi"`
	Key       []byte         `json:"key"`
	MNPs      []netip.Prefix `json:"mnps,omitempty"`
	PD        bool           `json:"pd,omitempty"`
	AuthUntil int64          `json:"auth_until"`
}

// Expires is when the record's last binding lapses (zero without one).
func (r *Record) Expires() time.Time {
	var t int64
	for _, b := range r.Bindings {
		t = max(t, b.Expires)
	}
	if t == 0 {
		return time.Time{}
	}
	return time.Unix(0, t)
}

// Newer reports whether r is from a later Binding Update than o: the
// router's timestamps grow with every message it sends (RFC 4285), its
// sequence numbers too, modulo 2^16. Two members that both accepted
// something for one router settle by this order.
func (r *Record) Newer(o *Record) bool {
	if r.TS != o.TS {
		return r.TS > o.TS
	}
	if r.HasSeq != o.HasSeq {
		return r.HasSeq
	}
	return r.Seq != o.Seq && int16(r.Seq-o.Seq) > 0
}

// Settle returns the record of one router that stands when two members
// wrote it, each from what it had: the later message's (Newer), except
// that a record without bindings at one home agent address does not take
// away bindings at another. That record is the router leaving the address
// it was told to leave (RFC 5142), after it registered with another
// member's instance and before this member had that registration: what
// stands is the other's bindings with the later replay state, a new
// record. Otherwise the result is a or b itself.
func Settle(a, b *Record) *Record {
	later, earlier := a, b
	if b.Newer(a) {
		later, earlier = b, a
	}
	if len(later.Bindings) > 0 || len(earlier.Bindings) == 0 || !later.HA.IsValid() || !earlier.HA.IsValid() || later.HA == earlier.HA {
		return later
	}
	merged := *earlier
	merged.Bindings = slices.Clone(earlier.Bindings)
	merged.HasSeq, merged.Seq, merged.TS = later.HasSeq, later.Seq, later.TS
	return &merged
}

// LeavesOnly reports whether a record may be a router leaving an address
// (see Settle): it has no bindings, and names the address it had them at.
func (r *Record) LeavesOnly() bool { return len(r.Bindings) == 0 && r.HA.IsValid() }

// Same reports whether two records describe the same state.
func (r *Record) Same(o *Record) bool {
	a, errA := json.Marshal(r)
	b, errB := json.Marshal(o)
	return errA == nil && errB == nil && string(a) == string(b)
}

// Export returns the record of the entry at hoa, or nil for none.
func (c *Cache) Export(hoa netip.Addr) *Record {
	e := c.entries[hoa]
	if e == nil {
		return nil
	}
	r := &Record{HoA: hoa, Name: e.Peer.Name, HA: e.HA, Router: e.Router, Implicit: e.implicit,
		MNPs: slices.Clone(e.MNPs), Delegated: slices.Clone(e.Delegated), HasSeq: e.hasSeq, Seq: e.lastSeq, TS: e.lastTS}
	for _, b := range e.Bindings {
		r.Bindings = append(r.Bindings, RecordBinding{BID: b.BID, CoA: b.CoA, Outer: b.Outer, Encap: uint8(b.Encap), NAT: b.NAT, Pri: b.Pri,
			Since: b.Since.UnixNano(), Expires: b.Expires.UnixNano()})
	}
	if e.Flows != nil {
		r.HasFlows, r.Flows = true, slices.Clone(e.Flows.Entries)
	}
	if e.dynamic {
		p := e.Peer
		r.Peer = &RecordPeer{Name: p.Name, NAI: p.NAI, SPI: p.SPI, Key: slices.Clone(p.Key), MNPs: slices.Clone(p.MNPs), PD: p.PD,
			AuthUntil: e.authUntil.UnixNano()}
	}
	return r
}

// ErrUnknownRecord is Import's error for a record of a router this
// member's configuration does not have (the members' configurations
// differ).
var ErrUnknownRecord = errors.New("a replicated binding of a router this home agent is not configured for")

// Import takes the state another member exported for one router and
// returns its entry, for the data plane to follow. The replay state only
// moves forward: an older record (a message from before) changes
// nothing, and neither does one of a router this member does not know.
// A switch under way (switch.go) that the record shows done completes.
func (c *Cache) Import(r *Record) (*Entry, error) {
	if r == nil || !r.HoA.IsValid() {
		return nil, errors.New("replicated binding without a home address")
	}
	e := c.entries[r.HoA]
	if r.Peer != nil && (e == nil || e.dynamic) {
		p := Peer{Name: r.Peer.Name, HoA: r.HoA, SPI: r.Peer.SPI, Key: r.Peer.Key, NAI: r.Peer.NAI, MNPs: r.Peer.MNPs, PD: r.Peer.PD}
		if e == nil || e.Peer.SPI != p.SPI || string(e.Peer.Key) != string(p.Key) || !slices.Equal(e.Peer.MNPs, p.MNPs) {
			if _, err := c.AddPeer(p, time.Unix(0, r.Peer.AuthUntil)); err != nil {
				return nil, err
			}
		}
		e = c.entries[r.HoA]
		e.authUntil = time.Unix(0, r.Peer.AuthUntil)
	}
	if e == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownRecord, r.HoA)
	}
	if e.hasSeq && r.TS < e.lastTS {
		return e, nil // from before what this member has
	}
	e.HA, e.Router, e.implicit = r.HA, r.Router, r.Implicit
	e.MNPs = append(e.MNPs[:0], r.MNPs...)
	e.Delegated = slices.Clone(r.Delegated)
	e.hasSeq, e.lastSeq, e.lastTS = r.HasSeq, r.Seq, r.TS
	e.Bindings = e.Bindings[:0]
	for _, b := range r.Bindings {
		e.Bindings = append(e.Bindings, Binding{BID: b.BID, CoA: b.CoA, Outer: b.Outer, Encap: nemo.Encap(b.Encap), NAT: b.NAT, Pri: b.Pri,
			Since: time.Unix(0, b.Since), Expires: time.Unix(0, b.Expires)})
	}
	slices.SortFunc(e.Bindings, func(a, b Binding) int { return int(a.BID) - int(b.BID) })
	if !r.HasFlows {
		e.Flows = nil
	} else if e.Flows == nil || !slices.EqualFunc(e.Flows.Entries, r.Flows, sameFlow) {
		// A new table: the data plane keeps counters per table.
		e.Flows = &policy.Table{Entries: slices.Clone(r.Flows)}
	}
	c.switchSeen(e)
	return e, nil
}

// Forget takes the bindings off an entry whose record is gone from the
// store (its lease ran out with its last binding): its replay state stays.
func (c *Cache) Forget(hoa netip.Addr) *Entry {
	e := c.entries[hoa]
	if e == nil || !e.Registered() {
		return nil
	}
	e.Bindings, e.MNPs = e.Bindings[:0], e.MNPs[:0]
	return e
}

func sameFlow(a, b policy.Entry) bool {
	x, errX := json.Marshal(a)
	y, errY := json.Marshal(b)
	return errX == nil && errY == nil && string(x) == string(y)
}
