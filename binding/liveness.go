package binding

import (
	"time"

	"nemod/nemo"
)

// The liveness of a binding's path, judged the same way at both ends from
// what crosses it (the data plane keeps the clocks, see Clock):
//
//   - Traffic left unanswered: when a packet was sent to the peer and
//     nothing at all came back from it for Suspect (max(3 x smoothed RTT,
//     50 ms)), the sender probes at once. With traffic flowing both ways
//     that silence never lasts that long on a working path, whatever its
//     random loss.
//   - Idle paths get a probe every interval (probe_interval for a native
//     Heartbeat, proportionally longer for the larger UDP ones, so that
//     every path kind costs the same bits).
//   - Either kind of probe opens an episode: up to ProbeFailures probes
//     (IdleExtraProbes more for an idle probe's), each given Gap (the
//     larger of SRTT + 4 x RTTVAR and the episode's span shared among
//     them) to be answered, and the path is dead when nothing was heard
//     from the peer by the time the last one's Gap ran out. Anything
//     heard ends the episode. A suspicion's span is 150 ms;
//     an idle probe's is what is left of two native probe intervals
//     (900 ms by default) after its probe gap, at least 150 ms: an idle
//     path is dead about 900 ms after it was last heard, as when it was
//     judged by its idle probes alone, and no stall of the daemons
//     shorter than that span makes a false failure.
//   - One-way traffic is answered only by probes: each episode a probe
//     ends without traffic from the peer doubles the silence the next
//     one needs, up to the idle interval, until traffic comes back.

const (
	// SuspectFloor is the shortest silence that makes a sender probe: on a
	// LAN-short path, three round trips would be scheduling noise.
	SuspectFloor = 50 * time.Millisecond
	// TimeoutFloor is the shortest time an episode waits for an answer,
	// all its probes together: room for the two daemons' goroutines to be
	// scheduled on a loaded router.
	TimeoutFloor = 150 * time.Millisecond
	// maxBackoff caps the doubling of the suspicion threshold.
	maxBackoff = 8
	// IdleExtraProbes are the probes an idle probe's episode sends
	// beyond ProbeFailures, within the same span. Nothing waits on an
	// idle path, and an idle path is judged by its probes alone: under
	// random loss p each way, one probe in (1-(1-p)^2)^-n makes a false
	// failure, n the episode's probes. With 5 % that is one idle probe in
	// a thousand for three probes, one in a hundred thousand for five.
	IdleExtraProbes = 2
)

// ProbeSize is the octets one probe puts on an uplink (at the IP layer)
// on a path of encapsulation e: the Heartbeat packet, inside UDP on UDP
// paths.
func ProbeSize(e nemo.Encap) int {
	if e.UDP() {
		return nemo.HeartbeatPacketLen + e.Overhead()
	}
	return nemo.HeartbeatPacketLen
}

// ProbeGap is the spacing of a path's idle probes: interval is the
// spacing of native Heartbeats (56 octets; 450 ms by default, 996 bit/s),
// and larger probes go proportionally less often, so that every path
// kind stays under the same bit rate (UDP/IPv4 every 675 ms, UDP/IPv6
// every 836 ms by default).
func ProbeGap(interval time.Duration, e nemo.Encap) time.Duration {
	return interval * time.Duration(ProbeSize(e)) / time.Duration(ProbeSize(nemo.EncapIPv6))
}

// RTT is a smoothed round-trip time and its variation (RFC 6298 §2).
type RTT struct {
	SRTT, RTTVar time.Duration
	Samples      int
}

// Sample adds a measured round trip.
func (r *RTT) Sample(d time.Duration) {
	if d < 0 {
		return
	}
	if r.Samples == 0 {
		r.SRTT, r.RTTVar = d, d/2
	} else {
		diff := r.SRTT - d
		if diff < 0 {
			diff = -diff
		}
		r.RTTVar = (3*r.RTTVar + diff) / 4
		r.SRTT = (7*r.SRTT + d) / 8
	}
	r.Samples++
}

// Suspect is how long traffic may go unanswered before the sender probes.
func (r RTT) Suspect() time.Duration { return max(3*r.SRTT, SuspectFloor) }

