package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"nemod/header"
	"nemod/internal/testenv"
	"nemod/lab"
	"nemod/nemo"
	"nemod/netio"
)

// The mobile network's IPv4 (RFC 5555) end to end: a LAN host configured
// by DHCPv4 from the router reaches an IPv4 correspondent through the home
// agent over the Wi-Fi (IPv4-in-IPv6) and over the cellular NAT (IPv4 in
// UDP 4191), as tshark sees it on the access links.

// ipv4Env is a lab with car1's IPv4 configured at both ends: v4 (given
// the lab's folder for state_dir) in the router section, haExtra in the
// homeagent one, car1HA in car1's, extra sections for the router.
func ipv4Env(t *testing.T, v4 func(dir string) string, haExtra, car1HA, extra string) *env {
	t.Helper()
	e := newEnv(t)
	// The Wi-Fi native, as these tests capture IPv4-in-IPv6 on it (with
	// encap 'auto' two nemod daemons negotiate UDP over IPv6).
	e.wifiEncap, e.want = "ipv6", nativeStates
	e.mrConf = e.write("mr.uci", lab.RouterUCIv4(e.mrSock, e.wifiEncap, v4(e.lab.Dir()), extra))
	e.haConf = e.write("ha.uci", lab.HomeAgentUCIv4(e.haSock, fmt.Sprintf("\toption pool_v4 '%s'\n\toption state_dir '%s'\n%s", lab.Pool4, e.lab.Dir(), haExtra), car1HA))
	return e
}

// car1Static is car1's static IPv4 claims at the home agent.
var car1Static = fmt.Sprintf("\toption home_address_v4 '%s'\n\tlist mnp_v4 '%s'\n", lab.HoA4, lab.MNP4)

// granted4 waits for the router to have IPv4 and returns its prefix.
func (e *env) granted4() netip.Prefix {
	e.t.Helper()
	var p netip.Prefix
	eventually(e.t, 5*time.Second, "IPv4 granted", func() bool {
		v := e.mrStatus().IPv4
		if v == nil || len(v.MNP) == 0 {
			return false
		}
		p = netip.MustParsePrefix(v.MNP[0])
		return true
	})
	return p
}

// dhcpLease is what udhcpc got.
type dhcpLease struct {
	IP     netip.Addr
	Mask   int
	Router netip.Addr
	DNS    string
	Lease  int
}

// dhcp4 runs busybox udhcpc on the LAN host until it has a lease, and
// returns it; the LAN host is then configured with it.
func (e *env) dhcp4() dhcpLease {
	e.t.Helper()
	testenv.NeedTool(e.t, "busybox")
	script := e.write("udhcpc.sh", lab.UdhcpcScript())
	if err := os.Chmod(script, 0o755); err != nil {
		e.t.Fatal(err)
	}
	out := filepath.Join(e.lab.Dir(), "lease.env")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := e.lab.Command(ctx, lab.LAN, "busybox", "udhcpc", "-f", "-q", "-n", "-t", "5", "-T", "1", "-i", lab.LANDev, "-s", script)
	cmd.Env = append(os.Environ(), "LEASE_OUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		e.t.Fatalf("udhcpc: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		e.t.Fatal(err)
	}
	var l dhcpLease
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "ip":
			l.IP, _ = netip.ParseAddr(v)
		case "mask":
			l.Mask, _ = strconv.Atoi(v)
		case "router":
			l.Router, _ = netip.ParseAddr(v)
		case "dns":
			l.DNS = strings.TrimSpace(v)
		case "lease":
			l.Lease, _ = strconv.Atoi(v)
		}
	}
	return l
}

func (e *env) ping4(role, dst string, count int, extra ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := append([]string{"ping", "-4", "-n", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "2"}, extra...)
	return e.lab.Run(ctx, role, append(args, dst)...)
}

