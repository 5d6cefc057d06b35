package binding

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"nemod/nemo"
)

// Binding revocation at the mobile router (RFC 5846 §10): a Binding
// Revocation Indication from the home agent is checked like a Binding
// Acknowledgement (RFC 4285 authentication with the router's key, a fresh
// timestamp, the router's NAI when it names one), answered with a Binding
// Revocation Acknowledgement, and its bindings are no longer used nor
// registered again until the holdoff has passed or the configuration is
// reloaded.

// StateRevoked is a binding the home agent revoked, waiting out the
// holdoff.
const StateRevoked State = 100

// DefaultRevokedHoldoff is how long a revoked binding waits before it is
// registered again (option revoked_holdoff).
const DefaultRevokedHoldoff = 60 * time.Second

// ReasonReplayed counts indications older than the newest one taken, or
// outside the replay window: a replay, or a forgery that kept an old
// authenticator.
const ReasonReplayed = "replayed"

// RevocationCounters count the indications the router got.
type RevocationCounters struct {
	// Taken: authentic, fresh indications acted on. Repeated: the home
	// agent's retransmissions of the last one, answered again and not
	// acted on again. Refused ones are counted in IgnoredBy by reason.
	Taken, Repeated uint64
}

// lastBRI is the last indication taken, kept to answer its
// retransmissions with the same acknowledgement.
type lastBRI struct {
	seq   uint16
	ts    uint64
	reply Send
	at    time.Time
}

// handleBRI takes a Binding Revocation Indication (p's Mobility Header).
func (r *UpdateList) handleBRI(p *nemo.Packet, now time.Time, ignore func(string, error) error) error {
	var m nemo.BindingRevocation
	if err := nemo.Unmarshal(p.MH, &m); err != nil {
		return ignore(ReasonMalformed, err)
	}
	if m.Kind != nemo.RevocationIndication {
		return ignore(ReasonUnexpected, errors.New("binding revocation acknowledgement to the mobile router"))
	}
	// The same addresses as a Binding Acknowledgement's: see nemo's
	// package documentation.
	if err := r.auth.Verify(p.MH, &m.Options, p.Dst, p.PseudoDst()); err != nil {
		return ignore(ReasonAuthFailed, fmt.Errorf("ignoring unauthenticated binding revocation indication: %w", err))
	}
	if a, _ := m.MNHA(); a.SPI != r.cfg.SPI {
		return ignore(ReasonAuthFailed, nemo.ErrAuth)
	}
	if !m.HasTimestamp {
		return ignore(ReasonNoTimestamp, errors.New("binding revocation indication without a timestamp"))
	}
	if m.HasMNID && (m.MNIDSubtype != nemo.MNIDSubtypeNAI || string(m.MNID) != r.cfg.NAI) {
		return ignore(ReasonNotOurs, fmt.Errorf("binding revocation indication for %q", m.MNID))
	}
	if last := r.lastBRI; last != nil && m.Seq == last.seq && m.Timestamp == last.ts {
		// A retransmission: our answer was lost. Answer again, within the
		// home agent's retransmission time only (1 s, then 2 s more).
		if now.Sub(last.at) > 4*InitialBRITimeout {
			return ignore(ReasonReplayed, errors.New("binding revocation indication replayed"))
		}
		r.Revocations.Repeated++
		r.out = append(r.out, last.reply)
		return nil
	}
	// The home agent's clock, corrected by what it told us (status 144).
	if err := nemo.CheckTimestamp(m.Timestamp, now.Add(r.skew), r.cfg.ReplayWindow, r.lastBRITS); err != nil {
		return ignore(ReasonReplayed, fmt.Errorf("binding revocation indication: %w", err))
	}
	r.lastBRITS = m.Timestamp
	r.Revocations.Taken++
	status := nemo.RevStatusSuccess
	var via = -1
	if len(m.BIDs) == 0 {
		for i, l := range r.links {
			if l.state == StateRegistered || l.state == StateRegistering {
				if via < 0 || l.coa == p.Dst {
					via = i
				}
				r.revoke(i, now)
			}
		}
		if via < 0 {
			status = nemo.RevStatusNoBinding
		}
	} else {
		found := 0
		for _, b := range m.BIDs {
			i := slices.IndexFunc(r.links, func(l *link) bool { return l.cfg.BID == b.ID })
			if i < 0 || r.links[i].state == StateDown || r.links[i].state == StateRevoked {
				continue
			}
			found++
			if via < 0 {
				via = i
			}
			r.revoke(i, now)
		}
		switch {
		case found == 0:
			status = nemo.RevStatusNoBinding
		case found < len(m.BIDs):
			status = nemo.RevStatusPartial
		}
	}
	if via < 0 {
		via = r.best()
	}
	if r.AllRevoked() {
		r.cfg.Logf("the home agent revoked every binding (trigger %d): no traffic through it for %v", m.Code, r.cfg.RevokedHoldoff)
	}
	if via < 0 {
		// No path left to answer through; the home agent retransmits.
		return nil
	}
	s, err := r.acknowledgement(&m, status, via, p)
	if err != nil {
		return &Error{Reason: ReasonMalformed, Err: err}
	}
	r.lastBRI = &lastBRI{seq: m.Seq, ts: m.Timestamp, reply: s, at: now}
	r.out = append(r.out, s)
	return nil
}

