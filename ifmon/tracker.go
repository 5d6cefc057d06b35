// Package ifmon tells the mobile router, without polling, what each of its
// uplink devices can carry: carrier, a usable IPv6 and IPv4 address, a
// default route per family and the MTU.
//
// The package is split the project's usual way. Tracker is the pure core: it
// folds netlink-style messages into per-device state, takes the time as a
// parameter and does no I/O, so its tests need neither root nor Linux and run
// on big-endian MIPS under qemu. Monitor is the thin netlink shell around it.
package ifmon

import (
	"net/netip"
	"slices"
	"time"
)

// Kernel values the messages carry. They are spelled out here rather than
// taken from golang.org/x/sys/unix so that the core builds on any GOOS.
const (
	FlagUp      = 0x1     // IFF_UP: administratively up
	FlagLowerUp = 0x10000 // IFF_LOWER_UP: the driver signals carrier

	OperUnknown        = 0 // IF_OPER_UNKNOWN: drivers without operstate (tun, many wwan)
	OperNotPresent     = 1
	OperDown           = 2
	OperLowerLayerDown = 3 // a veth whose peer is down shows this
	OperTesting        = 4
	OperDormant        = 5 // e.g. Wi-Fi associated but 802.1X not finished
	OperUp             = 6

	AddrSecondary  = 0x01 // IFA_F_SECONDARY (IPv4); same bit as IFA_F_TEMPORARY
	AddrTemporary  = 0x01 // IFA_F_TEMPORARY (IPv6 privacy address)
	AddrNoDAD      = 0x02
	AddrOptimistic = 0x04
	AddrDADFailed  = 0x08
	AddrHome       = 0x10
	AddrDeprecated = 0x20
	AddrTentative  = 0x40
	AddrPermanent  = 0x80

	FamilyV4 = 2  // AF_INET
	FamilyV6 = 10 // AF_INET6

	TableMain = 254 // RT_TABLE_MAIN

	RouteUnicast = 1 // RTN_UNICAST
)

// DefaultUpHold is the hold-down of Options.UpHold when it is left zero.
const DefaultUpHold = 50 * time.Millisecond

// Link is what the router needs to know about one uplink device.
type Link struct {
	Name   string
	Index  int // 0 while the device does not exist
	Exists bool
	// Up is administratively up and carrier, after the up hold-down.
	Up  bool
	MTU int
	// IPv6 is the best usable global address. Addresses are reported as the
	// kernel has them even while Up is false; the router decides with Up.
	IPv6     netip.Addr
	IPv4     netip.Addr // primary global IPv4 address
	Gateway6 netip.Addr // next hop of the chosen default route; zero if on-link
	Gateway4 netip.Addr
	Default6 bool // a main-table IPv6 default route via this device exists
	Default4 bool
}

// Usable6 reports whether the device can carry IPv6 traffic now.
func (l Link) Usable6() bool { return l.Up && l.IPv6.IsValid() && l.Default6 }

// Usable4 reports whether the device can carry IPv4 traffic now.
func (l Link) Usable4() bool { return l.Up && l.IPv4.IsValid() && l.Default4 }

// Options tune the Tracker and the Monitor. The zero value is ready to use.
type Options struct {
	// UpHold: a device must stay up this long before "up" is reported;
	// losses are reported at once. Zero means DefaultUpHold, a negative
	// value no hold at all. It coalesces carrier flaps into one late "up"
	// without delaying a real loss.
	UpHold time.Duration

	// NetNS is the path of the network namespace to watch, e.g.
	// /run/netns/NAME. Empty means the namespace of the goroutine that calls
	// Start. The core ignores it; it is a path rather than a handle so the
	// core stays free of Linux-only types.
	NetNS string

	// RecvBuffer is the receive buffer asked for each netlink socket, in
	// bytes; zero means 1 MiB. The kernel caps it at net.core.rmem_max, so
	// an overrun stays possible: the Monitor then resyncs.
	RecvBuffer int
}

func (o Options) upHold() time.Duration {
	switch {
	case o.UpHold == 0:
		return DefaultUpHold
	case o.UpHold < 0:
		return 0
	}
	return o.UpHold
}

// LinkMsg is an RTM_NEWLINK / RTM_DELLINK in the core's terms.
type LinkMsg struct {
	Index     int
	Name      string // empty keeps the name already known
	Flags     uint32 // kernel IFF_* bits (ifinfomsg.ifi_flags), see FlagUp
	OperState uint8  // IF_OPER_*
	MTU       int
	Deleted   bool
}

