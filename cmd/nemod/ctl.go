package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"nemod/control"
	"nemod/router"
)

func ctl(args []string) int {
	fs := flag.NewFlagSet("ctl", flag.ContinueOnError)
	sock := fs.String("s", "/var/run/nemod.sock", "control socket of the daemon")
	asJSON := fs.Bool("json", false, "print the raw JSON answer")
	// Accept --json after the command too: `nemod ctl -s S status --json`.
	var rest []string
	for _, a := range args {
		if a == "--json" || a == "-json" {
			*asJSON = true
			continue
		}
		rest = append(rest, a)
	}
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	if fs.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: nemod ctl -s SOCKET status|flows|reload|memstats [--json]")
		return 2
	}
	cmd := fs.Arg(0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out json.RawMessage
	if err := control.Do(ctx, *sock, cmd, nil, &out); err != nil {
		fmt.Fprintf(os.Stderr, "nemod ctl %s: %v\n", cmd, err)
		return 1
	}
	print := printStatus
	switch {
	case *asJSON || (cmd != "status" && cmd != "flows"):
		os.Stdout.Write(append(out, '\n'))
		return 0
	case cmd == "flows":
		print = printFlows
	}
	if err := print(os.Stdout, out); err != nil {
		fmt.Fprintf(os.Stderr, "nemod ctl: %v\n", err)
		return 1
	}
	return 0
}

// printStatus renders a status answer as a table a person reads.
func printStatus(w io.Writer, raw json.RawMessage) error {
	var role struct {
		Role string `json:"role"`
	}
	if err := json.Unmarshal(raw, &role); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	defer tw.Flush()
	switch role.Role {
	case "router":
		var s router.Status
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		fmt.Fprintf(tw, "mobile router %s, home agent %s, prefixes %s\n\n", s.HomeAddress, s.HomeAgent, strings.Join(s.MNP, " "))
		fmt.Fprintln(tw, "BID\tUPLINK\tDEVICE\tSTATE\tENCAP\tCARE-OF ADDRESS\tLIFETIME\tPACKETS OUT/IN")
		for _, b := range s.Bindings {
			encap := b.Encap
			if b.NAT {
				encap += " (NAT)"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\n", b.BID, b.Uplink, b.Device, b.State, encap, dash(b.CoA),
				lifetime(b.Lifetime, b.State == "registered"), b.TxPackets, b.RxPackets)
		}
	case "homeagent":
		return printHomeAgentStatus(tw, raw)
	default:
		return fmt.Errorf("unknown role %q", role.Role)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func lifetime(sec int64, valid bool) string {
	if !valid {
		return "-"
	}
	return (time.Duration(sec) * time.Second).String()
}

type flowRow struct {
	Rule     string   `json:"rule"`
	FID      uint16   `json:"fid"`
	Pri      uint16   `json:"fid_pri"`
	Mode     string   `json:"mode"`
	BIDs     []uint16 `json:"bids"`
	Selector string   `json:"selector"`
	Active   bool     `json:"active"`
	Packets  uint64   `json:"packets"`
}

func writeFlows(tw io.Writer, rows []flowRow) {
	fmt.Fprintln(tw, "FID\tFID-PRI\tRULE\tMODE\tBIDS\tSELECTOR\tSTATE\tPACKETS")
	for _, f := range rows {
		state := "inactive"
		if f.Active {
			state = "active"
		}
		bids := strings.Trim(fmt.Sprint(f.BIDs), "[]")
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%d\n", f.FID, f.Pri, dash(f.Rule), f.Mode, dash(bids), f.Selector, state, f.Packets)
	}
}

// printFlows renders `nemod ctl flows` as tables.
func printFlows(w io.Writer, raw json.RawMessage) error {
	var s struct {
		Role          string    `json:"role"`
		Flows         []flowRow `json:"flows"`
		Duplicates    uint64    `json:"duplicates_suppressed"`
		MobileRouters []struct {
			Name       string    `json:"name"`
			Flows      []flowRow `json:"flows"`
			Duplicates uint64    `json:"duplicates_suppressed"`
		} `json:"mobile_routers"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	defer tw.Flush()
	if s.Role == "router" {
		writeFlows(tw, s.Flows)
		fmt.Fprintf(tw, "\nduplicates suppressed: %d\n", s.Duplicates)
		return nil
	}
	for _, r := range s.MobileRouters {
		fmt.Fprintf(tw, "%s\n", r.Name)
		writeFlows(tw, r.Flows)
		fmt.Fprintf(tw, "duplicates suppressed: %d\n\n", r.Duplicates)
	}
	return nil
}
