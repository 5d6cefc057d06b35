// Package dhcpv6pd is DHCPv6 prefix delegation for NEMO (RFC 6276, on RFC
// 8415 and RFC 3633): the mobile router gets its mobile network prefixes
// from its home agent instead of from its configuration.
//
// Three state machines, all pure (no I/O, the time a parameter):
//
//   - Client: the mobile router as requesting router with its co-located
//     relay agent (RFC 6276 §3.1). Every message it sends is a
//     Relay-forward with hop-count 1 and link-address = peer-address = the
//     home address; it takes Relay-replies.
//   - Server: the delegating router built into the home agent: pools cut
//     into prefixes of one length, one per router DUID and IAID, the same
//     prefix again for the same router.
//   - HARelay: the home agent relaying to an external DHCPv6 server (RFC
//     8415 §19: the router's Relay-forward inside its own, hop-count 2), and
//     learning the delegations from the Replies it passes back.
//
// Server and HARelay emit the same Events (a router's prefix delegated
// until T, released, expired), which the home agent applies to its binding
// cache; the Client emits them for the router's own data plane and LANs.
//
// On the wire, through the reverse tunnel between the router's home
// address and the home agent (RFC 3963 §5.2), as the inner packet:
//
//	router -> home agent: UDP [HoA]:547 -> [HA]:547, a Relay-forward
//	home agent -> router: UDP [HA]:547  -> [HoA]:547, a Relay-reply
//
// (547 at both ends: relay agents and servers use 547, RFC 8415 §7.2.) With
// an external server the home agent adds [HA]:547 -> [server]:547 and back,
// or its own port with the Relay Source Port option (RFC 8357).
//
// The wire types (Msg, Relay) have a codec of their own (wire.go): a
// general DHCP library would cost the router's binary several hundred
// kilobytes for the few options prefix delegation uses. Every message we
// send is checked byte for byte against RFC 8415's layouts in the tests,
// decoded by github.com/insomniacslk/dhcp there as an independent decoder,
// and by tshark.
package dhcpv6pd
