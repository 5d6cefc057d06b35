package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"nemod/lab"
)

// sample is one iperf3 run, one direction.
type sample struct {
	bps     float64   // the receiver's figure
	retrans float64   // TCP retransmits the sender counted
	cpu     []float64 // % of one core, one per caseRun.daemons
	names   []string  // "mr wireguard-go", parallel to cpu
	machine float64   // % of all the machine's cores busy, softirq included
	others  float64   // % of one core used by processes outside the lab
}

func (s sample) cpuSummary() string {
	var parts []string
	for i, n := range s.names {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", n, s.cpu[i]))
	}
	parts = append(parts, fmt.Sprintf("machine %.0f%% of %d cores", s.machine, numCPU()),
		fmt.Sprintf("outside the lab %.0f%%", s.others))
	return strings.Join(parts, ", ")
}

const iperfPort = "5201"

// startIperfServer runs one iperf3 server on CN for the lab's life: it
// serves the runs one after the other, and Close stops it.
func (c *caseRun) startIperfServer(ctx context.Context) error {
	p, err := c.l.Start(lab.CN, "iperf3-server", "iperf3", "-s", "-B", c.cnAddr(), "-p", iperfPort)
	if err != nil {
		return err
	}
	err = waitFor(5*time.Second, func() bool {
		out, err := c.l.Run(ctx, lab.CN, "ss", "-Hltn", "sport = :"+iperfPort)
		return err == nil && strings.TrimSpace(out) != ""
	})
	if err != nil {
		return fmt.Errorf("iperf3 server not listening on CN: %s", logTail(p.LogPath()))
	}
	return nil
}

