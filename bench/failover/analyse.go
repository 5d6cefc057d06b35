package main

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// baseWindow is how long before the fault the streams count as steady:
// gaps there are the noise floor (this process's and the daemons'
// scheduling on two shared cores), losses there are packets the fault
// caught in flight.
const baseWindow = 500 * time.Millisecond

// trial is one fault, timed from the traffic's epoch.
type trial struct {
	start      time.Duration // end of the previous trial: its TCP window opens here
	fault      time.Duration // just before the fault was injected
	injected   time.Duration // when the command that injects it returned
	undo       time.Duration // just before it was undone
	registered time.Duration // both uplinks registered again after the undo
	end        time.Duration
	// From polling the daemons every 10 ms during the fault, -1 if never:
	// the faulted uplink no longer registered at the router, its binding
	// gone from the home agent, the binding's outer address changed there.
	routerDown, agentGone, outerMoved time.Duration
	// The faulted uplink's encapsulation once registered again: with
	// encap 'auto' a path that stopped answering may come back on another.
	encapAfter string
	// inUse is from the undo to the faulted uplink's binding carrying the
	// streams again (registered, for an idle one), -1 if not within 5 s;
	// deadPaths the paths the router declared dead during the fault.
	inUse     time.Duration
	deadPaths uint64
}

// streamTrial is what one stream showed in one trial.
type streamTrial struct {
	base    time.Duration // longest gap in the steady window before the fault
	gap     time.Duration // longest gap that overlaps the fault
	gapEnd  time.Duration // when the packet that ended it arrived
	retGap  time.Duration // longest gap after the undo
	lost    int           // sent from baseWindow before the fault until the undo, never arrived
	retLost int           // sent after the undo, never arrived
	// Of lost and retLost, the datagrams whose UDP checksum computes to
	// zero (see stream.zeroChecksum): lost to that, not to the fault.
	zeroSumLost int
	// From the first lost datagram to the last, by send time, in the same
	// window: a stream that came back for a moment and broke again has
	// a short longest gap but a long spread.
	spread time.Duration
	// The sender's own longest pause from baseWindow before the fault to
	// the undo: a gap no longer than it may be this process's, not nemod's.
	senderPause time.Duration
}

// measureStream looks at one trial of a stream whose first arrivals,
// sorted, are arr.
func measureStream(s *stream, arr []int64, tr trial) streamTrial {
	var r streamTrial
	from, fault, undo, end := int64(tr.fault-baseWindow), int64(tr.fault), int64(tr.undo), int64(tr.end)
	i := sort.Search(len(arr), func(i int) bool { return arr[i] >= from })
	// The window's ends stand for arrivals, so that a stream that never
	// came back shows the whole time as its gap.
	prev := from
	for {
		next := end
		if i < len(arr) && arr[i] < end {
			next = arr[i]
		}
		g := time.Duration(next - prev)
		switch {
		case next <= fault:
			r.base = max(r.base, g)
		case prev < undo:
			if g > r.gap {
				r.gap, r.gapEnd = g, time.Duration(next)
			}
		default:
			r.retGap = max(r.retGap, g)
		}
		if next == end {
			break
		}
		prev = next
		i++
	}
	// sent is in send order, so in time order.
	seqAt := func(t int64) int { return sort.Search(len(s.sent), func(i int) bool { return s.sent[i] >= t }) }
	isLost := func(seq int) bool { return seq >= len(s.recv) || s.recv[seq] == 0 }
	lostIn := func(a, b int) int {
		n := 0
		for seq := a; seq < b; seq++ {
			if isLost(seq) {
				n++
				if s.zeroChecksum(uint64(seq)) {
					r.zeroSumLost++
				}
			}
		}
		return n
	}
	a, b := seqAt(from), seqAt(undo)
	r.lost = lostIn(a, b)
	first, last := -1, -1
	for seq := a; seq < b; seq++ {
		if isLost(seq) {
			if first < 0 {
				first = seq
			}
			last = seq
		}
	}
	if first >= 0 {
		r.spread = time.Duration(s.sent[last]-s.sent[first]) + interval
	}
	for seq := a + 1; seq < b; seq++ {
		r.senderPause = max(r.senderPause, time.Duration(s.sent[seq]-s.sent[seq-1]))
	}
	r.retLost = lostIn(seqAt(undo), seqAt(end))
	return r
}