// AddrMsg is an RTM_NEWADDR / RTM_DELADDR in the core's terms.
type AddrMsg struct {
	Index   int
	Prefix  netip.Prefix // the local address and its prefix length
	Flags   int          // IFA_F_* (the 32-bit IFA_FLAGS when present)
	Scope   int          // RT_SCOPE_*: 0 is global
	Deleted bool
	// Lifetimes in seconds as IFA_CACHEINFO has them. 0xffffffff is
	// forever, which a 32-bit int sees as -1. Both zero means unknown.
	PreferredLft, ValidLft int
}

// RouteMsg is an RTM_NEWROUTE / RTM_DELROUTE in the core's terms, one per
// next hop: the shell splits multipath routes.
type RouteMsg struct {
	Index    int
	Dst      netip.Prefix // invalid, ::/0 or 0.0.0.0/0 is a default route
	Gateway  netip.Addr
	Table    int // 0 is taken as the main table
	Family   int // FamilyV4 / FamilyV6; 0 derives it from Dst or Gateway
	Deleted  bool
	Priority int
	Type     int // RTN_*; 0 is taken as unicast
	// Replace is NLM_F_REPLACE on a new route: the kernel then drops the
	// route it replaced, on whichever device, without a RTM_DELROUTE.
	Replace bool
}

// Tracker is the pure core: it folds netlink-style updates into Link state.
// It is not safe for concurrent use; the Monitor owns one per goroutine.
type Tracker struct {
	devices []string
	hold    time.Duration

	ifs     map[int]*iface
	linkSeq uint64 // orders link messages, to resolve names deterministically

	// carry keeps, across Reset, when each device that was up came up, so a
	// re-list that finds it still up with the same index does not restart
	// the hold-down and report a loss that never happened.
	carry map[int]time.Time

	doubt bool // see Doubtful

	last        []Link
	lastCurrent time.Time
	gen         uint64
}

type iface struct {
	known   bool // a link message was seen; addresses may arrive first
	name    string
	seq     uint64
	flags   uint32
	oper    uint8
	mtu     int
	up      bool
	upSince time.Time
	addrs   []addrEntry // in arrival order, which is the kernel's dump order
	routes  map[routeKey]struct{}
}

type addrEntry struct {
	prefix     netip.Prefix
	flags      int
	scope      int
	pref, vald int
}

// routeKey identifies a route the way RTM_DELROUTE names it, so that deleting
// one of two default routes with different metrics keeps the other.
type routeKey struct {
	family, table int
	dst           netip.Prefix
	gw            netip.Addr
	prio          int
}

// NewTracker tracks the named devices, reported in this order. Duplicate
// names are reported once.
func NewTracker(devices []string, opts Options) *Tracker {
	var devs []string
	for _, d := range devices {
		if !slices.Contains(devs, d) {
			devs = append(devs, d)
		}
	}
	return &Tracker{
		devices: devs,
		hold:    opts.upHold(),
		ifs:     map[int]*iface{},
	}
}

// Devices returns the tracked device names in reporting order.
func (t *Tracker) Devices() []string { return slices.Clone(t.devices) }

func (t *Tracker) get(index int) *iface {
	f := t.ifs[index]
	if f == nil {
		f = &iface{routes: map[routeKey]struct{}{}}
		t.ifs[index] = f
	}
	return f
}

// gc drops an index that only stray address or route messages created, so
// reordering across the three netlink sockets cannot grow the map forever.
func (t *Tracker) gc(index int) {
	if f := t.ifs[index]; f != nil && !f.known && len(f.addrs) == 0 && len(f.routes) == 0 {
		delete(t.ifs, index)
	}
}

func linkUp(flags uint32, oper uint8) bool {
	if flags&FlagUp == 0 || flags&FlagLowerUp == 0 {
		return false
	}
	// Dormant, testing and lower-layer-down all mean "no traffic yet" even
	// with IFF_LOWER_UP; drivers without operstate report unknown.
	return oper == OperUp || oper == OperUnknown
}

// Link folds a link message in.
func (t *Tracker) Link(m LinkMsg, now time.Time) {
	if m.Index <= 0 {
		return
	}
	if m.Deleted {
		// Addresses and routes go with the device; the kernel's own
		// deletions for them may arrive later on other sockets, or never.
		delete(t.ifs, m.Index)
		delete(t.carry, m.Index)
		return
	}
	f := t.get(m.Index)
	t.linkSeq++
	f.known = true
	f.seq = t.linkSeq
	if m.Name != "" {
		f.name = m.Name
	}
	f.flags, f.oper, f.mtu = m.Flags, m.OperState, m.MTU
	up := linkUp(m.Flags, m.OperState)
	switch {
	case up && !f.up:
		f.upSince = now
		if s, ok := t.carry[m.Index]; ok {
			f.upSince = s
		}
	case !up:
		f.upSince = time.Time{}
	}
	f.up = up
	delete(t.carry, m.Index)
	if m.Flags&FlagUp == 0 {
		// Taking a device down makes the kernel flush its IPv4 routes
		// without any RTM_DELROUTE (IPv6 ones are notified); mirror it.
		clear(f.routes)
	}
}

