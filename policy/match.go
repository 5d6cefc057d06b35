package policy

import (
	"net/netip"

	"nemod/nemo"
)

// Direction says which way a packet travels relative to the mobile network.
type Direction int

const (
	// FromMN is the uplink: a packet from the mobile network (its source
	// is a LAN host) going out.
	FromMN Direction = iota
	// ToMN is the downlink, at the home agent or arriving at the router:
	// the packet as a selector describes it.
	ToMN
)

func (d Direction) String() string {
	if d == FromMN {
		return "from-mn"
	}
	return "to-mn"
}

// Matches reports whether a packet travelling in direction d belongs to the
// flow ts describes. ts is written for ToMN (source = correspondent); for
// FromMN the packet's addresses and ports are compared the other way round.
// Absent fields match anything, ranges are inclusive, Traffic Class compares
// the DSCP (upper 6 bits) and flow labels their 20 bits. A selector with an
// SPI matches nothing, as ESP is not looked into; one of the other format
// than the packet's addresses, or none at all (Format 0), matches nothing.
func Matches(ts *nemo.TrafficSelector, p *Packet, d Direction) bool {
	switch ts.Format {
	case nemo.TSFormatIPv6:
		if !p.Src.Is6() || !p.Dst.Is6() {
			return false
		}
	case nemo.TSFormatIPv4:
		if !p.Src.Is4() || !p.Dst.Is4() {
			return false
		}
	default:
		return false
	}
	f := ts.Present
	if f&nemo.TSSPIStart != 0 {
		return false
	}
	// Cheap one-field tests first: most entries fail on protocol or port,
	// and addresses cost the most.
	if f&nemo.TSProtoStart != 0 && !in(uint32(p.Proto), uint32(ts.ProtoStart), uint32(ts.ProtoEnd), f&nemo.TSProtoEnd != 0) {
		return false
	}
	remote, local := &p.Src, &p.Dst
	rport, lport := p.SrcPort, p.DstPort
	if d == FromMN {
		remote, local = local, remote
		rport, lport = lport, rport
	}
	if f&nemo.TSSrcPortStart != 0 && !in(uint32(rport), uint32(ts.SrcPortStart), uint32(ts.SrcPortEnd), f&nemo.TSSrcPortEnd != 0) {
		return false
	}
	if f&nemo.TSDstPortStart != 0 && !in(uint32(lport), uint32(ts.DstPortStart), uint32(ts.DstPortEnd), f&nemo.TSDstPortEnd != 0) {
		return false
	}
	if f&nemo.TSTCStart != 0 && !in(uint32(p.TC>>2), uint32(ts.TCStart>>2), uint32(ts.TCEnd>>2), f&nemo.TSTCEnd != 0) {
		return false
	}
	if f&nemo.TSFlowLabelStart != 0 && !in(p.FlowLabel&0xfffff, ts.FlowLabelStart&0xfffff, ts.FlowLabelEnd&0xfffff, f&nemo.TSFlowLabelEnd != 0) {
		return false
	}
	if f&nemo.TSSrcAddrStart != 0 && !addrIn(remote, &ts.SrcAddrStart, &ts.SrcAddrEnd, f&nemo.TSSrcAddrEnd != 0) {
		return false
	}
	if f&nemo.TSDstAddrStart != 0 && !addrIn(local, &ts.DstAddrStart, &ts.DstAddrEnd, f&nemo.TSDstAddrEnd != 0) {
		return false
	}
	return true
}

// in reports whether v is in [lo, hi], or is lo when there is no end.
func in(v, lo, hi uint32, hasEnd bool) bool {
	if !hasEnd {
		return v == lo
	}
	return lo <= v && v <= hi
}

// addrIn reports whether a is in [lo, hi], or is lo when there is no end.
func addrIn(a, lo, hi *netip.Addr, hasEnd bool) bool {
	if !hasEnd {
		return *a == *lo
	}
	return lo.Compare(*a) <= 0 && a.Compare(*hi) <= 0
}

// Active reports whether the entry affects traffic (RFC 6089 §4.3) given
// which BIDs are usable (registered and alive; nil means all are): a direct
// entry always, another while one of its BIDs is usable.
func (e *Entry) Active(usable func(uint16) bool) bool {
	if e.Direct || usable == nil {
		return true
	}
	for _, b := range e.BIDs {
		if usable(b) {
			return true
		}
	}
	return false
}

// Match returns the entry a packet belongs to: the first active entry, in
// FID-PRI order, whose selector matches. usable reports whether a BID is
// registered and alive; nil means every BID is.
func (t *Table) Match(p *Packet, d Direction, usable func(bid uint16) bool) (e *Entry, ok bool) {
	if t == nil {
		return nil, false
	}
	for i := range t.Entries {
		e := &t.Entries[i]
		if Matches(&e.TS, p, d) && e.Active(usable) {
			return e, true
		}
	}
	return nil, false
}

// Targets appends to out the BIDs a packet goes to and returns the entry it
// matched (nil for none). A matched entry sends it to each of its usable
// BIDs: one for a failover entry, all that work for a duplicate one. A
// direct entry sends it to none and reports direct: the router routes it
// out of the uplinks itself. An unmatched packet goes to the first usable
// BID of order, the bindings by BID-PRI then BID (see BindingOrder). When
// nothing is usable, no BID is appended.
func (t *Table) Targets(p *Packet, d Direction, usable func(uint16) bool, order []uint16, out []uint16) (targets []uint16, e *Entry, direct bool) {
	if e, ok := t.Match(p, d, usable); ok {
		if e.Direct {
			return out, e, true
		}
		for _, b := range e.BIDs {
			if usable == nil || usable(b) {
				out = append(out, b)
			}
		}
		return out, e, false
	}
	for _, b := range order {
		if usable == nil || usable(b) {
			return append(out, b), nil, false
		}
	}
	return out, nil, false
}
