package status

// OpenWrtRouter is `ubus call nemod status`: ctl status's shape, and per
// uplink what mwan3's users read of an interface.
type OpenWrtRouter struct {
	Router
	Uplinks map[string]UplinkHealth `json:"uplinks"`
}

// UplinkHealth is one uplink's health, by the names mwan3's status uses
// where it has them.
type UplinkHealth struct {
	BID       uint16 `json:"bid"`
	Device    string `json:"device"`
	Interface string `json:"interface,omitempty"` // its netifd interface (option interface)
	// Status is "online" while the uplink's binding is registered,
	// "offline" otherwise; Online says the same as a boolean.
	Status string `json:"status"`
	Online bool   `json:"online"`
	// Uptime is the seconds since the binding registered (0 offline).
	Uptime int64 `json:"uptime"`
	// RTTms and Loss are the binding's (see Binding).
	RTTms float64 `json:"rtt_ms"`
	Loss  float64 `json:"loss"`
}
