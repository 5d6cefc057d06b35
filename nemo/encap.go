package nemo

// Encap is how a mobile router and its home agent reach each other over
// one binding: the one encapsulation type of configuration, binding state,
// data plane and status. EncapAuto and EncapUDP are what an uplink's
// configuration may ask for; a binding always uses one of EncapIPv6,
// EncapUDP4 or EncapUDP6.
type Encap uint8

const (
	EncapNone Encap = iota // no binding
	// EncapAuto (configuration): native IPv6 where the uplink has IPv6, UDP
	// over IPv6 when that gets no answer, UDP over IPv4 on IPv4-only uplinks.
	EncapAuto
	// EncapIPv6: IPv6-in-IPv6 (next header 41) and native Mobility Header
	// signalling with a Home Address option (RFC 6275, RFC 3963).
	EncapIPv6
	// EncapUDP (configuration): UDP only, over IPv6 where the uplink has
	// it, else over IPv4.
	EncapUDP
	// EncapUDP4: UDP port 4191 over IPv4 (RFC 5555), through NAT.
	EncapUDP4
	// EncapUDP6: UDP port 4191 over IPv6, for paths whose firewalls drop
	// protocols 135 and 41.
	EncapUDP6
)

var encapNames = [...]string{EncapNone: "none", EncapAuto: "auto", EncapIPv6: "ipv6", EncapUDP: "udp", EncapUDP4: "udp4", EncapUDP6: "udp6"}

func (e Encap) String() string {
	if int(e) < len(encapNames) {
		return encapNames[e]
	}
	return "Encap(" + itoa(int(e)) + ")"
}

// ParseEncap reads the value of an uplink's `encap` option: auto, ipv6 or
// udp.
func ParseEncap(s string) (Encap, bool) {
	switch s {
	case "auto":
		return EncapAuto, true
	case "ipv6":
		return EncapIPv6, true
	case "udp":
		return EncapUDP, true
	}
	return EncapNone, false
}

// UDP reports whether a binding's encapsulation runs over UDP port 4191.
func (e Encap) UDP() bool { return e == EncapUDP4 || e == EncapUDP6 }

// Overhead is what the encapsulation adds to each packet (for the
// configuration-only values, the most either choice adds).
func (e Encap) Overhead() int {
	switch e {
	case EncapIPv6:
		return 40
	case EncapUDP4:
		return 20 + 8
	}
	return 40 + 8
}
