package homeagent_test

import (
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"nemod/dhcpv6pd"
	"nemod/dhcpv6pd/pdio"
	"nemod/internal/twoends"
	"nemod/lab"
	"nemod/status"
)

// The home agent as delegating router (RFC 6276) for a real router daemon
// (package twoends): its built-in pool, its leases across its restart,
// reloads that take option pd away or move a router to another pool, and
// the relay to an external server, whose Replies it learns the
// delegations from.

func pdEnds(t *testing.T, server netip.Addr, haExtra, pools string) (*twoends.Ends, string) {
	e := twoends.New(t, "")
	leases := filepath.Join(e.Dir, "pd-leases.json")
	e.WriteRouterConfig(lab.RouterUCIPD(e.MRSock, filepath.Join(e.Dir, "pd-lease.json"), ""))
	e.WriteHomeAgentConfig(lab.HomeAgentUCIPD(e.HASock, leases, server, haExtra) + pools)
	return e, leases
}

func car1(e *twoends.Ends) status.MobileRouter {
	for _, r := range e.HAStatus().MobileRouters {
		if r.Name == "car1" {
			return r
		}
	}
	return status.MobileRouter{}
}

// leased waits for car1's entry to forward one delegated prefix, which
// its leases list too, and returns it.
func leased(t *testing.T, e *twoends.Ends) netip.Prefix {
	t.Helper()
	var q netip.Prefix
	e.Eventually(10*time.Second, "car1's delegated prefix at the home agent", func() bool {
		c := car1(e)
		if len(c.MNP) != 1 || len(c.Leases) != 1 || c.Leases[0].Prefix != c.MNP[0] {
			return false
		}
		q = netip.MustParsePrefix(c.MNP[0])
		return true
	})
	return q
}

