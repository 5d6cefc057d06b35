package lab

import (
	"fmt"
	"net/netip"
	"strings"
)

// IPv4 for the mobile network (RFC 5555): the correspondent's IPv4
// address, the prefixes core routes to the home agent, and the daemons'
// IPv4 options.
var (
	CNNet4  = netip.MustParsePrefix("203.0.113.16/29")
	CoreCN4 = netip.MustParseAddr("203.0.113.17") // core cn
	CN4     = netip.MustParseAddr("203.0.113.18") // cn eth0

	// car1's static IPv4 home address and prefix, and the home agent's
	// pool; core routes all three ranges to the home agent.
	HoA4     = netip.MustParseAddr("10.199.0.1")
	MNP4     = netip.MustParsePrefix("10.201.5.0/24")
	MRLAN4   = netip.MustParseAddr("10.201.5.1") // mr lan0: the first address of MNP4
	Pool4    = netip.MustParsePrefix("10.200.0.0/16")
	Routed4  = []netip.Prefix{netip.MustParsePrefix("10.199.0.0/16"), Pool4, netip.MustParsePrefix("10.201.0.0/16")}
	DNS4     = netip.MustParseAddr("203.0.113.53") // what DHCPv4 hands out in the lab
	udhcpcSh = `#!/bin/sh
# udhcpc's event script in the lab's LAN namespace: configure what the
# lease says and keep it where the test reads it.
case "$1" in
bound|renew)
	ip -4 addr flush dev "$interface"
	ip addr add "$ip/$mask" dev "$interface"
	ip route replace default via "$router" dev "$interface"
	printf 'ip=%s\nmask=%s\nrouter=%s\ndns=%s\nlease=%s\nserverid=%s\n' "$ip" "$mask" "$router" "$dns" "$lease" "$serverid" >"$LEASE_OUT"
	;;
deconfig)
	ip -4 addr flush dev "$interface"
	;;
esac
exit 0
`
)

// ipBatch4 are the IPv4 lines each role adds to ipBatch.
func ipBatch4(role string) []string {
	switch role {
	case Core:
		s := []string{"addr add 203.0.113.17/29 dev cn"}
		for _, p := range Routed4 {
			s = append(s, "route add "+p.String()+" via 198.51.100.1 dev ha")
		}
		return s
	case CN:
		return []string{
			"addr add 203.0.113.18/29 dev eth0",
			"route add 0.0.0.0/0 via 203.0.113.17 dev eth0",
		}
	}
	return nil
}

// UdhcpcScript is the event script for busybox udhcpc in the LAN
// namespace: it configures the lease and writes what it got to the file
// named by $LEASE_OUT.
func UdhcpcScript() string { return udhcpcSh }

// RouterIPv4Static is car1's IPv4 options for a static home address and
// prefix; stateDir holds the DHCPv4 leases.
func RouterIPv4Static(stateDir string) string {
	return fmt.Sprintf("\toption home_address_v4 '%s'\n\tlist mnp_v4 '%s'\n\tlist dns_v4 '%s'\n", HoA4, MNP4, DNS4) + stateDirOption(stateDir)
}

// stateDirOption is option state_dir, left out for the default.
func stateDirOption(dir string) string {
	if dir == "" {
		return ""
	}
	return fmt.Sprintf("\toption state_dir '%s'\n", dir)
}

// RouterIPv4Dynamic is car1's IPv4 options asking the home agent to assign
// the home address and a /24.
func RouterIPv4Dynamic(stateDir string) string {
	return fmt.Sprintf("\toption home_address_v4 '0.0.0.0'\n\toption mnp_v4_length '24'\n\tlist dns_v4 '%s'\n", DNS4) + stateDirOption(stateDir)
}

// RouterUCIv4 is car1's configuration with IPv4 options v4 in its router
// section.
func RouterUCIv4(controlSocket, wifiEncap, v4, extra string) string {
	return strings.Replace(RouterUCIEncap(controlSocket, wifiEncap, extra), "config uplink 'wifi'\n", v4+"config uplink 'wifi'\n", 1)
}

// HomeAgentUCIv4 is the home agent's configuration with options ha in its
// homeagent section and car1 in car1's.
func HomeAgentUCIv4(controlSocket, ha, car1 string) string {
	s := HomeAgentUCI(controlSocket)
	s = strings.Replace(s, "config mobile_router 'car1'\n", ha+"config mobile_router 'car1'\n", 1)
	return strings.Replace(s, "\tlist mnp '2001:db8:100::/56'\n", "\tlist mnp '2001:db8:100::/56'\n"+car1, 1)
}

// HomeAgentIPv4 is the home agent's IPv4 options: car1 may claim HoA4 and
// MNP4, and the pool assigns (state in stateDir).
func HomeAgentIPv4(controlSocket, stateDir, extra string) string {
	return HomeAgentUCIv4(controlSocket,
		fmt.Sprintf("\toption pool_v4 '%s'\n\toption state_dir '%s'\n%s", Pool4, stateDir, extra),
		fmt.Sprintf("\toption home_address_v4 '%s'\n\tlist mnp_v4 '%s'\n", HoA4, MNP4))
}
