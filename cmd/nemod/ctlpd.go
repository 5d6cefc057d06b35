package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"nemod/status"
)

// printPD renders prefix delegation and the LANs' advertisements, when a
// status answer has them.
func printPD(tw io.Writer, role string, raw json.RawMessage) error {
	switch role {
	case "router":
		var s status.Router
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		if p := s.PD; p != nil {
			fmt.Fprintf(tw, "\nprefix delegation: %s, server %s, renews in %s, rebinds in %s, lease file %s\n", p.State, p.Server,
				lifetime(p.T1, p.T1 > 0), lifetime(p.T2, p.T2 > 0), p.LeaseFile)
			fmt.Fprintln(tw, "DELEGATED PREFIX\tPREFERRED\tVALID\tVALID UNTIL")
			for _, l := range p.Prefixes {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", l.Prefix, leaseTime(l.Preferred), leaseTime(l.Valid), l.ValidUntil)
			}
		}
		if len(s.LANs) > 0 {
			fmt.Fprintln(tw, "\nLAN\tADVERTISED\tROUTER ADDRESS\tRAS SENT")
			for _, l := range s.LANs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", l.Interface, dash(strings.Join(l.Prefixes, " ")), dash(strings.Join(l.Address, " ")), l.Counters["sent"])
			}
		}
	case "homeagent":
		var s status.HomeAgent
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		p := s.PD
		if p == nil {
			return nil
		}
		where := "built-in pool, leases in " + p.LeaseFile
		if p.Mode == "relay" {
			where = "relayed to " + p.Server
		}
		fmt.Fprintf(tw, "\nprefix delegation: %s, listening on %s\n", where, p.Listen)
		fmt.Fprintln(tw, "ROUTER\tDELEGATED PREFIX\tPREFERRED\tVALID\tVALID UNTIL")
		for _, m := range s.MobileRouters {
			for _, l := range m.Leases {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Name, l.Prefix, leaseTime(l.Preferred), leaseTime(l.Valid), l.ValidUntil)
			}
		}
	}
	return nil
}

func leaseTime(sec int64) string {
	if sec == 0xffffffff {
		return "infinite"
	}
	return lifetime(sec, true)
}
