package nemo

import "encoding/binary"

// nemod's Vendor Specific mobility option (RFC 5094): what a nemod mobile
// router and a nemod home agent tell each other beyond the standards. A
// router offers its capabilities in every Binding Update; a home agent
// that knows the option answers, in its Binding Acknowledgement, with
// those it supports too. Any other home agent skips the option, as it
// must skip every mobility option it does not know (RFC 6275 §6.2.1), and
// answers without it: the router then uses only the standard mechanisms.
const (
	// NemodVendorID is the option's Vendor ID. nemod has no IANA private
	// enterprise number of its own; 32473 is the one RFC 5612 sets aside
	// for documentation, so that the option cannot pass for a real
	// vendor's. It is the one place to change once a number is assigned.
	NemodVendorID uint32 = 32473
	// NemodCapsSubType is the sub-type of the capabilities option: its
	// data is a 16-bit set of Caps, network byte order.
	NemodCapsSubType uint8 = 1
	// NemodUnboundSubType, with no data, marks a home agent's Heartbeat
	// response to a probe from a path it has no binding for: the path
	// works, the binding does not (a NAT that moved the router to a new
	// port, a binding de-registered when its path died). The router
	// registers the path again at once.
	NemodUnboundSubType uint8 = 2
)

// Caps is a set of capabilities a nemod peer announces.
type Caps uint16

const (
	// CapUDP6Offload: UDP over IPv6 (port 4191) with segmentation offload
	// both ways. A router with encap 'auto' on an IPv6 uplink moves the
	// binding from IPv6-in-IPv6 to it when the home agent agrees: one
	// datagram carries up to 64 KB of a TCP burst, where a raw protocol-41
	// socket sends every packet through the kernel on its own.
	CapUDP6Offload Caps = 1 << 0
	// CapHeartbeat: answers the peer's Heartbeat requests on every path
	// kind (natively and inside UDP). A home agent probes a router's
	// binding itself only when the router said so: a peer that does not
	// answer would look dead.
	CapHeartbeat Caps = 1 << 1
)

// NemodCaps returns the capabilities of nemod's option in o, if o has one.
// A malformed one (data shorter than 2 octets) counts as absent.
func (o *Options) NemodCaps() (Caps, bool) {
	for _, v := range o.Vendor {
		if v.ID == NemodVendorID && v.SubType == NemodCapsSubType && len(v.Data) >= 2 {
			return Caps(binary.BigEndian.Uint16(v.Data)), true
		}
	}
	return 0, false
}

// SetNemodCaps replaces nemod's option in o with one announcing c.
func (o *Options) SetNemodCaps(c Caps) {
	for i, v := range o.Vendor {
		if v.ID == NemodVendorID && v.SubType == NemodCapsSubType {
			o.Vendor = append(o.Vendor[:i], o.Vendor[i+1:]...)
			break
		}
	}
	o.Vendor = append(o.Vendor, Vendor{ID: NemodVendorID, SubType: NemodCapsSubType, Data: binary.BigEndian.AppendUint16(nil, uint16(c))})
}

// NemodUnbound reports whether o carries nemod's unbound mark.
func (o *Options) NemodUnbound() bool {
	for _, v := range o.Vendor {
		if v.ID == NemodVendorID && v.SubType == NemodUnboundSubType {
			return true
		}
	}
	return false
}

// SetNemodUnbound adds nemod's unbound mark to o.
func (o *Options) SetNemodUnbound() {
	if !o.NemodUnbound() {
		o.Vendor = append(o.Vendor, Vendor{ID: NemodVendorID, SubType: NemodUnboundSubType})
	}
}
