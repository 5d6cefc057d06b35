package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// A cluster of home agents sharing their binding cache in etcd, and the
// router's list of home agents.
//
//	config cluster 'fleet'
//		list etcd_endpoint 'https://[2001:db8:e::1]:2379'
//		list etcd_endpoint 'https://[2001:db8:e::2]:2379'
//		option node 'ha1'
//		option tls_ca '/etc/nemod/etcd-ca.pem'
//		option tls_cert '/etc/nemod/ha1.pem'
//		option tls_key '/etc/nemod/ha1-key.pem'
//		option lease_ttl '2'            # seconds an owner outlives its last keepalive
//		option prefix '/nemod/fleet'    # the cluster's keys
//		list instance '2001:db8:ffff::2 198.51.100.12'
//		option switch_rate '1'          # Home Agent Switch messages per second
//
//	config router
//		list home_agent '2001:db8:ffff::1'
//		list home_agent '2001:db8:fffe::1'
//		list home_agent_v4 '198.51.100.1'
//		list home_agent_v4 '198.51.100.129'
//		option ha_timeout '3'
//
// Every member names the same addresses in its homeagent section (the
// first instance) and the same list instance: an instance is a pair of
// home agent addresses that one member at a time owns and answers at.

// Cluster is the single `config cluster` section of a home agent.
type Cluster struct {
	Name string
	// Endpoints are the etcd servers' client URLs (list etcd_endpoint).
	Endpoints []string
	// Node is this member's name, unique in the cluster (option node).
	Node string
	// TLS: option tls_ca, tls_cert and tls_key (paths; empty: plain
	// connections, for https endpoints the system's roots).
	TLSCA, TLSCert, TLSKey string
	// LeaseTTL is option lease_ttl: how long an instance stays owned by a
	// member etcd heard nothing from.
	LeaseTTL time.Duration
	// Prefix is where the cluster's keys live (option prefix).
	Prefix string
	// Instances are the home agent addresses the members share: first
	// the homeagent section's address and address_v4, then each list
	// instance.
	Instances []Instance
	// SwitchRate is option switch_rate: Home Agent Switch messages sent
	// per second, retransmissions included (RFC 5142 §7).
	SwitchRate float64
	// MaxTxnOps is option max_txn_ops: records one transaction writes at
	// most, etcd's --max-txn-ops (its default, 128, by default).
	MaxTxnOps int
	Line      int
}

// Instance is one home agent address pair of a cluster.
type Instance struct {
	Address   netip.Addr // IPv6
	AddressV4 netip.Addr // invalid when none
}

func (i Instance) String() string {
	if i.AddressV4.IsValid() {
		return i.Address.String() + " " + i.AddressV4.String()
	}
	return i.Address.String()
}

// HomeAgentAddr is one home agent of a router's list.
type HomeAgentAddr struct {
	Address   netip.Addr // IPv6, invalid when only IPv4
	AddressV4 netip.Addr
}

// Defaults of the cluster and home agent list options.
const (
	// DefaultLeaseTTL: etcd's shortest lease with its default timings
	// (heartbeat 100 ms, election 1 s); see package cluster for what it
	// buys and costs.
	DefaultLeaseTTL = 2 * time.Second
	// DefaultSwitchRate is RFC 5142's MAX-HA-SWITCH-TRANSMIT-RATE.
	DefaultSwitchRate = 1.0
	DefaultHATimeout  = 3 * time.Second
	DefaultMaxTxnOps  = 128
	maxInstances      = 64
	maxEndpoints      = 16
	maxHomeAgents     = 8
)

