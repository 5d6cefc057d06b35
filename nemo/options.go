package nemo

import (
	"encoding/binary"
	"net/netip"
)

// BID is a Binding Identifier option (RFC 5648 §4.3, RFC 6089 §4.1).
type BID struct {
	ID     uint16     // 1..65535
	Status uint8      // per-BID status, in a BA only
	H      bool       // simultaneous home and foreign binding
	Pri    uint8      // BID-PRI (RFC 6089): 1..127, lower is preferred; 0 unset
	CoA    netip.Addr // IPv4 or IPv6 care-of address, in a BU only; invalid if absent
}

// Auth is a Mobility Message Authentication option (RFC 4285 §5). When
// encoding, Data is ignored for MN-HA options: MACLen octets are reserved
// and filled by Authenticator.Sign.
type Auth struct {
	Subtype uint8 // AuthMNHA or AuthMNAAA
	SPI     uint32
	Data    []byte
	Off     int // decoded: offset of the option's Type octet in the MH
}

// IPv4HomeAddress is the IPv4 Home Address option (RFC 5555 §3.1.1). A
// Binding Update may carry several: one for the home address and one per
// mobile network prefix (§4.4.2).
type IPv4HomeAddress struct {
	// PrefixLen is 32 for a single address; for a prefix, the length asked
	// for in a first request and the length assigned after it.
	PrefixLen uint8
	P         bool       // a mobile network prefix is requested
	Addr      netip.Addr // 0.0.0.0 asks for dynamic assignment
}

// Prefix is what the option names: the address with its prefix length.
func (h IPv4HomeAddress) Prefix() netip.Prefix { return netip.PrefixFrom(h.Addr, int(h.PrefixLen)) }

// IPv4AddrAck is the IPv4 Address Acknowledgement option (RFC 5555 §3.2.1),
// one per IPv4 Home Address option of the Binding Update, in its order.
type IPv4AddrAck struct {
	Status    uint8 // IPv4Status*; 128 and above refuse
	PrefixLen uint8 // 0 in a refusal
	Addr      netip.Addr
}

// Prefix is what the acknowledgement grants: the address with its prefix
// length (invalid for a refusal).
func (a IPv4AddrAck) Prefix() netip.Prefix {
	if a.Status >= 128 || a.PrefixLen == 0 {
		return netip.Prefix{}
	}
	return netip.PrefixFrom(a.Addr, int(a.PrefixLen))
}

// NATDetection is the NAT Detection option (RFC 5555 §3.2.2).
type NATDetection struct {
	F       bool   // the mobile node must use UDP even without a NAT
	Refresh uint32 // keepalive interval in seconds; 0 ignore, 0xffffffff none needed
}

// Vendor is a Vendor Specific mobility option (RFC 5094 §3).
type Vendor struct {
	ID      uint32 // IANA private enterprise number
	SubType uint8
	Data    []byte
}

// FlowID is a Flow Identification option (RFC 6089 §4.2).
type FlowID struct {
	FID, Pri uint16
	Status   uint8 // in a BA only
	// BIDs is the Binding Reference sub-option; nil when absent.
	BIDs []uint16
	// TS is the Traffic Selector sub-option; TS.Format 0 when absent.
	TS TrafficSelector
}

// RawOption is an option this package skipped because it does not know its
// type (RFC 6275 §6.2.1), kept for inspection.
type RawOption struct {
	Type uint8
	Data []byte
	Off  int
}

// Options holds the mobility options of a message. Zero values mean absent.
// The encoder writes them in one canonical order that meets every placement
// rule: identifiers before authenticators, the IPv4 Address Acknowledgement
// before BID options, authentication options last.
type Options struct {
	HasRefreshAdvice bool
	RefreshAdvice    uint16     // Binding Refresh Advice, in 4-second units
	AltCoA           netip.Addr // Alternate Care-of Address
	HasNonces        bool
	HomeNonce        uint16 // Nonce Indices
	CareofNonce      uint16
	IPv4HoAs         []IPv4HomeAddress // IPv4 Home Address options
	IPv4CoA          netip.Addr        // IPv4 Care-of Address option
	IPv4AddrAcks     []IPv4AddrAck     // IPv4 Address Acknowledgement options
	HasNATDetection  bool
	NATDetection     NATDetection
	MNPs             []netip.Prefix // Mobile Network Prefix options
	BIDs             []BID
	FlowIDs          []FlowID
	FlowSummary      []uint16 // FIDs of Flow Summary options
	Vendor           []Vendor
	Experimental     [][]byte // Experimental mobility options
	HasMNID          bool
	MNIDSubtype      uint8
	MNID             []byte
	HasTimestamp     bool
	Timestamp        uint64 // Mobility Message Replay Protection, NTP format
	Auth             []Auth
	BindingAuthData  []byte // Binding Authorization Data (return routability)
	Unknown          []RawOption
}