func fields(t *testing.T, path, filter string, f ...string) [][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := lab.PcapFieldsIP(ctx, path, filter, f...)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// noMalformed checks that tshark finds nothing malformed in a capture.
// nemod's own liveness probes in UDP (8 octets whose first nibble is 0,
// no IP packet) are no IP packet to decode and are left out.
func noMalformed(t *testing.T, path string) {
	t.Helper()
	probe := fmt.Sprintf("udp.length == %d", 8+nemo.ProbeLen)
	if rows := fields(t, path, "(_ws.malformed || _ws.expert.severity == error) && !("+probe+")", "frame.number", "frame.protocols"); len(rows) > 0 {
		t.Errorf("%s: tshark finds %d malformed packets, e.g. %q", filepath.Base(path), len(rows), rows[0])
	}
}

// TestIPv4LANThroughTheHomeAgent: the LAN host gets its address, router
// and DNS server by DHCPv4 from the router, from car1's IPv4 prefix; it
// pings the IPv4 correspondent through the home agent over the Wi-Fi
// (IPv4-in-IPv6, next header 4) and, with the Wi-Fi lost, over the
// cellular NAT alone (IPv4 in UDP 4191); the correspondent sees the LAN
// host's own address, with the TTL lowered once by each router on the way
// (the mobile router, the home agent, core) and not by the tunnel; tshark
// reads the IPv4 Home Address and Address Acknowledgement options and the
// tunnelled packets without a malformed field.
func TestIPv4LANThroughTheHomeAgent(t *testing.T) {
	t.Parallel()
	e := ipv4Env(t, lab.RouterIPv4Static, "", car1Static, "")
	e.startHA()
	sigWifi, err := e.lab.Capture(lab.Wifi, "eth0", "")
	if err != nil {
		t.Fatal(err)
	}
	sigCell, err := e.lab.Capture(lab.Cell, "eth0", "udp port 4191")
	if err != nil {
		t.Fatal(err)
	}
	e.startMR()
	e.registered()
	if p := e.granted4(); p != lab.MNP4 {
		t.Fatalf("granted %s", p)
	}
	l := e.dhcp4()
	if !lab.MNP4.Contains(l.IP) || l.IP == lab.MRLAN4 || l.Mask != 24 || l.Router != lab.MRLAN4 || l.DNS != lab.DNS4.String() || l.Lease != 3600 {
		t.Fatalf("DHCPv4 lease: %+v", l)
	}
	if v := e.mrStatus().IPv4; v.DHCP == nil || v.DHCP.Active != 1 || v.LANAddress != "10.201.5.1/24" {
		t.Fatalf("router's IPv4 status: %+v", v)
	}
	capCN, err := e.lab.Capture(lab.CN, "eth0", "icmp")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := e.ping4(lab.LAN, lab.CN4.String(), 3); err != nil {
		t.Fatalf("ping over the Wi-Fi: %v\n%s", err, out)
	}
	if err := e.lab.CarrierDown("wifi"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "only the cellular binding", func() bool { return len(e.haBindings()) == 1 })
	if out, err := e.ping4(lab.LAN, lab.CN4.String(), 3); err != nil {
		t.Fatalf("ping over the cellular NAT: %v\n%s", err, out)
	}
	cp, err := capCN.Stop()
	if err != nil {
		t.Fatal(err)
	}
	wp, err := sigWifi.Stop()
	if err != nil {
		t.Fatal(err)
	}
	sp, err := sigCell.Stop()
	if err != nil {
		t.Fatal(err)
	}
	rows := fields(t, cp, "icmp.type == 8", "ip.src", "ip.ttl")
	if len(rows) < 6 {
		t.Fatalf("%d echo requests at the correspondent", len(rows))
	}
	for _, r := range rows {
		if r[0] != l.IP.String() || r[1] != "61" {
			t.Fatalf("at the correspondent: source %s, TTL %s; want %s and 64 less three routers", r[0], r[1], l.IP)
		}
	}
	// Over the Wi-Fi: IPv4 inside IPv6, both ways.
	if n := len(fields(t, wp, "ipv6.nxt == 4 && icmp.type == 8 && ip.src == "+l.IP.String(), "frame.number")); n < 3 {
		t.Errorf("%d IPv4-in-IPv6 echo requests on the Wi-Fi", n)
	}
	if n := len(fields(t, wp, "ipv6.nxt == 4 && icmp.type == 0 && ip.dst == "+l.IP.String(), "frame.number")); n < 3 {
		t.Errorf("%d IPv4-in-IPv6 echo replies on the Wi-Fi", n)
	}
	// Over the cellular: IPv4 in UDP 4191, both ways.
	if n := len(fields(t, sp, "udp.dstport == 4191 && icmp.type == 8 && ip.src == "+l.IP.String(), "frame.number")); n < 3 {
		t.Errorf("%d IPv4 echo requests in UDP on the cellular link", n)
	}
	if n := len(fields(t, sp, "udp.srcport == 4191 && icmp.type == 0", "frame.number")); n < 3 {
		t.Errorf("%d IPv4 echo replies in UDP on the cellular link", n)
	}
	// tshark reads the IPv4 options of the signalling (RFC 5555 §3): the
	// home address and prefix asked for, and both acknowledged (0).
	if rows := fields(t, sp, "mip6.mhtype == 5", "mip6.ipv4ha.ha", "mip6.ipv4ha.preflen", "mip6.ipv4ha.p_flag"); len(rows) == 0 ||
		rows[0][0] != lab.HoA4.String()+","+lab.MNP4.Addr().String() || rows[0][1] != "32,24" || rows[0][2] != "0,1" {
		t.Errorf("Binding Updates' IPv4 Home Address options: %q", rows)
	}
	if rows := fields(t, sp, "mip6.mhtype == 6 && mip6.ipv4aa.sts", "mip6.ipv4aa.sts", "mip6.ipv4ha.preflen"); len(rows) == 0 || rows[0][0] != "0,0" || rows[0][1] != "32,24" {
		t.Errorf("Binding Acknowledgements' IPv4 Address Acknowledgements: %q", rows)
	}
	if rows := fields(t, wp, "mip6.mhtype == 5 && ipv6.opt.mipv6.home_address", "mip6.ipv4ha.ha"); len(rows) == 0 {
		t.Error("no native Binding Update with IPv4 Home Address options on the Wi-Fi")
	}
	for _, p := range []string{wp, sp, cp} {
		noMalformed(t, p)
	}
}

// TestIPv4DynamicAndMasqueraded: the home agent assigns the router's IPv4
// home address and prefix from its pool; the LAN host's DHCPv4 lease comes
// from that prefix; with masquerade_v4 the correspondent sees the home
// agent's own address.
func TestIPv4DynamicAndMasqueraded(t *testing.T) {
	t.Parallel()
	e := ipv4Env(t, lab.RouterIPv4Dynamic, "\toption masquerade_v4 '1'\n", "", "")
	e.startHA()
	e.startMR()
	e.registered()
	p := e.granted4()
	v := e.mrStatus().IPv4
	if !lab.Pool4.Contains(p.Addr()) || p.Bits() != 24 || !lab.Pool4.Contains(netip.MustParseAddr(v.HomeAddress)) {
		t.Fatalf("assigned %s and %s", v.HomeAddress, p)
	}
	l := e.dhcp4()
	if !p.Contains(l.IP) || l.Router != p.Addr().Next() {
		t.Fatalf("DHCPv4 lease %+v from %s", l, p)
	}
	capCN, err := e.lab.Capture(lab.CN, "eth0", "icmp")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := e.ping4(lab.LAN, lab.CN4.String(), 3); err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	cp, err := capCN.Stop()
	if err != nil {
		t.Fatal(err)
	}
	rows := fields(t, cp, "icmp.type == 8", "ip.src")
	if len(rows) < 3 || rows[0][0] != lab.HA4.String() {
		t.Fatalf("the correspondent sees %q, want the home agent's %s", rows, lab.HA4)
	}
	if s := e.haStatus(); s.PoolV4 == nil || s.PoolV4.Assigned != 1 {
		t.Fatalf("pool: %+v", s.PoolV4)
	}
}

// TestIPv4TCPSurvivesWifiLossTwice: a TCP transfer over IPv4 from the
// DHCP-configured LAN host keeps going while the Wi-Fi is lost and comes
// back twice, as the IPv6 one does.
func TestIPv4TCPSurvivesWifiLossTwice(t *testing.T) {
	t.Parallel()
	e := ipv4Env(t, lab.RouterIPv4Static, "", car1Static, "")
	testenv.NeedTool(t, "iperf3")
	e.startHA()
	e.startMR()
	e.registered()
	e.granted4()
	e.dhcp4()
	if _, err := e.lab.Start(lab.CN, "iperf3-server", "iperf3", "-s", "-1", "-B", lab.CN4.String()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	client := e.lab.Command(context.Background(), lab.LAN, "iperf3", "-4", "-c", lab.CN4.String(), "-t", "8", "-b", "100M", "-J")
	var out strings.Builder
	client.Stdout = &out
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, step := range []struct {
		at   time.Duration
		down bool
	}{{1500 * time.Millisecond, true}, {3 * time.Second, false}, {4500 * time.Millisecond, true}, {6 * time.Second, false}} {
		time.Sleep(time.Until(start.Add(step.at)))
		var err error
		if step.down {
			err = e.lab.CarrierDown("wifi")
		} else {
			err = e.lab.CarrierUp("wifi")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := client.Wait(); err != nil {
		t.Fatalf("iperf3 client: %v\n%s", err, out.String())
	}
	var res struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				Bytes float64 `json:"bytes"`
			} `json:"sum_received"`
		} `json:"end"`
		Intervals []struct {
			Sum struct {
				Bytes float64 `json:"bytes"`
			} `json:"sum"`
		} `json:"intervals"`
	}
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatalf("iperf3 output: %v\n%s", err, out.String())
	}
	if res.Error != "" || res.End.SumReceived.Bytes == 0 {
		t.Fatalf("transfer: error %q, %v bytes", res.Error, res.End.SumReceived.Bytes)
	}
	for i, iv := range res.Intervals {
		if iv.Sum.Bytes == 0 {
			t.Errorf("second %d moved nothing", i)
		}
	}
	t.Logf("%.1f MB over IPv4 in 8 s across two Wi-Fi losses", res.End.SumReceived.Bytes/1e6)
	if s := e.mrStatus(); s.Bindings[0].TxPacketsV4 == 0 || s.Bindings[1].TxPacketsV4 == 0 {
		t.Errorf("IPv4 not carried by both bindings: %+v", s.Bindings)
	}
}

