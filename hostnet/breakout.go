package hostnet

import (
	"bytes"
	"fmt"
	"math/bits"
	"net/netip"
	"os/exec"
	"slices"
	"sort"
	"strings"

	"github.com/vishvananda/netlink"

	"nemod/nemo"
)

// breakoutTable is the nftables table that masquerades local breakout.
const breakoutTable = "nemod_breakout"

// directRules turns a direct entry's selector (in the home agent's view:
// the source is the remote side) into the rules for packets leaving the
// mobile network, one per source prefix: the entry's local addresses where
// they lie inside a mobile network prefix, else each prefix.
func directRules(ts *nemo.TrafficSelector, mnps []netip.Prefix) []*netlink.Rule {
	srcs := mnps
	if ts.Present&nemo.TSDstAddrStart != 0 {
		local := rangePrefix(ts.DstAddrStart, ts.DstAddrEnd, ts.Present&nemo.TSDstAddrEnd != 0)
		srcs = nil
		for _, m := range mnps {
			switch {
			case m.Bits() <= local.Bits() && m.Contains(local.Addr()):
				srcs = append(srcs, local)
			case local.Bits() <= m.Bits() && local.Contains(m.Addr()):
				srcs = append(srcs, m)
			}
		}
		// sort.SliceStable: already in the router's binary, where
		// slices.SortFunc would add 12 KB for netip.Prefix.
		sort.SliceStable(srcs, func(i, j int) bool { return srcs[i].Addr().Less(srcs[j].Addr()) })
		srcs = slices.Compact(srcs)
	}
	var out []*netlink.Rule
	for _, src := range srcs {
		r := netlink.NewRule()
		r.Src = ipnet(src)
		if ts.Present&nemo.TSSrcAddrStart != 0 {
			r.Dst = ipnet(rangePrefix(ts.SrcAddrStart, ts.SrcAddrEnd, ts.Present&nemo.TSSrcAddrEnd != 0))
		}
		if ts.Present&nemo.TSProtoStart != 0 {
			r.IPProto = int(ts.ProtoStart)
		}
		if ts.Present&nemo.TSSrcPortStart != 0 {
			r.Dport = portRange(ts.SrcPortStart, ts.SrcPortEnd, ts.Present&nemo.TSSrcPortEnd != 0)
		}
		if ts.Present&nemo.TSDstPortStart != 0 {
			r.Sport = portRange(ts.DstPortStart, ts.DstPortEnd, ts.Present&nemo.TSDstPortEnd != 0)
		}
		if ts.Present&nemo.TSTCStart != 0 {
			r.Tos = uint(ts.TCStart)
		}
		out = append(out, r)
	}
	return out
}

func portRange(lo, hi uint16, hasEnd bool) *netlink.RulePortRange {
	if !hasEnd {
		hi = lo
	}
	return &netlink.RulePortRange{Start: lo, End: hi}
}

// rangePrefix is the prefix an address range compiled from a prefix
// spans (the common leading bits of its ends).
func rangePrefix(lo, hi netip.Addr, hasEnd bool) netip.Prefix {
	if !hasEnd {
		return netip.PrefixFrom(lo, lo.BitLen())
	}
	a, b := lo.As16(), hi.As16()
	n, from := 0, 0
	if lo.Is4() {
		from = 12 // the IPv4 address in its mapped form
	}
	for i := from; i < 16; i++ {
		x := a[i] ^ b[i]
		if x == 0 {
			n += 8
			continue
		}
		n += bits.LeadingZeros8(x)
		break
	}
	return netip.PrefixFrom(lo, n).Masked()
}

// breakoutScript is the nftables table masquerading the mobile network's
// breakout to each uplink's address.
func breakoutScript(devices []string, mnps []netip.Prefix) string {
	return breakoutScriptFor("ip6", devices, mnps) // none: an IPv4-only mobile network
}

// breakoutScriptFor is the breakout table of one family ("ip6" or "ip"):
// sources in mnps leaving by one of devices are masqueraded; no prefix,
// no table.
func breakoutScriptFor(family string, devices []string, mnps []netip.Prefix) string {
	if len(mnps) == 0 {
		return clearBreakout(family)
	}
	var devs, pfx []string
	for _, d := range devices {
		devs = append(devs, fmt.Sprintf("%q", d))
	}
	for _, p := range mnps {
		pfx = append(pfx, p.String())
	}
	return fmt.Sprintf(`add table %[4]s %[1]s
delete table %[4]s %[1]s
table %[4]s %[1]s {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname { %[2]s } %[4]s saddr { %[3]s } masquerade
	}
}
`, breakoutTable, strings.Join(devs, ", "), strings.Join(pfx, ", "), family)
}

// clearBreakout removes a family's breakout table, if there is one.
func clearBreakout(family string) string {
	return fmt.Sprintf("add table %[2]s %[1]s\ndelete table %[2]s %[1]s\n", breakoutTable, family)
}

var clearBreakoutScript = clearBreakout("ip6")

func nft(script string) error {
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("local breakout needs nftables: nft: %w: %s", err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}