func arrivals(s *stream) []int64 {
	a := make([]int64, 0, len(s.recv))
	for _, t := range s.recv {
		if t != 0 {
			a = append(a, t)
		}
	}
	slices.Sort(a)
	return a
}

// tcpTrial is what the TCP transfer showed in one trial.
type tcpTrial struct {
	stall    time.Duration // longest time without a byte that overlaps the fault
	afterRec int64         // bytes in the second after the measured stream recovered
	lastSec  int64         // bytes in the trial's last second, after re-registration
	failures []string
	// intact, the target's "TCP survives": no error or reset, and data
	// in the trial's last second. resumed, reported beside it, also
	// wants data in the second after the path came back, which TCP's
	// own retransmission back-off (an RTO doubled past the outage) can
	// miss on a connection that is fine.
	intact, resumed bool
	recovered       time.Duration // when the measured stream came back (its gapEnd)
}

func measureTCP(reads []tcpRead, failures []tcpEvent, tr trial, recovered time.Duration) tcpTrial {
	r := tcpTrial{recovered: recovered}
	from, fault, undo, end := int64(tr.fault-baseWindow), int64(tr.fault), int64(tr.undo), int64(tr.end)
	i := sort.Search(len(reads), func(i int) bool { return reads[i].at >= from })
	prev := from
	for ; i < len(reads) && reads[i].at < end; i++ {
		at := reads[i].at
		if at > fault && prev < undo {
			r.stall = max(r.stall, time.Duration(at-prev))
		}
		if at >= int64(recovered) && at < int64(recovered+time.Second) {
			r.afterRec += int64(reads[i].n)
		}
		if at >= end-int64(time.Second) {
			r.lastSec += int64(reads[i].n)
		}
		prev = at
	}
	if prev < undo {
		// Nothing came after the fault until the window closed.
		r.stall = max(r.stall, time.Duration(end-prev))
	}
	for _, f := range failures {
		if f.at >= tr.start && f.at < tr.end {
			r.failures = append(r.failures, fmt.Sprintf("%.3fs %s", f.at.Seconds(), f.what))
		}
	}
	r.intact = len(r.failures) == 0 && r.lastSec > 0
	r.resumed = r.intact && r.afterRec > 0
	return r
}

// tcpCounts counts the trials whose TCP connection stayed intact and
// those where it also resumed within a second of the path.
func (fr *faultResult) tcpCounts() (intact, resumed int) {
	for _, t := range fr.tcp {
		if t.intact {
			intact++
		}
		if t.resumed {
			resumed++
		}
	}
	return intact, resumed
}

// stats are the median and maximum over trials.
type stats struct{ median, max float64 }

