package netifd

import (
	"slices"
	"sort"
)

// Change is one interface's change since it was last reported: Old is what
// was reported before (nil: a new interface), New what it is now (nil: it
// went).
type Change struct {
	Name     string
	Old, New *Interface
}

// Tracker folds netifd's reports into per-interface state and hands out
// the changes one at a time. Changes coalesce per interface: until a change
// is taken with Next, later reports of that interface only move its New
// side, and an interface that comes back to what was last reported has no
// change. It does no I/O and takes no time of its own (the reports carry
// deadlines computed by their parser); it is not safe for concurrent use.
type Tracker struct {
	cur, rep map[string]Interface
	queue    []string // interfaces with a change, in the order they changed
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker {
	return &Tracker{cur: map[string]Interface{}, rep: map[string]Interface{}}
}

// Sync takes a full dump: interfaces it does not list are gone.
func (t *Tracker) Sync(list []Interface) {
	seen := map[string]bool{}
	for _, i := range list {
		seen[i.Name] = true
		t.Set(i)
	}
	for _, n := range t.names() {
		if !seen[n] {
			t.Remove(n)
		}
	}
}

// Set takes one interface's new state (a notification or a status).
func (t *Tracker) Set(i Interface) {
	t.cur[i.Name] = i
	t.mark(i.Name)
}

// Remove forgets an interface.
func (t *Tracker) Remove(name string) {
	delete(t.cur, name)
	t.mark(name)
}

func (t *Tracker) differs(name string) bool {
	c, okC := t.cur[name]
	r, okR := t.rep[name]
	return okC != okR || okC && !c.Same(r)
}

func (t *Tracker) mark(name string) {
	queued := slices.Contains(t.queue, name)
	switch d := t.differs(name); {
	case d && !queued:
		t.queue = append(t.queue, name)
	case !d && queued:
		t.queue = slices.DeleteFunc(t.queue, func(n string) bool { return n == name })
	}
}

// Pending counts the interfaces with a change not yet taken.
func (t *Tracker) Pending() int { return len(t.queue) }

// Next takes the oldest pending change.
func (t *Tracker) Next() (Change, bool) {
	for len(t.queue) > 0 {
		name := t.queue[0]
		t.queue = t.queue[1:]
		if !t.differs(name) {
			continue
		}
		ch := Change{Name: name}
		if r, ok := t.rep[name]; ok {
			ch.Old = &r
		}
		if c, ok := t.cur[name]; ok {
			ch.New = &c
			t.rep[name] = c
		} else {
			delete(t.rep, name)
		}
		return ch, true
	}
	return Change{}, false
}

// Get returns an interface's current state.
func (t *Tracker) Get(name string) (Interface, bool) {
	i, ok := t.cur[name]
	return i, ok
}

// Snapshot returns every interface's current state, by name.
func (t *Tracker) Snapshot() []Interface {
	out := make([]Interface, 0, len(t.cur))
	for _, n := range t.names() {
		out = append(out, t.cur[n])
	}
	return out
}

func (t *Tracker) names() []string {
	out := make([]string, 0, len(t.cur))
	for n := range t.cur {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