// udpEcho4 answers every datagram on an IPv4 address and counts them.
func (e *env) udpEcho4(role string, addr netip.AddrPort) *udpEcho {
	var c *net.UDPConn
	e.inNS(role, func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
		return err
	})
	s := &udpEcho{conn: c, seen: map[string]int{}}
	e.t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.seen[string(buf[:n])]++
			s.mu.Unlock()
			c.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	return s
}

// udpExchange4 is udpExchange from the LAN host's IPv4 address src.
func (e *env) udpExchange4(src netip.Addr, dst netip.AddrPort, tag string, n int, interval time.Duration) (answered, maxCopies int) {
	e.t.Helper()
	var c *net.UDPConn
	e.inNS(lab.LAN, func() (err error) {
		c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: src.AsSlice()})
		return err
	})
	defer c.Close()
	got := map[string]int{}
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			c.SetReadDeadline(time.Now().Add(time.Second))
			k, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			mu.Lock()
			got[string(buf[:k])]++
			mu.Unlock()
		}
	}()
	for i := 0; i < n; i++ {
		c.WriteToUDPAddrPort([]byte(fmt.Sprintf("%s-%d", tag, i)), dst)
		time.Sleep(interval)
	}
	<-done
	for _, k := range got {
		maxCopies = max(maxCopies, k)
	}
	return len(got), maxCopies
}

