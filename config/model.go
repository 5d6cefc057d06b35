// Package config reads nemod's configuration: a UCI file (the OpenWrt
// format, /etc/config/nemod) holding either the mobile router's settings, the
// home agent's, or both.
//
// ParseUCI is a UCI parser that behaves like the real uci tool in strict
// mode, checked byte for byte against the tool's output (testdata/uci).
// Parse and Load decode the sections nemod knows into typed values and
// validate them; every error names the file and line, in the PATH:LINE:
// form editors and compilers use.
//
// The package does no I/O except Load reading the configuration file, and
// Parse and Load reading a key_file the configuration names.
package config

import (
	"net/netip"
	"time"

	"nemod/nemo"
)

// File is a decoded configuration file.
type File struct {
	Path      string
	Router    *Router    // from the single `config router` section; nil if none
	HomeAgent *HomeAgent // from the single `config homeagent` section; nil if none
	Radius    *Radius    // from the single `config radius` section (home agent only); nil if none
	// Warnings are things nemod ignores but a person probably did not
	// mean: unknown options and section types. Each is PATH:LINE: text.
	Warnings []string
}

// Defaults for options a configuration may leave out.
const (
	DefaultLifetime     = 600 * time.Second
	DefaultMaxLifetime  = 3600 * time.Second
	DefaultReplayWindow = 7 * time.Second
	// DefaultLivenessTimeout outlasts the longest idle probe gap (836 ms,
	// UDP over IPv6) with one probe lost and answered by the next of its
	// episode.
	DefaultLivenessTimeout = 1500 * time.Millisecond
	// DefaultProbeInterval spaces an idle native path's Heartbeats (56
	// octets: 996 bit/s each way); UDP paths' larger ones go
	// proportionally less often (binding.ProbeGap). DefaultProbeFailures
	// probes of an episode unanswered and the path is dead: an idle path
	// about 0.9 s after it was last heard (1 s over UDP/IPv6), one with
	// traffic flowing about 200 ms after.
	DefaultProbeInterval   = 450 * time.Millisecond
	DefaultProbeFailures   = 3
	DefaultControlSocket   = "/var/run/nemod.sock"
	DefaultHAControlSocket = "/var/run/nemod-ha.sock"
	DefaultStateDir        = "/var/lib/nemod"
	DefaultLeaseV4         = 3600 * time.Second
	// DirectPolicy is the built-in policy of a rule whose traffic leaves
	// through the uplinks directly instead of through the home agent.
	DirectPolicy = "direct"
)

// Router is the mobile router's configuration.
type Router struct {
	Name          string         // section name, or "@router[0]" for an anonymous section
	HomeAgent     netip.Addr     // option home_agent (IPv6); required unless home_agent_v4 given
	HomeAgentV4   netip.Addr     // option home_agent_v4 (IPv4)
	HomeAddress   netip.Addr     // option home_address (IPv6), required
	MNPs          []netip.Prefix // list mnp: mobile network prefixes
	LAN           []string       // list lan: interfaces the mobile network is on
	SPI           uint32         // option spi, >= 256 (RFC 4285 reserves 0..255)
	Key           []byte         // option key (hex) or the hex in key_file
	NAI           string         // option nai: the identifier sent to the home agent (RFC 4283); default the section name
	Lifetime      time.Duration  // option lifetime, seconds
	ControlSocket string         // option control_socket
	ReplayWindow  time.Duration  // option replay_window, seconds
	DefaultPolicy string         // option default_policy; "" = all registered uplinks in BID order
	// RevokedHoldoff is how long a binding the home agent revoked waits
	// before it registers again (option revoked_holdoff, config/fleet.go).
	RevokedHoldoff time.Duration
	Uplinks        []Uplink // `config uplink` sections in file order
	Policies       []Policy // `config policy` sections in file order
	Rules          []Rule   // `config rule` sections in file order
	Ops            Ops      // options dbus, metrics_listen (ops.go)
	Line           int
	// Path is the file the section was read from, so that what is found
	// wrong later (policy.Compile) names it as Load's errors do.
	Path string
	// PD is prefix delegation and the LANs' router advertisements
	// (config/pd.go); never nil in a decoded file.
	PD *RouterPD
	// HomeAgents are the home agents in order of preference, the first
	// HomeAgent and HomeAgentV4; HATimeout how long the one in use may
	// answer nothing before the next is tried (config/cluster.go).
	HomeAgents []HomeAgentAddr
	HATimeout  time.Duration
	// OpenWrt is options ubus_socket and netifd_interface (openwrt.go).
	OpenWrt OpenWrt

	// IPv4 for the mobile network (RFC 5555), read by config/ipv4.go.
	// HomeAddressV4 is option home_address_v4: the router's IPv4 home
	// address, 0.0.0.0 to have the home agent assign one, invalid if none.
	HomeAddressV4 netip.Addr
	MNPsV4        []netip.Prefix // list mnp_v4: IPv4 mobile network prefixes it claims
	MNPv4Length   int            // option mnp_v4_length: ask the home agent for a prefix of this length (0: none)
	LANDHCP4      *bool          // option lan_dhcp4; nil: on, except on OpenWrt (where netifd and dnsmasq serve the LAN)
	DNSv4         []netip.Addr   // list dns_v4: DNS servers DHCPv4 hands out (default: the router's LAN address)
	StateDir      string         // option state_dir: the DHCPv4 lease file's folder
}

// HasIPv4 reports whether the router asks for IPv4 for its mobile network.
func (r *Router) HasIPv4() bool {
	return r.HomeAddressV4.IsValid() || len(r.MNPsV4) > 0 || r.MNPv4Length > 0
}

