package tunnel

import "sync/atomic"

// Drop is why the data plane did not forward a packet: the verdict of
// the per-packet decisions, and what the drop counters count.
type Drop uint8

const (
	Forward        Drop = iota // not a drop: the packet goes on
	DropNotIP                  // neither IPv6 nor IPv4
	DropMalformed              // refused by the header's validity gate
	DropForeignSrc             // router: from the mobile network, source outside its prefixes and home address
	DropNoBinding              // no usable binding to send it by
	DropNoRoute                // home agent: destination not a mobile network it serves
	DropBadSource              // home agent: inner source outside the router's home address and prefixes
	DropBadOuter               // home agent: outer source not a registered care-of address of that router
	DropNotFromHA              // router: tunnelled packet from someone other than the home agent
	DropNotForUs               // router: tunnelled packet to an address outside the mobile network
	DropTooBig                 // larger than its binding carries (answered with an ICMP error)
	DropBadProbe               // a probe from no registered binding, or malformed
	DropDirect                 // a local-breakout packet that reached the tunnel
	DropSendError              // the socket refused to send
	DropTunError               // the TUN device refused a packet
	// DropProbeRateLimited: home agent: a probe from a path with no
	// binding left unanswered by the rate limit.
	DropProbeRateLimited
	DropStandby // home agent in a cluster: for a router whose instance another member owns
	// DropLinkScope: from the TUN device, to a link-local or link-scoped
	// multicast address: a packet for the device's own link, which has no
	// far end (the kernel's Multicast Listener Reports on it), never
	// forwarded.
	DropLinkScope
	numDrops
)

var dropNames = [numDrops]string{
	Forward:        "forwarded",
	DropNotIP:      "not_ip",
	DropMalformed:  "malformed",
	DropForeignSrc: "foreign_source",
	DropNoBinding:  "no_binding",
	DropNoRoute:    "no_route",
	DropBadSource:  "bad_inner_source",
	DropBadOuter:   "bad_outer_source",
	DropNotFromHA:  "not_from_home_agent",
	DropNotForUs:   "not_for_mobile_network",
	DropTooBig:     "too_big",
	DropBadProbe:   "bad_probe",
	DropDirect:     "direct_in_tunnel",
	DropSendError:  "send_errors",
	DropTunError:   "tun_errors",
	DropStandby:    "standby",
	DropLinkScope:  "link_scope",

	DropProbeRateLimited: "probe_rate_limited",
}

func (d Drop) String() string {
	if d < numDrops {
		return dropNames[d]
	}
	return "drop?"
}

// Drops count the packets the data plane refused, by reason. The readers
// of every socket count into one, so the counters are atomic.
type Drops struct {
	n  [numDrops]atomic.Uint64
	v4 [numDrops]atomic.Uint64 // the IPv4 packets among n (ipv4.go)
}

// Add counts one packet dropped for reason d (Forward counts nothing).
func (c *Drops) Add(d Drop) {
	if d != Forward && d < numDrops {
		c.n[d].Add(1)
	}
}

// Count is the number dropped for reason d.
func (c *Drops) Count(d Drop) uint64 {
	if d >= numDrops {
		return 0
	}
	return c.n[d].Load()
}

// View returns every reason's count, zeros included, by name.
func (c *Drops) View() map[string]uint64 {
	m := make(map[string]uint64, numDrops-1)
	for d := DropNotIP; d < numDrops; d++ {
		m[d.String()] = c.n[d].Load()
	}
	return m
}