// staticLAN4 gives the LAN host an IPv4 address of car1's prefix by hand.
func (e *env) staticLAN4(a netip.Addr) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, args := range [][]string{
		{"ip", "addr", "add", a.String() + "/24", "dev", lab.LANDev},
		{"ip", "route", "replace", "default", "via", lab.MRLAN4.String(), "dev", lab.LANDev},
	} {
		if _, err := e.lab.Run(ctx, lab.LAN, args...); err != nil {
			e.t.Fatal(err)
		}
	}
}

const ipv4Policies = `config policy 'voice'
	list use 'cell'
	list use 'wifi'
config policy 'control'
	list use 'cell'
	list use 'wifi'
	option mode 'duplicate'
config rule 'sip4'
	option dest_ip '203.0.113.16/29'
	option proto 'udp'
	option dest_port '5060'
	option policy 'voice'
config rule 'telemetry4'
	option proto 'udp'
	option dest_port '7000'
	option policy 'control'
`

// TestIPv4FlowsSteer: an IPv4 rule sends its flow over the uplink its
// policy names, both ways (tshark on the access links), the rest goes by
// the Wi-Fi; a duplicated IPv4 flow travels both uplinks and arrives once
// at each end.
func TestIPv4FlowsSteer(t *testing.T) {
	t.Parallel()
	e := ipv4Env(t, lab.RouterIPv4Static, "", car1Static, ipv4Policies)
	e.startHA()
	e.startMR()
	e.registered()
	e.granted4()
	src := netip.MustParseAddr("10.201.5.10")
	e.staticLAN4(src)
	sip := e.udpEcho4(lab.CN, netip.AddrPortFrom(lab.CN4, 5060))
	tele := e.udpEcho4(lab.CN, netip.AddrPortFrom(lab.CN4, 7000))
	other := e.udpEcho4(lab.CN, netip.AddrPortFrom(lab.CN4, 9000))
	wifi, err := e.lab.Capture(lab.Wifi, "eth0", "ip6 proto 4")
	if err != nil {
		t.Fatal(err)
	}
	cell, err := e.lab.Capture(lab.Cell, "eth0", "udp port 4191")
	if err != nil {
		t.Fatal(err)
	}
	if n, copies := e.udpExchange4(src, netip.AddrPortFrom(lab.CN4, 5060), "sip", 20, 10*time.Millisecond); n != 20 || copies != 1 {
		t.Errorf("sip: %d of 20 answered, up to %d copies", n, copies)
	}
	if n, copies := e.udpExchange4(src, netip.AddrPortFrom(lab.CN4, 7000), "tele", 20, 10*time.Millisecond); n != 20 || copies != 1 {
		t.Errorf("duplicated flow: %d of 20 answered, up to %d copies at the LAN host", n, copies)
	}
	if n, _ := e.udpExchange4(src, netip.AddrPortFrom(lab.CN4, 9000), "other", 10, 10*time.Millisecond); n != 10 {
		t.Errorf("other: %d of 10 answered", n)
	}
	if m := tele.maxRepeat(); m != 1 || sip.count("sip-0") != 1 || other.count("other-0") != 1 {
		t.Errorf("correspondent: duplicated flow up to %d copies, sip %d, other %d", m, sip.count("sip-0"), other.count("other-0"))
	}
	wp, err := wifi.Stop()
	if err != nil {
		t.Fatal(err)
	}
	cp, err := cell.Stop()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what, path, filter string
		want               func(int) bool
	}{
		{"sip up on cellular", cp, "udp.dstport == 5060 && ip.src == 10.201.5.10", func(n int) bool { return n >= 20 }},
		{"sip down on cellular", cp, "udp.srcport == 5060 && ip.dst == 10.201.5.10", func(n int) bool { return n >= 20 }},
		{"sip not on Wi-Fi", wp, "udp.port == 5060", func(n int) bool { return n == 0 }},
		{"duplicated up on cellular", cp, "udp.dstport == 7000", func(n int) bool { return n >= 20 }},
		{"duplicated down on cellular", cp, "udp.srcport == 7000", func(n int) bool { return n >= 20 }},
		{"duplicated up on Wi-Fi", wp, "udp.dstport == 7000", func(n int) bool { return n >= 20 }},
		{"duplicated down on Wi-Fi", wp, "udp.srcport == 7000", func(n int) bool { return n >= 20 }},
		{"other up on Wi-Fi", wp, "udp.dstport == 9000", func(n int) bool { return n >= 10 }},
		{"other not on cellular", cp, "udp.port == 9000", func(n int) bool { return n == 0 }},
	} {
		if n := len(fields(t, c.path, c.filter, "frame.number")); !c.want(n) {
			t.Errorf("%s: %d packets (%s)", c.what, n, c.filter)
		}
	}
	noMalformed(t, wp)
	noMalformed(t, cp)
	var mr struct {
		Flows []struct {
			Rule, Selector string
			Packets        uint64
		} `json:"flows"`
		Duplicates uint64 `json:"duplicates_suppressed"`
	}
	if err := e.ctlJSON(e.mrSock, "flows", &mr); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, f := range mr.Flows {
		lines = append(lines, fmt.Sprintf("%s %q packets=%d", f.Rule, f.Selector, f.Packets))
	}
	t.Logf("router's flow table:\n  %s", strings.Join(lines, "\n  "))
	if len(mr.Flows) < 3 || mr.Flows[0].Rule != "sip4" || mr.Flows[0].Selector != "udp daddr 203.0.113.16/29 dport 5060" || mr.Flows[0].Packets < 20 || mr.Duplicates < 20 {
		t.Errorf("router's flows: %+v", mr)
	}
}