// revoke stops using uplink i's binding and holds it off.
func (r *UpdateList) revoke(i int, now time.Time) {
	l := r.links[i]
	if l.reg != nil {
		if l.reg.via == i {
			r.detachOthers(l.reg)
		} else {
			p := l.reg
			p.links = slices.DeleteFunc(p.links, func(j int) bool { return j == i })
		}
	}
	// The home agent removed it: nothing to de-register.
	r.lost = slices.DeleteFunc(r.lost, func(b uint16) bool { return b == l.cfg.BID })
	r.cfg.Logf("uplink %s (BID %d): binding revoked by the home agent; registering again in %v", l.cfg.Name, l.cfg.BID, r.cfg.RevokedHoldoff)
	l.state, l.reg, l.revokedUntil = StateRevoked, nil, now.Add(r.cfg.RevokedHoldoff)
	// Nor is it probed, dead path or not: the holdoff decides.
	l.path.rec = nil
	l.path.watch.Reset()
	l.expires, l.refreshAt = time.Time{}, time.Time{}
	r.gen++
}

// acknowledgement encodes the answer to an indication, sent through
// uplink via as a Binding Update would be: natively from the care-of
// address with a Home Address option, or from the home address inside UDP
// where the indication came in UDP.
func (r *UpdateList) acknowledgement(m *nemo.BindingRevocation, status uint8, via int, p *nemo.Packet) (Send, error) {
	l := r.links[via]
	enc := l.encap
	native := p.RH2Address.IsValid()
	switch {
	case native:
		enc = nemo.EncapIPv6
	case enc == nemo.EncapIPv6 || enc == nemo.EncapNone:
		enc = nemo.EncapUDP6
		if cands := r.candidates(l); len(cands) > 0 && !slices.Contains(cands, enc) {
			enc = nemo.EncapUDP4
		}
	}
	path := r.path(via, enc)
	if native && p.Dst.IsValid() {
		path.Src = p.Dst
	}
	ack := nemo.BindingRevocation{Kind: nemo.RevocationAck, Code: status, Seq: m.Seq, Flags: m.Flags & (nemo.RevFlagG | nemo.RevFlagV)}
	ack.HasMNID, ack.MNIDSubtype, ack.MNID = r.cfg.NAI != "", nemo.MNIDSubtypeNAI, []byte(r.cfg.NAI)
	ack.HasTimestamp, ack.Timestamp = true, m.Timestamp
	ack.Auth = []nemo.Auth{{Subtype: nemo.AuthMNHA, SPI: r.cfg.SPI}}
	mh, err := nemo.Marshal(&ack)
	if err != nil {
		return Send{}, err
	}
	src, hao := path.Src, r.cfg.HoA
	if enc.UDP() {
		src, hao = r.cfg.HoA, netip.Addr{}
	}
	if err := r.auth.Sign(mh, src, r.cfg.HoA); err != nil {
		return Send{}, err
	}
	pkt, err := nemo.AppendPacket(make([]byte, 0, 64+len(mh)), src, r.cfg.HA, hao, netip.Addr{}, nemo.DefaultHopLimit, mh)
	if err != nil {
		return Send{}, err
	}
	return Send{Path: path, Packet: pkt}, nil
}

// pollRevoked registers again the revoked bindings whose holdoff passed.
func (r *UpdateList) pollRevoked(i int, now time.Time) {
	l := r.links[i]
	if l.state != StateRevoked || now.Before(l.revokedUntil) {
		return
	}
	l.revokedUntil = time.Time{}
	// Registering again ends the time the indication is answered again
	// when repeated: from now on a copy of it is a replay.
	r.lastBRI = nil
	l.candidates, l.cand = r.candidates(l), 0
	if len(l.candidates) == 0 {
		l.state = StateDown
		r.gen++
		return
	}
	r.cfg.Logf("uplink %s (BID %d): revocation holdoff over, registering again", l.cfg.Name, l.cfg.BID)
	r.startRegistration(i, now)
}

// ClearRevoked ends every holdoff (a configuration reload): the revoked
// bindings register again at the next Poll.
func (r *UpdateList) ClearRevoked(now time.Time) {
	for _, l := range r.links {
		if l.state == StateRevoked {
			l.revokedUntil = now
		}
	}
}

// SetRevokedHoldoff changes the holdoff of the bindings revoked from now
// on (a configuration reload; 0 means the default).
func (r *UpdateList) SetRevokedHoldoff(d time.Duration) {
	if d == 0 {
		d = DefaultRevokedHoldoff
	}
	r.cfg.RevokedHoldoff = d
}

// Revoked returns the BIDs revoked and waiting out their holdoff.
func (r *UpdateList) Revoked() []uint16 {
	var out []uint16
	for _, l := range r.links {
		if l.state == StateRevoked {
			out = append(out, l.cfg.BID)
		}
	}
	return out
}

// AllRevoked reports whether the home agent revoked every binding the
// router has: none is registered or registering, and one at least is
// revoked.
func (r *UpdateList) AllRevoked() bool {
	any := false
	for _, l := range r.links {
		switch l.state {
		case StateRevoked:
			any = true
		case StateRegistered, StateRegistering:
			return false
		}
	}
	return any
}

// HoldoffUntil returns when the last holdoff ends (zero if none).
func (r *UpdateList) HoldoffUntil() time.Time {
	var t time.Time
	for _, l := range r.links {
		if l.state == StateRevoked && l.revokedUntil.After(t) {
			t = l.revokedUntil
		}
	}
	return t
}
