package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"nemod/control"
	"nemod/lab"
)

// The IPv4 cases: the same paths carrying the mobile network's IPv4 (RFC
// 5555) from the LAN host's address in car1's IPv4 prefix to the
// correspondent's IPv4 address, with IPv4 baselines of their own.
const (
	casePlain4     = "plain4"
	caseWireguard4 = "wireguard4"
	caseNemod4IPv6 = "nemod4-ipv6" // IPv4-in-IPv6 over the Wi-Fi
	caseNemod4UDP4 = "nemod4-udp4" // IPv4 in UDP/IPv4 through the CGN
	caseNemod4UDP6 = "nemod4-udp6" // IPv4 in UDP/IPv6, encap 'udp'
)

var (
	ipv4Cases      = []string{casePlain4, caseWireguard4, caseNemod4IPv6, caseNemod4UDP4, caseNemod4UDP6}
	nemodIPv4Cases = []string{caseNemod4IPv6, caseNemod4UDP4, caseNemod4UDP6}
	lanHost4Prefix = "10.201.5.10/24"
)

// isIPv4 reports whether a case carries IPv4.
func isIPv4(c string) bool { return slices.Contains(ipv4Cases, c) }

// baselines are the cases a nemod case's ratios are taken against: those
// of its own family.
func baselines(c string) (wireguard, plain string) {
	if isIPv4(c) {
		return caseWireguard4, casePlain4
	}
	return caseWireguard, casePlain
}

// cnAddr is what the LAN host talks to in this case.
func (c *caseRun) cnAddr() string {
	if c.v4 {
		return lab.CN4.String()
	}
	return lab.CN6.String()
}

// family is ping's and iperf3's address family flag for the case.
func (c *caseRun) family() string {
	if c.v4 {
		return "-4"
	}
	return "-6"
}

// lan4 gives the LAN host its IPv4 address in car1's prefix and its route
// through the router; without nemod (which does it itself) the router's
// LAN address too.
func (c *caseRun) lan4(ctx context.Context, routerAddr bool) error {
	if routerAddr {
		if _, err := c.l.Run(ctx, lab.MR, "ip", "addr", "add", lab.MRLAN4.String()+"/24", "dev", lab.MRLANDev); err != nil {
			return err
		}
	}
	for _, args := range [][]string{
		{"ip", "addr", "add", lanHost4Prefix, "dev", lab.LANDev},
		{"ip", "route", "replace", "default", "via", lab.MRLAN4.String(), "dev", lab.LANDev},
	} {
		if _, err := c.l.Run(ctx, lab.LAN, args...); err != nil {
			return err
		}
	}
	return nil
}

// ip4 runs `ip -4 -batch -` in a role's namespace.
func (c *caseRun) ip4(ctx context.Context, role string, lines ...string) error {
	cmd := c.l.Command(ctx, role, "ip", "-4", "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: ip -4 -batch: %w: %s", role, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// plain4 routes the IPv4 prefix over the Wi-Fi path with no tunnel: core
// sends it to the Wi-Fi access router, that router to mr's Wi-Fi address;
// mr's default route is through wlan0.
func (c *caseRun) plain4(ctx context.Context) error {
	if err := c.lan4(ctx, true); err != nil {
		return err
	}
	if err := c.ip4(ctx, lab.Core, fmt.Sprintf("route replace %s via %s dev wifi", lab.MNP4, lab.WifiWAN4)); err != nil {
		return err
	}
	if err := c.ip4(ctx, lab.Wifi, fmt.Sprintf("route add %s via %s", lab.MNP4, lab.MRWLAN4)); err != nil {
		return err
	}
	c.setPath("lan -> mr -> wifi -> core -> cn, plain kernel routing of IPv4 (skips the home agent hop the tunnels take)")
	return c.waitReachable(ctx)
}

// wireguard4 is wireguard() carrying the IPv4 prefix: the same tunnel over
// the Wi-Fi path's IPv6, with IPv4 routed into it at both ends.
func (c *caseRun) wireguard4(ctx context.Context) error {
	if err := c.lan4(ctx, true); err != nil {
		return err
	}
	return c.wireguardFor(ctx, "0.0.0.0/0", lab.MNP4.String(), func(mrIf, haIf string) error {
		if err := c.ip4(ctx, lab.MR,
			fmt.Sprintf("rule add to %s lookup main priority 100", lab.MNP4),
			fmt.Sprintf("rule add from %s lookup 100 priority 101", lab.MNP4),
			fmt.Sprintf("route add 0.0.0.0/0 dev %s table 100", mrIf),
		); err != nil {
			return err
		}
		return c.ip4(ctx, lab.HA, fmt.Sprintf("route add %s dev %s", lab.MNP4, haIf))
	}, "lan -> mr (wireguard-go) -> wifi -> core -> ha (wireguard-go) -> core -> cn, IPv4 over UDP/IPv6, MTU 1420")
}

// nemodIPv4Config writes the daemons' configuration for an IPv4 case: car1's
// static IPv4 home address and prefix at both ends.
func (c *caseRun) nemodIPv4Config(haConf, haSock, mrConf, mrSock, wifiEncap string) error {
	dir := c.l.Dir()
	if err := os.WriteFile(haConf, []byte(lab.HomeAgentUCIv4(haSock, fmt.Sprintf("\toption state_dir '%s'\n", dir),
		fmt.Sprintf("\toption home_address_v4 '%s'\n\tlist mnp_v4 '%s'\n", lab.HoA4, lab.MNP4))), 0o600); err != nil {
		return err
	}
	return os.WriteFile(mrConf, []byte(lab.RouterUCIv4(mrSock, wifiEncap, lab.RouterIPv4Static(dir), "")), 0o600)
}

// afterNemodIPv4 waits for the router's IPv4 and gives the LAN host its
// address.
func (c *caseRun) afterNemodIPv4(ctx context.Context, mrSock string) error {
	var st routerStatus
	if err := waitFor(5*time.Second, func() bool {
		st = routerStatus{}
		return control.Do(ctx, mrSock, "status", nil, &st) == nil && st.IPv4 != nil && len(st.IPv4.MNP) > 0
	}); err != nil {
		return fmt.Errorf("no IPv4 granted: %w", err)
	}
	return c.lan4(ctx, false)
}

func nemodIPv4Path(encap string) string {
	return map[string]string{
		"ipv6": "lan -> mr (nemod) -> wifi -> core -> ha (nemod) -> core -> cn, IPv4-in-IPv6 over the Wi-Fi uplink (cellular carrier down)",
		"udp4": "lan -> mr (nemod) -> cell (CGN) -> core -> ha (nemod) -> core -> cn, IPv4 in UDP/IPv4 over the cellular uplink (Wi-Fi carrier down)",
		"udp6": "lan -> mr (nemod) -> wifi -> core -> ha (nemod) -> core -> cn, IPv4 in UDP/IPv6 over the Wi-Fi uplink, encap 'udp' (cellular carrier down)",
	}[encap]
}
