package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The lab options of a home agent serving a fleet: a second mobile router
// with its own mobile network (two mobile networks behind one home agent),
// and routing by a routing daemon instead of static routes in core.

// FleetOptions are the lab options for the fleet tests; the zero value
// builds the lab every other test uses.
type FleetOptions struct {
	// SecondRouter adds mr2, a mobile router with one IPv6 uplink of its
	// own to core (2001:db8:b::/64), and lan2, a host on its mobile
	// network MNP2; the home agent's configuration knows it as car2.
	SecondRouter bool
	// DynamicRouting leaves the static route of the mobile network
	// prefix out of core: core and the home agent run bird 2 (OSPFv3 on
	// their link), the home agent's bird exports the kernel routes the
	// home agent installs for registered routers (protocol 135), and core
	// learns the prefixes from it.
	DynamicRouting bool
}

// The second mobile router's roles.
const (
	MR2  = "mr2"
	LAN2 = "lan2"
)

// The second mobile network and the second router's uplink.
var (
	MNP2      = netip.MustParsePrefix("2001:db8:200::/56")
	LAN2Host  = netip.MustParseAddr("2001:db8:200::10") // lan2 eth0
	MR2LAN    = netip.MustParseAddr("2001:db8:200::1")  // mr2 lan0
	MR2WLAN6  = netip.MustParseAddr("2001:db8:b::2")    // mr2 wlan0, its care-of address
	CoreMR2_6 = netip.MustParseAddr("2001:db8:b::1")    // core's side
	MR2HoA    = netip.MustParseAddr("2001:db8:ffff:1::200")
)

// fleetRoles are the roles SecondRouter adds, and sweep looks for.
var fleetRoles = []string{MR2, LAN2}

func init() {
	forwarding[MR2] = [2]bool{true, false}
	forwarding[LAN2] = [2]bool{false, false}
}

// roles are the lab's roles with its options.
func (l *Lab) roles() []string {
	roles := Roles
	if l.fleet.SecondRouter {
		roles = append(slices.Clone(Roles), fleetRoles...)
	}
	return append(slices.Clone(roles), l.clusterRoleList()...)
}

// topology are the lab's links with its options.
func (l *Lab) topology() []veth {
	if !l.fleet.SecondRouter {
		return append(slices.Clone(links), l.clusterLinks()...)
	}
	return append(append(slices.Clone(links),
		veth{MR2, MRLANDev, LAN2, LANDev},
		veth{Core, MR2, MR2, MRWLANDev}), l.clusterLinks()...)
}

// fleetBatch adjusts a role's `ip -batch` to the options.
func (l *Lab) fleetBatch(role string, cmds []string) []string {
	if l.fleet.DynamicRouting && role == Core {
		cmds = slices.DeleteFunc(slices.Clone(cmds), func(c string) bool {
			return c == "route add 2001:db8:100::/56 via 2001:db8:ffff::1 dev ha"
		})
	}
	if !l.fleet.SecondRouter {
		return cmds
	}
	switch role {
	case Core:
		cmds = append(cmds, "link set mr2 up", "addr add 2001:db8:b::1/64 dev mr2 nodad")
		if !l.fleet.DynamicRouting {
			cmds = append(cmds, "route add 2001:db8:200::/56 via 2001:db8:ffff::1 dev ha")
		}
	case MR2:
		cmds = []string{
			"link set lo up",
			"link set lan0 up",
			"link set wlan0 up",
			"addr add 2001:db8:200::1/64 dev lan0 nodad",
			"addr add 2001:db8:b::2/64 dev wlan0 nodad",
			"route add ::/0 via 2001:db8:b::1 dev wlan0",
		}
	case LAN2:
		cmds = []string{
			"link set lo up",
			"link set eth0 up",
			"addr add 2001:db8:200::10/64 dev eth0 nodad",
			"route add ::/0 via 2001:db8:200::1 dev eth0",
		}
	}
	return cmds
}

// birdConf is the configuration of bird 2 in core or in the home agent.
// The link between them is point-to-point: no designated router election,
// whose wait would add a dead interval to the adjacency. The home agent
// exports to OSPF exactly the kernel routes of protocol 135 but its home
// link, which core routes statically as it always did.
func birdConf(role, dir string) string {
	common := fmt.Sprintf(`router id %s;
log "%s" all;
protocol device { scan time 10; }
`, map[string]string{Core: "10.255.0.2", HA: "10.255.0.1"}[role], filepath.Join(dir, "bird-"+role+".log"))
	ospf := func(iface, export string) string {
		return fmt.Sprintf(`protocol ospf v3 ospf6 {
	ipv6 { import all; export %s; };
	tick 1;
	area 0 {
		interface "%s" { type ptp; hello 1; dead 4; retransmit 2; };
	};
}
`, export, iface)
	}
	if role == HA {
		return common + `protocol kernel kernel6 {
	ipv6 { import where krt_source = 135 && net != 2001:db8:ffff:1::/64; export none; };
	learn;
	scan time 1;
}
` + ospf(HADev, "where source = RTS_INHERIT")
	}
	return common + `protocol kernel kernel6 {
	ipv6 { import none; export where source = RTS_OSPF || source = RTS_OSPF_EXT1 || source = RTS_OSPF_EXT2; };
	scan time 10;
}
` + ospf("ha", "none")
}

// startBird runs bird 2 in core and in the home agent.
func (l *Lab) startBird(ctx context.Context) error {
	for _, role := range []string{Core, HA} {
		conf := filepath.Join(l.dir, "bird-"+role+".conf")
		if err := os.WriteFile(conf, []byte(birdConf(role, l.dir)), 0o644); err != nil {
			return err
		}
		sock := filepath.Join(l.dir, "bird-"+role+".ctl")
		if _, err := l.Start(role, "bird-"+role, "bird", "-f", "-c", conf, "-s", sock); err != nil {
			return err
		}
	}
	return nil
}

// BirdRoutes returns what a role's bird says of its routes (birdc show
// route), for a test to show when it fails.
func (l *Lab) BirdRoutes(ctx context.Context, role string) string {
	out, _ := l.Run(ctx, role, "birdc", "-s", filepath.Join(l.dir, "bird-"+role+".ctl"), "show", "route", "all")
	return out
}

// RouteIn reports whether a role's kernel has a route for exactly p.
func (l *Lab) RouteIn(ctx context.Context, role string, p netip.Prefix) (bool, error) {
	out, err := l.Run(ctx, role, "ip", "-6", "route", "show", "exact", p.String())
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(out) != "", nil
}

// WaitRoute waits until a role's kernel has (or, want false, no longer
// has) a route for p, and returns how long that took.
func (l *Lab) WaitRoute(ctx context.Context, role string, p netip.Prefix, want bool) (time.Duration, error) {
	start := time.Now()
	for {
		has, err := l.RouteIn(ctx, role, p)
		if err == nil && has == want {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return time.Since(start), fmt.Errorf("%s: route %s present %v, want %v: %w", role, p, has, want, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Router2UCI is the second mobile router's configuration: car2 of
// HomeAgentUCI, one native uplink.
func Router2UCI(controlSocket string) string {
	return fmt.Sprintf(`config router 'car2'
	option home_agent '2001:db8:ffff::1'
	option home_address '2001:db8:ffff:1::200'
	list mnp '2001:db8:200::/56'
	list lan 'lan0'
	option spi '257'
	option key '%s'
	option control_socket '%s'
	option lan_ra '0'
config uplink 'wifi'
	option device 'wlan0'
	option bid '1'
	option encap 'ipv6'
`, Car2Key, controlSocket)
}
