// Package netio opens the sockets both daemons use for signalling and
// tunnelled traffic on a stock kernel (no CONFIG_IPV6_MIP6, ip6_tunnel or
// fou):
//
//   - a packet socket that sees IPv6 packets with routing or destination
//     options headers, because a kernel without Mobile IPv6 drops a Binding
//     Update with a Home Address option, and a Binding Acknowledgement with a
//     type 2 routing header, before any IP socket sees them;
//   - a header-included raw IPv6 socket to send exactly those packets;
//   - UDP and raw IP sockets bound to one uplink device, so that each
//     binding's packets leave through its own uplink whatever the main
//     routing table says.
package netio
