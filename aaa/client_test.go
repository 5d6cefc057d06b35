package aaa

import (
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// dropServer is a RADIUS server that never answers: a UDP socket on
// loopback that reads and counts what it gets.
type dropServer struct {
	conn *net.UDPConn
	got  atomic.Int64
}

func newDropServer(t *testing.T, addr string) *dropServer {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	d := &dropServer{conn: conn}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			if _, _, err := conn.ReadFrom(buf); err != nil {
				return
			}
			d.got.Add(1)
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return d
}

func (d *dropServer) addr() netip.AddrPort { return d.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func newTestClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	if cfg.Secret == nil {
		cfg.Secret = testSecret
	}
	if cfg.NAS == (NAS{}) {
		cfg.NAS = testNAS
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func waitResult(t *testing.T, c *Client, within time.Duration) Result {
	t.Helper()
	select {
	case r := <-c.Results():
		return r
	case <-time.After(within):
		t.Fatal("no result")
	}
	return Result{}
}

// TestClientQueueFull: past MaxPending, Submit refuses at once, without
// waiting for room; accounting has a budget of its own; once results are
// handed over, there is room again.
func TestClientQueueFull(t *testing.T) {
	drop := newDropServer(t, "127.0.0.1:0")
	c := newTestClient(t, Config{Servers: []netip.AddrPort{drop.addr()}, Timeout: 100 * time.Millisecond, MaxPending: 2, MaxPendingAccounting: 1})
	for _, n := range []string{"a@x", "b@x"} {
		if err := c.Submit(AccessRequest{NAI: n}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Submit(AccessRequest{NAI: "c@x"}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third Submit: %v", err)
	}
	if err := c.Account(AccountingRecord{Status: AcctStart, SessionID: "s", NAI: "a@x"}); err != nil {
		t.Fatalf("Account with access full: %v", err)
	}
	if err := c.Account(AccountingRecord{Status: AcctStart, SessionID: "s2", NAI: "a@x"}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("second Account: %v", err)
	}
	if err := c.Submit(AccessRequest{NAI: "bad nai"}); err == nil || errors.Is(err, ErrQueueFull) {
		t.Fatalf("bad NAI: %v", err)
	}
	if s := c.Stats(); s.Refused != 2 {
		t.Errorf("refused %d", s.Refused)
	}
	kinds := map[Kind]int{}
	for range 3 {
		r := waitResult(t, c, 5*time.Second)
		if !errors.Is(r.Err, ErrTimeout) {
			t.Errorf("result %+v", r)
		}
		kinds[r.Kind]++
	}
	if kinds[KindAccess] != 2 || kinds[KindAccounting] != 1 {
		t.Errorf("results %v", kinds)
	}
	if err := c.Submit(AccessRequest{NAI: "c@x"}); err != nil {
		t.Errorf("Submit once results were handed over: %v", err)
	}
	if got := drop.got.Load(); got < 2 {
		t.Errorf("the server got %d datagrams", got)
	}
}

// TestClientFailoverDrop: with two servers that never answer, one on IPv6
// and one on IPv4, a request goes to each with its retries, then ends in
// ErrTimeout; both are then dead, and the next request still tries them.
func TestClientFailoverDrop(t *testing.T) {
	a := newDropServer(t, "[::1]:0")
	b := newDropServer(t, "127.0.0.1:0")
	c := newTestClient(t, Config{Servers: []netip.AddrPort{a.addr(), b.addr()}, Timeout: 50 * time.Millisecond, Retries: 1, DeadTime: time.Hour})
	if err := c.Submit(AccessRequest{NAI: "car9@fleet.example"}); err != nil {
		t.Fatal(err)
	}
	r := waitResult(t, c, 5*time.Second)
	if !errors.Is(r.Err, ErrTimeout) || r.Server != b.addr() || r.NAI != "car9@fleet.example" {
		t.Fatalf("result %+v", r)
	}
	if a.got.Load() != 2 || b.got.Load() != 2 {
		t.Errorf("datagrams: A %d, B %d; want 2 each (one retry)", a.got.Load(), b.got.Load())
	}
	s := c.Stats()
	if len(s.Servers) != 4 || !s.Servers[0].Dead || !s.Servers[1].Dead || s.Servers[0].Timeouts != 1 || s.Servers[0].Retransmissions != 1 {
		t.Errorf("stats %+v", s)
	}
	if err := c.Submit(AccessRequest{NAI: "car9@fleet.example"}); err != nil {
		t.Fatal(err)
	}
	if r := waitResult(t, c, 5*time.Second); !errors.Is(r.Err, ErrTimeout) || a.got.Load() != 4 {
		t.Errorf("with every server dead: %+v, A got %d", r, a.got.Load())
	}
}

// TestClientClose: requests out when the client closes end with
// ErrClosed, the results channel is closed, and Submit refuses.
func TestClientClose(t *testing.T) {
	drop := newDropServer(t, "127.0.0.1:0")
	c, err := NewClient(Config{Servers: []netip.AddrPort{drop.addr()}, Secret: testSecret, NAS: testNAS, Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := c.Submit(AccessRequest{NAI: "a@x"}); err != nil {
			t.Fatal(err)
		}
	}
	for drop.got.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	c.Close()
	n := 0
	for r := range c.Results() {
		if !errors.Is(r.Err, ErrClosed) {
			t.Errorf("result %+v", r)
		}
		n++
	}
	if n != 3 {
		t.Errorf("%d results", n)
	}
	if err := c.Submit(AccessRequest{NAI: "a@x"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit after Close: %v", err)
	}
	c.Close()
}

func TestNewClientChecks(t *testing.T) {
	ok := netip.MustParseAddrPort("127.0.0.1:1812")
	for name, cfg := range map[string]Config{
		"no servers":     {Secret: testSecret, NAS: testNAS},
		"no secret":      {Servers: []netip.AddrPort{ok}, NAS: testNAS},
		"no NAS":         {Servers: []netip.AddrPort{ok}, Secret: testSecret},
		"unspecified":    {Servers: []netip.AddrPort{netip.MustParseAddrPort("[::]:1812")}, Secret: testSecret, NAS: testNAS},
		"port 0":         {Servers: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}, Secret: testSecret, NAS: testNAS},
		"no acct port":   {Servers: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:65535")}, Secret: testSecret, NAS: testNAS},
		"17 servers":     {Servers: make([]netip.AddrPort, 17), Secret: testSecret, NAS: testNAS},
		"NAS-IP is IPv6": {Servers: []netip.AddrPort{ok}, Secret: testSecret, NAS: NAS{IPv4: netip.MustParseAddr("::1")}},
	} {
		if c, err := NewClient(cfg); err == nil {
			c.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}
