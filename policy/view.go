package policy

import (
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"

	"nemod/header"
	"nemod/nemo"
	"nemod/status"
)

// View describes every entry, in order, and whether it is active given
// which BIDs are usable (nil: all are).
func (t *Table) View(usable func(uint16) bool) []status.Flow {
	if t == nil {
		return nil
	}
	v := make([]status.Flow, len(t.Entries))
	for i := range t.Entries {
		e := &t.Entries[i]
		v[i] = status.Flow{
			Rule: e.Rule, Policy: e.Policy, FID: e.FID, Pri: e.Pri, Mode: e.Mode(),
			BIDs: append([]uint16(nil), e.BIDs...), Selector: Describe(&e.TS), Active: e.Active(usable),
		}
	}
	return v
}

// String lays the table out in columns, one entry a line, every entry
// taken as active.
func (t *Table) String() string {
	var sb strings.Builder
	w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
	w.Write([]byte("FID-PRI\tFID\tRULE\tPOLICY\tMODE\tBIDS\tSELECTOR\n"))
	for _, v := range t.View(nil) {
		fid := "-"
		if v.FID != 0 {
			fid = strconv.Itoa(int(v.FID))
		}
		bids := make([]string, len(v.BIDs))
		for i, b := range v.BIDs {
			bids[i] = strconv.Itoa(int(b))
		}
		row := []string{strconv.Itoa(int(v.Pri)), fid, dash(v.Rule), dash(v.Policy), v.Mode, dash(strings.Join(bids, ",")), v.Selector}
		w.Write([]byte(strings.Join(row, "\t") + "\n"))
	}
	w.Flush()
	return sb.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Describe puts a selector in words the way rules are written, from the
// mobile network's side: "saddr" is the LAN host (the selector's
// destination), "daddr" the remote end (its source), e.g.
// "udp dport 5060-5061" or "tcp daddr 2001:db8:c::/48". A selector without
// fields is "any"; a missing one (Format 0) is "none".
func Describe(ts *nemo.TrafficSelector) string {
	if ts.Format == 0 {
		return "none"
	}
	f := ts.Present
	if f == 0 {
		return "any"
	}
	var w []string
	has := func(bit uint32) bool { return f&bit != 0 }
	if has(nemo.TSProtoStart) {
		if !has(nemo.TSProtoEnd) || ts.ProtoEnd == ts.ProtoStart {
			w = append(w, protoName(ts.ProtoStart))
		} else {
			w = append(w, "proto", numRange(uint32(ts.ProtoStart), uint32(ts.ProtoEnd), true))
		}
	}
	if has(nemo.TSDstAddrStart) {
		w = append(w, "saddr", addrRange(ts.DstAddrStart, ts.DstAddrEnd, has(nemo.TSDstAddrEnd)))
	}
	if has(nemo.TSDstPortStart) {
		w = append(w, "sport", numRange(uint32(ts.DstPortStart), uint32(ts.DstPortEnd), has(nemo.TSDstPortEnd)))
	}
	if has(nemo.TSSrcAddrStart) {
		w = append(w, "daddr", addrRange(ts.SrcAddrStart, ts.SrcAddrEnd, has(nemo.TSSrcAddrEnd)))
	}
	if has(nemo.TSSrcPortStart) {
		w = append(w, "dport", numRange(uint32(ts.SrcPortStart), uint32(ts.SrcPortEnd), has(nemo.TSSrcPortEnd)))
	}
	if has(nemo.TSTCStart) {
		w = append(w, "dscp", numRange(uint32(ts.TCStart>>2), uint32(ts.TCEnd>>2), has(nemo.TSTCEnd)))
	}
	if has(nemo.TSFlowLabelStart) {
		w = append(w, "flowlabel", numRange(ts.FlowLabelStart&0xfffff, ts.FlowLabelEnd&0xfffff, has(nemo.TSFlowLabelEnd)))
	}
	if has(nemo.TSSPIStart) {
		w = append(w, "spi", numRange(ts.SPIStart, ts.SPIEnd, has(nemo.TSSPIEnd)))
	}
	return strings.Join(w, " ")
}

func numRange(lo, hi uint32, hasEnd bool) string {
	s := strconv.FormatUint(uint64(lo), 10)
	if hasEnd && hi != lo {
		s += "-" + strconv.FormatUint(uint64(hi), 10)
	}
	return s
}

// addrRange writes a range that is exactly a prefix as the prefix, the way
// the rule that made it was written.
func addrRange(lo, hi netip.Addr, hasEnd bool) string {
	if !hasEnd || lo == hi {
		return lo.String()
	}
	if lo.BitLen() == hi.BitLen() {
		for bits := 0; bits < lo.BitLen(); bits++ {
			p := netip.PrefixFrom(lo, bits)
			if p.Masked().Addr() == lo && lastAddr(p) == hi {
				return p.String()
			}
		}
	}
	return lo.String() + "-" + hi.String()
}

func protoName(p uint8) string {
	switch p {
	case header.ProtoTCP:
		return "tcp"
	case header.ProtoUDP:
		return "udp"
	case header.ProtoICMPv6:
		return "icmpv6"
	case header.ProtoSCTP:
		return "sctp"
	case header.ProtoUDPLite:
		return "udplite"
	case header.ProtoDCCP:
		return "dccp"
	case header.ProtoESP:
		return "esp"
	case header.ProtoAH:
		return "ah"
	case 1:
		return "icmp"
	}
	return "proto " + strconv.Itoa(int(p))
}
