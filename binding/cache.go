package binding

import (
	"errors"
	"net/netip"
	"slices"
	"time"

	"nemod/nemo"
	"nemod/policy"
)

// Peer is a mobile router the home agent is configured to serve.
type Peer struct {
	Name string
	HoA  netip.Addr
	SPI  uint32
	Key  []byte
	// NAI, when set, must match the Mobile Node Identifier option.
	NAI  string
	MNPs []netip.Prefix // the prefixes it may claim
	// HoAv4 and MNPsV4 are the IPv4 home address and prefixes it may claim
	// (RFC 5555); invalid and nil when none are configured.
	HoAv4  netip.Addr
	MNPsV4 []netip.Prefix
	// PD: it may have prefixes delegated (delegated.go), so an implicit
	// registration without configured prefixes is accepted.
	PD bool
}

// HAConfig is what the binding cache needs of the home agent's
// configuration.
type HAConfig struct {
	Address      netip.Addr // the home agent's IPv6 address
	AddressV4    netip.Addr
	HomePrefix   netip.Prefix
	MaxLifetime  time.Duration
	ReplayWindow time.Duration
	// NATKeepalive is the refresh time announced in the NAT Detection
	// option when a NAT is detected (RFC 5555 §3.2.2).
	NATKeepalive time.Duration
	// RejectRate and RejectBurst limit the answers to rejected messages
	// (a token bucket), so that forged Binding Updates cannot make the
	// home agent a traffic reflector. Rejections beyond it are counted and
	// dropped.
	RejectRate  float64
	RejectBurst float64
	// Offer is what the home agent agrees to of what a nemod router
	// offers in nemod's Vendor Specific option: the acknowledgement of a
	// registration that carries the option answers with the
	// capabilities both have (see binding/offer.go).
	Offer nemo.Caps
	Peers []Peer
	// Pool4 assigns dynamic IPv4 home addresses and prefixes (nil: none);
	// LeaseV4 is their lease, which caps the lifetime granted (RFC 5555
	// §2.5).
	Pool4   *Pool4
	LeaseV4 time.Duration
	// Authorize holds a Binding Update from a home address inside the home
	// prefix that no peer has, identified by a NAI, for the daemon to have
	// its router authorized (Result.Authorize) instead of refusing it.
	Authorize bool
}

// Binding is one care-of address of a mobile router.
type Binding struct {
	BID   uint16 // 0 for a registration without BID options (RFC 6275 only)
	CoA   netip.Addr
	Outer netip.AddrPort // where to send: the CoA, or the NAT's address and port
	Encap nemo.Encap
	NAT   bool // the outer source differed from the IPv4 care-of address
	Pri   uint8
	// Since is when this care-of address was registered; Expires when the
	// binding lapses without a refresh.
	Since, Expires time.Time
	// Caps is what the router offered in nemod's option (nemo.Caps) in
	// the registration that made or refreshed the binding.
	Caps nemo.Caps
}

// Entry is the binding cache entry of one mobile router.
type Entry struct {
	Peer     *Peer
	Router   bool           // registered as a mobile router (R flag)
	MNPs     []netip.Prefix // prefixes forwarded to it while it has bindings
	Bindings []Binding      // sorted by BID
	// Flows is its flow binding list (RFC 6089), nil when it registered
	// none; replaced whole by each registration (never modified in place,
	// so a data plane may keep the pointer).
	Flows *policy.Table
	// V4 is its IPv4 home address and prefixes (RFC 5555), forwarded
	// while it has bindings.
	V4 EntryV4
	// Delegated are the prefixes delegated to it by DHCPv6 and still
	// valid (delegated.go): it may claim them besides Peer.MNPs.
	Delegated []netip.Prefix
	// implicit: its registration named no prefixes (RFC 3963 §5.2).
	implicit bool
	// HA is the home agent address its last registration was sent to
	// (a cluster's instance, switch.go); invalid before one.
	HA netip.Addr

	auth *nemo.Authenticator
	// dynamic: installed by AddPeer, authorized until authUntil.
	dynamic   bool
	authUntil time.Time
	hasSeq    bool
	lastSeq   uint16
	lastTS    uint64
}

// Registered reports whether the entry has at least one binding.
func (e *Entry) Registered() bool { return len(e.Bindings) > 0 }

