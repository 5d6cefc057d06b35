package config

import (
	"bytes"
	"slices"
)

// Change is one difference between a running configuration and a new one.
type Change struct {
	// Section is the section as a user writes it: its type, followed by
	// its name for the types a file has many of ("router", "uplink wifi",
	// "mobile_router car1", "rule @rule[2]" for an anonymous rule).
	Section string
	// Option is the option's name ("device", "key" for key and key_file
	// alike); "" when the whole section was added or removed, or, for a
	// rule, moved among the others.
	Option string
	// Line is the section's line in the new file, or in the old one when
	// the section was removed.
	Line int
	// Reloadable reports whether a running daemon takes the new value on
	// reload; if not, it keeps the old one until it is restarted.
	Reloadable bool
}

// String names the change as `section.option`, or the section alone.
func (c Change) String() string {
	if c.Option == "" {
		return c.Section
	}
	return c.Section + "." + c.Option
}

// reloadable says, per section type and option ("" for a whole section),
// what a running daemon can take on. What is missing is not reloadable.
//
// The router keeps what defines its registrations and its data plane:
// the addresses and prefixes, the identity and key the home agent knows it
// by, the uplinks (one binding, one device and one BID each, and the
// priorities the data plane's fallback order is built from at start) and
// the control socket it listens on. It takes the flow policies and rules
// (compiled again and registered by a refresh), the lifetime (asked for
// from the next Binding Update on), the probing of each uplink, and
// replay_window, which nothing running holds: the router matches an
// answer by the timestamp it sent.
//
// The home agent keeps its addresses, home prefix and control socket. It
// takes the mobile routers (added, removed, new keys and prefixes: one
// whose key, SPI or prefixes changed registers again), max_lifetime and
// replay_window (from the next Binding Update on), and liveness_timeout.
//
// IPv4 for the mobile networks (RFC 5555, config/ipv4.go): the router's
// IPv4 requests, LAN and DHCPv4 options are set up at start and wait for a
// restart; the home agent takes masquerade_v4 and the mobile routers'
// static IPv4 claims (a router whose claims changed registers again, and
// the pool stops assigning what is now claimed), while the pool, its lease
// and the state directory wait for a restart.
var reloadable = map[string]map[string]bool{
	"router": {
		"lifetime":       true,
		"replay_window":  true,
		"default_policy": true,
		// The bus connection and the listener are made at start (ops.go).
		"dbus": false, "metrics_listen": false,
		// The ubus connection and what follows netifd start with the
		// daemon (openwrt.go).
		"ubus_socket": false, "netifd_interface": false,
		// A new holdoff applies to the bindings revoked from then on; the
		// reload itself ends the holdoffs running.
		"revoked_holdoff": true,
		// The home agent list waits for a restart (the bindings are with
		// one of them); its timeout applies from the next silence on.
		"ha_timeout":      true,
		"home_address_v4": false, "mnp_v4": false, "mnp_v4_length": false,
		"lan_dhcp4": false, "dns_v4": false, "state_dir": false,
	},
	"uplink": {
		"probe_interval": true,
		"probe_failures": true,
	},
	"policy": {"": true, "use": true, "mode": true},
	"rule": {
		"": true, "proto": true, "src_ip": true, "dest_ip": true,
		"src_port": true, "dest_port": true, "dscp": true, "policy": true,
	},
	"homeagent": {
		"max_lifetime":     true,
		"replay_window":    true,
		"liveness_timeout": true,
		"dbus":             false, "metrics_listen": false, "web_token": false,
		// The routes stay in the table they were installed in.
		"route_table":   false,
		"masquerade_v4": true,
		"pool_v4":       false, "lease_v4": false, "state_dir": false,
	},
	// The cluster (config/cluster.go): its connection, elections and
	// instances are made at start.
	"cluster": {
		"": false, "etcd_endpoint": false, "node": false, "tls_ca": false, "tls_cert": false, "tls_key": false,
		"lease_ttl": false, "prefix": false, "instance": false, "switch_rate": false, "max_txn_ops": false,
	},
	"mobile_router": {
		"": true, "home_address": true, "spi": true, "key": true, "nai": true, "mnp": true,
		// Prefix delegation (config/pd.go): a router given option pd is
		// served from the next message on; one that loses it, or moves to
		// another pd_pool, has its prefixes revoked (it asks again). The
		// pools, the server to relay to, the lease file and the lifetimes
		// wait for a restart, and so does all of the router's side: its
		// client, lease and LANs start with it.
		"pd": true, "pd_pool": true,
		"home_address_v4": true, "mnp_v4": true,
	},
}

// Reloadable reports whether option of a section of type typ (option ""
// for the whole section) is taken by a running daemon on reload.
func Reloadable(typ, option string) bool { return reloadable[typ][option] }

