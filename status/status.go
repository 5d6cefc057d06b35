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
	// Prefix delegation and the LANs' router advertisements: nil/empty
	// when the router has neither.
	PD   *RouterPD `json:"pd,omitempty"`
	LANs []LAN     `json:"lans,omitempty"`
	// Revocation: see the fleet block below.
	Revocation RouterRevocation `json:"revocation"`
	// HomeAgentInUse: see the cluster block below.
	HomeAgentInUse RouterHomeAgent `json:"home_agent_in_use"`
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
	// PD is the delegating router or relay; nil without one.
	PD *HomeAgentPD `json:"pd,omitempty"`
	// Revocations, Radius and Hairpin: see the fleet block below.
	Revocations Revocations `json:"revocations"`
	Radius      *Radius     `json:"radius,omitempty"`
	Hairpin     Hairpin     `json:"hairpin"`
	// Cluster and Switches: see the cluster block below.
	Cluster  *Cluster    `json:"cluster,omitempty"`
	Switches []Switching `json:"switches"`
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
	// Leases are the prefixes delegated to it (option pd '1').
	Leases []Lease `json:"leases,omitempty"`
}

// RouterPD is the mobile router's DHCPv6 prefix delegation (RFC 6276).
type RouterPD struct {
	State     string  `json:"state"`      // init, soliciting, requesting, bound, renewing, rebinding, releasing
	Server    string  `json:"server"`     // where the relay sends: the home agent, port 547
	ServerID  string  `json:"server_id"`  // the delegating server's DUID (hex), "" before the first
	DUID      string  `json:"duid"`       // the router's own (hex)
	ReqPrefix int     `json:"reqprefix"`  // the length asked for; 0: auto
	Prefixes  []Lease `json:"prefixes"`   // held and valid
	T1        int64   `json:"t1"`         // seconds until it renews; 0: not bound
	T2        int64   `json:"t2"`         // seconds until it rebinds; 0: not bound
	LeaseFile string  `json:"lease_file"` // where the lease is kept
	// Counters are the client's and its shell's, by name.
	Counters map[string]uint64 `json:"counters"`
}

// Lease is a delegated prefix with what is left of its lifetimes, in
// seconds (4294967295: infinite), and when they end (RFC 3339).
type Lease struct {
	Prefix         string `json:"prefix"`
	Preferred      int64  `json:"preferred"`
	Valid          int64  `json:"valid"`
	PreferredUntil string `json:"preferred_until"`
	ValidUntil     string `json:"valid_until"`
}

// LAN is one list lan interface's router advertisements.
type LAN struct {
	Interface string `json:"interface"`
	// Prefixes are the /64s advertised, with the router's address on each.
	Prefixes []string `json:"prefixes"`
	Address  []string `json:"addresses"`
	// Counters are the advertiser's and its socket's, by name.
	Counters map[string]uint64 `json:"counters"`
}