// Counters count what the binding cache did with the messages it was given.
//
// Each message received is counted once more in exactly one of Accepted,
// Deregistrations, RevocationAcks, a refusal (Rejected lists them) or a
// message not acted on (NotActedOn lists them), so that Received is their
// sum. Expired,
// FlowsRefused, BIDsRefused, IPv4Refused and RejectsDropped count other
// things: bindings, options, and answers left unsent.
type Counters struct {
	Received        uint64 `json:"received"`
	Accepted        uint64 `json:"accepted"`
	Deregistrations uint64 `json:"deregistrations"`
	Expired         uint64 `json:"expired"`
	Malformed       uint64 `json:"malformed"`
	BadChecksum     uint64 `json:"bad_checksum"`
	UnknownHomeAddr uint64 `json:"unknown_home_address"`
	AuthFailed      uint64 `json:"auth_failed"`
	NoTimestamp     uint64 `json:"no_timestamp"`
	BadTimestamp    uint64 `json:"bad_timestamp"`
	SeqOutOfWindow  uint64 `json:"seq_out_of_window"`
	PrefixRejected  uint64 `json:"prefix_rejected"`
	Prohibited      uint64 `json:"prohibited"`
	FlowsRefused    uint64 `json:"flows_refused"`
	IPv4Refused     uint64 `json:"ipv4_refused"` // IPv4 home address options answered with a refusal
	// BIDRejected counts registrations refused for their BID options as
	// a whole (a binding without BID exists); BIDsRefused the BID options
	// refused one by one inside registrations otherwise accepted.
	BIDRejected    uint64 `json:"bid_rejected"`
	BIDsRefused    uint64 `json:"bids_refused"`
	UnknownMHType  uint64 `json:"unknown_mh_type"`
	Ignored        uint64 `json:"ignored"`
	RejectsDropped uint64 `json:"rejects_rate_limited"`
	// NeedsAuth counts the Binding Updates held for their router's
	// authorization (not acted on, unless Retry or Refuse takes them back).
	NeedsAuth uint64 `json:"needs_authorization"`
	// RevocationAcks counts the Binding Revocation Acknowledgements that
	// answered a revocation.
	RevocationAcks uint64 `json:"revocation_acks"`
}

// Reasons a message is refused or not acted on: Result.Reason, and the
// keys of Counters.Rejected and Counters.NotActedOn (and so of the status
// both roles report).
const (
	ReasonMalformed       = "malformed"
	ReasonBadChecksum     = "bad_checksum"
	ReasonUnknownHomeAddr = "unknown_home_address"
	ReasonAuthFailed      = "auth_failed"
	ReasonNoTimestamp     = "no_timestamp"
	ReasonBadTimestamp    = "bad_timestamp"
	ReasonSeqOutOfWindow  = "seq_out_of_window"
	ReasonPrefixRejected  = "prefix_rejected"
	ReasonProhibited      = "prohibited"
	ReasonBIDRejected     = "bid_rejected"
	ReasonUnknownMHType   = "unknown_mh_type"
	ReasonIgnored         = "other" // a message a home agent does not act on (a BA, a Heartbeat, ...)
)

// Rejected returns the refusals by reason: the Binding Updates answered
// with an error status (or that would have been, but for the rate limit).
func (c *Counters) Rejected() map[string]uint64 {
	return map[string]uint64{
		ReasonUnknownHomeAddr: c.UnknownHomeAddr, ReasonAuthFailed: c.AuthFailed, ReasonNoTimestamp: c.NoTimestamp,
		ReasonBadTimestamp: c.BadTimestamp, ReasonSeqOutOfWindow: c.SeqOutOfWindow, ReasonPrefixRejected: c.PrefixRejected,
		ReasonProhibited: c.Prohibited, ReasonBIDRejected: c.BIDRejected,
	}
}

// NotActedOn returns, by reason, the messages not taken as Binding
// Updates: malformed ones (a BU from a known router whose option is wrong
// is still answered, with the option's status), bad checksums, and
// messages of types a home agent does not act on (an unknown type is
// answered with a Binding Error).
func (c *Counters) NotActedOn() map[string]uint64 {
	return map[string]uint64{
		ReasonMalformed: c.Malformed, ReasonBadChecksum: c.BadChecksum, ReasonUnknownMHType: c.UnknownMHType, ReasonIgnored: c.Ignored,
		ReasonNeedsAuth: c.NeedsAuth,
	}
}

// counter returns the counter of a refusal or a message not acted on.
func (c *Counters) counter(reason string) *uint64 {
	switch reason {
	case ReasonMalformed:
		return &c.Malformed
	case ReasonBadChecksum:
		return &c.BadChecksum
	case ReasonUnknownHomeAddr:
		return &c.UnknownHomeAddr
	case ReasonAuthFailed:
		return &c.AuthFailed
	case ReasonNoTimestamp:
		return &c.NoTimestamp
	case ReasonBadTimestamp:
		return &c.BadTimestamp
	case ReasonSeqOutOfWindow:
		return &c.SeqOutOfWindow
	case ReasonPrefixRejected:
		return &c.PrefixRejected
	case ReasonProhibited:
		return &c.Prohibited
	case ReasonBIDRejected:
		return &c.BIDRejected
	case ReasonUnknownMHType:
		return &c.UnknownMHType
	case ReasonNeedsAuth:
		return &c.NeedsAuth
	}
	return &c.Ignored
}

