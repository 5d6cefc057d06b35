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
	"nemod/status"
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
		fmt.Fprintln(os.Stderr, revokeUsage)
		fmt.Fprintln(os.Stderr, switchUsage)
		return 2
	}
	cmd := fs.Arg(0)
	if cmd == "revoke" {
		return ctlRevoke(*sock, fs.Args()[1:], *asJSON)
	}
	if cmd == "switch" || cmd == "drain" {
		return ctlSwitch(*sock, cmd, fs.Args()[1:], *asJSON)
	}
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
		var s status.Router
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		fmt.Fprintf(tw, "mobile router %s, home agent %s (%s), prefixes %s\n\n", s.HomeAddress, s.HomeAgent, s.HomeAgentInUse.Reason, strings.Join(s.MNP, " "))
		printRouterIPv4(tw, s.IPv4)
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
		var s status.HomeAgent
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		fmt.Fprintf(tw, "home agent %s, home prefix %s\n\n", s.Address, s.HomePrefix)
		printCluster(tw, s.Cluster)
		fmt.Fprintln(tw, "ROUTER\tHOME ADDRESS\tPREFIXES\tBID\tENCAP\tCARE-OF ADDRESS\tREACHED AT\tLIFETIME\tPACKETS OUT/IN")
		for _, m := range s.MobileRouters {
			if len(m.Bindings) == 0 {
				fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\tnot registered\t\t\t\n", m.Name, m.HomeAddress)
				continue
			}
			for i, b := range m.Bindings {
				name, hoa, pfx := m.Name, m.HomeAddress, dash(strings.TrimSpace(strings.Join(m.MNP, " ")+" "+ipv4Prefixes(m)))
				if i > 0 {
					name, hoa, pfx = "", "", ""
				}
				encap := b.Encap
				if b.NAT {
					encap += " (NAT)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d/%d\n", name, hoa, pfx, b.BID, encap, b.CoA, b.Outer,
					lifetime(b.Lifetime, true), b.TxPackets, b.RxPackets)
			}
		}
		printPoolV4(tw, s.PoolV4)
	default:
		return fmt.Errorf("unknown role %q", role.Role)
	}
	if err := printPD(tw, role.Role, raw); err != nil {
		return err
	}
	var c struct {
		Counters status.Counters `json:"counters"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return err
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "counters: %s\n", counterLine(c.Counters))
	return nil
}

// counterLine lists the counters that are not zero, by name: the scalar
// ones, then refusals and ignored signalling by reason.
func counterLine(c status.Counters) string {
	flat := map[string]uint64{}
	if b, err := json.Marshal(c); err == nil {
		var m map[string]json.RawMessage
		json.Unmarshal(b, &m)
		for k, v := range m {
			var n uint64
			if json.Unmarshal(v, &n) == nil {
				flat[k] = n
			}
		}
	}
	for k, v := range c.Rejected {
		flat["rejected."+k] = v
	}
	for k, v := range c.Ignored {
		flat["ignored."+k] = v
	}
	var parts []string
	for _, k := range sortedKeys(flat) {
		if v := flat[k]; v != 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, v))
		}
	}
	return dash(strings.Join(parts, " "))
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

func writeFlows(tw io.Writer, rows []status.Flow) {
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
		status.RouterFlows
		MobileRouters []status.MobileRouterFlow `json:"mobile_routers"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	defer tw.Flush()
	if s.Role == status.RoleRouter {
		writeFlows(tw, s.Flows.Flows)
		fmt.Fprintf(tw, "\nduplicates suppressed: %d\n", s.Duplicates)
		return nil
	}
	for _, r := range s.MobileRouters {
		fmt.Fprintf(tw, "%s\n", r.Name)
		writeFlows(tw, r.Flows.Flows)
		fmt.Fprintf(tw, "duplicates suppressed: %d\n\n", r.Duplicates)
	}
	return nil
}
