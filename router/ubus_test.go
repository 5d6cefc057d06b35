package router_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"nemod/internal/fakenetifd"
	"nemod/internal/twoends"
	"nemod/lab"
	"nemod/netifd"
	"nemod/router"
	"nemod/status"
	"nemod/ubus"
	"nemod/ubus/ubusvec"
)

// The router on ubus, in one process with the home agent (package
// twoends) and a ubus broker of the test's (package ubusd): the nemod
// object, its events, and netifd played by package fakenetifd: the
// tunnel's interface it is told of, the uplinks it drives.

// ubusEnds is the two ends with a broker, the router configured to use it
// (routerOpts added to its section, uplinks replacing the lab's when
// given) and, with lanRA false, without the lab's option lan_ra '0' (the
// daemon decides).
func ubusEnds(t *testing.T, routerOpts, uplinks string, lanRA bool) (*twoends.Ends, *twoends.Ubusd) {
	t.Helper()
	e := twoends.New(t, "")
	u := e.StartUbusd()
	conf := twoends.RouterUCIWith(e.MRSock, "\toption ubus_socket '"+u.Path+"'\n"+routerOpts, uplinks)
	if !lanRA {
		conf = strings.Replace(conf, "\toption lan_ra '0'\n", "", 1)
	}
	e.WriteRouterConfig(conf)
	return e, u
}