// HomeAgentPD is the home agent's delegating router or relay.
type HomeAgentPD struct {
	Mode      string `json:"mode"`             // "pool": built in; "relay": to an external server
	Server    string `json:"server,omitempty"` // the external server, for relay
	Listen    string `json:"listen"`           // the socket routers' relays send to
	LeaseFile string `json:"lease_file,omitempty"`
	// Counters are the state machine's and its socket's, by name.
	Counters map[string]uint64 `json:"counters"`
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
	// StateRevoked: the home agent revoked the binding (RFC 5846); the
	// router waits out its holdoff before registering it again.
	StateRevoked = "revoked"
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

// The fleet block: what a home agent serving a fleet reports (routers
// RADIUS authorized, binding revocations, traffic between two of its
// mobile networks), and a router's revoked bindings.

// Revocation is the answer to `nemod ctl revoke`: one Binding Revocation
// Indication (RFC 5846) and what the router said.
type Revocation struct {
	Router      string   `json:"router"`
	HomeAddress string   `json:"home_address"`
	BIDs        []uint16 `json:"bids"` // empty: every binding
	Trigger     uint8    `json:"trigger"`
	// Answered: the router acknowledged, with Status (0 success, 1 partial,
	// 128 no such binding, RFC 5846 §6.2). Otherwise the retransmissions
	// ran out; the bindings are removed either way.
	Answered      bool  `json:"answered"`
	Status        uint8 `json:"status"`
	Transmissions int   `json:"transmissions"`
}

// Revocations counts a home agent's revocations.
type Revocations struct {
	Revoked      uint64 `json:"revoked"`      // revocations started (ctl or RADIUS)
	Sent         uint64 `json:"sent"`         // indications, retransmissions included
	Acknowledged uint64 `json:"acknowledged"` // answered by the router
	Unanswered   uint64 `json:"unanswered"`
	Pending      int    `json:"pending"`
	// Disconnects counts the RADIUS Disconnect-Requests (RFC 5176) that
	// revoked a router; DisconnectsNotFound those naming no session.
	Disconnects         uint64 `json:"disconnects"`
	DisconnectsNotFound uint64 `json:"disconnects_not_found"`
}

// Radius is a home agent's RADIUS authorization and accounting.
type Radius struct {
	Servers []RadiusServer `json:"servers"`
	// Authorized is the number of routers RADIUS authorized that are
	// installed; Cached the NAIs the authorization cache remembers.
	Authorized int `json:"authorized"`
	Cached     int `json:"cached"`
	// Accepts, Rejects and Failures count the Access-Request results
	// (failures: no server answered, or the answer was unusable).
	Accepts  uint64 `json:"accepts"`
	Rejects  uint64 `json:"rejects"`
	Failures uint64 `json:"failures"`
	// Held counts the Binding Updates dropped while their router's
	// authorization was asked for (the router retransmits); Refused the
	// submissions the client's full queue refused.
	Held       uint64 `json:"held"`
	Refused    uint64 `json:"refused"`
	SendErrors uint64 `json:"send_errors"`
	// Accounting records sent (Start, Interim-Update, Stop) and answered.
	AccountingSent     uint64 `json:"accounting_sent"`
	AccountingAnswered uint64 `json:"accounting_answered"`
	AccountingFailed   uint64 `json:"accounting_failed"`
	// DynAuth is the Disconnect-Request server's counters; nil without
	// option dynauth_listen.
	DynAuth *DynAuth `json:"dynauth,omitempty"`
}

// RadiusServer is one RADIUS server as the client sees it.
type RadiusServer struct {
	Addr      string `json:"addr"`
	Kind      string `json:"kind"` // access or accounting
	Dead      bool   `json:"dead"`
	Requests  uint64 `json:"requests"`
	Responses uint64 `json:"responses"`
	Timeouts  uint64 `json:"timeouts"`
}

// DynAuth counts the Disconnect-Requests received.
type DynAuth struct {
	Received  uint64 `json:"received"`
	Discarded uint64 `json:"discarded"`
	ACKs      uint64 `json:"acks"`
	NAKs      uint64 `json:"naks"`
}

// Hairpin counts the packets the home agent's data plane carried from one
// of its mobile routers' tunnels straight into another's.
type Hairpin struct {
	Packets uint64 `json:"packets"`
	Octets  uint64 `json:"octets"`
	// Dropped: packets between two mobile networks the receiving
	// router's flow policy had no binding for.
	Dropped uint64 `json:"dropped"`
}

// RouterRevocation is what a router knows of revocations.
type RouterRevocation struct {
	// Taken counts the authentic indications acted on; Repeated the
	// retransmissions answered again.
	Taken    uint64 `json:"taken"`
	Repeated uint64 `json:"repeated"`
	// Revoked lists the BIDs waiting out their holdoff, until
	// HoldoffUntil (RFC 3339); AllRevoked says every binding is.
	Revoked      []uint16 `json:"revoked"`
	AllRevoked   bool     `json:"all_revoked"`
	HoldoffUntil string   `json:"holdoff_until,omitempty"`
}

// The cluster block: home agents sharing their binding cache, the Home
// Agent Switch (RFC 5142), and the router's list of home agents.

// Cluster is what a member of a cluster of home agents reports.
type Cluster struct {
	Node      string            `json:"node"`
	Owned     []string          `json:"owned"` // the instances it forwards for
	Instances []ClusterInstance `json:"instances"`
	Members   []ClusterMember   `json:"members"`
	// Connected: its last lease refresh was answered; LeaseLeft is how
	// long (seconds) it may count on its lease without another.
	Connected bool    `json:"connected"`
	Draining  bool    `json:"draining,omitempty"`
	LeaseTTL  float64 `json:"lease_ttl"`
	LeaseLeft float64 `json:"lease_left"`
	// Counters: commits, written, conflicts, imported, leases_lost,
	// takeovers, handovers.
	Counters map[string]uint64 `json:"counters"`
}

// ClusterInstance is one home agent address pair of the cluster.
type ClusterInstance struct {
	Address    string   `json:"address"`
	AddressV4  string   `json:"address_v4,omitempty"`
	Owner      string   `json:"owner"`      // "" while none
	Candidates []string `json:"candidates"` // the owner first, then who takes over next
	Routers    int      `json:"routers"`    // registered with it
	OwnedSince string   `json:"owned_since,omitempty"`
}

// ClusterMember is one member as the reporting member sees it.
type ClusterMember struct {
	Node     string   `json:"node"`
	Alive    bool     `json:"alive"` // its lease holds in the store
	Draining bool     `json:"draining,omitempty"`
	Owns     []string `json:"owns"`
	Since    string   `json:"since"`
}

// Switching is a router a home agent is switching away (RFC 5142).
type Switching struct {
	Router      string   `json:"router"`
	HomeAddress string   `json:"home_address"`
	From        string   `json:"from"`
	To          []string `json:"to"`
	Sent        int      `json:"sent"`
}

// SwitchReply answers `nemod ctl switch` and `nemod ctl drain`.
type SwitchReply struct {
	// Switched are the routers told to move; Moved those that did (drain
	// waits for them), Unanswered those that did not in time.
	Switched   []string `json:"switched"`
	Moved      []string `json:"moved"`
	Unanswered []string `json:"unanswered"`
	To         []string `json:"to"`
	// HandedOver are the instances a drained member gave up to the others.
	HandedOver []string `json:"handed_over"`
}

// RouterHomeAgent is which home agent a router uses, and why.
type RouterHomeAgent struct {
	Address   string `json:"address"`
	AddressV4 string `json:"address_v4,omitempty"`
	// Index in list home_agent (-1: an address a switch named).
	Index int `json:"index"`
	// Reason: configured, ha_timeout, home_agent_switch or
	// preferred_answered; From is the one before.
	Reason    string `json:"reason"`
	From      string `json:"from,omitempty"`
	Since     string `json:"since,omitempty"`
	Failovers uint64 `json:"failovers"`
	Switches  uint64 `json:"switches"`
	Returns   uint64 `json:"returns"`
	// Silent: how long (seconds) the home agent has left a Binding
	// Update unanswered; 0 while it answers.
	Silent float64 `json:"silent"`
}
