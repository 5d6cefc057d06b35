package config

import (
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Prefix delegation and LAN router advertisements (packages dhcpv6pd, ra):
// the options of `config router`, `config homeagent`, `config
// mobile_router` and the `config pd_pool` sections. load.go calls these
// before each section's finish(), so that their options count as known.

// Defaults of the prefix delegation options.
const (
	DefaultRouterLeaseFile = "/var/lib/nemod/pd-lease.json"
	DefaultHALeaseFile     = "/var/lib/nemod/pd-leases.json"
	// The delegating router's lifetimes (RFC 6276 leaves them to the
	// operator): four hours preferred, a day valid, so that a router out
	// of coverage for an afternoon keeps its prefix.
	DefaultPDPreferred = 4 * time.Hour
	DefaultPDValid     = 24 * time.Hour
)

// RouterPD is the mobile router's side (options of `config router`).
type RouterPD struct {
	// Enabled: option reqprefix is set (or option pd '1'): ask the home
	// agent for prefixes (RFC 6276) and register in implicit mode.
	Enabled bool
	// ReqPrefix is option reqprefix: the prefix length hint, 0 for "auto"
	// (no hint), as OpenWrt's DHCPv6 client takes it.
	ReqPrefix int
	LeaseFile string       // option lease_file
	DNS       []netip.Addr // list dns: advertised in the LANs' RAs (RDNSS)
	LanRA     bool         // option lan_ra, default '1': advertise the MNPs on every list lan interface
	IP6Assign int          // option ip6assign: the piece of each MNP a LAN gets, default 64
	// Release is option pd_release: give the prefixes back when the
	// daemon stops. Off by default: a router that restarts (or loses
	// power with its vehicle) Rebinds with its stored lease and keeps its
	// prefix (RFC 6276 §3.1).
	Release bool
}

// HomeAgentPD is the home agent's side. HomeAgent.PD is nil when the file
// has neither a pd_pool section nor option dhcpv6_server.
type HomeAgentPD struct {
	Pools []PDPool // `config pd_pool` sections, in file order
	// Server is option dhcpv6_server: relay to this DHCPv6 server instead
	// of delegating from the pools. Invalid: none.
	Server    netip.Addr
	LeaseFile string // option lease_file
	// Preferred and Valid are option pd_preferred_lifetime and
	// pd_valid_lifetime (seconds): the lifetimes the built-in delegating
	// router gives.
	Preferred, Valid time.Duration
}

// PDPool is a `config pd_pool` section.
type PDPool struct {
	Name   string
	Prefix netip.Prefix // option prefix
	Length int          // option length: the size of each delegated prefix
	Line   int
}

// PDRouters are the mobile routers with option pd '1', by home address,
// each with its option pd_pool ("" = the first pool).
func (h *HomeAgent) PDRouters() map[netip.Addr]string {
	out := map[netip.Addr]string{}
	for _, m := range h.MobileRouters {
		if m.PD {
			out[m.HomeAddress] = m.PDPool
		}
	}
	return out
}

// flag reads a UCI boolean ('1'/'0' and the words uci accepts).
func (x *section) flag(name string, def bool) bool {
	v, o, ok := x.scalar(name)
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "1", "on", "yes", "true", "enabled":
		return true
	case "0", "off", "no", "false", "disabled":
		return false
	}
	x.errorf(o, "%s is not a boolean ('1' or '0')", show(v))
	return def
}

func (x *section) leaseFile(def string) string {
	v, o, ok := x.scalar("lease_file")
	if !ok {
		return def
	}
	if !filepath.IsAbs(v) || strings.ContainsRune(v, 0) {
		x.errorf(o, "%s is not an absolute path", show(v))
		return def
	}
	return v
}

