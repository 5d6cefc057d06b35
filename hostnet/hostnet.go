// Package hostnet is the data plane's thin shell on the Linux kernel: the
// TUN device, the routes and policy rules that send traffic into it
// (netlink), and local breakout's masquerading (nftables). Router and
// Agent implement the tunnel package's RouterSystem and AgentSystem; the
// lab's end-to-end tests prove them, since they need root.
package hostnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"nemod/nemo"
	"nemod/tunnel"
)

// RouteProtocol marks the routes and rules nemod installs (rtm_protocol).
// 135, the Mobility Header's protocol number, is named neither in
// iproute2's rt_protos nor in the kernel's rtnetlink.h, so no routing
// daemon takes nemod's routes for its own (188, used before, is OSPF's).
// The packages install rt_protos.d/nemod.conf so that `ip route show proto
// nemod` works.
const RouteProtocol = 135

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func linkIndex(name string) (int, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return l.Attrs().Index, nil
}

func route(index int, p netip.Prefix, table int) *netlink.Route {
	return &netlink.Route{LinkIndex: index, Dst: ipnet(p), Protocol: RouteProtocol, Table: table}
}

// forwarding reports whether the kernel forwards IPv6: the data plane
// hands packets to it both ways.
func forwarding() bool {
	b, err := os.ReadFile("/proc/sys/net/ipv6/conf/all/forwarding")
	return err == nil && len(b) > 0 && b[0] == '1'
}

// Router is the mobile router's host side.
type Router struct {
	rules       []*netlink.Rule
	mnpRules    []*netlink.Rule // the MNPs' (mnp.go)
	routes      tunnel.NetworkRoutes
	directRules []*netlink.Rule
	defRoute    *netlink.Route
	nat         bool
	v4          v4State // the mobile network's IPv4 (ipv4.go)
}

var _ tunnel.RouterSystem = (*Router)(nil)

// OpenTUN implements tunnel.RouterSystem.
func (r *Router) OpenTUN(name string, mtu int) (tunnel.Device, error) { return openTUN(name, mtu) }