func TestPDBuiltInPoolAndRestart(t *testing.T) {
	e, leases := pdEnds(t, netip.Addr{}, "", "")
	e.Start()
	e.Registered()
	q := leased(t, e)
	if !lab.PDPool.Contains(q.Addr()) {
		t.Fatalf("%v is not from the pool", q)
	}
	s := e.HAStatus().PD
	if s.Mode != "pool" || s.Listen != "[2001:db8:ffff::1]:547" || s.LeaseFile != leases || s.Counters["delegations"] != 1 || s.Counters["sent"] < 1 {
		t.Fatalf("status %+v", s)
	}
	if l := car1(e).Leases[0]; l.Valid <= 0 || l.Preferred <= 0 || l.Preferred > l.Valid {
		t.Fatalf("lease %+v", l)
	}
	st, err := dhcpv6pd.DecodeServerState(mustRead(t, leases))
	if err != nil || len(st.Leases) != 1 || !st.Leases[0].Active || st.Leases[0].Prefix != q || st.DUID == nil {
		t.Fatalf("lease file %+v %v", st, err)
	}
	// Restarted, it has the lease from its file at once, and the same
	// DUID.
	e.RestartHA()
	if c := car1(e); len(c.Leases) != 1 || c.Leases[0].Prefix != q.String() {
		t.Fatalf("leases after the restart: %+v", c.Leases)
	}
	e.Registered()
	if got := leased(t, e); got != q {
		t.Fatalf("after the restart %v, was %v", got, q)
	}
	st2, _ := dhcpv6pd.DecodeServerState(mustRead(t, leases))
	if !st2.DUID.Equal(st.DUID) {
		t.Fatal("the server's DUID changed across its restart")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := (&pdio.FileStore{Path: path}).Load()
	if err != nil || b == nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

func reload(t *testing.T, e *twoends.Ends) status.Reload {
	t.Helper()
	var rl status.Reload
	if err := twoends.Ctl(e.HASock, "reload", &rl); err != nil {
		t.Fatalf("reload: %v", err)
	}
	return rl
}

// A reload that moves car1 to another pool revokes its prefix: the router
// learns it at its next exchange and gets one from the new pool; one that
// takes option pd away leaves it none.
func TestPDReloadMovesAndRevokes(t *testing.T) {
	const spare = "config pd_pool 'spare'\n\toption prefix '2001:db8:400::/40'\n\toption length '56'\n"
	e, leases := pdEnds(t, netip.Addr{}, "", spare)
	e.Start()
	e.Registered()
	q := leased(t, e)
	text := lab.HomeAgentUCIPD(e.HASock, leases, netip.Addr{}, "") + spare
	e.WriteHomeAgentConfig(strings.Replace(text, "\toption pd '1'\n", "\toption pd '1'\n\toption pd_pool 'spare'\n", 1))
	if rl := reload(t, e); !slices.Contains(rl.Applied, "mobile_router car1.pd_pool") {
		t.Fatalf("reload %+v", rl)
	}
	e.Eventually(5*time.Second, "the revocation", func() bool {
		c := car1(e)
		return len(c.MNP) == 0 && len(c.Leases) == 0 && e.HAStatus().PD.Counters["delegations"] == 1
	})
	// Restart the router: its Rebind of the old prefix is refused, and it
	// Solicits one of the new pool.
	e.RestartMR()
	e.Registered()
	moved := leased(t, e)
	if moved == q || !netip.MustParsePrefix("2001:db8:400::/40").Contains(moved.Addr()) {
		t.Fatalf("after the move: %v (was %v)", moved, q)
	}
	e.WriteHomeAgentConfig(strings.Replace(text, "\toption pd '1'\n", "", 1))
	if rl := reload(t, e); !slices.Contains(rl.Applied, "mobile_router car1.pd") {
		t.Fatalf("reload %+v", rl)
	}
	e.Eventually(5*time.Second, "no prefix without option pd", func() bool {
		c := car1(e)
		return len(c.MNP) == 0 && len(c.Leases) == 0 && len(c.Bindings) > 0
	})
}

// keaLike is an external DHCPv6 server behind the home agent's socket: a
// dhcpv6pd.Server that takes the home agent's Relay-forward around the
// router's, as a real server does (RFC 8415 §19.1.2).
type keaLike struct {
	pdio.Conn
	addr netip.AddrPort
	srv  *dhcpv6pd.Server
	mu   sync.Mutex
	in   chan dg
	gone chan struct{}
	once sync.Once
}

type dg struct {
	b    []byte
	from netip.AddrPort
}

func (k *keaLike) WriteToUDPAddrPort(b []byte, to netip.AddrPort) (int, error) {
	if to != k.addr {
		return k.Conn.WriteToUDPAddrPort(b, to)
	}
	outer, err := dhcpv6pd.ParseRelay(b)
	if err != nil {
		return len(b), nil
	}
	inner, err := dhcpv6pd.ParseRelay(outer.Inner)
	if err != nil {
		return len(b), nil
	}
	k.mu.Lock()
	out, err := k.srv.Handle(outer.Inner, netip.AddrPortFrom(inner.LinkAddr, dhcpv6pd.ServerPort), time.Now())
	k.mu.Unlock()
	if err != nil {
		return len(b), nil
	}
	for _, d := range out.Send {
		rr := dhcpv6pd.Relay{Type: dhcpv6pd.RelayRepl, HopCount: outer.HopCount, LinkAddr: outer.LinkAddr, PeerAddr: outer.PeerAddr, Inner: d.Data}
		k.in <- dg{rr.Marshal(), k.addr}
	}
	return len(b), nil
}

// pump reads the tunnel's side into the same queue as the server's.
func (k *keaLike) pump() {
	buf := make([]byte, 65536)
	for {
		n, from, err := k.Conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			k.Close()
			return
		}
		select {
		case k.in <- dg{append([]byte(nil), buf[:n]...), from}:
		case <-k.gone:
			return
		}
	}
}

func (k *keaLike) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	select {
	case d := <-k.in:
		return copy(b, d.b), d.from, nil
	case <-k.gone:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}

func (k *keaLike) Close() error {
	k.once.Do(func() { close(k.gone) })
	return k.Conn.Close()
}

// The relay: the router's messages go to the external server inside the
// home agent's Relay-forward, the answers come back, and the home agent
// forwards the prefix the server delegated, until the router releases it.
func TestPDRelayLearnsFromReplies(t *testing.T) {
	server := netip.MustParseAddr("2001:db8:ffff::547")
	e, _ := pdEnds(t, server, "", "")
	e.WriteRouterConfig(lab.RouterUCIPD(e.MRSock, filepath.Join(e.Dir, "pd-lease.json"), "\toption pd_release '1'\n"))
	pool := netip.MustParsePrefix("2001:db8:800::/40")
	srv, err := dhcpv6pd.NewServer(dhcpv6pd.ServerConfig{DUID: dhcpv6pd.NewDUIDUUID([16]byte{1}),
		Pools: []dhcpv6pd.Pool{{Name: "kea", Prefix: pool, Length: 56}}, Routers: map[netip.Addr]string{twoends.HoA: ""}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.WrapDHCPv6 = func(c pdio.Conn) pdio.Conn {
		k := &keaLike{Conn: c, addr: netip.AddrPortFrom(server, dhcpv6pd.ServerPort), srv: srv, in: make(chan dg, 64), gone: make(chan struct{})}
		go k.pump()
		return k
	}
	e.Start()
	e.Registered()
	q := leased(t, e)
	if !pool.Contains(q.Addr()) {
		t.Fatalf("%v is not the server's", q)
	}
	s := e.HAStatus().PD
	if s.Mode != "relay" || s.Server != "[2001:db8:ffff::547]:547" || s.Counters["learned"] < 1 || s.Counters["from_server"] < 1 || s.Counters["malformed"] != 0 {
		t.Fatalf("relay status %+v", s)
	}
	if err := e.StopMR(); err != nil {
		t.Fatal(err)
	}
	e.Eventually(5*time.Second, "the release learnt", func() bool { return len(car1(e).Leases) == 0 })
}
