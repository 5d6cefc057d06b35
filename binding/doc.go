// Package binding holds the registration state of both roles, with no I/O:
// the home agent's binding cache (Cache) and the mobile router's binding
// update list (UpdateList). Both take the time as a parameter, consume decoded
// or raw signalling packets and return the packets to send, so the daemons
// are event loops around them and the logic is tested without a network.
package binding

// Encap is how a binding's traffic and signalling travel between the mobile
// router and the home agent.
type Encap uint8

const (
	EncapNone Encap = iota
	// EncapIPv6: IPv6-in-IPv6 (next header 41) and native Mobility Header
	// signalling with a Home Address option.
	EncapIPv6
	// EncapUDP4: IPv6 in UDP port 4191 over IPv4 (RFC 5555), through NAT.
	EncapUDP4
	// EncapUDP6: IPv6 in UDP port 4191 over IPv6, for paths whose
	// firewalls drop protocols 135 and 41.
	EncapUDP6
)

func (e Encap) String() string {
	switch e {
	case EncapIPv6:
		return "ipv6"
	case EncapUDP4:
		return "udp4"
	case EncapUDP6:
		return "udp6"
	}
	return "none"
}

// UDP reports whether the encapsulation runs over UDP port 4191.
func (e Encap) UDP() bool { return e == EncapUDP4 || e == EncapUDP6 }
