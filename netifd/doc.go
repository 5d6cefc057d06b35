// Package netifd is what nemod says to OpenWrt's netifd and reads from it,
// over ubus (package ubus).
//
// # Telling netifd about the tunnel
//
// netifd runs a protocol handler per interface. For the tunnel's interface
// (`config interface 'nemo'`, `option proto 'nemo'`), the handler's shell
// script only brings the device up and leaves the interface pending (its
// init_config sets no_proto_task=1, so netifd waits), and nemod sends the
// interface's state itself, each time it changes, with a notify_proto call
// on network.interface:
//
//	st := netifd.TunnelState{Interface: "nemo", Device: "nemo0", Up: true,
//		HomeAddress: hoa, HomeLifetimes: &netifd.Lifetimes{...},
//		Prefixes: []netifd.Prefix{{Prefix: mnp, Lifetimes: ...}}}
//	err := netifd.Notify(ctx, client, st.Update())
//
// netifd then puts the home address on the device, installs a default route
// from each mobile network prefix through the tunnel, delegates the
// prefixes to the LAN interfaces (ip6assign), and odhcpd advertises them.
// Up false reports link loss: netifd takes the interface down and removes
// what it installed, and waits for the next update. Update.Args is the exact
// blobmsg; the tests hold it to the bytes recorded from real exchanges with
// netifd. Notify's error is netifd's status: INVALID_ARGUMENT (no link-up,
// no interface), NOT_FOUND (unknown interface), NOT_SUPPORTED (an interface
// whose protocol netifd runs itself).
//
// The traps: netifd installs routes with NLM_F_REPLACE, so the IPv6 default
// routes are source-specific (see TunnelState.Update) and an IPv4 default
// route gets a metric of its own (DefaultIPv4Metric) or a table; "mask" and
// "netmask" are strings; ip6prefix entries are strings
// "prefix/len,preferred,valid" in that order, which netifd-proto.sh's
// proto_add_ipv6_prefix gets backwards; prefixes longer than /64 are
// refused by netifd and here.
//
// # Following the uplinks
//
// Follow subscribes to network.interface, takes a dump, folds netifd's
// interface.update and interface.down notifications in and hands out
// per-interface changes with Next, coalesced like a netlink monitor's: one
// Change per interface with the state last reported and the state now.
// When the subscription is made anew (netifd restarted, or ubusd restarted
// and the client reconnected with ubus.Options.Reconnect), it dumps again,
// and the changes are relative to what was last reported. Interface holds
// what the daemon uses: up, l3_device, addresses, routes (DefaultRoutes),
// delegated prefixes and their assignment, DNS. ParseStatus, ParseDump,
// ParseNotification and ParseEvent decode netifd's messages; Tracker is the
// pure core of the Follower.
package netifd
