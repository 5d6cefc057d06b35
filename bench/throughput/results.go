package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

type caseResult struct {
	path    string
	runs    []caseOutput
	skipped string
	failed  []string
}

type results struct{ byCase map[string]*caseResult }

func newResults() *results { return &results{byCase: map[string]*caseResult{}} }

func (r *results) get(c string) *caseResult {
	if r.byCase[c] == nil {
		r.byCase[c] = &caseResult{}
	}
	return r.byCase[c]
}

func (r *results) add(c string, out caseOutput) {
	cr := r.get(c)
	cr.path = out.path
	cr.runs = append(cr.runs, out)
}

func (r *results) skip(c, reason string) { r.get(c).skipped = reason }

func (r *results) fail(c string, err error) { r.get(c).failed = append(r.get(c).failed, err.Error()) }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// median returns the median of every figure of one direction, each taken
// on its own, and the runs' Gbit/s.
func (cr *caseResult) median(dir int) (m sample, gbps []float64, ok bool) {
	if cr == nil || len(cr.runs) == 0 {
		return m, nil, false
	}
	var bps, retr, mach, oth []float64
	first := cr.runs[0].dirs[dir]
	cpu := make([][]float64, len(first.cpu))
	for _, run := range cr.runs {
		s := run.dirs[dir]
		bps = append(bps, s.bps)
		gbps = append(gbps, s.bps/1e9)
		retr = append(retr, s.retrans)
		mach = append(mach, s.machine)
		oth = append(oth, s.others)
		for i := range cpu {
			cpu[i] = append(cpu[i], s.cpu[i])
		}
	}
	m = sample{bps: median(bps), retrans: median(retr), machine: median(mach), others: median(oth), names: first.names}
	for i := range cpu {
		m.cpu = append(m.cpu, median(cpu[i]))
	}
	return m, gbps, true
}

// daemonCPU is the CPU use of the case's daemon on one role, e.g.
// "wireguard-go 97%", or "-" where the case has none.
func daemonCPU(s sample, role string) string {
	for i, n := range s.names {
		if r, name, _ := strings.Cut(n, " "); r == role {
			return fmt.Sprintf("%s %.0f%%", name, s.cpu[i])
		}
	}
	return "-"
}

func (r *results) print(cases []string) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "case\tdirection\tGbit/s\truns\tretransmits\tCPU on mr\tCPU on ha\tmachine busy\toutside the lab\t")
	for _, c := range cases {
		cr := r.byCase[c]
		switch {
		case cr == nil:
			continue
		case len(cr.runs) == 0 && cr.skipped != "":
			fmt.Fprintf(tw, "%s\t-\t%s\t\t\t\t\t\t\n", c, cr.skipped)
			continue
		case len(cr.runs) == 0:
			fmt.Fprintf(tw, "%s\t-\tFAILED (below)\t\t\t\t\t\t\n", c)
			continue
		}
		for dir := 0; dir < 2; dir++ {
			m, gbps, _ := cr.median(dir)
			runs := make([]string, len(gbps))
			for i, g := range gbps {
				runs[i] = fmt.Sprintf("%.2f", g)
			}
			fmt.Fprintf(tw, "%s\t%s\t%.2f\t%s\t%.0f\t%s\t%s\t%.0f%%\t%.0f%%\t\n", c, direction(dir == 1), m.bps/1e9,
				strings.Join(runs, " "), m.retrans, daemonCPU(m, "mr"), daemonCPU(m, "ha"), m.machine, m.others)
		}
	}
	tw.Flush()
	failures := false
	for _, c := range cases {
		if cr := r.byCase[c]; cr != nil {
			for _, f := range cr.failed {
				fmt.Printf("%s FAILED: %s\n", c, oneLine(f))
				failures = true
			}
		}
	}
	if failures {
		fmt.Println("(the full errors are at the end)")
	}
	fmt.Printf("\nGbit/s: iperf3's receiver figure, one TCP stream. CPU: utime+stime of the daemon over the run, in %% of one core.\n")
	fmt.Printf("Machine busy: all %d cores' busy time from /proc/stat (100%% = every core), softirq included: the kernel's\n", numCPU())
	fmt.Printf("forwarding and the TUN and socket work of the tunnels show there and in no process. Outside the lab: CPU\n")
	fmt.Printf("of other processes on the machine during the runs, in %% of one core: a high figure marks a disturbed run.\n\n")
	for _, c := range cases {
		if cr := r.byCase[c]; cr != nil && cr.path != "" {
			fmt.Printf("%-11s %s\n", c, cr.path)
		}
	}

	ratio := func(a, b string, dir int) (float64, bool) {
		ma, _, oka := r.byCase[a].median(dir)
		mb, _, okb := r.byCase[b].median(dir)
		if !oka || !okb || mb.bps == 0 {
			return 0, false
		}
		return ma.bps / mb.bps, true
	}
	type row struct {
		a, b   string
		target float64
	}
	var rows []row
	for _, b := range [][2]string{{caseWireguard, casePlain}, {caseWireguard4, casePlain4}} {
		if slices.Contains(cases, b[0]) && slices.Contains(cases, b[1]) {
			rows = append(rows, row{b[0], b[1], 0})
		}
	}
	for _, n := range nemodCases {
		if !slices.Contains(cases, n) {
			continue
		}
		wg, plain := baselines(n)
		if slices.Contains(cases, wg) {
			rows = append(rows, row{n, wg, targetVsWireguard})
		}
		if slices.Contains(cases, plain) {
			rows = append(rows, row{n, plain, targetVsPlain})
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Println()
	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ratio (median Gbit/s)\tLAN -> CN\tCN -> LAN\ttarget\t")
	met, missed, unknown := 0, 0, 0
	for _, rw := range rows {
		cells := make([]string, 2)
		for dir := 0; dir < 2; dir++ {
			v, ok := ratio(rw.a, rw.b, dir)
			switch {
			case !ok:
				cells[dir] = "n/a"
				if rw.target > 0 {
					unknown++
				}
			case rw.target == 0:
				cells[dir] = fmt.Sprintf("%.2f", v)
			case v >= rw.target:
				cells[dir] = fmt.Sprintf("%.2f met", v)
				met++
			default:
				cells[dir] = fmt.Sprintf("%.2f MISSED", v)
				missed++
			}
		}
		target := "(for reference)"
		if rw.target > 0 {
			target = fmt.Sprintf(">= %.2f", rw.target)
		}
		fmt.Fprintf(tw, "%s / %s\t%s\t%s\t%s\t\n", rw.a, rw.b, cells[0], cells[1], target)
	}
	tw.Flush()
	if met+missed+unknown > 0 {
		fmt.Printf("\ntargets (nemod >= %.1fx wireguard-go and >= %.2fx plain routing, each way): %d met, %d missed, %d not measured\n",
			targetVsWireguard, targetVsPlain, met, missed, unknown)
	}
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 100 {
		s = s[:100] + "..."
	}
	return s
}
