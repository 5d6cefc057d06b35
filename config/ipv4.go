package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The IPv4 options of both roles (RFC 5555: an IPv4 home address and IPv4
// mobile network prefixes, carried through the IPv6 signalling). They are
// read before the sections report unknown options (readIPv4) and applied
// to the decoded model afterwards (applyIPv4), where they are checked
// against the rest of the file.

// v4Router is what a router section's IPv4 options say.
type v4Router struct {
	hoa       netip.Addr
	hoaOpt    *Option
	mnps      []prefixAt
	length    int
	lengthOpt *Option
	dhcp      *bool
	dhcpOpt   *Option
	dns       []netip.Addr
	stateDir  string
}

// v4Agent is what a homeagent section's IPv4 options say.
type v4Agent struct {
	pool     netip.Prefix
	poolOpt  *Option
	lease    time.Duration // 0: the default
	masq     bool
	masqOpt  *Option
	stateDir string
}

// v4Peer is what a mobile_router section's IPv4 options say.
type v4Peer struct {
	x      *section
	hoa    netip.Addr
	hoaOpt *Option
	mnps   []prefixAt
}

type v4Options struct {
	router *v4Router
	agent  *v4Agent
	peers  []v4Peer // by mobile_router section, in file order
}

func (d *decoder) readIPv4(routers, agents, mrs []*section) *v4Options {
	v := &v4Options{}
	if len(routers) > 0 {
		v.router = readRouterV4(routers[0])
	}
	if routerOnly {
		return v
	}
	if len(agents) > 0 {
		v.agent = readAgentV4(agents[0])
	}
	for _, m := range mrs {
		p := v4Peer{x: m}
		p.hoa, p.hoaOpt, _ = parsed(m, "home_address_v4", func(s string) (netip.Addr, string) { return ipv4Unicast(s, false) })
		p.mnps = m.prefixesV4("mnp_v4")
		v.peers = append(v.peers, p)
	}
	return v
}

func readRouterV4(x *section) *v4Router {
	r := &v4Router{stateDir: DefaultStateDir}
	r.hoa, r.hoaOpt, _ = parsed(x, "home_address_v4", func(s string) (netip.Addr, string) { return ipv4Unicast(s, true) })
	r.mnps = x.prefixesV4("mnp_v4")
	if n, o, ok := parsed(x, "mnp_v4_length", func(s string) (int, string) {
		n, inRange := uintIn(s, minPrefixV4, maxPrefixV4)
		if !inRange {
			return 0, fmt.Sprintf("%s is not a prefix length for a mobile network (%d..%d)", show(s), minPrefixV4, maxPrefixV4)
		}
		return int(n), ""
	}); ok {
		r.length = n
		r.lengthOpt = o
	} else if o != nil {
		r.lengthOpt = o
	}
	if b, o, ok := parsed(x, "lan_dhcp4", boolean); ok {
		r.dhcp, r.dhcpOpt = &b, o
	}
	if o := x.items("dns_v4"); o != nil {
		for i, s := range o.Values {
			a, msg := ipv4Unicast(s, false)
			if msg != "" {
				x.itemErrorf(o, i, "%s", msg)
				continue
			}
			r.dns = append(r.dns, a)
		}
	}
	if dir, _, ok := parsed(x, "state_dir", absPath); ok {
		r.stateDir = dir
	}
	return r
}

func readAgentV4(x *section) *v4Agent {
	a := &v4Agent{stateDir: DefaultStateDir}
	a.pool, a.poolOpt, _ = parsed(x, "pool_v4", func(s string) (netip.Prefix, string) { return ipv4Prefix(s, minPrefixV4, maxPrefixV4) })
	a.lease = x.seconds("lease_v4", DefaultLeaseV4, 60, maxLifetime)
	if b, o, ok := parsed(x, "masquerade_v4", boolean); ok {
		a.masq, a.masqOpt = b, o
	}
	if dir, _, ok := parsed(x, "state_dir", absPath); ok {
		a.stateDir = dir
	}
	return a
}

// Prefix lengths an IPv4 mobile network may have: room for the router's
// LAN address and at least one host.
const (
	minPrefixV4 = 8
	maxPrefixV4 = 30
)

// prefixesV4 reads a list of IPv4 prefixes that must not overlap each
// other.
func (x *section) prefixesV4(name string) []prefixAt {
	o := x.items(name)
	if o == nil {
		return nil
	}
	var at []prefixAt
	for i, v := range o.Values {
		p, msg := ipv4Prefix(v, minPrefixV4, maxPrefixV4)
		if msg != "" {
			x.itemErrorf(o, i, "%s", msg)
			continue
		}
		if j := slices.IndexFunc(at, func(q prefixAt) bool { return q.p.Overlaps(p) }); j >= 0 {
			x.itemErrorf(o, i, "%s overlaps %s (line %d)", p, at[j].p, at[j].line)
			continue
		}
		at = append(at, prefixAt{p: p, line: itemLine(o, i), opt: o, item: i})
	}
	return at
}

func prefixes(at []prefixAt) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range at {
		out = append(out, p.p)
	}
	return out
}

