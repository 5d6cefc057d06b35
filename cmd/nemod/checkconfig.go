package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"nemod/config"
	"nemod/setup"
)

// checkConfig is `nemod check-config -c FILE`: it runs, for each role the
// file configures, what that role's daemon runs at start (package setup),
// and says whether it would start. Exit status: 0 valid, 1 invalid, 2
// usage error.
func checkConfig(args []string) int {
	return runCheckConfig(args, os.Stdout, os.Stderr)
}

func runCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "configuration `file` to check (required)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: nemod check-config -c FILE")
		fmt.Fprintln(stderr, "Checks a nemod configuration file and prints a summary of it.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "nemod check-config: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "nemod check-config: -c FILE is required")
		fs.Usage()
		return 2
	}
	f, err := check(*path)
	if err != nil {
		// Joined errors print one per line, each PATH:LINE: message.
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, w := range f.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	fmt.Fprintln(stdout, "ok: "+summary(f))
	return 0
}

// check loads path once and builds each role's plan from it, as
// setup.Router and setup.HomeAgent do for the daemons.
func check(path string) (*config.File, error) {
	f, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if f.Router != nil {
		if _, err := setup.RouterFrom(f); err != nil {
			return nil, err
		}
	}
	if f.HomeAgent != nil {
		if _, err := setup.HomeAgentFrom(f); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func summary(f *config.File) string {
	var parts []string
	if r := f.Router; r != nil {
		parts = append(parts, fmt.Sprintf("router %q, %s, %s, %s", r.Name,
			count(len(r.Uplinks), "uplink", "uplinks"),
			count(len(r.Policies), "policy", "policies"),
			count(len(r.Rules), "rule", "rules")))
	}
	if h := f.HomeAgent; h != nil {
		parts = append(parts, fmt.Sprintf("home agent %q, %s", h.Name,
			count(len(h.MobileRouters), "mobile router", "mobile routers")))
	}
	return strings.Join(parts, "; ")
}

func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
