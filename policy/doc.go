// Package policy is the flow table both roles share: the mobile router
// compiles its rules into an RFC 6089 flow binding list, registers the
// tunnelled part with the home agent in Flow Identification options, and
// both ends classify packets against the same list.
//
// The package does no I/O, reads no clock and starts no goroutines. A Table
// is not changed after Compile or FromFlowIDs returns it, so goroutines may
// share one; swap in a new Table on reload. ParsePacket, Matches, Match and
// Targets run on every packet and never allocate.
//
// # Points of view
//
// Rules are written from the mobile network's side: src is a host on the
// LAN, dest the remote end. A traffic selector (RFC 6088 §3) is written from
// the home agent's side of the downlink: its "source" is the correspondent
// and its "destination" the mobile network. Compile therefore puts a rule's
// dest_ip and dest_port in the selector's source fields and src_ip and
// src_port in its destination fields. Matching takes a Direction: ToMN
// compares the selector with a packet as it is (downlink, CN to MN); FromMN
// compares it with the packet's addresses and ports swapped (uplink). One
// selector thus classifies both directions of a flow alike, at both ends.
// Describe and the flow view print selectors the way rules are written.
//
// # Numbering
//
// FIDs are 1, 2, ... in table order over the registered entries; a direct
// (local breakout) entry is never registered and has FID 0, which RFC 6089
// reserves, so it cannot be mistaken for a registered one.
//
// FID-PRI is derived from the rule's position, not from the count of entries
// before it: rule k (0-based) owns the block PriBlock*(k+1) ..
// PriBlock*(k+1)+PriBlock-1, and the i-th uplink of its failover policy gets
// PriBlock*(k+1)+i (a duplicate or direct rule uses only the first value).
// Changing the policy or the uplinks of one rule, or appending rules, leaves
// every other rule's FID-PRIs where they were, so a reload can send a Binding
// Update that changes only what changed. The default policy's catch-alls
// take the top block, DefaultPri.., which no rule reaches, so appending rules
// does not move them either. This limits a configuration to MaxRules rules
// and a failover policy to PriBlock uplinks.
//
// # Readings of the RFCs
//
//   - A failover policy is a chain of entries with one BID each and the same
//     selector. RFC 6089 §4.3 makes an entry whose BIDs are all deregistered
//     inactive, so the next entry of the chain takes the flow at the home
//     agent as soon as it drops the binding, without another message.
//   - Without default_policy no catch-all is registered: RFC 6089 §5.1.1
//     sends unmatched packets to the binding with the lowest BID-PRI, and
//     Targets uses the caller's binding order for that. BindingOrder sorts
//     BID-PRI 0 (RFC 5648 options, no priority) after every set priority.
//   - RFC 6089 §5.3.2 rejects every Flow Identification option of a Binding
//     Update when two share a FID; FromFlowIDs rejects only the later ones
//     and keeps the first, so that a sender's mistake in one flow does not
//     drop its other flows. It does the same for a repeated FID-PRI, which
//     §4.2 forbids without saying what a receiver does.
//   - A selector range whose end is below its start can match nothing and is
//     taken for a malformed option.
//   - A selector's Traffic Class fields compare the upper 6 bits only (the
//     DSCP, RFC 6088 §3); Compile writes a rule's DSCP as TC start = end =
//     DSCP<<2. Single ports and addresses are written without an end field,
//     ranges and prefixes with one.
//   - RFC 6088 describes the flow label fields as 24 bits; flow labels have
//     20 (RFC 8200), and the upper 12 bits of the fields are ignored.
//   - The SPI fields cannot be matched: the data path does not look into
//     ESP. A selector with an SPI matches no packet.
//   - An IPv4 selector (RFC 6088 §3.1) matches only IPv4 packets and an
//     IPv6 one only IPv6 packets. A rule naming addresses compiles to a
//     selector of their family; one naming none (ports, protocol, DSCP) to
//     one for each family the mobile network has, IPv6 unless it has only
//     IPv4, IPv4 when it has any: a dual-family rule takes its block's
//     FID-PRIs twice over, IPv4's after IPv6's, so its failover policy may
//     list at most PriBlock/2 uplinks. ICMP rules are IPv4's and ICMPv6
//     rules IPv6's. Compile refuses IPv4 rules on a router without IPv4.
//   - Fragments (RFC 6089 §5.3.6): only the first fragment carries ports,
//     so a later fragment matches only rules without ports. Routing all
//     fragments like the first needs per-packet state this package does not
//     keep.
package policy