func (d *decoder) applyIPv4(f *File, v *v4Options, rules []*section) {
	if r := f.Router; r != nil && v.router != nil {
		d.applyRouterV4(r, v.router, rules)
	}
	if h := f.HomeAgent; !routerOnly && h != nil && v.agent != nil {
		d.applyAgentV4(h, v.agent, v.peers)
	}
}

func (d *decoder) applyRouterV4(r *Router, v *v4Router, rules []*section) {
	r.HomeAddressV4, r.MNPsV4, r.MNPv4Length = v.hoa, prefixes(v.mnps), v.length
	r.LANDHCP4, r.DNSv4, r.StateDir = v.dhcp, v.dns, v.stateDir
	if len(v.mnps) > 0 && v.lengthOpt != nil {
		d.errorf(v.lengthOpt.Line, "option mnp_v4_length: asks the home agent for a prefix, but list mnp_v4 (line %d) names the router's own; give one of them", v.mnps[0].line)
		r.MNPv4Length = 0
	}
	for _, m := range v.mnps {
		if r.HomeAddressV4.IsValid() && m.p.Contains(r.HomeAddressV4) {
			d.errorf(m.line, "list mnp_v4: %s contains the IPv4 home address %s", m.p, r.HomeAddressV4)
		}
		if r.HomeAgentV4.IsValid() && m.p.Contains(r.HomeAgentV4) {
			d.errorf(m.line, "list mnp_v4: %s contains the home agent %s", m.p, r.HomeAgentV4)
		}
	}
	if v.dhcpOpt != nil && *v.dhcp && len(r.LAN) == 0 {
		d.errorf(v.dhcpOpt.Line, "option lan_dhcp4: DHCPv4 is served on the first lan interface, and there is no list lan")
	}
	if r.HasIPv4() {
		return
	}
	// Rules that match IPv4 traffic need IPv4 on the mobile network.
	for i, x := range rules {
		if i >= len(r.Rules) {
			break
		}
		ru := &r.Rules[i]
		if (ru.SrcIP.IsValid() && !ru.SrcIP.Addr().Is4()) || (ru.DestIP.IsValid() && !ru.DestIP.Addr().Is4()) {
			continue // IPv6, or of mixed families (reported)
		}
		for _, name := range []string{"src_ip", "dest_ip"} {
			if o := x.s.Option(name); o != nil && (name == "src_ip" && ru.SrcIP.IsValid() || name == "dest_ip" && ru.DestIP.IsValid()) {
				d.errorf(o.Line, "option %s: %s is IPv4, and the router has no IPv4 home address or prefix (home_address_v4, mnp_v4 or mnp_v4_length)", name, o.value())
				break
			}
		}
	}
}

