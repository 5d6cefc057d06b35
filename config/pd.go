package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Prefix delegation and LAN router advertisements (packages dhcpv6pd, ra).
// ParsePD decodes their options from the same file as Parse, on their own:
// Parse does not know them yet (it lists them among File.Warnings).

// Defaults of the prefix delegation options.
const (
	DefaultRouterLeaseFile = "/var/lib/nemod/pd-lease.json"
	DefaultHALeaseFile     = "/var/lib/nemod/pd-leases.json"
)

// PD is the prefix delegation configuration of a file.
type PD struct {
	Router    *RouterPD    // nil: the file has no router section
	HomeAgent *HomeAgentPD // nil: the file has no homeagent section
}

// RouterPD is the mobile router's side (options of `config router`).
type RouterPD struct {
	Enabled bool // option pd '1': ask the home agent for prefixes
	// ReqPrefix is option reqprefix: the prefix length hint, 0 for "auto"
	// (no hint), as OpenWrt's DHCPv6 client takes it.
	ReqPrefix int
	LeaseFile string       // option lease_file
	DNS       []netip.Addr // list dns: advertised in the LANs' RAs (RDNSS)
	LanRA     bool         // option lan_ra, default '1': advertise the MNPs on every list lan interface
	IP6Assign int          // option ip6assign: the piece of each MNP a LAN gets, default 64
}

// HomeAgentPD is the home agent's side.
type HomeAgentPD struct {
	Pools []PDPool // `config pd_pool` sections, in file order
	// Server is option dhcpv6_server: relay to this DHCPv6 server instead
	// of delegating from the pools. Invalid: none.
	Server    netip.Addr
	LeaseFile string // option lease_file
	// Routers are the mobile routers with option pd '1', by home address,
	// with option pd_pool ("" = the first pool).
	Routers map[netip.Addr]string
}

// PDPool is a `config pd_pool` section.
type PDPool struct {
	Name   string
	Prefix netip.Prefix // option prefix
	Length int          // option length: the size of each delegated prefix
	Line   int
}

// LoadPD reads path and decodes its prefix delegation options.
func LoadPD(path string) (*PD, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParsePD(path, data)
}

// ParsePD decodes the prefix delegation options of data, the content of the
// file at path. Errors are *Error values in line order, as Parse returns.
func ParsePD(path string, data []byte) (*PD, error) {
	pkg, err := ParseUCI(filepath.Base(path), data)
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			pe.File = path
		}
		return nil, err
	}
	d := &decoder{path: path, readFile: os.ReadFile}
	out := &PD{}
	count := map[string]int{}
	var pools, mrs []*section
	var router, agent *section
	for _, s := range pkg.Sections {
		ref := s.Name
		if ref == "" {
			ref = "@" + s.Type + "[" + itoa(count[s.Type]) + "]"
		}
		count[s.Type]++
		x := d.section(s, ref)
		switch {
		case s.Type == "router" && router == nil:
			router = x
		case s.Type == "homeagent" && agent == nil:
			agent = x
		case s.Type == "pd_pool":
			pools = append(pools, x)
		case s.Type == "mobile_router":
			mrs = append(mrs, x)
		}
	}
	if router != nil {
		out.Router = d.routerPD(router)
	}
	if agent != nil {
		out.HomeAgent = d.homeAgentPD(agent, pools, mrs)
	}
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Line < d.errs[j].Line })
		errs := make([]error, len(d.errs))
		for i, e := range d.errs {
			errs[i] = e
		}
		return nil, errors.Join(errs...)
	}
	return out, nil
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

func (d *decoder) routerPD(x *section) *RouterPD {
	r := &RouterPD{Enabled: x.flag("pd", false), LeaseFile: x.leaseFile(DefaultRouterLeaseFile),
		LanRA: x.flag("lan_ra", true), IP6Assign: 64}
	if v, o, ok := x.scalar("reqprefix"); ok {
		if v != "auto" {
			n, inRange := uintIn(v, 1, 64)
			if !isDigits(v) || !inRange {
				x.errorf(o, "%s is not a prefix length (1..64) or 'auto'", show(v))
			}
			r.ReqPrefix = int(n)
		}
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

func (d *decoder) homeAgentPD(x *section, pools, mrs []*section) *HomeAgentPD {
	h := &HomeAgentPD{LeaseFile: x.leaseFile(DefaultHALeaseFile), Routers: map[netip.Addr]string{}}
	srv, so := x.ipv6("dhcpv6_server", "")
	h.Server = srv
	home, _, _ := parsed(x, "home_prefix", ipv6Prefix)
	names := map[string]int{}
	for _, p := range pools {
		pool := PDPool{Name: p.name, Line: p.s.Line}
		if prev, dup := names[p.name]; dup {
			d.errorf(p.s.Line, "%s: a second pd_pool of that name (the first is at line %d)", p.label, prev)
			continue
		}
		names[p.name] = p.s.Line
		pp, po, ok := parsed(p, "prefix", ipv6Prefix)
		if po == nil {
			p.missing("option prefix", "")
		}
		v, lo, lok := p.scalar("length")
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
			pool.Prefix, pool.Length = pp, int(n)
			h.Pools = append(h.Pools, pool)
		}
	}
	if so != nil && len(pools) > 0 {
		x.errorf(so, "a server to relay to and pd_pool sections: give one or the other")
	}
	for _, m := range mrs {
		if !m.flag("pd", false) {
			continue
		}
		hoa, _ := m.ipv6("home_address", "")
		pool, po, _ := m.scalar("pd_pool")
		if po != nil && names[pool] == 0 {
			m.errorf(po, "no pd_pool %s", quote(pool))
		}
		if len(pools) == 0 && so == nil {
			d.errorf(m.s.Line, "%s: option pd needs a pd_pool section or option dhcpv6_server in the homeagent section", m.label)
		}
		if hoa.IsValid() {
			h.Routers[hoa] = pool
		}
	}
	return h
}
