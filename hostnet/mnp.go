package hostnet

import (
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// SetMNPs implements tunnel.RouterSystem: the two rules of each mobile
// network prefix (see RouteNetwork) replaced by those of mnps. Delegated
// prefixes come and go with their leases while the router runs.
func (r *Router) SetMNPs(mnps []netip.Prefix) error {
	for _, rl := range r.mnpRules {
		netlink.RuleDel(rl)
	}
	r.mnpRules = nil
	r.routes.MNPs = mnps
	n := r.routes
	for _, p := range mnps {
		rl := netlink.NewRule()
		rl.Priority, rl.Table, rl.Dst = n.Priority, unix.RT_TABLE_MAIN, ipnet(p)
		if err := r.addRule(rl, &r.mnpRules); err != nil {
			return err
		}
		rl = netlink.NewRule()
		rl.Priority, rl.Table, rl.Src = n.Priority+1, n.Table, ipnet(p)
		if err := r.addRule(rl, &r.mnpRules); err != nil {
			return err
		}
	}
	return nil
}
