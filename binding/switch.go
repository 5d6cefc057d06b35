package binding

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"nemod/nemo"
)

// Home Agent Switch by the home agent (RFC 5142 §5): a router is told to
// move to other home agent addresses before this one goes away for
// maintenance. The message goes through the router's bindings' paths in
// turn, authenticated like a Binding Acknowledgement (RFC 4285, with a
// fresh timestamp), and is sent again, the timeout doubling from
// INITIAL-HA-SWITCH-TIMEOUT to MAX-HA-SWITCH-TIMEOUT, until the router
// answers: by de-registering here, or by registering with one of the new
// addresses (in a cluster another member accepts that registration, and
// its record arrives here through Import). Meanwhile the bindings keep
// forwarding, and a Binding Update extending them here is refused with
// status 129 (§5.3), so that the router moves. The daemon paces the
// messages (MAX-HA-SWITCH-TRANSMIT-RATE, §7): PollSwitches sends no more
// than it is allowed to.

// The protocol constants of RFC 5142 §8.
const (
	InitialHASwitchTimeout = 5 * time.Second
	MaxHASwitchTimeout     = 20 * time.Second
)

// Switch is one router being moved and what came of it.
type Switch struct {
	ID   uint64
	Name string
	HoA  netip.Addr
	// From is the address it was told to leave; To where to go, in order.
	From netip.Addr
	To   []netip.Addr
	Sent int // transmissions
	// Done: Moved (it left, or registered with To), or given up (its
	// bindings ran out without an answer).
	Done, Moved bool
	next        time.Time
	timeout     time.Duration
}

type switching struct {
	switches map[netip.Addr]*Switch
	swID     uint64
	swTS     uint64
	// SwitchesSent counts the messages sent (retransmissions too);
	// SwitchesMoved the routers that moved, SwitchesUnanswered those
	// whose bindings ran out first.
	SwitchesSent, SwitchesMoved, SwitchesUnanswered uint64
}

// Switch has the router at hoa moved to the addresses to, in order of
// preference. The first message goes out at the next PollSwitches; a
// switch already under way for the router is replaced.
func (c *Cache) Switch(hoa netip.Addr, to []netip.Addr, now time.Time) (*Switch, error) {
	e := c.entries[hoa]
	switch {
	case e == nil:
		return nil, fmt.Errorf("no mobile router has home address %s", hoa)
	case !e.Registered():
		return nil, fmt.Errorf("%s has no binding to move", e.Peer.Name)
	case len(to) == 0 || len(to) > 16:
		return nil, errors.New("a home agent switch names 1 to 16 addresses")
	}
	from := c.haOf(e)
	for _, a := range to {
		if !a.Is6() || a.Is4In6() || !a.IsGlobalUnicast() {
			return nil, fmt.Errorf("%s is not a home agent's IPv6 address", a)
		}
		if a == from {
			return nil, fmt.Errorf("%s already uses %s", e.Peer.Name, a)
		}
	}
	if c.switches == nil {
		c.switches = map[netip.Addr]*Switch{}
	}
	c.swID++
	sw := &Switch{ID: c.swID, Name: e.Peer.Name, HoA: hoa, From: from, To: slices.Clone(to), next: now, timeout: InitialHASwitchTimeout}
	c.switches[hoa] = sw
	return sw, nil
}

// haOf is the home agent address a router registered with.
func (c *Cache) haOf(e *Entry) netip.Addr {
	if e.HA.IsValid() {
		return e.HA
	}
	return c.cfg.Address
}

// switchSeen completes the switch of e's router when it moved: no binding
// left here, or registered with one of the new addresses.
func (c *Cache) switchSeen(e *Entry) {
	sw := c.switches[e.Peer.HoA]
	if sw == nil || sw.Done {
		return
	}
	if !e.Registered() || slices.Contains(sw.To, c.haOf(e)) {
		sw.Done, sw.Moved = true, true
	}
}