// Arrival says how a signalling packet reached the home agent.
type Arrival struct {
	// Encap is nemo.EncapIPv6 for a native Mobility Header packet, nemo.EncapUDP4 or
	// nemo.EncapUDP6 for one inside UDP port 4191.
	Encap nemo.Encap
	// Outer is the source of the outermost header: the IPv6 source for a
	// native packet, the UDP source address and port otherwise.
	Outer netip.AddrPort
}

// Result is what HandlePacket did.
type Result struct {
	// Reply is an IPv6 packet to send: natively to ReplyTo's address, or as
	// the payload of a UDP datagram to ReplyTo when Encap is a UDP one.
	// Nil when there is nothing to send.
	Reply   []byte
	ReplyTo netip.AddrPort
	Encap   nemo.Encap
	// Changed is the entry whose bindings or prefixes changed, for the
	// data plane to follow; nil if none did.
	Changed *Entry
	// Status is the BA status answered (or that would have been, when the
	// answer was rate limited); Err says why a message was dropped.
	Status uint8
	Err    error
	// Reason names the counter a refused or ignored message was counted
	// under (Reason*); "" for an accepted registration or de-registration.
	Reason string
	// Authorize, with ReasonNeedsAuth, is the router to have authorized
	// before the Binding Update is handled again (Retry) or refused
	// (Refuse).
	Authorize *AuthRequest
	// Revoked is the revocation a Binding Revocation Acknowledgement
	// completed.
	Revoked *Revocation
}

// Cache is the home agent's binding cache. It is not safe for concurrent
// use: the daemon's event loop owns it.
type Cache struct {
	cfg     HAConfig
	entries map[netip.Addr]*Entry
	Counters
	tokens   float64
	lastFill time.Time
	bu       nemo.BindingUpdate // decoded in place, to avoid allocating
	// nais finds the routers AddPeer installed by NAI; staticNAI holds
	// the NAIs of the configured ones.
	nais      map[string]*Entry
	staticNAI map[string]bool
	revoking
	switching // switch.go
}

// NewCache returns an empty binding cache for cfg.
func NewCache(cfg HAConfig) *Cache {
	cfg.MaxLifetime, cfg.ReplayWindow = limits(cfg.MaxLifetime, cfg.ReplayWindow)
	if cfg.NATKeepalive == 0 {
		cfg.NATKeepalive = 110 * time.Second
	}
	if cfg.RejectRate == 0 {
		cfg.RejectRate, cfg.RejectBurst = 100, 200
	}
	c := &Cache{cfg: cfg, entries: make(map[netip.Addr]*Entry, len(cfg.Peers)), tokens: cfg.RejectBurst,
		nais: map[string]*Entry{}, staticNAI: map[string]bool{}}
	for i := range cfg.Peers {
		p := &c.cfg.Peers[i]
		c.entries[p.HoA] = &Entry{Peer: p}
		if p.NAI != "" {
			c.staticNAI[p.NAI] = true
		}
	}
	return c
}

// limits fills in the defaults of the lifetime and replay window.
func limits(maxLifetime, replayWindow time.Duration) (time.Duration, time.Duration) {
	if maxLifetime == 0 {
		maxLifetime = time.Hour
	}
	if replayWindow == 0 {
		replayWindow = nemo.DefaultReplayWindow
	}
	return maxLifetime, replayWindow
}

// SetLimits replaces the longest lifetime granted and the replay window (a
// configuration reload; zero means the default). They apply from the next
// Binding Update on: a lifetime already granted runs its course, as the
// router was told it would.
func (c *Cache) SetLimits(maxLifetime, replayWindow time.Duration) {
	c.cfg.MaxLifetime, c.cfg.ReplayWindow = limits(maxLifetime, replayWindow)
}

// Entry returns the entry of a home address, or nil.
func (c *Cache) Entry(hoa netip.Addr) *Entry { return c.entries[hoa] }

// Entries returns every entry, registered or not, in home address order.
func (c *Cache) Entries() []*Entry {
	out := make([]*Entry, 0, len(c.entries))
	for _, e := range c.entries {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *Entry) int { return a.Peer.HoA.Compare(b.Peer.HoA) })
	return out
}

// Config returns the configuration the cache runs with.
func (c *Cache) Config() *HAConfig { return &c.cfg }

var (
	errNotBU       = errors.New("not a Binding Update")
	errRateLimited = errors.New("rejection answer rate limited")
)

