package binding

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"time"
)

// Assignment4 is what the home agent's IPv4 pool gave one mobile router:
// an IPv4 home address and prefixes, with the lease that keeps them its.
type Assignment4 struct {
	// HoA is the router's IPv6 home address: RFC 5555 §4.5 keys the IPv4
	// home address by it.
	HoA      netip.Addr     `json:"home_address"`
	Address  netip.Addr     `json:"address_v4,omitzero"`
	Prefixes []netip.Prefix `json:"prefixes_v4,omitempty"`
	// Expires is when the lease ends. An assignment outlives its lease: the
	// router gets the same addresses back whenever it returns, unless the
	// pool ran out meanwhile and they went to another router.
	Expires time.Time `json:"expires"`
}

// Pool4 assigns IPv4 home addresses and prefixes from the home agent's
// pool_v4 (RFC 5555 §2.5). Each mobile router keeps what it was given
// (Assignments is what the daemon saves and gives back to NewPool4 after a
// restart). When the pool has no room left, the assignments whose leases
// ended longest ago are taken back, one router's at a time. It does no I/O
// and is not safe for concurrent use: the binding cache owns it.
type Pool4 struct {
	pool     netip.Prefix
	reserved []netip.Prefix
	byHoA    map[netip.Addr]*Assignment4
	// changed: an assignment was made or taken back since the last save,
	// which must not be lost; renewed: only leases moved on.
	changed, renewed bool
}

// NewPool4 returns a pool over pool that never assigns what reserved
// overlaps (the routers' static IPv4 claims, the home agent's address).
// saved are the assignments of an earlier run; those no longer inside the
// pool, or overlapping a reservation or each other, are dropped.
func NewPool4(pool netip.Prefix, reserved []netip.Prefix, saved []Assignment4) *Pool4 {
	p := &Pool4{pool: pool.Masked(), reserved: slices.Clone(reserved), byHoA: map[netip.Addr]*Assignment4{}}
	for _, a := range saved {
		if !a.HoA.Is6() || p.byHoA[a.HoA] != nil {
			p.changed = true
			continue
		}
		keep := &Assignment4{HoA: a.HoA, Expires: a.Expires}
		if a.Address.IsValid() && p.free(netip.PrefixFrom(a.Address, 32), nil) {
			keep.Address = a.Address
		}
		for _, q := range a.Prefixes {
			if q.IsValid() && q == q.Masked() && p.free(q, keep) {
				keep.Prefixes = append(keep.Prefixes, q)
			}
		}
		if !keep.Address.IsValid() && len(keep.Prefixes) == 0 {
			p.changed = true
			continue
		}
		if keep.Address != a.Address || len(keep.Prefixes) != len(a.Prefixes) {
			p.changed = true
		}
		p.byHoA[a.HoA] = keep
	}
	return p
}

// Range is the pool's prefix.
func (p *Pool4) Range() netip.Prefix { return p.pool }

// free reports whether q lies inside the pool and overlaps no reservation
// and no assignment (those of except aside).
func (p *Pool4) free(q netip.Prefix, except *Assignment4) bool {
	if !q.Addr().Is4() || q.Bits() < p.pool.Bits() || !p.pool.Contains(q.Addr()) {
		return false
	}
	for _, r := range p.reserved {
		if r.Overlaps(q) {
			return false
		}
	}
	for _, a := range p.byHoA {
		if a == except {
			continue
		}
		if a.Address.IsValid() && q.Contains(a.Address) {
			return false
		}
		for _, o := range a.Prefixes {
			if o.Overlaps(q) {
				return false
			}
		}
	}
	if except != nil {
		if except.Address.IsValid() && q.Contains(except.Address) {
			return false
		}
		for _, o := range except.Prefixes {
			if o.Overlaps(q) {
				return false
			}
		}
	}
	return true
}

// Owns reports whether q is an address (a /32) or prefix the pool gave the
// router with home address hoa.
func (p *Pool4) Owns(hoa netip.Addr, q netip.Prefix) bool {
	a := p.byHoA[hoa]
	if a == nil {
		return false
	}
	if q.Bits() == 32 && a.Address == q.Addr() {
		return true
	}
	return slices.Contains(a.Prefixes, q)
}

// Address returns the router's IPv4 home address, assigning one if it has
// none; false when the pool is full.
func (p *Pool4) Address(hoa netip.Addr, now time.Time) (netip.Addr, bool) {
	if a := p.byHoA[hoa]; a != nil && a.Address.IsValid() {
		return a.Address, true
	}
	q, ok := p.assign(hoa, 32, now)
	return q.Addr(), ok
}

// Prefix returns a prefix of the router's of bits length that skip does not
// hold (those already granted in the same registration), assigning one if
// it has none; false when the pool has no room for it.
func (p *Pool4) Prefix(hoa netip.Addr, bits int, skip []netip.Prefix, now time.Time) (netip.Prefix, bool) {
	if bits < p.pool.Bits() || bits > 32 {
		return netip.Prefix{}, false
	}
	if a := p.byHoA[hoa]; a != nil {
		for _, q := range a.Prefixes {
			if q.Bits() == bits && !slices.Contains(skip, q) {
				return q, true
			}
		}
	}
	return p.assign(hoa, bits, now)
}

