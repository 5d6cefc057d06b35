package binding

import (
	"slices"
	"time"

	"nemod/nemo"
)

// The mobile router's side of path liveness: each registered binding's
// Watch (see liveness.go) and idle probes, and what happens to a binding
// whose path died.
//
// Recovery departs from RFC 6275 §11.8 on purpose. The RFC has a mobile
// node retransmit a Binding Update that got no answer with a timeout
// doubling up to MAX_BINDACK_TIMEOUT (32 s): after a long outage, the
// path is used again only at the next retransmission, up to 32 s after it
// works. A path declared dead here is instead tried with a probe at the
// idle probe rate for as long as it stays dead (so under 1 kbit/s, and
// with no back-off, a path is in use again within one probe gap, under
// a second, of working again, however long it was out), and a Binding
// Update goes out only once a probe is answered, or the carrier comes
// back. The probes go natively where the path had UDP over IPv6: the
// same addresses in the smallest probe, so the shortest gap. That is still safe for the home agent: it sees no more
// Binding Updates than it answered probes, it answers probes from paths
// it has no binding for within a token bucket (tunnel.HA, Bucket), so
// that a fleet whose paths come back together re-registers at the rate the
// home agent chose, and a Binding Update that goes unanswered still backs
// off as the RFC says, returning to probes after its second attempt.

// pathState is one uplink's probing state.
type pathState struct {
	watch Watch
	log   probeLog
	// polled is when the watch was last judged.
	polled time.Time
	// rec is set while the binding's path is dead.
	rec *recovery
}

// recovery is a dead path being probed until it answers.
type recovery struct {
	primary nemo.Encap // the encapsulation the path died on, to register
	// probe is the encapsulation that stands for the path in the probes:
	// the primary, or IPv6-in-IPv6 in place of UDP over IPv6 (the same
	// addresses, half the octets). primaryFailed: a registration on the
	// primary after the stand-in answered went unanswered (a firewall
	// that blocks it now): the next answer registers the stand-in.
	probe         nemo.Encap
	primaryFailed bool
	next          time.Time // the next probe
	// nextEncap is the next probe's encapsulation: the gap before a probe
	// is its own size's, so that no stretch of probes costs more than the
	// budget.
	nextEncap nemo.Encap
	probes    int
	// An alternate encapsulation's probe was answered and the primary is
	// being asked once more until confirmUntil: a path that came back
	// whole returns on the encapsulation it had.
	alt          nemo.Encap
	confirmUntil time.Time
}

// alternateAfter is how many probes a dead path gets on its own
// encapsulation before every fourth goes to another candidate: a firewall
// that came up during the outage may block only the one it had.
const alternateAfter = 8

// clock returns uplink i's path clock: the data plane's, with the last
// registration (and the last change of the probing) counting as hearing
// from the home agent.
func (r *UpdateList) clock(i int) Clock {
	var c Clock
	if r.cfg.Clock != nil {
		c = r.cfg.Clock(i)
	} else if r.cfg.Heard != nil {
		c.Heard = r.cfg.Heard(i)
	}
	l := r.links[i]
	if l.confirmed.After(c.Heard) {
		c.Heard = l.confirmed
	}
	// A silence that began before a change of the probing is judged from
	// the change (SetUplinkTiming), not by the new, perhaps shorter, timing.
	if l.retimed.After(c.Heard) {
		c.Heard = l.retimed
	}
	return c
}

// lastHeard is when anything last came from the home agent over uplink
// i's binding (its path clock).
func (r *UpdateList) lastHeard(i int) time.Time { return r.clock(i).Heard }

func (r *UpdateList) idleGap(l *link) time.Duration { return ProbeGap(l.cfg.ProbeInterval, l.encap) }

// idleSpan is how long an idle probe's episode lasts: what is left of two
// native probe intervals after the path's probe gap (see liveness.go).
func (r *UpdateList) idleSpan(l *link) time.Duration {
	return max(2*l.cfg.ProbeInterval-r.idleGap(l), TimeoutFloor)
}