// Reset empties o, keeping the capacity of its slices for reuse.
func (o *Options) Reset() {
	*o = Options{
		IPv4HoAs:     o.IPv4HoAs[:0],
		IPv4AddrAcks: o.IPv4AddrAcks[:0],
		MNPs:         o.MNPs[:0],
		BIDs:         o.BIDs[:0],
		FlowIDs:      o.FlowIDs[:0],
		FlowSummary:  o.FlowSummary[:0],
		Vendor:       o.Vendor[:0],
		Experimental: o.Experimental[:0],
		Auth:         o.Auth[:0],
		Unknown:      o.Unknown[:0],
	}
}

// MNHA returns the MN-HA authentication option, if there is one.
func (o *Options) MNHA() (Auth, bool) {
	for _, a := range o.Auth {
		if a.Subtype == AuthMNHA {
			return a, true
		}
	}
	return Auth{}, false
}

// FindBID returns the index of the BID option with the given ID, or -1.
func (o *Options) FindBID(id uint16) int {
	for i := range o.BIDs {
		if o.BIDs[i].ID == id {
			return i
		}
	}
	return -1
}

// mappedReason refuses an IPv4-mapped address (::ffff:0:0/96) in a field
// that holds an IPv6 address: an API's way to write an IPv4 address, which
// RFC 5156 keeps off the wire. The encoder refuses one there too, so that
// whatever decodes encodes again.
const mappedReason = "is an IPv4-mapped address, not an IPv6 one"

// decode walks the options in b[off:end] (offsets from the MH start).
func (o *Options) decode(b []byte, off, end int, msg string) error {
	for off < end {
		t := b[off]
		if t == OptPad1 {
			off++
			continue
		}
		if off+2 > end {
			return errAt(msg, "option length", off, "option header runs past the end of the message")
		}
		l := int(b[off+1])
		d := off + 2
		if d+l > end {
			return errAt(msg, optName(t), off, "option length "+itoa(l)+" runs past the end of the message")
		}
		data := b[d : d+l]
		if err := o.decodeOne(t, data, off, msg); err != nil {
			return err
		}
		off = d + l
	}
	return nil
}

