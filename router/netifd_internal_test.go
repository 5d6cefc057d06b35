package router

import (
	"bytes"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"nemod/binding"
	"nemod/config"
	"nemod/dhcpv6pd"
	"nemod/nemo"
	"nemod/netifd"
	"nemod/status"
	"nemod/tunnel"
	"nemod/ubus"
	"nemod/ubus/ubusvec"
)

// The daemon's notify_proto bytes for the daemon states of the netifd
// recordings (netifd/testdata, a copy of the real netifd's exchanges:
// README.md there). The daemon's own path builds them: its binding update
// list, registered by a home agent's real Binding Acknowledgement, its
// delegated prefix, and ubusTick, which turns them into the update the
// sender hands netifd.

var (
	recHoA = netip.MustParseAddr("2001:db8:ff00::10")
	recHA  = netip.MustParseAddr("2001:db8:ff00::1")
	recCoA = netip.MustParseAddr("2001:db8:a::2")
	recKey = []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	// The recording's stand-in for the tunnel device was a veth, with a
	// link-local next hop; nemod's TUN device is point-to-point and its
	// routes are on-link.
	recGateway = netip.MustParseAddr("fe80::1")
)

// recordedCall is the DATA of the notify_proto a recorded client sent.
func recordedCall(t *testing.T, name string) []byte {
	t.Helper()
	frames, err := ubusvec.LoadFrames("../netifd/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		m, err := ubus.ParseMessage(f.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if meth, _ := m.Method(); f.C2S && m.Type == ubus.MsgInvoke && meth == "notify_proto" {
			data, _ := m.Attr(ubus.AttrData)
			return data
		}
	}
	t.Fatalf("%s: no notify_proto", name)
	return nil
}

// devicePlane is the data plane as far as the tunnel's state reads it.
type devicePlane struct{ tunnel.RouterPlane }

func (devicePlane) Status() status.DataPlane { return status.DataPlane{Device: "nemo0"} }

// recordedDaemon is a router with one uplink, registered at t0 by a home
// agent that granted 7200 s and advised a refresh after 3600 s (Binding
// Refresh Advice), holding a delegated prefix preferred for 3600 s and
// valid for 7200 s: the lifetimes of the recorded calls.
func recordedDaemon(t *testing.T, t0 time.Time, mnp netip.Prefix) *Daemon {
	t.Helper()
	cfg := &config.Router{HomeAddress: recHoA, HomeAgent: recHA, OpenWrt: config.OpenWrt{NetifdInterface: "nemo"},
		PD: &config.RouterPD{Enabled: true}}
	br := binding.NewUpdateList(binding.UpdateListConfig{HoA: recHoA, HA: recHA, SPI: 256, Key: recKey, Lifetime: 7200 * time.Second,
		Uplinks: []binding.UplinkConfig{{Name: "wifi", BID: 1, Mode: nemo.EncapIPv6}}}, 1)
	ha := binding.NewCache(binding.HAConfig{Address: recHA, HomePrefix: netip.MustParsePrefix("2001:db8:ff00::/64"), MaxLifetime: 7200 * time.Second,
		ReplayWindow: 7 * time.Second, Peers: []binding.Peer{{Name: "car", HoA: recHoA, SPI: 256, Key: recKey, PD: true}}})
	br.SetLink(0, binding.LinkState{Up: true, IPv6: recCoA}, t0)
	sends := br.Poll(t0)
	if len(sends) != 1 {
		t.Fatalf("%d packets to send", len(sends))
	}
	res := ha.HandlePacket(sends[0].Packet, binding.Arrival{Encap: nemo.EncapIPv6, Outer: netip.AddrPortFrom(recCoA, 0)}, t0)
	if res.Reply == nil {
		t.Fatalf("home agent: %v", res.Err)
	}
	if err := br.HandlePacket(withRefreshAdvice(t, res.Reply, 3600*time.Second), t0); err != nil {
		t.Fatal(err)
	}
	if b := br.Bindings()[0]; b.State != binding.StateRegistered || b.RefreshAt != t0.Add(3600*time.Second) {
		t.Fatalf("binding %+v", b)
	}
	return &Daemon{cfg: cfg, br: br, fwd: devicePlane{}, log: slog.Default(),
		uplinks: []*Uplink{{Cfg: config.Uplink{Name: "wifi", Device: "wlan0", BID: 1}}},
		pd: &pdState{held: map[netip.Prefix]dhcpv6pd.Held{mnp: {Prefix: mnp,
			PreferredUntil: t0.Add(3600 * time.Second), ValidUntil: t0.Add(7200 * time.Second)}}}}
}

