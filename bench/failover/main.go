// Command failover measures what the LAN host's traffic sees when an
// uplink of the mobile router fails, in the namespace lab with the real
// daemons: a 1000 packets/s UDP stream each way between the LAN host and
// the correspondent on the uplink the fault hits, a duplicated flow
// (mode 'duplicate', both uplinks) at the same rate, and a TCP transfer,
// through three faults repeated -trials times each:
//
//	(a) the Wi-Fi carrier lost at the router
//	(b) the Wi-Fi path silently black-holed at its access router, 5 s
//	(B) the same held 30 s, (C) held 120 s: recovery after long outages
//	(c) the cellular carrier-grade NAT's mapping dropped
//	(i) the Wi-Fi black-holed while idle (every flow on the cellular
//	    uplink): found by the idle probes alone; before it, both uplinks
//	    idle for 10 s, metered at their access routers: the probes' bit rate
//	(l) 5 % random loss each way on the Wi-Fi path for 60 s while the
//	    streams use it, (k) the same on an idle Wi-Fi: false failovers
//
// and the same three, a4, b4 and c4, with the traffic in IPv4 (RFC 5555:
// IPv4-in-IPv6 on the Wi-Fi, IPv4 in UDP through the cellular NAT).
//
// For each fault and direction it prints the longest gap between
// consecutive datagrams and the datagrams lost (median and maximum over
// the trials), when the router found the path dead (detection) and when
// the path was in use again after the fault was undone (recovery), the
// duplicated flow's losses, whether the TCP transfer survived, and the
// issue's targets with PASS or FAIL. So that a figure
// far from its target can be explained from the output alone, it also
// prints the noise floor (gaps before the fault, this process's own
// sender pauses), what the daemons reported while the fault lasted, their
// counters and grouped logs, the kernel's drop counters, and a warning
// when another benchmark shared the machine.
//
//	failover -nemod bin/nemod [-trials 10] [-long-trials 3] [-faults a,b,B,C,c,i,l,k] [-hold 3s] [-steady 1s] [-v] [-keep] [-dump dir]
//
// It needs root, iproute2, nftables, radvd, ping and conntrack (as the
// lab does). Each fault kind gets a lab of its own, torn down at the end,
// on an error and on Ctrl-C.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"nemod/lab"
	"nemod/status"
)

// fault is one kind of failure and the target it is judged by.
type fault struct {
	key, title   string
	short        string // the title in the summary table
	setup        string // where the flows are, for the report
	tcpPath      string
	streamPolicy string
	tcpPolicy    string // "" for plain BID order
	dupPolicy    string // "" for both uplinks (mode duplicate)
	uplink       string // the uplink the fault hits
	bid          uint16
	inject, undo func(*lab.Lab) error
	hold         time.Duration
	target       string
	gapTarget    time.Duration
	// spreadCounts: "recovered" also needs the losses to end within the
	// target, not just the longest gap to be short.
	spreadCounts bool
	dupTarget    bool // the duplicated flow must lose nothing
	// gapMedian, when set, is a target for the median of the longest
	// gaps too; recovery one for the undo to the path in use again;
	// detect one for the fault to the router's binding leaving
	// registered (the idle fault, whose streams do not cross the path).
	gapMedian, recovery, detect time.Duration
	// idle: no flow uses the faulted uplink (the streams and the TCP on
	// the other one); long: a held outage, run -long-trials times; loss:
	// a random loss, whose verdict is the paths declared dead.
	idle, long, loss bool
	// meter: before the trials, both uplinks idle for a while, metered.
	meter bool
	v4    bool // the traffic is the mobile network's IPv4 (ipv4.go)
}