// Diff lists what differs between old and new, section by section in the
// order router, uplinks, policies, rules, home agent, mobile routers; a
// nil File, or a File without one of the roles, counts as having none of
// its sections. Sections of a type the file has many of are matched by
// name. The order of the rules matters (they match in file order), and a
// rule that changed place among the others is listed as moved; the order
// of the other sections does not.
func Diff(old, new *File) []Change {
	var or, nr *Router
	var oh, nh *HomeAgent
	if old != nil {
		or, oh = old.Router, old.HomeAgent
	}
	if new != nil {
		nr, nh = new.Router, new.HomeAgent
	}
	if routerOnly { // no home agent sections (build_routeronly.go)
		return DiffRouter(or, nr)
	}
	return append(DiffRouter(or, nr), DiffHomeAgent(oh, nh)...)
}

type differ struct{ out []Change }

func (d *differ) section(typ, name string, line int) {
	sec := typ
	if name != "" {
		sec += " " + name
	}
	d.out = append(d.out, Change{Section: sec, Line: line, Reloadable: Reloadable(typ, "")})
}

// option records option of the section when changed.
func (d *differ) option(typ, name string, line int, option string, changed bool) {
	if !changed {
		return
	}
	sec := typ
	if name != "" {
		sec += " " + name
	}
	d.out = append(d.out, Change{Section: sec, Option: option, Line: line, Reloadable: Reloadable(typ, option)})
}

// named matches two lists of sections by name: each of new with its
// counterpart in old (nil if added), then each of old that is gone.
func named[T any](old, new []T, name func(*T) string, same func(o, n *T), added, removed func(*T)) {
	idx := make(map[string]int, len(old))
	for i := range old {
		idx[name(&old[i])] = i
	}
	seen := make(map[string]bool, len(new))
	for i := range new {
		n := &new[i]
		seen[name(n)] = true
		if j, ok := idx[name(n)]; ok {
			same(&old[j], n)
		} else {
			added(n)
		}
	}
	for i := range old {
		if !seen[name(&old[i])] {
			removed(&old[i])
		}
	}
}

// DiffRouter is Diff for the router's part of a configuration.
func DiffRouter(old, new *Router) []Change {
	var d differ
	switch {
	case old == nil && new == nil:
		return nil
	case old == nil:
		d.section("router", "", new.Line)
		return d.out
	case new == nil:
		d.section("router", "", old.Line)
		return d.out
	}
	at := new.Line
	opt := func(option string, changed bool) { d.option("router", "", at, option, changed) }
	opt("home_agent", !slices.Equal(old.HomeAgents, new.HomeAgents))
	opt("home_agent_v4", old.HomeAgentV4 != new.HomeAgentV4)
	opt("ha_timeout", old.HATimeout != new.HATimeout)
	opt("home_address", old.HomeAddress != new.HomeAddress)
	opt("mnp", !slices.Equal(old.MNPs, new.MNPs))
	opt("lan", !slices.Equal(old.LAN, new.LAN))
	opt("spi", old.SPI != new.SPI)
	opt("key", !bytes.Equal(old.Key, new.Key))
	opt("nai", old.NAI != new.NAI)
	opt("lifetime", old.Lifetime != new.Lifetime)
	opt("control_socket", old.ControlSocket != new.ControlSocket)
	opt("replay_window", old.ReplayWindow != new.ReplayWindow)
	opt("default_policy", old.DefaultPolicy != new.DefaultPolicy)
	d.diffOps("router", at, old.Ops, new.Ops)
	diffRouterPD(opt, old.PD, new.PD)
	diffOpenWrt(opt, old.OpenWrt, new.OpenWrt)
	opt("revoked_holdoff", old.RevokedHoldoff != new.RevokedHoldoff)
	opt("home_address_v4", old.HomeAddressV4 != new.HomeAddressV4)
	opt("mnp_v4", !slices.Equal(old.MNPsV4, new.MNPsV4))
	opt("mnp_v4_length", old.MNPv4Length != new.MNPv4Length)
	opt("lan_dhcp4", !sameBool(old.LANDHCP4, new.LANDHCP4))
	opt("dns_v4", !slices.Equal(old.DNSv4, new.DNSv4))
	opt("state_dir", old.StateDir != new.StateDir)

	named(old.Uplinks, new.Uplinks, func(u *Uplink) string { return u.Name },
		func(o, n *Uplink) {
			opt := func(option string, changed bool) { d.option("uplink", n.Name, n.Line, option, changed) }
			opt("device", o.Device != n.Device)
			opt("interface", o.Interface != n.Interface)
			opt("bid", o.BID != n.BID)
			opt("encap", o.Encap != n.Encap)
			opt("priority", o.Priority != n.Priority)
			opt("probe_interval", o.ProbeInterval != n.ProbeInterval)
			opt("probe_failures", o.ProbeFailures != n.ProbeFailures)
		},
		func(n *Uplink) { d.section("uplink", n.Name, n.Line) },
		func(o *Uplink) { d.section("uplink", o.Name, o.Line) })

	named(old.Policies, new.Policies, func(p *Policy) string { return p.Name },
		func(o, n *Policy) {
			d.option("policy", n.Name, n.Line, "use", !slices.Equal(o.Use, n.Use))
			d.option("policy", n.Name, n.Line, "mode", o.Mode != n.Mode)
		},
		func(n *Policy) { d.section("policy", n.Name, n.Line) },
		func(o *Policy) { d.section("policy", o.Name, o.Line) })

	// A rule moved when its place among the rules both files have changed.
	var oldOrder, newOrder []string
	inNew := make(map[string]bool, len(new.Rules))
	for i := range new.Rules {
		inNew[new.Rules[i].Name] = true
	}
	for i := range old.Rules {
		if inNew[old.Rules[i].Name] {
			oldOrder = append(oldOrder, old.Rules[i].Name)
		}
	}
	named(old.Rules, new.Rules, func(r *Rule) string { return r.Name },
		func(o, n *Rule) {
			newOrder = append(newOrder, n.Name)
			if oldOrder[len(newOrder)-1] != n.Name {
				d.section("rule", n.Name, n.Line)
				return
			}
			opt := func(option string, changed bool) { d.option("rule", n.Name, n.Line, option, changed) }
			opt("proto", o.Proto != n.Proto)
			opt("src_ip", o.SrcIP != n.SrcIP)
			opt("dest_ip", o.DestIP != n.DestIP)
			opt("src_port", o.SrcPort != n.SrcPort)
			opt("dest_port", o.DestPort != n.DestPort)
			opt("dscp", o.DSCP != n.DSCP)
			opt("policy", o.Policy != n.Policy)
		},
		func(n *Rule) { d.section("rule", n.Name, n.Line) },
		func(o *Rule) { d.section("rule", o.Name, o.Line) })
	return d.out
}