// pollPath probes uplink i's path as due at now: a registered binding's
// watch and idle probes, or a dead path's recovery probes.
func (r *UpdateList) pollPath(i int, now time.Time) (Send, bool) {
	l := r.links[i]
	if l.path.rec != nil {
		return r.pollRecovery(i, now)
	}
	if !l.probing() {
		return Send{}, false
	}
	c := r.clock(i)
	gap := r.idleGap(l)
	l.path.polled = now
	switch l.path.watch.Judge(c, now, l.cfg.ProbeFailures, gap) {
	case Dead:
		r.pathDied(i, "nothing from the home agent for "+now.Sub(c.Heard).Round(time.Millisecond).String(), now)
		return r.pollRecovery(i, now)
	case ProbeNow:
		l.nextProbe = now.Add(gap)
		return r.probe(i, l.encap, now)
	}
	if now.Before(l.nextProbe) {
		return Send{}, false
	}
	l.nextProbe = now.Add(gap)
	if l.path.watch.Probing() {
		return Send{}, false // the episode's own probes are on their way
	}
	l.path.watch.Probed(now, r.idleSpan(l))
	return r.probe(i, l.encap, now)
}

// pathDeadline is when pollPath next has something to do for uplink i.
func (r *UpdateList) pathDeadline(i int) time.Time {
	l := r.links[i]
	if rec := l.path.rec; rec != nil {
		if l.reg != nil {
			return time.Time{} // the registration's retransmission
		}
		return earliest(rec.next, rec.confirmUntil)
	}
	if !l.probing() {
		return time.Time{}
	}
	return earliest(l.nextProbe, l.path.watch.Next(r.clock(i), l.path.polled, l.cfg.ProbeFailures, r.idleGap(l)))
}

// probe builds a Heartbeat request for uplink i over encapsulation e: from
// the care-of address natively, from the home address inside UDP, as a
// Binding Update would be.
func (r *UpdateList) probe(i int, e nemo.Encap, now time.Time) (Send, bool) {
	path := r.path(i, e)
	src := path.Src
	if e.UDP() {
		src = r.cfg.HoA
	}
	r.probeSeq++
	pkt, err := nemo.AppendHeartbeatPacket(make([]byte, 0, nemo.HeartbeatPacketLen), src, r.cfg.HA, &nemo.Heartbeat{Seq: r.probeSeq})
	if err != nil {
		return Send{}, false
	}
	r.links[i].path.log.add(r.probeSeq, now, e)
	r.Probes++
	if r.links[i].path.rec != nil {
		r.sentToHA(now) // a dead path's probe stands for its Binding Update
	}
	return Send{Path: path, Packet: pkt, Probe: true}, true
}

// ProbeAnswered takes the answer to probe seq, which arrived over uplink
// i at at: a round-trip sample and, for a dead path, the signal to
// register it again. unbound marks the home agent's answer from no
// binding (nemo.NemodUnboundSubType): the path works but the home agent
// has no binding for it, so a registered binding is registered again at
// once. Answers to no probe of ours are ignored.
func (r *UpdateList) ProbeAnswered(i int, seq uint32, at time.Time, unbound bool) {
	if i < 0 || i >= len(r.links) {
		return
	}
	l := r.links[i]
	p := l.path.log.find(seq)
	if p == nil || p.answered || at.Before(p.at) {
		return
	}
	p.answered = true
	l.path.watch.RTT.Sample(at.Sub(p.at))
	if l.reg != nil || !slices.Contains(l.candidates, p.encap) {
		return // a registration is on its way already
	}
	if unbound && l.state == StateRegistered && p.encap == l.encap {
		r.pathDied(i, "the home agent has no binding for the path (a NAT's new mapping?)", at)
		r.recoverOn(i, p.encap, at)
		return
	}
	rec := l.path.rec
	if rec == nil {
		return
	}
	switch {
	case p.encap == rec.probe && rec.primaryFailed:
		r.recoverOn(i, rec.probe, at)
	case p.encap == rec.primary || p.encap == rec.probe:
		r.recoverOn(i, rec.primary, at)
	case rec.confirmUntil.IsZero():
		// Another encapsulation works: see whether the path's own does
		// too, before settling for it.
		rec.alt, rec.confirmUntil, rec.next = p.encap, at.Add(l.path.watch.RTT.Timeout()), at
	}
}

