// Package ubusd is a ubus broker in Go, for lab tests and machines without
// OpenWrt's ubusd: Broker is ubusd's logic, a pure core that takes one
// client's message and returns the messages to send to whom (object
// publication and lookup, calls routed between clients and to ubusd's
// events, acl and monitor objects, events with patterns, subscriptions and
// notifications with their ACTIVE and UNSUBSCRIBE messages, ubus.object.add
// and ubus.object.remove), with ubusd's answers, their order and its
// sequence numbers: replaying the recorded clients of a real ubusd gives
// its recorded bytes. Ids come from an IDSource (random, like ubusd's).
//
// Server runs a Broker on a unix socket (Listen, Serve) or on any
// connection (ServeConn). Like ubusd for root, it checks no ACLs; it reads
// the clients' credentials (SO_PEERCRED) to name their user and group in
// the calls it forwards and to keep the monitor to root. It does not pass
// file descriptors along (ubusd does, with a call's final STATUS).
package ubusd