// PollSwitches returns the messages due at now, at most budget of them
// (the most overdue first), and the switches done since the last call.
func (c *Cache) PollSwitches(now time.Time, budget int) (sends []Result, done []*Switch) {
	due := make([]*Switch, 0, len(c.switches))
	for hoa, sw := range c.switches {
		e := c.entries[hoa]
		if e != nil && !sw.Done {
			c.switchSeen(e)
		}
		if !sw.Done && (e == nil || !e.Registered()) {
			sw.Done = true
		}
		if sw.Done {
			if sw.Moved {
				c.SwitchesMoved++
			} else {
				c.SwitchesUnanswered++
			}
			delete(c.switches, hoa)
			done = append(done, sw)
			continue
		}
		if !now.Before(sw.next) {
			due = append(due, sw)
		}
	}
	slices.SortFunc(due, func(a, b *Switch) int { return a.next.Compare(b.next) })
	for _, sw := range due[:min(len(due), max(budget, 0))] {
		e := c.entries[sw.HoA]
		s, err := c.switchMessage(e, sw, e.Bindings[sw.Sent%len(e.Bindings)], now)
		if err != nil {
			continue
		}
		sw.Sent++
		c.SwitchesSent++
		sw.next = now.Add(sw.timeout)
		sw.timeout = min(2*sw.timeout, MaxHASwitchTimeout)
		sends = append(sends, s)
	}
	slices.SortFunc(done, func(a, b *Switch) int { return int(a.ID - b.ID) })
	return sends, done
}

// NextSwitch returns when PollSwitches next has something to do, or zero.
func (c *Cache) NextSwitch() time.Time {
	var t time.Time
	for _, sw := range c.switches {
		if t.IsZero() || sw.next.Before(t) {
			t = sw.next
		}
	}
	return t
}

// Switching returns the switches under way, by home address.
func (c *Cache) Switching() []*Switch {
	out := make([]*Switch, 0, len(c.switches))
	for _, sw := range c.switches {
		out = append(out, sw)
	}
	slices.SortFunc(out, func(a, b *Switch) int { return a.HoA.Compare(b.HoA) })
	return out
}

// switchMessage encodes and signs one Home Agent Switch for a binding's
// path. Like a revocation indication's, its "care-of address" is its IPv6
// destination: the care-of address natively, the home address in UDP.
func (c *Cache) switchMessage(e *Entry, sw *Switch, b Binding, now time.Time) (Result, error) {
	ts := nemo.NTPTime(now)
	if ts <= c.swTS {
		ts = c.swTS + 1
	}
	c.swTS = ts
	m := nemo.HomeAgentSwitch{Addresses: sw.To}
	if e.Peer.NAI != "" {
		m.HasMNID, m.MNIDSubtype, m.MNID = true, nemo.MNIDSubtypeNAI, []byte(e.Peer.NAI)
	}
	m.HasTimestamp, m.Timestamp = true, ts
	m.Auth = []nemo.Auth{{Subtype: nemo.AuthMNHA, SPI: e.Peer.SPI}}
	mh, err := nemo.Marshal(&m)
	if err != nil {
		return Result{}, err
	}
	dst, rh2 := b.Outer.Addr(), sw.HoA
	if b.Encap.UDP() {
		dst, rh2 = sw.HoA, netip.Addr{}
	}
	if err := e.authenticator().Sign(mh, dst, sw.HoA); err != nil {
		return Result{}, err
	}
	out, err := nemo.AppendPacket(make([]byte, 0, 64+len(mh)), sw.From, dst, netip.Addr{}, rh2, nemo.DefaultHopLimit, mh)
	if err != nil {
		return Result{}, err
	}
	return Result{Reply: out, ReplyTo: b.Outer, Encap: b.Encap}, nil
}

// switchGate decides the Binding Updates a switch or a cluster handles
// apart (ok true, with the answer), once the BU is authentic and fresh:
//   - one extending a binding here while the router is told to leave is
//     refused with status 129 (RFC 5142 §5.3);
//   - a de-registration sent to another home agent address than the one
//     the router now uses is the router leaving that address: answered,
//     and the bindings it made with the new one stay (the members of a
//     cluster share one entry per router).
func (c *Cache) switchGate(e *Entry, p *nemo.Packet, arr Arrival, bu *nemo.BindingUpdate, now time.Time) (Result, bool) {
	if sw := c.switches[e.Peer.HoA]; sw != nil && !sw.Done && bu.Lifetime > 0 && p.Dst == sw.From {
		return c.reject(e, p, arr, bu, nemo.StatusProhibited, bu.Timestamp, errors.New("the router is told to switch home agents"), ReasonProhibited, now), true
	}
	if bu.Lifetime == 0 && e.HA.IsValid() && p.Dst != e.HA && e.Registered() {
		c.Deregistrations++
		ba := nemo.BindingAck{Seq: bu.Seq}
		if bu.Flags&nemo.BUFlagR != 0 && e.Router {
			ba.Flags |= nemo.BAFlagR
		}
		for _, b := range bu.BIDs {
			ba.BIDs = append(ba.BIDs, nemo.BID{ID: b.ID})
		}
		r := c.answer(e, p, arr, &ba, bu, bu.Timestamp)
		return r, true
	}
	return Result{}, false
}
