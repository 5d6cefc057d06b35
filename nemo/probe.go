package nemo

import "encoding/binary"

// Probe is nemod's liveness probe on a UDP path (port 4191): 8 octets whose
// first nibble is 0, which no IP packet has (see UDPFrame). Native IPv6
// paths are probed with the Heartbeat message (RFC 5847) instead. At one
// probe each way every 450 ms, a UDP/IPv4 path costs 36 octets per probe:
// 640 bit/s.
//
//	0: kind (1 request, 2 reply) | 1: reserved | 2: sequence (2) | 4: reserved (4)
type Probe struct {
	Reply bool
	Seq   uint16
}

// ProbeLen is the length of an encoded probe.
const ProbeLen = 8

const (
	probeRequest = 1
	probeReply   = 2
)

// Append appends the encoded probe to b.
func (p Probe) Append(b []byte) []byte {
	kind := byte(probeRequest)
	if p.Reply {
		kind = probeReply
	}
	b = append(b, kind, 0)
	b = binary.BigEndian.AppendUint16(b, p.Seq)
	return append(b, 0, 0, 0, 0)
}

// ParseProbe decodes a probe.
func ParseProbe(b []byte) (Probe, error) {
	if len(b) < ProbeLen {
		return Probe{}, errAt("probe", "length", 0, "is "+itoa(len(b))+", want 8")
	}
	switch b[0] {
	case probeRequest, probeReply:
	default:
		return Probe{}, errAt("probe", "kind", 0, itoa(int(b[0]))+" is neither 1 nor 2")
	}
	return Probe{Reply: b[0] == probeReply, Seq: binary.BigEndian.Uint16(b[2:])}, nil
}