// HandlePacket processes one IPv6 packet carrying a Mobility Header: the
// packet itself for native signalling, the UDP payload for RFC 5555.
func (c *Cache) HandlePacket(pkt []byte, arr Arrival, now time.Time) Result {
	c.Received++
	r := c.handle(pkt, arr, now)
	if r.Reason != "" {
		*c.counter(r.Reason)++
	}
	return r
}

// handle does HandlePacket's work; every way out but an accepted
// registration or de-registration gives the Reason it is counted under.
func (c *Cache) handle(pkt []byte, arr Arrival, now time.Time) Result {
	p, err := nemo.ParsePacket(pkt)
	if err != nil {
		return Result{Err: err, Reason: ReasonMalformed}
	}
	if !nemo.VerifyChecksum(p.MH, p.PseudoSrc(), p.PseudoDst()) {
		return Result{Err: nemo.ErrChecksum, Reason: ReasonBadChecksum}
	}
	h, err := nemo.ParseHeader(p.MH)
	if err != nil {
		return Result{Err: err, Reason: ReasonMalformed}
	}
	switch h.Type {
	case nemo.TypeBU:
		return c.handleBU(&p, arr, now)
	case nemo.TypeRevocation:
		return c.handleBRA(&p, arr, now)
	case nemo.TypeBA, nemo.TypeBE, nemo.TypeBRR, nemo.TypeHASwitch, nemo.TypeHeartbeat:
		// Messages a home agent does not act on here.
		return Result{Err: errNotBU, Reason: ReasonIgnored}
	}
	// An unknown MH type is answered with a Binding Error, status 2
	// (RFC 6275 §9.2), within the rejection rate.
	if !c.allowReject(now) {
		return Result{Err: errRateLimited, Reason: ReasonUnknownMHType}
	}
	be, err := nemo.Marshal(&nemo.BindingError{Status: nemo.BEUnknownType, HomeAddress: p.PseudoSrc()})
	if err != nil {
		return Result{Err: err, Reason: ReasonUnknownMHType}
	}
	r := c.reply(&p, arr, be, errNotBU)
	r.Reason = ReasonUnknownMHType
	return r
}

// reply wraps an encoded MH into the answer packet: to the care-of address
// with a type 2 routing header for a native message with a Home Address
// option, to the home address inside UDP otherwise.
func (c *Cache) reply(p *nemo.Packet, arr Arrival, mh []byte, why error) Result {
	var (
		dst, rh2 netip.Addr
		to       netip.AddrPort
	)
	if arr.Encap == nemo.EncapIPv6 {
		dst, rh2 = p.Src, p.HomeAddress
		to = netip.AddrPortFrom(p.Src, 0)
	} else {
		dst = p.PseudoSrc()
		to = arr.Outer
	}
	out, err := nemo.AppendPacket(make([]byte, 0, 40+24+len(mh)), p.Dst, dst, netip.Addr{}, rh2, nemo.DefaultHopLimit, mh)
	if err != nil {
		return Result{Err: err}
	}
	return Result{Reply: out, ReplyTo: to, Encap: arr.Encap, Err: why}
}

func (c *Cache) allowReject(now time.Time) bool {
	if !c.lastFill.IsZero() {
		c.tokens = min(c.cfg.RejectBurst, c.tokens+now.Sub(c.lastFill).Seconds()*c.cfg.RejectRate)
	}
	c.lastFill = now
	if c.tokens < 1 {
		c.RejectsDropped++
		return false
	}
	c.tokens--
	return true
}

// reject answers a BU with a failure status. For a known router the answer
// is authenticated; for an unknown home address it cannot be.
// reason names the counter the refusal goes to.
func (c *Cache) reject(e *Entry, p *nemo.Packet, arr Arrival, bu *nemo.BindingUpdate, status uint8, ts uint64, why error, reason string, now time.Time) Result {
	if !c.allowReject(now) {
		return Result{Status: status, Err: errRateLimited, Reason: reason}
	}
	ba := nemo.BindingAck{Status: status, Seq: bu.Seq}
	if status == nemo.StatusSeqOutOfWindow && e != nil {
		ba.Seq = e.lastSeq
	}
	r := c.answer(e, p, arr, &ba, bu, ts)
	r.Status, r.Err, r.Reason = status, why, reason
	return r
}