// RTO is how long one probe's answer may take (RFC 6298 §2 without its
// one-second floor, which is for TCP's retransmissions).
func (r RTT) RTO() time.Duration { return r.SRTT + 4*r.RTTVar }

// Timeout is how long an answer may take at the most, whatever the RTT.
func (r RTT) Timeout() time.Duration { return max(r.RTO(), TimeoutFloor) }

// Gap is how long each of an episode's failures probes waits for an
// answer before the next goes, or the path is dead after the last: its
// share of the episode's span, at least one RTO.
func (r RTT) Gap(span time.Duration, failures int) time.Duration {
	return max(max(span, TimeoutFloor)/time.Duration(max(failures, 1)), r.RTO())
}

// Clock is what the data plane saw cross one binding's path.
type Clock struct {
	// Heard is when anything last came from the peer: traffic, a probe or
	// its answer, signalling. Data is when traffic last did.
	Heard, Data time.Time
	// Sent is when traffic last went to the peer; Waiting when the first
	// packet sent after Heard did (zero or not after Heard: everything
	// sent was followed by something heard).
	Sent, Waiting time.Time
}

// unanswered returns the oldest packet sent since the peer was last
// heard, if any.
func (c Clock) unanswered() (time.Time, bool) {
	return c.Waiting, !c.Waiting.IsZero() && c.Waiting.After(c.Heard)
}

// Verdict is what Watch.Judge tells the caller to do.
type Verdict uint8

const (
	Alive    Verdict = iota // nothing to do
	ProbeNow                // send a probe now (the watch counts it as sent)
	Dead                    // the path is dead
)

// Watch judges one path; both ends run one per binding. Its zero value
// is ready. It is not safe for concurrent use.
type Watch struct {
	RTT RTT
	// start and last are the current episode's first and last probes
	// (start zero: none); sent counts its probes.
	start, last time.Time
	sent        int
	// suspected: the episode began on unanswered traffic, not on an idle
	// probe; span is how long it lasts, all its probes together.
	suspected bool
	span      time.Duration
	backoff   uint8
	settled   time.Time // when the last episode ended
}

// Probing reports whether an episode is open.
func (w *Watch) Probing() bool { return !w.start.IsZero() }

// Probed records a probe the caller sent at now on its own schedule (an
// idle probe): it opens an episode of span (at least TimeoutFloor), or
// counts in the open one.
func (w *Watch) Probed(now time.Time, span time.Duration) {
	if w.start.IsZero() {
		w.start, w.sent, w.suspected, w.span = now, 0, false, span
	}
	w.sent++
	w.last = now
}

// Reset forgets the episode (the binding was registered again, or
// declared dead and handed to recovery); the RTT stays.
func (w *Watch) Reset() { *w = Watch{RTT: w.RTT} }

// settle ends an episode that something heard answered.
func (w *Watch) settle(c Clock) {
	// Heard at the very moment of the probe counts: a packet that crossed
	// it proves the path as well as its answer.
	if w.start.IsZero() || c.Heard.Before(w.start) {
		return
	}
	if w.suspected && !c.Data.After(w.start) && w.backoff < maxBackoff {
		// Only the probes answered: the traffic is one-way.
		w.backoff++
	}
	w.start, w.sent, w.suspected, w.settled = time.Time{}, 0, false, c.Heard
}

// probes is how many probes the open episode sends, given failures: an
// idle probe's sends IdleExtraProbes more.
func (w *Watch) probes(failures int) int {
	if w.suspected {
		return failures
	}
	return failures + IdleExtraProbes
}

// Suspect is how long traffic may go unanswered before Judge probes,
// its back-off included, capped at ceiling.
func (w *Watch) Suspect(ceiling time.Duration) time.Duration { return w.suspect(ceiling) }

func (w *Watch) suspect(ceiling time.Duration) time.Duration {
	s := w.RTT.Suspect() << w.backoff
	if ceiling > w.RTT.Suspect() && s > ceiling {
		s = ceiling
	}
	return s
}

