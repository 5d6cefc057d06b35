package e2e

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"nemod/internal/forge"
	"nemod/lab"
	"nemod/nemo"
)

// udpIn opens a UDP socket inside a role's namespace, for packets the
// daemons did not write.
func (e *env) udpIn(role, network string) *net.UDPConn {
	e.t.Helper()
	var c *net.UDPConn
	e.inNS(role, func() (err error) {
		c, err = net.ListenUDP(network, nil)
		return err
	})
	e.t.Cleanup(func() { c.Close() })
	return c
}

// forgery is a Binding Update built by the test, as an attacker or a
// misconfigured router would send it, inside UDP (RFC 5555).
type forgery forge.BU

func (f forgery) packet(t *testing.T) []byte {
	t.Helper()
	p, err := forge.BU(f).Packet(haAddr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	haAddr   = netip.MustParseAddr("2001:db8:ffff::1")
	haUDP    = netip.AddrPortFrom(haAddr, nemo.UDPPort)
	car2HoA  = netip.MustParseAddr("2001:db8:ffff:1::200")
	car2Key  = []byte{0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00}
	car2MNP  = netip.MustParsePrefix("2001:db8:200::/56")
	car1MNP  = netip.MustParsePrefix("2001:db8:100::/56")
	cnAddr   = netip.MustParseAddr("2001:db8:c::1")
	wrongKey = []byte("not the real key")
)

// exchange sends pkt to the home agent and returns the status of the
// Binding Acknowledgement, or -1 if none came within a second.
func exchange(t *testing.T, c *net.UDPConn, pkt []byte) int {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(pkt, haUDP); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(time.Second))
	n, _, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		return -1
	}
	st, err := forge.AckStatus(buf[:n])
	if err != nil {
		t.Fatalf("answer: %v", err)
	}
	return st
}

// Wrong key, replayed BU, unknown home address, a prefix the router may not
// claim: each rejected with its RFC status code and counted; a flood of
// forgeries is rate limited; the good router is unaffected throughout.
func TestHomeAgentRejects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startHA()
	e.startMR()
	eventually(t, 5*time.Second, "car1 registered", func() bool {
		return e.mrStates() == e.want
	})
	before := e.haBindings()
	c := e.udpIn("cn", "udp6")
	now := time.Now()
	good := forgery{HoA: car2HoA, CoA: cnAddr, SPI: 257, Key: car2Key, MNPs: []netip.Prefix{car2MNP}, Seq: 10, TS: now}

	cases := []struct {
		name    string
		f       func(f *forgery)
		status  int
		counter string
	}{
		{"wrong key", func(f *forgery) { f.Key = wrongKey }, int(nemo.StatusAuthFailed), "auth_failed"},
		{"wrong SPI", func(f *forgery) { f.SPI = 999 }, int(nemo.StatusAuthFailed), "auth_failed"},
		{"unknown home address", func(f *forgery) { f.HoA = netip.MustParseAddr("2001:db8:ffff:1::999") }, int(nemo.StatusNotHomeAgent), "unknown_home_address"},
		{"not the home subnet", func(f *forgery) { f.HoA = netip.MustParseAddr("2001:db8:eeee::1") }, int(nemo.StatusNotHomeSubnet), "unknown_home_address"},
		{"another router's prefix", func(f *forgery) { f.MNPs = []netip.Prefix{car1MNP} }, int(nemo.StatusNotAuthorizedPrefix), "prefix_rejected"},
		{"stale timestamp", func(f *forgery) { f.TS = now.Add(-time.Minute) }, int(nemo.StatusIDMismatch), "bad_timestamp"},
	}
	for i, tc := range cases {
		f := good
		f.Seq = uint16(100 + i)
		f.TS = now.Add(time.Duration(i) * time.Millisecond)
		tc.f(&f)
		was := e.haStatus().Counters.Rejected[tc.counter]
		if got := exchange(t, c, f.packet(t)); got != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.status)
		}
		if now := e.haStatus().Counters.Rejected[tc.counter]; now != was+1 {
			t.Errorf("%s: counter %s went from %d to %d", tc.name, tc.counter, was, now)
		}
	}
	// Replay: a genuine Binding Update, accepted once, then sent again.
	f := good
	f.Seq, f.TS = 500, time.Now()
	pkt := f.packet(t)
	if got := exchange(t, c, pkt); got != 0 {
		t.Fatalf("genuine BU for car2: status %d", got)
	}
	was := e.haStatus().Counters.Rejected["bad_timestamp"]
	if got := exchange(t, c, pkt); got != int(nemo.StatusIDMismatch) {
		t.Errorf("replayed BU: status %d, want 144", got)
	}
	if e.haStatus().Counters.Rejected["bad_timestamp"] != was+1 {
		t.Error("replay not counted")
	}

	// A flood of forgeries, 1000 a second for a second: every one is
	// counted, and the answers are rate limited.
	f = good
	f.Key = wrongKey
	flood := f.packet(t)
	authBefore := e.haStatus().Counters.Rejected["auth_failed"]
	pace := time.NewTicker(time.Millisecond)
	for i := 0; i < 1000; i++ {
		<-pace.C
		c.WriteToUDPAddrPort(flood, haUDP)
	}
	pace.Stop()
	eventually(t, 5*time.Second, "flood counted", func() bool {
		return e.haStatus().Counters.Rejected["auth_failed"] == authBefore+1000
	})
	if e.haStatus().Counters.RateLimited == 0 {
		t.Error("no answer was rate limited")
	}

	// The good router never noticed.
	if after := e.haBindings(); len(after) != 2 || after[1] != before[1] || after[2] != before[2] {
		t.Errorf("car1's bindings changed: %v -> %v", before, after)
	}
	if got := e.mrStates(); got != e.want {
		t.Errorf("router: %s", got)
	}
	// The table a person reads says the same.
	var table string
	if err := e.runCtl(lab.HA, e.haSock, &table, "status"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"car1", "2001:db8:100::/56", "udp4 (NAT)", "192.0.2.2:", "car2", "auth_failed="} {
		if !strings.Contains(table, want) {
			t.Errorf("status table lacks %q:\n%s", want, table)
		}
	}
}