// TestIPv4Spoofing: forged IPv4 tunnel packets at the home agent (an
// unregistered outer source; car1's care-of address with an inner source
// outside its prefix) and foreign IPv4 sources on the LAN are dropped and
// counted as IPv4; none reaches the correspondent or leaves an uplink.
func TestIPv4Spoofing(t *testing.T) {
	t.Parallel()
	e := ipv4Env(t, lab.RouterIPv4Static, "", car1Static, "")
	e.startHA()
	e.startMR()
	e.registered()
	e.granted4()
	src := netip.MustParseAddr("10.201.5.10")
	e.staticLAN4(src)
	var caps []*lab.Capture
	for _, role := range []string{lab.CN, lab.Wifi, lab.Cell} {
		c, err := e.lab.Capture(role, "eth0", "icmp or ip6 proto 4 or udp port 4191")
		if err != nil {
			t.Fatal(err)
		}
		caps = append(caps, c)
	}
	haBefore, mrBefore := e.haStatus().DataPlane.DropsV4, e.mrStatus().DataPlane.DropsV4
	// From the correspondent: IPv4-in-IPv6 and IPv4 in UDP, inner source
	// car1's LAN host.
	c := e.udpIn(lab.CN, "udp6")
	e.inNS(lab.CN, func() error {
		raw, err := netio.ListenIP("ip6:4", "", netip.Addr{})
		if err != nil {
			return err
		}
		defer raw.Close()
		for i := 0; i < 5; i++ {
			if _, err := raw.WriteToIP(echo4(src, lab.CN4, 0x4f01), &net.IPAddr{IP: haAddr.AsSlice()}); err != nil {
				return err
			}
			if _, err := c.WriteToUDPAddrPort(echo4(src, lab.CN4, 0x4f02), haUDP); err != nil {
				return err
			}
		}
		return nil
	})
	// From car1's Wi-Fi care-of address: an inner source outside its
	// IPv4.
	e.inNS(lab.MR, func() error {
		raw, err := netio.ListenIP("ip6:4", lab.MRWLANDev, netip.Addr{})
		if err != nil {
			return err
		}
		defer raw.Close()
		for i := 0; i < 5; i++ {
			if _, err := raw.WriteToIP(echo4(netip.MustParseAddr("192.168.99.1"), lab.CN4, 0x4f03), &net.IPAddr{IP: haAddr.AsSlice()}); err != nil {
				return err
			}
		}
		return nil
	})
	// From the LAN: a source of the LAN host's own making.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.lab.Run(ctx, lab.LAN, "ip", "addr", "add", "192.168.77.7/32", "dev", lab.LANDev); err != nil {
		t.Fatal(err)
	}
	e.ping4(lab.LAN, lab.CN4.String(), 5, "-I", "192.168.77.7") // dropped: fails by design
	eventually(t, 3*time.Second, "forged IPv4 counted", func() bool {
		ha, mr := e.haStatus().DataPlane.DropsV4, e.mrStatus().DataPlane.DropsV4
		return ha["bad_outer_source"]-haBefore["bad_outer_source"] >= 10 && ha["bad_inner_source"]-haBefore["bad_inner_source"] >= 5 &&
			mr["foreign_source"]-mrBefore["foreign_source"] >= 5
	})
	if out, err := e.ping4(lab.LAN, lab.CN4.String(), 2, "-I", src.String()); err != nil {
		t.Fatalf("genuine ping: %v\n%s", err, out)
	}
	for i, cp := range caps {
		path, err := cp.Stop()
		if err != nil {
			t.Fatal(err)
		}
		// At the correspondent, a forged packet would arrive as plain IPv4
		// (what it sent itself went out inside IPv6).
		if rows := fields(t, path, "!ipv6 && icmp.type == 8 && icmp.ident >= 0x4f01 && icmp.ident <= 0x4f03", "frame.number", "ip.src"); i == 0 && len(rows) > 0 {
			t.Errorf("a forged packet reached the correspondent: %q", rows)
		}
		if rows := fields(t, path, "ip.addr == 192.168.77.7", "frame.number"); len(rows) > 0 {
			t.Errorf("%s: a foreign LAN source left the router: %d packets", []string{"correspondent", "Wi-Fi", "cellular"}[i], len(rows))
		}
	}
	ha := e.haStatus().DataPlane.DropsV4
	t.Logf("home agent IPv4 drops: bad_outer_source +%d, bad_inner_source +%d; router: foreign_source +%d",
		ha["bad_outer_source"]-haBefore["bad_outer_source"], ha["bad_inner_source"]-haBefore["bad_inner_source"],
		e.mrStatus().DataPlane.DropsV4["foreign_source"]-mrBefore["foreign_source"])
}

