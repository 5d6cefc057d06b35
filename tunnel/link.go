package tunnel

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

func setLinkMTU(name string, mtu int) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return netlink.LinkSetMTU(l, mtu)
}
