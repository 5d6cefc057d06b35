package binding

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"nemod/nemo"
)

// The mobile router's home agents: a list in order of preference (the
// first is the one registered with at start), a failover to the next when
// the one in use answers nothing for HATimeout, a return to the first
// when it answers again, and the Home Agent Switch (RFC 5142 §6) that
// moves the router when its home agent asks.
//
// Moving from one home agent to another registers every uplink with the
// new one first and de-registers from the old one once a registration
// there is accepted (make before break): the mobile network's traffic
// follows the first accepted binding. A home agent is silent when a
// Binding Update to it went unanswered and nothing came from it over any
// uplink since (the data plane's liveness clock: probes, traffic), so
// that one broken uplink does not move the router. While away from the
// first home agent after such a failover, the router asks it, every
// HATimeout, with a de-registration that changes nothing there (it holds
// no binding of ours), whether it answers again.

// A path its probes found dead is probed at the idle rate until it
// answers, and registered again then (paths.go), with no back-off: the
// path, or its home agent, was alive a moment ago, and in a cluster
// another member answers at the same address within a lease (package
// cluster: 2 to 3.5 s with the default lease). Those probes count as
// Binding Updates do for the silence of the home agent (sentToHA), so
// that a home agent gone on every path is left after ha_timeout.

// HomeAgentAddr is one home agent: its IPv6 address and, for IPv4-only
// uplinks, its IPv4 address (either may be invalid).
type HomeAgentAddr struct{ Address, AddressV4 netip.Addr }

// Why the router uses the home agent it uses (HomeAgentStatus.Reason).
const (
	HAReasonConfigured = "configured"         // the first of the list
	HAReasonTimeout    = "ha_timeout"         // the one before answered nothing for ha_timeout
	HAReasonSwitch     = "home_agent_switch"  // the one before sent a Home Agent Switch
	HAReasonReturned   = "preferred_answered" // the first answers again
)

// ReasonSwitchTaken counts Home Agent Switch messages acted on in
// IgnoredBy's neighbours: it is not a reason to ignore; the refused ones
// are counted by their reasons (auth_failed, replayed, ...).

// HomeAgentStatus says which home agent the router uses and why.
type HomeAgentStatus struct {
	Current HomeAgentAddr
	Index   int // in the configured list; -1 for an address a switch named
	Reason  string
	From    netip.Addr // the one before, for Reason other than configured
	Since   time.Time
	// Failovers, Switches and Returns count the moves by their reason.
	Failovers, Switches, Returns uint64
	// SilentSince is when the home agent in use left a Binding Update
	// unanswered, zero while it answers.
	SilentSince time.Time
}

type haState struct {
	list   []HomeAgentAddr
	cur    int
	extra  HomeAgentAddr // cur == -1
	reason string
	from   netip.Addr
	since  time.Time
	silent time.Time
	// back: after a failover, the first home agent is asked every
	// HATimeout whether it answers again (probe).
	back      bool
	nextProbe time.Time
	probe     *pending
	// leaving is the de-registration from the home agent left, sent once
	// a registration with the new one is accepted (or at once when the
	// old one is silent).
	leaving   *pending
	leaveHA   HomeAgentAddr
	leaveWait bool
	lastTS    uint64 // the newest Home Agent Switch timestamp taken

	failovers, switches, returns uint64
}

func (r *UpdateList) haInit() {
	r.ha.list = slices.Clone(r.cfg.HomeAgents)
	if len(r.ha.list) == 0 {
		r.ha.list = []HomeAgentAddr{{r.cfg.HA, r.cfg.HAv4}}
	}
	r.cfg.HA, r.cfg.HAv4 = r.ha.list[0].Address, r.ha.list[0].AddressV4
	r.ha.reason = HAReasonConfigured
}

// HomeAgent reports the home agent in use and why.
func (r *UpdateList) HomeAgent() HomeAgentStatus {
	return HomeAgentStatus{Current: HomeAgentAddr{r.cfg.HA, r.cfg.HAv4}, Index: r.ha.cur, Reason: r.ha.reason, From: r.ha.from,
		Since: r.ha.since, Failovers: r.ha.failovers, Switches: r.ha.switches, Returns: r.ha.returns, SilentSince: r.ha.silent}
}

// HomeAgents is every home agent the router may hear from: the list and
// an address a switch named.
func (r *UpdateList) HomeAgents() []HomeAgentAddr {
	out := slices.Clone(r.ha.list)
	if r.ha.cur < 0 {
		out = append(out, r.ha.extra)
	}
	return out
}

// sentToHA notes a Binding Update sent to the home agent in use: it is
// silent from now on until it answers.
func (r *UpdateList) sentToHA(now time.Time) {
	if r.ha.silent.IsZero() {
		r.ha.silent = now
	}
}

