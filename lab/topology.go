package lab

import "net/netip"

// Roles: one network namespace each.
const (
	LAN  = "lan"  // a host on the mobile network
	MR   = "mr"   // the mobile router
	Wifi = "wifi" // the Wi-Fi access router (dual-stack, NAT44, radvd)
	Cell = "cell" // the cellular access router (IPv4 only, carrier-grade NAT)
	Core = "core" // the Internet
	HA   = "ha"   // the home agent
	CN   = "cn"   // a correspondent node
)

// Roles lists every role in the order the lab creates them.
var Roles = []string{LAN, MR, Wifi, Cell, Core, HA, CN}

// Device names. The mobile router's are named after what they stand for so
// that configs and logs read like a real router's; the access routers,
// hosts and the home agent use eth0 towards the mobile router (or their only
// link) and eth1 towards core; core names each device after its peer.
const (
	MRLANDev  = "lan0"  // mr: the mobile network
	MRWLANDev = "wlan0" // mr: the Wi-Fi uplink
	MRWWANDev = "wwan0" // mr: the cellular uplink
	HADev     = "eth0"  // ha: its only link, towards core
	CNDev     = "eth0"  // cn: its only link, towards core
	LANDev    = "eth0"  // lan: its only link, towards mr

	// accessDev is the access routers' device facing the mobile router, the
	// one CarrierDown takes down. It carries no address: a tc redirect
	// wires it, frame for frame, to accessWire, one end of a veth pair
	// whose other end, accessIf, carries the router's addresses (an access
	// point's radio and its router in one box). Taking accessDev down
	// drops the mobile router's carrier and nothing else: a real access
	// router does not restart when a client walks away.
	//
	// Two simpler set-ups fail that: taking the router's own interface down
	// resets its IPv6 multicast memberships for most of a second, and a
	// bridge port only forwards again once the kernel's link watch (run at
	// most once a second) has seen its carrier come back. Either way the
	// mobile router's first Neighbor Solicitation after the carrier returns
	// goes unanswered and the kernel retries only a second later.
	// uplinkDev is the device facing core.
	accessDev  = "eth0"
	accessWire = "ap0"
	accessIf   = "ap1"
	uplinkDev  = "eth1"
)

// Addresses and prefixes of the topology. Tests, configs and the demo rely
// on them; they never change.
var (
	// The mobile network.
	MNP       = netip.MustParsePrefix("2001:db8:100::/56") // mobile network prefix
	LANPrefix = netip.MustParsePrefix("2001:db8:100::/64")
	LANHost   = netip.MustParseAddr("2001:db8:100::10") // lan eth0
	MRLAN     = netip.MustParseAddr("2001:db8:100::1")  // mr lan0

	// The Wi-Fi access network.
	WifiPrefix    = netip.MustParsePrefix("2001:db8:a::/64") // advertised by radvd
	WifiAR6       = netip.MustParseAddr("2001:db8:a::1")     // wifi eth0
	MRWLANStatic6 = netip.MustParseAddr("2001:db8:a::2")     // mr wlan0, only with Options.NoRadvd
	WifiNet4      = netip.MustParsePrefix("192.168.50.0/24")
	WifiAR4       = netip.MustParseAddr("192.168.50.1")   // wifi eth0
	MRWLAN4       = netip.MustParseAddr("192.168.50.2")   // mr wlan0
	WifiWAN6      = netip.MustParseAddr("2001:db8:f1::2") // wifi eth1
	WifiWAN4      = netip.MustParseAddr("203.0.113.2")    // wifi eth1: the NAT44's outside address

	// The cellular access network.
	CellNet4 = netip.MustParsePrefix("100.64.0.0/24")
	CellAR4  = netip.MustParseAddr("100.64.0.1") // cell eth0
	MRWWAN4  = netip.MustParseAddr("100.64.0.2") // mr wwan0
	CellWAN4 = netip.MustParseAddr("192.0.2.2")  // cell eth1: the CGN's outside address

	// Core's side of each link.
	CoreWifi6     = netip.MustParseAddr("2001:db8:f1::1")
	CoreWifi4     = netip.MustParseAddr("203.0.113.1")
	CoreCell4     = netip.MustParseAddr("192.0.2.1")
	CoreHA6       = netip.MustParseAddr("2001:db8:ffff::2")
	CoreHA4       = netip.MustParseAddr("198.51.100.2")
	CoreCN6       = netip.MustParseAddr("2001:db8:c::2")
	CoreRoadside6 = netip.MustParseAddr("2001:db8:5::2")

	// The home agent and the correspondent node.
	HomeLinkPrefix = netip.MustParsePrefix("2001:db8:ffff:1::/64") // routed to the HA by core
	HA6            = netip.MustParseAddr("2001:db8:ffff::1")
	HA4            = netip.MustParseAddr("198.51.100.1")
	CN6            = netip.MustParseAddr("2001:db8:c::1")
	Roadside6      = netip.MustParseAddr("2001:db8:5::1") // a local-breakout service, also on cn
)