func faults(hold time.Duration) []fault {
	blackhole := func(key, title, short string, hold time.Duration, long bool) fault {
		return fault{
			key: key, title: title, short: short,
			setup:        fmt.Sprintf("stream 9000 on wifi_first (Wi-Fi, then cellular); dup 9100 on both; fault: Blackhole(wifi, on) for %v, undo: off; default probing", hold),
			tcpPath:      "no rule: Wi-Fi first",
			streamPolicy: "wifi_first", uplink: lab.Wifi, bid: 1,
			inject: func(l *lab.Lab) error { return l.Blackhole(lab.Wifi, true) },
			undo:   func(l *lab.Lab) error { return l.Blackhole(lab.Wifi, false) },
			hold:   hold, target: "gap at most 400 ms", gapTarget: 400 * time.Millisecond, gapMedian: 300 * time.Millisecond,
			recovery: time.Second, dupTarget: true, long: long,
		}
	}
	lossy := func(key, title, short, streams string, idle bool) fault {
		f := fault{
			key: key, title: title, short: short,
			setup:        "stream 9000 and dup 9100 on " + streams + "; fault: RandomLoss(wifi, 5 %) for 60 s, undo: no loss",
			tcpPath:      "no rule: Wi-Fi first",
			streamPolicy: streams, uplink: lab.Wifi, bid: 1,
			inject: func(l *lab.Lab) error { return l.RandomLoss(lab.Wifi, 5) },
			undo:   func(l *lab.Lab) error { return l.RandomLoss(lab.Wifi, 0) },
			hold:   60 * time.Second, target: "no path declared dead", idle: idle, loss: true, long: true,
		}
		if idle {
			f.tcpPath, f.tcpPolicy, f.dupPolicy = "rule tcp 9200 on cell_first", "cell_first", "cell_first"
		}
		return f
	}
	return []fault{
		{
			key: "a", title: "Wi-Fi carrier lost at the router", short: "Wi-Fi carrier lost",
			setup:        "stream 9000 on wifi_first (Wi-Fi, then cellular); dup 9100 on both; fault: CarrierDown(wifi), undo: CarrierUp",
			tcpPath:      "no rule: Wi-Fi first",
			streamPolicy: "wifi_first", uplink: lab.Wifi, bid: 1,
			inject: func(l *lab.Lab) error { return l.CarrierDown(lab.Wifi) },
			undo:   func(l *lab.Lab) error { return l.CarrierUp(lab.Wifi) },
			hold:   hold, target: "gap at most 50 ms", gapTarget: 50 * time.Millisecond, dupTarget: true,
		},
		blackhole("b", "Wi-Fi path silently black-holed at the access router while the streams use it", "Wi-Fi black-holed, 5 s", 5*time.Second, false),
		blackhole("B", "the same, held 30 s", "Wi-Fi black-holed, 30 s", 30*time.Second, true),
		blackhole("C", "the same, held 120 s", "Wi-Fi black-holed, 120 s", 120*time.Second, true),
		{
			key: "c", title: "cellular NAT mapping dropped", short: "cellular NAT dropped",
			setup:        "stream 9000 on cell_first (cellular, then Wi-Fi); dup 9100 on both; fault: FlushNAT(cell) (new random outside port), nothing to undo",
			tcpPath:      "rule tcp 9200 on cell_first",
			streamPolicy: "cell_first", tcpPolicy: "cell_first", uplink: lab.Cell, bid: 2,
			inject: func(l *lab.Lab) error { return l.FlushNAT(lab.Cell) },
			undo:   func(*lab.Lab) error { return nil },
			hold:   hold, target: "recovered within 1 s", gapTarget: time.Second, spreadCounts: true,
		},
		{
			key: "i", title: "idle Wi-Fi path black-holed (every flow on the cellular uplink)", short: "idle Wi-Fi black-holed",
			setup:        "stream 9000, dup 9100 and TCP on cell_first; the Wi-Fi carries only probes; fault: Blackhole(wifi, on), undo: off",
			tcpPath:      "rule tcp 9200 on cell_first",
			streamPolicy: "cell_first", tcpPolicy: "cell_first", dupPolicy: "cell_first", uplink: lab.Wifi, bid: 1,
			inject: func(l *lab.Lab) error { return l.Blackhole(lab.Wifi, true) },
			undo:   func(l *lab.Lab) error { return l.Blackhole(lab.Wifi, false) },
			hold:   hold, target: "found dead within 1 s", detect: time.Second, recovery: time.Second, idle: true, meter: true,
		},
		lossy("l", "5 % random loss each way on the Wi-Fi path while the streams use it, 60 s", "Wi-Fi 5 % loss, busy", "wifi_first", false),
		lossy("k", "5 % random loss each way on the idle Wi-Fi path, 60 s", "Wi-Fi 5 % loss, idle", "cell_first", true),
	}
}

