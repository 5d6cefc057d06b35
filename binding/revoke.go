package binding

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"nemod/nemo"
)

// Binding revocation by the home agent (RFC 5846 §8): a Binding
// Revocation Indication goes to the router through the revoked binding's
// own path (natively with a type 2 routing header, or inside UDP where the
// binding is), authenticated like a Binding Acknowledgement (RFC 4285,
// with a fresh timestamp); the bindings are removed at once, and the
// indication is sent again until the router acknowledges it or the
// retransmissions run out.

// The retransmission timers of RFC 5846 §13: the first retransmission
// after InitialBRITimeout, doubling, BRIMaxRetransmitNumber of them; after
// the last, the revocation waits one more doubled timeout for an answer.
const (
	InitialBRITimeout      = time.Second
	BRIMaxRetransmitNumber = 1
)

// Revocation is one Binding Revocation Indication and what came of it.
type Revocation struct {
	Name string // the router's name (its NAI for a router RADIUS authorized)
	NAI  string
	HoA  netip.Addr
	// BIDs are the bindings revoked; empty when every binding was (the
	// indication then names none: RFC 5846 §8.1).
	BIDs    []uint16
	Trigger uint8
	Seq     uint16
	// Done: acknowledged (Answered, with the BRA's Status) or given up.
	Done, Answered bool
	Status         uint8
	Sent           int // transmissions
	// ID numbers the revocations of one cache, for a caller waiting for
	// one to be done.
	ID uint64

	ts    uint64
	auth  *nemo.Authenticator
	spi   uint32
	sends []Result // one per revoked binding's path; transmissions rotate
	next  time.Time
}

type revoking struct {
	revs   map[revKey]*Revocation
	revSeq uint16
	revTS  uint64
	revID  uint64
	// RevocationsSent counts the indications sent (retransmissions too);
	// RevocationsUnanswered the revocations given up without an answer.
	RevocationsSent, RevocationsUnanswered uint64
}

type revKey struct {
	hoa netip.Addr
	seq uint16
}

var errNoRevocation = errors.New("binding revocation acknowledgement answers no revocation")

// Revoke revokes the bindings bids of the router at hoa (every binding
// when bids is empty) for trigger: it removes them and returns the
// revocation with the indication to send (Result.Reply, ReplyTo, Encap)
// and the entry whose forwarding changed (Result.Changed).
func (c *Cache) Revoke(hoa netip.Addr, bids []uint16, trigger uint8, now time.Time) (*Revocation, Result, error) {
	e := c.entries[hoa]
	if e == nil {
		return nil, Result{}, fmt.Errorf("no mobile router has home address %s", hoa)
	}
	if !e.Registered() {
		return nil, Result{}, fmt.Errorf("%s has no binding to revoke", e.Peer.Name)
	}
	var revoked []Binding
	if len(bids) == 0 {
		revoked = slices.Clone(e.Bindings)
	} else {
		for _, b := range bids {
			i := e.find(b)
			if i < 0 {
				return nil, Result{}, fmt.Errorf("%s has no binding with BID %d", e.Peer.Name, b)
			}
			revoked = append(revoked, e.Bindings[i])
		}
	}
	if c.revs == nil {
		c.revs = map[revKey]*Revocation{}
	}
	c.revSeq++
	c.revID++
	ts := nemo.NTPTime(now)
	if ts <= c.revTS {
		ts = c.revTS + 1
	}
	c.revTS = ts
	rev := &Revocation{Name: e.Peer.Name, NAI: e.Peer.NAI, HoA: hoa, Trigger: trigger, Seq: c.revSeq, ID: c.revID,
		ts: ts, auth: nemo.NewAuthenticator(e.Peer.Key), spi: e.Peer.SPI, next: now.Add(InitialBRITimeout)}
	if len(bids) > 0 {
		rev.BIDs = slices.Clone(bids)
	}
	m := nemo.BindingRevocation{Kind: nemo.RevocationIndication, Code: trigger, Seq: rev.Seq}
	for _, b := range rev.BIDs {
		m.BIDs = append(m.BIDs, nemo.BID{ID: b})
	}
	if e.Peer.NAI != "" {
		m.HasMNID, m.MNIDSubtype, m.MNID = true, nemo.MNIDSubtypeNAI, []byte(e.Peer.NAI)
	}
	m.HasTimestamp, m.Timestamp = true, ts
	m.Auth = []nemo.Auth{{Subtype: nemo.AuthMNHA, SPI: e.Peer.SPI}}
	for _, b := range revoked {
		s, err := c.indication(rev, &m, b)
		if err != nil {
			return nil, Result{}, err
		}
		rev.sends = append(rev.sends, s)
	}
	// Remove the bindings now: the router is told, and whatever it
	// answers, the home agent no longer forwards through them.
	e.Bindings = slices.DeleteFunc(e.Bindings, func(b Binding) bool {
		return len(bids) == 0 || slices.Contains(bids, b.BID)
	})
	if len(e.Bindings) == 0 {
		e.MNPs = e.MNPs[:0]
	}
	c.revs[revKey{hoa, rev.Seq}] = rev
	rev.Sent++
	c.RevocationsSent++
	r := rev.sends[0]
	r.Changed = e
	return rev, r, nil
}