// Radvd's timing on the Wi-Fi link. 3 and 4 s are radvd's minimum unless the
// interface advertises Mobile IPv6 home agent support, which an access
// router must not.
const (
	RAMinInterval     = 3  // seconds
	RAMaxInterval     = 4  // seconds
	RADefaultLifetime = 30 // seconds
)

// veth is one link: created in a's namespace as aDev, with its peer bDev
// placed directly in b's namespace so no name ever exists in the root one.
type veth struct {
	a, aDev, b, bDev string
}

// vethIndexes gives the k-th link's two ends different interface indexes.
// The kernel reports a veth's carrier change at once only when its index
// differs from its peer's (linkwatch_urgent_event); otherwise the change
// waits for the link watch, which runs at most once a second for the
// whole machine. Left to themselves, the mobile router's uplinks and their
// peers were both index 3, and under the load of parallel labs a carrier
// loss reached the router up to a second late.
func vethIndexes(k int) (a, b int) { return 10 + 2*k, 11 + 2*k }

var links = []veth{
	{MR, MRLANDev, LAN, LANDev},
	{MR, MRWLANDev, Wifi, accessDev},
	{MR, MRWWANDev, Cell, accessDev},
	{Core, "wifi", Wifi, uplinkDev},
	{Core, "cell", Cell, uplinkDev},
	{Core, "ha", HA, HADev},
	{Core, "cn", CN, CNDev},
}

// forwarding of each role: IPv6, IPv4. IPv4 is set even where off because
// a new namespace inherits the root namespace's IPv4 settings.
var forwarding = map[string][2]bool{
	LAN:  {false, false},
	MR:   {true, true},
	Wifi: {true, true},
	Cell: {false, true},
	Core: {true, true},
	HA:   {true, true}, // IPv4 too: the mobile networks' IPv4 (ipv4.go)
	CN:   {false, false},
}

// baseSysctls are set in a namespace before any of its devices exists, so
// that new devices copy them from "default".
func baseSysctls(role string) []string {
	f := forwarding[role]
	b := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	return []string{
		// Only mr's wlan0 does DAD: everywhere else it would only add a
		// second of waiting.
		"net.ipv6.conf.all.accept_dad=0",
		"net.ipv6.conf.default.accept_dad=0",
		// Asymmetric paths (an uplink out, the other back) are what the
		// daemons are tested on; strict reverse-path filtering would drop
		// them, and IPv4 settings come from the root namespace otherwise.
		"net.ipv4.conf.all.rp_filter=0",
		"net.ipv4.conf.default.rp_filter=0",
		"net.ipv6.conf.all.forwarding=" + b(f[0]),
		"net.ipv4.conf.all.forwarding=" + b(f[1]),
	}
}

// deviceSysctls are set once the devices exist and before they come up.
func deviceSysctls(role string, noRadvd bool) []string {
	switch role {
	case MR:
		// Forwarding is on, so only accept_ra=2 makes the kernel take RAs.
		// wlan0 is the one interface with real DAD, unless its address is
		// static and nobody waits for it.
		dad := "1"
		if noRadvd {
			dad = "0"
		}
		return []string{
			"net.ipv6.conf.wlan0.accept_ra=2",
			"net.ipv6.conf.wlan0.autoconf=1",
			"net.ipv6.conf.wlan0.accept_dad=" + dad,
			"net.ipv6.conf.wlan0.dad_transmits=1",
			"net.ipv6.conf.wwan0.accept_ra=0",
			"net.ipv6.conf.wwan0.autoconf=0",
		}
	}
	return nil
}

// accessWireBatch makes an access router's inner veth pair; accessWireTC
// wires eth0 to it (see accessDev). Neither eth0 nor ap0 speaks IPv6.
var accessWireBatch = []string{
	"link add ap0 type veth peer name ap1",
	"link set ap0 up",
	"link set ap1 up",
}

func accessWireTC() []string {
	return []string{
		"qdisc add dev eth0 ingress",
		"qdisc add dev ap0 ingress",
		"filter add dev eth0 parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev ap0",
		"filter add dev ap0 parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev eth0",
	}
}