type options struct {
	nemod  string
	trials int
	// longTrials is the trials of the long faults (outages of 30 s and
	// 120 s, a minute of random loss).
	longTrials int
	faults     string
	hold       time.Duration
	steady     time.Duration
	verbose    bool
	keep       bool
	dump       string
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("failover: ")
	var o options
	flag.StringVar(&o.nemod, "nemod", "bin/nemod", "the nemod binary the daemons run (a non-race build: make build)")
	flag.IntVar(&o.trials, "trials", 10, "trials per fault")
	flag.IntVar(&o.longTrials, "long-trials", 3, "trials of each long fault (B, C, l, k)")
	flag.StringVar(&o.faults, "faults", "a,b,B,C,c,i,l,k,a4,b4,c4", "the faults to run, of a, b, B, C, c, i, l and k, and each with 4 after it (the same carrying IPv4)")
	flag.DurationVar(&o.hold, "hold", 3*time.Second, "how long each fault lasts")
	flag.DurationVar(&o.steady, "steady", time.Second, "steady traffic before each fault")
	flag.BoolVar(&o.verbose, "v", false, "lab progress and a line per trial")
	flag.BoolVar(&o.keep, "keep", false, "keep each lab's directory (configs, daemon logs)")
	flag.StringVar(&o.dump, "dump", "", "write every datagram's send and arrival times around each fault to CSV files in this directory")
	flag.Parse()
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

func run(o options) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces)")
	}
	if o.trials < 1 || o.longTrials < 1 {
		return errors.New("-trials and -long-trials must be at least 1")
	}
	bin, err := filepath.Abs(o.nemod)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%w: build it first (make build)", err)
	}
	var todo []fault
	want := strings.Split(strings.ReplaceAll(o.faults, " ", ""), ",")
	for _, f := range withIPv4(faults(o.hold)) {
		if slices.Contains(want, f.key) {
			todo = append(todo, f)
		}
	}
	if len(todo) == 0 {
		return fmt.Errorf("-faults %q names none of a, b, B, C, c, i, l, k, nor any of them with 4 after it", o.faults)
	}
	printHeader(bin, o.steady)
	start := time.Now()
	w := startWatcher()
	defer w.stop()
	var results []*faultResult
	for _, f := range todo {
		fmt.Fprintf(os.Stderr, "(%s) %s: %d trials...\n", f.key, f.title, f.trials(o))
		began := time.Now()
		fr, err := runFault(bin, f, o)
		if err != nil {
			return fmt.Errorf("(%s) %s: %w", f.key, f.title, err)
		}
		fr.disturbed = w.during(began, time.Now())
		fr.print(o.verbose)
		results = append(results, fr)
	}
	printSummary(results)
	fmt.Printf("\ntotal run time %v, load average at the end: %s\n", time.Since(start).Round(time.Second), loadavg())
	return nil
}

func runFault(bin string, f fault, o options) (fr *faultResult, err error) {
	logf := func(string, ...any) {}
	if o.verbose {
		logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "  "+format+"\n", args...) }
	}
	useFamily(f.v4)
	r, err := newRig(bin, policies(f.streamPolicy, f.tcpPolicy, f.dupPolicy), o.keep, logf, f.v4)
	if err != nil {
		return nil, err
	}
	if o.keep {
		fmt.Fprintf(os.Stderr, "  lab directory (kept): %s\n", r.lab.Dir())
	}
	defer func() {
		if err != nil {
			err = r.withLogs(err)
		}
		if cerr := r.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	var meter *meterResult
	if f.meter {
		if meter, err = measureIdle(r, 10*time.Second); err != nil {
			return nil, err
		}
	}
	tr, err := startTraffic(r.lab)
	if err != nil {
		return nil, err
	}
	defer tr.stop()
	uplinks, err := checkPaths(r, tr, f)
	if err != nil {
		return nil, err
	}
	states, err := r.routerStates()
	if err != nil {
		return nil, err
	}
	encapBefore := states[f.uplink].encap
	dropsBefore := takeDrops(r.lab)
	n := f.trials(o)
	trials := make([]trial, 0, n)
	prevEnd := tr.now()
	for i := 0; i < n; i++ {
		fmt.Fprintf(os.Stderr, "  trial %d/%d\n", i+1, n)
		t, err := runTrial(r, tr, f, o.steady, prevEnd)
		if err != nil {
			return nil, fmt.Errorf("trial %d: %w", i+1, err)
		}
		trials = append(trials, t)
		prevEnd = t.end
	}
	tr.stop()
	kernelDrops := takeDrops(r.lab).since(dropsBefore)
	fr = &faultResult{f: f, trials: trials, streams: tr.streams, uplinks: uplinks, encapBefore: encapBefore,
		routerLog: logDigest(r.mr.LogPath()), agentLog: logDigest(r.ha.LogPath()), meter: meter}
	fr.kernelDrops = kernelDrops
	fr.routerCounters, fr.routerDrops = counters(r.mrSock)
	fr.agentCounters, fr.agentDrops = counters(r.haSock)
	reads, failures := tr.tcp.state()
	for _, s := range tr.streams {
		arr := arrivals(s)
		row := make([]streamTrial, len(trials))
		for i, t := range trials {
			row[i] = measureStream(s, arr, t)
		}
		fr.perTrial = append(fr.perTrial, row)
	}
	for i, t := range trials {
		// The TCP data goes the measured stream's way (same policy, same
		// direction): the path is back when that stream is.
		fr.tcp = append(fr.tcp, measureTCP(reads, failures, t, fr.perTrial[0][i].gapEnd))
	}
	if o.dump != "" {
		if err := dumpTrials(o.dump, fr, reads); err != nil {
			return nil, err
		}
	}
	return fr, nil
}

