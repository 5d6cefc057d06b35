package e2e

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"nemod/lab"
)

// The policies of the README's example, plus a duplicated
// flow on UDP port 7000 and a TCP "video" service on port 8080.
const examplePolicies = `config policy 'voice'
	list use 'cell'
	list use 'wifi'
config policy 'wifi_first'
	list use 'wifi'
	list use 'cell'
config policy 'control'
	list use 'cell'
	list use 'wifi'
	option mode 'duplicate'
config rule 'sip'
	option proto 'udp'
	option dest_port '5060-5061'
	option policy 'voice'
config rule 'telemetry'
	option proto 'udp'
	option dest_port '7000'
	option policy 'control'
config rule 'video'
	option dest_ip '2001:db8:c::/48'
	option proto 'tcp'
	option policy 'wifi_first'
config rule 'roadside'
	option dest_ip '2001:db8:5::/48'
	option policy 'direct'
`

var (
	cnAddr6  = netip.MustParseAddr("2001:db8:c::1")
	roadside = netip.MustParseAddr("2001:db8:5::1")
	lanHost  = netip.MustParseAddr("2001:db8:100::10")
)

// udpEcho is a UDP echo server the test runs in a namespace: it answers
// every datagram and counts them by content.
type udpEcho struct {
	conn *net.UDPConn
	mu   sync.Mutex
	seen map[string]int
}

