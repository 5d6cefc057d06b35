package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"nemod/control"
	"nemod/status"
)

const revokeUsage = "usage: nemod ctl -s SOCKET revoke HOME-ADDRESS|NAI [--bid N]... [--reason administrative|unspecified|user|access-network|out-of-sync] [--json]"

// bidList collects repeated --bid flags.
type bidList []uint16

func (b *bidList) String() string { return fmt.Sprint([]uint16(*b)) }

func (b *bidList) Set(s string) error {
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.ParseUint(f, 10, 16)
		if err != nil || n == 0 {
			return fmt.Errorf("%q is not a BID (1..65535)", f)
		}
		*b = append(*b, uint16(n))
	}
	return nil
}

// ctlRevoke asks the home agent to revoke a router's bindings (RFC 5846)
// and prints what the router answered.
func ctlRevoke(sock string, args []string, asJSON bool) int {
	fs := flag.NewFlagSet("revoke", flag.ContinueOnError)
	var bids bidList
	fs.Var(&bids, "bid", "a binding to revoke (repeat, or N,M); none: every binding")
	reason := fs.String("reason", "administrative", "the revocation trigger")
	// The target may come before or after the flags.
	var target string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		target, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		fmt.Fprintln(os.Stderr, revokeUsage)
		return 2
	}
	if target == "" && fs.NArg() == 1 {
		target = fs.Arg(0)
	} else if fs.NArg() > 0 || target == "" {
		fmt.Fprintln(os.Stderr, revokeUsage)
		return 2
	}
	// The answer waits for the router's acknowledgement or the last
	// retransmission (about 3 s).
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var out json.RawMessage
	req := map[string]any{"target": target, "reason": *reason}
	if len(bids) > 0 {
		req["bids"] = []uint16(bids)
	}
	if err := control.Do(ctx, sock, "revoke", req, &out); err != nil {
		fmt.Fprintf(os.Stderr, "nemod ctl revoke: %v\n", err)
		return 1
	}
	if asJSON {
		os.Stdout.Write(append(out, '\n'))
		return 0
	}
	var r status.Revocation
	if err := json.Unmarshal(out, &r); err != nil {
		fmt.Fprintf(os.Stderr, "nemod ctl revoke: %v\n", err)
		return 1
	}
	which := "every binding"
	if len(r.BIDs) > 0 {
		which = "BID " + strings.Trim(fmt.Sprint(r.BIDs), "[]")
	}
	if !r.Answered {
		fmt.Printf("revoked %s of %s (%s); no acknowledgement after %d transmissions\n", which, r.Router, r.HomeAddress, r.Transmissions)
		return 0
	}
	fmt.Printf("revoked %s of %s (%s); acknowledged with status %d (%s)\n", which, r.Router, r.HomeAddress, r.Status, braStatus(r.Status))
	return 0
}

func braStatus(st uint8) string {
	switch st {
	case 0:
		return "success"
	case 1:
		return "partial success"
	case 128:
		return "binding does not exist"
	}
	return "refused"
}
