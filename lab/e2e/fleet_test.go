package e2e

import (
	"context"
	"encoding/binary"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"nemod/binding"
	"nemod/internal/testenv"
	"nemod/lab"
	"nemod/nemo"
	"nemod/status"
)

// The fleet: binding revocation, routes announced by a routing daemon,
// two mobile networks behind one home agent.

// pcapngPackets returns the Ethernet frames' IPv6 packets of a pcapng
// file (dumpcap's format): Enhanced Packet Blocks only.
func pcapngPackets(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for len(b) >= 12 {
		typ, n := binary.LittleEndian.Uint32(b), int(binary.LittleEndian.Uint32(b[4:]))
		if n < 12 || n > len(b) {
			break
		}
		if typ == 6 && n >= 28 {
			capLen := int(binary.LittleEndian.Uint32(b[20:]))
			if 28+capLen <= n && capLen > 14 && binary.BigEndian.Uint16(b[28+12:]) == 0x86dd {
				out = append(out, append([]byte(nil), b[28+14:28+capLen]...))
			}
		}
		b = b[n:]
	}
	return out
}

// sendRaw sends a whole IPv6 packet from a role's namespace, as a forger
// there would.
func (e *env) sendRaw(role string, pkt []byte) {
	e.t.Helper()
	p, err := nemo.ParsePacket(pkt)
	if err != nil {
		e.t.Fatal(err)
	}
	e.inNS(role, func() error {
		fd, err := syscall.Socket(syscall.AF_INET6, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
		if err != nil {
			return err
		}
		defer syscall.Close(fd)
		return syscall.Sendto(fd, pkt, 0, &syscall.SockaddrInet6{Addr: p.Dst.As16()})
	})
}

// TestRevocationInLab: `nemod ctl revoke` of the Wi-Fi binding takes it
// off at once: the LAN's traffic moves to the cellular binding, and the
// router registers Wi-Fi again after its holdoff; tshark dissects the
// indication and the acknowledgement; a forged indication and a replay of
// the genuine one change nothing; revoking every binding stops the LAN's
// traffic through the home agent.
func TestRevocationInLab(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// The Wi-Fi native, so that the indication and its acknowledgement go
	// as RFC 5846 shows them (type 2 routing header, Home Address option)
	// and tshark dissects them as such.
	e.wifiEncap, e.want = "ipv6", nativeStates
	e.mrConf = e.write("mr.uci", strings.Replace(e.routerUCI(""), "option lifetime '600'", "option lifetime '600'\n\toption revoked_holdoff '3'", 1))
	e.startHA()
	e.startMR()
	e.registered()
	capHA, err := e.lab.Capture(lab.HA, "eth0", "")
	if err != nil {
		t.Fatal(err)
	}
	before := e.mrStatus().Bindings
	// A ping every 10 ms from the LAN while the operator revokes the Wi-Fi
	// binding from the home agent's namespace.
	pinged := make(chan string, 1)
	go func() {
		out, _ := e.ping6(lab.LAN, lab.CN6.String(), 150, "-i", "0.01")
		pinged <- out
	}()
	time.Sleep(500 * time.Millisecond)
	var out string
	if err := e.runCtl(lab.HA, e.haSock, &out, "revoke", "car1@fleet", "--bid", "1"); err != nil {
		t.Fatalf("ctl revoke: %v\n%s", err, out)
	}
	if !strings.Contains(out, "acknowledged with status 0") {
		t.Fatalf("ctl revoke said %q", out)
	}
	if got := e.mrStates(); got != "wifi=revoked/ipv6 cell=registered/udp4" {
		t.Fatalf("router after the revocation: %s", got)
	}
	pingOut := <-pinged
	if got := e.haBindings(); len(got) != 1 || !strings.HasPrefix(got[2], "udp4") {
		t.Fatalf("home agent's bindings: %v", got)
	}
	after := e.mrStatus().Bindings
	if after[0].TxPackets <= before[0].TxPackets || after[1].TxPackets <= before[1].TxPackets {
		t.Fatalf("the pings did not use Wi-Fi then the cellular binding: before %+v after %+v", before, after)
	}
	path, err := capHA.Stop()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rows, err := lab.PcapFields(ctx, path, "mip6.mhtype == 16", "mip6.bri_br.type", "mip6.bri_seqnr", "mip6.bi.bid", "_ws.malformed", "_ws.expert.severity", "frame.time_epoch", "ipv6.src", "ipv6.dst", "eth.src")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	var native [][]string
	for _, r := range rows {
		if strings.Contains(r[6], ",") {
			// A copy the kernel of the other end sent back into the tunnel
			// (it knows no type 2 routing header nor Home Address option):
			// the daemons drop it, as they do such copies of Binding
			// Acknowledgements.
			continue
		}
		native = append(native, r)
		kinds[r[0]]++
		if r[3] != "" || strings.Contains(r[4], "error") {
			t.Errorf("tshark finds the revocation message malformed: %q", r)
		}
	}
	if kinds["1"] != 1 || kinds["2"] != 1 || native[0][2] != "1" || native[0][1] != native[1][1] {
		t.Fatalf("revocation messages on the wire: %q", rows)
	}
	// On the home agent's clock: the indication leaves, and the LAN's
	// echo requests stop coming through Wi-Fi (IPv6 in IPv6) and come
	// through the cellular uplink (UDP) within 100 ms.
	frames, err := lab.PcapFields(ctx, path, "(mip6.mhtype == 16 && mip6.bri_br.type == 1) || (icmpv6.type == 128 && ipv6.dst == "+lab.CN6.String()+")",
		"frame.time_epoch", "mip6.mhtype", "udp.srcport", "ipv6.src")
	if err != nil {
		t.Fatal(err)
	}
	var briAt, firstCell, lastWifi float64
	for _, f := range frames {
		at := parseEpoch(f[0])
		switch {
		case f[1] == "16":
			briAt = at
		case f[2] != "":
			if firstCell == 0 && briAt != 0 {
				firstCell = at
			}
		case strings.Count(f[3], ",") == 1: // tunnelled: two IPv6 headers
			lastWifi = at
		}
	}
	if briAt == 0 || firstCell == 0 {
		t.Fatalf("no indication or no echo through the cellular uplink after it: %q", frames)
	}
	gap := time.Duration((firstCell - briAt) * float64(time.Second))
	t.Logf("indication sent to the first LAN packet through the cellular uplink: %v (last through Wi-Fi %v after the indication)",
		gap.Round(100*time.Microsecond), time.Duration((lastWifi-briAt)*float64(time.Second)).Round(100*time.Microsecond))
	if gap > 100*time.Millisecond || lastWifi > briAt+0.1 {
		t.Fatalf("flows moved %v after the indication, want within 100 ms\n%s", gap, pingOut)
	}
	var bri []byte
	for _, p := range pcapngPackets(t, path) {
		if q, err := nemo.ParsePacket(p); err == nil && len(q.MH) > 6 && q.MH[2] == nemo.TypeRevocation && q.MH[6] == nemo.RevocationIndication {
			bri = p
		}
	}
	if bri == nil {
		t.Fatal("no indication in the capture")
	}
	// Registered again after the 3 s holdoff.
	eventually(t, 8*time.Second, "wifi registered again after the holdoff", func() bool {
		return e.mrStates() == e.want
	})
	// The genuine indication replayed, and one signed with another key,
	// from the correspondent's network: refused, nothing changes.
	rs0 := e.mrStatus()
	e.sendRaw(lab.CN, bri)
	forged := forgedIndication(t, e.wifiCoA())
	e.sendRaw(lab.CN, forged)
	eventually(t, 2*time.Second, "the replay and the forgery refused", func() bool {
		ig := e.mrStatus().Counters.Ignored
		return ig["replayed"] > rs0.Counters.Ignored["replayed"] && ig["auth_failed"] > rs0.Counters.Ignored["auth_failed"]
	})
	time.Sleep(200 * time.Millisecond)
	if got := e.mrStates(); got != e.want {
		t.Fatalf("after the replay and the forgery: %s", got)
	}
	if rs := e.mrStatus(); rs.Revocation.Taken != rs0.Revocation.Taken {
		t.Fatalf("an indication was taken: %+v", rs.Revocation)
	}
	// Every binding: the LAN's traffic no longer goes through the home
	// agent.
	if err := e.runCtl(lab.HA, e.haSock, &out, "revoke", "2001:db8:ffff:1::100"); err != nil {
		t.Fatalf("ctl revoke all: %v\n%s", err, out)
	}
	eventually(t, time.Second, "every binding revoked", func() bool { return e.mrStatus().Revocation.AllRevoked })
	if out, err := e.ping6(lab.LAN, lab.CN6.String(), 2); err == nil {
		t.Fatalf("LAN reached the correspondent with every binding revoked:\n%s", out)
	}
	if s := e.haStatus(); s.Revocations.Acknowledged != 2 {
		t.Fatalf("home agent's revocations: %+v", s.Revocations)
	}
}

// forgedIndication is a revocation of every binding of car1 to coa,
// signed with a key that is not car1's.
func forgedIndication(t *testing.T, coa string) []byte {
	t.Helper()
	hoa := netip.MustParseAddr("2001:db8:ffff:1::100")
	c := binding.NewCache(binding.HAConfig{Address: lab.HA6, HomePrefix: lab.HomeLinkPrefix,
		Peers: []binding.Peer{{Name: "car1", HoA: hoa, SPI: 256, NAI: "car1@fleet", Key: []byte("not the key of car1"), MNPs: []netip.Prefix{lab.MNP}}}})
	// A registration the forger makes up for itself, so that it has a
	// binding to revoke.
	c.Entry(hoa).Bindings = []binding.Binding{{BID: 1, CoA: netip.MustParseAddr(coa), Outer: netip.AddrPortFrom(netip.MustParseAddr(coa), 0), Encap: nemo.EncapIPv6, Expires: time.Now().Add(time.Hour)}}
	_, res, err := c.Revoke(hoa, nil, nemo.RevTriggerAdministrative, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return res.Reply
}

// TestRoutesByBird: core runs no static route for the mobile network
// prefix; bird 2 in core learns it by OSPFv3 from bird 2 on the home agent,
// which exports the route the home agent installs while the router is
// registered, and only then.
func TestRoutesByBird(t *testing.T) {
	t.Parallel()
	testenv.NeedTool(t, "bird", "birdc")
	e := newFleetEnv(t, lab.FleetOptions{DynamicRouting: true})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if has, err := e.lab.RouteIn(ctx, lab.Core, lab.MNP); err != nil || has {
		t.Fatalf("core has a route for %s before any registration (%v)", lab.MNP, err)
	}
	e.startHA()
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	defer cancelShort()
	if _, err := e.lab.WaitRoute(short, lab.Core, lab.MNP, true); err == nil {
		t.Fatal("core learnt the prefix of a router that is not registered")
	}
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e.startMR()
	e.registered()
	took, err := e.lab.WaitRoute(ctx, lab.Core, lab.MNP, true)
	if err != nil {
		t.Fatalf("%v\ncore's bird:\n%s\nhome agent's bird:\n%s", err, e.lab.BirdRoutes(ctx, lab.Core), e.lab.BirdRoutes(ctx, lab.HA))
	}
	t.Logf("registered to core's route for the prefix: %v", took)
	hoaRoute := netip.PrefixFrom(netip.MustParseAddr("2001:db8:ffff:1::100"), 128)
	if has, _ := e.lab.RouteIn(ctx, lab.Core, hoaRoute); !has {
		t.Errorf("core has no route for the home address %s", hoaRoute)
	}
	if out, err := e.ping6(lab.LAN, lab.CN6.String(), 3); err != nil {
		t.Fatalf("LAN to correspondent with the learnt route: %v\n%s", err, out)
	}
	// Router gone (de-registered): the route goes from core.
	e.mr.Signal(syscall.SIGTERM)
	took, err = e.lab.WaitRoute(ctx, lab.Core, lab.MNP, false)
	if err != nil {
		t.Fatalf("%v\ncore's bird:\n%s", err, e.lab.BirdRoutes(ctx, lab.Core))
	}
	t.Logf("de-registered to core's route withdrawn: %v", took)
}

// TestTwoMobileNetworks: two mobile routers behind one home agent; a host
// on each mobile network reaches the other, both ways; on the home agent's
// link the packets are only ever inside a tunnel, and the home agent's
// TUN device never sees them: they go from one tunnel into the other.
func TestTwoMobileNetworks(t *testing.T) {
	t.Parallel()
	e := newFleetEnv(t, lab.FleetOptions{SecondRouter: true})
	e.startHA()
	e.startMR()
	mr2Sock := e.lab.Dir() + "/mr2.sock"
	mr2Conf := e.write("mr2.uci", lab.Router2UCI(mr2Sock))
	if _, err := e.lab.Start(lab.MR2, "router2", e.bin, "router", "-c", mr2Conf); err != nil {
		t.Fatal(err)
	}
	e.waitSocket(mr2Sock)
	e.registered()
	eventually(t, 5*time.Second, "car2 registered", func() bool {
		var s status.Router
		return ctlStatus(mr2Sock, &s) == nil && len(s.Bindings) == 1 && s.Bindings[0].State == "registered"
	})
	capLink, err := e.lab.Capture(lab.HA, "eth0", "")
	if err != nil {
		t.Fatal(err)
	}
	capTUN, err := e.lab.Capture(lab.HA, "nemoha0", "")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := e.ping6(lab.LAN, lab.LAN2Host.String(), 5); err != nil {
		t.Fatalf("LAN to LAN2: %v\n%s", err, out)
	}
	if out, err := e.ping6(lab.LAN2, lab.LANHost.String(), 5); err != nil {
		t.Fatalf("LAN2 to LAN: %v\n%s", err, out)
	}
	hp := e.haStatus().Hairpin
	if hp.Packets < 20 {
		t.Fatalf("hairpinned %+v, want the 20 echoes and replies", hp)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	link, err := capLink.Stop()
	if err != nil {
		t.Fatal(err)
	}
	tun, err := capTUN.Stop()
	if err != nil {
		t.Fatal(err)
	}
	between := "icmpv6.type == 128 || icmpv6.type == 129"
	rows, err := lab.PcapFields(ctx, link, between, "ipv6.src", "ipv6.dst")
	if err != nil {
		t.Fatal(err)
	}
	inner := 0
	for _, r := range rows {
		srcs := strings.Split(r[0], ",")
		if len(srcs) < 2 {
			t.Errorf("a packet between the mobile networks outside a tunnel on the home agent's link: %q", r)
			continue
		}
		in := srcs[len(srcs)-1]
		if in == lab.LANHost.String() || in == lab.LAN2Host.String() {
			inner++
		}
	}
	// Each of the 20 packets twice: into the home agent in one tunnel, out
	// of it in the other.
	if inner < 40 {
		t.Fatalf("%d tunnelled packets between the mobile networks on the home agent's link, want 40: %q", inner, rows)
	}
	if rows, err := lab.PcapFields(ctx, tun, between, "frame.number"); err != nil || len(rows) != 0 {
		t.Fatalf("the home agent's TUN device saw %d of them (%v)", len(rows), err)
	}
}

func parseEpoch(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}