func openTUN(name string, mtu int) (tunnel.Device, error) {
	t, err := OpenTUN(name, mtu)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Forwarding implements tunnel.RouterSystem.
func (r *Router) Forwarding() bool { return forwarding() }

// RouteNetwork implements tunnel.RouterSystem with policy routing:
//
//	prio P:   to an MNP              -> main table (between the mobile network's links)
//	prio P+1: from the HoA or an MNP -> table T (default route into the device)
//	prio P+2: in from a LAN          -> table T
//
// The last rule sends whatever else the mobile network sends (a source
// outside its prefixes) into the device too, where the data plane drops
// and counts it, instead of the main table's default route leaking it out
// of an uplink untunnelled.
func (r *Router) RouteNetwork(n tunnel.NetworkRoutes) error {
	l, err := netlink.LinkByName(n.Device)
	if err != nil {
		return err
	}
	if !n.NoAddress {
		hoa := &netlink.Addr{IPNet: ipnet(netip.PrefixFrom(n.HoA, 128)), Flags: unix.IFA_F_NODAD}
		if err := netlink.AddrReplace(l, hoa); err != nil {
			return fmt.Errorf("home address on %s: %w", n.Device, err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return err
	}
	r.defRoute = route(l.Attrs().Index, netip.MustParsePrefix("::/0"), n.Table)
	if err := netlink.RouteReplace(r.defRoute); err != nil {
		return fmt.Errorf("default route in table %d: %w", n.Table, err)
	}
	r.routes = n
	if err := r.SetMNPs(n.MNPs); err != nil {
		return err
	}
	hoaRule := netlink.NewRule()
	hoaRule.Priority, hoaRule.Table, hoaRule.Src = n.Priority+1, n.Table, ipnet(netip.PrefixFrom(n.HoA, 128))
	if err := r.addRule(hoaRule, &r.rules); err != nil {
		return err
	}
	for _, lan := range n.LANs {
		rl := netlink.NewRule()
		rl.Priority, rl.Table, rl.IifName = n.Priority+2, n.Table, lan
		if err := r.addRule(rl, &r.rules); err != nil {
			return err
		}
	}
	return nil
}

func (r *Router) addRule(rl *netlink.Rule, into *[]*netlink.Rule) error {
	if rl.Family == 0 {
		rl.Family = unix.AF_INET6
	}
	rl.Protocol = RouteProtocol
	netlink.RuleDel(rl) // left by a daemon that crashed
	if err := netlink.RuleAdd(rl); err != nil {
		return fmt.Errorf("policy rule %s: %w", rl, err)
	}
	*into = append(*into, rl)
	return nil
}

// SetBreakout implements tunnel.RouterSystem: kernel policy rules, ahead
// of the tunnel's, route the direct entries' packets by the main table out
// of an uplink, where nftables masquerades them to the uplink's address.
// Each rule also requires a source inside a mobile network prefix, so that
// a foreign source never breaks out. The kernel does it all: such traffic
// never reaches the TUN device.
func (r *Router) SetBreakout(b tunnel.Breakout) error {
	for _, rl := range r.directRules {
		netlink.RuleDel(rl)
	}
	r.directRules = nil
	if len(b.Entries) == 0 {
		r.clearNAT()
		return nil
	}
	if err := nft(breakoutScript(b.Uplinks, b.MNPs) + breakoutScript4(b.Uplinks, b.MNPs4)); err != nil {
		return err
	}
	r.nat = true
	prio := b.Priority
	for _, e := range b.Entries {
		mnps, family := b.MNPs, unix.AF_INET6
		if e.TS.Format == nemo.TSFormatIPv4 {
			mnps, family = b.MNPs4, unix.AF_INET
		}
		for _, rl := range directRules(&e.TS, mnps) {
			rl.Family = family
			rl.Priority = prio
			rl.Table = unix.RT_TABLE_MAIN
			if err := r.addRule(rl, &r.directRules); err != nil {
				return fmt.Errorf("local breakout of rule %q: %w", e.Rule, err)
			}
		}
		prio++
	}
	return nil
}

func (r *Router) clearNAT() {
	if r.nat {
		nft(clearBreakoutScript + clearBreakoutScript4)
		r.nat = false
	}
}

// Close implements tunnel.RouterSystem.
func (r *Router) Close() error {
	for _, rl := range append(append(r.rules, r.directRules...), r.mnpRules...) {
		netlink.RuleDel(rl)
	}
	r.rules, r.directRules, r.mnpRules = nil, nil, nil
	r.close4()
	r.clearNAT()
	if r.defRoute != nil {
		netlink.RouteDel(r.defRoute)
		r.defRoute = nil
	}
	return nil
}

// Agent is the home agent's host side.
type Agent struct {
	// Table is the routing table the routes go into (option route_table);
	// 0 is the main table. A routing daemon exports the routes of
	// protocol RouteProtocol from it to the operator's network.
	Table int
	index int
	have  map[netip.Prefix]bool
	masq  bool // masquerade_v4's table is installed (ipv4.go)
	// nl keeps one netlink socket for the route changes: a registration
	// changes a route or two, and a socket per change would cost more
	// than the registration.
	nl *netlink.Handle
}

var _ tunnel.AgentSystem = (*Agent)(nil)

// OpenTUN implements tunnel.AgentSystem, and brings the device up.
func (a *Agent) OpenTUN(name string, mtu int) (tunnel.Device, error) {
	t, err := openTUN(name, mtu)
	if err != nil {
		return nil, err
	}
	l, err := netlink.LinkByName(t.Name())
	if err == nil {
		err = netlink.LinkSetUp(l)
	}
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return t, nil
}

func (a *Agent) table() int {
	if a.Table == unix.RT_TABLE_MAIN {
		return 0
	}
	return a.Table
}

func (a *Agent) open(device string) error {
	if a.have != nil {
		return nil
	}
	idx, err := linkIndex(device)
	if err != nil {
		return err
	}
	if a.nl, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
		return err
	}
	a.index, a.have = idx, map[netip.Prefix]bool{}
	return nil
}

// RouteChange implements tunnel.AgentSystem: one registration's routes.
// They are not remembered here: Close finds them by their protocol.
func (a *Agent) RouteChange(device string, add, del []netip.Prefix) error {
	if err := a.open(device); err != nil {
		return err
	}
	var errs []error
	for _, p := range add {
		if err := a.nl.RouteReplace(route(a.index, p.Masked(), a.table())); err != nil {
			errs = append(errs, fmt.Errorf("route %s: %w", p, err))
		}
	}
	for _, p := range del {
		a.nl.RouteDel(route(a.index, p.Masked(), a.table()))
	}
	return errors.Join(errs...)
}

// RoutePrefixes implements tunnel.AgentSystem.
func (a *Agent) RoutePrefixes(device string, want []netip.Prefix) error {
	if err := a.open(device); err != nil {
		return err
	}
	next := make(map[netip.Prefix]bool, len(want))
	var errs []error
	for _, p := range want {
		p = p.Masked()
		next[p] = true
		if a.have[p] {
			continue
		}
		if err := a.nl.RouteReplace(route(a.index, p, a.table())); err != nil {
			errs = append(errs, fmt.Errorf("route %s: %w", p, err))
		}
	}
	for p := range a.have {
		if !next[p] {
			a.nl.RouteDel(route(a.index, p, a.table()))
		}
	}
	a.have = next
	return errors.Join(errs...)
}

// Close implements tunnel.AgentSystem.
func (a *Agent) Close() error {
	for p := range a.have {
		a.nl.RouteDel(route(a.index, p, a.table()))
	}
	if a.nl != nil {
		// The registrations' routes: every route of ours into the device,
		// IPv4 ones (RFC 5555 home addresses and prefixes) too.
		filter := &netlink.Route{LinkIndex: a.index, Protocol: RouteProtocol, Table: a.table()}
		mask := uint64(netlink.RT_FILTER_OIF | netlink.RT_FILTER_PROTOCOL | netlink.RT_FILTER_TABLE)
		if filter.Table == 0 {
			filter.Table = unix.RT_TABLE_MAIN
		}
		for _, family := range []int{unix.AF_INET6, unix.AF_INET} {
			if rs, err := a.nl.RouteListFiltered(family, filter, mask); err == nil {
				for i := range rs {
					a.nl.RouteDel(&rs[i])
				}
			}
		}
	}
	a.have = nil
	err := a.Masquerade4("", nil, netip.Addr{})
	if a.nl != nil {
		a.nl.Close()
		a.nl = nil
	}
	return err
}
