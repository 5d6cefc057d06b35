package policy

import "nemod/header"

// Packet is what a rule can match in a packet: header's flow fields.
type Packet = header.Flow

// ParsePacket reads the fields rules match, behind header's validity gate
// (see header.ParseFlow); false for what is not a well-formed packet.
func ParsePacket(b []byte) (Packet, bool) {
	p, err := header.ParseFlow(b)
	return p, err == nil
}