// withRefreshAdvice adds a Binding Refresh Advice to a home agent's
// Binding Acknowledgement, signed again with the shared key.
func withRefreshAdvice(t *testing.T, pkt []byte, refresh time.Duration) []byte {
	t.Helper()
	p, err := nemo.ParsePacket(pkt)
	if err != nil {
		t.Fatal(err)
	}
	var ba nemo.BindingAck
	if err := nemo.Unmarshal(p.MH, &ba); err != nil {
		t.Fatal(err)
	}
	ba.HasRefreshAdvice, ba.RefreshAdvice = true, uint16(refresh/(4*time.Second))
	mh, err := nemo.Marshal(&ba)
	if err != nil {
		t.Fatal(err)
	}
	if err := nemo.NewAuthenticator(recKey).Sign(mh, p.Dst, p.RH2Address); err != nil {
		t.Fatal(err)
	}
	out, err := nemo.AppendPacket(nil, p.Src, p.Dst, netip.Addr{}, p.RH2Address, p.HopLimit, mh)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sentUpdate runs the daemon's tick with netifd present and returns the
// update it queued for netifd.
func sentUpdate(t *testing.T, d *Daemon, now time.Time) netifd.Update {
	t.Helper()
	if d.ub == nil {
		d.ub = &ubusState{seen: true, added: true, out: newUbusOut(nil, t.Logf)}
	}
	d.ubusTick(now)
	if d.ub.out.next == nil {
		t.Fatal("nothing queued for netifd")
	}
	u := *d.ub.out.next
	d.ub.out.next = nil
	return u
}

func encode(t *testing.T, u netifd.Update) []byte {
	t.Helper()
	args, err := u.Args()
	if err != nil {
		t.Fatal(err)
	}
	b, err := ubus.EncodeTable(args)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// onVeth gives the update's routes the recording's next hop, and adds the
// recording's route to the home link when home is set: the two things of
// the recordings that come from its veth, not from a router's state.
func onVeth(u netifd.Update, home bool) netifd.Update {
	u.Routes = append([]netifd.Route(nil), u.Routes...)
	for i := range u.Routes {
		u.Routes[i].Gateway = recGateway
	}
	if home {
		u.Routes = append(u.Routes, netifd.Route{Target: netip.MustParsePrefix("2001:db8:ff00::/64"), Gateway: recGateway, Metric: 256})
	}
	return u
}

func same(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		gt, _ := ubus.ParseTable(got)
		wt, _ := ubus.ParseTable(want)
		t.Errorf("%s:\n sent %s\n recorded %s", what, ubus.FormatJSON(gt, false), ubus.FormatJSON(wt, false))
	}
}

// TestNotifyProtoMatchesRecordings: for the recordings' states the daemon
// sends netifd the recorded bytes: the first update (home address and
// prefix with their lifetimes, the source-specific default route), the
// prefix changed by delegation, and the link loss when the binding goes;
// a refresh (the binding's deadlines moved) is sent again, the mere
// passing of time is not.
func TestNotifyProtoMatchesRecordings(t *testing.T) {
	t0 := time.Date(2026, 7, 17, 12, 0, 0, 0, time.UTC)
	d := recordedDaemon(t, t0, netip.MustParsePrefix("2001:db8:100::/56"))
	u := sentUpdate(t, d, t0)
	same(t, "notify-proto", encode(t, onVeth(u, true)), recordedCall(t, "notify-proto.cli-notify.json"))

	d.ubusTick(t0.Add(time.Minute))
	if d.ub.out.next != nil {
		t.Fatalf("sent again with nothing changed: %+v", *d.ub.out.next)
	}

	// The delegation moves to another prefix, as at a new lease.
	p2 := netip.MustParsePrefix("2001:db8:200::/56")
	delete(d.pd.held, netip.MustParsePrefix("2001:db8:100::/56"))
	d.pd.held[p2] = dhcpv6pd.Held{Prefix: p2, PreferredUntil: t0.Add(3600 * time.Second), ValidUntil: t0.Add(7200 * time.Second)}
	same(t, "prefix-change", encode(t, onVeth(sentUpdate(t, d, t0), false)), recordedCall(t, "prefix-change.cli-notify.json"))

	// The uplink goes: the binding with it, and the tunnel's link.
	d.br.SetLink(0, binding.LinkState{}, t0.Add(time.Second))
	same(t, "link-down", encode(t, sentUpdate(t, d, t0.Add(time.Second))), recordedCall(t, "link-down.cli-notify.json"))
}

// TestNotifyProtoAfterRefresh: a refreshed binding moves the home
// address's deadlines, and netifd is told the new lifetimes.
func TestNotifyProtoAfterRefresh(t *testing.T) {
	t0 := time.Date(2026, 7, 17, 12, 0, 0, 0, time.UTC)
	d := recordedDaemon(t, t0, netip.MustParsePrefix("2001:db8:100::/56"))
	sentUpdate(t, d, t0)
	at := t0.Add(3600 * time.Second)
	sends := d.br.Poll(at)
	if len(sends) != 1 {
		t.Fatalf("no refresh: %d packets", len(sends))
	}
	ha := binding.NewCache(binding.HAConfig{Address: recHA, HomePrefix: netip.MustParsePrefix("2001:db8:ff00::/64"), MaxLifetime: 7200 * time.Second,
		ReplayWindow: 7 * time.Second, Peers: []binding.Peer{{Name: "car", HoA: recHoA, SPI: 256, Key: recKey, PD: true}}})
	res := ha.HandlePacket(sends[0].Packet, binding.Arrival{Encap: nemo.EncapIPv6, Outer: netip.AddrPortFrom(recCoA, 0)}, at)
	if err := d.br.HandlePacket(res.Reply, at.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	u := sentUpdate(t, d, at.Add(time.Second))
	// Granted 7200 s from the refresh's sending; refreshed again at 80 %.
	if l := u.IPv6[0].Lifetimes; l.Valid != 7199 || l.Preferred != 5759 {
		t.Errorf("home address lifetimes after the refresh %+v", *l)
	}
}
