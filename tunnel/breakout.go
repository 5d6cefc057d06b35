package tunnel

import (
	"bytes"
	"fmt"
	"math/bits"
	"net/netip"
	"os/exec"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"nemod/nemo"
	"nemod/policy"
)

// breakoutTable is the nftables table that masquerades local breakout.
const breakoutTable = "nemod_breakout"

// SetDirect installs local breakout for the direct entries of the flow
// table (charter item A.5): kernel policy rules, ahead of the ones that
// send the mobile network into the tunnel, route the matching packets by
// the main table out of an uplink, where nftables masquerades them to
// the uplink's address. The kernel does it all: such traffic never
// reaches the TUN device.
func (m *MR) SetDirect(t *policy.Table) error {
	for _, r := range m.directRules {
		netlink.RuleDel(r)
	}
	m.directRules = nil
	var entries []*policy.Entry
	if t != nil {
		for i := range t.Entries {
			if t.Entries[i].Direct {
				entries = append(entries, &t.Entries[i])
			}
		}
	}
	if len(entries) == 0 {
		m.clearBreakoutNAT()
		return nil
	}
	if err := m.breakoutNAT(); err != nil {
		return err
	}
	for i, e := range entries {
		r := directRule(&e.TS)
		r.Priority = m.cfg.RulePriority - 64 + i
		r.Family, r.Protocol, r.Table = unix.AF_INET6, rtprotNemod, unix.RT_TABLE_MAIN
		netlink.RuleDel(r)
		if err := netlink.RuleAdd(r); err != nil {
			return fmt.Errorf("local breakout rule %q: %w", e.Rule, err)
		}
		m.directRules = append(m.directRules, r)
	}
	return nil
}

// directRule turns a selector (in the home agent's view: source is the
// remote side) into a rule for packets leaving the mobile network.
func directRule(ts *nemo.TrafficSelector) *netlink.Rule {
	r := netlink.NewRule()
	if ts.Present&nemo.TSSrcAddrStart != 0 {
		r.Dst = ipnet(rangePrefix(ts.SrcAddrStart, ts.SrcAddrEnd, ts.Present&nemo.TSSrcAddrEnd != 0))
	}
	if ts.Present&nemo.TSDstAddrStart != 0 {
		r.Src = ipnet(rangePrefix(ts.DstAddrStart, ts.DstAddrEnd, ts.Present&nemo.TSDstAddrEnd != 0))
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
	return r
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
	n := 0
	for i := 0; i < 16; i++ {
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

func (m *MR) breakoutNAT() error {
	var devs, pfx []string
	for _, d := range m.cfg.Devices {
		devs = append(devs, fmt.Sprintf("%q", d))
	}
	for _, p := range m.cfg.MNPs {
		pfx = append(pfx, p.String())
	}
	script := fmt.Sprintf(`add table ip6 %[1]s
delete table ip6 %[1]s
table ip6 %[1]s {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname { %[2]s } ip6 saddr { %[3]s } masquerade
	}
}
`, breakoutTable, strings.Join(devs, ", "), strings.Join(pfx, ", "))
	return nft(script)
}

func (m *MR) clearBreakoutNAT() {
	nft(fmt.Sprintf("add table ip6 %[1]s\ndelete table ip6 %[1]s\n", breakoutTable))
}

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