// answer encodes, signs and addresses a BA.
func (c *Cache) answer(e *Entry, p *nemo.Packet, arr Arrival, ba *nemo.BindingAck, bu *nemo.BindingUpdate, ts uint64) Result {
	if bu.HasMNID {
		ba.HasMNID, ba.MNIDSubtype, ba.MNID = true, bu.MNIDSubtype, bu.MNID
	}
	if bu.HasTimestamp {
		ba.HasTimestamp, ba.Timestamp = true, ts
	}
	if arr.Encap.UDP() {
		ba.HasNATDetection = true
		ba.NATDetection.Refresh = 0xffffffff // no NAT: no keepalives needed
		if natted(bu, arr) {
			ba.NATDetection.Refresh = uint32(c.cfg.NATKeepalive / time.Second)
		}
	}
	signed := e != nil && e.Peer != nil
	if signed {
		ba.Auth = append(ba.Auth[:0], nemo.Auth{Subtype: nemo.AuthMNHA, SPI: e.Peer.SPI})
	}
	mh, err := nemo.Marshal(ba)
	if err != nil {
		return Result{Err: err}
	}
	if signed {
		// The BA's "care-of address" is its IPv6 destination: see nemo's
		// package documentation.
		coa := p.Src
		if arr.Encap.UDP() {
			coa = p.PseudoSrc()
		}
		if err := e.authenticator().Sign(mh, coa, p.PseudoSrc()); err != nil {
			return Result{Err: err}
		}
	}
	return c.reply(p, arr, mh, nil)
}

func (e *Entry) authenticator() *nemo.Authenticator {
	if e.auth == nil {
		e.auth = nemo.NewAuthenticator(e.Peer.Key)
	}
	return e.auth
}

// natted reports whether a UDP-encapsulated BU crossed a NAT: its outer
// source differs from the IPv4 care-of address it registers (RFC 5555
// §4.1).
func natted(bu *nemo.BindingUpdate, arr Arrival) bool {
	if arr.Encap != nemo.EncapUDP4 {
		return false
	}
	coa := bu.IPv4CoA
	for _, b := range bu.BIDs {
		if b.CoA.Is4() {
			coa = b.CoA
		}
	}
	return coa != arr.Outer.Addr()
}

func (c *Cache) handleBU(p *nemo.Packet, arr Arrival, now time.Time) Result {
	bu := &c.bu
	hoa := p.PseudoSrc()
	e := c.entries[hoa]
	if err := nemo.Unmarshal(p.MH, bu); err != nil {
		var ne *nemo.Error
		if e != nil && errors.As(err, &ne) && ne.Status != 0 {
			// Only the fixed part is trusted: answer without echoing options.
			*bu = nemo.BindingUpdate{Seq: bu.Seq}
			return c.reject(e, p, arr, bu, ne.Status, 0, err, ReasonMalformed, now)
		}
		return Result{Err: err, Reason: ReasonMalformed}
	}
	if e == nil {
		if a := c.needsAuth(p, arr, bu, hoa); a != nil {
			return Result{Err: errNeedsAuth, Reason: ReasonNeedsAuth, Authorize: a}
		}
		status := nemo.StatusNotHomeAgent
		if !c.cfg.HomePrefix.Contains(hoa) {
			status = nemo.StatusNotHomeSubnet
		}
		return c.reject(nil, p, arr, bu, status, bu.Timestamp, errors.New("unknown home address "+hoa.String()), ReasonUnknownHomeAddr, now)
	}
	// RFC 4285: authenticate first, then check the timestamp.
	auth, ok := bu.MNHA()
	if !ok || auth.SPI != e.Peer.SPI {
		return c.reject(e, p, arr, bu, nemo.StatusAuthFailed, bu.Timestamp, nemo.ErrNoAuth, ReasonAuthFailed, now)
	}
	coa := p.Src
	if err := e.authenticator().Verify(p.MH, &bu.Options, coa, hoa); err != nil {
		return c.reject(e, p, arr, bu, nemo.StatusAuthFailed, bu.Timestamp, err, ReasonAuthFailed, now)
	}
	if !bu.HasTimestamp {
		return c.reject(e, p, arr, bu, nemo.StatusMesgIDRequired, 0, nemo.ErrNoTimestamp, ReasonNoTimestamp, now)
	}
	if err := nemo.CheckTimestamp(bu.Timestamp, now, c.cfg.ReplayWindow, e.lastTS); err != nil {
		return c.reject(e, p, arr, bu, nemo.StatusIDMismatch, nemo.MismatchTimestamp(bu.Timestamp, now), err, ReasonBadTimestamp, now)
	}
	if e.hasSeq && !nemo.SeqNewer(bu.Seq, e.lastSeq) {
		return c.reject(e, p, arr, bu, nemo.StatusSeqOutOfWindow, bu.Timestamp, errors.New("sequence number out of window"), ReasonSeqOutOfWindow, now)
	}
	// From here on the message is authentic and fresh: remember it.
	e.hasSeq, e.lastSeq, e.lastTS = true, bu.Seq, bu.Timestamp
	if e.Peer.NAI != "" && (!bu.HasMNID || string(bu.MNID) != e.Peer.NAI) {
		return c.reject(e, p, arr, bu, nemo.StatusProhibited, bu.Timestamp, errors.New("mobile node identifier does not match"), ReasonProhibited, now)
	}
	if bu.Flags&nemo.BUFlagH == 0 {
		// Only home registrations: a correspondent registration would need
		// return routability, which a home agent serving routers does not do.
		return c.reject(e, p, arr, bu, nemo.StatusProhibited, bu.Timestamp, errors.New("not a home registration"), ReasonProhibited, now)
	}
	if r, ok := c.switchGate(e, p, arr, bu, now); ok {
		return r
	}
	if bu.Lifetime == 0 {
		return c.deregister(e, p, arr, bu, now)
	}
	return c.register(e, p, arr, bu, now)
}

