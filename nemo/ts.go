package nemo

import (
	"encoding/binary"
	"net/netip"
)

// Traffic selector formats (RFC 6088 §3).
const (
	TSFormatIPv4 uint8 = 1
	TSFormatIPv6 uint8 = 2
)

// Fields a traffic selector may carry, as bits of TrafficSelector.Present.
// The same bit means the same field in both formats; the wire flags differ
// (IPv4 has no flow label) and are mapped by the encoder.
const (
	TSSrcAddrStart uint32 = 1 << iota
	TSSrcAddrEnd
	TSDstAddrStart
	TSDstAddrEnd
	TSSPIStart
	TSSPIEnd
	TSFlowLabelStart // IPv6 only
	TSFlowLabelEnd
	TSSrcPortStart
	TSSrcPortEnd
	TSDstPortStart
	TSDstPortEnd
	TSTCStart // IPv6 traffic class, IPv4 DS field; upper 6 bits compared
	TSTCEnd
	TSProtoStart // IPv4 protocol, IPv6 next header
	TSProtoEnd
)

// TrafficSelector is a binary traffic selector (RFC 6088). "Source" is the
// correspondent's side and "destination" the mobile network's, as packets
// flow towards the mobile router at the home agent. Ranges are inclusive.
type TrafficSelector struct {
	Format  uint8  // TSFormatIPv4 or TSFormatIPv6; 0 = no selector
	Present uint32 // TS* bits of the fields present

	SrcAddrStart, SrcAddrEnd     netip.Addr
	DstAddrStart, DstAddrEnd     netip.Addr
	SPIStart, SPIEnd             uint32
	FlowLabelStart, FlowLabelEnd uint32 // 20-bit values
	SrcPortStart, SrcPortEnd     uint16
	DstPortStart, DstPortEnd     uint16
	TCStart, TCEnd               uint8
	ProtoStart, ProtoEnd         uint8
}

// maxTSLen is the longest encoded selector: flags and every IPv6 field.
const maxTSLen = 4 + 4*16 + 4*4 + 4*2 + 4*1

type tsField struct {
	bit  uint32 // TS* field bit
	size int    // octets on the wire
}

// The fields in wire order; wire flag k (0-based, from the most significant
// bit) is the k-th entry.
var (
	tsFieldsV4 = []tsField{
		{TSSrcAddrStart, 4}, {TSSrcAddrEnd, 4}, {TSDstAddrStart, 4}, {TSDstAddrEnd, 4},
		{TSSPIStart, 4}, {TSSPIEnd, 4}, {TSSrcPortStart, 2}, {TSSrcPortEnd, 2},
		{TSDstPortStart, 2}, {TSDstPortEnd, 2}, {TSTCStart, 1}, {TSTCEnd, 1},
		{TSProtoStart, 1}, {TSProtoEnd, 1},
	}
	tsFieldsV6 = []tsField{
		{TSSrcAddrStart, 16}, {TSSrcAddrEnd, 16}, {TSDstAddrStart, 16}, {TSDstAddrEnd, 16},
		{TSSPIStart, 4}, {TSSPIEnd, 4}, {TSFlowLabelStart, 4}, {TSFlowLabelEnd, 4},
		{TSSrcPortStart, 2}, {TSSrcPortEnd, 2}, {TSDstPortStart, 2}, {TSDstPortEnd, 2},
		{TSTCStart, 1}, {TSTCEnd, 1}, {TSProtoStart, 1}, {TSProtoEnd, 1},
	}
)

// Each End bit is its Start bit shifted left by one; an End field may only
// appear with its Start field (RFC 6088 §3.1).
const tsEndBits = TSSrcAddrEnd | TSDstAddrEnd | TSSPIEnd | TSFlowLabelEnd |
	TSSrcPortEnd | TSDstPortEnd | TSTCEnd | TSProtoEnd

func tsFields(format uint8) []tsField {
	switch format {
	case TSFormatIPv4:
		return tsFieldsV4
	case TSFormatIPv6:
		return tsFieldsV6
	}
	return nil
}

func (ts *TrafficSelector) field(bit uint32) (addr *netip.Addr, u32 *uint32, u16 *uint16, u8 *uint8) {
	switch bit {
	case TSSrcAddrStart:
		return &ts.SrcAddrStart, nil, nil, nil
	case TSSrcAddrEnd:
		return &ts.SrcAddrEnd, nil, nil, nil
	case TSDstAddrStart:
		return &ts.DstAddrStart, nil, nil, nil
	case TSDstAddrEnd:
		return &ts.DstAddrEnd, nil, nil, nil
	case TSSPIStart:
		return nil, &ts.SPIStart, nil, nil
	case TSSPIEnd:
		return nil, &ts.SPIEnd, nil, nil
	case TSFlowLabelStart:
		return nil, &ts.FlowLabelStart, nil, nil
	case TSFlowLabelEnd:
		return nil, &ts.FlowLabelEnd, nil, nil
	case TSSrcPortStart:
		return nil, nil, &ts.SrcPortStart, nil
	case TSSrcPortEnd:
		return nil, nil, &ts.SrcPortEnd, nil
	case TSDstPortStart:
		return nil, nil, &ts.DstPortStart, nil
	case TSDstPortEnd:
		return nil, nil, &ts.DstPortEnd, nil
	case TSTCStart:
		return nil, nil, nil, &ts.TCStart
	case TSTCEnd:
		return nil, nil, nil, &ts.TCEnd
	case TSProtoStart:
		return nil, nil, nil, &ts.ProtoStart
	}
	return nil, nil, nil, &ts.ProtoEnd
}

