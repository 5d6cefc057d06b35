package homeagent_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"nemod/internal/freerad"
	"nemod/internal/netsim"
	"nemod/internal/testenv"
	"nemod/internal/twoends"
	"nemod/lab"
	"nemod/status"
)

// Routers FreeRADIUS knows and the configuration does not.
const (
	radiusKey   = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
	radiusUsers = `car9@fleet.example Auth-Type := Accept
	Framed-IPv6-Address = 2001:db8:ffff:1::900,
	Delegated-IPv6-Prefix = 2001:db8:900::/56,
	Session-Timeout = 3600,
	Class = "fleet-a",
	Tunnel-Password:1 = "` + radiusKey + `",
	Tunnel-Client-Auth-ID:1 = "4097"

car7@fleet.example Auth-Type := Accept
	Framed-IPv6-Address = 2001:db8:ffff:1::700,
	Delegated-IPv6-Prefix = 2001:db8:700::/56,
	Tunnel-Password:1 = "` + radiusKey + `",
	Tunnel-Client-Auth-ID:1 = "4098"

car8@fleet.example Auth-Type := Accept
	Framed-IPv6-Address = 2001:db8:ffff:1::800,
	Delegated-IPv6-Prefix = 2001:db8:800::/56,
	Tunnel-Password:1 = "` + radiusKey + `",
	Tunnel-Client-Auth-ID:1 = "4099"

DEFAULT Auth-Type := Reject
	Reply-Message = "unknown router"
`
)

// radiusRouter is the lab's router configuration as another car: home
// address, prefix, identity and key.
func radiusRouter(sock, nai, hoa, mnp string, spi int, key string) string {
	c := lab.RouterUCI(sock, "")
	c = strings.NewReplacer(
		"2001:db8:ffff:1::100", hoa, "2001:db8:100::/56", mnp, "option spi '256'", "option spi '"+strconv.Itoa(spi)+"'",
		"option nai 'car1@fleet'", "option nai '"+nai+"'", "option key '"+lab.Key+"'", "option key '"+key+"'",
	).Replace(c)
	return c
}

