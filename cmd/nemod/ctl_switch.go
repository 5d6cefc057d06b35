package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"nemod/control"
	"nemod/status"
)

const switchUsage = "usage: nemod ctl -s SOCKET switch HOME-ADDRESS|NAI|all --to ADDRESS [--to ADDRESS]... [--json]\n" +
	"       nemod ctl -s SOCKET drain [--to ADDRESS]... [--wait SECONDS] [--json]"

// addrList collects repeated --to flags.
type addrList []string

func (a *addrList) String() string { return strings.Join(*a, ",") }

func (a *addrList) Set(s string) error {
	*a = append(*a, strings.Split(s, ",")...)
	return nil
}

// ctlSwitch asks the home agent to move routers to another home agent
// (RFC 5142), or to move every router off itself (drain), and prints the
// answer: drain's comes once the routers moved.
func ctlSwitch(sock, cmd string, args []string, asJSON bool) int {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	var to addrList
	fs.Var(&to, "to", "the home agent address to move to (repeat, in order of preference)")
	wait := fs.Float64("wait", 60, "drain: how long to wait for the routers to move, in seconds")
	var target string
	if cmd == "switch" && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		target, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		fmt.Fprintln(os.Stderr, switchUsage)
		return 2
	}
	if cmd == "switch" && target == "" && fs.NArg() == 1 {
		target = fs.Arg(0)
	} else if fs.NArg() > 0 || (cmd == "switch" && (target == "" || len(to) == 0)) {
		fmt.Fprintln(os.Stderr, switchUsage)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(*wait+15)*time.Second)
	defer cancel()
	req := map[string]any{"target": target, "to": []string(to), "wait": *wait}
	var out json.RawMessage
	if err := control.Do(ctx, sock, cmd, req, &out); err != nil {
		fmt.Fprintf(os.Stderr, "nemod ctl %s: %v\n", cmd, err)
		return 1
	}
	if asJSON {
		os.Stdout.Write(append(out, '\n'))
		return 0
	}
	var r status.SwitchReply
	if err := json.Unmarshal(out, &r); err != nil {
		fmt.Fprintf(os.Stderr, "nemod ctl %s: %v\n", cmd, err)
		return 1
	}
	list := func(s []string) string {
		if len(s) == 0 {
			return "none"
		}
		return strings.Join(s, " ")
	}
	fmt.Printf("told to switch to %s: %s\n", list(r.To), list(r.Switched))
	if cmd == "drain" {
		fmt.Printf("moved: %s\nunanswered: %s\ninstances handed over: %s\n", list(r.Moved), list(r.Unanswered), list(r.HandedOver))
	}
	return 0
}

// printCluster lists a cluster member's instances and members.
func printCluster(w io.Writer, c *status.Cluster) {
	if c == nil {
		return
	}
	conn := "connected"
	if !c.Connected {
		conn = "NOT connected"
	}
	fmt.Fprintf(w, "cluster member %s, %s, lease %.1fs left of %.0fs\n", c.Node, conn, c.LeaseLeft, c.LeaseTTL)
	fmt.Fprintln(w, "INSTANCE\tIPV4\tOWNER\tNEXT\tROUTERS")
	for _, i := range c.Instances {
		next := "-"
		if len(i.Candidates) > 1 {
			next = strings.Join(i.Candidates[1:], " ")
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\n", i.Address, dash(i.AddressV4), dash(i.Owner), next, i.Routers)
	}
	fmt.Fprintln(w, "MEMBER\tALIVE\tOWNS")
	for _, m := range c.Members {
		alive := "yes"
		if !m.Alive {
			alive = "no"
		}
		if m.Draining {
			alive += " (draining)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", m.Node, alive, dash(strings.Join(m.Owns, " ")))
	}
	fmt.Fprintln(w)
}