// routerPD reads the router section's prefix delegation and LAN options.
func (d *decoder) routerPD(x *section, router *Router) *RouterPD {
	r := &RouterPD{Enabled: x.flag("pd", false), LeaseFile: x.leaseFile(DefaultRouterLeaseFile),
		LanRA: x.flag("lan_ra", true), IP6Assign: 64, Release: x.flag("pd_release", false)}
	if v, o, ok := x.scalar("reqprefix"); ok {
		r.Enabled = true
		if v != "auto" {
			n, inRange := uintIn(v, 1, 64)
			if !isDigits(v) || !inRange {
				x.errorf(o, "%s is not a prefix length (1..64) or 'auto'", show(v))
			}
			r.ReqPrefix = int(n)
		}
	}
	if r.Enabled && !router.HomeAgent.IsValid() && x.s.Option("home_agent_v4") != nil && x.s.Option("home_agent") == nil {
		// The relay's messages go to the home agent's IPv6 address.
		o := x.s.Option("reqprefix")
		if o == nil {
			o = x.s.Option("pd")
		}
		x.errorf(o, "prefix delegation needs option home_agent (IPv6)")
	}
	if v, o, ok := x.scalar("ip6assign"); ok {
		n, inRange := uintIn(v, 1, 64)
		if !isDigits(v) || !inRange {
			x.errorf(o, "%s is not a prefix length (1..64)", show(v))
		} else {
			r.IP6Assign = int(n)
		}
	}
	if o := x.items("dns"); o != nil {
		for i, v := range o.Values {
			a, msg := ipv6Addr(v, "")
			if msg != "" {
				x.itemErrorf(o, i, "%s", msg)
				continue
			}
			r.DNS = append(r.DNS, a)
		}
	}
	return r
}

// mobileRouterPD reads a mobile_router section's option pd and pd_pool.
func (m *section) mobileRouterPD(mr *MobileRouter) {
	mr.PD = m.flag("pd", false)
	mr.PDPool, _, _ = m.scalar("pd_pool")
}

// homeAgentPD reads the home agent section's prefix delegation options and
// the pd_pool sections; nil when there is neither a pool nor a server.
func (d *decoder) homeAgentPD(x *section, pools []*section, home netip.Prefix) *HomeAgentPD {
	h := &HomeAgentPD{LeaseFile: x.leaseFile(DefaultHALeaseFile),
		Preferred: x.seconds("pd_preferred_lifetime", DefaultPDPreferred, 1, 1<<31),
		Valid:     x.seconds("pd_valid_lifetime", DefaultPDValid, 1, 1<<31)}
	if h.Preferred > h.Valid {
		o := x.s.Option("pd_preferred_lifetime")
		if o == nil {
			o = x.s.Option("pd_valid_lifetime")
		}
		x.errorf(o, "the preferred lifetime (%v) exceeds the valid lifetime (%v)", h.Preferred, h.Valid)
	}
	srv, so := x.ipv6("dhcpv6_server", "")
	h.Server = srv
	names := map[string]int{}
	for _, p := range pools {
		pp, po, ok := parsed(p, "prefix", ipv6Prefix)
		v, lo, lok := p.scalar("length")
		p.finish()
		if prev, dup := names[p.name]; dup {
			d.errorf(p.s.Line, "%s: a second pd_pool of that name (the first is at line %d)", p.label, prev)
			continue
		}
		names[p.name] = p.s.Line
		if po == nil {
			p.missing("option prefix", "")
		}
		n, inRange := uintIn(v, 1, 64)
		switch {
		case lo == nil:
			n = 56 // the usual size for a site (RFC 6177)
		case !lok || !isDigits(v) || !inRange:
			p.errorf(lo, "%s is not a prefix length (1..64)", show(v))
			continue
		}
		if !ok {
			continue
		}
		if int(n) <= pp.Bits() {
			p.errorf(lo, "/%d pieces do not fit in %v", n, pp)
			continue
		}
		if home.IsValid() && home.Overlaps(pp) {
			p.errorf(po, "%v overlaps the home prefix %v", pp, home)
			continue
		}
		clash := false
		for _, q := range h.Pools {
			if q.Prefix.Overlaps(pp) {
				p.errorf(po, "%v overlaps pd_pool %q (line %d)", pp, q.Name, q.Line)
				clash = true
			}
		}
		if !clash {
			h.Pools = append(h.Pools, PDPool{Name: p.name, Prefix: pp, Length: int(n), Line: p.s.Line})
		}
	}
	if so != nil && len(pools) > 0 {
		x.errorf(so, "a server to relay to and pd_pool sections: give one or the other")
	}
	if so == nil && len(pools) == 0 {
		return nil
	}
	return h
}