// indication encodes and signs the indication for one binding's path.
// Like a Binding Acknowledgement's, its "care-of address" is its IPv6
// destination: the care-of address natively, the home address inside UDP.
func (c *Cache) indication(rev *Revocation, m *nemo.BindingRevocation, b Binding) (Result, error) {
	mh, err := nemo.Marshal(m)
	if err != nil {
		return Result{}, err
	}
	dst, rh2 := b.Outer.Addr(), rev.HoA
	if b.Encap.UDP() {
		dst, rh2 = rev.HoA, netip.Addr{}
	}
	if err := rev.auth.Sign(mh, dst, rev.HoA); err != nil {
		return Result{}, err
	}
	out, err := nemo.AppendPacket(make([]byte, 0, 64+len(mh)), c.cfg.Address, dst, netip.Addr{}, rh2, nemo.DefaultHopLimit, mh)
	if err != nil {
		return Result{}, err
	}
	return Result{Reply: out, ReplyTo: b.Outer, Encap: b.Encap}, nil
}

// PollRevocations returns the indications due again at now, and the
// revocations given up (no answer after the last retransmission).
func (c *Cache) PollRevocations(now time.Time) (sends []Result, gaveUp []*Revocation) {
	for k, rev := range c.revs {
		if now.Before(rev.next) {
			continue
		}
		if rev.Sent > BRIMaxRetransmitNumber {
			rev.Done = true
			c.RevocationsUnanswered++
			delete(c.revs, k)
			gaveUp = append(gaveUp, rev)
			continue
		}
		// Through each revoked binding's path in turn: the first may be
		// the one that died.
		sends = append(sends, rev.sends[rev.Sent%len(rev.sends)])
		rev.next = now.Add(InitialBRITimeout << rev.Sent)
		rev.Sent++
		c.RevocationsSent++
	}
	return sends, gaveUp
}

// NextRevocation returns when PollRevocations next has something to do,
// or zero.
func (c *Cache) NextRevocation() time.Time {
	var t time.Time
	for _, rev := range c.revs {
		if t.IsZero() || rev.next.Before(t) {
			t = rev.next
		}
	}
	return t
}

// Revoking returns the number of revocations waiting for an answer.
func (c *Cache) Revoking() int { return len(c.revs) }

// handleBRA takes a Binding Revocation Acknowledgement: authenticated by
// the router's key like a Binding Update, echoing the indication's
// sequence number and timestamp.
func (c *Cache) handleBRA(p *nemo.Packet, arr Arrival, now time.Time) Result {
	var m nemo.BindingRevocation
	if err := nemo.Unmarshal(p.MH, &m); err != nil {
		return Result{Err: err, Reason: ReasonMalformed}
	}
	if m.Kind != nemo.RevocationAck {
		return Result{Err: errors.New("a binding revocation indication to the home agent"), Reason: ReasonIgnored}
	}
	hoa := p.PseudoSrc()
	rev := c.revs[revKey{hoa, m.Seq}]
	if rev == nil {
		return Result{Err: errNoRevocation, Reason: ReasonIgnored}
	}
	if a, ok := m.MNHA(); !ok || a.SPI != rev.spi {
		return Result{Err: nemo.ErrNoAuth, Reason: ReasonAuthFailed}
	}
	if err := rev.auth.Verify(p.MH, &m.Options, p.Src, hoa); err != nil {
		return Result{Err: err, Reason: ReasonAuthFailed}
	}
	if !m.HasTimestamp {
		return Result{Err: nemo.ErrNoTimestamp, Reason: ReasonNoTimestamp}
	}
	if m.Timestamp != rev.ts {
		return Result{Err: errors.New("binding revocation acknowledgement with another timestamp"), Reason: ReasonBadTimestamp}
	}
	delete(c.revs, revKey{hoa, m.Seq})
	rev.Done, rev.Answered, rev.Status = true, true, m.Code
	c.RevocationAcks++
	return Result{Revoked: rev, Status: m.Code}
}
