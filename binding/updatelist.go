package binding

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"nemod/nemo"
)

// UplinkConfig is one uplink of the mobile router.
type UplinkConfig struct {
	Name string
	BID  uint16
	Pri  uint8
	Mode nemo.Encap // what the configuration allows: auto, ipv6 or udp
	// ProbeInterval and ProbeFailures set the liveness probing of the
	// uplink's binding (see liveness.go): an idle native path gets a
	// probe every interval, larger UDP probes go proportionally less often,
	// and a probe episode sends failures probes before the path is dead.
	// Zero interval: no probing.
	ProbeInterval time.Duration
	ProbeFailures int
}

// UpdateListConfig is what the mobile router's binding update list needs.
type UpdateListConfig struct {
	HoA      netip.Addr
	HA       netip.Addr // IPv6 address of the home agent
	HAv4     netip.Addr // IPv4 address, for IPv4-only uplinks
	MNPs     []netip.Prefix
	SPI      uint32
	Key      []byte
	NAI      string
	Lifetime time.Duration
	Uplinks  []UplinkConfig
	// InitialTimeout and MaxTimeout bound the retransmission back-off
	// (RFC 6275 §12: 1 s and 32 s).
	InitialTimeout, MaxTimeout time.Duration
	// FirstTimeout is the timeout of the first Binding Update after an
	// uplink comes up (default 250 ms; see registerOpts).
	FirstTimeout time.Duration
	// DeregAttempts is how often a de-registration is sent before giving
	// up on an answer.
	DeregAttempts int
	// Flows are the flow bindings (RFC 6089) every registration and
	// refresh carries: the home agent deletes those a BU leaves out.
	Flows []nemo.FlowID
	// Heard is each uplink's liveness clock, which the data plane keeps:
	// when anything last came from the home agent over its binding
	// (traffic, a probe's answer, signalling). Nil: only registrations
	// count.
	Heard func(uplink int) time.Time
	// Clock, when set, is each uplink's whole path clock (what was heard
	// and sent, see Clock), which traffic-driven probing needs; it
	// replaces Heard.
	Clock func(uplink int) Clock
	// Offer is what the router offers the home agent in nemod's Vendor
	// Specific option (see offer.go); zero sends no option.
	Offer nemo.Caps
	Logf  func(format string, args ...any)
	// IPv4 for the mobile network (RFC 5555; see ipv4router.go): HoAv4 is
	// the IPv4 home address (0.0.0.0 to be assigned one, invalid for none),
	// MNPsV4 the IPv4 prefixes claimed, MNPv4Length the length of a prefix
	// to be assigned (0: none).
	HoAv4       netip.Addr
	MNPsV4      []netip.Prefix
	MNPv4Length int
	// HASignal is the home agent's IPv6 address inside UDP signalling when
	// HA is invalid (a home agent reached over IPv4 only).
	HASignal netip.Addr
	// ReplayWindow bounds the age of a Binding Revocation Indication's
	// timestamp (default nemo.DefaultReplayWindow); RevokedHoldoff is how
	// long a revoked binding waits before registering again (default
	// DefaultRevokedHoldoff).
	ReplayWindow, RevokedHoldoff time.Duration
	// HomeAgents are the home agents in order of preference (HA and HAv4
	// when empty), HATimeout how long the one in use may stay silent
	// before the next is registered with (halist.go; 0: never).
	HomeAgents []HomeAgentAddr
	HATimeout  time.Duration
}

// LinkState is what the interface monitor says of an uplink.
type LinkState struct {
	Up   bool
	IPv6 netip.Addr // usable global IPv6 address with a default route; invalid if none
	IPv4 netip.Addr // usable IPv4 address with a default route; invalid if none
}

// State of one binding as the mobile router sees it.
type State uint8

const (
	StateDown        State = iota // the uplink has no usable address
	StateRegistering              // a Binding Update is out, no answer yet
	StateRegistered
)

func (s State) String() string {
	switch s {
	case StateRegistering:
		return "registering"
	case StateRegistered:
		return "registered"
	case StateRevoked:
		return "revoked"
	}
	return "down"
}

// Path is how to send a signalling packet over an uplink.
type Path struct {
	Uplink int // index into UpdateListConfig.Uplinks
	Encap  nemo.Encap
	Src    netip.Addr // the care-of address to send from
	Dst    netip.Addr // the home agent address (IPv6, or IPv4 for nemo.EncapUDP4)
	// HA, when valid, is the home agent the packet is for, when it is not
	// the one in use (halist.go).
	HA netip.Addr
}

// Send is a packet the daemon must send: an IPv6 packet, sent as is for
// nemo.EncapIPv6, or as the payload of a UDP datagram to port 4191 otherwise.
type Send struct {
	Path   Path
	Packet []byte
	Probe  bool // a liveness probe, not a Binding Update
}

// BindingStatus is a snapshot of one uplink's binding.
type BindingStatus struct {
	BID     uint16
	Uplink  string
	State   State
	CoA     netip.Addr
	Encap   nemo.Encap
	NAT     bool
	Expires time.Time // zero unless registered
	// Since is when this binding last became registered.
	Since time.Time
	// RTT is the smoothed round-trip time of its probes (zero before the
	// first answer), Loss the share of its recent probes left unanswered.
	RTT  time.Duration
	Loss float64
	// RefreshAt is when its refresh is due (zero unless registered).
	RefreshAt time.Time
}

