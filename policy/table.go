package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"nemod/config"
	"nemod/header"
	"nemod/nemo"
)

// FID-PRI numbering (see the package documentation).
const (
	// PriBlock is the number of FID-PRI values each rule owns, and so the
	// most uplinks a failover policy may list.
	PriBlock = 16
	// DefaultPri is the FID-PRI of the first default_policy catch-all.
	DefaultPri = 0x10000 - PriBlock
	// MaxRules is the most rules Compile numbers below DefaultPri.
	MaxRules = DefaultPri/PriBlock - 1
	// DefaultRule is the Rule name of the default_policy catch-alls.
	DefaultRule = "default"
)

// maxBindingRef is the most BIDs a Binding Reference sub-option can hold
// (its length octet counts 2 per BID, and the option must fit in 255).
const maxBindingRef = 126

// Entry is one line of the flow binding list (RFC 6089 §4.3).
type Entry struct {
	FID, Pri  uint16 // FID is 0 for a direct entry, which is not registered
	Rule      string // the rule's name; DefaultRule for catch-alls; "" at the home agent
	Policy    string // the policy's name, config.DirectPolicy; "" at the home agent
	BIDs      []uint16
	Duplicate bool // every packet goes to each usable BID
	Direct    bool // local breakout on the router, not tunnelled
	// TS is the RFC 6088 selector as the home agent sees the downlink:
	// source = the correspondent, destination = the mobile network.
	TS nemo.TrafficSelector
}

// Mode names how the entry uses its BIDs: "direct", "duplicate", or
// "failover" (one BID, the next entry takes over when it is gone).
func (e *Entry) Mode() string {
	switch {
	case e.Direct:
		return "direct"
	case e.Duplicate:
		return "duplicate"
	}
	return "failover"
}

// Table is a flow binding list, ordered by FID-PRI.
type Table struct {
	Entries []Entry
}