// MarshalBinary encodes the selector's flags and fields (what follows the
// TS Format and Reserved octets in a Traffic Selector sub-option).
func (ts *TrafficSelector) MarshalBinary() ([]byte, error) {
	return ts.appendBinary(make([]byte, 0, maxTSLen))
}

func (ts *TrafficSelector) appendBinary(b []byte) ([]byte, error) {
	const msg = "traffic selector"
	fields := tsFields(ts.Format)
	if fields == nil {
		return b, errAt(msg, "TS Format", -1, itoa(int(ts.Format))+" is neither 1 (IPv4) nor 2 (IPv6)")
	}
	var known, flags uint32
	for k, f := range fields {
		known |= f.bit
		if ts.Present&f.bit != 0 {
			flags |= 0x80000000 >> k
		}
	}
	if ts.Present&^known != 0 {
		return b, errAt(msg, "fields", -1, "a field the format cannot carry is set (flow label in an IPv4 selector?)")
	}
	if e := ts.Present & tsEndBits; e&^(ts.Present<<1) != 0 {
		return b, errAt(msg, "fields", -1, "an end field is set without its start field")
	}
	b = binary.BigEndian.AppendUint32(b, flags)
	for _, f := range fields {
		if ts.Present&f.bit == 0 {
			continue
		}
		a, u32, u16, u8 := ts.field(f.bit)
		switch {
		case a != nil:
			if (f.size == 4) != a.Is4() || (f.size == 16 && a.Is4In6()) {
				return b, errAt(msg, "address", -1, a.String()+" does not fit the selector's format")
			}
			if f.size == 4 {
				v := a.As4()
				b = append(b, v[:]...)
			} else {
				v := a.As16()
				b = append(b, v[:]...)
			}
		case u32 != nil:
			if (f.bit == TSFlowLabelStart || f.bit == TSFlowLabelEnd) && *u32 > 0xfffff {
				return b, errAt(msg, "flow label", -1, "does not fit in 20 bits")
			}
			b = binary.BigEndian.AppendUint32(b, *u32)
		case u16 != nil:
			b = binary.BigEndian.AppendUint16(b, *u16)
		default:
			b = append(b, *u8)
		}
	}
	return b, nil
}

// UnmarshalBinary decodes flags and fields of the given format; the data
// must hold exactly the fields its flags announce.
func (ts *TrafficSelector) UnmarshalBinary(format uint8, data []byte) error {
	const msg = "traffic selector"
	*ts = TrafficSelector{}
	fields := tsFields(format)
	if fields == nil {
		return errAt(msg, "TS Format", -1, itoa(int(format))+" is not supported")
	}
	if len(data) < 4 {
		return errAt(msg, "flags", 0, "need 4 octets, have "+itoa(len(data)))
	}
	flags := binary.BigEndian.Uint32(data)
	if flags&(0xffffffff>>len(fields)) != 0 {
		return errAt(msg, "flags", 0, "reserved flag bits are set")
	}
	ts.Format = format
	off := 4
	for k, f := range fields {
		if flags&(0x80000000>>k) == 0 {
			continue
		}
		if off+f.size > len(data) {
			return errAt(msg, "fields", off, "flags announce more fields than the "+itoa(len(data))+" octets hold")
		}
		ts.Present |= f.bit
		a, u32, u16, u8 := ts.field(f.bit)
		v := data[off:]
		switch {
		case a != nil && f.size == 4:
			*a = addr4(v)
		case a != nil:
			*a = addr16(v)
		case u32 != nil:
			*u32 = binary.BigEndian.Uint32(v)
			if (f.bit == TSFlowLabelStart || f.bit == TSFlowLabelEnd) && *u32 > 0xfffff {
				return errAt(msg, "flow label", off, "does not fit in 20 bits")
			}
		case u16 != nil:
			*u16 = binary.BigEndian.Uint16(v)
		default:
			*u8 = v[0]
		}
		off += f.size
	}
	if off != len(data) {
		return errAt(msg, "length", off, itoa(len(data)-off)+" octets after the last field")
	}
	if e := ts.Present & tsEndBits; e&^(ts.Present<<1) != 0 {
		return errAt(msg, "flags", 0, "an end field is present without its start field")
	}
	return nil
}
