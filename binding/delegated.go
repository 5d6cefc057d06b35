package binding

import (
	"net/netip"
	"slices"
)

// Prefixes delegated by DHCPv6 (RFC 6276): the home agent's delegating
// router or relay tells the cache which prefixes each router holds while
// their leases are valid. They join the router's entry (forwarded to it,
// and accepted as sources from it) only while they are delegated: RFC 6276
// §3.1 and §4.

// allowed is every prefix the router may claim: its configured ones and
// those delegated to it.
func (e *Entry) allowed() []netip.Prefix {
	if len(e.Delegated) == 0 {
		return e.Peer.MNPs
	}
	return append(slices.Clone(e.Peer.MNPs), e.Delegated...)
}

// SetDelegated replaces the prefixes delegated to the router at hoa. A
// registered router in implicit mode forwards its configured prefixes and
// exactly these from now on; one in explicit mode keeps those of its
// registered prefixes still allowed (it adds a new one by registering it).
// It returns the entry (nil for no such router), whose MNPs the data plane
// follows.
func (c *Cache) SetDelegated(hoa netip.Addr, prefixes []netip.Prefix) *Entry {
	e := c.entries[hoa]
	if e == nil {
		return nil
	}
	e.Delegated = slices.Clone(prefixes)
	if !e.Registered() || !e.Router {
		return e
	}
	if e.implicit {
		e.MNPs = append(e.MNPs[:0], e.allowed()...)
		return e
	}
	allowed := e.allowed()
	e.MNPs = slices.DeleteFunc(e.MNPs, func(p netip.Prefix) bool {
		return !slices.ContainsFunc(allowed, func(a netip.Prefix) bool { return a.Bits() <= p.Bits() && a.Contains(p.Addr()) })
	})
	return e
}