func (o *Options) decodeOne(t uint8, data []byte, off int, msg string) error {
	l := len(data)
	bad := func(field, reason string) error { return errAt(optName(t), field, off, reason) }
	wantLen := func(n int) error {
		if l != n {
			return bad("length", "is "+itoa(l)+", want "+itoa(n))
		}
		return nil
	}
	dup := func(present bool) error {
		if present {
			return bad("type", "appears twice in "+msg)
		}
		return nil
	}
	switch t {
	case OptPadN:
		// Receivers ignore PadN data (RFC 6275 §6.2.3).
	case OptRefreshAdvice:
		if err := firstErr(wantLen(2), dup(o.HasRefreshAdvice)); err != nil {
			return err
		}
		o.HasRefreshAdvice = true
		o.RefreshAdvice = binary.BigEndian.Uint16(data)
	case OptAltCoA:
		if err := firstErr(wantLen(16), dup(o.AltCoA.IsValid())); err != nil {
			return err
		}
		if o.AltCoA = addr16(data); o.AltCoA.Is4In6() {
			return errAt(optName(t), "address", off+2, mappedReason)
		}
	case OptNonceIndices:
		if err := firstErr(wantLen(4), dup(o.HasNonces)); err != nil {
			return err
		}
		o.HasNonces = true
		o.HomeNonce = binary.BigEndian.Uint16(data)
		o.CareofNonce = binary.BigEndian.Uint16(data[2:])
	case OptBindingAuthData:
		if err := dup(o.BindingAuthData != nil); err != nil {
			return err
		}
		o.BindingAuthData = data
	case OptMNP:
		if err := wantLen(18); err != nil {
			return err
		}
		if data[1] > 128 {
			return bad("prefix length", itoa(int(data[1]))+" is more than 128")
		}
		if addr16(data[2:]).Is4In6() {
			return errAt(optName(t), "prefix", off+4, mappedReason)
		}
		o.MNPs = append(o.MNPs, netip.PrefixFrom(addr16(data[2:]), int(data[1])))
	case OptMNID:
		if err := dup(o.HasMNID); err != nil {
			return err
		}
		if l < 2 {
			return bad("length", "is "+itoa(l)+", want at least 2")
		}
		o.HasMNID = true
		o.MNIDSubtype = data[0]
		o.MNID = data[1:]
	case OptAuth:
		if l < 5 {
			return bad("length", "is "+itoa(l)+", want at least 5")
		}
		o.Auth = append(o.Auth, Auth{Subtype: data[0], SPI: binary.BigEndian.Uint32(data[1:]), Data: data[5:], Off: off})
	case OptMesgID:
		if err := firstErr(wantLen(8), dup(o.HasTimestamp)); err != nil {
			return err
		}
		o.HasTimestamp = true
		o.Timestamp = binary.BigEndian.Uint64(data)
	case OptExperimental:
		o.Experimental = append(o.Experimental, data)
	case OptVendor:
		if l < 5 {
			return bad("length", "is "+itoa(l)+", want at least 5")
		}
		o.Vendor = append(o.Vendor, Vendor{ID: binary.BigEndian.Uint32(data), SubType: data[4], Data: data[5:]})
	case OptIPv4HoA:
		if err := wantLen(6); err != nil {
			return err
		}
		w := binary.BigEndian.Uint16(data)
		pl := uint8(w >> 10)
		if pl == 0 || pl > 32 {
			return bad("prefix length", itoa(int(pl))+" is not 1..32")
		}
		o.IPv4HoAs = append(o.IPv4HoAs, IPv4HomeAddress{PrefixLen: pl, P: w&0x0200 != 0, Addr: addr4(data[2:])})
	case OptIPv4AddrAck:
		if err := wantLen(6); err != nil {
			return err
		}
		a := IPv4AddrAck{Status: data[0], PrefixLen: data[1] >> 2, Addr: addr4(data[2:])}
		switch {
		case a.Status >= 128:
			// Pref-len is zero and ignored in a refusal (RFC 5555 §3.2.1).
			a.PrefixLen = 0
		case a.PrefixLen == 0 || a.PrefixLen > 32:
			return bad("prefix length", itoa(int(a.PrefixLen))+" is not 1..32")
		}
		o.IPv4AddrAcks = append(o.IPv4AddrAcks, a)
	case OptNATDetection:
		if err := firstErr(wantLen(6), dup(o.HasNATDetection)); err != nil {
			return err
		}
		o.HasNATDetection = true
		o.NATDetection = NATDetection{F: data[0]&0x80 != 0, Refresh: binary.BigEndian.Uint32(data[2:])}
	case OptIPv4CoA:
		if err := firstErr(wantLen(6), dup(o.IPv4CoA.IsValid())); err != nil {
			return err
		}
		o.IPv4CoA = addr4(data[2:])
	case OptBID:
		var coa netip.Addr
		switch l {
		case 4:
		case 8:
			coa = addr4(data[4:])
		case 20:
			if coa = addr16(data[4:]); coa.Is4In6() {
				return &Error{Msg: optName(t), Field: "care-of address", Off: off + 6, Reason: mappedReason, Status: StatusMCoAMalformed}
			}
		default:
			return &Error{Msg: optName(t), Field: "length", Off: off, Reason: "is " + itoa(l) + ", want 4, 8 or 20", Status: StatusMCoAMalformed}
		}
		id := binary.BigEndian.Uint16(data)
		if id == 0 {
			return &Error{Msg: optName(t), Field: "BID", Off: off + 2, Reason: "0 is reserved", Status: StatusMCoAMalformed}
		}
		o.BIDs = append(o.BIDs, BID{ID: id, Status: data[2], H: data[3]&0x80 != 0, Pri: data[3] & 0x7f, CoA: coa})
	case OptFlowSummary:
		if l == 0 || l%2 != 0 {
			return bad("length", "is "+itoa(l)+", want a positive even number")
		}
		for i := 0; i < l; i += 2 {
			fid := binary.BigEndian.Uint16(data[i:])
			if fid == 0 {
				return bad("FID", "0 is reserved")
			}
			o.FlowSummary = append(o.FlowSummary, fid)
		}
	case OptFlowID:
		var f FlowID
		if n := len(o.FlowIDs); n < cap(o.FlowIDs) {
			// Reuse the Binding Reference slice a previous decode left here.
			f.BIDs = o.FlowIDs[: n+1 : n+1][n].BIDs[:0]
		}
		if err := f.decode(data, off); err != nil {
			return err
		}
		o.FlowIDs = append(o.FlowIDs, f)
	default:
		// Unknown options are skipped (RFC 6275 §6.2.1).
		o.Unknown = append(o.Unknown, RawOption{Type: t, Data: data, Off: off})
	}
	return nil
}