func ubusClient(t *testing.T, u *twoends.Ubusd) *ubus.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := ubus.Connect(ctx, ubus.Options{Path: u.Path, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func call(c *ubus.Client, method string, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t, err := c.Call(ctx, router.UbusObject, method, nil)
	if t != nil && out != nil {
		if jerr := json.Unmarshal([]byte(ubus.FormatJSON(t, false)), out); jerr != nil {
			return jerr
		}
	}
	return err
}

// events collects nemod.binding events.
type events struct {
	mu  sync.Mutex
	got []ubus.Event
	at  []time.Time
}

func listen(t *testing.T, c *ubus.Client) *events {
	t.Helper()
	ev := &events{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := c.Listen(ctx, func(e ubus.Event) {
		ev.mu.Lock()
		ev.got, ev.at = append(ev.got, e), append(ev.at, time.Now())
		ev.mu.Unlock()
	}, "nemod.binding"); err != nil {
		t.Fatal(err)
	}
	return ev
}

// find returns when the first event for uplink in state came (zero:
// none yet), and its data.
func (ev *events) find(uplink, state string) (time.Time, ubus.Table) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	for i, e := range ev.got {
		u, _ := e.Data.String("uplink")
		s, _ := e.Data.String("state")
		if e.Name == "nemod.binding" && u == uplink && s == state {
			return ev.at[i], e.Data
		}
	}
	return time.Time{}, nil
}

// TestUbusObject: the nemod object answers status (ctl status's shape and
// each uplink's health), flows and reload; a non-root caller reads but
// may not reload; a Wi-Fi carrier loss sends a nemod.binding event.
// Without netifd the router owns the tunnel's address and advertises on
// its LAN itself, lan_ra being left to it.
func TestUbusObject(t *testing.T) {
	e, u := ubusEnds(t, "", "", false)
	e.Start()
	e.Registered()
	c := ubusClient(t, u)
	ev := listen(t, c)
	var st status.OpenWrtRouter
	e.Eventually(2*time.Second, "the nemod object", func() bool { return call(c, "status", &st) == nil })
	ctl := e.MRStatus()
	if st.Role != status.RoleRouter || st.HomeAddress != ctl.HomeAddress || len(st.Bindings) != 2 || st.Bindings[1].State != status.StateRegistered ||
		!slices.Equal(st.MNP, ctl.MNP) {
		t.Fatalf("ubus status %+v\nctl status %+v", st, ctl)
	}
	w, cell := st.Uplinks["wifi"], st.Uplinks["cell"]
	if !w.Online || w.Status != "online" || w.Device != lab.MRWLANDev || w.BID != 1 || w.Uptime < 0 || !cell.Online || cell.Device != lab.MRWWANDev {
		t.Fatalf("uplinks %+v", st.Uplinks)
	}
	var fl status.RouterFlows
	if err := call(c, "flows", &fl); err != nil || fl.Role != status.RoleRouter {
		t.Fatalf("flows %+v %v", fl, err)
	}

	// Reload: a new policy is taken, a bad file refused and said why.
	conf, err := os.ReadFile(e.MRConf)
	if err != nil {
		t.Fatal(err)
	}
	e.WriteRouterConfig(string(conf) + voice)
	var rl status.Reload
	if err := call(c, "reload", &rl); err != nil || !slices.Contains(rl.Applied, "policy voice") {
		t.Fatalf("reload %+v %v", rl, err)
	}
	if err := call(c, "flows", &fl); err != nil || len(fl.Flows.Flows) == 0 || fl.Flows.Flows[0].Rule != "sip" {
		t.Fatalf("flows after the reload %+v %v", fl, err)
	}
	e.WriteRouterConfig("config router 'main'\n\toption home_address 'nonsense'\n")
	var bad struct{ Error string }
	if err := call(c, "reload", &bad); !errors.Is(err, ubus.StatusInvalidArgument) || !strings.Contains(bad.Error, e.MRConf+":2:") {
		t.Fatalf("bad reload: %v %+v", err, bad)
	}
	e.WriteRouterConfig(string(conf))

	// A caller that is not root reads, and is refused reload.
	u.NextIsNobody()
	other := ubusClient(t, u)
	if err := call(other, "reload", nil); !errors.Is(err, ubus.StatusPermissionDenied) {
		t.Fatalf("reload by nobody: %v", err)
	}
	if err := call(other, "status", &st); err != nil || len(st.Bindings) != 2 {
		t.Fatalf("status by nobody: %v", err)
	}

	start := time.Now()
	e.Wifi.SetUp(false)
	e.Eventually(2*time.Second, "nemod.binding: wifi down", func() bool { at, _ := ev.find("wifi", "down"); return !at.IsZero() })
	at, data := ev.find("wifi", "down")
	t.Logf("event %s %v after the carrier loss", ubus.FormatJSON(data, false), at.Sub(start).Round(time.Millisecond))
	if p, _ := data.String("previous"); p != "registered" || at.Sub(start) > time.Second {
		t.Errorf("event %s, %v after the carrier loss", ubus.FormatJSON(data, false), at.Sub(start))
	}
	if n, _ := data.Int("registered"); n != 1 {
		t.Errorf("event counts %d registered", n)
	}
	if e.MRSys.Routes().NoAddress {
		t.Error("no netifd, yet the router left the home address to it")
	}
	if e.LAN(lab.MRLANDev) == nil {
		t.Error("no netifd and lan_ra left out: the router should advertise on its LAN")
	}
}

// TestUbusdRestart: the object is back on a new ubusd.
func TestUbusdRestart(t *testing.T) {
	e, u := ubusEnds(t, "", "", true)
	e.Start()
	e.Registered()
	u.Restart()
	c := ubusClient(t, u)
	var st status.OpenWrtRouter
	e.Eventually(10*time.Second, "the nemod object on the new ubusd", func() bool { return call(c, "status", &st) == nil })
	if len(st.Uplinks) != 2 {
		t.Fatalf("status %+v", st)
	}
}

// lastCall is the last notify_proto the fake netifd was sent, as JSON.
func lastCall(n *fakenetifd.Netifd) string {
	calls := n.Calls()
	if len(calls) == 0 {
		return ""
	}
	return ubus.FormatJSON(calls[len(calls)-1], false)
}

func pendingNemo(t *testing.T, n *fakenetifd.Netifd) {
	t.Helper()
	if err := n.Set("nemo", fakenetifd.Status(fakenetifd.Interface{Pending: true, Proto: "nemo"})); err != nil {
		t.Fatal(err)
	}
}

func startNetifd(t *testing.T, u *twoends.Ubusd) *fakenetifd.Netifd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := fakenetifd.Start(ctx, u.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	pendingNemo(t, n)
	return n
}

// TestNetifdTunnel: with netifd there, the router tells the tunnel's
// interface its state: up with the home address (the
// binding's lifetimes), the prefix and a default route from it once
// registered, down when every uplink is lost, up again; again after netifd
// forgot it and after ubusd restarted; down when the router stops. netifd
// owns the home address, and runs the LAN (lan_ra left out: no router
// advertisements from the router).
func TestNetifdTunnel(t *testing.T) {
	e, u := ubusEnds(t, "", "", false)
	n := startNetifd(t, u)
	e.Start()
	e.Registered()
	up := func(n *fakenetifd.Netifd) func() bool {
		return func() bool { return strings.Contains(lastCall(n), `"link-up":true`) }
	}
	e.Eventually(2*time.Second, "notify_proto link-up", up(n))
	got := lastCall(n)
	for _, frag := range []string{`"interface":"nemo","ifname":"nemo0","link-up":true,"keep":false`,
		`"ip6addr":[{"ipaddr":"2001:db8:ffff:1::100","mask":"128","preferred":`,
		`"routes6":[{"target":"::","netmask":"0","source":"2001:db8:100::/56"}]`,
		`"ip6prefix":["2001:db8:100::/56"]`} {
		if !strings.Contains(got, frag) {
			t.Errorf("no %s in %s", frag, got)
		}
	}
	var addr struct {
		IP6Addr []struct{ Preferred, Valid int } `json:"ip6addr"`
	}
	json.Unmarshal([]byte(got), &addr)
	if a := addr.IP6Addr; len(a) != 1 || a[0].Valid < 590 || a[0].Valid > 600 || a[0].Preferred < 470 || a[0].Preferred > 480 {
		t.Errorf("home address lifetimes %+v (lifetime 600 s, refresh at 480 s)", a)
	}
	if !e.MRSys.Routes().NoAddress {
		t.Error("netifd owns the home address, yet the router installs it")
	}
	if e.LAN(lab.MRLANDev) != nil {
		t.Error("netifd runs the LAN and lan_ra is left out, yet the router advertises on it")
	}
	if st, ok := nemoStatus(t, u); !ok || !st.Up || st.L3Device != "nemo0" {
		t.Errorf("netifd's nemo %+v", st)
	}

	e.Wifi.SetUp(false)
	e.Cell.SetUp(false)
	e.Eventually(2*time.Second, "link-up false", func() bool { return strings.HasSuffix(lastCall(n), `"link-up":false}`) })
	e.Wifi.SetUp(true)
	e.Cell.SetUp(true)
	e.Registered()
	e.Eventually(2*time.Second, "link-up again", up(n))

	// netifd forgets (its interface pending again): told again.
	before := len(n.Calls())
	pendingNemo(t, n)
	e.Eventually(2*time.Second, "told again", func() bool { return len(n.Calls()) > before && up(n)() })

	// ubusd restarts: a new netifd connection, told again.
	u.Restart()
	n2 := startNetifd(t, u)
	e.Eventually(10*time.Second, "told again after ubusd restarted", up(n2))

	if err := e.StopMR(); err != nil {
		t.Fatal(err)
	}
	if got := lastCall(n2); got != `{"action":0,"interface":"nemo","link-up":false}` {
		t.Errorf("last update %s", got)
	}
}

func nemoStatus(t *testing.T, u *twoends.Ubusd) (netifd.Interface, bool) {
	c := ubusClient(t, u)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	tab, err := c.Call(ctx, netifd.Object, "status", ubus.Table{{Name: "interface", Value: ubus.String("nemo")}})
	if err != nil {
		return netifd.Interface{}, false
	}
	i, err := netifd.ParseStatus("nemo", tab, time.Now())
	return i, err == nil
}

const netifdUplinks = `config uplink 'wifi'
	option interface 'wlan'
	option bid '1'
config uplink 'cell'
	option device 'wwan0'
	option bid '2'
`

func wlan(dev string, up bool) ubus.Table {
	return fakenetifd.Status(fakenetifd.Interface{Up: up, Pending: !up, L3Device: dev, Default6: true, Default4: true})
}

// TestNetifdUplinks: an uplink that follows a netifd interface registers
// through its l3_device, goes down when netifd takes the interface down
// (the carrier still up), comes back with it, and moves with its device.
func TestNetifdUplinks(t *testing.T) {
	e, u := ubusEnds(t, "", netifdUplinks, true)
	n := startNetifd(t, u)
	if err := n.Set("wlan", wlan(lab.MRWLANDev, true)); err != nil {
		t.Fatal(err)
	}
	e.Start()
	e.Registered()
	if s := e.MRStatus(); s.Bindings[0].Device != lab.MRWLANDev {
		t.Fatalf("wifi's device %q", s.Bindings[0].Device)
	}
	starts := e.MonitorStarts()

	start := time.Now()
	n.Set("wlan", wlan("", false))
	took := e.Eventually(2*time.Second, "Wi-Fi binding gone at the home agent", func() bool {
		return strings.Join(e.HABindings(), ",") == "2 udp4"
	})
	t.Logf("Wi-Fi binding gone at the home agent %v after netifd took wlan down", took)
	if st := e.States(); st != "wifi=down/none cell=registered/udp4" || time.Since(start) > 2*time.Second {
		t.Fatalf("states %s", st)
	}
	if s := e.MRStatus(); s.Bindings[0].Device != lab.MRWLANDev || e.MonitorStarts() != starts {
		t.Errorf("down, the device %q (kept), monitor started %d times (was %d)", s.Bindings[0].Device, e.MonitorStarts(), starts)
	}
	n.Set("wlan", wlan(lab.MRWLANDev, true))
	e.Registered()

	// netifd moves wlan to another device: the uplink registers through it.
	moved := netip.MustParseAddr("2001:db8:a:1::2")
	e.MRHost.Link("wlan1", moved.String())
	n.Set("wlan", wlan("wlan1", true))
	e.Eventually(5*time.Second, "Wi-Fi registered through wlan1", func() bool {
		b := e.MRStatus().Bindings[0]
		return b.Device == "wlan1" && b.State == status.StateRegistered && b.CoA == moved.String()
	})
	if e.MonitorStarts() != starts+1 {
		t.Errorf("monitor started %d times, want %d", e.MonitorStarts(), starts+1)
	}
}

// TestRecordedNetifdReport: netifd's recorded interface.update of its
// static interface wan (netifd/testdata/session.netifd.json), sent as it
// was recorded, gives the uplink that follows wan its device.
func TestRecordedNetifdReport(t *testing.T) {
	frames, err := ubusvec.LoadFrames("../netifd/testdata/session.netifd.json")
	if err != nil {
		t.Fatal(err)
	}
	var wan ubus.Table
	for _, f := range frames {
		m, err := ubus.ParseMessage(f.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		meth, _ := m.Method()
		if data, ok, _ := m.Data(); f.C2S && m.Type == ubus.MsgNotify && meth == netifd.NotifyUpdate && ok {
			if name, _ := data.String("interface"); name == "wan" {
				wan = data
				break
			}
		}
	}
	if wan == nil {
		t.Fatal("no interface.update of wan recorded")
	}
	e, u := ubusEnds(t, "", strings.Replace(netifdUplinks, "'wlan'", "'wan'", 1), true)
	n := startNetifd(t, u)
	e.Start()
	if err := n.Notify(netifd.NotifyUpdate, wan); err != nil {
		t.Fatal(err)
	}
	e.Eventually(2*time.Second, "wifi on wan0", func() bool { return e.MRStatus().Bindings[0].Device == "wan0" })
	c := ubusClient(t, u)
	var st status.OpenWrtRouter
	if err := call(c, "status", &st); err != nil || st.Uplinks["wifi"].Device != "wan0" || st.Uplinks["wifi"].Interface != "wan" {
		t.Fatalf("status %+v %v", st.Uplinks, err)
	}
}

// TestNetifdTunnelIPv4: where netifd owns the tunnel's addresses, it is
// told the IPv4 home address the home agent granted and the IPv4 prefix,
// and the router leaves the IPv4 home address off the device itself.
func TestNetifdTunnelIPv4(t *testing.T) {
	e, u := ubusEnds(t, "", "", false)
	conf := twoends.RouterUCIWith(e.MRSock, "\toption ubus_socket '"+u.Path+"'\n"+lab.RouterIPv4Static(e.Dir), "")
	e.WriteRouterConfig(strings.Replace(conf, "\toption lan_ra '0'\n", "", 1))
	e.WriteHomeAgentConfig(lab.HomeAgentIPv4(e.HASock, e.Dir, ""))
	n := startNetifd(t, u)
	e.Start()
	e.Registered()
	e.Eventually(3*time.Second, "the IPv4 home address told to netifd", func() bool { return strings.Contains(lastCall(n), `"ipaddr":[`) })
	got := lastCall(n)
	for _, frag := range []string{`"ipaddr":[{"ipaddr":"10.199.0.1","mask":"32"}]`,
		`"routes":[{"target":"10.201.5.0","netmask":"24","metric":2147483647,"type":"unreachable"}]`} {
		if !strings.Contains(got, frag) {
			t.Errorf("no %s in %s", frag, got)
		}
	}
	if r := e.MRSys.Routes4(); !r.NoAddress || r.HoA != lab.HoA4 {
		t.Errorf("IPv4 routing %+v: netifd owns the IPv4 home address", r)
	}
}