// ipBatch is what `ip -batch` runs in a role's namespace once its devices
// exist: devices up, addresses, routes. Addresses are added with nodad as a
// second guard besides accept_dad=0.
func ipBatch(role string, noRadvd bool) []string {
	switch role {
	case LAN:
		return []string{
			"link set lo up",
			"link set eth0 up",
			"addr add 2001:db8:100::10/64 dev eth0 nodad",
			"route add ::/0 via 2001:db8:100::1 dev eth0",
		}
	case MR:
		s := []string{
			"link set lo up",
			"link set lan0 up",
			"link set wwan0 up",
			"link set wlan0 up",
			"addr add 2001:db8:100::1/64 dev lan0 nodad",
			"addr add 192.168.50.2/24 dev wlan0",
			"addr add 100.64.0.2/24 dev wwan0",
			"route add 0.0.0.0/0 via 192.168.50.1 dev wlan0 metric 100",
			"route add 0.0.0.0/0 via 100.64.0.1 dev wwan0 metric 200",
		}
		if noRadvd {
			s = append(s,
				"addr add 2001:db8:a::2/64 dev wlan0 nodad",
				"route add ::/0 via 2001:db8:a::1 dev wlan0")
		}
		return s
	case Wifi:
		return append(append([]string{"link set lo up"}, accessWireBatch...),
			"link set eth0 up",
			"link set eth1 up",
			"addr add 2001:db8:a::1/64 dev ap1 nodad",
			"addr add 192.168.50.1/24 dev ap1",
			"addr add 2001:db8:f1::2/64 dev eth1 nodad",
			"addr add 203.0.113.2/30 dev eth1",
			"route add ::/0 via 2001:db8:f1::1 dev eth1",
			"route add 0.0.0.0/0 via 203.0.113.1 dev eth1",
		)
	case Cell:
		return append(append([]string{"link set lo up"}, accessWireBatch...),
			"link set eth0 up",
			"link set eth1 up",
			"addr add 100.64.0.1/24 dev ap1",
			"addr add 192.0.2.2/24 dev eth1",
			"route add 0.0.0.0/0 via 192.0.2.1 dev eth1",
		)
	case Core:
		return []string{
			"link set lo up",
			"link set wifi up",
			"link set cell up",
			"link set ha up",
			"link set cn up",
			"addr add 2001:db8:f1::1/64 dev wifi nodad",
			"addr add 203.0.113.1/30 dev wifi",
			"addr add 192.0.2.1/24 dev cell",
			"addr add 2001:db8:ffff::2/64 dev ha nodad",
			"addr add 198.51.100.2/24 dev ha",
			"addr add 2001:db8:c::2/64 dev cn nodad",
			"addr add 2001:db8:5::2/64 dev cn nodad",
			"route add 2001:db8:a::/64 via 2001:db8:f1::2 dev wifi",
			"route add 2001:db8:ffff:1::/64 via 2001:db8:ffff::1 dev ha",
			"route add 2001:db8:100::/56 via 2001:db8:ffff::1 dev ha",
		}
	case HA:
		return []string{
			"link set lo up",
			"link set eth0 up",
			"addr add 2001:db8:ffff::1/64 dev eth0 nodad",
			"addr add 198.51.100.1/24 dev eth0",
			"route add ::/0 via 2001:db8:ffff::2 dev eth0",
			"route add 0.0.0.0/0 via 198.51.100.2 dev eth0",
		}
	case CN:
		return []string{
			"link set lo up",
			"link set eth0 up",
			"addr add 2001:db8:c::1/64 dev eth0 nodad",
			"addr add 2001:db8:5::1/64 dev eth0 nodad",
			"route add ::/0 via 2001:db8:c::2 dev eth0",
		}
	}
	return nil
}

// faultTable is where Blackhole and BlockProtocols put their rules: a base
// chain on the forward hook that jumps to two regular chains the fault
// helpers flush and fill, so each fault is one atomic `nft -f`.
const faultTable = "nemolab_fault"

const faultRuleset = `table inet nemolab_fault {
	chain forward {
		type filter hook forward priority filter - 10; policy accept;
		jump blackhole
		jump block
	}
	chain blackhole {
	}
	chain block {
	}
}
`

// nftRuleset is loaded into an access router's namespace at start.
//
// The Wi-Fi router is a home router: plain masquerade, which keeps the
// source port when it can. The cellular one is a carrier-grade NAT that
// picks a random outside port for every new mapping, so that FlushNAT
// really changes the mobile router's outside address and port, as a CGN
// mapping that timed out does.
func nftRuleset(role string) string {
	switch role {
	case Wifi:
		return faultRuleset + `table ip nemolab_nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "eth1" ip saddr 192.168.50.0/24 masquerade
	}
}
`
	case Cell:
		return faultRuleset + `table ip nemolab_nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "eth1" ip saddr 100.64.0.0/24 masquerade fully-random
	}
}
`
	}
	return ""
}

// radvdConf is the Wi-Fi router's radvd configuration.
func radvdConf() string {
	return `interface ap1 {
	AdvSendAdvert on;
	MinRtrAdvInterval 3;
	MaxRtrAdvInterval 4;
	AdvDefaultLifetime 30;
	prefix 2001:db8:a::/64 {
		AdvOnLink on;
		AdvAutonomous on;
	};
};
`
}
