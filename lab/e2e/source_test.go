package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nemod/lab"
)

// A LAN host with a source address outside the mobile network prefix (one
// of its own making, and one spoofing car2's prefix) pings the
// correspondent: the mobile router drops and counts every packet, and
// none leaves by an uplink, natively or tunnelled. Genuine traffic flows.
func TestRouterDropsForeignSources(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startHA()
	e.startMR()
	e.registered()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	foreign, spoofed := "2001:db8:999::10", "2001:db8:200::10"
	for _, a := range []string{foreign, spoofed} {
		if _, err := e.lab.Run(ctx, lab.LAN, "ip", "-6", "addr", "add", a+"/128", "dev", lab.LANDev, "nodad"); err != nil {
			t.Fatal(err)
		}
	}
	var caps []*lab.Capture
	for _, role := range []string{lab.Wifi, lab.Cell, lab.CN} {
		c, err := e.lab.Capture(role, "eth0", "")
		if err != nil {
			t.Fatal(err)
		}
		caps = append(caps, c)
	}
	before := e.mrStatus().DataPlane.Drops["foreign_source"]
	if before != 0 {
		// Nothing on the LAN had a foreign source yet: the kernel's own
		// packets on the TUN device (its Multicast Listener Reports) count
		// as link_scope, so that this counter means a host on the LAN.
		t.Fatalf("foreign sources counted before any: %d (drops %v)", before, e.mrStatus().DataPlane.Drops)
	}
	const each = 5
	for _, src := range []string{foreign, spoofed} {
		// Every echo is dropped: ping exits non-zero, which is the point.
		e.ping6(lab.LAN, lab.CN6.String(), each, "-I", src)
	}
	eventually(t, 3*time.Second, "foreign sources counted", func() bool {
		return e.mrStatus().DataPlane.Drops["foreign_source"]-before >= 2*each
	})
	if out, err := e.ping6(lab.LAN, lab.CN6.String(), 2); err != nil {
		t.Fatalf("genuine ping: %v\n%s", err, out)
	}
	for i, c := range caps {
		path, err := c.Stop()
		if err != nil {
			t.Fatal(err)
		}
		rows, err := lab.PcapFields(ctx, path, fmt.Sprintf("ipv6.addr == %s || ipv6.addr == %s", foreign, spoofed), "frame.number", "ipv6.src")
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) > 0 {
			t.Errorf("%s link: %d packets with a foreign source left the router, e.g. %q", []string{"Wi-Fi", "cellular", "correspondent"}[i], len(rows), rows[0])
		}
	}
	t.Logf("router drops: foreign_source +%d", e.mrStatus().DataPlane.Drops["foreign_source"]-before)
}

// nemod's routes and rules carry its own routing protocol number, one no
// routing daemon uses, and `ip route show proto nemod` finds them where
// iproute2 reads the file the packages install.
func TestRoutesCarryOurProtocol(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startHA()
	e.startMR()
	e.registered()
	// ip netns exec mounts /etc/netns/NS/iproute2 over /etc/iproute2: a
	// copy of the host's with the packages' rt_protos.d file in it.
	etc := filepath.Join("/etc/netns", e.lab.NS(lab.MR), "iproute2")
	if err := os.MkdirAll(filepath.Join(etc, "rt_protos.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(etc)) })
	for _, f := range []string{"rt_protos", "rt_tables"} {
		if b, err := os.ReadFile(filepath.Join("/etc/iproute2", f)); err == nil {
			os.WriteFile(filepath.Join(etc, f), b, 0o644)
		}
	}
	conf, err := os.ReadFile("../../packaging/common/rt_protos.conf")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "rt_protos.d", "nemod.conf"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	if protos, err := os.ReadFile("/etc/iproute2/rt_protos"); err == nil {
		for _, l := range strings.Split(string(protos), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "135" {
				t.Fatalf("iproute2 names protocol 135 %q already", f[1])
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	routes, err := e.lab.Run(ctx, lab.MR, "ip", "-6", "route", "show", "table", "4191", "proto", "nemod")
	if err != nil || !strings.Contains(routes, "default dev nemo0") {
		t.Fatalf("routes of proto nemod in table 4191: %q %v", routes, err)
	}
	rules, err := e.lab.Run(ctx, lab.MR, "ip", "-6", "rule", "show")
	if err != nil {
		t.Fatal(err)
	}
	var ours int
	for _, l := range strings.Split(rules, "\n") {
		if strings.Contains(l, "lookup 4191") || strings.Contains(l, "2001:db8:100::/56 lookup main") {
			ours++
			if !strings.Contains(l, "proto nemod") {
				t.Errorf("rule without our protocol: %q", l)
			}
		}
	}
	if ours < 3 || !strings.Contains(rules, "iif lan0 lookup 4191") {
		t.Fatalf("nemod's rules:\n%s", rules)
	}
	haRoutes, err := e.lab.Run(ctx, lab.HA, "ip", "-6", "route", "show", "proto", "135")
	if err != nil || !strings.Contains(haRoutes, "2001:db8:100::/56 dev nemoha0") {
		t.Fatalf("home agent's routes of protocol 135: %q %v", haRoutes, err)
	}
}
