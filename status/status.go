// Package status holds the shapes of what the daemons report: `nemod ctl
// status`, `nemod ctl flows` and `nemod ctl reload` on both roles, and
// everything built on them (the lab's checks, the demo, the benchmarks, and
// the buses and metrics that publish the same state). It is a leaf: it
// imports nothing of nemod, so that every consumer, in the daemons or
// outside them, reads one definition.
package status

// Role names, the "role" field of every answer.
const (
	RoleRouter    = "router"
	RoleHomeAgent = "homeagent"
)

// Router is `nemod ctl status` of a mobile router.
type Router struct {
	Role        string    `json:"role"`
	HomeAddress string    `json:"home_address"`
	HomeAgent   string    `json:"home_agent"`
	MNP         []string  `json:"mnp"`
	Uptime      int64     `json:"uptime"` // seconds
	Bindings    []Binding `json:"bindings"`
	Counters    Counters  `json:"counters"`
	DataPlane   DataPlane `json:"dataplane"`
	Runtime     Runtime   `json:"runtime"`
	// IPv4 is the mobile network's IPv4 (RFC 5555); nil when the router
	// asks for none.
	IPv4 *RouterIPv4 `json:"ipv4,omitempty"`
}

// RouterIPv4 is a mobile router's IPv4: what it asked for, what the home
// agent granted, and its LAN.
type RouterIPv4 struct {
	HomeAddress string   `json:"home_address,omitempty"` // granted; "" if none
	MNP         []string `json:"mnp"`                    // granted prefixes
	// Requests are the IPv4 Home Address options the router sends, each
	// with the home agent's last answer.
	Requests []IPv4Request `json:"requests"`
	// LAN is the first lan interface's IPv4 address, and DHCP its DHCPv4
	// server's leases (nil when it serves none).
	LANAddress string        `json:"lan_address,omitempty"`
	DHCP       *DHCPv4Leases `json:"dhcp,omitempty"`
}

// IPv4Request is one IPv4 Home Address option and its answer.
type IPv4Request struct {
	Requested string `json:"requested"` // as configured: 0.0.0.0/n asks for an assignment
	Prefix    bool   `json:"prefix"`
	Granted   string `json:"granted,omitempty"`
	// Status is the IPv4 Address Acknowledgement's (RFC 5555 §3.2.1): 0
	// granted, 128-133 refused; absent before the first answer.
	Status uint8 `json:"status"`
}

// DHCPv4Leases is a DHCPv4 server's state.
type DHCPv4Leases struct {
	Interface string `json:"interface"`
	Range     string `json:"range"` // the prefix its leases come from
	Active    int    `json:"active"`
}

// HomeAgent is `nemod ctl status` of a home agent.
type HomeAgent struct {
	Role          string         `json:"role"`
	Address       string         `json:"address"`
	AddressV4     string         `json:"address_v4,omitempty"`
	HomePrefix    string         `json:"home_prefix"`
	Uptime        int64          `json:"uptime"` // seconds
	MobileRouters []MobileRouter `json:"mobile_routers"`
	Counters      Counters       `json:"counters"`
	DataPlane     DataPlane      `json:"dataplane"`
	Runtime       Runtime        `json:"runtime"`
	// PoolV4 is the IPv4 pool dynamic assignments come from; nil without
	// one.
	PoolV4 *PoolV4 `json:"pool_v4,omitempty"`
}

// PoolV4 is the home agent's IPv4 pool.
type PoolV4 struct {
	Prefix   string `json:"prefix"`
	Assigned int    `json:"assigned"` // routers holding an assignment
	Used     uint64 `json:"used"`     // addresses assigned
}

// MobileRouter is one configured mobile router as its home agent sees it.
type MobileRouter struct {
	Name        string    `json:"name"`
	HomeAddress string    `json:"home_address"`
	MNP         []string  `json:"mnp"`
	Bindings    []Binding `json:"bindings"`
	// HomeAddressV4 and MNPv4 are the IPv4 home address and prefixes it
	// registered (RFC 5555), forwarded while it has bindings.
	HomeAddressV4 string   `json:"home_address_v4,omitempty"`
	MNPv4         []string `json:"mnp_v4,omitempty"`
}

// State is the mobile router's state as a whole, as the bus, the metrics
// and the fleet page show it: registered when one of its bindings is, else
// registering when one is, else down.
func (m MobileRouter) State() string {
	st := StateDown
	for _, b := range m.Bindings {
		switch b.State {
		case StateRegistered:
			return StateRegistered
		case StateRegistering:
			st = StateRegistering
		}
	}
	return st
}

// Binding states, as both roles name them.
const (
	StateDown        = "down"
	StateRegistering = "registering"
	StateRegistered  = "registered"
)

// Binding is one binding (one care-of address, one BID) on either role.
// The router fills Uplink and Device; the home agent fills Outer and Since.
type Binding struct {
	BID    uint16 `json:"bid"`
	Uplink string `json:"uplink,omitempty"`
	Device string `json:"device,omitempty"`
	CoA    string `json:"coa"`
	Encap  string `json:"encap"`
	State  string `json:"state"`
	// Outer is where the home agent sends: the care-of address, or the
	// NAT's address and port in front of it.
	Outer    string `json:"outer,omitempty"`
	NAT      bool   `json:"nat"`
	Lifetime int64  `json:"lifetime"` // seconds left; 0 unless registered
	Since    string `json:"since,omitempty"`
	// RTTms is the smoothed round-trip time of the binding's liveness
	// probes in milliseconds; 0 until a probe has been answered (the home
	// agent, which answers probes rather than sends them, leaves it 0).
	RTTms float64 `json:"rtt_ms,omitempty"`
	// Loss is the fraction (0 to 1) of the recent liveness probes that
	// went unanswered; 0 when none was lost or none was sent.
	Loss float64 `json:"loss,omitempty"`
	Traffic
}