// switchTo moves the router to home agent h (index i in the list, -1 for
// another).
func (r *UpdateList) switchTo(i int, h HomeAgentAddr, reason string, now time.Time) {
	old := HomeAgentAddr{r.cfg.HA, r.cfg.HAv4}
	r.cfg.Logf("home agent %s: %s; registering with %s", addrOr(old), reason, addrOr(h))
	r.ha.cur, r.ha.reason, r.ha.from, r.ha.since, r.ha.silent = i, reason, old.Address, now, time.Time{}
	if i < 0 {
		r.ha.extra = h
	}
	switch reason {
	case HAReasonTimeout:
		r.ha.failovers++
	case HAReasonSwitch:
		r.ha.switches++
	case HAReasonReturned:
		r.ha.returns++
	}
	r.ha.back = reason == HAReasonTimeout && i != 0
	r.ha.nextProbe = now.Add(r.cfg.HATimeout)
	r.ha.probe = nil
	r.cfg.HA, r.cfg.HAv4 = h.Address, h.AddressV4
	// What the old one agreed to (offer.go) is the new one's to say.
	r.peerFast = false
	// What the old one holds goes with the de-registration below.
	r.dereg, r.lost = nil, nil
	registered := false
	for j, l := range r.links {
		if l.state == StateRegistered {
			registered = true
		}
		if l.state == StateDown || l.state == StateRevoked {
			continue
		}
		if l.reg != nil {
			r.detachOthers(l.reg)
		}
		l.reg = nil
		l.path.rec = nil // its probes were the old one's (paths.go)
		l.path.watch.Reset()
		if l.candidates = r.candidates(l); len(l.candidates) == 0 {
			l.state, l.coa, l.encap = StateDown, netip.Addr{}, nemo.EncapNone
			r.gen++
			continue
		}
		l.cand = 0
		r.registerOpts(j, now, false, r.cfg.FirstTimeout, 0)
	}
	r.ha.leaving = nil
	if registered && old.Address != h.Address {
		r.ha.leaveHA = old
		r.ha.leaving = &pending{kind: kindDereg, timeout: r.cfg.InitialTimeout, retryAt: now}
		// A home agent that asked us to go still forwards until we
		// have a binding elsewhere; a silent one gets it at once.
		r.ha.leaveWait = reason != HAReasonTimeout
	}
	r.gen++
}

func addrOr(h HomeAgentAddr) string {
	if h.Address.IsValid() {
		return h.Address.String()
	}
	return h.AddressV4.String()
}

// pollHA moves to the next home agent when the one in use is silent, and
// sends the de-registration from the one left and the probes of the
// first.
func (r *UpdateList) pollHA(now time.Time) []Send {
	if r.shutdown {
		return nil
	}
	if r.cfg.HATimeout > 0 && len(r.ha.list) > 1 && !r.ha.silent.IsZero() && !now.Before(r.ha.silent.Add(r.cfg.HATimeout)) {
		heard := false
		for i, l := range r.links {
			if l.state != StateDown && r.lastHeard(i).After(r.ha.silent) {
				heard = true
			}
		}
		if heard {
			r.ha.silent = time.Time{}
		} else {
			next := (r.ha.cur + 1) % len(r.ha.list)
			r.switchTo(next, r.ha.list[next], HAReasonTimeout, now)
		}
	}
	var out []Send
	if p := r.ha.leaving; p != nil && (!r.ha.leaveWait || r.best() >= 0) && !now.Before(p.retryAt) {
		if p.attempts >= r.cfg.DeregAttempts {
			r.ha.leaving = nil
		} else if s, ok := r.sendTo(r.ha.leaveHA, p, now); ok {
			out = append(out, s)
		}
	}
	if r.ha.back && r.ha.cur != 0 && !now.Before(r.ha.nextProbe) {
		r.ha.nextProbe = now.Add(r.cfg.HATimeout)
		r.ha.probe = &pending{kind: kindDereg, timeout: r.cfg.HATimeout}
		if s, ok := r.sendTo(r.ha.list[0], r.ha.probe, now); ok {
			out = append(out, s)
		}
	}
	return out
}

// haDeadline is when pollHA next has something to do, or zero.
func (r *UpdateList) haDeadline() time.Time {
	var t time.Time
	earlier := func(x time.Time) {
		if !x.IsZero() && (t.IsZero() || x.Before(t)) {
			t = x
		}
	}
	if r.cfg.HATimeout > 0 && len(r.ha.list) > 1 && !r.ha.silent.IsZero() {
		earlier(r.ha.silent.Add(r.cfg.HATimeout))
	}
	if p := r.ha.leaving; p != nil && (!r.ha.leaveWait || r.best() >= 0) {
		earlier(p.retryAt)
	}
	if r.ha.back && r.ha.cur != 0 {
		earlier(r.ha.nextProbe)
	}
	return t
}