func (f *FlowID) decode(data []byte, off int) error {
	const msg = "Flow Identification option"
	if len(data) < 6 {
		return errAt(msg, "length", off, "is "+itoa(len(data))+", want at least 6")
	}
	f.FID = binary.BigEndian.Uint16(data)
	f.Pri = binary.BigEndian.Uint16(data[2:])
	f.Status = data[5]
	if f.FID == 0 {
		return errAt(msg, "FID", off+2, "0 is reserved")
	}
	// Sub-options start 8 octets into the option.
	p := 6
	reuse, haveBR := f.BIDs, false
	f.BIDs = nil
	for p < len(data) {
		st := data[p]
		so := off + 2 + p
		if st == SubPad1 {
			p++
			continue
		}
		if p+2 > len(data) {
			return errAt(msg, "sub-option length", so, "sub-option header runs past the option")
		}
		sl := int(data[p+1])
		if p+2+sl > len(data) {
			return errAt(msg, "sub-option length", so, "sub-option length "+itoa(sl)+" runs past the option")
		}
		sd := data[p+2 : p+2+sl]
		switch st {
		case SubBIDRef:
			if haveBR {
				return errAt(msg, "Binding Reference", so, "appears twice")
			}
			if sl == 0 || sl%2 != 0 {
				return errAt(msg, "Binding Reference length", so, "is "+itoa(sl)+", want a positive even number")
			}
			haveBR = true
			f.BIDs = reuse[:0]
			if f.BIDs == nil {
				f.BIDs = make([]uint16, 0, sl/2)
			}
			for i := 0; i < sl; i += 2 {
				bid := binary.BigEndian.Uint16(sd[i:])
				if bid == 0 {
					return errAt(msg, "Binding Reference BID", so+2+i, "0 is reserved")
				}
				f.BIDs = append(f.BIDs, bid)
			}
		case SubTS:
			if f.TS.Format != 0 {
				return errAt(msg, "Traffic Selector", so, "appears twice")
			}
			if sl < 2 {
				return errAt(msg, "Traffic Selector length", so, "is "+itoa(sl)+", want at least 2")
			}
			if err := f.TS.UnmarshalBinary(sd[0], sd[2:]); err != nil {
				if e, ok := err.(*Error); ok && e.Off >= 0 {
					e.Off += so + 4
				}
				return err
			}
		default:
			// PadN and unknown sub-options are skipped (RFC 6089 §4.2.1).
		}
		p += 2 + sl
	}
	return nil
}

// Option alignment requirements "xn+y" (RFC 6275 §6.2 and each option's RFC).
type align struct{ x, y int }

var (
	align2n   = align{2, 0}
	align4n   = align{4, 0}
	align8n   = align{8, 0}
	align8n2  = align{8, 2}
	align8n4  = align{8, 4}
	align8n5  = align{8, 5} // AUTH (4n+1) placed so a 96-bit MAC ends on 8n
	align8n6  = align{8, 6}
	align4n2  = align{4, 2}
	alignNone = align{1, 0}
)