type buKind uint8

const (
	kindRegister buKind = iota + 1
	kindRefresh
	kindDereg
)

// pending is a Binding Update awaiting its acknowledgement.
type pending struct {
	kind     buKind
	seq      uint16
	ts       uint64
	sentAt   time.Time
	lifetime time.Duration
	bids     []uint16 // BIDs carried, each as registered or deregistered
	links    []int    // uplinks whose bindings it registers or refreshes
	via      int      // uplink it was sent through
	encap    nemo.Encap
	attempts int
	timeout  time.Duration
	retryAt  time.Time
	// answered: the last transmission got an answer (135, 144): the path
	// works, so a retry must not move to another encapsulation.
	answered bool
	// cand is the index, in the uplink's candidates, of the encapsulation
	// this BU tries; the uplink takes it on when the answer comes.
	cand int
	// stay is how many unanswered attempts keep the same encapsulation
	// before trying the next: a path that died had a working one, and it
	// is the path, not the encapsulation, that must come back.
	stay int
	// first, when set, replaces the timeout of the first transmission.
	first time.Duration
}

type link struct {
	cfg   UplinkConfig
	st    LinkState
	state State
	coa   netip.Addr
	encap nemo.Encap
	nat   bool
	// candidates are the encapsulations to try, in order; cand is the one
	// in use (registered) or being tried (registering).
	candidates []nemo.Encap
	cand       int
	since      time.Time
	expires    time.Time
	refreshAt  time.Time
	// reg is the registering or refreshing BU for this uplink, if any.
	reg *pending
	// confirmed is when the binding last became registered, which counts
	// as hearing from the home agent over it; after that, the data plane's
	// liveness clock (UpdateListConfig.Clock) tells. nextProbe is when the
	// next idle probe is due.
	confirmed, nextProbe time.Time
	path                 pathState
	// reorderLater: the negotiation reordered the candidates while a
	// registration was in flight (see offer.go).
	reorderLater bool
	// retimed is when the probing last changed (SetUplinkTiming): silence
	// from before it is not judged by the new, perhaps shorter, deadline.
	retimed time.Time
	// revokedUntil ends the holdoff of a revoked binding (StateRevoked).
	revokedUntil time.Time
}

// UpdateList is the mobile router's binding update list: one binding per
// uplink, registered with the home agent by BID (RFC 5648). It is not safe
// for concurrent use.
type UpdateList struct {
	cfg   UpdateListConfig
	auth  *nemo.Authenticator
	links []*link
	seq   uint16
	// lastTS is the newest replay-protection timestamp sent; skew corrects
	// our clock by what the home agent told us with status 144.
	lastTS uint64
	skew   time.Duration
	dereg  *pending // an outstanding de-registration of lost uplinks
	// lost are BIDs the home agent may still have but whose uplinks are
	// gone: they are de-registered through another uplink.
	lost []uint16
	// gen counts changes a data plane or status display must follow.
	gen        uint64
	probeSeq   uint32
	flowStatus map[uint16]uint8
	// Counters. Every packet HandlePacket is given is Received, and then
	// either Acked (it answers an outstanding Binding Update, whatever it
	// says), a revocation taken or repeated (Revocations), or Ignored (see
	// Reason for why).
	Sent, Acked, Rejected, Retransmits uint64
	Received, Ignored                  uint64
	// IgnoredBy counts the ignored packets by Reason.
	IgnoredBy         map[string]uint64
	Probes, DeadPaths uint64
	// Failovers counts the usable bindings lost while another one could
	// take their traffic.
	Failovers uint64
	// Accepted counts the registrations and refreshes the home agent
	// accepted, binding by binding.
	Accepted uint64
	// RejectedBy counts the refusals by status (0: the home agent does
	// not support mobile routers).
	RejectedBy map[uint8]uint64
	// RejectedV4 counts the IPv4 home address options refused, by status.
	RejectedV4 map[uint8]uint64
	v4         []v4Slot
	shutdown   bool
	// peerFast: the home agent agreed to UDP over IPv6 with offload (see
	// offer.go); polled is the last Poll's time.
	peerFast bool
	polled   time.Time
	accepts  []time.Duration // latency.go
	// Revocations counts the Binding Revocation Indications acted on.
	Revocations RevocationCounters
	lastBRITS   uint64
	lastBRI     *lastBRI
	// out holds answers (revocation acknowledgements) for the next Poll.
	out []Send
	// ha is the home agent list (halist.go); Switched counts the Home
	// Agent Switch messages taken.
	ha       haState
	Switched uint64
}

