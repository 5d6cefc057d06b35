package dhcpv6pd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"
)

// State is the requesting router's state.
type State uint8

const (
	Init State = iota // not started, or stopped after a Release
	Soliciting
	Requesting
	Bound
	Renewing
	Rebinding
	Releasing
)

func (s State) String() string {
	switch s {
	case Init:
		return "init"
	case Soliciting:
		return "soliciting"
	case Requesting:
		return "requesting"
	case Bound:
		return "bound"
	case Renewing:
		return "renewing"
	case Rebinding:
		return "rebinding"
	case Releasing:
		return "releasing"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Datagram is a UDP payload to send, and where to.
type Datagram struct {
	To   netip.AddrPort
	Data []byte
}

// Output is what a call into a state machine asks of its shell: datagrams
// to send, prefix events to act on, and whether the state to persist
// changed (then write the lease or lease table out).
type Output struct {
	Send         []Datagram
	Events       []Event
	StateChanged bool
}

func (o *Output) add(p Output) {
	o.Send = append(o.Send, p.Send...)
	o.Events = append(o.Events, p.Events...)
	o.StateChanged = o.StateChanged || p.StateChanged
}

// ClientConfig is the requesting router's configuration.
type ClientConfig struct {
	// HoA is the router's home address: the link-address and peer-address
	// of the co-located relay's Relay-forward (RFC 6276 §3.1.2).
	HoA netip.Addr
	// Server is where the relay sends: the home agent, port 547.
	Server netip.AddrPort
	// DUID is the router's stable DUID (see NewDUIDUUID); IAID names its
	// one IA_PD.
	DUID DUID
	IAID [4]byte
	// PrefixLen is the prefix length hint (option reqprefix); 0 is "auto":
	// no hint, the server chooses.
	PrefixLen int
	// RapidCommit asks for a two-message exchange (RFC 8415 §18.2.1): a
	// server that agrees answers the Solicit with a Reply.
	RapidCommit bool
}

// ClientCounters count what the client did.
type ClientCounters struct {
	Sent        uint64 `json:"sent"`
	Retransmits uint64 `json:"retransmits"`
	Received    uint64 `json:"received"`
	Malformed   uint64 `json:"malformed"`
	Unexpected  uint64 `json:"unexpected"` // well-formed, but not for us or not now
	Failures    uint64 `json:"failures"`   // exchanges given up
}

// minT1 is the shortest renewal time the client accepts: a server that
// offers T1 0 with preferred lifetime 0 must not make it renew in a loop.
const minT1 = 60 * time.Second

// Client is the requesting router (RFC 8415 §18.2, RFC 3633) with its
// co-located relay agent (RFC 6276 §3.1). It does no I/O: the shell sends
// the datagrams of each Output from [HoA]:547 through the tunnel, and
// hands received ones (from the home agent, port 547) to Receive. It is
// not safe for concurrent use.
type Client struct {
	cfg   ClientConfig
	r     *rand.Rand
	state State
	lease Lease

	xid     [3]byte
	rt      retrans
	pending Msg       // the message being (re)transmitted
	delayTo time.Time // first Solicit held back until then (SOL_MAX_DELAY)

	// Advertises collected during the first RT of a Solicit.
	best     *Msg
	firstEnd time.Time
	// solMaxRT is the server's SOL_MAX_RT option (RFC 8415 §21.24), zero
	// until one came.
	solMaxRT time.Duration

	ClientCounters
}

// NewClient returns a client in state Init. stored is the lease read back
// at start (nil if none); its DUID must be cfg.DUID: a DUID is for life.
// r drives the random delays and transaction IDs; tests pass a seeded one.
func NewClient(cfg ClientConfig, stored *Lease, r *rand.Rand) (*Client, error) {
	if !cfg.HoA.Is6() || cfg.HoA.Is4In6() || !cfg.Server.Addr().Is6() {
		return nil, errors.New("dhcpv6pd: client needs IPv6 home and server addresses")
	}
	if err := checkDUID(cfg.DUID); err != nil {
		return nil, err
	}
	if cfg.PrefixLen < 0 || cfg.PrefixLen > 128 {
		return nil, fmt.Errorf("dhcpv6pd: prefix length hint %d", cfg.PrefixLen)
	}
	c := &Client{cfg: cfg, r: r}
	c.lease = Lease{DUID: slices.Clone(cfg.DUID), IAID: cfg.IAID}
	if stored != nil {
		if !stored.DUID.Equal(cfg.DUID) || stored.IAID != cfg.IAID {
			return nil, errors.New("dhcpv6pd: stored lease is for another DUID or IAID")
		}
		c.lease = *stored.Clone()
	}
	return c, nil
}

// State returns the current state.
func (c *Client) State() State { return c.state }

// Lease returns a copy of the lease to persist.
func (c *Client) Lease() *Lease { return c.lease.Clone() }

// Prefixes returns the prefixes held and valid at now.
func (c *Client) Prefixes(now time.Time) []Held { return c.lease.Valid(now) }

// Start begins prefix delegation: call it once the router's first binding
// is registered (RFC 6276 §3.1). With prefixes still valid from a stored
// lease it Rebinds them, so that they survive a restart; otherwise it
// Solicits.
func (c *Client) Start(now time.Time) Output {
	if c.state != Init {
		return Output{}
	}
	var out Output
	out.add(c.expire(now))
	if len(c.lease.Prefixes) > 0 {
		// The prefixes are still ours (events, so that the data plane and
		// the RA use them at once), and a Rebind asks any server to
		// confirm them.
		for _, h := range c.lease.Prefixes {
			out.Events = append(out.Events, c.event(Delegated, h))
		}
		out.add(c.startRebind(now))
		return out
	}
	out.add(c.startSolicit(now, true))
	return out
}

// Release gives every prefix back (RFC 8415 §18.2.7) and stops: the
// prefixes are unusable at once (Released events), the Release is
// retransmitted until answered or REL_MAX_RC times. Use it when prefix
// delegation is switched off or the router leaves for good; a plain
// shutdown keeps the lease so that the next start Rebinds it.
func (c *Client) Release(now time.Time) Output {
	var out Output
	held := c.lease.Prefixes
	if c.state == Init || c.state == Releasing || len(held) == 0 || c.lease.ServerID == nil {
		c.state = Init
		return out
	}
	for _, h := range held {
		out.Events = append(out.Events, c.event(Released, h))
	}
	m := c.newMsg(Release, now)
	m.ServerID = c.lease.ServerID
	m.IAPDs = []IAPD{{IAID: c.cfg.IAID, Prefixes: heldPrefixes(held, now, false)}}
	c.lease.Hint = held[0].Prefix
	c.lease.Prefixes, c.lease.T1, c.lease.T2 = nil, time.Time{}, time.Time{}
	c.state = Releasing
	out.StateChanged = true
	out.add(c.transmit(m, relParams, time.Time{}, now))
	return out
}

// Next returns when Tick must next be called; zero if never.
func (c *Client) Next() time.Time {
	var t time.Time
	sooner := func(u time.Time) {
		if !u.IsZero() && (t.IsZero() || u.Before(t)) {
			t = u
		}
	}
	switch c.state {
	case Init:
		return time.Time{}
	case Soliciting:
		if !c.delayTo.IsZero() {
			sooner(c.delayTo)
		} else {
			sooner(c.rt.wake())
		}
	case Requesting, Renewing, Rebinding, Releasing:
		sooner(c.rt.wake())
	}
	if c.state == Bound {
		sooner(c.lease.T1)
	}
	if c.state == Bound || c.state == Renewing {
		sooner(c.lease.T2)
	}
	if c.state != Releasing {
		for _, h := range c.lease.Prefixes {
			sooner(h.ValidUntil)
		}
	}
	return t
}

// Tick runs the timers due at now.
func (c *Client) Tick(now time.Time) Output {
	var out Output
	if c.state == Init {
		return out
	}
	if c.state != Releasing {
		out.add(c.expire(now))
		if c.state != Soliciting && c.state != Requesting && len(c.lease.Prefixes) == 0 {
			// Every prefix ran out: start over (RFC 8415 §18.2.5).
			out.add(c.startSolicit(now, false))
			return out
		}
	}
	switch c.state {
	case Soliciting:
		if !c.delayTo.IsZero() {
			if now.Before(c.delayTo) {
				return out
			}
			c.delayTo = time.Time{}
			out.add(c.transmit(c.pending, c.solParams(), time.Time{}, now))
			c.firstEnd = c.rt.next
			return out
		}
		if now.Before(c.rt.next) {
			return out
		}
		if c.best != nil {
			out.add(c.startRequest(c.best, now))
			return out
		}
		out.add(c.retransmit(now))
	case Requesting:
		if c.rt.failed(now) {
			c.Failures++
			out.add(c.startSolicit(now, true))
			return out
		}
		if !now.Before(c.rt.next) {
			out.add(c.retransmit(now))
		}
	case Bound:
		switch {
		case !c.lease.T2.IsZero() && !now.Before(c.lease.T2):
			out.add(c.startRebind(now))
		case !c.lease.T1.IsZero() && !now.Before(c.lease.T1):
			out.add(c.startRenew(now))
		}
	case Renewing:
		if c.rt.failed(now) || (!c.lease.T2.IsZero() && !now.Before(c.lease.T2)) {
			// No answer from our server until T2: ask any server.
			c.Failures++
			out.add(c.startRebind(now))
			return out
		}
		if !now.Before(c.rt.next) {
			out.add(c.retransmit(now))
		}
	case Rebinding:
		// MRD is the end of the last valid lifetime: expire() above
		// starts over when that comes.
		if !now.Before(c.rt.next) {
			out.add(c.retransmit(now))
		}
	case Releasing:
		if c.rt.failed(now) {
			c.state = Init
			return out
		}
		if !now.Before(c.rt.next) {
			out.add(c.retransmit(now))
		}
	}
	return out
}

// expire drops the prefixes whose valid lifetime ended by now.
func (c *Client) expire(now time.Time) Output {
	var out Output
	keep := c.lease.Prefixes[:0]
	for _, h := range c.lease.Prefixes {
		if now.Before(h.ValidUntil) {
			keep = append(keep, h)
			continue
		}
		out.Events = append(out.Events, c.event(Expired, h))
		c.lease.Hint = h.Prefix
		out.StateChanged = true
	}
	c.lease.Prefixes = keep
	if len(keep) == 0 && out.StateChanged {
		c.lease.T1, c.lease.T2, c.lease.ServerID = time.Time{}, time.Time{}, nil
	}
	return out
}

func (c *Client) event(k EventKind, h Held) Event {
	e := Event{Kind: k, Router: c.cfg.HoA, Prefix: h.Prefix}
	if k == Delegated {
		e.PreferredUntil, e.ValidUntil = h.PreferredUntil, h.ValidUntil
	}
	return e
}

func (c *Client) newXID() {
	v := c.r.Uint32()
	c.xid = [3]byte{byte(v >> 16), byte(v >> 8), byte(v)}
}

// newMsg starts a new exchange's message with a fresh transaction ID.
func (c *Client) newMsg(t MessageType, now time.Time) Msg {
	c.newXID()
	m := Msg{Type: t, XID: c.xid, ClientID: c.lease.DUID, HasElapsed: true}
	if t != Release {
		// SOL_MAX_RT is requested as RFC 8415 §18.2 requires; DNS
		// servers so that the LAN's RA can carry them.
		m.ORO = []uint16{OptDNS, OptSolMaxRT}
	}
	return m
}

// heldPrefixes lists the held prefixes for a Renew, Rebind or Release.
// RFC 8415 §18.2.4 lets the client send lifetimes 0; it sends what is left
// so that a Rebind after a restart tells a server with no record what the
// lease was.
func heldPrefixes(held []Held, now time.Time, lifetimes bool) []Prefix {
	out := make([]Prefix, 0, len(held))
	for _, h := range held {
		p := Prefix{Prefix: h.Prefix}
		if lifetimes {
			p.Preferred, p.Valid = left(now, h.PreferredUntil), left(now, h.ValidUntil)
		}
		out = append(out, p)
	}
	return out
}

func (c *Client) startSolicit(now time.Time, delay bool) Output {
	c.state = Soliciting
	c.best = nil
	m := c.newMsg(Solicit, now)
	ia := IAPD{IAID: c.cfg.IAID}
	switch {
	case c.lease.Hint.IsValid():
		// The old prefix as a hint: a server that still has it free
		// gives the same one back and the LAN keeps its addresses.
		ia.Prefixes = []Prefix{{Prefix: c.lease.Hint}}
	case c.cfg.PrefixLen > 0:
		ia.Prefixes = []Prefix{{Prefix: netip.PrefixFrom(netip.IPv6Unspecified(), c.cfg.PrefixLen)}}
	}
	m.IAPDs = []IAPD{ia}
	m.RapidCommit = c.cfg.RapidCommit
	c.pending = m
	if delay {
		c.delayTo = now.Add(time.Duration(c.r.Int64N(int64(solMaxDelay))))
		return Output{}
	}
	c.delayTo = time.Time{}
	out := c.transmit(m, c.solParams(), time.Time{}, now)
	c.firstEnd = c.rt.next
	return out
}

func (c *Client) solParams() params {
	p := solParams
	if c.solMaxRT != 0 {
		p.MRT = c.solMaxRT
	}
	return p
}

func (c *Client) startRequest(adv *Msg, now time.Time) Output {
	c.state = Requesting
	c.best = nil
	m := c.newMsg(Request, now)
	m.ServerID = adv.ServerID
	ia := *c.ourIA(adv)
	ia.T1, ia.T2, ia.Status = 0, 0, nil
	ia.Prefixes = usable(ia.Prefixes)
	m.IAPDs = []IAPD{ia}
	return c.transmit(m, reqParams, time.Time{}, now)
}

func (c *Client) startRenew(now time.Time) Output {
	c.state = Renewing
	m := c.newMsg(Renew, now)
	m.ServerID = c.lease.ServerID
	m.IAPDs = []IAPD{{IAID: c.cfg.IAID, Prefixes: heldPrefixes(c.lease.Prefixes, now, false)}}
	return c.transmit(m, renParams, c.lease.T2, now)
}

func (c *Client) startRebind(now time.Time) Output {
	c.state = Rebinding
	m := c.newMsg(Rebind, now)
	m.IAPDs = []IAPD{{IAID: c.cfg.IAID, Prefixes: heldPrefixes(c.lease.Prefixes, now, true)}}
	return c.transmit(m, rebParams, time.Time{}, now)
}

// transmit sends m as the first message of an exchange.
func (c *Client) transmit(m Msg, p params, deadline time.Time, now time.Time) Output {
	c.rt.begin(p, now, deadline, c.r)
	c.pending = m
	return Output{Send: []Datagram{c.wrap(&m, now)}}
}

func (c *Client) retransmit(now time.Time) Output {
	c.rt.again(now, c.r)
	c.Retransmits++
	if c.state == Rebinding {
		// RFC 8415 §15: lifetimes in a retransmission are brought up to
		// date.
		c.pending.IAPDs[0].Prefixes = heldPrefixes(c.lease.Prefixes, now, true)
	}
	return Output{Send: []Datagram{c.wrap(&c.pending, now)}}
}

// wrap puts m inside the co-located relay's Relay-forward (RFC 6276
// §3.1.2). No Interface-Id: the link-address, the home address, already
// names the one link the relay serves (RFC 8415 §19.1.1 wants it only
// when the link-address does not).
func (c *Client) wrap(m *Msg, now time.Time) Datagram {
	m.Elapsed = c.rt.elapsed(now)
	r := Relay{Type: RelayForw, HopCount: 1, LinkAddr: c.cfg.HoA, PeerAddr: c.cfg.HoA, Inner: m.Marshal()}
	c.Sent++
	return Datagram{To: c.cfg.Server, Data: r.Marshal()}
}

// ourIA returns m's IA_PD with our IAID, or nil.
func (c *Client) ourIA(m *Msg) *IAPD {
	for i := range m.IAPDs {
		if m.IAPDs[i].IAID == c.cfg.IAID {
			return &m.IAPDs[i]
		}
	}
	return nil
}

// usable keeps the prefixes a client may use (RFC 8415 §21.22: preferred
// must not exceed valid; a lifetime 0 prefix is being taken back).
func usable(ps []Prefix) []Prefix {
	var out []Prefix
	for _, p := range ps {
		if p.Prefix.IsValid() && p.Prefix.Bits() > 0 && p.Valid > 0 && p.Preferred <= p.Valid {
			out = append(out, p)
		}
	}
	return out
}

// Errors of Receive: the datagram was dropped and nothing changed.
var (
	ErrWrongSource = errors.New("dhcpv6pd: datagram not from the server address")
	ErrNotOurs     = errors.New("dhcpv6pd: message for another relay, client or transaction")
)

// Receive takes a datagram from the home agent: a Relay-reply for the
// co-located relay. A datagram that is malformed, not for this client or
// not expected in the current state changes nothing and returns an error.
func (c *Client) Receive(b []byte, from netip.AddrPort, now time.Time) (Output, error) {
	c.Received++
	if from.Addr() != c.cfg.Server.Addr() {
		c.Unexpected++
		return Output{}, ErrWrongSource
	}
	r, err := ParseRelay(b)
	if err != nil {
		c.Malformed++
		return Output{}, err
	}
	if r.Type != RelayRepl || r.LinkAddr != c.cfg.HoA || r.PeerAddr != c.cfg.HoA {
		c.Unexpected++
		return Output{}, ErrNotOurs
	}
	m, err := ParseMsg(r.Inner)
	if err != nil {
		c.Malformed++
		return Output{}, err
	}
	if m.XID != c.xid || !m.ClientID.Equal(c.lease.DUID) || m.ServerID == nil {
		c.Unexpected++
		return Output{}, ErrNotOurs
	}
	// RFC 8415 §18.2.9, §18.2.10: SOL_MAX_RT is taken from any Advertise
	// or Reply, even one otherwise ignored.
	for _, o := range m.Other {
		if o.Code == OptSolMaxRT && len(o.Data) == 4 {
			if v := binary.BigEndian.Uint32(o.Data); v >= 60 && v <= 86400 {
				c.solMaxRT = time.Duration(v) * time.Second
				if c.state == Soliciting {
					c.rt.p.MRT = c.solMaxRT // the Solicits under way too
				}
			}
		}
	}
	out, err := c.handle(m, now)
	if err != nil {
		c.Unexpected++
	}
	return out, err
}

func (c *Client) handle(m *Msg, now time.Time) (Output, error) {
	switch {
	case c.state == Soliciting && !c.delayTo.IsZero():
		return Output{}, ErrUnexpected // nothing sent yet
	case c.state == Soliciting && m.Type == Advertise:
		ia := c.ourIA(m)
		if ia == nil || len(usable(ia.Prefixes)) == 0 || (m.Status != nil && m.Status.Code != StatusSuccess) {
			// RFC 8415 §18.2.9: an Advertise without prefixes is ignored.
			return Output{}, fmt.Errorf("%w: Advertise without a usable prefix", ErrUnexpected)
		}
		if c.best == nil || m.Preference > c.best.Preference {
			c.best = m
		}
		// Preference 255 means "take me now"; after the first RT the
		// first acceptable Advertise is taken (RFC 8415 §18.2.1).
		if m.Preference == 255 || !now.Before(c.firstEnd) {
			return c.startRequest(c.best, now), nil
		}
		return Output{}, nil
	case c.state == Soliciting && m.Type == Reply:
		if !c.cfg.RapidCommit || !m.RapidCommit {
			return Output{}, fmt.Errorf("%w: Reply to a Solicit without Rapid Commit", ErrUnexpected)
		}
		return c.bind(m, now)
	case m.Type != Reply:
		return Output{}, fmt.Errorf("%w: %v in state %v", ErrUnexpected, m.Type, c.state)
	case c.state == Requesting || c.state == Renewing:
		if !m.ServerID.Equal(c.pending.ServerID) {
			return Output{}, fmt.Errorf("%w: Reply from another server", ErrNotOurs)
		}
		return c.bind(m, now)
	case c.state == Rebinding:
		return c.bind(m, now)
	case c.state == Releasing:
		// Any Reply ends the Release (RFC 8415 §18.2.10.2).
		c.state = Init
		return Output{}, nil
	}
	return Output{}, fmt.Errorf("%w: Reply in state %v", ErrUnexpected, c.state)
}

// bind applies a Reply to a Request, Renew, Rebind or rapid Solicit (RFC
// 8415 §18.2.10.1).
func (c *Client) bind(m *Msg, now time.Time) (Output, error) {
	if m.Status != nil {
		switch m.Status.Code {
		case StatusSuccess:
		case StatusNotOnLink:
			if c.state == Requesting {
				return c.startSolicit(now, true), nil
			}
			return Output{}, fmt.Errorf("%w: NotOnLink", ErrUnexpected)
		default:
			// UnspecFail, UseMulticast and unknown codes: the
			// retransmission schedule goes on, which limits the rate.
			return Output{}, fmt.Errorf("%w: status %d", ErrUnexpected, m.Status.Code)
		}
	}
	ia := c.ourIA(m)
	if ia != nil && ia.T2 != 0 && ia.T1 > ia.T2 {
		ia = nil // RFC 8415 §21.21: the client discards such an IA_PD
	}
	if ia == nil {
		return Output{}, fmt.Errorf("%w: Reply without our IA_PD", ErrUnexpected)
	}
	if ia.Status != nil && ia.Status.Code != StatusSuccess {
		switch {
		case ia.Status.Code == StatusNoBinding && c.state == Renewing:
			// The server lost our binding: Request it again from the
			// same server (RFC 8415 §18.2.10.1).
			adv := &Msg{ServerID: m.ServerID, IAPDs: []IAPD{{IAID: c.cfg.IAID, Prefixes: heldPrefixes(c.lease.Prefixes, now, true)}}}
			return c.startRequest(adv, now), nil
		case ia.Status.Code == StatusNoBinding && c.state == Rebinding:
			// No server knows the binding: start over, asking for the
			// same prefix.
			return c.startSolicit(now, true), nil
		case c.state == Requesting || c.state == Soliciting:
			if c.state == Soliciting {
				return Output{}, fmt.Errorf("%w: rapid Reply with status %d", ErrUnexpected, ia.Status.Code)
			}
			return c.startSolicit(now, true), nil
		}
		return Output{}, fmt.Errorf("%w: IA_PD status %d", ErrUnexpected, ia.Status.Code)
	}
	var out Output
	for _, p := range ia.Prefixes {
		if !p.Prefix.IsValid() || p.Prefix.Bits() == 0 || p.Preferred > p.Valid {
			continue
		}
		p.Prefix = p.Prefix.Masked()
		i := slices.IndexFunc(c.lease.Prefixes, func(h Held) bool { return h.Prefix == p.Prefix })
		if p.Valid == 0 {
			if i >= 0 {
				out.Events = append(out.Events, c.event(Released, c.lease.Prefixes[i]))
				c.lease.Prefixes = slices.Delete(c.lease.Prefixes, i, i+1)
			}
			continue
		}
		h := Held{Prefix: p.Prefix, PreferredUntil: until(now, p.Preferred), ValidUntil: until(now, p.Valid)}
		if i >= 0 {
			c.lease.Prefixes[i] = h
		} else {
			c.lease.Prefixes = append(c.lease.Prefixes, h)
		}
		out.Events = append(out.Events, c.event(Delegated, h))
	}
	out.StateChanged = true
	if len(c.lease.Prefixes) == 0 {
		c.lease.T1, c.lease.T2, c.lease.ServerID = time.Time{}, time.Time{}, nil
		out.add(c.startSolicit(now, true))
		return out, nil
	}
	c.lease.ServerID = slices.Clone(m.ServerID)
	c.lease.Hint = c.lease.Prefixes[0].Prefix
	c.lease.DNS = slices.Clone(m.DNS)
	c.lease.T1, c.lease.T2 = c.timers(ia, now)
	c.state = Bound
	return out, nil
}

// timers computes T1 and T2 (RFC 8415 §18.2.4, §21.21): the server's, or
// when it leaves them 0, 0.5 and 0.8 times the shortest preferred lifetime.
func (c *Client) timers(ia *IAPD, now time.Time) (t1, t2 time.Time) {
	minPref := Forever
	for _, h := range c.lease.Prefixes {
		if h.PreferredUntil.Before(minPref) {
			minPref = h.PreferredUntil
		}
	}
	pref := minPref.Sub(now)
	pick := func(v uint32, f float64) time.Time {
		switch {
		case v == Infinity:
			return time.Time{}
		case v != 0:
			return now.Add(max(time.Duration(v)*time.Second, minT1))
		case !minPref.Before(Forever):
			return time.Time{}
		}
		return now.Add(max(scale(pref, f), minT1))
	}
	t1, t2 = pick(ia.T1, 0.5), pick(ia.T2, 0.8)
	if !t1.IsZero() && !t2.IsZero() && t2.Before(t1) {
		t2 = t1
	}
	return t1, t2
}