// Traffic counts one binding's packets and octets: out into the tunnel
// towards the peer, in out of the tunnel from it.
type Traffic struct {
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	// TxPacketsV4 and RxPacketsV4 are the IPv4 packets among them.
	TxPacketsV4 uint64 `json:"tx_packets_v4"`
	RxPacketsV4 uint64 `json:"rx_packets_v4"`
}

// Counters are a daemon's signalling counters, in one shape on both roles:
// the router counts the Binding Updates it sends and the answers it gets,
// the home agent the Binding Updates it gets and the answers it sends.
type Counters struct {
	Sent            uint64 `json:"sent"`     // Binding Updates (router), Acknowledgements (home agent)
	Received        uint64 `json:"received"` // Acknowledgements (router), Binding Updates (home agent)
	Accepted        uint64 `json:"accepted"` // registrations and refreshes that succeeded
	Deregistrations uint64 `json:"deregistrations"`
	Retransmits     uint64 `json:"retransmits"`
	Expired         uint64 `json:"expired"` // bindings that ran out of lifetime
	Probes          uint64 `json:"probes"`  // liveness probes sent (router) or answered (home agent)
	DeadPaths       uint64 `json:"dead_paths"`
	// Failovers counts the times the router moved traffic off a binding
	// that went down onto another one (router only).
	Failovers uint64 `json:"failovers,omitempty"`
	// QueueDropped counts signalling packets the readers could not hand
	// to the event loop (it was behind).
	QueueDropped uint64 `json:"queue_dropped"`
	// RateLimited counts refusals left unanswered by the rate limit.
	RateLimited uint64 `json:"rate_limited"`
	// Rejected counts refusals by reason: the ones the home agent
	// answered with an error status, or the router received.
	Rejected map[string]uint64 `json:"rejected"`
	// Ignored counts signalling dropped without an answer, by reason.
	Ignored map[string]uint64 `json:"ignored"`
}

// DataPlane is the data plane's part of a status, on either role.
type DataPlane struct {
	Backend string `json:"backend"`
	Kernel  string `json:"kernel_backend"`
	Device  string `json:"device"`
	MTU     int    `json:"mtu"`
	// Drops counts packets the data plane refused, by reason; every
	// reason is present, zero or not.
	Drops map[string]uint64 `json:"drops"`
	// DropsV4 counts the IPv4 packets among Drops, by the same reasons.
	DropsV4 map[string]uint64 `json:"drops_v4"`
}

// Runtime is what a daemon holds: leaks after many handovers show here.
type Runtime struct {
	Goroutines int `json:"goroutines"`
	FDs        int `json:"fds"`
}

// Memory is `nemod ctl memstats`, taken after a garbage collection.
type Memory struct {
	HeapInuse uint64 `json:"heap_inuse"`
	Sys       uint64 `json:"sys"`
	RSS       uint64 `json:"rss"`
}

// RouterFlows is `nemod ctl flows` on a mobile router.
type RouterFlows struct {
	Role string `json:"role"`
	Flows
	// Refused are the flow bindings the home agent did not accept, by
	// FID, with the status it answered.
	Refused map[uint16]uint8 `json:"refused,omitempty"`
}

// HomeAgentFlows is `nemod ctl flows` on a home agent.
type HomeAgentFlows struct {
	Role          string             `json:"role"`
	MobileRouters []MobileRouterFlow `json:"mobile_routers"`
}

// MobileRouterFlow is one mobile router's flow binding list.
type MobileRouterFlow struct {
	Name        string `json:"name"`
	HomeAddress string `json:"home_address"`
	Flows
}

// Flows is a flow binding table with what it steers now.
type Flows struct {
	Flows      []Flow `json:"flows"`
	Duplicates uint64 `json:"duplicates_suppressed"`
}

// Flow is one entry of a flow binding table (RFC 6089).
type Flow struct {
	Rule     string   `json:"rule"`
	Policy   string   `json:"policy,omitempty"`
	FID      uint16   `json:"fid,omitempty"` // absent for direct entries
	Pri      uint16   `json:"fid_pri"`
	Mode     string   `json:"mode"` // failover, duplicate or direct
	BIDs     []uint16 `json:"bids,omitempty"`
	Selector string   `json:"selector"`
	Active   bool     `json:"active"`
	Packets  uint64   `json:"packets"`
}

// Reload is the answer to `nemod ctl reload`: what the new configuration
// changed, and what of it waits for a restart.
type Reload struct {
	Reloaded bool `json:"reloaded"`
	// Applied names each option (section.option) whose new value is in
	// effect.
	Applied []string `json:"applied"`
	// NeedsRestart names each changed option the running daemon cannot
	// take on; it keeps the old value until restarted.
	NeedsRestart []string `json:"needs_restart"`
}
