package hostnet

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"nemod/tunnel"
)

var _ tunnel.InstanceSystem = (*Agent)(nil)

// SetInstance implements tunnel.InstanceSystem: the instance's addresses
// on the TUN device (the kernel delivers what comes for them locally,
// through its local table) and a route of protocol 135 for each in the
// routes' table, for the routing daemon to announce. The kernel removes
// both with the device, that is when the process ends, however it ends.
func (a *Agent) SetInstance(device string, inst tunnel.Instance, on bool) error {
	if err := a.open(device); err != nil {
		return err
	}
	l, err := netlink.LinkByIndex(a.index)
	if err != nil {
		return err
	}
	var errs []error
	for _, addr := range []netip.Addr{inst.Address, inst.AddressV4} {
		if !addr.IsValid() {
			continue
		}
		p := netip.PrefixFrom(addr, addr.BitLen())
		na := &netlink.Addr{IPNet: ipnet(p)}
		if addr.Is6() {
			na.Flags = unix.IFA_F_NODAD
		}
		r := route(a.index, p, a.table())
		if on {
			if err := a.nl.AddrReplace(l, na); err != nil {
				errs = append(errs, fmt.Errorf("address %s on %s: %w", addr, device, err))
				continue
			}
			if err := a.nl.RouteReplace(r); err != nil {
				errs = append(errs, fmt.Errorf("route %s: %w", p, err))
			}
			continue
		}
		a.nl.RouteDel(r)
		if err := a.nl.AddrDel(l, na); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			errs = append(errs, fmt.Errorf("address %s off %s: %w", addr, device, err))
		}
	}
	return errors.Join(errs...)
}