// Judge returns what to do at now with a path whose clock is c. failures
// is how many probes an episode sends before the path is dead; ceiling
// caps the suspicion threshold (the idle probe spacing).
func (w *Watch) Judge(c Clock, now time.Time, failures int, ceiling time.Duration) Verdict {
	failures = max(failures, 1)
	w.settle(c)
	if c.Data.After(w.settled) {
		w.backoff = 0
	}
	if !w.start.IsZero() {
		if at, ok := c.unanswered(); ok && !w.suspected && !now.Before(at.Add(w.suspect(ceiling))) {
			// Traffic went unanswered during an idle probe's episode: judge
			// it as a suspicion, on the shorter span.
			w.suspected, w.span = true, TimeoutFloor
		}
		failures = w.probes(failures)
		if now.Before(w.last.Add(w.RTT.Gap(w.span, failures))) {
			return Alive
		}
		if w.sent >= failures {
			return Dead
		}
		w.sent++
		w.last = now
		return ProbeNow
	}
	if at, ok := c.unanswered(); ok && !now.Before(at.Add(w.suspect(ceiling))) {
		w.start, w.last, w.sent, w.suspected, w.span = now, now, 1, true, TimeoutFloor
		return ProbeNow
	}
	return Alive
}

// Next returns when Judge next has something to do for a path whose clock
// is c, given that the caller last judged it at polled: the episode's
// next probe or its end, the moment unanswered traffic becomes
// suspicious, or, while traffic flows, polled + Suspect, since traffic
// sent after the last look becomes suspicious no sooner than that. Zero:
// nothing until the caller's own schedule.
func (w *Watch) Next(c Clock, polled time.Time, failures int, ceiling time.Duration) time.Time {
	failures = max(failures, 1)
	if !w.start.IsZero() && c.Heard.Before(w.start) {
		next := w.last.Add(w.RTT.Gap(w.span, w.probes(failures)))
		if at, ok := c.unanswered(); ok && !w.suspected {
			next = earliest(next, at.Add(w.suspect(ceiling)))
		}
		return next
	}
	s := w.suspect(ceiling)
	if at, ok := c.unanswered(); ok {
		return at.Add(s)
	}
	if !c.Sent.IsZero() && c.Sent.Add(ceiling).After(polled) {
		return polled.Add(s)
	}
	return time.Time{}
}

func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

// probeRec is one probe the router sent.
type probeRec struct {
	seq      uint32
	at       time.Time
	encap    nemo.Encap
	answered bool
}

// probeLog keeps the router's last probes: their answers give the RTT,
// the loss ratio and, while a path is down, which encapsulation answered.
type probeLog struct {
	recs [32]probeRec
	n    int // probes ever added
}

func (l *probeLog) add(seq uint32, at time.Time, e nemo.Encap) {
	l.recs[l.n%len(l.recs)] = probeRec{seq: seq, at: at, encap: e}
	l.n++
}

func (l *probeLog) find(seq uint32) *probeRec {
	for i := range min(l.n, len(l.recs)) {
		if r := &l.recs[i]; r.seq == seq && !r.at.IsZero() {
			return r
		}
	}
	return nil
}

// loss is the share of the logged probes sent before now - settle (those
// whose answer could have come) that went unanswered.
func (l *probeLog) loss(now time.Time, settle time.Duration) float64 {
	sent, lost := 0, 0
	for i := range min(l.n, len(l.recs)) {
		r := l.recs[i]
		if r.at.After(now.Add(-settle)) {
			continue
		}
		sent++
		if !r.answered {
			lost++
		}
	}
	if sent == 0 {
		return 0
	}
	return float64(lost) / float64(sent)
}

// Bucket is a token bucket: Rate tokens a second, at most Burst saved.
// The home agent's data plane answers probes from paths it has no
// binding for within one, so that forged probes cannot make it a
// reflector (an answer is no larger than the probe) and a fleet whose
// paths all come back at once re-registers at the rate the home agent
// chose. Its zero value allows nothing.
type Bucket struct {
	Rate, Burst float64
	tokens      float64
	last        time.Time
}

// Allow takes a token at now, if there is one.
func (b *Bucket) Allow(now time.Time) bool {
	if b.last.IsZero() {
		b.tokens = b.Burst
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.Burst, b.tokens+d.Seconds()*b.Rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