func (c *Cache) deregister(e *Entry, p *nemo.Packet, arr Arrival, bu *nemo.BindingUpdate, now time.Time) Result {
	ba := nemo.BindingAck{Seq: bu.Seq}
	before := len(e.Bindings)
	if len(bu.BIDs) == 0 {
		e.Bindings = e.Bindings[:0]
	} else {
		for _, b := range bu.BIDs {
			st := uint8(0)
			if i := e.find(b.ID); i >= 0 {
				e.Bindings = slices.Delete(e.Bindings, i, i+1)
			} else {
				st = nemo.StatusNotHomeAgent // unknown BID (RFC 5648 §6.2)
				ba.Status = nemo.StatusMCoANotComplete
			}
			ba.BIDs = append(ba.BIDs, nemo.BID{ID: b.ID, Status: st})
		}
	}
	if bu.Flags&nemo.BUFlagR != 0 && e.Router {
		ba.Flags |= nemo.BAFlagR
	}
	var changed *Entry
	if len(e.Bindings) != before {
		changed = e
	}
	c.Deregistrations++
	if len(e.Bindings) == 0 {
		e.MNPs = e.MNPs[:0]
	}
	c.switchSeen(e)
	r := c.answer(e, p, arr, &ba, bu, bu.Timestamp)
	r.Changed, r.Status = changed, ba.Status
	return r
}

func (e *Entry) find(bid uint16) int {
	for i := range e.Bindings {
		if e.Bindings[i].BID == bid {
			return i
		}
	}
	return -1
}

// prefixes decides which prefixes to forward (RFC 3963 §6.2): explicit mode
// names them, each inside what the router may claim; implicit mode takes
// the configured ones.
func (c *Cache) prefixes(e *Entry, bu *nemo.BindingUpdate) ([]netip.Prefix, uint8) {
	if bu.Flags&nemo.BUFlagR == 0 {
		return nil, 0
	}
	if len(bu.MNPs) == 0 {
		if len(e.Peer.MNPs) == 0 && !e.Peer.PD {
			if len(bu.IPv4HoAs) > 0 {
				return nil, 0 // an IPv4-only mobile network
			}
			return nil, nemo.StatusForwardingSetupFailed
		}
		return e.allowed(), 0
	}
	out := make([]netip.Prefix, 0, len(bu.MNPs))
	for _, p := range bu.MNPs {
		if p.Bits() < 8 || p.Masked() != p || !p.Addr().IsGlobalUnicast() || c.cfg.HomePrefix.Overlaps(p) {
			return nil, nemo.StatusInvalidPrefix
		}
		ok := false
		for _, allowed := range e.allowed() {
			if allowed.Bits() <= p.Bits() && allowed.Contains(p.Addr()) {
				ok = true
				break
			}
		}
		if !ok {
			return nil, nemo.StatusNotAuthorizedPrefix
		}
		out = append(out, p)
	}
	return out, 0
}

