// Package lab builds a network of namespaces in which the nemod daemons are
// run end to end: a LAN host behind a mobile router with a Wi-Fi and a
// cellular uplink, the access routers, an Internet core, a home agent and a
// correspondent node:
//
//	lan --- mr ==wlan0== wifi --\
//	         \==wwan0== cell ---- core ---- ha
//	                                 \----- cn
//
// The addresses are fixed (topology.go); the namespace names are unique per
// lab, so several test packages can each build one at the same time. Every
// lab records its creator's pid in RunDir, so that Sweep (which New also
// calls) can remove what a killed run left behind. Tests use
// labtest.New, which skips without root and keeps the logs of a failed
// test.
//
// It shells out to iproute2, nft, sysctl, radvd, dumpcap, tshark, conntrack
// and ping (Debian: iproute2 nftables procps radvd tshark conntrack
// iputils-ping), and needs root.
//
// # What the daemons see
//
// Measured on kernel 6.18 with radvd 2.19 and Wireshark 4.0; the tests of
// this package check the parts marked (tested).
//
// SLAAC on mr's wlan0: radvd starts once wlan0 is up, so its first RA
// arrives at once, while wlan0's link-local address is still in DAD. Each
// DAD (link-local and SLAAC, dad_transmits=1) waits a random 0-1 s
// (router_solicitation_delay) and then 1 s (RetransTimer): the SLAAC
// address is usable 1-2 s after the RA. The default route it gives has
// metric 1024, a lifetime of 30 s, and the router's link-local address as
// gateway. Unsolicited RAs come every 3-4 s (radvd's minimum without Mobile
// IPv6 options, which an access router must not send); an RS is answered
// at once, by unicast.
//
// Carrier loss (CarrierDown): mr's device stays UP and shows NO-CARRIER,
// state DOWN (not LOWERLAYERDOWN) (tested). Nothing is flushed: addresses
// stay, routes stay flagged "linkdown", and with the kernel's default
// ignore_routes_with_linkdown=0 they are still used, so mr's IPv4 default
// via wlan0 (metric 100) still wins over wwan0's (200) and the RA's IPv6
// default still points at wlan0 until its 30 s lifetime ends. Changing
// routes on carrier loss is the daemon's job.
//
// Carrier back (CarrierUp): the kernel neither redoes DAD nor sends an RS
// on an interface it had already configured; the SLAAC address is at once
// usable again and the next RA is radvd's periodic one, 1-4 s later. A
// daemon wanting to know sooner must send its own RS.
//
// mr has no policy routing: a socket bound to wwan0's address still leaves
// by the lowest-metric default route (wlan0's); use SO_BINDTODEVICE or
// rules of your own.
//
// BlockProtocols matches nft's meta l4proto, the upper-layer protocol after
// the IPv6 extension headers: a Mobility Header behind a Destination
// Options header (a binding update with a home address option) is matched
// as 135 (tested). Mobility Header (135) is not an extension header to the
// kernel, so nothing behind it is looked at.
//
// NAT: wifi masquerades like a home router and keeps the source port when
// it can; cell is a CGN with "masquerade fully-random": every new mapping,
// after FlushNAT too, gets a random outside port on 192.0.2.2. FlushNAT
// runs `conntrack -F` in the router's namespace.
//
// Captures: dumpcap prints "Capturing on" before it opens the device, so
// Capture waits for the "File:" line printed once the filter is attached.
// libpcap's ring hands packets over in blocks every 250 ms and dumpcap
// drops an open block when it gets SIGTERM, so Capture.Stop waits 500 ms,
// then until dumpcap sleeps again, before signalling (tested, also on a
// machine loaded far beyond its cores).
//
// Processes: `ip netns exec` execs the command, so Proc.Pid is the
// daemon's own pid. Started processes have their own process group (a
// terminal's Ctrl-C goes to the test or CLI only, which then stops them in
// order) and die with SIGKILL if the process that started them dies.
package lab