// runTrial is one fault: steady traffic, the fault for its hold, polling
// the daemons meanwhile, the undo, and steady traffic again once both
// uplinks are registered.
func runTrial(r *rig, tr *traffic, f fault, steady time.Duration, prevEnd time.Duration) (trial, error) {
	t := trial{start: prevEnd, routerDown: -1, agentGone: -1, outerMoved: -1, inUse: -1}
	time.Sleep(steady)
	before, err := r.agentBindings()
	if err != nil {
		return t, err
	}
	outer := before[f.bid]
	deadBefore, err := r.deadPaths()
	if err != nil {
		return t, err
	}
	t.fault = tr.now()
	if err := f.inject(r.lab); err != nil {
		return t, err
	}
	t.injected = tr.now()
	for tr.now() < t.fault+f.hold {
		at := tr.now() - t.fault
		if t.routerDown < 0 {
			if m, err := r.routerStates(); err == nil && m[f.uplink].state != "registered" {
				t.routerDown = at
			}
		}
		if t.agentGone < 0 || t.outerMoved < 0 {
			if m, err := r.agentBindings(); err == nil {
				o, ok := m[f.bid]
				if !ok && t.agentGone < 0 {
					t.agentGone = at
				}
				if ok && o != outer && t.outerMoved < 0 {
					t.outerMoved = at
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.undo = tr.now()
	if t.deadPaths, err = r.deadPaths(); err != nil {
		return t, err
	}
	t.deadPaths -= deadBefore
	if err := f.undo(r.lab); err != nil {
		return t, err
	}
	m, err := r.waitRegistered(40 * time.Second) // a router before recovery by probes waits out its back-off, up to 32 s
	if err != nil {
		return t, err
	}
	t.registered = tr.now()
	t.encapAfter = m[f.uplink].encap
	if err := r.waitInUse(f, 5*time.Second); err == nil {
		t.inUse = tr.now() - t.undo
	}
	time.Sleep(time.Second)
	t.end = tr.now()
	return t, nil
}

// trials is how many times the fault is run.
func (f fault) trials(o options) int {
	if f.long {
		return o.longTrials
	}
	return o.trials
}

// checkPaths makes sure, before any fault, that every stream and the TCP
// transfer get through and that the measured stream is on the uplink the
// fault will hit: a stream on the other uplink would show no gap and pass
// every target while measuring nothing.
func checkPaths(r *rig, tr *traffic, f fault) (string, error) {
	type counts struct{ tx, rx uint64 }
	read := func() (map[string]counts, error) {
		var s status.Router
		if err := statusOf(r.mrSock, &s); err != nil {
			return nil, err
		}
		m := map[string]counts{}
		for _, b := range s.Bindings {
			m[b.Uplink] = counts{b.TxPackets, b.RxPackets}
		}
		return m, nil
	}
	// Neighbour discovery and the first registrations' refreshes settle.
	time.Sleep(500 * time.Millisecond)
	a, err := read()
	if err != nil {
		return "", err
	}
	t0 := time.Now()
	time.Sleep(time.Second)
	b, err := read()
	if err != nil {
		return "", err
	}
	dt := time.Since(t0).Seconds()
	rate := func(up string) (float64, float64) {
		return float64(b[up].tx-a[up].tx) / dt, float64(b[up].rx-a[up].rx) / dt
	}
	var parts []string
	for _, up := range []string{lab.Wifi, lab.Cell} {
		tx, rx := rate(up)
		parts = append(parts, fmt.Sprintf("%s %.0f tx, %.0f rx packets/s", up, tx, rx))
	}
	desc := strings.Join(parts, "; ")
	for _, s := range tr.streams {
		if len(arrivals(s)) == 0 {
			return desc, fmt.Errorf("%s: nothing arrived in the first 1.5 s", s.name)
		}
	}
	if tr.tcp.received() == 0 {
		return desc, errors.New("the TCP transfer delivered nothing in the first 1.5 s")
	}
	other := lab.Cell
	if f.uplink == lab.Cell {
		other = lab.Wifi
	}
	// The faulted uplink carries the measured stream and the duplicated
	// flow (2000/s each way) and, but for (a) and (b)'s default, the TCP;
	// the other one only the duplicated flow's copies (1000/s).
	ftx, frx := rate(f.uplink)
	otx, orx := rate(other)
	if f.idle {
		// Everything on the other uplink: two streams each way; the
		// faulted one carries only probes.
		if ftx > 20 || frx > 20 || otx < 1800 || orx < 1800 {
			return desc, fmt.Errorf("the flows are not where the policies put them: %s", desc)
		}
		return desc, nil
	}
	if ftx < 1800 || frx < 1800 || otx > 1600 || orx > 1600 || otx < 800 || orx < 800 {
		return desc, fmt.Errorf("the flows are not where the policies put them: %s", desc)
	}
	return desc, nil
}

func printHeader(bin string, steady time.Duration) {
	fmt.Printf("nemod failover benchmark\n")
	fmt.Printf("machine: %d CPUs (%s), Linux %s, %s\n", runtime.NumCPU(), cpuModel(), kernel(), runtime.Version())
	fmt.Printf("date:    %s\n", time.Now().UTC().Format("2006-01-02 15:04:05 UTC"))
	fmt.Printf("command: %s\n", command())
	fmt.Printf("nemod:   %s\n", bin)
	fmt.Printf("load average at the start: %s\n", loadavg())
	fmt.Printf("traffic: UDP 9000 and 9100, %d-octet datagrams every %v each way (LAN host %s <-> correspondent %s); TCP LAN->CN paced at %.0f Mbit/s\n",
		payloadLen, interval, lanHost, cnHost, tcpRate*8/1e6)
	fmt.Printf("a trial: %v steady, the fault, undo, wait for both uplinks registered, 1s steady; gaps and losses from %v before the fault\n",
		steady, baseWindow)
}

func printSummary(results []*faultResult) {
	fmt.Printf("\nsummary (median / max over the trials)\n")
	fmt.Printf("  %-30s %-14s %-14s %-14s %-14s %-12s %-12s %-9s %-7s %s\n", "fault", "gap LAN->CN", "gap CN->LAN", "lost LAN->CN", "lost CN->LAN", "dead", "in use", "dup lost", "TCP", "targets")
	for _, fr := range results {
		cell := func(si int, get func(streamTrial) float64, f func(float64) string) string {
			s := fr.column(si, get)
			return f(s.median) + " / " + f(s.max)
		}
		gap := func(st streamTrial) float64 { return ms(st.gap) }
		lost := func(st streamTrial) float64 { return float64(st.lost) }
		dup := 0.0
		for si, s := range fr.streams {
			if s.dup {
				dup = max(dup, fr.column(si, func(st streamTrial) float64 { return float64(st.lost + st.retLost) }).max)
			}
		}
		n, _ := fr.tcpCounts()
		var vs []string
		for _, v := range fr.verdicts() {
			vs = append(vs, passFail(v.pass))
		}
		name := "(" + fr.f.key + ") " + fr.f.short
		if len(fr.disturbed) > 0 {
			name += " *"
		}
		timing := func(get func(trial) time.Duration) string {
			st, k := timings(fr.trials, get)
			if k == 0 {
				return "-"
			}
			return fmtMs(st.median) + " / " + fmtMs(st.max)
		}
		fmt.Printf("  %-30s %-14s %-14s %-14s %-14s %-12s %-12s %-9s %-7s %s\n", name,
			cell(0, gap, fmtMs), cell(1, gap, fmtMs), cell(0, lost, fmtCount), cell(1, lost, fmtCount),
			timing(func(t trial) time.Duration { return t.routerDown }), timing(func(t trial) time.Duration { return t.inUse }),
			fmtCount(dup), fmt.Sprintf("%d/%d", n, len(fr.tcp)), strings.Join(vs, " "))
	}
	fmt.Printf("  gaps in ms; lost in datagrams (of 1000/s); dead: fault to the router's binding leaving 'registered', ms;\n")
	fmt.Printf("  in use: undo to the binding in use again, ms; dup lost: most in one trial, either direction, fault and return;\n")
	fmt.Printf("  targets in the order each fault's section lists them; * another benchmark ran meanwhile\n")
	for _, fr := range results {
		if fr.meter != nil {
			fr.meter.print()
		}
	}
}

func command() string {
	args := strings.Join(os.Args[1:], " ")
	// Under `go run` the binary sits in a temporary build directory; the
	// command to repeat is the go run one.
	if strings.Contains(os.Args[0], "go-build") {
		return strings.TrimSpace("go run ./bench/failover " + args)
	}
	return strings.TrimSpace(os.Args[0] + " " + args)
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