type iperfResult struct {
	Error string `json:"error"`
	End   struct {
		SumSent struct {
			BitsPerSecond float64 `json:"bits_per_second"`
			Retransmits   float64 `json:"retransmits"`
		} `json:"sum_sent"`
		SumReceived struct {
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
}

// iperf runs one single-stream TCP test from the LAN host, reverse for CN
// -> LAN, and the daemons' and the machine's CPU use over the same time.
func (c *caseRun) iperf(ctx context.Context, reverse bool) (sample, error) {
	s := sample{}
	for _, d := range c.daemons {
		s.names = append(s.names, d.role+" "+d.name)
	}
	secs := strconv.Itoa(int(c.o.dur.Seconds()))
	args := []string{"iperf3", "-c", c.cnAddr(), "-p", iperfPort, "-t", secs, "-J", "--connect-timeout", "3000"}
	if reverse {
		args = append(args, "-R")
	}
	// iperf3 ends by itself; this only guards against a path that dies
	// mid-run, where it would wait for its control connection for long.
	ictx, cancel := context.WithTimeout(ctx, c.o.dur+30*time.Second)
	defer cancel()
	cmd := c.l.Command(ictx, lab.LAN, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr

	if c.o.settle > 0 {
		waited, quiet := settle(c.o.settle)
		switch {
		case !quiet:
			fmt.Printf("   (the machine is still busy with other work after %v: measuring all the same)\n", c.o.settle)
		case waited > time.Second:
			fmt.Printf("   (waited %v for other work on the machine to stop)\n", waited.Round(100*time.Millisecond))
		}
	}
	before, err := c.cpuTicks()
	if err != nil {
		return s, err
	}
	mBefore, err := machineTicks()
	if err != nil {
		return s, err
	}
	pBefore := processTicks(c.labNS)
	t0 := time.Now()
	out, runErr := cmd.Output()
	wall := time.Since(t0)
	pAfter := processTicks(c.labNS)
	after, err := c.cpuTicks()
	if err != nil {
		return s, err
	}
	mAfter, err := machineTicks()
	if err != nil {
		return s, err
	}

	var r iperfResult
	jerr := json.Unmarshal(out, &r)
	switch {
	case r.Error != "":
		return s, fmt.Errorf("iperf3: %s", r.Error)
	case ictx.Err() != nil:
		return s, fmt.Errorf("iperf3 did not finish within %v, killed (a stalled stream gives no JSON)", c.o.dur+30*time.Second)
	case runErr != nil:
		return s, fmt.Errorf("iperf3: %w: %s", runErr, strings.TrimSpace(stderr.String()))
	case jerr != nil:
		return s, fmt.Errorf("iperf3 -J: %w", jerr)
	case r.End.SumReceived.BitsPerSecond <= 0:
		return s, errors.New("iperf3 reports nothing received")
	}
	s.bps = r.End.SumReceived.BitsPerSecond
	s.retrans = r.End.SumSent.Retransmits
	for i := range c.daemons {
		s.cpu = append(s.cpu, 100*float64(after[i]-before[i])/clockTicks()/wall.Seconds())
	}
	var client float64
	if ps := cmd.ProcessState; ps != nil {
		client = (ps.UserTime() + ps.SystemTime()).Seconds() * clockTicks()
	}
	s.others = 100 * outsideLab(pBefore, pAfter, mBefore, mAfter, client) / clockTicks() / wall.Seconds()
	if busy, total := mAfter.busy-mBefore.busy, mAfter.total-mBefore.total; total > 0 {
		s.machine = 100 * float64(busy) / float64(total)
	}
	return s, nil
}

// cpuTicks returns utime+stime of every daemon of the case: the whole
// process, every thread included.
func (c *caseRun) cpuTicks() ([]uint64, error) {
	ticks := make([]uint64, len(c.daemons))
	for i, d := range c.daemons {
		t, err := procTicks(d.pid)
		if err != nil {
			return nil, fmt.Errorf("%s on %s (pid %d) is gone: %w", d.name, d.role, d.pid, err)
		}
		ticks[i] = t
	}
	return ticks, nil
}

// statFields returns the fields of /proc/PID/stat after the command
// name, which may hold spaces and parentheses: f[0] is the state (field
// 3), f[11] and f[12] utime and stime (fields 14 and 15).
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	return strings.Fields(string(b[i+1:])), nil
}

func procTicks(pid int) (uint64, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, fmt.Errorf("exited (state %s)", f[0])
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return ut + st, nil
}

// nsID identifies a network namespace.
type nsID struct{ dev, ino uint64 }

func statNS(path string) (nsID, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return nsID{}, false
	}
	return nsID{uint64(st.Dev), st.Ino}, true
}

// labNamespaces identifies the lab's namespaces, for processTicks.
func labNamespaces(l *lab.Lab) map[nsID]bool {
	m := map[nsID]bool{}
	for _, role := range lab.Roles {
		if id, ok := statNS(filepath.Join("/var/run/netns", l.NS(role))); ok {
			m[id] = true
		}
	}
	return m
}

// procClass sorts processes for the "outside the lab" figure.
type procClass uint8

const (
	classOther procClass = iota
	classLab
	classKernel
)

type procTicksOf struct {
	ticks uint64 // utime+stime
	class procClass
}

// processTicks returns the CPU time of every process, by pid, and whether
// it runs in the lab or is a kernel thread (ksoftirqd and kworkers do the
// lab's forwarding too).
func processTicks(inLab map[nsID]bool) map[int]procTicksOf {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	m := map[int]procTicksOf{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := statFields(pid)
		if err != nil || len(f) < 13 {
			continue
		}
		var p procTicksOf
		ut, _ := strconv.ParseUint(f[11], 10, 64)
		st, _ := strconv.ParseUint(f[12], 10, 64)
		p.ticks = ut + st
		// flags, field 9: PF_KTHREAD
		if flags, _ := strconv.ParseUint(f[6], 10, 64); flags&0x00200000 != 0 {
			p.class = classKernel
		} else if id, ok := statNS(fmt.Sprintf("/proc/%d/ns/net", pid)); ok && inLab[id] {
			p.class = classLab
		}
		m[pid] = p
	}
	return m
}

// outsideLab is the CPU time, in ticks, that went neither to the lab's
// processes (labExtra: what of theirs exited meanwhile, the iperf3
// client) nor to the kernel's interrupt work and threads: the other work
// on a shared machine, which explains a run slower than its neighbours.
// The machine's total is exact, so processes that came and went during
// the run count too.
func outsideLab(before, after map[int]procTicksOf, mBefore, mAfter cpuTimes, labExtra float64) float64 {
	var lab, kernel float64
	for pid, a := range after {
		d := float64(a.ticks - min(a.ticks, before[pid].ticks))
		switch a.class {
		case classLab:
			lab += d
		case classKernel:
			kernel += d
		}
	}
	busy := float64(mAfter.busy-mBefore.busy) - float64(mAfter.irq-mBefore.irq)
	return max(0, busy-lab-labExtra-kernel)
}

type cpuTimes struct{ busy, total, irq uint64 }

// machineTicks reads the first line of /proc/stat: the kernel's forwarding
// runs in softirq, which no process is charged for, so the machine's busy
// time is what shows plain routing's cost.
func machineTicks() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return cpuTimes{}, errors.New("/proc/stat: unexpected first line")
	}
	// user nice system idle iowait irq softirq steal [guest guest_nice],
	// guest time being already counted in user.
	var t cpuTimes
	for i, s := range f[1:min(len(f), 9)] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return cpuTimes{}, err
		}
		t.total += v
		if i != 3 && i != 4 {
			t.busy += v
		}
		if i == 5 || i == 6 {
			t.irq += v
		}
	}
	return t, nil
}