// SignallingHomeAgent is the IPv6 address the router's Binding Updates are
// for: option home_agent, or, for a home agent reached over IPv4 only, the
// Home-Agents anycast address of the home address's /64 (RFC 2526), which
// such a home agent answers on.
func (r *Router) SignallingHomeAgent() netip.Addr {
	if r.HomeAgent.IsValid() || !r.HomeAddress.Is6() {
		return r.HomeAgent
	}
	return HomeAgentsAnycast(netip.PrefixFrom(r.HomeAddress, 64))
}

// HomeAgentsAnycast is the Home-Agents subnet anycast address of a /64
// (RFC 2526 §3: interface identifier FDFF:FFFF:FFFF:FFFE).
func HomeAgentsAnycast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As16()
	copy(b[8:], []byte{0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe})
	return netip.AddrFrom16(b)
}

// Uplink is one interface the router registers a care-of address on.
type Uplink struct {
	Name          string        // section name
	Device        string        // option device: the Linux interface
	Interface     string        // option interface: a netifd interface instead (openwrt.go)
	BID           uint16        // option bid: Binding ID (RFC 5648), unique
	Encap         nemo.Encap    // option encap: auto, ipv6 or udp
	Priority      uint8         // option priority 1..127; 0 = unset (RFC 6089 BID-PRI)
	ProbeInterval time.Duration // option probe_interval
	ProbeFailures int           // option probe_failures: unanswered probes of an episode before the path is dead (an idle probe's episode: binding.IdleExtraProbes more)
	Line          int
}

// PolicyMode says how a policy uses its uplinks.
type PolicyMode int

const (
	ModeFailover  PolicyMode = iota // the first working uplink of the list
	ModeDuplicate                   // every working uplink of the list at once
)

func (m PolicyMode) String() string {
	switch m {
	case ModeFailover:
		return "failover"
	case ModeDuplicate:
		return "duplicate"
	}
	return "PolicyMode(" + itoa(int(m)) + ")"
}

// Policy is a named, ordered choice of uplinks that rules send flows to.
type Policy struct {
	Name string
	Use  []string // list use: uplink names, in order of preference
	Mode PolicyMode
	Line int
}

// PortRange is an inclusive range of ports; the zero value matches any port.
type PortRange struct{ Lo, Hi uint16 }

// Any reports whether the range matches every port.
func (r PortRange) Any() bool { return r == PortRange{} }

// Rule binds the flows it matches to a policy (RFC 6089 flow bindings).
type Rule struct {
	Name              string       // section name, or "@rule[i]" for an anonymous section
	Proto             int          // IP protocol number; -1 = any
	SrcIP, DestIP     netip.Prefix // zero = any
	SrcPort, DestPort PortRange    // zero = any
	DSCP              int          // 0..63; -1 = any
	Policy            string       // a policy's name or DirectPolicy
	Line              int
}

// HomeAgent is the home agent's configuration.
type HomeAgent struct {
	Name          string        // section name, or "@homeagent[0]" for an anonymous section
	Address       netip.Addr    // option address (IPv6), required
	AddressV4     netip.Addr    // option address_v4, for IPv4 care-of addresses (RFC 5555)
	HomePrefix    netip.Prefix  // option home_prefix, required
	MaxLifetime   time.Duration // option max_lifetime, seconds
	ControlSocket string
	ReplayWindow  time.Duration
	// LivenessTimeout: the home agent stops using a binding its router
	// probes when nothing came through it for this long (option
	// liveness_timeout, like probe_interval: "1s", "800ms").
	LivenessTimeout time.Duration
	// RouteTable is the kernel table the routes of registered routers go
	// into (option route_table, config/fleet.go; default main).
	RouteTable    int
	MobileRouters []MobileRouter // `config mobile_router` sections in file order
	Ops           Ops            // options dbus, metrics_listen, web_token (ops.go)
	Line          int
	// PD is the delegating router or relay (config/pd.go); nil: none.
	PD *HomeAgentPD
	// Cluster is the `config cluster` section (config/cluster.go); nil:
	// a home agent of its own.
	Cluster *Cluster

	// IPv4 for the mobile networks (RFC 5555), read by config/ipv4.go.
	PoolV4       netip.Prefix  // option pool_v4: dynamic IPv4 home addresses and prefixes come from it
	LeaseV4      time.Duration // option lease_v4: an assignment's lease, which caps the binding lifetime
	MasqueradeV4 bool          // option masquerade_v4: NAT the mobile networks' IPv4 to address_v4
	StateDir     string        // option state_dir: where the pool's assignments are kept
	// IPv4Only: no option address; Address is then the Home-Agents anycast
	// address of home_prefix, used only inside UDP over IPv4.
	IPv4Only bool
}

// MobileRouter is a mobile router the home agent accepts bindings from.
type MobileRouter struct {
	Name        string // section name, or "@mobile_router[i]" for an anonymous section
	HomeAddress netip.Addr
	SPI         uint32
	Key         []byte
	NAI         string // option nai: when set, the router must identify itself with it
	MNPs        []netip.Prefix
	Line        int
	// PD is option pd '1': the router may have prefixes delegated (from
	// option pd_pool, "" = the first pool).
	PD     bool
	PDPool string
	// IPv4 (config/ipv4.go): what the router may claim statically.
	HomeAddressV4 netip.Addr     // option home_address_v4
	MNPsV4        []netip.Prefix // list mnp_v4
}
