package hostnet

import (
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"nemod/tunnel"
)

// The mobile network's IPv4 (RFC 5555) on the kernel: the same policy
// routing as IPv6's, in IPv4's own rule list, the IPv4 home address on the
// TUN device, and the home agent's masquerading of the mobile networks.

// v4State is what RouteNetwork4 installed, to replace or remove.
type v4State struct {
	rules    []*netlink.Rule
	defRoute *netlink.Route
	addr     *netlink.Addr
	link     netlink.Link
}

// forwarding4 reports whether the kernel forwards IPv4.
func forwarding4() bool {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	return err == nil && len(b) > 0 && b[0] == '1'
}

// Forwarding4 implements tunnel.RouterSystem.
func (r *Router) Forwarding4() bool { return forwarding4() }

// RouteNetwork4 implements tunnel.RouterSystem with IPv4 policy routing,
// as RouteNetwork does for IPv6:
//
//	prio P:   to an IPv4 MNP                 -> main table
//	prio P+1: from the IPv4 HoA or an MNP    -> table T (default route into the device)
//	prio P+2: in from a LAN                  -> table T
//
// The last rule holds even before the home agent granted anything: a LAN
// host's IPv4 then has no source of the mobile network's, and the data
// plane drops it instead of the main table leaking it out of an uplink.
func (r *Router) RouteNetwork4(n tunnel.NetworkRoutes4) error {
	r.close4()
	l, err := netlink.LinkByName(n.Device)
	if err != nil {
		return err
	}
	r.v4.link = l
	if n.HoA.IsValid() && !n.NoAddress {
		a := &netlink.Addr{IPNet: ipnet(netip.PrefixFrom(n.HoA, 32))}
		if err := netlink.AddrReplace(l, a); err != nil {
			return fmt.Errorf("IPv4 home address on %s: %w", n.Device, err)
		}
		r.v4.addr = a
	}
	r.v4.defRoute = route(l.Attrs().Index, netip.MustParsePrefix("0.0.0.0/0"), n.Table)
	if err := netlink.RouteReplace(r.v4.defRoute); err != nil {
		return fmt.Errorf("IPv4 default route in table %d: %w", n.Table, err)
	}
	add := func(rl *netlink.Rule) error {
		rl.Family = unix.AF_INET
		return r.addRule(rl, &r.v4.rules)
	}
	for _, p := range n.MNPs {
		rl := netlink.NewRule()
		rl.Priority, rl.Table, rl.Dst = n.Priority, unix.RT_TABLE_MAIN, ipnet(p)
		if err := add(rl); err != nil {
			return err
		}
	}
	srcs := append([]netip.Prefix(nil), n.MNPs...)
	if n.HoA.IsValid() {
		srcs = append(srcs, netip.PrefixFrom(n.HoA, 32))
	}
	for _, p := range srcs {
		rl := netlink.NewRule()
		rl.Priority, rl.Table, rl.Src = n.Priority+1, n.Table, ipnet(p)
		if err := add(rl); err != nil {
			return err
		}
	}
	for _, lan := range n.LANs {
		rl := netlink.NewRule()
		rl.Priority, rl.Table, rl.IifName = n.Priority+2, n.Table, lan
		if err := add(rl); err != nil {
			return err
		}
	}
	return nil
}

// close4 removes what RouteNetwork4 installed.
func (r *Router) close4() {
	for _, rl := range r.v4.rules {
		netlink.RuleDel(rl)
	}
	if r.v4.defRoute != nil {
		netlink.RouteDel(r.v4.defRoute)
	}
	if r.v4.addr != nil && r.v4.link != nil {
		netlink.AddrDel(r.v4.link, r.v4.addr)
	}
	r.v4 = v4State{}
}

// SetLANAddress4 gives a LAN interface its address on the mobile network's
// IPv4 prefix (the first of it), replacing old when it changes; an invalid
// p removes old only.
func SetLANAddress4(device string, p, old netip.Prefix) error {
	l, err := netlink.LinkByName(device)
	if err != nil {
		return err
	}
	if old.IsValid() && old != p {
		netlink.AddrDel(l, &netlink.Addr{IPNet: ipnet(old)})
	}
	if !p.IsValid() {
		return nil
	}
	if err := netlink.AddrReplace(l, &netlink.Addr{IPNet: ipnet(p)}); err != nil {
		return fmt.Errorf("IPv4 address %s on %s: %w", p, device, err)
	}
	return nil
}

// Forwarding4 implements tunnel.AgentSystem.
func (a *Agent) Forwarding4() bool { return forwarding4() }

// masqueradeTable is the home agent's nftables table for masquerade_v4.
const masqueradeTable = "nemod_masquerade4"

// Masquerade4 implements tunnel.AgentSystem with nftables: what the mobile
// networks send towards the Internet (out of any device but the tunnel's)
// leaves with the home agent's address, and conntrack takes the answers
// back to them.
func (a *Agent) Masquerade4(device string, prefixes []netip.Prefix, to netip.Addr) error {
	if len(prefixes) == 0 {
		if a.masq {
			a.masq = false
			return nft(clearMasqueradeScript)
		}
		return nil
	}
	if err := nft(masqueradeScript(device, prefixes, to)); err != nil {
		return err
	}
	a.masq = true
	return nil
}

func masqueradeScript(device string, prefixes []netip.Prefix, to netip.Addr) string {
	var pfx []string
	for _, p := range prefixes {
		pfx = append(pfx, p.Masked().String())
	}
	return fmt.Sprintf(`add table ip %[1]s
delete table ip %[1]s
table ip %[1]s {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname != %[2]q ip saddr { %[3]s } snat to %[4]s
	}
}
`, masqueradeTable, device, strings.Join(pfx, ", "), to)
}

var clearMasqueradeScript = fmt.Sprintf("add table ip %[1]s\ndelete table ip %[1]s\n", masqueradeTable)

// breakoutScript4 is the nftables table masquerading the mobile network's
// IPv4 breakout to each uplink's address ("" without IPv4 prefixes).
func breakoutScript4(devices []string, mnps []netip.Prefix) string {
	return breakoutScriptFor("ip", devices, mnps)
}

var clearBreakoutScript4 = clearBreakout("ip")
