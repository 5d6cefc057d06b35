//go:build !routeronly

package main

// The home agent's parts of the command. A routeronly build (the OpenWrt
// package) leaves them out, and with them the homeagent package.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"nemod/homeagent"
)

func runHomeAgent(ctx context.Context, path string) error {
	return homeagent.Run(ctx, path, homeagent.Options{})
}

// printHomeAgentStatus renders a home agent's status answer as a table.
func printHomeAgentStatus(tw io.Writer, raw json.RawMessage) error {
	var s homeagent.Status
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	fmt.Fprintf(tw, "home agent %s, home prefix %s\n\n", s.Address, s.HomePrefix)
	fmt.Fprintln(tw, "ROUTER\tHOME ADDRESS\tPREFIXES\tBID\tENCAP\tCARE-OF ADDRESS\tREACHED AT\tLIFETIME\tPACKETS OUT/IN")
	for _, m := range s.MobileRouters {
		if len(m.Bindings) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\tnot registered\t\t\t\n", m.Name, m.HomeAddress)
			continue
		}
		for i, b := range m.Bindings {
			name, hoa, pfx := m.Name, m.HomeAddress, dash(strings.Join(m.MNP, " "))
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
	fmt.Fprintln(tw)
	counters := map[string]uint64{}
	if b, err := json.Marshal(s.Counters); err == nil {
		json.Unmarshal(b, &counters)
	}
	var parts []string
	for _, k := range sortedKeys(counters) {
		if v := counters[k]; v != 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, v))
		}
	}
	fmt.Fprintf(tw, "counters: %s\n", dash(strings.Join(parts, " ")))
	return nil
}
