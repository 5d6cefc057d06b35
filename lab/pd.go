package lab

import (
	"context"
	"fmt"
	"net/netip"
)

// Prefix delegation in the lab: car1 without a configured mobile network
// prefix asks the home agent for one (RFC 6276), and the LAN host, without
// a static address, configures itself from the router's advertisements.
var (
	// PDPool is the home agent's pd_pool, and what an external server
	// delegates from; core routes it to the home agent.
	PDPool = netip.MustParsePrefix("2001:db8:300::/40")
	// DHCPv6Server is where an external DHCPv6 server (Kea) listens in
	// ha's namespace, on its loopback device.
	DHCPv6Server = netip.MustParseAddr("2001:db8:ffff::547")
	// PDDNS is the DNS server car1 advertises on its LAN (RDNSS).
	PDDNS = netip.MustParseAddr("2001:db8:c::53")
)

// RouterUCIPD is car1's configuration in implicit mode with prefix
// delegation: no list mnp, option reqprefix '56', router advertisements on
// lan0, the lease in leaseFile; extra is appended to the router section.
func RouterUCIPD(controlSocket, leaseFile, extra string) string {
	return fmt.Sprintf(`config router 'main'
	option home_agent '2001:db8:ffff::1'
	option home_agent_v4 '198.51.100.1'
	option home_address '2001:db8:ffff:1::100'
	option reqprefix '56'
	option lease_file '%s'
	list dns '%s'
	list lan 'lan0'
	option spi '256'
	option key '%s'
	option nai 'car1@fleet'
	option lifetime '600'
	option control_socket '%s'
%s
config uplink 'wifi'
	option device 'wlan0'
	option bid '1'
config uplink 'cell'
	option device 'wwan0'
	option bid '2'
`, leaseFile, PDDNS, Key, controlSocket, extra)
}

// HomeAgentUCIPD is the home agent's configuration with car1 allowed
// prefix delegation: from the built-in pool PDPool when server is invalid,
// else relayed to server. extra is appended to the homeagent section
// (lifetimes).
func HomeAgentUCIPD(controlSocket, leaseFile string, server netip.Addr, extra string) string {
	pd := fmt.Sprintf("config pd_pool 'fleet'\n\toption prefix '%s'\n\toption length '56'\n", PDPool)
	if server.IsValid() {
		extra += fmt.Sprintf("\toption dhcpv6_server '%s'\n", server)
		pd = ""
	}
	return fmt.Sprintf(`config homeagent 'main'
	option address '2001:db8:ffff::1'
	option address_v4 '198.51.100.1'
	option home_prefix '2001:db8:ffff:1::/64'
	option max_lifetime '3600'
	option control_socket '%s'
	option lease_file '%s'
%s%sconfig mobile_router 'car1'
	option home_address '2001:db8:ffff:1::100'
	option spi '256'
	option key '%s'
	option nai 'car1@fleet'
	option pd '1'
config mobile_router 'car2'
	option home_address '2001:db8:ffff:1::200'
	option spi '257'
	option key '%s'
	list mnp '2001:db8:200::/56'
`, controlSocket, leaseFile, extra, pd, Key, Car2Key)
}

// ForPD turns the lab into the prefix delegation one: the LAN host and
// mr's lan0 lose their static addresses (the host keeps accepting router
// advertisements, as a host does), and core routes PDPool to the home
// agent.
func (l *Lab) ForPD(ctx context.Context) error {
	steps := []struct{ role, batch string }{
		{LAN, "addr del 2001:db8:100::10/64 dev eth0"},
		{LAN, "route del ::/0 via 2001:db8:100::1 dev eth0"},
		{MR, "addr del 2001:db8:100::1/64 dev lan0"},
		{Core, fmt.Sprintf("route add %s via %s dev ha", PDPool, HA6)},
	}
	for _, s := range steps {
		if err := l.ipBatch(ctx, s.role, []string{s.batch}); err != nil {
			return err
		}
	}
	return nil
}