func (e *env) udpEcho(role string, addr netip.AddrPort) *udpEcho {
	var c *net.UDPConn
	e.inNS(role, func() (err error) {
		c, err = net.ListenUDP("udp6", net.UDPAddrFromAddrPort(addr))
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

func (s *udpEcho) count(payload string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[payload]
}

func (s *udpEcho) maxRepeat() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := 0
	for _, n := range s.seen {
		m = max(m, n)
	}
	return m
}

// udpExchange sends n numbered datagrams from the LAN host to dst, one
// every interval, and returns how many distinct answers came back and the
// most copies of one answer.
func (e *env) udpExchange(dst netip.AddrPort, tag string, n int, interval time.Duration) (answered, maxCopies int) {
	e.t.Helper()
	var c *net.UDPConn
	e.inNS(lab.LAN, func() (err error) {
		c, err = net.ListenUDP("udp6", &net.UDPAddr{IP: lanHost.AsSlice()})
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

// tcpEcho listens in a namespace and echoes.
func (e *env) tcpEcho(role string, addr netip.AddrPort) {
	var l net.Listener
	e.inNS(role, func() (err error) {
		l, err = net.Listen("tcp6", addr.String())
		return err
	})
	e.t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 65536)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
}

// tcpExchange sends size octets to dst from the LAN host and reads them
// back.
func (e *env) tcpExchange(dst netip.AddrPort, size int) error {
	var d net.Dialer
	var c net.Conn
	var err error
	e.inNS(lab.LAN, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err = d.DialContext(ctx, "tcp6", dst.String())
		return nil
	})
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var got atomic.Int64
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 65536)
		for got.Load() < int64(size) {
			n, err := c.Read(buf)
			if err != nil {
				done <- err
				return
			}
			got.Add(int64(n))
		}
		done <- nil
	}()
	if _, err := c.Write(make([]byte, size)); err != nil {
		return err
	}
	return <-done
}

// linkCount counts, in a capture on an access link, the tunnelled packets
// tshark finds matching filter.
func linkCount(t *testing.T, path, filter string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := lab.PcapFields(ctx, path, filter, "frame.number")
	if err != nil {
		t.Fatal(err)
	}
	return len(rows)
}

// flowEnv is a lab with the example policies registered.
func flowEnv(t *testing.T) *env {
	e := newEnv(t)
	// The checks tell the Wi-Fi's tunnel by next header 41.
	e.nativeWifi(examplePolicies)
	e.startHA()
	e.startMR()
	e.registered()
	return e
}

// Each policy kind carries its traffic on the uplink it names, in both
// directions (tshark on the access links): voice on the cellular uplink,
// video on the Wi-Fi, the duplicated flow on both (and delivered once at
// each end), roadside traffic straight out of the Wi-Fi uplink without a
// tunnel, masqueraded to its care-of address.
func TestFlowsSteerBothWays(t *testing.T) {
	t.Parallel()
	e := flowEnv(t)
	sip := e.udpEcho(lab.CN, netip.AddrPortFrom(cnAddr6, 5060))
	tele := e.udpEcho(lab.CN, netip.AddrPortFrom(cnAddr6, 7000))
	rs := e.udpEcho(lab.CN, netip.AddrPortFrom(roadside, 5353))
	e.tcpEcho(lab.CN, netip.AddrPortFrom(cnAddr6, 8080))
	wifi, err := e.lab.Capture(lab.Wifi, "eth0", "")
	if err != nil {
		t.Fatal(err)
	}
	cell, err := e.lab.Capture(lab.Cell, "eth0", "udp port 4191")
	if err != nil {
		t.Fatal(err)
	}

	if n, copies := e.udpExchange(netip.AddrPortFrom(cnAddr6, 5060), "sip", 20, 10*time.Millisecond); n != 20 || copies != 1 {
		t.Errorf("sip: %d of 20 answered, up to %d copies", n, copies)
	}
	if n, copies := e.udpExchange(netip.AddrPortFrom(cnAddr6, 7000), "tele", 20, 10*time.Millisecond); n != 20 || copies != 1 {
		t.Errorf("duplicated flow: %d of 20 answered, up to %d copies at the LAN host", n, copies)
	}
	if m := tele.maxRepeat(); m != 1 {
		t.Errorf("duplicated flow: the correspondent got a datagram %d times", m)
	}
	if err := e.tcpExchange(netip.AddrPortFrom(cnAddr6, 8080), 200000); err != nil {
		t.Errorf("video: %v", err)
	}
	if n, _ := e.udpExchange(netip.AddrPortFrom(roadside, 5353), "road", 10, 10*time.Millisecond); n != 10 {
		t.Errorf("roadside: %d of 10 answered", n)
	}
	if sip.count("sip-0") != 1 || rs.count("road-0") != 1 {
		t.Errorf("servers: sip %d, roadside %d", sip.count("sip-0"), rs.count("road-0"))
	}
	wp, err := wifi.Stop()
	if err != nil {
		t.Fatal(err)
	}
	cp, err := cell.Stop()
	if err != nil {
		t.Fatal(err)
	}
	// Tunnelled on the Wi-Fi link: outer IPv6 with next header 41.
	tunWifi := "ipv6.nxt == 41 && "
	tunCell := "udp.port == 4191 && "
	checks := []struct {
		what   string
		path   string
		filter string
		want   func(n int) bool
	}{
		{"sip up on cellular", cp, tunCell + "udp.dstport == 5060", func(n int) bool { return n >= 20 }},
		{"sip down on cellular", cp, tunCell + "udp.srcport == 5060", func(n int) bool { return n >= 20 }},
		{"sip not on Wi-Fi", wp, tunWifi + "udp.port == 5060", func(n int) bool { return n == 0 }},
		{"duplicated flow up on cellular", cp, tunCell + "udp.dstport == 7000", func(n int) bool { return n >= 20 }},
		{"duplicated flow down on cellular", cp, tunCell + "udp.srcport == 7000", func(n int) bool { return n >= 20 }},
		{"duplicated flow up on Wi-Fi", wp, tunWifi + "udp.dstport == 7000", func(n int) bool { return n >= 20 }},
		{"duplicated flow down on Wi-Fi", wp, tunWifi + "udp.srcport == 7000", func(n int) bool { return n >= 20 }},
		{"video up on Wi-Fi", wp, tunWifi + "tcp.dstport == 8080", func(n int) bool { return n > 0 }},
		{"video down on Wi-Fi", wp, tunWifi + "tcp.srcport == 8080", func(n int) bool { return n > 0 }},
		{"video not on cellular", cp, tunCell + "tcp.port == 8080", func(n int) bool { return n == 0 }},
		{"roadside not tunnelled", wp, tunWifi + "udp.port == 5353", func(n int) bool { return n == 0 }},
		{"roadside not on cellular", cp, "udp.port == 5353", func(n int) bool { return n == 0 }},
		{"roadside up, plain, from the care-of address", wp, "ipv6.nxt == 17 && udp.dstport == 5353 && ipv6.src == " + e.wifiCoA(), func(n int) bool { return n == 10 }},
		{"roadside down, plain, to the care-of address", wp, "ipv6.nxt == 17 && udp.srcport == 5353 && ipv6.dst == " + e.wifiCoA(), func(n int) bool { return n == 10 }},
	}
	for _, c := range checks {
		if n := linkCount(t, c.path, c.filter); !c.want(n) {
			t.Errorf("%s: %d packets (%s)", c.what, n, c.filter)
		}
	}
	// Both ends show the table, and the counters moved.
	var mr struct {
		Flows []struct {
			Rule    string   `json:"rule"`
			FID     uint16   `json:"fid"`
			Mode    string   `json:"mode"`
			BIDs    []uint16 `json:"bids"`
			Active  bool     `json:"active"`
			Packets uint64   `json:"packets"`
		} `json:"flows"`
	}
	if err := e.ctlJSON(e.mrSock, "flows", &mr); err != nil {
		t.Fatal(err)
	}
	var ha struct {
		MobileRouters []struct {
			Name  string `json:"name"`
			Flows []struct {
				Rule    string `json:"rule"`
				FID     uint16 `json:"fid"`
				Packets uint64 `json:"packets"`
			} `json:"flows"`
		} `json:"mobile_routers"`
	}
	if err := e.ctlJSON(e.haSock, "flows", &ha); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, f := range mr.Flows {
		lines = append(lines, fmt.Sprintf("%s fid=%d %s %v active=%v packets=%d", f.Rule, f.FID, f.Mode, f.BIDs, f.Active, f.Packets))
	}
	t.Logf("router's flow table:\n  %s", strings.Join(lines, "\n  "))
	if len(mr.Flows) != 6 || mr.Flows[0].Rule != "sip" || mr.Flows[0].BIDs[0] != 2 || mr.Flows[0].Packets < 20 || mr.Flows[5].Mode != "direct" {
		t.Errorf("router flows: %+v", mr.Flows)
	}
	if len(ha.MobileRouters) == 0 || ha.MobileRouters[0].Name != "car1" || len(ha.MobileRouters[0].Flows) != 5 || ha.MobileRouters[0].Flows[0].Packets < 20 {
		t.Errorf("home agent flows: %+v", ha.MobileRouters)
	}
}

// wifiCoA is the router's Wi-Fi care-of address.
func (e *env) wifiCoA() string {
	a, err := e.lab.Addr(lab.MR, lab.MRWLANDev, 6)
	if err != nil {
		e.t.Fatal(err)
	}
	return a.String()
}

// ctlJSON runs a control command and decodes its answer.
func (e *env) ctlJSON(sock, cmd string, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return controlDo(ctx, sock, cmd, out)
}

// The voice flow's failover chain: cellular first, Wi-Fi next. When the
// cellular uplink goes, the flow is on the Wi-Fi at once, both ways (the
// home agent moves it when BID 2 is de-registered, with no flow message);
// when it comes back, the flow returns to it.
func TestFailoverChainMoves(t *testing.T) {
	t.Parallel()
	e := flowEnv(t)
	e.udpEcho(lab.CN, netip.AddrPortFrom(cnAddr6, 5060))
	if err := e.lab.CarrierDown("cell"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "cellular binding gone", func() bool { return len(e.haBindings()) == 1 })
	wifi, err := e.lab.Capture(lab.Wifi, "eth0", "ip6 proto 41")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := e.udpExchange(netip.AddrPortFrom(cnAddr6, 5060), "sip", 10, 10*time.Millisecond); n != 10 {
		t.Errorf("sip without the cellular uplink: %d of 10 answered", n)
	}
	wp, err := wifi.Stop()
	if err != nil {
		t.Fatal(err)
	}
	up := linkCount(t, wp, "udp.dstport == 5060")
	down := linkCount(t, wp, "udp.srcport == 5060")
	if up < 10 || down < 10 {
		t.Errorf("sip on the Wi-Fi after the cellular loss: %d up, %d down", up, down)
	}
	if err := e.lab.CarrierUp("cell"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "cellular back", func() bool { return len(e.haBindings()) == 2 })
	cell, err := e.lab.Capture(lab.Cell, "eth0", "udp port 4191")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := e.udpExchange(netip.AddrPortFrom(cnAddr6, 5060), "sip2", 10, 10*time.Millisecond); n != 10 {
		t.Errorf("sip after the cellular came back: %d of 10 answered", n)
	}
	cp, err := cell.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if up, down := linkCount(t, cp, "udp.dstport == 5060"), linkCount(t, cp, "udp.srcport == 5060"); up < 10 || down < 10 {
		t.Errorf("sip back on the cellular: %d up, %d down", up, down)
	}
}

// A policy change by `nemod ctl reload` takes effect without dropping a
// registration: voice moves from the cellular uplink to the Wi-Fi.
func TestReloadChangesPolicy(t *testing.T) {
	t.Parallel()
	e := flowEnv(t)
	e.udpEcho(lab.CN, netip.AddrPortFrom(cnAddr6, 5060))
	before := e.haSince()
	changed := strings.Replace(examplePolicies, "option policy 'voice'", "option policy 'wifi_first'", 1)
	if err := os.WriteFile(filepath.Join(e.lab.Dir(), "mr.uci"), []byte(e.routerUCI(changed)), 0o600); err != nil {
		t.Fatal(err)
	}
	var out string
	if err := e.runCtl(lab.MR, e.mrSock, &out, "reload"); err != nil {
		t.Fatalf("reload: %v %s", err, out)
	}
	// The new table is registered by a refresh: wait for the home agent to
	// have it.
	eventually(t, 3*time.Second, "new table at the home agent", func() bool {
		var ha struct {
			MobileRouters []struct {
				Flows []struct {
					Rule string   `json:"rule"`
					BIDs []uint16 `json:"bids"`
				} `json:"flows"`
			} `json:"mobile_routers"`
		}
		e.ctlJSON(e.haSock, "flows", &ha)
		// Rule names stay on the router: the first entry by FID-PRI is
		// sip's, now on BID 1.
		f := ha.MobileRouters[0].Flows
		return len(f) > 0 && len(f[0].BIDs) > 0 && f[0].BIDs[0] == 1
	})
	wifi, err := e.lab.Capture(lab.Wifi, "eth0", "ip6 proto 41")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := e.udpExchange(netip.AddrPortFrom(cnAddr6, 5060), "sip", 10, 10*time.Millisecond); n != 10 {
		t.Errorf("sip after the reload: %d of 10 answered", n)
	}
	wp, err := wifi.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if up, down := linkCount(t, wp, "udp.dstport == 5060"), linkCount(t, wp, "udp.srcport == 5060"); up < 10 || down < 10 {
		t.Errorf("sip on the Wi-Fi after the reload: %d up, %d down", up, down)
	}
	if after := e.haSince(); after != before {
		t.Errorf("registrations changed: %v -> %v", before, after)
	}
}

// haSince returns when each of car1's bindings was registered at the home
// agent: a reload that dropped a registration would change it.
func (e *env) haSince() string {
	var since []string
	for _, b := range e.haStatus().MobileRouters[0].Bindings {
		since = append(since, fmt.Sprint(b.BID, " ", b.Since))
	}
	return fmt.Sprint(since)
}
