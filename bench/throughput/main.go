// Command throughput measures single-stream TCP throughput through the lab
// (lan -> mr -> access router -> core -> ... -> cn) in one run, side by
// side: plain kernel routing, wireguard-go between the mobile router and
// the home agent, and nemod's tunnel in its shipped configuration (encap
// 'auto', which two nemod daemons negotiate to UDP over IPv6 on the Wi-Fi)
// beside each explicit encapsulation: IPv6-in-IPv6, UDP/IPv4, UDP/IPv6;
// and the same for the mobile network's IPv4 (RFC 5555: IPv4-in-IPv6, IPv4
// in UDP/IPv4 and UDP/IPv6, with plain IPv4 routing and wireguard-go
// carrying IPv4 as their baselines). Each case gets a fresh lab. It prints
// Gbit/s both ways (iperf3, the receiver's figure), the CPU each daemon
// used, and the ratios the issue sets targets for: nemod at least 1.5
// times wireguard-go and at least a quarter of plain routing.
//
//	throughput -nemod bin/nemod [-time 10] [-repeat 1] [-cases plain,wireguard,nemod-default,nemod-ipv6,nemod-udp4,nemod-udp6,...,plain4,wireguard4,nemod4-ipv6,...]
//
// The machine is shared: before each run it waits (-settle) for other
// work to stop, and it reports the CPU that processes outside the lab
// used during each run, so that a disturbed figure shows as one. A nemod
// case whose daemons register but pass no traffic is reported as "no data
// plane yet" rather than failed. -veth-features tries offload settings
// (ethtool -K on every veth), -hold keeps a lab up for a look inside.
//
// It needs root, iperf3, wg (wireguard-tools), ping and iproute2, and
// ethtool for -veth-features; it builds wireguard-go into
// $(go env GOPATH)/bin if it is not there.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Targets, single TCP stream on a 2-core machine.
const (
	targetVsWireguard = 1.5
	targetVsPlain     = 0.25
)

var (
	nemodCases = append([]string{caseNemodDefault, caseNemodIPv6, caseNemodUDP4, caseNemodUDP6}, nemodIPv4Cases...)
	allCases   = append([]string{casePlain, caseWireguard, caseNemodDefault, caseNemodIPv6, caseNemodUDP4, caseNemodUDP6}, ipv4Cases...)
)

type options struct {
	nemod    string
	wgBin    string
	dur      time.Duration
	repeat   int
	cases    []string
	keep     bool
	verbose  bool
	features string
	reach    time.Duration
	hold     bool
	settle   time.Duration
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("throughput: ")
	var o options
	var cases string
	secs := flag.Int("time", 10, "seconds per iperf3 run")
	flag.StringVar(&o.nemod, "nemod", "bin/nemod", "the nemod binary (nemod cases only)")
	flag.StringVar(&o.wgBin, "wireguard-go", "", "the wireguard-go binary (default: $(go env GOPATH)/bin/wireguard, built if missing)")
	flag.IntVar(&o.repeat, "repeat", 1, "runs of every case, each in a fresh lab; the median is reported")
	flag.StringVar(&cases, "cases", strings.Join(allCases, ","), "cases to run, comma-separated")
	flag.BoolVar(&o.keep, "keep", false, "keep each lab's directory (configs, daemon logs)")
	flag.BoolVar(&o.verbose, "v", false, "log the lab's progress")
	flag.StringVar(&o.features, "veth-features", "", `ethtool -K settings for every veth of each lab, e.g. "gro on" or "tso off gso off" (default: the kernel's)`)
	flag.BoolVar(&o.hold, "hold", false, "after a case's runs, keep its lab up until Enter, to look around (ip netns exec ...)")
	flag.DurationVar(&o.settle, "settle", 20*time.Second, "before each iperf3 run, wait up to this long for the machine to be idle (0: don't)")
	flag.DurationVar(&o.reach, "reach", 5*time.Second, "how long LAN -> CN may take to become reachable")
	flag.Parse()
	o.dur = time.Duration(*secs) * time.Second
	for _, c := range strings.Split(cases, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if !slices.Contains(allCases, c) {
			log.Fatalf("unknown case %q (want some of %s)", c, strings.Join(allCases, ","))
		}
		o.cases = append(o.cases, c)
	}
	if len(o.cases) == 0 || *secs < 1 || o.repeat < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

func run(o options) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces)")
	}
	for _, c := range []string{"ip", "iperf3", "ping"} {
		if err := needCommand(c); err != nil {
			return err
		}
	}
	if o.features != "" {
		if err := needCommand("ethtool"); err != nil {
			return err
		}
	}
	if slices.Contains(o.cases, caseWireguard) || slices.Contains(o.cases, caseWireguard4) {
		if err := needCommand("wg"); err != nil {
			return err
		}
		bin, err := wireguardGo(o.wgBin)
		if err != nil {
			return err
		}
		o.wgBin = bin
	}
	if slices.ContainsFunc(o.cases, isNemod) {
		abs, err := filepath.Abs(o.nemod)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("%s: build it first (make build)", abs)
		}
		o.nemod = abs
	}

	// The labs are torn down by what this process does after a signal or
	// an error, and that prints: a reader that went away (`| tee` ended by
	// the same Ctrl-C) must not kill it halfway through.
	signal.Ignore(syscall.SIGPIPE)
	sweepWireguardSockets()
	printMachine(o)
	start := time.Now()
	res := newResults()
	// Repeats are the outer loop so that whatever else the shared machine
	// does at some moment weighs on every case alike, not on one.
	var hard []error
	for r := 1; r <= o.repeat; r++ {
		for _, c := range o.cases {
			fmt.Printf("\n== %s (run %d of %d)\n", c, r, o.repeat)
			out, err := runCase(context.Background(), o, c)
			if err != nil {
				var skip *skipError
				if errors.As(err, &skip) {
					fmt.Printf("   skipped, %s\n", skip)
					res.skip(c, skip.reason)
					continue
				}
				fmt.Printf("   FAILED: %v\n", err)
				res.fail(c, err)
				hard = append(hard, fmt.Errorf("%s: %w", c, err))
				continue
			}
			res.add(c, out)
		}
	}
	fmt.Printf("\n== Results (%d s per direction, median of %d run(s), %v in all)\n\n", int(o.dur.Seconds()), o.repeat, time.Since(start).Round(time.Second))
	res.print(o.cases)
	return errors.Join(hard...)
}

func isNemod(c string) bool { return slices.Contains(nemodCases, c) }

// skipError is a case that could not be measured for a reason that is not
// a failure of the harness or the lab: nemod without its data plane yet.
type skipError struct{ reason, detail string }

func (e *skipError) Error() string { return e.reason + ": " + e.detail }