// assign finds room for a block of bits length, taking back expired
// assignments of other routers while there is none.
func (p *Pool4) assign(hoa netip.Addr, bits int, now time.Time) (netip.Prefix, bool) {
	for {
		if q, ok := p.find(bits); ok {
			a := p.byHoA[hoa]
			if a == nil {
				a = &Assignment4{HoA: hoa, Expires: now}
				p.byHoA[hoa] = a
			}
			if bits == 32 {
				a.Address = q.Addr()
			} else {
				a.Prefixes = append(a.Prefixes, q)
			}
			p.changed = true
			return q, true
		}
		if !p.reclaim(hoa, now) {
			return netip.Prefix{}, false
		}
	}
}

// reclaim takes back the assignment of another router whose lease ended
// longest ago; false when none has ended.
func (p *Pool4) reclaim(keep netip.Addr, now time.Time) bool {
	var oldest *Assignment4
	for _, a := range p.byHoA {
		if a.HoA != keep && a.Expires.Before(now) && (oldest == nil || a.Expires.Before(oldest.Expires) ||
			a.Expires.Equal(oldest.Expires) && a.HoA.Less(oldest.HoA)) {
			oldest = a
		}
	}
	if oldest == nil {
		return false
	}
	delete(p.byHoA, oldest.HoA)
	p.changed = true
	return true
}

// find returns the lowest free block of bits length. It walks the used
// ranges in address order, jumping past each, so that a pool of thousands
// of assignments costs one pass; a single address never takes the pool's
// first or last one.
func (p *Pool4) find(bits int) (netip.Prefix, bool) {
	type span struct{ lo, hi uint64 }
	var used []span
	add := func(q netip.Prefix) {
		lo := uint64(u32(q.Masked().Addr()))
		used = append(used, span{lo, lo + 1<<(32-q.Bits()) - 1})
	}
	for _, r := range p.reserved {
		if r.Addr().Is4() {
			add(r)
		}
	}
	for _, a := range p.byHoA {
		if a.Address.IsValid() {
			add(netip.PrefixFrom(a.Address, 32))
		}
		for _, q := range a.Prefixes {
			add(q)
		}
	}
	start := uint64(u32(p.pool.Addr()))
	end := start + 1<<(32-p.pool.Bits()) - 1
	if bits == 32 {
		used = append(used, span{start, start}, span{end, end})
	}
	slices.SortFunc(used, func(a, b span) int { return int(int64(a.lo) - int64(b.lo)) })
	size := uint64(1) << (32 - bits)
	c := start
	for _, u := range used {
		if c+size-1 < u.lo {
			break
		}
		if u.hi >= c {
			c = (u.hi + 1 + size - 1) / size * size
		}
	}
	if c+size-1 > end {
		return netip.Prefix{}, false
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(c))
	return netip.PrefixFrom(netip.AddrFrom4(b), bits), true
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// Renew extends the router's lease to until.
func (p *Pool4) Renew(hoa netip.Addr, until time.Time) {
	if a := p.byHoA[hoa]; a != nil && until.After(a.Expires) {
		a.Expires = until
		p.renewed = true
	}
}

// Assignments returns every assignment, by home address, for saving.
func (p *Pool4) Assignments() []Assignment4 {
	out := make([]Assignment4, 0, len(p.byHoA))
	for _, a := range p.byHoA {
		c := *a
		c.Prefixes = slices.Clone(a.Prefixes)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Assignment4) int { return a.HoA.Compare(b.HoA) })
	return out
}

// Changed reports whether an assignment was made or taken back since the
// last Saved: save it before the router relies on it.
func (p *Pool4) Changed() bool { return p.changed }

// Renewed reports whether only leases moved on since the last Saved: a
// save can wait.
func (p *Pool4) Renewed() bool { return p.renewed }

// Saved marks the assignments as saved.
func (p *Pool4) Saved() { p.changed, p.renewed = false, false }

// Used is how many addresses of the pool are assigned.
func (p *Pool4) Used() uint64 {
	var n uint64
	for _, a := range p.byHoA {
		if a.Address.IsValid() {
			n++
		}
		for _, q := range a.Prefixes {
			n += 1 << (32 - q.Bits())
		}
	}
	return n
}

// SetReserved replaces what the pool must not assign (the routers' static
// claims changed on a reload): assignments that now overlap a reservation
// are taken back.
func (p *Pool4) SetReserved(reserved []netip.Prefix) {
	p.reserved = slices.Clone(reserved)
	for hoa, a := range p.byHoA {
		keep := a.Prefixes[:0]
		for _, q := range a.Prefixes {
			if !p.overlapsReserved(q) {
				keep = append(keep, q)
			} else {
				p.changed = true
			}
		}
		a.Prefixes = keep
		if a.Address.IsValid() && p.overlapsReserved(netip.PrefixFrom(a.Address, 32)) {
			a.Address, p.changed = netip.Addr{}, true
		}
		if !a.Address.IsValid() && len(a.Prefixes) == 0 {
			delete(p.byHoA, hoa)
		}
	}
}

func (p *Pool4) overlapsReserved(q netip.Prefix) bool {
	for _, r := range p.reserved {
		if r.Overlaps(q) {
			return true
		}
	}
	return false
}

// Of returns the assignment of the router with home address hoa.
func (p *Pool4) Of(hoa netip.Addr) (Assignment4, bool) {
	a := p.byHoA[hoa]
	if a == nil {
		return Assignment4{}, false
	}
	c := *a
	c.Prefixes = slices.Clone(a.Prefixes)
	return c, true
}
