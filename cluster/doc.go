// Package cluster makes several home agents one: they share their binding
// cache in a store (etcd in production, Memory in tests) and own the home
// agent addresses, the instances, one member at a time, so that a member
// that dies or is stopped takes no router's sessions with it.
//
// # What is stored
//
// Under the cluster's prefix:
//
//	bindings/HOA             a router's binding.Record (JSON), under a lease
//	                         that ends with its last binding's lifetime
//	election/INSTANCE/LEASE  a member's candidacy for an instance, under the
//	                         member's lease; the oldest key is the owner
//	members/NODE             a member and what it says of itself, under its
//	                         lease: present while it is alive
//
// Every member watches the whole prefix and keeps every router's entry in
// its own binding cache and data plane, standing by: the owner of an
// instance forwards for the routers registered at its addresses, the
// others install the same bindings (outer addresses and NAT ports, flow
// tables) without forwarding, so that a takeover only switches them on.
// Writes are compare-and-swap on the revision a member last saw of the
// key: two members that both changed a router's record settle by the
// record's age (binding.Record.Newer, the router's own timestamps), and
// neither write is lost unseen. The owner writes what changes for its
// routers, batched: the Binding Acknowledgements of one batch of
// signalling go out when the batch's one transaction committed, so that
// what a router was told is in the store before it is told.
//
// # Timings
//
// A member holds a lease of LeaseTTL (option lease_ttl, 2 s by default,
// etcd's shortest with its default heartbeat of 100 ms and election
// timeout of 1 s) and refreshes it every LeaseTTL/4. A refresh sent at t
// and answered tells the member that etcd keeps its lease, and so its
// instances, until at least t + LeaseTTL: the member counts its ownership
// from the sending, not the answer, and gives its instances up (removes
// their addresses, stops forwarding) a safety margin before that, when no
// later refresh was answered. etcd removes the lease LeaseTTL after the
// last refresh it received (its expiry check runs every 500 ms), and only
// then can another member win the election: there is never a moment when
// two members forward for one instance, whatever the network does to
// them, provided their clocks run at the same rate.
//
// A member killed outright (kill -9) loses its TUN device, and with it
// the instances' addresses and routes: the routing daemon withdraws them
// at once. Its lease runs out at most LeaseTTL later (plus etcd's 500 ms
// check), the next member in the election's queue takes the addresses and
// routes, and the routing daemon announces them (bird's OSPF: up to one
// SPF tick, 1 s). With the default 2 s lease the forwarding gap is thus
// 2 to 3.5 s, about 2.8 s on average; a lease of 1 s (etcd with a 50 ms
// heartbeat and 500 ms election timeout) brings it to 1 to 2.5 s, at the
// price of more keepalives and of members giving their instances up
// during any etcd hiccup longer than the lease. The routers see nothing
// but the gap: their bindings, sequence numbers and NAT mappings (the
// same address and port) are valid at the new owner, which answers their
// next Binding Update as the old one would have.
//
// An isolated member (a partition from etcd) stops forwarding within its
// lease, and etcd gives the instance to a member it still hears from
// only after that. A member that loses etcd's quorum (an etcd member
// killed leaves two of three: nothing happens; two killed stops every
// refresh) gives up its instances like an isolated one.
//
// # Shell and core
//
// Owners, the election's order and the lease's deadline are decided by
// pure functions of what was watched and of the time (owner.go); Member
// runs them against a Store on goroutines of its own and reports to the
// daemon's event loop through one channel (Update).
package cluster
