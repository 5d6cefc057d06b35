package main

import (
	"fmt"
	"io"
	"strings"

	"nemod/status"
)

// printRouterIPv4 adds the router's IPv4 (RFC 5555) to its status table.
func printRouterIPv4(w io.Writer, v *status.RouterIPv4) {
	if v == nil {
		return
	}
	fmt.Fprintf(w, "IPv4: home address %s, prefixes %s, LAN %s", dash(v.HomeAddress), dash(strings.Join(v.MNP, " ")), dash(v.LANAddress))
	if v.DHCP != nil {
		fmt.Fprintf(w, " (DHCPv4 on %s: %d leases)", v.DHCP.Interface, v.DHCP.Active)
	}
	fmt.Fprintln(w)
	for _, r := range v.Requests {
		if r.Status >= 128 {
			fmt.Fprintf(w, "IPv4: %s refused by the home agent, status %d\n", r.Requested, r.Status)
		}
	}
	fmt.Fprintln(w)
}

// ipv4Prefixes is a mobile router's IPv4 home address and prefixes for the
// home agent's table.
func ipv4Prefixes(m status.MobileRouter) string {
	var s []string
	if m.HomeAddressV4 != "" {
		s = append(s, m.HomeAddressV4)
	}
	return strings.Join(append(s, m.MNPv4...), " ")
}

// printPoolV4 adds the home agent's IPv4 pool to its status.
func printPoolV4(w io.Writer, p *status.PoolV4) {
	if p != nil {
		fmt.Fprintf(w, "\nIPv4 pool %s: %d routers hold %d addresses\n", p.Prefix, p.Assigned, p.Used)
	}
}