// pathDied declares uplink i's path dead at now: the home agent is told
// through another uplink (so that it stops using the path at once) and
// the path goes to recovery.
func (r *UpdateList) pathDied(i int, why string, now time.Time) {
	l := r.links[i]
	r.DeadPaths++
	r.countFailover(i)
	r.cfg.Logf("uplink %s (BID %d): %s: path dead, de-registering it and probing it until it answers", l.cfg.Name, l.cfg.BID, why)
	if !slices.Contains(r.lost, l.cfg.BID) {
		r.lost = append(r.lost, l.cfg.BID)
	}
	if l.reg != nil {
		r.detachOthers(l.reg)
		l.reg = nil
	}
	l.state = StateRegistering
	l.path.watch.Reset()
	probe := l.encap
	if probe == nemo.EncapUDP6 && slices.Contains(l.candidates, nemo.EncapIPv6) {
		probe = nemo.EncapIPv6
	}
	l.path.rec = &recovery{primary: l.encap, probe: probe, nextEncap: probe, next: now}
	r.gen++
}

// countFailover counts a usable binding lost while another one can take
// its traffic.
func (r *UpdateList) countFailover(i int) {
	if r.links[i].state != StateRegistered {
		return
	}
	for j, o := range r.links {
		if j != i && o.state == StateRegistered {
			r.Failovers++
			return
		}
	}
}

// pollRecovery sends a dead path's next probe when due: on its stand-in
// encapsulation, and after alternateAfter probes every fourth on another
// candidate.
func (r *UpdateList) pollRecovery(i int, now time.Time) (Send, bool) {
	l := r.links[i]
	rec := l.path.rec
	if l.reg != nil {
		return Send{}, false
	}
	if !rec.confirmUntil.IsZero() && !now.Before(rec.confirmUntil) {
		// The primary stayed silent: register on the one that answered.
		r.recoverOn(i, rec.alt, now)
		return Send{}, false
	}
	if now.Before(rec.next) {
		return Send{}, false
	}
	e := rec.nextEncap
	if !rec.confirmUntil.IsZero() || !slices.Contains(l.candidates, e) {
		e = rec.probe
	}
	rec.probes++
	rec.nextEncap = rec.probe
	if others := r.alternates(l, rec.probe, rec.primary); len(others) > 0 && rec.probes >= alternateAfter && rec.probes%4 == 3 {
		rec.nextEncap = others[(rec.probes/4)%len(others)]
	}
	rec.next = now.Add(ProbeGap(l.cfg.ProbeInterval, rec.nextEncap))
	return r.probe(i, e, now)
}

// alternates are uplink l's candidates other than these.
func (r *UpdateList) alternates(l *link, these ...nemo.Encap) []nemo.Encap {
	var out []nemo.Encap
	for _, e := range l.candidates {
		if !slices.Contains(these, e) {
			out = append(out, e)
		}
	}
	return out
}

// recoverOn registers a dead path again over e, whose probe was answered.
// The recovery stays until the registration is acknowledged: a Binding
// Update that gets no answer sends the path back to probing
// (recoveryGaveUp).
func (r *UpdateList) recoverOn(i int, e nemo.Encap, now time.Time) {
	l := r.links[i]
	c := slices.Index(l.candidates, e)
	if c < 0 {
		return
	}
	r.cfg.Logf("uplink %s (BID %d): the path answers again over %s, registering it", l.cfg.Name, l.cfg.BID, e)
	l.path.rec.confirmUntil = time.Time{}
	l.cand = c
	r.registerOpts(i, now, true, r.cfg.FirstTimeout, 1)
}

// recoveryGaveUp returns a dead path's registration that got no answer to
// its second attempt back to probing; it reports whether it did.
func (r *UpdateList) recoveryGaveUp(i int, p *pending, now time.Time) bool {
	l := r.links[i]
	if l.path.rec == nil || p.kind != kindRegister || p.attempts < 2 {
		return false
	}
	if p.encap == l.path.rec.primary && p.encap != l.path.rec.probe {
		l.path.rec.primaryFailed = true
	}
	l.reg = nil
	l.path.rec.next = now
	return true
}

// pathRegistered starts probing a binding that just became registered.
func (r *UpdateList) pathRegistered(i int, now time.Time) {
	l := r.links[i]
	l.confirmed, l.nextProbe = now, now.Add(r.idleGap(l))
	l.path.rec = nil
	l.path.watch.Reset()
}

// pathStatus is a binding's probe figures for its status.
func (l *link) pathStatus(now time.Time) (rtt time.Duration, loss float64) {
	return l.path.watch.RTT.SRTT, l.path.log.loss(now, l.path.watch.RTT.Timeout())
}