// sendTo sends a de-registration without BIDs (every binding there) to
// home agent h through the preferred registered uplink, in its
// encapsulation where h has an address for it.
func (r *UpdateList) sendTo(h HomeAgentAddr, p *pending, now time.Time) (Send, bool) {
	via := r.best()
	if via < 0 {
		for i, l := range r.links {
			if l.state != StateDown && l.state != StateRevoked && len(l.candidates) > 0 {
				via = i
				break
			}
		}
	}
	if via < 0 {
		return Send{}, false
	}
	l := r.links[via]
	enc := l.encap
	if enc == nemo.EncapNone && len(l.candidates) > 0 {
		enc = l.candidates[0]
	}
	path := Path{Uplink: via, Encap: enc, Src: l.st.IPv6, Dst: h.Address, HA: h.Address}
	if enc == nemo.EncapUDP4 {
		path.Src, path.Dst = l.st.IPv4, h.AddressV4
	}
	if !path.Dst.IsValid() || !path.Src.IsValid() || !h.Address.IsValid() {
		return Send{}, false
	}
	p.attempts++
	p.via, p.encap = via, enc
	p.retryAt = now.Add(p.timeout)
	p.timeout = min(2*p.timeout, r.cfg.MaxTimeout)
	bu := r.newBU(now, p)
	p.bids = p.bids[:0]
	s, err := r.encode(bu, path, p)
	if err != nil {
		return Send{}, false
	}
	return s, true
}

// haFind returns the list's pending de-registration a BA answers.
func (r *UpdateList) haFind(ba *nemo.BindingAck) *pending {
	for _, p := range []*pending{r.ha.leaving, r.ha.probe} {
		if answers(p, ba) {
			return p
		}
	}
	return nil
}

// haAcked takes the answer to the leaving de-registration or to a probe
// of the first home agent; false for any other pending BU, which also
// shows the home agent in use answers.
func (r *UpdateList) haAcked(pd *pending, ba *nemo.BindingAck, now time.Time) bool {
	switch {
	case pd == r.ha.leaving && pd != nil:
		if ba.Status == nemo.StatusSeqOutOfWindow {
			r.seq = ba.Seq
			pd.retryAt = now
			return true
		}
		r.ha.leaving = nil
		return true
	case pd == r.ha.probe && pd != nil:
		r.ha.probe = nil
		if ba.Status < 128 || ba.Status == nemo.StatusSeqOutOfWindow {
			if ba.Status == nemo.StatusSeqOutOfWindow {
				r.seq = ba.Seq
			}
			r.switchTo(0, r.ha.list[0], HAReasonReturned, now)
		}
		return true
	}
	r.ha.silent = time.Time{}
	return false
}

// handleSwitch takes a Home Agent Switch (p's Mobility Header): checked
// like a Binding Acknowledgement (RFC 4285 with the router's key, a fresh
// timestamp, the router's NAI when it names one); the router then moves
// to the first address it names.
func (r *UpdateList) handleSwitch(p *nemo.Packet, now time.Time, ignore func(string, error) error) error {
	var m nemo.HomeAgentSwitch
	if err := nemo.Unmarshal(p.MH, &m); err != nil {
		return ignore(ReasonMalformed, err)
	}
	if err := r.auth.Verify(p.MH, &m.Options, p.Dst, p.PseudoDst()); err != nil {
		return ignore(ReasonAuthFailed, fmt.Errorf("ignoring unauthenticated home agent switch: %w", err))
	}
	if a, _ := m.MNHA(); a.SPI != r.cfg.SPI {
		return ignore(ReasonAuthFailed, nemo.ErrAuth)
	}
	if !m.HasTimestamp {
		return ignore(ReasonNoTimestamp, errors.New("home agent switch without a timestamp"))
	}
	if m.HasMNID && (m.MNIDSubtype != nemo.MNIDSubtypeNAI || string(m.MNID) != r.cfg.NAI) {
		return ignore(ReasonNotOurs, fmt.Errorf("home agent switch for %q", m.MNID))
	}
	if err := nemo.CheckTimestamp(m.Timestamp, now.Add(r.skew), r.cfg.ReplayWindow, r.ha.lastTS); err != nil {
		return ignore(ReasonReplayed, fmt.Errorf("home agent switch: %w", err))
	}
	if len(m.Addresses) == 0 {
		// Home agent discovery (RFC 5142 §6.1) is not done: the list is
		// configured.
		return ignore(ReasonUnexpected, errors.New("home agent switch without addresses"))
	}
	r.ha.lastTS = m.Timestamp
	to := m.Addresses[0]
	if to == r.cfg.HA {
		// Already there (a retransmission crossed our registration).
		r.Switched++
		return nil
	}
	r.Switched++
	i := slices.IndexFunc(r.ha.list, func(h HomeAgentAddr) bool { return h.Address == to })
	h := HomeAgentAddr{Address: to}
	if i >= 0 {
		h = r.ha.list[i]
	}
	r.switchTo(i, h, HAReasonSwitch, now)
	return nil
}

// SetHATimeout changes ha_timeout (a configuration reload; 0: never move).
func (r *UpdateList) SetHATimeout(d time.Duration) { r.cfg.HATimeout = d }