// NewUpdateList returns the binding update list for cfg, all uplinks down.
// The first sequence number is seq (pick it at random at start so that a
// restart is not mistaken for a replay of an older registration).
func NewUpdateList(cfg UpdateListConfig, seq uint16) *UpdateList {
	if cfg.InitialTimeout == 0 {
		cfg.InitialTimeout = time.Second
	}
	if cfg.MaxTimeout == 0 {
		cfg.MaxTimeout = 32 * time.Second
	}
	if cfg.FirstTimeout == 0 {
		cfg.FirstTimeout = 250 * time.Millisecond
	}
	if cfg.DeregAttempts == 0 {
		cfg.DeregAttempts = 3
	}
	if cfg.Lifetime == 0 {
		cfg.Lifetime = 600 * time.Second // as SetLifetime
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.ReplayWindow == 0 {
		cfg.ReplayWindow = nemo.DefaultReplayWindow
	}
	if cfg.RevokedHoldoff == 0 {
		cfg.RevokedHoldoff = DefaultRevokedHoldoff
	}
	r := &UpdateList{cfg: cfg, auth: nemo.NewAuthenticator(cfg.Key), seq: seq, v4: v4Slots(&cfg)}
	for _, u := range cfg.Uplinks {
		r.links = append(r.links, &link{cfg: u})
	}
	r.haInit()
	return r
}

// Gen changes whenever a binding's state, care-of address or encapsulation
// changes.
func (r *UpdateList) Gen() uint64 { return r.gen }

// Bindings returns the state of every uplink's binding, in configuration
// order.
func (r *UpdateList) Bindings() []BindingStatus {
	out := make([]BindingStatus, len(r.links))
	for i, l := range r.links {
		out[i] = BindingStatus{BID: l.cfg.BID, Uplink: l.cfg.Name, State: l.state, CoA: l.coa, Encap: l.encap, NAT: l.nat}
		out[i].RTT, out[i].Loss = l.pathStatus(r.polled)
		if l.state == StateRegistered {
			out[i].Expires, out[i].Since, out[i].RefreshAt = l.expires, l.since, l.refreshAt
		}
	}
	return out
}

// candidates lists the encapsulations an uplink may use with what it has.
func (r *UpdateList) candidates(l *link) []nemo.Encap {
	v6 := l.st.Up && l.st.IPv6.IsValid() && r.cfg.HA.IsValid()
	v4 := l.st.Up && l.st.IPv4.IsValid() && r.cfg.HAv4.IsValid()
	var c []nemo.Encap
	switch l.cfg.Mode {
	case nemo.EncapIPv6:
		if v6 {
			c = append(c, nemo.EncapIPv6)
		}
	case nemo.EncapUDP:
		if v6 {
			c = append(c, nemo.EncapUDP6)
		}
		if v4 {
			c = append(c, nemo.EncapUDP4)
		}
	default:
		if v6 && r.peerFast {
			c = append(c, nemo.EncapUDP6, nemo.EncapIPv6)
		} else if v6 {
			c = append(c, nemo.EncapIPv6, nemo.EncapUDP6)
		}
		if v4 {
			c = append(c, nemo.EncapUDP4)
		}
	}
	return c
}

func (r *UpdateList) path(i int, e nemo.Encap) Path {
	l := r.links[i]
	if e == nemo.EncapUDP4 {
		return Path{Uplink: i, Encap: e, Src: l.st.IPv4, Dst: r.cfg.HAv4}
	}
	return Path{Uplink: i, Encap: e, Src: l.st.IPv6, Dst: r.cfg.HA}
}

// SetLink records what the interface monitor says of uplink i. A lost
// uplink's binding is de-registered through another one at the next Poll;
// a new or changed care-of address is registered at once.
func (r *UpdateList) SetLink(i int, st LinkState, now time.Time) {
	l := r.links[i]
	l.st = st
	if l.state == StateRevoked {
		return // its holdoff decides when it registers again
	}
	cands := r.candidates(l)
	if len(cands) == 0 {
		if l.state != StateDown {
			r.cfg.Logf("uplink %s (BID %d) lost: de-registering", l.cfg.Name, l.cfg.BID)
			r.loseLink(l)
		}
		return
	}
	if l.state != StateDown && slices.Equal(cands, l.candidates) && r.path(i, l.candidates[l.cand]).Src == l.coa {
		return // nothing that matters changed
	}
	if l.state != StateDown {
		r.cfg.Logf("uplink %s (BID %d): care-of address changed, registering again", l.cfg.Name, l.cfg.BID)
	}
	// A carrier or address change registers at once, dead path or not.
	l.path.rec = nil
	l.candidates, l.cand = cands, 0
	r.registerOpts(i, now, false, r.cfg.FirstTimeout, 0)
}

func (r *UpdateList) loseLink(l *link) {
	if !slices.Contains(r.lost, l.cfg.BID) {
		r.lost = append(r.lost, l.cfg.BID)
	}
	if l.reg != nil && l.reg.via == r.indexOf(l) {
		r.detachOthers(l.reg)
	}
	r.countFailover(r.indexOf(l))
	l.path.rec = nil
	l.state, l.reg, l.candidates, l.coa, l.encap, l.nat = StateDown, nil, nil, netip.Addr{}, nemo.EncapNone, false
	r.gen++
}

func (r *UpdateList) indexOf(l *link) int { return slices.Index(r.links, l) }

func (r *UpdateList) startRegistration(i int, now time.Time) { r.register(i, now, false) }

// register starts registering uplink i. keepLost leaves a pending
// de-registration of its BID in place: when its path died, the home agent
// must stop using it at once (through another uplink) while the router
// tries to register it again through the same path.
func (r *UpdateList) register(i int, now time.Time, keepLost bool) {
	r.registerOpts(i, now, keepLost, 0, 0)
}

// registerOpts starts registering uplink i. first, when not zero, is the
// timeout of the first transmission only: just after an uplink comes up,
// a lost first Binding Update (a device queue not yet moving) is retried
// quickly, before the RFC 6275 back-off and before changing the
// encapsulation. stay keeps the encapsulation for that many unanswered
// attempts.
func (r *UpdateList) registerOpts(i int, now time.Time, keepLost bool, first time.Duration, stay int) {
	l := r.links[i]
	l.state = StateRegistering
	l.encap = l.candidates[l.cand]
	l.coa = r.path(i, l.encap).Src
	if l.reg != nil {
		r.detachOthers(l.reg)
	}
	l.reg = &pending{kind: kindRegister, via: i, links: []int{i}, timeout: r.cfg.InitialTimeout, retryAt: now, cand: l.cand, stay: stay}
	if first > 0 {
		l.reg.first = first
		l.reg.stay = max(stay, 1)
	}
	if !keepLost {
		// A re-registration supersedes a pending de-registration of this BID.
		r.lost = slices.DeleteFunc(r.lost, func(b uint16) bool { return b == l.cfg.BID })
	}
	r.gen++
}

// SetUplinkTiming changes the liveness probing of uplink i (a
// configuration reload): the next probe goes out within the new interval,
// and the path is judged dead by the new count of intervals, counted from
// now for a silence that began before.
func (r *UpdateList) SetUplinkTiming(i int, interval time.Duration, failures int, now time.Time) {
	l := r.links[i]
	if l.cfg.ProbeInterval == interval && l.cfg.ProbeFailures == failures {
		return
	}
	wasProbing := l.probing()
	l.cfg.ProbeInterval, l.cfg.ProbeFailures = interval, failures
	if !l.probing() {
		return
	}
	if !wasProbing {
		l.nextProbe = now
	} else if next := now.Add(r.idleGap(l)); next.Before(l.nextProbe) {
		l.nextProbe = next
	}
	l.retimed = now
}

// SetLifetime changes the lifetime the Binding Updates ask for (a
// configuration reload; zero is the default, 600 s): from the next one on,
// each binding keeping what it was granted until then.
func (r *UpdateList) SetLifetime(d time.Duration) {
	if d == 0 {
		d = 600 * time.Second
	}
	r.cfg.Lifetime = d
}

// SetFlows replaces the flow bindings (a configuration reload) and has
// them registered at once: through the preferred registered uplink, the
// others in the same bulk refresh when theirs is near. Registrations keep
// running throughout.
func (r *UpdateList) SetFlows(flows []nemo.FlowID, now time.Time) {
	r.cfg.Flows = flows
	if i := r.best(); i >= 0 && r.links[i].reg == nil {
		r.startRefresh(i, now)
	}
}

// FlowStatus returns what the home agent answered for each flow binding
// in its last acknowledgement (FID to RFC 6089 status).
func (r *UpdateList) FlowStatus() map[uint16]uint8 { return r.flowStatus }

// probing reports whether a registered uplink's path is probed.
func (l *link) probing() bool {
	return l.state == StateRegistered && l.cfg.ProbeInterval > 0 && l.cfg.ProbeFailures > 0
}

// Poll returns the Binding Updates due at now: registrations and their
// retransmissions, refreshes, and de-registrations of lost uplinks.
func (r *UpdateList) Poll(now time.Time) []Send {
	if r.shutdown {
		return r.pollDereg(now)
	}
	out := append(r.out, r.pollHA(now)...)
	r.out = nil
	r.polled = now
	for i, l := range r.links {
		r.pollRevoked(i, now)
		if l.state == StateRegistered && !now.Before(l.expires) {
			// The binding lapsed at the home agent: start over.
			r.cfg.Logf("uplink %s (BID %d): binding expired without a refresh", l.cfg.Name, l.cfg.BID)
			if l.reg != nil {
				r.detachOthers(l.reg)
			}
			l.candidates, l.cand = r.candidates(l), 0
			r.startRegistration(i, now)
		}
		if s, ok := r.pollPath(i, now); ok {
			out = append(out, s)
		}
		if l.state == StateRegistered && l.reg == nil && !now.Before(l.refreshAt) {
			if l.cand > 0 {
				// Registered through a fallback: try the preferred
				// encapsulation again, in case what blocked it is gone. The
				// binding keeps its path until the home agent confirms.
				l.reg = &pending{kind: kindRegister, via: i, links: []int{i}, timeout: r.cfg.InitialTimeout, retryAt: now}
			} else {
				r.startRefresh(i, now)
			}
		}
	}
	// De-registrations first: any registration sent in this round gets a
	// newer sequence number, so that the home agent, whatever order they
	// arrive in, ends with the registration (a path declared dead and
	// re-registered at once, a NAT mapping renewed).
	out = append(out, r.pollDereg(now)...)
	for i, l := range r.links {
		p := l.reg
		if p == nil || p.via != i || now.Before(p.retryAt) {
			continue
		}
		if r.recoveryGaveUp(i, p, now) {
			continue
		}
		if p.attempts > 0 {
			r.Retransmits++
			r.detachOthers(p)
			if p.stay > 0 {
				p.stay--
			} else if p.kind == kindRegister && len(l.candidates) > 1 && !p.answered {
				// No answer: try the next encapsulation (a firewall may drop
				// protocol 135 but let UDP through, RFC 4487).
				p.cand = (p.cand + 1) % len(l.candidates)
				if l.state == StateRegistering {
					l.cand, l.encap, l.coa = p.cand, l.candidates[p.cand], r.path(i, l.candidates[p.cand]).Src
					r.gen++
				}
				r.cfg.Logf("uplink %s (BID %d): no answer, trying %s", l.cfg.Name, l.cfg.BID, l.candidates[p.cand])
			}
		}
		s, err := r.sendRegistration(i, p, now)
		if err != nil {
			r.cfg.Logf("uplink %s: %v", l.cfg.Name, err)
			continue
		}
		out = append(out, s)
	}
	return out
}

// startRefresh refreshes uplink i's binding, and in the same Binding Update
// (a bulk registration, RFC 5648 §5.3) every other registered binding whose
// refresh would fall due within the next quarter of the lifetime. Bindings
// behind a NAT are left out: their own refreshes keep the NAT's mapping
// alive.
func (r *UpdateList) startRefresh(i int, now time.Time) {
	p := &pending{kind: kindRefresh, via: i, links: []int{i}, timeout: r.cfg.InitialTimeout, retryAt: now}
	r.links[i].reg = p
	horizon := now.Add(r.cfg.Lifetime / 4)
	for j, o := range r.links {
		if j != i && o.state == StateRegistered && o.reg == nil && !o.nat && o.refreshAt.Before(horizon) {
			o.reg = p
			p.links = append(p.links, j)
		}
	}
}

// detachOthers takes a bulk refresh that got no answer apart: the path it
// went through may be dead, so each binding refreshes through its own.
func (r *UpdateList) detachOthers(p *pending) {
	for _, j := range p.links {
		if j != p.via && r.links[j].reg == p {
			r.links[j].reg = nil
		}
	}
	p.links = p.links[:1]
}

func (r *UpdateList) sendRegistration(i int, p *pending, now time.Time) (Send, error) {
	l := r.links[i]
	p.attempts++
	p.answered = false
	if p.attempts == 1 && p.first > 0 {
		p.retryAt = now.Add(p.first)
	} else {
		p.retryAt = now.Add(p.timeout)
		p.timeout = min(2*p.timeout, r.cfg.MaxTimeout)
	}
	if p.kind == kindRegister {
		p.encap = l.candidates[p.cand]
	} else {
		p.cand, p.encap = l.cand, l.encap
	}
	p.lifetime = r.cfg.Lifetime
	if len(p.links) == 0 {
		p.links = []int{i}
	}
	bu := r.newBU(now, p)
	r.sentToHA(now)
	bu.Lifetime = nemo.Lifetime(p.lifetime)
	p.bids = p.bids[:0]
	for _, j := range p.links {
		o := r.links[j]
		p.bids = append(p.bids, o.cfg.BID)
		b := nemo.BID{ID: o.cfg.BID, Pri: o.cfg.Pri}
		if j == i {
			// Only the sending uplink's own care-of address: the others
			// keep the path the home agent already knows (no CoA = refresh).
			b.CoA = r.path(i, p.encap).Src
		}
		bu.BIDs = append(bu.BIDs, b)
	}
	return r.encode(bu, r.path(i, p.encap), p)
}

// newBU starts a Binding Update with a fresh sequence number and timestamp.
func (r *UpdateList) newBU(now time.Time, p *pending) *nemo.BindingUpdate {
	r.seq++
	ts := nemo.NTPTime(now.Add(r.skew))
	if ts <= r.lastTS {
		ts = r.lastTS + 1
	}
	r.lastTS = ts
	p.seq, p.ts, p.sentAt = r.seq, ts, now
	var flows []nemo.FlowID
	if p.kind != kindDereg {
		flows = r.cfg.Flows
	}
	bu := &nemo.BindingUpdate{
		Seq:   r.seq,
		Flags: nemo.BUFlagA | nemo.BUFlagH | nemo.BUFlagR,
		Options: nemo.Options{
			FlowIDs:      flows,
			MNPs:         r.cfg.MNPs,
			HasMNID:      r.cfg.NAI != "",
			MNIDSubtype:  nemo.MNIDSubtypeNAI,
			MNID:         []byte(r.cfg.NAI),
			HasTimestamp: true,
			Timestamp:    ts,
			Auth:         []nemo.Auth{{Subtype: nemo.AuthMNHA, SPI: r.cfg.SPI}},
		},
	}
	if p.kind != kindDereg {
		bu.IPv4HoAs = r.ipv4Options()
		if r.cfg.Offer != 0 {
			bu.SetNemodCaps(r.cfg.Offer)
		}
	}
	return bu
}

// encode builds the signalling packet for a path: natively from the
// care-of address with a Home Address option, or from the home address
// inside UDP (RFC 5555 §4.1).
func (r *UpdateList) encode(bu *nemo.BindingUpdate, path Path, p *pending) (Send, error) {
	if path.Encap == nemo.EncapUDP4 {
		bu.Flags |= nemo.BUFlagF
	}
	mh, err := nemo.Marshal(bu)
	if err != nil {
		return Send{}, err
	}
	src, hao := path.Src, r.cfg.HoA
	if path.Encap.UDP() {
		src, hao = r.cfg.HoA, netip.Addr{}
	}
	if err := r.auth.Sign(mh, src, r.cfg.HoA); err != nil {
		return Send{}, err
	}
	ha := r.cfg.HA
	if path.HA.IsValid() {
		ha = path.HA
	}
	if !ha.IsValid() {
		ha = r.cfg.HASignal
	}
	pkt, err := nemo.AppendPacket(make([]byte, 0, 64+len(mh)), src, ha, hao, netip.Addr{}, nemo.DefaultHopLimit, mh)
	if err != nil {
		return Send{}, err
	}
	r.Sent++
	return Send{Path: path, Packet: pkt}, nil
}

// best returns the uplink to send a de-registration through: a registered
// one, lowest BID first, or -1.
func (r *UpdateList) best() int {
	bi := -1
	for i, l := range r.links {
		if l.state == StateRegistered && (bi < 0 || l.cfg.BID < r.links[bi].cfg.BID) {
			bi = i
		}
	}
	return bi
}

func (r *UpdateList) pollDereg(now time.Time) []Send {
	if r.dereg == nil {
		if len(r.lost) == 0 {
			return nil
		}
		r.dereg = &pending{kind: kindDereg, timeout: r.cfg.InitialTimeout, retryAt: now}
	}
	p := r.dereg
	if !r.shutdown && len(r.lost) == 0 {
		// Every lost uplink came back and registered again meanwhile.
		r.dereg = nil
		return nil
	}
	if now.Before(p.retryAt) {
		return nil
	}
	if p.attempts >= r.cfg.DeregAttempts {
		r.cfg.Logf("de-registration of BIDs %v got no answer; the home agent will let them expire", p.bids)
		r.dereg, r.lost = nil, nil
		return nil
	}
	via := r.best()
	if via < 0 {
		if r.shutdown {
			// No uplink left to tell the home agent: the bindings expire there.
			r.dereg = nil
		}
		// Otherwise wait for an uplink to register, then tell the home
		// agent through it.
		return nil
	}
	p.attempts++
	if p.attempts > 1 {
		r.Retransmits++
	}
	p.retryAt = now.Add(p.timeout)
	p.timeout = min(2*p.timeout, r.cfg.MaxTimeout)
	p.via = via
	l := r.links[via]
	p.encap = l.encap
	bu := r.newBU(now, p)
	r.sentToHA(now)
	if r.shutdown {
		// Lifetime 0 without BID options deletes every binding (RFC 5648).
		p.bids = p.bids[:0]
	} else {
		p.bids = append(p.bids[:0], r.lost...)
		for _, b := range r.lost {
			bu.BIDs = append(bu.BIDs, nemo.BID{ID: b})
		}
	}
	s, err := r.encode(bu, r.path(via, l.encap), p)
	if err != nil {
		r.cfg.Logf("de-registration: %v", err)
		return nil
	}
	return []Send{s}
}

// Shutdown starts de-registering every binding (on SIGTERM). Poll then
// returns only de-registrations; Done reports when there is nothing more
// to wait for.
func (r *UpdateList) Shutdown(now time.Time) []Send {
	r.shutdown = true
	r.dereg = nil
	for _, l := range r.links {
		l.reg = nil
	}
	if r.best() < 0 {
		return nil
	}
	r.dereg = &pending{kind: kindDereg, timeout: r.cfg.InitialTimeout, retryAt: now}
	return r.pollDereg(now)
}

// Done reports whether a shutdown has nothing more to send or wait for.
func (r *UpdateList) Done() bool { return r.shutdown && r.dereg == nil }

// NextDeadline returns when Poll next has something to do (zero if never).
func (r *UpdateList) NextDeadline() time.Time {
	var t time.Time
	earlier := func(x time.Time) {
		if !x.IsZero() && (t.IsZero() || x.Before(t)) {
			t = x
		}
	}
	for i, l := range r.links {
		if l.reg != nil {
			earlier(l.reg.retryAt)
		} else if l.state == StateRegistered {
			earlier(l.refreshAt)
		}
		if l.state == StateRegistered {
			earlier(l.expires)
		}
		if l.state == StateRevoked {
			earlier(l.revokedUntil)
		}
		earlier(r.pathDeadline(i))
	}
	if len(r.out) > 0 {
		earlier(time.Unix(0, 1)) // at once
	}
	earlier(r.haDeadline())
	if r.best() >= 0 {
		if r.dereg != nil {
			earlier(r.dereg.retryAt)
		} else if len(r.lost) > 0 {
			earlier(time.Unix(0, 1)) // at once
		}
	}
	return t
}

// ErrUnexpected is returned for a valid BA that answers no outstanding BU.
var ErrUnexpected = errors.New("binding acknowledgement answers no outstanding binding update")

// Reasons HandlePacket gives, besides the cache's ReasonMalformed,
// ReasonBadChecksum, ReasonAuthFailed and ReasonNoTimestamp.
const (
	ReasonNotOurs    = "not_our_home_address" // signalling for another home address
	ReasonUnexpected = "unexpected"           // an answer to no outstanding Binding Update
	ReasonRefused    = "refused"              // the home agent refused a Binding Update (or some of its BIDs)
)

// Error is what HandlePacket returns: why it did not act on a packet, or
// what the home agent refused, with a Reason for counters and log
// summaries.
type Error struct {
	Reason string
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Reason returns the Reason of an *Error in err's chain, "other" for
// another error, and "" for nil.
func Reason(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Reason
	}
	return "other"
}

// HandlePacket processes an IPv6 packet carrying a Mobility Header from the
// home agent (a BA, natively with a type 2 routing header or inside UDP).
func (r *UpdateList) HandlePacket(pkt []byte, now time.Time) error {
	r.Received++
	ignore := func(reason string, err error) error {
		r.Ignored++
		if r.IgnoredBy == nil {
			r.IgnoredBy = map[string]uint64{}
		}
		r.IgnoredBy[reason]++
		return &Error{Reason: reason, Err: err}
	}
	p, err := nemo.ParsePacket(pkt)
	if err != nil {
		return ignore(ReasonMalformed, err)
	}
	if p.PseudoDst() != r.cfg.HoA {
		return ignore(ReasonNotOurs, fmt.Errorf("signalling for %s, not our home address", p.PseudoDst()))
	}
	if !nemo.VerifyChecksum(p.MH, p.PseudoSrc(), p.PseudoDst()) {
		return ignore(ReasonBadChecksum, nemo.ErrChecksum)
	}
	if h, err := nemo.ParseHeader(p.MH); err == nil && h.Type == nemo.TypeRevocation {
		return r.handleBRI(&p, now, ignore)
	} else if err == nil && h.Type == nemo.TypeHASwitch {
		return r.handleSwitch(&p, now, ignore)
	}
	var ba nemo.BindingAck
	if err := nemo.Unmarshal(p.MH, &ba); err != nil {
		return ignore(ReasonMalformed, err)
	}
	// See nemo's package documentation for which addresses are covered.
	if err := r.auth.Verify(p.MH, &ba.Options, p.Dst, p.PseudoDst()); err != nil {
		// An answer we cannot authenticate changes nothing, but its status
		// tells the operator what is wrong (a key or a home address).
		return ignore(ReasonAuthFailed, fmt.Errorf("ignoring unauthenticated binding acknowledgement (status %d): %w", ba.Status, err))
	}
	if a, _ := ba.MNHA(); a.SPI != r.cfg.SPI {
		return ignore(ReasonAuthFailed, nemo.ErrAuth)
	}
	if !ba.HasTimestamp {
		return ignore(ReasonNoTimestamp, errors.New("binding acknowledgement without our timestamp"))
	}
	pd := r.find(&ba)
	if pd == nil {
		return ignore(ReasonUnexpected, ErrUnexpected)
	}
	r.Acked++
	if err := r.acknowledged(pd, &ba, now); err != nil {
		return &Error{Reason: ReasonRefused, Err: err}
	}
	return nil
}

func (r *UpdateList) countRejection(st uint8) {
	r.Rejected++
	if r.RejectedBy == nil {
		r.RejectedBy = map[uint8]uint64{}
	}
	r.RejectedBy[st]++
}

// answers reports whether a BA answers the last transmission of p. The BA
// echoes our timestamp (RFC 4285 §6), which is unique per transmission;
// with status 144 only its low half, and with status 135 it carries the
// home agent's sequence number instead of ours.
func answers(p *pending, ba *nemo.BindingAck) bool {
	if p == nil || p.attempts == 0 {
		return false
	}
	switch ba.Status {
	case nemo.StatusIDMismatch:
		return uint32(ba.Timestamp) == uint32(p.ts)
	case nemo.StatusSeqOutOfWindow:
		return ba.Timestamp == p.ts
	}
	return ba.Timestamp == p.ts && ba.Seq == p.seq
}

// find returns the outstanding BU a BA answers.
func (r *UpdateList) find(ba *nemo.BindingAck) *pending {
	for _, l := range r.links {
		if answers(l.reg, ba) {
			return l.reg
		}
	}
	if answers(r.dereg, ba) {
		return r.dereg
	}
	return r.haFind(ba)
}

func (r *UpdateList) acknowledged(pd *pending, ba *nemo.BindingAck, now time.Time) error {
	pd.answered = true
	if r.haAcked(pd, ba, now) {
		return nil
	}
	if pd.kind == kindDereg && (ba.Status == nemo.StatusSeqOutOfWindow || ba.Status == nemo.StatusIDMismatch) {
		// A registration sent after this de-registration got there first.
		// Sending it again, newer, would delete what that registration
		// made: keep only the BIDs whose uplinks are really gone.
		r.lost = slices.DeleteFunc(r.lost, func(b uint16) bool {
			for _, l := range r.links {
				if l.cfg.BID == b {
					return l.state != StateDown
				}
			}
			return false
		})
		if len(r.lost) == 0 && !r.shutdown {
			r.dereg = nil
			return nil
		}
	}
	switch ba.Status {
	case nemo.StatusSeqOutOfWindow:
		// Adopt the home agent's sequence number and send again at once.
		r.seq = ba.Seq
		pd.retryAt, pd.timeout = now, r.cfg.InitialTimeout
		return nil
	case nemo.StatusIDMismatch:
		// Our clock is off: the high half of the answer is the home
		// agent's time (RFC 4285 §6).
		ha := int64(ba.Timestamp>>32) - int64(pd.ts>>32)
		r.skew += time.Duration(ha) * time.Second
		r.cfg.Logf("clock differs from the home agent's by %ds: correcting", ha)
		pd.retryAt, pd.timeout = now, r.cfg.InitialTimeout
		return nil
	}
	if ba.Status >= 128 {
		r.countRejection(ba.Status)
		// Configuration errors (authentication, prefixes, unknown home
		// address) will not fix themselves: keep trying at the slowest rate.
		pd.timeout = r.cfg.MaxTimeout
		pd.retryAt = now.Add(r.cfg.MaxTimeout)
		return fmt.Errorf("home agent refused the binding update: status %d", ba.Status)
	}
	if ba.Flags&nemo.BAFlagR == 0 && pd.kind != kindDereg {
		r.countRejection(0)
		pd.retryAt = now.Add(r.cfg.MaxTimeout)
		return errors.New("home agent does not support mobile routers (no R flag in its answer)")
	}
	if pd.kind == kindDereg {
		r.dereg = nil
		r.lost = slices.DeleteFunc(r.lost, func(b uint16) bool { return slices.Contains(pd.bids, b) })
		return nil
	}
	// RFC 6275 §11.7.3: the lifetime counts from when the BU was sent.
	granted := nemo.LifetimeDuration(ba.Lifetime)
	if granted == 0 {
		return errors.New("home agent granted a zero lifetime")
	}
	r.noteFlows(ba)
	r.noteIPv4(ba)
	r.noteAccepted(now.Sub(pd.sentAt))
	var errs []error
	for _, j := range pd.links {
		if err := r.bound(j, pd, ba, granted, now); err != nil {
			errs = append(errs, err)
		}
	}
	r.negotiate(ba, now)
	return errors.Join(errs...)
}

// noteFlows records the home agent's answer for each flow binding and logs
// the refused ones when that changes.
func (r *UpdateList) noteFlows(ba *nemo.BindingAck) {
	if len(ba.FlowIDs) == 0 && len(r.cfg.Flows) == 0 {
		return
	}
	st := make(map[uint16]uint8, len(ba.FlowIDs))
	for _, f := range ba.FlowIDs {
		st[f.FID] = f.Status
		if f.Status != 0 && r.flowStatus[f.FID] != f.Status {
			r.cfg.Logf("home agent refused flow binding FID %d: status %d", f.FID, f.Status)
		}
	}
	r.flowStatus = st
}

// bound applies an accepting BA to uplink j's binding, by its per-BID
// status.
func (r *UpdateList) bound(j int, pd *pending, ba *nemo.BindingAck, granted time.Duration, now time.Time) error {
	l := r.links[j]
	if l.reg != pd {
		return nil // detached or superseded meanwhile
	}
	st := uint8(0)
	if i := ba.FindBID(l.cfg.BID); i >= 0 {
		st = ba.BIDs[i].Status
	} else if len(ba.BIDs) > 0 || ba.Status == nemo.StatusMCoANotComplete {
		st = nemo.StatusMCoAMalformed
	}
	if st >= 128 {
		r.countRejection(st)
		l.reg = nil
		if pd.kind == kindRefresh && j != pd.via {
			// The home agent lost this binding: register it again through
			// its own path.
			l.candidates, l.cand = r.candidates(l), 0
			if len(l.candidates) > 0 {
				r.startRegistration(j, now)
			}
			return fmt.Errorf("home agent refused the refresh of BID %d: status %d", l.cfg.BID, st)
		}
		l.reg = pd
		pd.timeout = r.cfg.MaxTimeout
		pd.retryAt = now.Add(r.cfg.MaxTimeout)
		return fmt.Errorf("home agent refused BID %d: status %d", l.cfg.BID, st)
	}
	was := l.state
	l.reg = nil
	l.state = StateRegistered
	r.Accepted++
	// Registered through this path: whatever de-registration of it was
	// pending (its path had died) is moot, and the path counts as heard.
	r.lost = slices.DeleteFunc(r.lost, func(b uint16) bool { return b == l.cfg.BID })
	if was != StateRegistered {
		r.pathRegistered(j, now)
	}
	if j == pd.via {
		if l.encap != pd.encap {
			r.gen++
		}
		l.cand, l.encap, l.coa = pd.cand, pd.encap, r.path(j, pd.encap).Src
		l.nat = ba.HasNATDetection && ba.NATDetection.Refresh != 0xffffffff && ba.NATDetection.Refresh != 0
	}
	l.expires = pd.sentAt.Add(granted)
	refresh := granted * 8 / 10
	if ba.HasRefreshAdvice {
		refresh = min(refresh, nemo.LifetimeDuration(ba.RefreshAdvice))
	}
	if l.nat {
		// Keep the NAT's mapping alive with the refreshes (RFC 5555 §6).
		// 0.9 s per second of keepalive: the largest one the option holds
		// (2^32-1 s) times 9 s would not fit a Duration.
		refresh = min(refresh, time.Duration(ba.NATDetection.Refresh)*(time.Second*9/10))
	}
	l.refreshAt = pd.sentAt.Add(refresh)
	if was != StateRegistered || pd.kind == kindRegister {
		l.since = now
		r.gen++
		r.cfg.Logf("uplink %s (BID %d) registered: care-of address %s over %s, lifetime %v", l.cfg.Name, l.cfg.BID, l.coa, l.encap, granted)
	}
	return nil
}
