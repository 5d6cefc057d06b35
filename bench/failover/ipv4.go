package main

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"nemod/control"
	"nemod/lab"
	"nemod/status"
)

// The faults carrying the mobile network's IPv4 (RFC 5555): the same
// streams, transfer and policies between the LAN host's address in car1's
// IPv4 prefix and the correspondent's IPv4 address.

var lanHost4 = netip.MustParseAddr("10.201.5.10")

// withIPv4 adds an IPv4 twin of each fault.
func withIPv4(fs []fault) []fault {
	out := fs
	for _, f := range fs {
		f.key += "4"
		f.title += ", IPv4"
		f.short += " (IPv4)"
		f.v4 = true
		out = append(out, f)
	}
	return out
}

// useFamily points the traffic at one family's addresses.
func useFamily(v4 bool) {
	if v4 {
		lanHost, cnHost, udpNet, tcpNet = lanHost4, lab.CN4, "udp4", "tcp4"
		return
	}
	lanHost, cnHost, udpNet, tcpNet = lab.LANHost, netip.MustParseAddr("2001:db8:c::1"), "udp6", "tcp6"
}

// ipv4Configs are the daemons' configurations with car1's static IPv4
// home address and prefix at both ends.
func ipv4Configs(dir, haSock, mrSock, routerExtra string) (ha, mr string) {
	ha = lab.HomeAgentUCIv4(haSock, fmt.Sprintf("\toption state_dir '%s'\n", dir),
		fmt.Sprintf("\toption home_address_v4 '%s'\n\tlist mnp_v4 '%s'\n", lab.HoA4, lab.MNP4))
	return ha, lab.RouterUCIv4(mrSock, "auto", lab.RouterIPv4Static(dir), routerExtra)
}

// lanIPv4 waits for the router's IPv4 and gives the LAN host its address
// in the prefix, routed through the router.
func (r *rig) lanIPv4() error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		var s status.Router
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := control.Do(ctx, r.mrSock, "status", nil, &s)
		cancel()
		if err == nil && s.IPv4 != nil && len(s.IPv4.MNP) > 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the router got no IPv4 from the home agent (%v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, args := range [][]string{
		{"ip", "addr", "add", lanHost4.String() + "/24", "dev", lab.LANDev},
		{"ip", "route", "replace", "default", "via", lab.MRLAN4.String(), "dev", lab.LANDev},
	} {
		if _, err := r.lab.Run(ctx, lab.LAN, args...); err != nil {
			return err
		}
	}
	// Neighbours resolved on every hop before the streams start, as the
	// IPv6 ones are by the time the lab is up.
	_, err := r.lab.Run(ctx, lab.LAN, "ping", "-4", "-n", "-c", "3", "-i", "0.2", "-W", "2", lab.CN4.String())
	return err
}