func summarise(v []float64) stats {
	if len(v) == 0 {
		return stats{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	return stats{median: (s[(n-1)/2] + s[n/2]) / 2, max: s[n-1]}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// faultResult is one fault kind's outcome, for the report.
type faultResult struct {
	f        fault
	trials   []trial
	streams  []*stream
	perTrial [][]streamTrial // [stream][trial]
	tcp      []tcpTrial
	uplinks  string // traffic per uplink before the first trial
	// The faulted uplink's encapsulation before the first fault.
	encapBefore string
	// Other benchmarks seen running during the trials.
	disturbed []string
	// The daemons' logs, grouped, and their counters, at the end of the
	// last trial.
	routerLog, agentLog         []string
	routerCounters, routerDrops string
	agentCounters, agentDrops   string
	// The kernel's drop counters that grew during the trials.
	kernelDrops string
	// meter is the idle probes' bit rate, when the fault measures it.
	meter *meterResult
}

// encapsAfter counts the trials by the faulted uplink's encapsulation
// after re-registration, in order of first appearance.
func (fr *faultResult) encapsAfter() string {
	var order []string
	n := map[string]int{}
	for _, t := range fr.trials {
		if n[t.encapAfter] == 0 {
			order = append(order, t.encapAfter)
		}
		n[t.encapAfter]++
	}
	var parts []string
	for _, e := range order {
		parts = append(parts, fmt.Sprintf("%s %dx", e, n[e]))
	}
	return strings.Join(parts, ", ")
}

func (fr *faultResult) column(si int, get func(streamTrial) float64) stats {
	v := make([]float64, len(fr.perTrial[si]))
	for i, st := range fr.perTrial[si] {
		v[i] = get(st)
	}
	return summarise(v)
}

func fmtCount(x float64) string {
	if x == float64(int64(x)) {
		return fmt.Sprintf("%d", int64(x))
	}
	return fmt.Sprintf("%.1f", x)
}

func fmtMs(x float64) string {
	if x >= 100 {
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.1f", x)
}

// timings summarises one of a trial's poll results, ignoring trials where
// it never happened, and says in how many it did.
func timings(trials []trial, get func(trial) time.Duration) (stats, int) {
	var v []float64
	for _, t := range trials {
		if d := get(t); d >= 0 {
			v = append(v, ms(d))
		}
	}
	return summarise(v), len(v)
}

type verdict struct {
	what string
	pass bool
	why  string
}

func (fr *faultResult) verdicts() []verdict {
	var out []verdict
	worst, spread := 0.0, 0.0
	for si, s := range fr.streams {
		if !s.dup {
			worst = max(worst, fr.column(si, func(st streamTrial) float64 { return ms(st.gap) }).max)
			spread = max(spread, fr.column(si, func(st streamTrial) float64 { return ms(st.spread) }).max)
		}
	}
	medians := 0.0
	for si, s := range fr.streams {
		if !s.dup {
			medians = max(medians, fr.column(si, func(st streamTrial) float64 { return ms(st.gap) }).median)
		}
	}
	switch {
	case fr.f.loss:
		var dead uint64
		for _, t := range fr.trials {
			dead += t.deadPaths
		}
		out = append(out, verdict{fr.f.target, dead == 0,
			fmt.Sprintf("%d paths declared dead in %d trials of %v", dead, len(fr.trials), fr.f.hold)})
	case fr.f.gapTarget == 0:
	case fr.f.spreadCounts:
		out = append(out, verdict{fr.f.target, max(worst, spread) <= ms(fr.f.gapTarget),
			fmt.Sprintf("longest gap of %d trials, both directions: %s ms; losses spread over up to %s ms", len(fr.trials), fmtMs(worst), fmtMs(spread))})
	case fr.f.gapMedian > 0:
		out = append(out, verdict{fmt.Sprintf("%s, median at most %v", fr.f.target, fr.f.gapMedian),
			worst <= ms(fr.f.gapTarget) && medians <= ms(fr.f.gapMedian),
			fmt.Sprintf("longest gap of %d trials, both directions: %s ms; the larger direction's median %s ms", len(fr.trials), fmtMs(worst), fmtMs(medians))})
	default:
		out = append(out, verdict{fr.f.target, worst <= ms(fr.f.gapTarget),
			fmt.Sprintf("longest gap of %d trials, both directions: %s ms", len(fr.trials), fmtMs(worst))})
	}
	if d := fr.f.detect; d > 0 {
		st, n := timings(fr.trials, func(t trial) time.Duration { return t.routerDown })
		out = append(out, verdict{fmt.Sprintf("found dead within %v", d), n == len(fr.trials) && st.max <= ms(d),
			fmt.Sprintf("the router's binding left 'registered' %s ms after the fault (median; max %s; %d/%d trials)", fmtMs(st.median), fmtMs(st.max), n, len(fr.trials))})
	}
	if r := fr.f.recovery; r > 0 {
		st, n := timings(fr.trials, func(t trial) time.Duration { return t.inUse })
		out = append(out, verdict{fmt.Sprintf("in use again within %v of the undo", r), n == len(fr.trials) && st.max <= ms(r),
			fmt.Sprintf("%s ms (median; max %s; %d/%d trials)", fmtMs(st.median), fmtMs(st.max), n, len(fr.trials))})
	}
	if m := fr.meter; m != nil {
		worstBps, at := 0.0, ""
		for _, up := range []string{"wifi", "cell"} {
			u, d := m.bps(up)
			if u > worstBps {
				worstBps, at = u, up+" up"
			}
			if d > worstBps {
				worstBps, at = d, up+" down"
			}
		}
		out = append(out, verdict{"idle probes under 1 kbit/s per uplink", worstBps < 1000,
			fmt.Sprintf("at most %.0f bit/s (%s), IP layer", worstBps, at)})
	}
	dupLost := 0.0
	for si, s := range fr.streams {
		if s.dup {
			dupLost = max(dupLost, fr.column(si, func(st streamTrial) float64 { return float64(st.lost + st.retLost) }).max)
		}
	}
	if fr.f.dupTarget {
		out = append(out, verdict{"a duplicated flow loses nothing", dupLost == 0,
			fmt.Sprintf("most lost in one trial, either direction: %s", fmtCount(dupLost))})
	}
	n, resumed := fr.tcpCounts()
	out = append(out, verdict{"TCP survives", n == len(fr.tcp),
		fmt.Sprintf("%d/%d trials intact; resumed within 1 s of the path in %d", n, len(fr.tcp), resumed)})
	return out
}

func (fr *faultResult) print(verbose bool) {
	f := fr.f
	fmt.Printf("\n(%s) %s: %d trials, fault held %v\n", f.key, f.title, len(fr.trials), f.hold)
	fmt.Printf("    %s\n", f.setup)
	if len(fr.disturbed) > 0 {
		fmt.Printf("    WARNING: disturbed: %s ran on this machine during these trials\n", strings.Join(fr.disturbed, " and "))
	}
	fmt.Printf("    before the first fault, per uplink (router's tunnel counters): %s\n", fr.uplinks)
	fmt.Printf("    %-22s %23s %19s %10s %21s %17s\n", "", "longest gap, ms", "packets lost", "lost over", "after the undo:", "steady gap, ms")
	fmt.Printf("    %-22s %11s %11s %9s %9s %10s %10s %10s %8s %8s\n", "", "median", "max", "median", "max", "max, ms", "gap ms", "lost", "median", "max")
	for si, s := range fr.streams {
		gap := fr.column(si, func(st streamTrial) float64 { return ms(st.gap) })
		lost := fr.column(si, func(st streamTrial) float64 { return float64(st.lost) })
		rg := fr.column(si, func(st streamTrial) float64 { return ms(st.retGap) })
		rl := fr.column(si, func(st streamTrial) float64 { return float64(st.retLost) })
		base := fr.column(si, func(st streamTrial) float64 { return ms(st.base) })
		spread := fr.column(si, func(st streamTrial) float64 { return ms(st.spread) })
		fmt.Printf("    %-22s %11s %11s %9s %9s %10s %10s %10s %8s %8s\n", s.name,
			fmtMs(gap.median), fmtMs(gap.max), fmtCount(lost.median), fmtCount(lost.max), fmtMs(spread.max),
			fmtMs(rg.max), fmtCount(rl.max), fmtMs(base.median), fmtMs(base.max))
	}
	var extras []string
	for si, s := range fr.streams {
		zero := 0
		for _, st := range fr.perTrial[si] {
			zero += st.zeroSumLost
		}
		if s.copies > 0 || s.foreign > 0 || s.sendErrs > 0 || zero > 0 {
			extras = append(extras, fmt.Sprintf("%s: %d delivered twice, %d foreign, %d send errors, %d lost with a UDP checksum that computes to 0",
				s.name, s.copies, s.foreign, s.sendErrs, zero))
		}
	}
	if len(extras) > 0 {
		fmt.Printf("    over the whole run: %s\n", strings.Join(extras, "; "))
	}
	pause := fr.column(0, func(st streamTrial) float64 { return ms(st.senderPause) })
	inj, _ := timings(fr.trials, func(t trial) time.Duration { return t.injected - t.fault })
	fmt.Printf("    noise: this process's sender paused up to %s ms around a fault (median; max %s); injecting the fault took %s ms (median; max %s)\n",
		fmtMs(pause.median), fmtMs(pause.max), fmtMs(inj.median), fmtMs(inj.max))
	if st, n := timings(fr.trials, func(t trial) time.Duration { return t.routerDown }); n > 0 {
		fmt.Printf("    router (polled every 10 ms): %s binding left 'registered' %s ms after the fault (median; max %s; %d/%d trials)\n",
			f.uplink, fmtMs(st.median), fmtMs(st.max), n, len(fr.trials))
	}
	if st, n := timings(fr.trials, func(t trial) time.Duration { return t.agentGone }); n > 0 {
		fmt.Printf("    home agent (polled every 10 ms): BID %d gone %s ms after the fault (median; max %s; %d/%d trials)\n",
			f.bid, fmtMs(st.median), fmtMs(st.max), n, len(fr.trials))
	}
	if st, n := timings(fr.trials, func(t trial) time.Duration { return t.outerMoved }); n > 0 || strings.HasPrefix(f.key, "c") {
		fmt.Printf("    home agent (polled every 10 ms): BID %d at its new NAT address %s ms after the fault (median; max %s; %d/%d trials)\n",
			f.bid, fmtMs(st.median), fmtMs(st.max), n, len(fr.trials))
	}
	reg, _ := timings(fr.trials, func(t trial) time.Duration { return t.registered - t.undo })
	fmt.Printf("    undo to both uplinks registered: %s ms (median; max %s); %s encapsulation then: %s (before the first fault: %s)\n",
		fmtMs(reg.median), fmtMs(reg.max), f.uplink, fr.encapsAfter(), fr.encapBefore)
	if st, n := timings(fr.trials, func(t trial) time.Duration { return t.inUse }); n > 0 {
		fmt.Printf("    undo to the %s binding in use again (registered at both ends, carrying the streams unless idle): %s ms (median; max %s; %d/%d trials)\n",
			f.uplink, fmtMs(st.median), fmtMs(st.max), n, len(fr.trials))
	}
	var dead []string
	for _, t := range fr.trials {
		dead = append(dead, fmt.Sprint(t.deadPaths))
	}
	fmt.Printf("    paths the router declared dead during each trial's fault: %s\n", strings.Join(dead, " "))
	if fr.meter != nil {
		fr.meter.print()
	}
	var stalls []float64
	for _, t := range fr.tcp {
		stalls = append(stalls, ms(t.stall))
	}
	st := summarise(stalls)
	intact, resumed := fr.tcpCounts()
	fmt.Printf("    TCP LAN->CN at 20 Mbit/s (%s): connection intact %d/%d (no error or reset, data in each trial's last second); resumed within 1 s of the path %d/%d; longest stall %s ms (median; max %s)\n",
		f.tcpPath, intact, len(fr.tcp), resumed, len(fr.tcp), fmtMs(st.median), fmtMs(st.max))
	for i, t := range fr.tcp {
		if !t.resumed {
			fmt.Printf("      trial %d: %d bytes in the second after the stream came back (at %.3fs), %d in the last second, stall %s ms%s\n",
				i+1, t.afterRec, t.recovered.Seconds(), t.lastSec, fmtMs(ms(t.stall)), strings.Join(append([]string{""}, t.failures...), "; "))
		}
	}
	fmt.Printf("    targets:\n")
	for _, v := range fr.verdicts() {
		fmt.Printf("      %-40s %s  (%s)\n", v.what, passFail(v.pass), v.why)
	}
	fmt.Printf("    router counters: %s; data plane drops: %s\n", fr.routerCounters, fr.routerDrops)
	fmt.Printf("    home agent counters: %s; data plane drops: %s\n", fr.agentCounters, fr.agentDrops)
	fmt.Printf("    kernel drops during the trials (devices in lan, mr, ha, cn; UDP sockets in lan, cn): %s\n", fr.kernelDrops)
	fmt.Printf("    the daemons' logs over the run, grouped (count, first of its kind):\n")
	fmt.Printf("      router:\n        %s\n", strings.Join(fr.routerLog, "\n        "))
	fmt.Printf("      home agent:\n        %s\n", strings.Join(fr.agentLog, "\n        "))
	if verbose {
		fr.printTrials()
	}
}

func (fr *faultResult) printTrials() {
	fmt.Printf("    per trial (fault at s since the streams started; gap ms / lost for each stream; TCP stall, sender pause, poll results and re-registration in ms):\n")
	for i, t := range fr.trials {
		var parts []string
		for si := range fr.streams {
			st := fr.perTrial[si][i]
			parts = append(parts, fmt.Sprintf("%s/%d", fmtMs(ms(st.gap)), st.lost))
		}
		fmt.Printf("      %2d  %7.3fs  %s  tcp %s  pause %s  down %s  gone %s  moved %s  reg %s %s\n", i+1, t.fault.Seconds(), strings.Join(parts, "  "),
			fmtMs(ms(fr.tcp[i].stall)), fmtMs(ms(fr.perTrial[0][i].senderPause)), opt(t.routerDown), opt(t.agentGone), opt(t.outerMoved),
			fmtMs(ms(t.registered-t.undo)), t.encapAfter)
	}
}

func opt(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return fmtMs(ms(d))
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}