// settle waits until the machine has been idle for half a second, less
// than a tenth of its cores busy, or until max: on a machine shared with
// other work a run that starts during someone's build measures the build.
func settle(max time.Duration) (waited time.Duration, quiet bool) {
	start := time.Now()
	for time.Since(start) < max {
		a, err1 := machineTicks()
		time.Sleep(500 * time.Millisecond)
		b, err2 := machineTicks()
		if err1 != nil || err2 != nil {
			return time.Since(start), false
		}
		if total := b.total - a.total; total > 0 && float64(b.busy-a.busy) < 0.1*float64(total) {
			return time.Since(start), true
		}
	}
	return time.Since(start), false
}

var clkTck float64

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every Linux
// the harness runs on, asked of getconf all the same.
func clockTicks() float64 {
	if clkTck == 0 {
		clkTck = 100
		if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
			if v, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && v > 0 {
				clkTck = float64(v)
			}
		}
	}
	return clkTck
}

// findPid returns the pid of the process of a role's namespace whose
// command line match accepts: hint (what lab.Start returned) if it
// already is that process, otherwise whichever process of the namespace
// is. `ip netns exec` execs the command, so hint is usually right, but
// until the exec it is ip's, and a wrapper that forks would make it
// wrong for good.
func findPid(l *lab.Lab, role string, hint int, match func(args []string) bool) (int, error) {
	var found int
	err := waitFor(3*time.Second, func() bool {
		if args := cmdline(hint); args != nil && match(args) {
			found = hint
			return true
		}
		out, err := exec.Command("ip", "netns", "pids", l.NS(role)).Output()
		if err != nil {
			return false
		}
		for _, f := range strings.Fields(string(out)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			if args := cmdline(pid); args != nil && match(args) {
				found = pid
				return true
			}
		}
		return false
	})
	if err != nil {
		return 0, fmt.Errorf("no matching process in %s (started as pid %d, now %q)", role, hint, cmdline(hint))
	}
	return found, nil
}

func cmdline(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// setVethFeatures runs `ethtool -K DEV features...` on every veth of every
// namespace, to see what an offload setting does to each case.
func setVethFeatures(ctx context.Context, l *lab.Lab, features []string) error {
	for _, role := range lab.Roles {
		out, err := l.Run(ctx, role, "ip", "-j", "link", "show", "type", "veth")
		if err != nil {
			return err
		}
		var links []struct {
			Name string `json:"ifname"`
		}
		if err := json.Unmarshal([]byte(out), &links); err != nil {
			return fmt.Errorf("%s: ip -j link: %w", role, err)
		}
		for _, ln := range links {
			if _, err := l.Run(ctx, role, append([]string{"ethtool", "-K", ln.Name}, features...)...); err != nil {
				return err
			}
		}
	}
	return nil
}

// offloads summarises a device's offload settings that decide how much
// work each hop does per byte: with TSO and GSO a veth hands 64 KiB
// segments along unsplit, and forwarding hops route them as one packet.
func offloads(ctx context.Context, l *lab.Lab, role, dev string) string {
	if _, err := exec.LookPath("ethtool"); err != nil {
		return "(ethtool not installed)"
	}
	out, err := l.Run(ctx, role, "ethtool", "-k", dev)
	if err != nil {
		return "(ethtool -k failed)"
	}
	want := []string{"tcp-segmentation-offload", "generic-segmentation-offload", "generic-receive-offload",
		"rx-gro-list", "rx-udp-gro-forwarding", "tx-checksumming"}
	short := map[string]string{"tcp-segmentation-offload": "tso", "generic-segmentation-offload": "gso",
		"generic-receive-offload": "gro", "rx-gro-list": "gro-list", "rx-udp-gro-forwarding": "udp-gro-fwd", "tx-checksumming": "tx-csum"}
	var parts []string
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		for _, w := range want {
			if k == w {
				parts = append(parts, short[w]+" "+strings.Fields(v)[0])
			}
		}
	}
	return strings.Join(parts, ", ")
}

// runIn runs a command in the root namespace with stdin and returns its
// trimmed stdout.
func runIn(ctx context.Context, stdin, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

func needCommand(name string) error {
	if _, err := exec.LookPath(name); err != nil {
		return fmt.Errorf("%s not found: run scripts/deps.sh (make deps)", name)
	}
	return nil
}
