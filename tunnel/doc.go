// Package tunnel is nemod's data plane: it carries the mobile network's
// packets between the mobile router and the home agent over each binding,
// in userspace on a TUN device, since stock kernels such as this one have
// neither ip6_tunnel nor fou (a kernel backend can be added behind the same
// calls; Detect reports which one runs).
//
// Both ends read their TUN device in batches (with the kernel's TCP and UDP
// segmentation offloads, so one read can be a 64 KB burst) and send each
// packet through the socket of the binding it is steered to: IPv6-in-IPv6
// on a raw protocol-41 socket, or IPv6 in UDP port 4191 (RFC 5555), where
// runs of equal-sized packets to one peer go out as one UDP GSO send. On
// the way back, UDP GRO and the TUN's own coalescing turn bursts into few
// system calls.
//
// The home agent forwards a decapsulated packet only if its outer source
// (and port, behind NAT) is a registered care-of address of the router
// whose home address or prefix the inner source belongs to (RFC 3963
// ingress filtering); everything else is dropped and counted.
package tunnel

import "nemod/nemo"

// MinMTU is the IPv6 minimum link MTU; a tunnel never goes below it.
const MinMTU = 1280

// MTU is the largest inner packet a binding carries over a link of
// linkMTU octets.
func MTU(linkMTU int, e nemo.Encap) int { return max(MinMTU, linkMTU-e.Overhead()) }