// echo4 is an ICMP echo request from src to dst, as a whole IPv4 packet.
func echo4(src, dst netip.Addr, id uint16) []byte {
	icmp := []byte{8, 0, 0, 0, byte(id >> 8), byte(id), 0, 1, 's', 'p', 'o', 'o', 'f'}
	sum := header.Checksum(icmp, 0)
	icmp[2], icmp[3] = byte(sum>>8), byte(sum)
	return append(header.AppendIPv4(nil, src, dst, header.ProtoICMP, 64, len(icmp)), icmp...)
}

// TestIPv4FragmentationNeeded: an IPv4 packet with DF too big for the
// tunnel gets ICMP fragmentation needed with the tunnel's MTU, and a retry
// at that size gets through.
func TestIPv4FragmentationNeeded(t *testing.T) {
	t.Parallel()
	e := ipv4Env(t, lab.RouterIPv4Static, "", car1Static, "")
	e.startHA()
	e.startMR()
	e.registered()
	e.granted4()
	e.staticLAN4(netip.MustParseAddr("10.201.5.10"))
	out, err := e.ping4(lab.LAN, lab.CN4.String(), 1, "-M", "do", "-s", "1472") // 1500 octets on the wire
	if err == nil {
		t.Fatalf("a 1500-octet IPv4 packet went through a tunnel over 1500-octet links:\n%s", out)
	}
	// The tunnel carries the smallest of its bindings' paths: IPv4-in-IPv6
	// (1460) and IPv4 in UDP/IPv4 (1472).
	if !strings.Contains(out, "mtu = 1460") {
		t.Fatalf("no fragmentation needed with the tunnel's MTU:\n%s", out)
	}
	if out, err := e.ping4(lab.LAN, lab.CN4.String(), 2, "-M", "do", "-s", strconv.Itoa(1460-28)); err != nil {
		t.Fatalf("retry at 1460 octets: %v\n%s", err, out)
	}
}

