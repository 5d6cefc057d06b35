package tunnel

import (
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"nemod/internal/logsum"
	"nemod/status"
)

// A home agent serving a fleet: mobile routers added and removed while it
// runs (authorized by RADIUS), routes for what is registered rather than
// what is configured, and traffic between two of its mobile networks kept
// in the data plane (hairpin.go).

// fleet is the HA's state for these; the event loop owns it, but for the
// counters.
type fleet struct {
	static  []HARouter
	dynamic map[netip.Addr]HARouter
	// dirty: routers were added or removed since the lookup table was
	// built; Commit builds it again.
	dirty     bool
	routeErrs *logsum.Summarizer
	// Hairpin counters, written by the readers.
	hpPackets, hpOctets, hpDropped atomic.Uint64
}

func (h *HA) fleetInit() {
	h.fleet.dynamic = map[netip.Addr]HARouter{}
	h.fleet.routeErrs = logsum.New("route changes failed", 3, 10*time.Second)
}

// setRouters installs the configured routers beside the ones added at run
// time, and routes the home link and what is registered.
func (h *HA) setRouters(routers []HARouter) error {
	h.fleet.static = slices.Clone(routers)
	for _, r := range routers {
		delete(h.fleet.dynamic, r.HoA) // a configured router takes precedence
	}
	h.build()
	return h.sys.RoutePrefixes(h.tun.Name(), []netip.Prefix{h.cfg.HomePrefix})
}

// build makes the lookup table and the slots from the configured and the
// added routers. Slots that stay keep their registrations.
func (h *HA) build() {
	entries := map[netip.Prefix]*routerSlot{}
	slots := map[netip.Addr]*routerSlot{}
	add := func(r HARouter) {
		s := h.slots[r.HoA]
		if s == nil {
			s = &routerSlot{hoa: r.HoA, stats: map[uint16]*Stats{}}
		}
		slots[r.HoA] = s
		entries[netip.PrefixFrom(r.HoA, 128)] = s
		for _, p := range r.Prefixes {
			entries[p] = s
		}
	}
	for _, r := range h.fleet.static {
		add(r)
	}
	for _, r := range h.fleet.dynamic {
		add(r)
	}
	for hoa, s := range h.slots {
		if slots[hoa] == nil {
			for _, o := range s.outers {
				h.byOuter.Delete(o)
			}
			if v := s.view.Swap(nil); v != nil {
				h.announce(hoa, v, nil)
			}
			h.forget(s) // a router no longer served
		}
	}
	h.slots = slots
	h.table.Store(newPrefixTable(entries))
	h.fleet.dirty = false
}

// AddRouter adds a mobile router authorized at run time, with the
// prefixes it may claim. A configured router with that home address takes
// precedence. The packets find it after the next Commit.
func (h *HA) AddRouter(r HARouter) {
	for _, s := range h.fleet.static {
		if s.HoA == r.HoA {
			return
		}
	}
	if old, ok := h.fleet.dynamic[r.HoA]; ok && slices.Equal(old.Prefixes, r.Prefixes) {
		return
	}
	h.fleet.dynamic[r.HoA] = HARouter{HoA: r.HoA, Prefixes: slices.Clone(r.Prefixes)}
	if h.slots[r.HoA] == nil {
		h.slots[r.HoA] = &routerSlot{hoa: r.HoA, stats: map[uint16]*Stats{}}
	}
	h.fleet.dirty = true
}

// RemoveRouter removes a router AddRouter added, its bindings and routes.
func (h *HA) RemoveRouter(hoa netip.Addr) {
	if _, ok := h.fleet.dynamic[hoa]; !ok {
		return
	}
	h.Update(hoa, nil, nil, nil)
	delete(h.fleet.dynamic, hoa)
	h.fleet.dirty = true
}

// Commit builds the lookup table again when routers were added or
// removed: the daemon calls it once per batch of signalling, so that a
// burst of new routers costs one build.
func (h *HA) Commit() {
	if h.fleet.dirty {
		h.build()
	}
}

// announce follows a router's registration into the routes: its home
// address and the prefixes it registered while it has bindings (the view
// new), none otherwise; old is the view before.
func (h *HA) announce(hoa netip.Addr, old, new *routerView) {
	have, want := routesOf(hoa, old), routesOf(hoa, new)
	var add, del []netip.Prefix
	for _, p := range want {
		if !slices.Contains(have, p) {
			add = append(add, p)
		}
	}
	for _, p := range have {
		if !slices.Contains(want, p) {
			del = append(del, p)
		}
	}
	if len(add) == 0 && len(del) == 0 {
		return
	}
	if err := h.sys.RouteChange(h.tun.Name(), add, del); err != nil && h.fleet.routeErrs.Admit("route", time.Now()) {
		h.log.Warn("routes of a mobile router", "home_address", hoa, "err", err)
	}
}

// routesOf is what a view announces.
func routesOf(hoa netip.Addr, v *routerView) []netip.Prefix {
	if v == nil || !v.announced {
		return nil
	}
	out := make([]netip.Prefix, 0, 1+len(v.prefixes))
	out = append(out, netip.PrefixFrom(hoa, 128))
	for _, p := range v.prefixes {
		out = append(out, p.Masked())
	}
	return out
}

// Routed returns the prefixes announced for registered routers (their
// home addresses as /128 and their registered prefixes), sorted.
func (h *HA) Routed() []netip.Prefix {
	var out []netip.Prefix
	for hoa, s := range h.slots {
		out = append(out, routesOf(hoa, s.view.Load())...)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return out
}

// Hairpin returns the counts of the traffic carried between two of the
// home agent's mobile networks.
func (h *HA) Hairpin() status.Hairpin {
	return status.Hairpin{Packets: h.fleet.hpPackets.Load(), Octets: h.fleet.hpOctets.Load(), Dropped: h.fleet.hpDropped.Load()}
}

// RouterTraffic returns the counts of every binding a router has had.
func (h *HA) RouterTraffic(hoa netip.Addr) status.Traffic {
	var t status.Traffic
	if s := h.slots[hoa]; s != nil {
		for _, st := range s.stats {
			x := st.Traffic()
			t.TxPackets += x.TxPackets
			t.TxBytes += x.TxBytes
			t.RxPackets += x.RxPackets
			t.RxBytes += x.RxBytes
		}
	}
	return t
}