// encode appends the options in canonical order.
func (o *Options) encode(w *writer, msg string) error {
	if o.HasRefreshAdvice {
		w.option(align2n, OptRefreshAdvice, 2)
		w.u16(o.RefreshAdvice)
	}
	if o.AltCoA.IsValid() {
		if !o.AltCoA.Is6() || o.AltCoA.Is4In6() {
			return errAt(msg, "Alternate Care-of Address", -1, o.AltCoA.String()+" is not an IPv6 address")
		}
		w.option(align8n6, OptAltCoA, 16)
		w.addr(o.AltCoA)
	}
	if o.HasNonces {
		w.option(align2n, OptNonceIndices, 4)
		w.u16(o.HomeNonce)
		w.u16(o.CareofNonce)
	}
	for _, h := range o.IPv4HoAs {
		if !h.Addr.Is4() || h.PrefixLen == 0 || h.PrefixLen > 32 {
			return errAt(msg, "IPv4 Home Address option", -1, "needs an IPv4 address and a prefix length of 1..32")
		}
		w.option(align4n, OptIPv4HoA, 6)
		word := uint16(h.PrefixLen) << 10
		if h.P {
			word |= 0x0200
		}
		w.u16(word)
		w.addr(h.Addr)
	}
	if o.IPv4CoA.IsValid() {
		if !o.IPv4CoA.Is4() {
			return errAt(msg, "IPv4 Care-of Address option", -1, o.IPv4CoA.String()+" is not an IPv4 address")
		}
		w.option(align4n, OptIPv4CoA, 6)
		w.u16(0)
		w.addr(o.IPv4CoA)
	}
	for _, a := range o.IPv4AddrAcks {
		pl := a.PrefixLen
		if a.Status >= 128 {
			pl = 0
		}
		addr := a.Addr
		if !addr.IsValid() && a.Status >= 128 {
			addr = netip.IPv4Unspecified()
		}
		if !addr.Is4() || pl > 32 || (a.Status < 128 && pl == 0) {
			return errAt(msg, "IPv4 Address Acknowledgement option", -1, "needs an IPv4 address and, when accepting, a prefix length of 1..32")
		}
		w.option(align4n, OptIPv4AddrAck, 6)
		w.u8(a.Status)
		w.u8(pl << 2)
		w.addr(addr)
	}
	if o.HasNATDetection {
		w.option(align4n, OptNATDetection, 6)
		var fl uint16
		if o.NATDetection.F {
			fl = 0x8000
		}
		w.u16(fl)
		w.u32(o.NATDetection.Refresh)
	}
	for _, p := range o.MNPs {
		if !p.IsValid() || !p.Addr().Is6() || p.Addr().Is4In6() {
			return errAt(msg, "Mobile Network Prefix option", -1, p.String()+" is not an IPv6 prefix")
		}
		w.option(align8n4, OptMNP, 18)
		w.u8(0)
		w.u8(uint8(p.Bits()))
		w.addr(p.Addr())
	}
	for _, b := range o.BIDs {
		if b.ID == 0 {
			return errAt(msg, "BID option", -1, "BID 0 is reserved")
		}
		if b.Pri > 127 {
			return errAt(msg, "BID option", -1, "BID-PRI "+itoa(int(b.Pri))+" is more than 127")
		}
		n, al := 4, align2n
		if b.CoA.IsValid() {
			al = align8n2
			if b.CoA.Is4() {
				n = 8
			} else if b.CoA.Is4In6() {
				return errAt(msg, "BID option", -1, "care-of address "+b.CoA.String()+" is an IPv4-mapped address")
			} else {
				n = 20
			}
		}
		w.option(al, OptBID, n)
		w.u16(b.ID)
		w.u8(b.Status)
		fl := b.Pri
		if b.H {
			fl |= 0x80
		}
		w.u8(fl)
		if b.CoA.IsValid() {
			w.addr(b.CoA)
		}
	}
	for i := range o.FlowIDs {
		if err := o.FlowIDs[i].encode(w, msg); err != nil {
			return err
		}
	}
	for fs := o.FlowSummary; len(fs) > 0; {
		n := min(len(fs), 127) // the option's length octet holds at most 127 FIDs
		w.option(align2n, OptFlowSummary, 2*n)
		for _, fid := range fs[:n] {
			if fid == 0 {
				return errAt(msg, "Flow Summary option", -1, "FID 0 is reserved")
			}
			w.u16(fid)
		}
		fs = fs[n:]
	}
	for _, v := range o.Vendor {
		if len(v.Data) > 255-5 {
			return errAt(msg, "Vendor Specific option", -1, "data of "+itoa(len(v.Data))+" octets does not fit")
		}
		w.option(align4n2, OptVendor, 5+len(v.Data))
		w.u32(v.ID)
		w.u8(v.SubType)
		w.bytes(v.Data)
	}
	for _, e := range o.Experimental {
		if len(e) > 255 {
			return errAt(msg, "Experimental option", -1, "data of "+itoa(len(e))+" octets does not fit")
		}
		w.option(alignNone, OptExperimental, len(e))
		w.bytes(e)
	}
	if o.HasMNID {
		if len(o.MNID) == 0 || len(o.MNID) > 254 {
			return errAt(msg, "Mobile Node Identifier option", -1, "identifier must be 1..254 octets")
		}
		w.option(alignNone, OptMNID, 1+len(o.MNID))
		w.u8(o.MNIDSubtype)
		w.bytes(o.MNID)
	}
	if o.HasTimestamp {
		w.option(align8n2, OptMesgID, 8)
		w.u64(o.Timestamp)
	}
	// MN-HA before MN-AAA, and nothing but Binding Authorization Data after
	// them (RFC 4285 §5).
	for pass := 0; pass < 2; pass++ {
		for _, a := range o.Auth {
			if (pass == 0) != (a.Subtype == AuthMNHA) {
				continue
			}
			data := a.Data
			if a.Subtype == AuthMNHA {
				data = zeroMAC[:]
			}
			if len(data) > 255-5 {
				return errAt(msg, "authentication option", -1, "data of "+itoa(len(data))+" octets does not fit")
			}
			al := align8n5
			if len(data)%4 != 0 {
				al = align{4, 1}
			}
			w.option(al, OptAuth, 5+len(data))
			w.u8(a.Subtype)
			w.u32(a.SPI)
			w.bytes(data)
		}
	}
	if o.BindingAuthData != nil {
		if len(o.BindingAuthData) > 255 {
			return errAt(msg, "Binding Authorization Data option", -1, "data does not fit")
		}
		w.option(align8n2, OptBindingAuthData, len(o.BindingAuthData))
		w.bytes(o.BindingAuthData)
	}
	return nil
}