func (d *decoder) cluster(x *section, ha *HomeAgent) *Cluster {
	c := &Cluster{Name: x.name, Line: x.s.Line, LeaseTTL: DefaultLeaseTTL, SwitchRate: DefaultSwitchRate,
		Prefix: "/nemod/" + x.name, MaxTxnOps: DefaultMaxTxnOps}
	if o := x.items("etcd_endpoint"); o == nil {
		x.missing("list etcd_endpoint", "")
	} else {
		seen := map[string]int{}
		for i, v := range o.Values {
			u, err := url.Parse(v)
			switch line, dup := seen[v]; {
			case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/"):
				x.itemErrorf(o, i, "%s is not an etcd client URL (http://HOST:PORT or https://HOST:PORT)", show(v))
			case dup:
				x.itemErrorf(o, i, "%s is listed twice (line %d)", v, line)
			case len(c.Endpoints) == maxEndpoints:
				x.itemErrorf(o, i, "more than %d endpoints", maxEndpoints)
			default:
				seen[v] = itemLine(o, i)
				c.Endpoints = append(c.Endpoints, v)
			}
		}
	}
	if v, o, ok := x.scalar("node"); o == nil {
		x.missing("option node", "")
	} else if ok {
		if v == "" || len(v) > 63 || strings.ContainsFunc(v, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
		}) {
			x.errorf(o, "%s is not a node name (1..63 letters, digits, '-', '_', '.')", show(v))
		} else {
			c.Node = v
		}
	}
	c.TLSCA = x.path("tls_ca")
	c.TLSCert = x.path("tls_cert")
	c.TLSKey = x.path("tls_key")
	if (c.TLSCert == "") != (c.TLSKey == "") {
		o := x.s.Option("tls_cert")
		if o == nil {
			o = x.s.Option("tls_key")
		}
		x.errorf(o, "tls_cert and tls_key go together")
	}
	if d, _, ok := parsed(x, "lease_ttl", func(v string) (time.Duration, string) { return seconds(v, 1, 60) }); ok {
		c.LeaseTTL = d
	}
	if v, o, ok := x.scalar("prefix"); ok {
		if !strings.HasPrefix(v, "/") || strings.HasSuffix(v, "/") || len(v) > 200 || strings.ContainsAny(v, " \t\n") {
			x.errorf(o, "%s is not a key prefix (/name/..., no trailing slash)", show(v))
		} else {
			c.Prefix = v
		}
	}
	if f, o, ok := x.scalar("switch_rate"); ok {
		// strconv, not fmt's scanning: the router's binary has no other
		// use for it.
		r, err := strconv.ParseFloat(f, 64)
		if err != nil || !isDecimal(f) || r < 0.1 || r > 10000 {
			x.errorf(o, "%s is not a rate (0.1..10000 messages per second)", show(f))
		} else {
			c.SwitchRate = r
		}
	}
	if v, o, ok := x.scalar("max_txn_ops"); ok {
		if n, in := uintIn(v, 1, 100000); in {
			c.MaxTxnOps = int(n)
		} else {
			x.errorf(o, "%s is out of range (1..100000, etcd's --max-txn-ops)", show(v))
		}
	}
	if ha != nil && ha.Address.IsValid() {
		c.Instances = append(c.Instances, Instance{Address: ha.Address, AddressV4: ha.AddressV4})
	}
	if o := x.items("instance"); o != nil {
		for i, v := range o.Values {
			inst, msg := instance(v)
			if msg == "" {
				for _, other := range c.Instances {
					if other.Address == inst.Address || (inst.AddressV4.IsValid() && other.AddressV4 == inst.AddressV4) {
						msg = fmt.Sprintf("%s shares an address with instance %s", inst, other)
					}
				}
			}
			if msg == "" && ha != nil && ha.HomePrefix.Contains(inst.Address) {
				msg = fmt.Sprintf("%s is inside home_prefix %s", inst.Address, ha.HomePrefix)
			}
			switch {
			case msg != "":
				x.itemErrorf(o, i, "%s", msg)
			case len(c.Instances) == maxInstances:
				x.itemErrorf(o, i, "more than %d instances", maxInstances)
			default:
				c.Instances = append(c.Instances, inst)
			}
		}
	}
	x.finish()
	return c
}

// path reads an option naming a file; "" when absent.
func (x *section) path(name string) string {
	v, o, ok := x.scalar(name)
	if !ok {
		return ""
	}
	if v == "" || strings.ContainsRune(v, 0) {
		x.errorf(o, "%s is not a file name", show(v))
		return ""
	}
	return v
}