func normPrefix(p netip.Prefix) netip.Prefix {
	a := p.Addr()
	if a.Is4In6() {
		bits := max(p.Bits()-96, 0)
		return netip.PrefixFrom(a.Unmap(), bits)
	}
	return netip.PrefixFrom(a.WithZone(""), p.Bits())
}

// sameAddr tells whether two entries are one kernel address: IPv6 names an
// address by itself, IPv4 by address and prefix length.
func sameAddr(a, b netip.Prefix) bool {
	if a.Addr().Is6() {
		return a.Addr() == b.Addr()
	}
	return a == b
}

// Addr folds an address message in.
func (t *Tracker) Addr(m AddrMsg, now time.Time) {
	if m.Index <= 0 || !m.Prefix.IsValid() {
		return
	}
	p := normPrefix(m.Prefix)
	if m.Deleted {
		f := t.ifs[m.Index]
		if f == nil {
			return
		}
		f.addrs = slices.DeleteFunc(f.addrs, func(e addrEntry) bool { return sameAddr(e.prefix, p) })
		if p.Addr().Is4() && !slices.ContainsFunc(f.addrs, func(e addrEntry) bool { return e.prefix.Addr().Is4() }) {
			// The last IPv4 address gone, the kernel disables IPv4 on the
			// device and flushes its IPv4 routes, again silently.
			for k := range f.routes {
				if k.family == FamilyV4 {
					delete(f.routes, k)
				}
			}
		}
		t.gc(m.Index)
		return
	}
	f := t.get(m.Index)
	e := addrEntry{prefix: p, flags: m.Flags, scope: m.Scope, pref: m.PreferredLft, vald: m.ValidLft}
	if i := slices.IndexFunc(f.addrs, func(e addrEntry) bool { return sameAddr(e.prefix, p) }); i >= 0 {
		// An update (DAD done, lifetimes refreshed) keeps the kernel order.
		f.addrs[i] = e
		return
	}
	f.addrs = append(f.addrs, e)
}

func isDefault(p netip.Prefix) bool { return !p.IsValid() || p.Bits() == 0 }

func routeFamily(m RouteMsg) int {
	if m.Family != 0 {
		return m.Family
	}
	switch {
	case m.Dst.IsValid() && m.Dst.Addr().Unmap().Is4(), m.Gateway.IsValid() && m.Gateway.Unmap().Is4():
		return FamilyV4
	case m.Dst.IsValid(), m.Gateway.IsValid():
		return FamilyV6
	}
	return 0
}

// Route folds a route message in. Only main-table unicast default routes
// matter; everything else is dropped here.
func (t *Tracker) Route(m RouteMsg, now time.Time) {
	fam := routeFamily(m)
	table := m.Table
	if table == 0 {
		table = TableMain
	}
	if m.Index <= 0 || table != TableMain || !isDefault(m.Dst) ||
		(m.Type != 0 && m.Type != RouteUnicast) || (fam != FamilyV4 && fam != FamilyV6) {
		return
	}
	gw := m.Gateway
	if gw.Is4In6() {
		gw = gw.Unmap()
	}
	k := routeKey{family: fam, table: table, gw: gw, prio: m.Priority}
	if m.Deleted {
		if f := t.ifs[m.Index]; f != nil {
			delete(f.routes, k)
			t.gc(m.Index)
		}
		return
	}
	if f := t.ifs[m.Index]; f != nil && f.known && f.flags&FlagUp == 0 {
		// The kernel refuses routes via a down device and flushes them
		// when it goes down, so this one is either older than the "down"
		// or newer than an "up" not read yet: the link and route sockets
		// lost the kernel's order. Keep it (the common case is "up, then
		// route") and let the caller re-list to settle it.
		t.doubt = true
	}
	if m.Replace {
		for i, f := range t.ifs {
			for o := range f.routes {
				if o.family == k.family && o.table == k.table && o.dst == k.dst && o.prio == k.prio {
					delete(f.routes, o)
				}
			}
			t.gc(i)
		}
	}
	t.get(m.Index).routes[k] = struct{}{}
}

// Reset forgets everything the kernel told, before a full re-list (after an
// overrun). Feed the re-list before the next Current: a device found up
// with the same index then keeps its hold-down progress instead of being
// reported as a loss followed by a fresh hold.
func (t *Tracker) Reset(now time.Time) {
	t.doubt = false
	t.carry = map[int]time.Time{}
	for i, f := range t.ifs {
		if f.up {
			t.carry[i] = f.upSince
		}
	}
	t.ifs = map[int]*iface{}
}