// DiffHomeAgent is Diff for the home agent's part of a configuration.
func DiffHomeAgent(old, new *HomeAgent) []Change {
	var d differ
	switch {
	case old == nil && new == nil:
		return nil
	case old == nil:
		d.section("homeagent", "", new.Line)
		return d.out
	case new == nil:
		d.section("homeagent", "", old.Line)
		return d.out
	}
	opt := func(option string, changed bool) { d.option("homeagent", "", new.Line, option, changed) }
	opt("address", old.Address != new.Address)
	opt("address_v4", old.AddressV4 != new.AddressV4)
	opt("home_prefix", old.HomePrefix != new.HomePrefix)
	opt("max_lifetime", old.MaxLifetime != new.MaxLifetime)
	opt("control_socket", old.ControlSocket != new.ControlSocket)
	opt("replay_window", old.ReplayWindow != new.ReplayWindow)
	opt("liveness_timeout", old.LivenessTimeout != new.LivenessTimeout)
	d.diffOps("homeagent", new.Line, old.Ops, new.Ops)
	diffHomeAgentPD(&d, opt, old.PD, new.PD)
	opt("route_table", old.RouteTable != new.RouteTable)
	diffCluster(&d, old.Cluster, new.Cluster)
	opt("pool_v4", old.PoolV4 != new.PoolV4)
	opt("lease_v4", old.LeaseV4 != new.LeaseV4)
	opt("masquerade_v4", old.MasqueradeV4 != new.MasqueradeV4)
	opt("state_dir", old.StateDir != new.StateDir)
	named(old.MobileRouters, new.MobileRouters, func(m *MobileRouter) string { return m.Name },
		func(o, n *MobileRouter) {
			opt := func(option string, changed bool) { d.option("mobile_router", n.Name, n.Line, option, changed) }
			opt("home_address", o.HomeAddress != n.HomeAddress)
			opt("spi", o.SPI != n.SPI)
			opt("key", !bytes.Equal(o.Key, n.Key))
			opt("nai", o.NAI != n.NAI)
			opt("mnp", !slices.Equal(o.MNPs, n.MNPs))
			opt("pd", o.PD != n.PD)
			opt("pd_pool", o.PDPool != n.PDPool)
			opt("home_address_v4", o.HomeAddressV4 != n.HomeAddressV4)
			opt("mnp_v4", !slices.Equal(o.MNPsV4, n.MNPsV4))
		},
		func(n *MobileRouter) { d.section("mobile_router", n.Name, n.Line) },
		func(o *MobileRouter) { d.section("mobile_router", o.Name, o.Line) })
	return d.out
}

// sameBool compares two optional booleans (nil: unset).
func sameBool(a, b *bool) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