// checkPDRouters checks the mobile routers' option pd and pd_pool against
// the home agent's pools, once all are decoded.
func (d *decoder) checkPDRouters(h *HomeAgent, mrs []*section) {
	if h.PD != nil {
		// A pool's prefixes go to routers that do not have them
		// configured: one configured for a router already cannot be
		// delegated to another.
		for _, pool := range h.PD.Pools {
			for _, mr := range h.MobileRouters {
				for _, q := range mr.MNPs {
					if pool.Prefix.Overlaps(q) {
						d.errorf(pool.Line, "pd_pool %q: %v overlaps mnp %v of mobile_router %q (line %d)", pool.Name, pool.Prefix, q, mr.Name, mr.Line)
					}
				}
			}
		}
	}
	for i, m := range mrs {
		mr := &h.MobileRouters[i]
		if !mr.PD {
			if o := m.s.Option("pd_pool"); o != nil {
				d.warnf(o.Line, "%s: option pd_pool without option pd '1' is ignored", m.label)
			}
			continue
		}
		if h.PD == nil {
			d.errorf(m.s.Option("pd").Line, "%s: option pd needs a pd_pool section or option dhcpv6_server in the homeagent section", m.label)
			continue
		}
		if mr.PDPool == "" {
			continue
		}
		o := m.s.Option("pd_pool")
		found := false
		for _, p := range h.PD.Pools {
			found = found || p.Name == mr.PDPool
		}
		if !found {
			m.errorf(o, "no pd_pool %s", quote(mr.PDPool))
		}
	}
}

// diffRouterPD is DiffRouter for the options of RouterPD.
func diffRouterPD(opt func(string, bool), o, n *RouterPD) {
	if o == nil || n == nil {
		opt("reqprefix", (o == nil) != (n == nil))
		return
	}
	opt("pd", o.Enabled != n.Enabled)
	opt("reqprefix", o.ReqPrefix != n.ReqPrefix)
	opt("lease_file", o.LeaseFile != n.LeaseFile)
	opt("dns", !slices.Equal(o.DNS, n.DNS))
	opt("lan_ra", o.LanRA != n.LanRA)
	opt("ip6assign", o.IP6Assign != n.IP6Assign)
	opt("pd_release", o.Release != n.Release)
}

// diffHomeAgentPD is DiffHomeAgent for the options of HomeAgentPD and the
// pd_pool sections.
func diffHomeAgentPD(d *differ, opt func(string, bool), o, n *HomeAgentPD) {
	var none HomeAgentPD
	if o == nil {
		o = &none
	}
	if n == nil {
		n = &none
	}
	opt("dhcpv6_server", o.Server != n.Server)
	// A home agent without delegation has no lease file to compare.
	opt("lease_file", o != &none && n != &none && o.LeaseFile != n.LeaseFile)
	opt("pd_preferred_lifetime", o != &none && n != &none && o.Preferred != n.Preferred)
	opt("pd_valid_lifetime", o != &none && n != &none && o.Valid != n.Valid)
	named(o.Pools, n.Pools, func(p *PDPool) string { return p.Name },
		func(op, np *PDPool) {
			d.option("pd_pool", np.Name, np.Line, "prefix", op.Prefix != np.Prefix)
			d.option("pd_pool", np.Name, np.Line, "length", op.Length != np.Length)
		},
		func(np *PDPool) { d.section("pd_pool", np.Name, np.Line) },
		func(op *PDPool) { d.section("pd_pool", op.Name, op.Line) })
}