// instance parses "IPV6" or "IPV6 IPV4".
func instance(v string) (Instance, string) {
	f := strings.Fields(v)
	if len(f) == 0 || len(f) > 2 {
		return Instance{}, show(v) + " is not IPV6-ADDRESS [IPV4-ADDRESS]"
	}
	a, msg := ipv6Addr(f[0], "")
	if msg != "" {
		return Instance{}, msg
	}
	inst := Instance{Address: a}
	if len(f) == 2 {
		b, msg := ipv4Addr(f[1])
		if msg != "" {
			return Instance{}, msg
		}
		inst.AddressV4 = b
	}
	return inst, ""
}

// routerHomeAgents reads option or list home_agent and home_agent_v4: the
// home agents in order of preference, the first the one registered with
// at start; and option ha_timeout.
func (x *section) routerHomeAgents(r *Router) (haOpt, v4Opt *Option) {
	haOpt, v4Opt = x.items("home_agent"), x.items("home_agent_v4")
	var v6s, v4s []netip.Addr
	read := func(o *Option, parse func(string) (netip.Addr, string)) []netip.Addr {
		if o == nil {
			return nil
		}
		var out []netip.Addr
		for i, v := range o.Values {
			a, msg := parse(v)
			if msg == "" && len(out) == maxHomeAgents {
				msg = fmt.Sprintf("more than %d home agents", maxHomeAgents)
			}
			if msg == "" {
				for _, b := range out {
					if a == b {
						msg = fmt.Sprintf("%s is listed twice", a)
					}
				}
			}
			if msg != "" {
				x.itemErrorf(o, i, "%s", msg)
				continue
			}
			out = append(out, a)
		}
		return out
	}
	v6s = read(haOpt, func(v string) (netip.Addr, string) { return ipv6Addr(v, "home_agent_v4") })
	v4s = read(v4Opt, ipv4Addr)
	if haOpt != nil && v4Opt != nil && len(v6s) > 1 && len(v4s) != len(v6s) && len(v4s) > 0 {
		x.errorf(v4Opt, "%d addresses for %d home agents: give one per home agent, in the order of list home_agent", len(v4s), len(v6s))
	}
	for i := 0; i < max(len(v6s), len(v4s)); i++ {
		var h HomeAgentAddr
		if i < len(v6s) {
			h.Address = v6s[i]
		}
		if i < len(v4s) {
			h.AddressV4 = v4s[i]
		}
		r.HomeAgents = append(r.HomeAgents, h)
	}
	if len(r.HomeAgents) > 0 {
		r.HomeAgent, r.HomeAgentV4 = r.HomeAgents[0].Address, r.HomeAgents[0].AddressV4
	}
	r.HATimeout = DefaultHATimeout
	if d, _, ok := parsed(x, "ha_timeout", func(v string) (time.Duration, string) {
		return interval(v, 500*time.Millisecond, time.Hour)
	}); ok {
		r.HATimeout = d
	}
	return haOpt, v4Opt
}

// diffCluster adds the cluster section's changes: none is taken by a
// running home agent (its elections and store connection are made at
// start).
func diffCluster(d *differ, old, new *Cluster) {
	switch {
	case old == nil && new == nil:
		return
	case old == nil:
		d.section("cluster", "", new.Line)
		return
	case new == nil:
		d.section("cluster", "", old.Line)
		return
	}
	opt := func(option string, changed bool) { d.option("cluster", "", new.Line, option, changed) }
	opt("etcd_endpoint", strings.Join(old.Endpoints, " ") != strings.Join(new.Endpoints, " "))
	opt("node", old.Node != new.Node)
	opt("tls_ca", old.TLSCA != new.TLSCA)
	opt("tls_cert", old.TLSCert != new.TLSCert)
	opt("tls_key", old.TLSKey != new.TLSKey)
	opt("lease_ttl", old.LeaseTTL != new.LeaseTTL)
	opt("prefix", old.Prefix != new.Prefix)
	opt("switch_rate", old.SwitchRate != new.SwitchRate)
	opt("max_txn_ops", old.MaxTxnOps != new.MaxTxnOps)
	var oi, ni []string
	for _, i := range old.Instances[min(1, len(old.Instances)):] {
		oi = append(oi, i.String())
	}
	for _, i := range new.Instances[min(1, len(new.Instances)):] {
		ni = append(ni, i.String())
	}
	opt("instance", strings.Join(oi, ",") != strings.Join(ni, ","))
}