func freeUDPPort(t *testing.T) int {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func mobileRouter(s status.HomeAgent, name string) *status.MobileRouter {
	for i := range s.MobileRouters {
		if s.MobileRouters[i].Name == name {
			return &s.MobileRouters[i]
		}
	}
	return nil
}

// TestRadiusAuthorization, against a real FreeRADIUS: a router known only
// to RADIUS registers and carries traffic, and its accounting records
// carry its bytes; an unknown NAI is refused with status 129; a wrong key
// still fails RFC 4285; with RADIUS down, an authorized router keeps its
// binding and a new one waits until the server is back; a
// Disconnect-Request revokes.
func TestRadiusAuthorization(t *testing.T) {
	radclient := testenv.NeedTool(t, "radclient")
	srv := freerad.Start(t, freerad.Options{Users: radiusUsers})
	dynPort := freeUDPPort(t)
	e := twoends.New(t, "")
	e.WriteHomeAgentConfig(lab.HomeAgentUCI(e.HASock) + fmt.Sprintf(`config radius 'aaa'
	option server '%s'
	option secret '%s'
	option timeout '300ms'
	option retries '1'
	option dead_time '1'
	option accounting '1'
	option dynauth_listen '[::1]:%d'
	list dynauth_client '::1'
`, srv.Auth6(), srv.Secret, dynPort))
	e.WriteRouterConfig(radiusRouter(e.MRSock, "car9@fleet.example", "2001:db8:ffff:1::900", "2001:db8:900::/56", 4097, radiusKey))
	e.Start()
	e.Registered()
	s := e.HAStatus()
	car9 := mobileRouter(s, "car9@fleet.example")
	if car9 == nil || len(car9.Bindings) != 2 || car9.HomeAddress != "2001:db8:ffff:1::900" || s.Radius == nil || s.Radius.Accepts != 1 || s.Radius.Authorized != 1 {
		t.Fatalf("car9 at the home agent: %+v, radius %+v", car9, s.Radius)
	}
	if got := e.HASys.Prefixes(); len(got) != 3 {
		t.Fatalf("routes: %v", got)
	}
	// Traffic both ways through the home agent.
	lan9 := netip.MustParseAddr("2001:db8:900::10")
	up := netsim.UDP6(lan9, lab.CN6, 4000, 7, 300, 'r')
	e.MRTUN().Inject(up)
	if !e.HATUN().Expect(up) {
		t.Fatal("car9's LAN to the correspondent: not delivered")
	}
	down := netsim.UDP6(lab.CN6, lan9, 7, 4000, 200, 's')
	e.HATUN().Inject(down)
	if !e.MRTUN().Expect(down) {
		t.Fatal("the correspondent to car9's LAN: not delivered")
	}
	// De-registered: the accounting session stops, with the bytes.
	if err := e.StopMR(); err != nil {
		t.Fatal(err)
	}
	var stop map[string]string
	e.Eventually(5*time.Second, "accounting Start and Stop at FreeRADIUS", func() bool {
		recs := srv.Details()
		if len(recs) < 2 || recs[len(recs)-1]["Acct-Status-Type"] != "Stop" {
			return false
		}
		stop = recs[len(recs)-1]
		return recs[0]["Acct-Status-Type"] == "Start" && recs[0]["Acct-Session-Id"] == stop["Acct-Session-Id"]
	})
	if stop["User-Name"] != "car9@fleet.example" || stop["Acct-Input-Octets"] != strconv.Itoa(len(up)) ||
		stop["Acct-Output-Octets"] != strconv.Itoa(len(down)) || stop["Acct-Input-Packets"] != "1" ||
		stop["Acct-Terminate-Cause"] != "User-Request" || stop["Class"] != "0x666c6565742d61" {
		t.Fatalf("Stop record %v", stop)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	restart := func(conf string) {
		t.Helper()
		if e.MRRunning() {
			if err := e.StopMR(); err != nil {
				t.Fatal(err)
			}
		}
		e.WriteRouterConfig(conf)
		e.StartMR(ctx)
	}
	// An unknown NAI: status 129, unsigned.
	restart(radiusRouter(e.MRSock, "stranger@fleet.example", "2001:db8:ffff:1::901", "2001:db8:901::/56", 4100, radiusKey))
	e.Eventually(5*time.Second, "status 129 for a stranger", func() bool {
		return e.HAStatus().Counters.Rejected["prohibited"] >= 1
	})
	if s := e.HAStatus(); s.Radius.Rejects != 1 || mobileRouter(s, "stranger@fleet.example") != nil {
		t.Fatalf("after the stranger: %+v", s.Radius)
	}
	// A wrong key: authorized by RADIUS, refused by RFC 4285.
	restart(radiusRouter(e.MRSock, "car8@fleet.example", "2001:db8:ffff:1::800", "2001:db8:800::/56", 4099, lab.Key))
	e.Eventually(5*time.Second, "authentication failure for car8", func() bool {
		return e.HAStatus().Counters.Rejected["auth_failed"] >= 1
	})
	if car8 := mobileRouter(e.HAStatus(), "car8@fleet.example"); car8 == nil || len(car8.Bindings) != 0 {
		t.Fatalf("car8 with a wrong key: %+v", car8)
	}
	// car9 again, then RADIUS goes down: it keeps its binding, from the
	// cache, and registers again without the server.
	restart(radiusRouter(e.MRSock, "car9@fleet.example", "2001:db8:ffff:1::900", "2001:db8:900::/56", 4097, radiusKey))
	e.Registered()
	srv.Kill()
	if err := e.StopMR(); err != nil {
		t.Fatal(err)
	}
	restart(radiusRouter(e.MRSock, "car9@fleet.example", "2001:db8:ffff:1::900", "2001:db8:900::/56", 4097, radiusKey))
	e.Registered()
	// A new router waits while no server answers, and registers once it
	// is back.
	restart(radiusRouter(e.MRSock, "car7@fleet.example", "2001:db8:ffff:1::700", "2001:db8:700::/56", 4098, radiusKey))
	e.Eventually(5*time.Second, "a RADIUS failure", func() bool { return e.HAStatus().Radius.Failures >= 1 })
	if st := e.States(); strings.Contains(st, "=registered") {
		t.Fatalf("car7 registered with RADIUS down: %s", st)
	}
	srv.Start()
	// (Wi-Fi may have moved to UDP meanwhile: no answer to native
	// signalling looks like a firewall to the router.)
	e.Eventually(40*time.Second, "car7 registered once RADIUS is back", func() bool {
		return strings.Count(e.States(), "=registered/") == 2
	})
	// A Disconnect-Request for car7 revokes its bindings.
	cmd := exec.Command(radclient, "-x", "-r", "1", "-t", "3", fmt.Sprintf("[::1]:%d", dynPort), "disconnect", string(srv.Secret))
	cmd.Stdin = strings.NewReader("User-Name = \"car7@fleet.example\"\n")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Received Disconnect-ACK") {
		t.Fatalf("radclient: %v\n%s", err, out)
	}
	e.Eventually(3*time.Second, "car7 revoked at the router", func() bool { return e.MRStatus().Revocation.AllRevoked })
	s = e.HAStatus()
	if s.Revocations.Disconnects != 1 || mobileRouter(s, "car7@fleet.example") != nil || s.Radius.DynAuth == nil || s.Radius.DynAuth.ACKs != 1 {
		t.Fatalf("after the Disconnect-Request: %+v %+v", s.Revocations, s.Radius)
	}
	// One for nobody is refused.
	cmd = exec.Command(radclient, "-x", "-r", "1", "-t", "3", fmt.Sprintf("[::1]:%d", dynPort), "disconnect", string(srv.Secret))
	cmd.Stdin = strings.NewReader("User-Name = \"nobody@fleet.example\"\n")
	if out, _ := cmd.CombinedOutput(); !strings.Contains(string(out), "Received Disconnect-NAK") {
		t.Fatalf("radclient for nobody:\n%s", out)
	}
}

// TestRadiusReloadWaitsForRestart: a changed radius section is named among
// what waits for a restart; an unchanged one is not.
func TestRadiusReloadWaitsForRestart(t *testing.T) {
	e := twoends.New(t, "")
	section := func(timeout string) string {
		return "config radius 'aaa'\n\toption server '[::1]:" + strconv.Itoa(freeUDPPort(t)) + "'\n\toption secret '0123456789abcdef0123'\n\toption timeout '" + timeout + "'\n"
	}
	first := section("1s")
	e.WriteHomeAgentConfig(lab.HomeAgentUCI(e.HASock) + first)
	e.Start()
	e.Registered()
	reload := func() status.Reload {
		t.Helper()
		var r status.Reload
		if err := twoends.Ctl(e.HASock, "reload", &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := reload(); slices.Contains(r.NeedsRestart, "radius") {
		t.Fatalf("unchanged radius section: %+v", r)
	}
	e.WriteHomeAgentConfig(lab.HomeAgentUCI(e.HASock) + strings.Replace(first, "'1s'", "'2s'", 1))
	if r := reload(); !slices.Contains(r.NeedsRestart, "radius") {
		t.Fatalf("changed radius section: %+v", r)
	}
	e.WriteHomeAgentConfig(lab.HomeAgentUCI(e.HASock))
	if r := reload(); !slices.Contains(r.NeedsRestart, "radius") {
		t.Fatalf("removed radius section: %+v", r)
	}
	// The configured routers are served throughout.
	if got := e.States(); got != twoends.DefaultStates {
		t.Fatalf("car1: %s", got)
	}
}

// TestRadiusRouterIPv4FromPool: a router known only to RADIUS that asks
// for IPv4 gets it from the home agent's pool, which routes it into the
// tunnel while the router is registered and carries its IPv4 traffic.
func TestRadiusRouterIPv4FromPool(t *testing.T) {
	srv := freerad.Start(t, freerad.Options{Users: radiusUsers})
	e := twoends.New(t, "")
	e.WriteHomeAgentConfig(lab.HomeAgentUCIv4(e.HASock, "\toption pool_v4 '10.200.0.0/16'\n\toption state_dir '"+e.Dir+"'\n", "") +
		fmt.Sprintf("config radius 'aaa'\n\toption server '%s'\n\toption secret '%s'\n\toption timeout '300ms'\n", srv.Auth6(), srv.Secret))
	car9 := radiusRouter(e.MRSock, "car9@fleet.example", "2001:db8:ffff:1::900", "2001:db8:900::/56", 4097, radiusKey)
	e.WriteRouterConfig(strings.Replace(car9, "config uplink 'wifi'\n", lab.RouterIPv4Dynamic(e.Dir)+"config uplink 'wifi'\n", 1))
	e.Start()
	e.Registered()
	e.Eventually(5*time.Second, "IPv4 assigned to car9", func() bool { v := e.MRIPv4(); return v != nil && v.HomeAddress != "" && len(v.MNP) == 1 })
	v := e.MRIPv4()
	at := mobileRouter(e.HAStatus(), "car9@fleet.example")
	if at == nil || at.HomeAddressV4 != v.HomeAddress || !slices.Equal(at.MNPv4, v.MNP) || !strings.HasPrefix(v.HomeAddress, "10.200.") {
		t.Fatalf("car9's IPv4: router %+v, home agent %+v", v, at)
	}
	routed := e.HASys.Prefixes()
	mnp4 := netip.MustParsePrefix(v.MNP[0])
	if !slices.Contains(routed, netip.MustParsePrefix(v.HomeAddress+"/32")) || !slices.Contains(routed, mnp4) {
		t.Fatalf("car9's IPv4 not routed: %v", routed)
	}
	host := mnp4.Addr().Next().Next()
	up := netsim.UDP4(host, netip.MustParseAddr("203.0.113.18"), 4000, 7, 100, 'r', false)
	e.MRTUN().Inject(up)
	if !e.HATUN().Expect(up) {
		t.Fatal("car9's IPv4 LAN to the correspondent: not delivered")
	}
	down := netsim.UDP4(netip.MustParseAddr("203.0.113.18"), host, 7, 4000, 100, 's', false)
	e.HATUN().Inject(down)
	if !e.MRTUN().Expect(down) {
		t.Fatal("the correspondent to car9's IPv4 LAN: not delivered")
	}
	// De-registered: its IPv4 leaves the routes; the pool keeps it.
	if err := e.StopMR(); err != nil {
		t.Fatal(err)
	}
	e.Eventually(3*time.Second, "car9's IPv4 routes withdrawn", func() bool { return !slices.Contains(e.HASys.Prefixes(), mnp4) })
	if p := e.HAStatus().PoolV4; p == nil || p.Assigned != 1 {
		t.Fatalf("pool after car9 left: %+v", p)
	}
}