// TestIPv4Direct: an IPv4 rule with policy direct leaves by the Wi-Fi
// uplink untunnelled, masqueraded to its address, both ways; the rest of
// the IPv4 still goes through the home agent.
func TestIPv4Direct(t *testing.T) {
	t.Parallel()
	e := ipv4Env(t, lab.RouterIPv4Static, "", car1Static,
		"config rule 'road4'\n\toption dest_ip '203.0.113.18'\n\toption proto 'udp'\n\toption dest_port '5353'\n\toption policy 'direct'\n")
	e.startHA()
	e.startMR()
	e.registered()
	e.granted4()
	src := netip.MustParseAddr("10.201.5.10")
	e.staticLAN4(src)
	road := e.udpEcho4(lab.CN, netip.AddrPortFrom(lab.CN4, 5353))
	e.udpEcho4(lab.CN, netip.AddrPortFrom(lab.CN4, 9000))
	wifi, err := e.lab.Capture(lab.Wifi, "eth0", "")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := e.udpExchange4(src, netip.AddrPortFrom(lab.CN4, 5353), "road", 10, 10*time.Millisecond); n != 10 || road.count("road-0") != 1 {
		t.Errorf("direct: %d of 10 answered", n)
	}
	if n, _ := e.udpExchange4(src, netip.AddrPortFrom(lab.CN4, 9000), "tun", 10, 10*time.Millisecond); n != 10 {
		t.Errorf("tunnelled: %d of 10 answered", n)
	}
	wp, err := wifi.Stop()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what, filter string
		want         func(int) bool
	}{
		{"direct up, plain, from the Wi-Fi address", "!ipv6 && udp.dstport == 5353 && ip.src == " + lab.MRWLAN4.String(), func(n int) bool { return n == 10 }},
		{"direct down, plain, to the Wi-Fi address", "!ipv6 && udp.srcport == 5353 && ip.dst == " + lab.MRWLAN4.String(), func(n int) bool { return n == 10 }},
		{"direct never tunnelled", "ipv6.nxt == 4 && udp.port == 5353", func(n int) bool { return n == 0 }},
		{"the LAN address never on the link", "!ipv6 && ip.addr == 10.201.5.10", func(n int) bool { return n == 0 }},
		{"the rest tunnelled", "ipv6.nxt == 4 && udp.dstport == 9000", func(n int) bool { return n == 10 }},
	} {
		if n := len(fields(t, wp, c.filter, "frame.number")); !c.want(n) {
			t.Errorf("%s: %d packets (%s)", c.what, n, c.filter)
		}
	}
}