func (d *decoder) applyAgentV4(h *HomeAgent, v *v4Agent, peers []v4Peer) {
	h.PoolV4, h.MasqueradeV4, h.StateDir = v.pool, v.masq, v.stateDir
	h.LeaseV4 = v.lease
	if !h.Address.IsValid() && h.AddressV4.IsValid() {
		h.IPv4Only = true
		switch {
		case !h.HomePrefix.IsValid():
		case h.HomePrefix.Bits() != 64:
			d.errorf(h.Line, "homeagent %s: without option address the home agent answers on the Home-Agents anycast address of home_prefix, which needs a /64 (home_prefix is %s)", quote(h.Name), h.HomePrefix)
		default:
			h.Address = HomeAgentsAnycast(h.HomePrefix)
		}
	}
	if v.masqOpt != nil && v.masq && !h.AddressV4.IsValid() {
		d.errorf(v.masqOpt.Line, "option masquerade_v4: the mobile networks are masqueraded to option address_v4, which is not set")
	}
	if h.PoolV4.IsValid() && h.AddressV4.IsValid() && h.PoolV4.Contains(h.AddressV4) {
		d.errorf(v.poolOpt.Line, "option pool_v4: %s contains the home agent's address_v4 %s", h.PoolV4, h.AddressV4)
	}
	hoas := map[netip.Addr]*v4Peer{}
	// The same shape as the IPv6 check's (load.go), so that both share one
	// instance of the generic sort in the binary.
	type owned struct {
		prefixAt
		owner *section
	}
	var all []owned
	for i := range peers {
		p := &peers[i]
		if i >= len(h.MobileRouters) {
			break
		}
		m := &h.MobileRouters[i]
		m.HomeAddressV4, m.MNPsV4 = p.hoa, prefixes(p.mnps)
		if h.IPv4Only && m.HomeAddress == h.Address && h.Address.IsValid() {
			p.x.errorf(p.x.s.Option("home_address"), "%s is the Home-Agents anycast address the home agent answers on without option address", m.HomeAddress)
		}
		if a := p.hoa; a.IsValid() {
			switch {
			case a == h.AddressV4:
				p.x.errorf(p.hoaOpt, "%s is the home agent's own address_v4", a)
			case hoas[a] != nil:
				p.x.errorf(p.hoaOpt, "%s is already the IPv4 home address of %s (line %d)", a, hoas[a].x.label, hoas[a].hoaOpt.Line)
			default:
				hoas[a] = p
			}
		}
		for _, q := range p.mnps {
			if h.AddressV4.IsValid() && q.p.Contains(h.AddressV4) {
				p.x.itemErrorf(q.opt, q.item, "%s contains the home agent's address_v4 %s", q.p, h.AddressV4)
				continue
			}
			all = append(all, owned{q, p.x})
		}
	}
	// An IPv4 home address or prefix belongs to one router only. Sorted by
	// address, a prefix overlaps an earlier one exactly when it starts
	// inside the furthest-reaching one so far (one pass, as for IPv6: a
	// fleet has thousands of routers).
	slices.SortStableFunc(all, func(a, b owned) int {
		if c := a.p.Addr().Compare(b.p.Addr()); c != 0 {
			return c
		}
		return a.p.Bits() - b.p.Bits()
	})
	var reach *owned
	for i := range all {
		q := &all[i]
		if reach == nil || !reach.p.Contains(q.p.Addr()) {
			reach = q
			continue
		}
		// Within one router's list, prefixesV4 reported overlaps already.
		if reach.owner != q.owner {
			first, later := reach, q
			if q.line < reach.line {
				first, later = q, reach
			}
			later.owner.itemErrorf(later.opt, later.item, "%s overlaps mnp_v4 %s of %s (line %d)", later.p, first.p, first.owner.label, first.line)
		}
	}
	// A home address inside another router's prefix: among the sorted
	// prefixes, only the last one starting at or before it can hold it
	// (overlapping ones are reported above).
	for a, p := range hoas {
		i, found := slices.BinarySearchFunc(all, a, func(o owned, a netip.Addr) int { return o.p.Addr().Compare(a) })
		if !found {
			i--
		}
		if i < 0 {
			continue
		}
		if q := &all[i]; q.owner != p.x && q.p.Contains(a) {
			q.owner.itemErrorf(q.opt, q.item, "%s contains the IPv4 home address %s of %s (line %d)", q.p, a, p.x.label, p.hoaOpt.Line)
		}
	}
}

func absPath(s string) (string, string) {
	if !filepath.IsAbs(s) {
		return "", show(s) + " is not an absolute path"
	}
	return filepath.Clean(s), ""
}

// ipv4Unicast parses an IPv4 unicast address; unspecified allows 0.0.0.0,
// which asks the home agent for one (RFC 5555 §2.5).
func ipv4Unicast(s string, unspecified bool) (netip.Addr, string) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil || !a.Is4() && !a.Is4In6():
		return a, show(s) + " is not an IPv4 address"
	case a.Is4In6():
		return a, show(s) + " is IPv4-mapped; write the IPv4 address"
	case a.IsUnspecified() && unspecified:
		return a, ""
	case a.IsUnspecified():
		return a, show(s) + " is unspecified; this option needs a unicast address"
	case !a.IsGlobalUnicast():
		return a, show(s) + " is not a unicast address"
	}
	return a, ""
}

func ipv4Prefix(s string, lo, hi int) (netip.Prefix, string) {
	if !strings.Contains(s, "/") {
		return netip.Prefix{}, show(s) + " is not a prefix (ADDRESS/LENGTH)"
	}
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return p, show(s) + " is not an IPv4 prefix"
	case !p.Addr().Is4():
		return p, show(s) + " is not an IPv4 prefix; this option needs IPv4"
	case p.Bits() < lo || p.Bits() > hi:
		return p, fmt.Sprintf("%s is a /%d; this option takes /%d to /%d", show(s), p.Bits(), lo, hi)
	case p != p.Masked():
		return p, fmt.Sprintf("%s has host bits set (the prefix is %s)", show(s), p.Masked())
	case !p.Addr().IsGlobalUnicast():
		return p, show(s) + " is not unicast address space"
	}
	return p, ""
}
