package tunnel

import (
	"net/netip"

	"nemod/policy"
)

// Device is the TUN device a data plane reads the traffic to tunnel from
// and writes the decapsulated traffic to, in batches, with headroom before
// each packet for the offload header (wireguard's tun.Device has this
// shape; hostnet opens the kernel's, tests use netsim's).
type Device interface {
	Read(bufs [][]byte, sizes []int, offset int) (int, error)
	Write(bufs [][]byte, offset int) (int, error)
	// BatchSize is how many packets one Read can return.
	BatchSize() int
	Name() string
	SetMTU(mtu int) error
	Close() error
}

// RouterSystem is what the mobile router's data plane asks of its host:
// the TUN device, the policy routing that sends the mobile network's
// traffic into it, and local breakout. Package hostnet has the kernel's.
type RouterSystem interface {
	OpenTUN(name string, mtu int) (Device, error)
	// RouteNetwork gives the device the home address and sends into it
	// everything the mobile network sends off its own links (see
	// NetworkRoutes), and the router's own traffic from the home address.
	RouteNetwork(r NetworkRoutes) error
	// SetMNPs replaces the mobile network prefixes of RouteNetwork's
	// routing (delegated prefixes come and go while it runs).
	SetMNPs(mnps []netip.Prefix) error
	// SetBreakout installs exactly the local breakout of b (none when it
	// has no entries).
	SetBreakout(b Breakout) error
	// Forwarding reports whether the host forwards IPv6.
	Forwarding() bool
	// RouteNetwork4 does for the mobile network's IPv4 what RouteNetwork
	// does for IPv6, replacing what it installed before (ipv4.go).
	RouteNetwork4(r NetworkRoutes4) error
	// Forwarding4 reports whether the host forwards IPv4.
	Forwarding4() bool
	// Close removes what RouteNetwork and SetBreakout installed.
	Close() error
}

// NetworkRoutes is the routing of a mobile network into the tunnel.
type NetworkRoutes struct {
	Device string // the TUN device
	HoA    netip.Addr
	MNPs   []netip.Prefix
	// LANs are the mobile network's interfaces: whatever arrives on them
	// for elsewhere goes into the device, whatever its source, so that the
	// data plane, not the main table's default route, decides (and drops
	// a foreign source instead of leaking it out of an uplink).
	LANs []string
	// Table and Priority place the policy routing.
	Table, Priority int
	// NoAddress: the home address is someone else's to put on the device
	// (netifd's on OpenWrt, which it is told of with the binding's
	// lifetimes); the policy routing is installed all the same.
	NoAddress bool
}

// Breakout is the local breakout of the direct flow entries: their
// packets leave through the uplinks, masqueraded, never the tunnel.
type Breakout struct {
	Entries  []*policy.Entry
	Uplinks  []string       // devices the packets may leave by
	MNPs     []netip.Prefix // only these sources may break out
	MNPs4    []netip.Prefix // and for IPv4 entries these
	Priority int            // of the first rule, ahead of RouteNetwork's
}

// AgentSystem is what the home agent's data plane asks of its host: the
// TUN device and the routes into it.
type AgentSystem interface {
	OpenTUN(name string, mtu int) (Device, error)
	// RoutePrefixes routes exactly these prefixes into the device: the
	// home link.
	RoutePrefixes(device string, prefixes []netip.Prefix) error
	// Masquerade4 NATs the IPv4 these prefixes send towards the Internet
	// to the home agent's address to (ipv4.go); no prefixes: none.
	Masquerade4(device string, prefixes []netip.Prefix, to netip.Addr) error
	// Forwarding4 reports whether the host forwards IPv4.
	Forwarding4() bool
	// RouteChange adds and removes the routes of one registration (its
	// router's home address and prefixes), beside those.
	RouteChange(device string, add, del []netip.Prefix) error
	// Close removes the routes, both kinds.
	Close() error
}