// Doubtful reports, and forgets, that a message contradicted what the
// kernel allows given the tracker's view: a route via a device it holds to
// be administratively down. Messages on different netlink sockets can be
// read out of the kernel's order, and only a re-list tells which came
// first; the Monitor resyncs when this is true.
func (t *Tracker) Doubtful() bool {
	d := t.doubt
	t.doubt = false
	return d
}

// resolve finds the device currently named name. Should stale messages make
// two indexes claim one name, the one the kernel spoke of last wins.
func (t *Tracker) resolve(name string) (int, *iface) {
	bi, bf := 0, (*iface)(nil)
	for i, f := range t.ifs {
		if f.known && f.name == name && (bf == nil || f.seq > bf.seq) {
			bi, bf = i, f
		}
	}
	return bi, bf
}

func usable6(e addrEntry) bool {
	a := e.prefix.Addr()
	if !a.Is6() || e.scope != 0 || !a.IsGlobalUnicast() {
		return false
	}
	if e.flags&(AddrTentative|AddrDADFailed|AddrDeprecated) != 0 {
		return false
	}
	// Preferred lifetime 0 with a known valid lifetime is deprecation even
	// before the kernel's worker sets the flag.
	return e.pref != 0 || e.vald == 0
}

func best6(addrs []addrEntry) netip.Addr {
	var best netip.Addr
	bestTemp := false
	for _, e := range addrs {
		if !usable6(e) {
			continue
		}
		temp := e.flags&AddrTemporary != 0
		a := e.prefix.Addr()
		if !best.IsValid() || (bestTemp && !temp) || (bestTemp == temp && a.Less(best)) {
			best, bestTemp = a, temp
		}
	}
	return best
}

// best4 takes the first global primary address in kernel order, else the
// first secondary: a secondary is promoted only when its primary goes.
func best4(addrs []addrEntry) netip.Addr {
	var first netip.Addr
	for _, e := range addrs {
		a := e.prefix.Addr()
		if !a.Is4() || e.scope != 0 || !a.IsGlobalUnicast() {
			continue
		}
		if e.flags&AddrSecondary == 0 {
			return a
		}
		if !first.IsValid() {
			first = a
		}
	}
	return first
}

// bestRoute picks the default route the kernel would use: lowest metric,
// then the lowest gateway for determinism.
func bestRoute(routes map[routeKey]struct{}, fam int) (netip.Addr, bool) {
	var best routeKey
	found := false
	for k := range routes {
		if k.family != fam {
			continue
		}
		if !found || k.prio < best.prio || (k.prio == best.prio && k.gw.Less(best.gw)) {
			best, found = k, true
		}
	}
	return best.gw, found
}

func (t *Tracker) compute(now time.Time) []Link {
	out := make([]Link, len(t.devices))
	for i, name := range t.devices {
		l := Link{Name: name}
		if idx, f := t.resolve(name); f != nil {
			l.Index, l.Exists, l.MTU = idx, true, f.mtu
			l.Up = f.up && !now.Before(f.upSince.Add(t.hold))
			l.IPv6 = best6(f.addrs)
			l.IPv4 = best4(f.addrs)
			l.Gateway6, l.Default6 = bestRoute(f.routes, FamilyV6)
			l.Gateway4, l.Default4 = bestRoute(f.routes, FamilyV4)
		}
		out[i] = l
	}
	return out
}

// Current returns the reported state of every configured device at now,
// after the hold-down, in the order given to NewTracker. It bumps
// Generation when that state differs from what the previous call returned.
func (t *Tracker) Current(now time.Time) []Link {
	out := t.compute(now)
	if !slices.Equal(out, t.last) {
		t.gen++
		t.last = slices.Clone(out)
	}
	t.lastCurrent = now
	// Continuity across Reset is only for the re-list fed before this call.
	t.carry = nil
	return out
}

// Changed reports whether Current(now) would return something other than
// what the previous Current returned, without recording anything.
func (t *Tracker) Changed(now time.Time) bool {
	return !slices.Equal(t.compute(now), t.last)
}

// Generation counts the changes Current has reported. A consumer that keeps
// the last generation it acted on needs no deep comparison of its own.
func (t *Tracker) Generation() uint64 { return t.gen }

// NextDeadline returns when a held "up" becomes reportable, so the caller
// can arm one timer instead of polling; zero if nothing is held. A deadline
// already past means the caller owes a Current call.
func (t *Tracker) NextDeadline() time.Time {
	var next time.Time
	for i, name := range t.devices {
		idx, f := t.resolve(name)
		if f == nil || !f.up {
			continue
		}
		d := f.upSince.Add(t.hold)
		reported := i < len(t.last) && t.last[i].Up && t.last[i].Index == idx
		// Up after the last Current, or up and not yet shown: either way
		// a Current at d changes the picture.
		if !d.After(t.lastCurrent) && reported {
			continue
		}
		if next.IsZero() || d.Before(next) {
			next = d
		}
	}
	return next
}
