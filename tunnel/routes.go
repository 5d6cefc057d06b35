package tunnel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"

	"nemod/netio"
)

// rtprotNemod marks the routes and rules nemod installs, so that they are
// recognisable (`ip route show proto 188`) and nobody else's are touched.
const rtprotNemod = 188

func linkUp(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return netlink.LinkSetUp(l)
}

// routeSet keeps a set of IPv6 prefixes routed into one device.
type routeSet struct {
	index int
	have  map[netip.Prefix]bool
}

func newRouteSet(dev string) (*routeSet, error) {
	l, err := netlink.LinkByName(dev)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dev, err)
	}
	return &routeSet{index: l.Attrs().Index, have: map[netip.Prefix]bool{}}, nil
}

func (r *routeSet) route(p netip.Prefix, table int) *netlink.Route {
	return &netlink.Route{
		LinkIndex: r.index, Dst: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		Protocol: rtprotNemod, Table: table,
	}
}

// set makes exactly want routed into the device.
func (r *routeSet) set(want []netip.Prefix) error {
	next := make(map[netip.Prefix]bool, len(want))
	var errs []error
	for _, p := range want {
		p = p.Masked()
		next[p] = true
		if r.have[p] {
			continue
		}
		if err := netlink.RouteReplace(r.route(p, 0)); err != nil {
			errs = append(errs, fmt.Errorf("route %s: %w", p, err))
		}
	}
	for p := range r.have {
		if !next[p] {
			netlink.RouteDel(r.route(p, 0))
		}
	}
	r.have = next
	return errors.Join(errs...)
}

func (r *routeSet) clear() {
	for p := range r.have {
		netlink.RouteDel(r.route(p, 0))
	}
	r.have = map[netip.Prefix]bool{}
}

// KernelBackend says whether a kernel tunnel backend could run here; the
// userspace one runs either way.
func KernelBackend() string {
	if netio.KernelHas("CONFIG_IPV6_TUNNEL", "ip6_tunnel") {
		return "ip6_tunnel available (not used)"
	}
	return "unavailable: no ip6_tunnel or fou in this kernel"
}

// forwarding reports whether the kernel forwards IPv6: the data plane
// hands packets to it both ways.
func forwarding() bool {
	b, err := os.ReadFile("/proc/sys/net/ipv6/conf/all/forwarding")
	return err == nil && len(b) > 0 && b[0] == '1'
}