func (c *Cache) register(e *Entry, p *nemo.Packet, arr Arrival, bu *nemo.BindingUpdate, now time.Time) Result {
	router := bu.Flags&nemo.BUFlagR != 0
	if e.Registered() && router != e.Router {
		return c.reject(e, p, arr, bu, nemo.StatusRegTypeChange, bu.Timestamp, errors.New("registration type change"), ReasonProhibited, now)
	}
	mnps, st := c.prefixes(e, bu)
	if st != 0 {
		return c.reject(e, p, arr, bu, st, bu.Timestamp, errors.New("mobile network prefix refused"), ReasonPrefixRejected, now)
	}
	lifetime := e.authCap(min(nemo.LifetimeDuration(bu.Lifetime), c.cfg.MaxLifetime), now)
	v4, acks, lease := c.ipv4(e, bu, now)
	if lease > 0 {
		lifetime = min(lifetime, lease)
	}
	expires := now.Add(lifetime)
	ba := nemo.BindingAck{Seq: bu.Seq, Lifetime: nemo.Lifetime(lifetime)}
	if router {
		ba.Flags |= nemo.BAFlagR
	}
	if len(bu.BIDs) == 0 {
		// A plain RFC 6275 registration: one care-of address, which
		// replaces every binding.
		coa := bu.AltCoA
		if arr.Encap == nemo.EncapUDP4 {
			coa = bu.IPv4CoA
		}
		if !coa.IsValid() {
			coa = arr.Outer.Addr()
		}
		b := Binding{CoA: coa, Outer: outerFor(arr), Encap: arr.Encap, Expires: expires, Since: now}
		b.NAT = natted(bu, arr)
		b.Caps, _ = bu.NemodCaps()
		if len(e.Bindings) == 1 && e.Bindings[0].BID == 0 && e.Bindings[0].CoA == coa {
			b.Since = e.Bindings[0].Since
		}
		e.Bindings = append(e.Bindings[:0], b)
	} else {
		if i := e.find(0); i >= 0 && bu.Flags&nemo.BUFlagO == 0 {
			return c.reject(e, p, arr, bu, nemo.StatusMCoANonMCoAExists, bu.Timestamp, errors.New("a binding without BID exists"), ReasonBIDRejected, now)
		}
		if bu.Flags&nemo.BUFlagO != 0 {
			keep := e.Bindings[:0]
			for _, b := range e.Bindings {
				if bu.FindBID(b.BID) >= 0 {
					keep = append(keep, b)
				}
			}
			e.Bindings = keep
		}
		for _, bo := range bu.BIDs {
			st := c.bindOne(e, bo, arr, bu, expires, now)
			if st != 0 {
				c.BIDsRefused++
				ba.Status = nemo.StatusMCoANotComplete
			}
			ba.BIDs = append(ba.BIDs, nemo.BID{ID: bo.ID, Status: st, H: bo.H, Pri: bo.Pri})
		}
		slices.SortFunc(e.Bindings, func(a, b Binding) int { return int(a.BID) - int(b.BID) })
	}
	e.Router, e.HA = router, p.Dst
	c.switchSeen(e)
	e.MNPs = append(e.MNPs[:0], mnps...)
	e.V4, ba.IPv4AddrAcks = v4, acks
	e.implicit = len(bu.MNPs) == 0
	if len(e.Bindings) == 0 {
		// Every BID refused (and the O flag dropped the others): nothing
		// to forward the prefixes through.
		e.MNPs = e.MNPs[:0]
	}
	c.flows(e, bu, &ba)
	if caps, ok := bu.NemodCaps(); ok {
		ba.SetNemodCaps(caps & c.cfg.Offer)
	}
	c.Accepted++
	r := c.answer(e, p, arr, &ba, bu, bu.Timestamp)
	r.Changed, r.Status = e, ba.Status
	return r
}

// flows applies the flow binding options of an accepted registration
// (RFC 6089 §5.3): the Flow Identification options give the entries, each
// answered with its status in the BA; Flow Summary options keep existing
// entries as they are; any entry neither names is deleted. Entries whose
// BIDs are not (or no longer) registered are kept, inactive: that is how a
// fallback chain waits for its first choice.
func (c *Cache) flows(e *Entry, bu *nemo.BindingUpdate, ba *nemo.BindingAck) {
	if len(bu.FlowIDs) == 0 && len(bu.FlowSummary) == 0 {
		e.Flows = nil
		return
	}
	t, status := policy.FromFlowIDs(bu.FlowIDs)
	for i, f := range bu.FlowIDs {
		if status[i] != 0 {
			c.FlowsRefused++
		}
		ba.FlowIDs = append(ba.FlowIDs, nemo.FlowID{FID: f.FID, Pri: f.Pri, Status: status[i]})
	}
	if len(bu.FlowSummary) > 0 && e.Flows != nil {
		for _, old := range e.Flows.Entries {
			if slices.Contains(bu.FlowSummary, old.FID) && !t.Has(old.FID) {
				t.Entries = append(t.Entries, old)
			}
		}
		slices.SortFunc(t.Entries, func(a, b policy.Entry) int { return int(a.Pri) - int(b.Pri) })
	}
	e.Flows = t
}

func outerFor(arr Arrival) netip.AddrPort {
	if arr.Encap == nemo.EncapIPv6 {
		return netip.AddrPortFrom(arr.Outer.Addr(), 0)
	}
	return arr.Outer
}

