package pdio

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"nemod/dhcpv6pd"
)

// haTunnel stands for the tunnel and the home agent: packets the router
// sends reach a delegating router; its answers come back as packets.
type haTunnel struct {
	t      *testing.T
	srv    *dhcpv6pd.Server
	runner *ClientRunner
	mu     sync.Mutex
	sent   int
}

func (h *haTunnel) Send(pkt []byte) error {
	src, dst, payload, err := dhcpv6pd.ParseIPv6UDP(pkt)
	if err != nil || src != netip.MustParseAddrPort("[2001:db8:1::10]:547") || dst != netip.MustParseAddrPort("[2001:db8:1::1]:547") {
		h.t.Errorf("packet %v -> %v: %v", src, dst, err)
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sent++
	out, err := h.srv.Handle(payload, src, time.Now())
	if err != nil {
		h.t.Error(err)
	}
	for _, d := range out.Send {
		go h.runner.Deliver(dhcpv6pd.IPv6UDP(dst, d.To, 64, d.Data))
	}
	return nil
}

func TestClientRunnerThroughTunnel(t *testing.T) {
	hoa, ha := netip.MustParseAddr("2001:db8:1::10"), netip.MustParseAddr("2001:db8:1::1")
	srv, err := dhcpv6pd.NewServer(dhcpv6pd.ServerConfig{DUID: dhcpv6pd.NewDUIDUUID([16]byte{0: 1}),
		Pools: []dhcpv6pd.Pool{{Prefix: netip.MustParsePrefix("2001:db8:200::/40"), Length: 56}}, Routers: map[netip.Addr]string{hoa: ""}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pd-lease.json")
	start := func() (*ClientRunner, *haTunnel, chan []dhcpv6pd.Event, func()) {
		tun := &haTunnel{t: t, srv: srv}
		evs := make(chan []dhcpv6pd.Event, 16)
		r, err := NewClientRunner(dhcpv6pd.ClientConfig{HoA: hoa, Server: netip.AddrPortFrom(ha, 547), PrefixLen: 56, RapidCommit: true},
			ClientOptions{Tunnel: tun, Store: &FileStore{Path: path}, OnEvents: func(e []dhcpv6pd.Event) { evs <- e }, Rand: rand.New(rand.NewPCG(1, 1))})
		if err != nil {
			t.Fatal(err)
		}
		tun.runner = r
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		return r, tun, evs, func() { cancel(); <-done }
	}
	next := func(evs chan []dhcpv6pd.Event) dhcpv6pd.Event {
		t.Helper()
		select {
		case e := <-evs:
			return e[0]
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
		}
		return dhcpv6pd.Event{}
	}
	r, _, evs, stop := start()
	ev := next(evs)
	if ev.Kind != dhcpv6pd.Delegated || ev.Router != hoa || ev.Prefix.Bits() != 56 {
		t.Fatalf("event %+v", ev)
	}
	if c := r.Counters(); c.Delivered != 1 || c.Dropped != 0 {
		t.Fatalf("counters %+v", c)
	}
	// Not for the client: ignored and counted.
	if r.Deliver(dhcpv6pd.IPv6UDP(netip.AddrPortFrom(ha, 547), netip.AddrPortFrom(hoa, 546), 64, []byte{1})) || r.Counters().NotForUs != 1 {
		t.Fatal("took a packet to port 546")
	}
	stop()
	b, _ := os.ReadFile(path)
	lease, err := dhcpv6pd.DecodeLease(b)
	if err != nil || len(lease.Prefixes) != 1 || lease.Prefixes[0].Prefix != ev.Prefix {
		t.Fatalf("lease file %+v %v", lease, err)
	}
	// Restarted from the file: the same DUID Rebinds the same prefix; the
	// stored prefix is announced at once.
	r2, tun2, evs2, stop2 := start()
	defer stop2()
	if e := next(evs2); e.Prefix != ev.Prefix {
		t.Fatalf("after restart %+v", e)
	}
	if e := next(evs2); e.Kind != dhcpv6pd.Delegated || e.Prefix != ev.Prefix {
		t.Fatalf("after rebind %+v", e)
	}
	if srv.Renewals != 1 || len(srv.Leases(hoa)) != 1 {
		t.Fatalf("server renewals %d", srv.Renewals)
	}
	r2.Release(context.Background())
	if e := next(evs2); e.Kind != dhcpv6pd.Released || e.Prefix != ev.Prefix {
		t.Fatalf("release %+v", e)
	}
	tun2.mu.Lock()
	defer tun2.mu.Unlock()
	if tun2.sent != 2 || len(srv.Leases(hoa)) != 0 {
		t.Fatalf("sent %d, server leases %v", tun2.sent, srv.Leases(hoa))
	}
}