var (
	zeroMAC      [MACLen]byte
	zeroChecksum [2]byte
)

func (f *FlowID) encode(w *writer, msg string) error {
	if f.FID == 0 {
		return errAt(msg, "Flow Identification option", -1, "FID 0 is reserved")
	}
	var ts [maxTSLen]byte
	tsn := 0
	if f.TS.Format != 0 {
		b, err := f.TS.appendBinary(ts[:0])
		if err != nil {
			return err
		}
		tsn = len(b)
	}
	// Layout: fixed part (8 octets from an 8n start), then the traffic
	// selector sub-option at 8n so its addresses sit on 8-octet boundaries,
	// then Pad1 to 2n and the Binding Reference. Only Pad1 is used inside:
	// RFC 6089 is ambiguous about the PadN sub-option's length.
	n := 6
	if tsn > 0 {
		n += 4 + tsn
	}
	padBR := 0
	if f.BIDs != nil {
		if len(f.BIDs) == 0 || len(f.BIDs) > 126 {
			return errAt(msg, "Flow Identification option", -1, "Binding Reference needs 1..126 BIDs")
		}
		padBR = n % 2
		n += padBR + 2 + 2*len(f.BIDs)
	}
	if n > 255 {
		return errAt(msg, "Flow Identification option", -1, "does not fit in 255 octets")
	}
	w.option(align8n, OptFlowID, n)
	w.u16(f.FID)
	w.u16(f.Pri)
	w.u8(0)
	w.u8(f.Status)
	if tsn > 0 {
		w.u8(SubTS)
		w.u8(uint8(2 + tsn))
		w.u8(f.TS.Format)
		w.u8(0)
		w.bytes(ts[:tsn])
	}
	if f.BIDs != nil {
		for i := 0; i < padBR; i++ {
			w.u8(SubPad1)
		}
		w.u8(SubBIDRef)
		w.u8(uint8(2 * len(f.BIDs)))
		for _, b := range f.BIDs {
			if b == 0 {
				return errAt(msg, "Flow Identification option", -1, "Binding Reference BID 0 is reserved")
			}
			w.u16(b)
		}
	}
	return nil
}

func optName(t uint8) string {
	switch t {
	case OptPadN:
		return "PadN option"
	case OptRefreshAdvice:
		return "Binding Refresh Advice option"
	case OptAltCoA:
		return "Alternate Care-of Address option"
	case OptNonceIndices:
		return "Nonce Indices option"
	case OptBindingAuthData:
		return "Binding Authorization Data option"
	case OptMNP:
		return "Mobile Network Prefix option"
	case OptMNID:
		return "Mobile Node Identifier option"
	case OptAuth:
		return "authentication option"
	case OptMesgID:
		return "replay protection option"
	case OptExperimental:
		return "Experimental option"
	case OptVendor:
		return "Vendor Specific option"
	case OptIPv4HoA:
		return "IPv4 Home Address option"
	case OptIPv4AddrAck:
		return "IPv4 Address Acknowledgement option"
	case OptNATDetection:
		return "NAT Detection option"
	case OptIPv4CoA:
		return "IPv4 Care-of Address option"
	case OptBID:
		return "BID option"
	case OptFlowSummary:
		return "Flow Summary option"
	case OptFlowID:
		return "Flow Identification option"
	}
	return "option " + itoa(int(t))
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