// Compile builds the router's flow binding list from its rules, in rule
// order, then the default_policy catch-alls. A rule naming addresses
// compiles to a selector of their family; one naming none, to one selector
// for each family the mobile network has (see families), the IPv4 entries
// after the IPv6 ones in the rule's FID-PRI block.
//
// Each error is a *config.Error naming r.Path and the line of the section
// it is about (the rule, the policy, the uplink, or the router section for
// default_policy), so that the daemon and check-config report it as they
// report config.Load's.
func Compile(r *config.Router) (*Table, error) {
	if r == nil {
		return nil, errors.New("policy: no router configuration")
	}
	errAt := func(line int, format string, args ...any) error {
		return &config.Error{Path: r.Path, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	if len(r.Rules) > MaxRules {
		extra := &r.Rules[MaxRules]
		return nil, errAt(extra.Line, "rule %q is rule %d: at most %d rules can be numbered below the default_policy catch-alls",
			extra.Name, MaxRules+1, MaxRules)
	}
	bids := make(map[string]uint16, len(r.Uplinks))
	for _, u := range r.Uplinks {
		if u.BID == 0 {
			return nil, errAt(u.Line, "uplink %q has BID 0, which RFC 5648 reserves", u.Name)
		}
		bids[u.Name] = u.BID
	}
	policies := make(map[string]*config.Policy, len(r.Policies))
	for i := range r.Policies {
		policies[r.Policies[i].Name] = &r.Policies[i]
	}

	// Sized up front: a table of thousands of rules would otherwise be
	// copied over and over as it grows.
	entries := func(policy string) int {
		if p := policies[policy]; p != nil && p.Mode == config.ModeFailover {
			return len(p.Use)
		}
		return 1
	}
	n := 2 * entries(r.DefaultPolicy)
	for i := range r.Rules {
		n += 2 * entries(r.Rules[i].Policy)
	}
	t := &Table{Entries: make([]Entry, 0, n)}
	var fid uint16
	// add appends the entries of one rule or of the default policy; what
	// names the policy is at line at, and user describes it in messages.
	add := func(rule, policy string, base uint16, ts nemo.TrafficSelector, at int, user string) error {
		p := policies[policy]
		if p == nil {
			return errAt(at, "%s: no policy %q", user, policy)
		}
		if len(p.Use) == 0 {
			return errAt(p.Line, "policy %q uses no uplink (%s uses it)", policy, user)
		}
		use := make([]uint16, len(p.Use))
		for i, name := range p.Use {
			b, ok := bids[name]
			if !ok {
				return errAt(p.Line, "policy %q uses %q, which is not an uplink", policy, name)
			}
			use[i] = b
		}
		switch p.Mode {
		case config.ModeFailover:
			if len(use) > PriBlock {
				return errAt(p.Line, "failover policy %q lists %d uplinks, at most %d (each rule has %d FID-PRI values; %s uses it)",
					policy, len(use), PriBlock, PriBlock, user)
			}
			for i := range use {
				fid++
				t.Entries = append(t.Entries, Entry{
					FID: fid, Pri: base + uint16(i), Rule: rule, Policy: policy,
					BIDs: use[i : i+1 : i+1], TS: ts,
				})
			}
		case config.ModeDuplicate:
			if len(use) > maxBindingRef {
				return errAt(p.Line, "duplicate policy %q lists %d uplinks, a Binding Reference holds at most %d (%s uses it)",
					policy, len(use), maxBindingRef, user)
			}
			fid++
			t.Entries = append(t.Entries, Entry{
				FID: fid, Pri: base, Rule: rule, Policy: policy,
				BIDs: use, Duplicate: true, TS: ts,
			})
		default:
			return errAt(p.Line, "policy %q has unknown mode %v", policy, p.Mode)
		}
		return nil
	}

	// addFamilies appends a rule's (or the default policy's) entries for
	// each family it matches, the second family's after the first's in
	// the same FID-PRI block.
	// A selector's error is about the rule, at line at; add's name what
	// they are about.
	addFamilies := func(rule, policy string, base uint16, formats []uint8, selector func(uint8) (nemo.TrafficSelector, error), at int, user string) error {
		next := base
		for _, f := range formats {
			ts, err := selector(f)
			if err != nil {
				return errAt(at, "rule %q: %v", rule, err)
			}
			if p := policies[policy]; p != nil && len(formats) > 1 && int(next-base)+entries(policy) > PriBlock {
				return errAt(p.Line, "failover policy %q lists %d uplinks, at most %d for a rule of both IPv6 and IPv4 (two FID-PRI values per uplink; %s uses it)",
					policy, len(p.Use), PriBlock/2, user)
			}
			if policy == config.DirectPolicy {
				t.Entries = append(t.Entries, Entry{Pri: next, Rule: rule, Policy: policy, Direct: true, TS: ts})
				next++
				continue
			}
			before := len(t.Entries)
			if err := add(rule, policy, next, ts, at, user); err != nil {
				return err
			}
			next += uint16(len(t.Entries) - before)
		}
		return nil
	}
	for k := range r.Rules {
		ru := &r.Rules[k]
		formats, err := families(r, ru)
		if err != nil {
			return nil, errAt(ru.Line, "rule %q: %v", ru.Name, err)
		}
		sel := func(f uint8) (nemo.TrafficSelector, error) { return ruleSelector(ru, f) }
		if err := addFamilies(ru.Name, ru.Policy, uint16(PriBlock*(k+1)), formats, sel, ru.Line, fmt.Sprintf("rule %q (line %d)", ru.Name, ru.Line)); err != nil {
			return nil, err
		}
	}
	if r.DefaultPolicy != "" {
		if r.DefaultPolicy == config.DirectPolicy {
			return nil, errAt(r.Line, "default_policy cannot be direct: the mobile network's traffic goes through the home agent")
		}
		catchAll := func(f uint8) (nemo.TrafficSelector, error) { return nemo.TrafficSelector{Format: f}, nil }
		if err := addFamilies(DefaultRule, r.DefaultPolicy, DefaultPri, networkFamilies(r), catchAll, r.Line, "default_policy"); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// networkFamilies are the selector formats of the families the mobile
// network carries: IPv6 unless it has IPv4 and no IPv6 prefix, IPv4 when
// it has IPv4.
func networkFamilies(r *config.Router) []uint8 {
	var out []uint8
	if len(r.MNPs) > 0 || !r.HasIPv4() {
		out = append(out, nemo.TSFormatIPv6)
	}
	if r.HasIPv4() {
		out = append(out, nemo.TSFormatIPv4)
	}
	return out
}

// families are the selector formats a rule compiles to: its addresses'
// family, the family of ICMP or ICMPv6, else every family the mobile
// network carries.
func families(r *config.Router, ru *config.Rule) ([]uint8, error) {
	var v4, v6 bool
	for _, p := range [2]netip.Prefix{ru.SrcIP, ru.DestIP} {
		if p.IsValid() {
			v4 = v4 || p.Addr().Is4()
			v6 = v6 || !p.Addr().Is4()
		}
	}
	switch {
	case v4 && v6:
		return nil, errors.New("src_ip and dest_ip are of different address families")
	case v4 && !r.HasIPv4():
		return nil, errors.New("an IPv4 rule, and the router has no IPv4 home address or prefix")
	case v4:
		return []uint8{nemo.TSFormatIPv4}, nil
	case v6:
		return []uint8{nemo.TSFormatIPv6}, nil
	case ru.Proto == header.ProtoICMP && r.HasIPv4():
		return []uint8{nemo.TSFormatIPv4}, nil
	case ru.Proto == header.ProtoICMPv6:
		return []uint8{nemo.TSFormatIPv6}, nil
	}
	return networkFamilies(r), nil
}

// ruleSelector turns a rule, written from the mobile network's side, into
// the home agent's downlink selector of the given format: the rule's dest
// is the selector's source.
func ruleSelector(ru *config.Rule, format uint8) (nemo.TrafficSelector, error) {
	ts := nemo.TrafficSelector{Format: format}
	for _, p := range [2]netip.Prefix{ru.SrcIP, ru.DestIP} {
		if p.IsValid() && (p.Addr().Is4() != (format == nemo.TSFormatIPv4) || p.Addr().Is4In6()) {
			return ts, fmt.Errorf("%s does not fit a selector of format %d", p, format)
		}
	}
	if ru.DestIP.IsValid() {
		ts.SrcAddrStart, ts.SrcAddrEnd = setAddrs(&ts.Present, nemo.TSSrcAddrStart, ru.DestIP)
	}
	if ru.SrcIP.IsValid() {
		ts.DstAddrStart, ts.DstAddrEnd = setAddrs(&ts.Present, nemo.TSDstAddrStart, ru.SrcIP)
	}
	var err error
	if ts.SrcPortStart, ts.SrcPortEnd, err = setPorts(&ts.Present, nemo.TSSrcPortStart, ru.DestPort); err != nil {
		return ts, fmt.Errorf("dest_port: %w", err)
	}
	if ts.DstPortStart, ts.DstPortEnd, err = setPorts(&ts.Present, nemo.TSDstPortStart, ru.SrcPort); err != nil {
		return ts, fmt.Errorf("src_port: %w", err)
	}
	switch {
	case ru.Proto > 255:
		return ts, fmt.Errorf("protocol %d is not 0..255", ru.Proto)
	case ru.Proto >= 0:
		ts.Present |= nemo.TSProtoStart
		ts.ProtoStart = uint8(ru.Proto)
	}
	switch {
	case ru.DSCP > 63:
		return ts, fmt.Errorf("DSCP %d is not 0..63", ru.DSCP)
	case ru.DSCP >= 0:
		ts.Present |= nemo.TSTCStart | nemo.TSTCEnd
		ts.TCStart = uint8(ru.DSCP) << 2
		ts.TCEnd = ts.TCStart
	}
	return ts, nil
}

// setAddrs gives a prefix as an address range; a single address has no end
// field. start is the TS*Start bit; its End bit is the next one.
func setAddrs(present *uint32, start uint32, p netip.Prefix) (lo, hi netip.Addr) {
	p = p.Masked()
	lo = p.Addr()
	*present |= start
	if p.IsSingleIP() {
		return lo, netip.Addr{}
	}
	*present |= start << 1
	return lo, lastAddr(p)
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		for i := p.Bits(); i < 32; i++ {
			b[i/8] |= 0x80 >> (i % 8)
		}
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	for i := p.Bits(); i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom16(b)
}

func setPorts(present *uint32, start uint32, r config.PortRange) (lo, hi uint16, err error) {
	switch {
	case r.Any():
		return 0, 0, nil
	case r.Hi < r.Lo:
		return 0, 0, fmt.Errorf("range %d-%d is reversed", r.Lo, r.Hi)
	case r.Lo == r.Hi:
		*present |= start
		return r.Lo, 0, nil
	}
	*present |= start | start<<1
	return r.Lo, r.Hi, nil
}

// FlowIDs returns the Flow Identification options that register the table
// with the home agent: every entry but the direct ones. The options share
// nothing with the table.
func (t *Table) FlowIDs() []nemo.FlowID {
	if t == nil {
		return nil
	}
	var ids []nemo.FlowID
	for i := range t.Entries {
		e := &t.Entries[i]
		if e.Direct {
			continue
		}
		ids = append(ids, nemo.FlowID{FID: e.FID, Pri: e.Pri, BIDs: slices.Clone(e.BIDs), TS: e.TS})
	}
	return ids
}

// FromFlowIDs builds the home agent's table from the Flow Identification
// options of a Binding Update, each taken as a new flow binding (RFC 6089
// §5.3.2.1), and returns the status of each option, in the options' order,
// for the Binding Acknowledgement. Rejected options are left out of the
// table, which shares nothing with ids (the decoder reuses their slices).
// Checking that the BIDs are registered (status 131) is the caller's: the
// binding cache is not known here.
func FromFlowIDs(ids []nemo.FlowID) (*Table, []uint8) {
	t := &Table{}
	status := make([]uint8, len(ids))
	fids := make(map[uint16]bool, len(ids))
	pris := make(map[uint16]bool, len(ids))
	for i := range ids {
		f := &ids[i]
		st := checkFlowID(f)
		// A repeated FID is a defect of the message, whatever became of
		// the first; a repeated FID-PRI only clashes with an accepted one.
		if fids[f.FID] || st == nemo.FlowStatusOK && pris[f.Pri] {
			st = nemo.FlowStatusMalformed
		}
		fids[f.FID] = true
		status[i] = st
		if st != nemo.FlowStatusOK {
			continue
		}
		pris[f.Pri] = true
		bids := make([]uint16, 0, len(f.BIDs))
		for _, b := range f.BIDs {
			// A BID listed twice would send the packet twice over it.
			if !slices.Contains(bids, b) {
				bids = append(bids, b)
			}
		}
		t.Entries = append(t.Entries, Entry{FID: f.FID, Pri: f.Pri, BIDs: bids, Duplicate: len(bids) > 1, TS: f.TS})
	}
	slices.SortFunc(t.Entries, func(a, b Entry) int { return int(a.Pri) - int(b.Pri) })
	return t, status
}

// checkFlowID checks one option as a request for a new entry, in the order
// RFC 6089 §5.3.2.1 gives: selector, then Binding Reference.
func checkFlowID(f *nemo.FlowID) uint8 {
	if f.FID == 0 || f.Pri == 0 {
		return nemo.FlowStatusMalformed
	}
	switch f.TS.Format {
	case 0:
		return nemo.FlowStatusMalformed
	case nemo.TSFormatIPv4, nemo.TSFormatIPv6:
	default:
		return nemo.FlowStatusTSUnsupported
	}
	if !validSelector(&f.TS) {
		return nemo.FlowStatusMalformed
	}
	if len(f.BIDs) == 0 || len(f.BIDs) > maxBindingRef || slices.Contains(f.BIDs, 0) {
		return nemo.FlowStatusMalformed
	}
	return nemo.FlowStatusOK
}

// validSelector checks what the decoder cannot see in one field alone, for
// selectors built by hand as well as decoded ones.
func validSelector(ts *nemo.TrafficSelector) bool {
	p := ts.Present
	known := uint32(0xffff)
	if ts.Format == nemo.TSFormatIPv4 {
		known &^= nemo.TSFlowLabelStart | nemo.TSFlowLabelEnd
	}
	const ends = nemo.TSSrcAddrEnd | nemo.TSDstAddrEnd | nemo.TSSPIEnd | nemo.TSFlowLabelEnd |
		nemo.TSSrcPortEnd | nemo.TSDstPortEnd | nemo.TSTCEnd | nemo.TSProtoEnd
	if p&^known != 0 || p&ends&^(p<<1) != 0 {
		return false
	}
	addrOK := func(start uint32, lo, hi netip.Addr) bool {
		if p&start == 0 {
			return true
		}
		fits := func(a netip.Addr) bool {
			if ts.Format == nemo.TSFormatIPv4 {
				return a.Is4()
			}
			return a.Is6() && a.Zone() == ""
		}
		if !fits(lo) {
			return false
		}
		return p&(start<<1) == 0 || fits(hi) && lo.Compare(hi) <= 0
	}
	rangeOK := func(start uint32, lo, hi uint32) bool {
		return p&(start<<1) == 0 || lo <= hi
	}
	return addrOK(nemo.TSSrcAddrStart, ts.SrcAddrStart, ts.SrcAddrEnd) &&
		addrOK(nemo.TSDstAddrStart, ts.DstAddrStart, ts.DstAddrEnd) &&
		rangeOK(nemo.TSSPIStart, ts.SPIStart, ts.SPIEnd) &&
		rangeOK(nemo.TSFlowLabelStart, ts.FlowLabelStart&0xfffff, ts.FlowLabelEnd&0xfffff) &&
		rangeOK(nemo.TSSrcPortStart, uint32(ts.SrcPortStart), uint32(ts.SrcPortEnd)) &&
		rangeOK(nemo.TSDstPortStart, uint32(ts.DstPortStart), uint32(ts.DstPortEnd)) &&
		rangeOK(nemo.TSTCStart, uint32(ts.TCStart>>2), uint32(ts.TCEnd>>2)) &&
		rangeOK(nemo.TSProtoStart, uint32(ts.ProtoStart), uint32(ts.ProtoEnd))
}

// Registered returns the entries the home agent holds: all but the direct
// ones. The entries' BIDs are shared with t.
func (t *Table) Registered() *Table {
	r := &Table{}
	if t == nil {
		return r
	}
	for _, e := range t.Entries {
		if !e.Direct {
			r.Entries = append(r.Entries, e)
		}
	}
	return r
}

// Equal reports whether two tables hold the same flow bindings: FID,
// FID-PRI, BIDs, selector and Direct of each entry, in order. Names and
// the Duplicate flag are not compared: the home agent learns neither.
// A nil table equals an empty one.
func (t *Table) Equal(o *Table) bool {
	var a, b []Entry
	if t != nil {
		a = t.Entries
	}
	if o != nil {
		b = o.Entries
	}
	return slices.EqualFunc(a, b, func(x, y Entry) bool {
		return x.FID == y.FID && x.Pri == y.Pri && x.Direct == y.Direct &&
			slices.Equal(x.BIDs, y.BIDs) && SelectorEqual(&x.TS, &y.TS)
	})
}

// SelectorEqual reports whether two selectors have the same format and the
// same fields present with the same values; absent fields are ignored, and
// so are the Traffic Class bits that matching ignores.
func SelectorEqual(a, b *nemo.TrafficSelector) bool {
	if a.Format != b.Format || a.Present != b.Present {
		return false
	}
	p := a.Present
	has := func(bit uint32) bool { return p&bit != 0 }
	return (!has(nemo.TSSrcAddrStart) || a.SrcAddrStart == b.SrcAddrStart) &&
		(!has(nemo.TSSrcAddrEnd) || a.SrcAddrEnd == b.SrcAddrEnd) &&
		(!has(nemo.TSDstAddrStart) || a.DstAddrStart == b.DstAddrStart) &&
		(!has(nemo.TSDstAddrEnd) || a.DstAddrEnd == b.DstAddrEnd) &&
		(!has(nemo.TSSPIStart) || a.SPIStart == b.SPIStart) &&
		(!has(nemo.TSSPIEnd) || a.SPIEnd == b.SPIEnd) &&
		(!has(nemo.TSFlowLabelStart) || a.FlowLabelStart&0xfffff == b.FlowLabelStart&0xfffff) &&
		(!has(nemo.TSFlowLabelEnd) || a.FlowLabelEnd&0xfffff == b.FlowLabelEnd&0xfffff) &&
		(!has(nemo.TSSrcPortStart) || a.SrcPortStart == b.SrcPortStart) &&
		(!has(nemo.TSSrcPortEnd) || a.SrcPortEnd == b.SrcPortEnd) &&
		(!has(nemo.TSDstPortStart) || a.DstPortStart == b.DstPortStart) &&
		(!has(nemo.TSDstPortEnd) || a.DstPortEnd == b.DstPortEnd) &&
		(!has(nemo.TSTCStart) || a.TCStart>>2 == b.TCStart>>2) &&
		(!has(nemo.TSTCEnd) || a.TCEnd>>2 == b.TCEnd>>2) &&
		(!has(nemo.TSProtoStart) || a.ProtoStart == b.ProtoStart) &&
		(!has(nemo.TSProtoEnd) || a.ProtoEnd == b.ProtoEnd)
}

// BindingOrder returns the BIDs of bids in RFC 6089 §5.1.1 order, the
// fallback for packets no active entry matches: lowest BID-PRI first, BID
// breaking ties. BID-PRI 0 means an RFC 5648 option without a priority and
// comes after every set one. It appends to out.
func BindingOrder(bids []nemo.BID, out []uint16) []uint16 {
	sorted := slices.Clone(bids)
	pri := func(b *nemo.BID) int {
		if b.Pri == 0 {
			return 128
		}
		return int(b.Pri)
	}
	// sort.SliceStable, not slices.SortFunc: the router-only binary has
	// its code already, where each element type of slices.SortFunc adds
	// 12 KB of generic code to a router's flash (see BENCHMARKS.md).
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := &sorted[i], &sorted[j]
		if d := pri(a) - pri(b); d != 0 {
			return d < 0
		}
		return a.ID < b.ID
	})
	for _, b := range sorted {
		out = append(out, b.ID)
	}
	return out
}

// UplinkOrder is BindingOrder for the router's own uplinks.
func UplinkOrder(r *config.Router) []uint16 {
	bids := make([]nemo.BID, len(r.Uplinks))
	for i, u := range r.Uplinks {
		bids[i] = nemo.BID{ID: u.BID, Pri: u.Priority}
	}
	return BindingOrder(bids, nil)
}

// Has reports whether the table has an entry with the FID.
func (t *Table) Has(fid uint16) bool {
	for i := range t.Entries {
		if t.Entries[i].FID == fid {
			return true
		}
	}
	return false
}
