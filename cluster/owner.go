package cluster

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The pure part of a member: who owns an instance, by what was watched,
// and until when this member may believe it owns one, by its lease's
// refreshes and the time.

// Keys of the cluster's layout (see the package documentation).
func bindingKey(prefix string, hoa netip.Addr) string { return prefix + "/bindings/" + hoa.String() }
func memberKey(prefix, node string) string            { return prefix + "/members/" + node }
func electionPrefix(prefix string, inst netip.Addr) string {
	return prefix + "/election/" + inst.String() + "/"
}
func electionKey(prefix string, inst netip.Addr, lease int64) string {
	return electionPrefix(prefix, inst) + strconv.FormatInt(lease, 16)
}

// candidate is one member's candidacy for an instance.
type candidate struct {
	rev   int64
	node  string
	lease int64
}

// Elections are the candidacies watched, by instance.
type Elections struct {
	prefix string
	by     map[netip.Addr]map[string]candidate
}

// NewElections returns the elections of the cluster at prefix.
func NewElections(prefix string) *Elections {
	return &Elections{prefix: prefix, by: map[netip.Addr]map[string]candidate{}}
}

// Apply takes one watched change; it reports whether it was a candidacy.
func (e *Elections) Apply(ev Event) bool {
	rest, ok := strings.CutPrefix(ev.Key, e.prefix+"/election/")
	if !ok {
		return false
	}
	a, l, ok := strings.Cut(rest, "/")
	inst, err := netip.ParseAddr(a)
	lease, err2 := strconv.ParseInt(l, 16, 64)
	if !ok || err != nil || err2 != nil {
		return false
	}
	m := e.by[inst]
	if m == nil {
		m = map[string]candidate{}
		e.by[inst] = m
	}
	if ev.Deleted {
		delete(m, ev.Key)
	} else {
		m[ev.Key] = candidate{rev: ev.CreateRev, node: string(ev.Value), lease: lease}
	}
	return true
}

// Leader returns the owner of an instance: the oldest candidacy.
func (e *Elections) Leader(inst netip.Addr) (node string, lease int64, ok bool) {
	var best candidate
	for _, c := range e.by[inst] {
		if !ok || c.rev < best.rev {
			best, ok = c, true
		}
	}
	return best.node, best.lease, ok
}

// Candidates returns the nodes standing for an instance, the owner first.
func (e *Elections) Candidates(inst netip.Addr) []string {
	cs := make([]candidate, 0, len(e.by[inst]))
	for _, c := range e.by[inst] {
		cs = append(cs, c)
	}
	slices.SortFunc(cs, func(a, b candidate) int { return int(a.rev - b.rev) })
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.node)
	}
	return out
}

// Standing reports whether lease stands for inst.
func (e *Elections) Standing(inst netip.Addr, lease int64) bool {
	_, ok := e.by[inst][electionKey(e.prefix, inst, lease)]
	return ok
}

// LeaseClock is how long a member may count on its lease: a refresh sent
// at t and answered with a time to live ttl keeps the lease at etcd until
// t+ttl at least, whatever the answer's delay; the member counts on it
// until Margin before that.
type LeaseClock struct {
	Margin   time.Duration
	deadline time.Time
}

// Answered records the answer to a refresh sent at sent.
func (c *LeaseClock) Answered(sent time.Time, ttl time.Duration) {
	if d := sent.Add(ttl - c.Margin); d.After(c.deadline) {
		c.deadline = d
	}
}

// Lost forgets the lease (it expired at the store, or a new one is made).
func (c *LeaseClock) Lost() { c.deadline = time.Time{} }

// Valid reports whether the lease is surely still held at now.
func (c *LeaseClock) Valid(now time.Time) bool { return now.Before(c.deadline) }

// Deadline is when the lease is no longer surely held.
func (c *LeaseClock) Deadline() time.Time { return c.deadline }

// Owned returns the instances whose owner is this member's lease while
// the lease surely holds.
func Owned(e *Elections, instances []netip.Addr, lease int64, clock *LeaseClock, now time.Time) []netip.Addr {
	if lease == 0 || !clock.Valid(now) {
		return nil
	}
	var out []netip.Addr
	for _, inst := range instances {
		if _, l, ok := e.Leader(inst); ok && l == lease {
			out = append(out, inst)
		}
	}
	return out
}

// Rank orders the members for the i-th instance: the members alive,
// sorted by name, take the instances in turn (the i-th instance's first
// is member i modulo their number), and each member stands after a delay
// growing with its rank, so that members started together share the
// instances evenly.
func Rank(i int, node string, members []string) int {
	ms := slices.Clone(members)
	if !slices.Contains(ms, node) {
		ms = append(ms, node)
	}
	slices.Sort(ms)
	pos := slices.Index(ms, node)
	return ((pos-i)%len(ms) + len(ms)) % len(ms)
}
