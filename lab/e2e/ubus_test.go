package e2e

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"nemod/internal/fakenetifd"
	"nemod/lab"
	"nemod/status"
	"nemod/ubus"
	"nemod/ubus/ubusd"
)

// The real router binary in the lab on the test's ubusd (package ubusd on
// a unix socket, which every namespace reaches): its nemod object and its
// events, as OpenWrt's rpcd, LuCI and hotplug scripts would see them; and,
// with netifd played by the test (package fakenetifd), the tunnel reported
// to it and its address left to it on the real kernel.

func startUbusd(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "ubus.sock")
	l, err := ubusd.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := ubusd.NewServer(nil)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return path
}

// TestUbusInTheLab: `ubus call nemod status` answers with both bindings
// and their uplinks online; a client listening for nemod.binding hears
// the Wi-Fi binding go down within a second of the carrier loss; netifd
// is told the tunnel up with the home address and the prefix, and the
// router puts no home address of its own on the tunnel device, while its
// policy routing still carries the LAN's traffic to the correspondent.
func TestUbusInTheLab(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sock := startUbusd(t, e.lab.Dir())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := fakenetifd.Start(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Set("nemo", fakenetifd.Status(fakenetifd.Interface{Pending: true, Proto: "nemo"})); err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(lab.RouterUCI(e.mrSock, ""), "config uplink 'wifi'", "\toption ubus_socket '"+sock+"'\nconfig uplink 'wifi'", 1)
	e.mrConf = e.write("mr-ubus.uci", conf)
	e.startHA()
	e.startMR()
	e.registered()

	c, err := ubus.Connect(ctx, ubus.Options{Path: sock})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var mu sync.Mutex
	var downAt time.Time
	var down ubus.Table
	if _, err := c.Listen(ctx, func(ev ubus.Event) {
		u, _ := ev.Data.String("uplink")
		s, _ := ev.Data.String("state")
		mu.Lock()
		defer mu.Unlock()
		if u == "wifi" && s == "down" && down == nil {
			downAt, down = time.Now(), ev.Data
		}
	}, "nemod.binding"); err != nil {
		t.Fatal(err)
	}
	var st status.OpenWrtRouter
	eventually(t, 5*time.Second, "ubus call nemod status", func() bool {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		tab, err := c.Call(cctx, "nemod", "status", nil)
		return err == nil && json.Unmarshal([]byte(ubus.FormatJSON(tab, false)), &st) == nil
	})
	if len(st.Bindings) != 2 || !st.Uplinks["wifi"].Online || !st.Uplinks["cell"].Online || st.Uplinks["wifi"].Device != "wlan0" {
		t.Fatalf("ubus status: %+v", st)
	}

	eventually(t, 5*time.Second, "netifd told the tunnel is up", func() bool {
		calls := n.Calls()
		return len(calls) > 0 && strings.Contains(ubus.FormatJSON(calls[len(calls)-1], false), `"link-up":true`)
	})
	calls := n.Calls()
	last := ubus.FormatJSON(calls[len(calls)-1], false)
	for _, frag := range []string{`"ifname":"nemo0"`, `"ipaddr":"2001:db8:ffff:1::100","mask":"128"`, `"ip6prefix":["2001:db8:100::/56"]`} {
		if !strings.Contains(last, frag) {
			t.Errorf("no %s in %s", frag, last)
		}
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	addrs, err := e.lab.Run(rctx, lab.MR, "ip", "-6", "addr", "show", "dev", "nemo0")
	if err != nil || strings.Contains(addrs, "2001:db8:ffff:1::100") {
		t.Errorf("nemo0, whose addresses are netifd's: %s %v", addrs, err)
	}
	if out, err := e.ping6(lab.LAN, "2001:db8:c::1", 3); err != nil {
		t.Fatalf("LAN to correspondent: %v\n%s", err, out)
	}

	start := time.Now()
	if err := e.lab.CarrierDown("wifi"); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 2*time.Second, "nemod.binding wifi down", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return down != nil
	})
	mu.Lock()
	t.Logf("nemod.binding %s %v after the carrier loss (seen %v)", ubus.FormatJSON(down, false), downAt.Sub(start).Round(time.Millisecond), took.Round(time.Millisecond))
	if p, _ := down.String("previous"); p != "registered" || downAt.Sub(start) > time.Second {
		t.Errorf("event %s %v after the carrier loss", ubus.FormatJSON(down, false), downAt.Sub(start))
	}
	mu.Unlock()
}
