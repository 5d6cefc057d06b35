package lab

import "fmt"

// The configuration of the lab's nemod daemons: one mobile router (car1)
// with a Wi-Fi and a cellular uplink, and a home agent that serves it and a
// second router (car2) that tests use as a stranger.
const (
	// Key is car1's MN-HA key, in hex.
	Key = "00112233445566778899aabbccddeeff"
	// Car2Key is car2's.
	Car2Key = "ffeeddccbbaa99887766554433221100"
)

// RouterUCI is car1's configuration; extra is appended (policies, rules,
// options for more sections).
func RouterUCI(controlSocket, extra string) string {
	return RouterUCIEncap(controlSocket, "auto", extra)
}

// RouterUCIEncap is RouterUCI with the Wi-Fi uplink's encap option set to
// wifiEncap (auto, ipv6 or udp). The LAN host's address is static here, so
// the router sends no router advertisements (lan_ra '0'); RouterUCIPD's
// LAN configures itself from them.
func RouterUCIEncap(controlSocket, wifiEncap, extra string) string {
	return RouterUCIWith(controlSocket, fmt.Sprintf("\toption encap '%s'\n", wifiEncap), extra)
}

// RouterUCIWith is RouterUCI with wifiOptions (lines of options, each
// ending in a newline) in the Wi-Fi uplink's section.
func RouterUCIWith(controlSocket, wifiOptions, extra string) string {
	return fmt.Sprintf(`config router 'main'
	option home_agent '2001:db8:ffff::1'
	option home_agent_v4 '198.51.100.1'
	option home_address '2001:db8:ffff:1::100'
	list mnp '2001:db8:100::/56'
	list lan 'lan0'
	option lan_ra '0'
	option spi '256'
	option key '%s'
	option nai 'car1@fleet'
	option lifetime '600'
	option control_socket '%s'
config uplink 'wifi'
	option device 'wlan0'
	option bid '1'
%sconfig uplink 'cell'
	option device 'wwan0'
	option bid '2'
%s`, Key, controlSocket, wifiOptions, extra)
}

// HomeAgentUCI is the home agent's configuration.
func HomeAgentUCI(controlSocket string) string {
	return fmt.Sprintf(`config homeagent 'main'
	option address '2001:db8:ffff::1'
	option address_v4 '198.51.100.1'
	option home_prefix '2001:db8:ffff:1::/64'
	option max_lifetime '3600'
	option control_socket '%s'
config mobile_router 'car1'
	option home_address '2001:db8:ffff:1::100'
	option spi '256'
	option key '%s'
	option nai 'car1@fleet'
	list mnp '2001:db8:100::/56'
config mobile_router 'car2'
	option home_address '2001:db8:ffff:1::200'
	option spi '257'
	option key '%s'
	list mnp '2001:db8:200::/56'
`, controlSocket, Key, Car2Key)
}