// bindOne applies one BID option of a registration and returns its per-BID
// status. A care-of address is tied to the path the BU arrived on when it
// is that path's source (or, through a NAT, the IPv4 care-of address of a
// UDP-encapsulated BU). A refresh may name no care-of address or the one
// already registered, and keeps its path. A new IPv6 care-of address
// arriving through another path (bulk registration) is reached natively; a
// new IPv4 one must first be registered through its own path so that the
// NAT in front of it is known (RFC 5648 §6.1, RFC 5555 §4.1).
func (c *Cache) bindOne(e *Entry, bo nemo.BID, arr Arrival, bu *nemo.BindingUpdate, expires, now time.Time) uint8 {
	i := e.find(bo.ID)
	var b Binding
	switch {
	case bo.CoA.IsValid() && (bo.CoA == arr.Outer.Addr() || (arr.Encap == nemo.EncapUDP4 && bo.CoA.Is4())):
		b = Binding{BID: bo.ID, CoA: bo.CoA, Outer: outerFor(arr), Encap: arr.Encap, NAT: natted(bu, arr)}
	case bo.CoA.IsValid() && i >= 0 && e.Bindings[i].CoA == bo.CoA:
		b = e.Bindings[i]
	case bo.CoA.IsValid() && bo.CoA.Is6():
		if !bo.CoA.IsGlobalUnicast() || c.cfg.HomePrefix.Contains(bo.CoA) {
			return nemo.StatusInvalidCoA
		}
		b = Binding{BID: bo.ID, CoA: bo.CoA, Outer: netip.AddrPortFrom(bo.CoA, 0), Encap: nemo.EncapIPv6}
	case bo.CoA.IsValid():
		return nemo.StatusMCoABulkProhibited
	case i >= 0:
		b = e.Bindings[i]
	default:
		return nemo.StatusMCoAUnknownCoA
	}
	b.Pri = bo.Pri
	b.Expires = expires
	b.Caps, _ = bu.NemodCaps()
	if i >= 0 && e.Bindings[i].CoA == b.CoA && e.Bindings[i].Outer == b.Outer {
		b.Since = e.Bindings[i].Since
	} else {
		b.Since = now
	}
	if i >= 0 {
		e.Bindings[i] = b
	} else {
		e.Bindings = append(e.Bindings, b)
	}
	return 0
}

// Expire removes the bindings whose lifetime ran out and returns the
// entries that changed. The daemon calls it about once a second: lifetimes
// come in 4-second units, and a scan of every entry costs less than keeping
// an ordered index on the registration path.
func (c *Cache) Expire(now time.Time) []*Entry {
	var changed []*Entry
	for _, e := range c.entries {
		n := len(e.Bindings)
		e.Bindings = slices.DeleteFunc(e.Bindings, func(b Binding) bool { return !now.Before(b.Expires) })
		if len(e.Bindings) != n {
			c.Expired += uint64(n - len(e.Bindings))
			if len(e.Bindings) == 0 {
				e.MNPs = e.MNPs[:0]
			}
			changed = append(changed, e)
		}
	}
	return changed
}

// SetPeers replaces the configured mobile routers (a configuration
// reload). A router that stays keeps its bindings and replay state unless
// its key, SPI or allowed prefixes changed, in which case its bindings are
// dropped and it must register again; a removed router loses its bindings.
// Routers authorized at run time (AddPeer) stay, unless a configured one
// now claims their home address or NAI. It returns the entries whose
// forwarding state changed.
func (c *Cache) SetPeers(ps []Peer) []*Entry {
	c.cfg.Peers = append([]Peer(nil), ps...)
	next := make(map[netip.Addr]*Entry, len(ps))
	var changed []*Entry
	c.staticNAI = map[string]bool{}
	for i := range c.cfg.Peers {
		p := &c.cfg.Peers[i]
		if p.NAI != "" {
			c.staticNAI[p.NAI] = true
		}
		old := c.entries[p.HoA]
		if old != nil && old.dynamic {
			if e := c.RemovePeer(p.HoA); e != nil {
				changed = append(changed, e)
			}
			old = nil
		}
		if old != nil && old.Peer.SPI == p.SPI && string(old.Peer.Key) == string(p.Key) && slices.Equal(old.Peer.MNPs, p.MNPs) && sameV4(old.Peer, p) {
			old.Peer = p
			next[p.HoA] = old
			continue
		}
		next[p.HoA] = &Entry{Peer: p}
		if old != nil {
			// A lease outlives the registration.
			next[p.HoA].Delegated = old.Delegated
		}
		if old != nil && old.Registered() {
			old.Bindings, old.MNPs = old.Bindings[:0], old.MNPs[:0]
			changed = append(changed, old)
		}
	}
	for hoa, e := range c.entries {
		if next[hoa] != nil {
			continue
		}
		if e.dynamic && !c.staticNAI[e.Peer.NAI] {
			next[hoa] = e
			continue
		}
		if e.dynamic {
			delete(c.nais, e.Peer.NAI)
		}
		if e.Registered() {
			e.Bindings, e.MNPs = e.Bindings[:0], e.MNPs[:0]
			changed = append(changed, e)
		}
	}
	c.entries = next
	return changed
}
