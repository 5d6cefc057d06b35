package pdio

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"nemod/dhcpv6pd"
)

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(fi.Sys().(*syscall.Stat_t).Ino)
}

func TestFileStoreWritesOnlyChanges(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "lease.json")
	f := &FileStore{Path: path}
	if b, err := f.Load(); b != nil || err != nil {
		t.Fatalf("missing file: %q %v", b, err)
	}
	for i, step := range []struct {
		data  string
		wrote bool
	}{{"a", true}, {"a", false}, {"b", true}, {"b", false}, {"b", false}, {"a", true}} {
		var before uint64
		if i > 0 {
			before = inode(t, path)
		}
		wrote, err := f.Save([]byte(step.data))
		if err != nil || wrote != step.wrote {
			t.Fatalf("step %d: wrote %v, %v", i, wrote, err)
		}
		if got, _ := os.ReadFile(path); string(got) != step.data {
			t.Fatalf("step %d: file %q", i, got)
		}
		// A skipped write leaves the very same file; a write replaces it
		// by rename (a new inode), never in place.
		if i > 0 && (inode(t, path) == before) == step.wrote {
			t.Fatalf("step %d: inode %d -> %d", i, before, inode(t, path))
		}
	}
	if f.Writes != 3 {
		t.Fatalf("%d writes", f.Writes)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
	// A second store on the same file knows the content already there.
	g := &FileStore{Path: path}
	if wrote, err := g.Save([]byte("a")); wrote || err != nil {
		t.Fatalf("rewrote an unchanged file: %v", err)
	}
	// A failing write leaves the old file.
	if err := os.Chmod(filepath.Dir(path), 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(filepath.Dir(path), 0o700)
	if os.Geteuid() != 0 {
		if _, err := g.Save([]byte("c")); err == nil {
			t.Fatal("save into a read-only folder")
		}
		if got, _ := os.ReadFile(path); string(got) != "a" {
			t.Fatalf("file %q after a failed save", got)
		}
	}
}

// relay is a mobile router's co-located relay over a real socket: it
// drives a dhcpv6pd.Client with the wall clock.
type relay struct {
	t    *testing.T
	c    *dhcpv6pd.Client
	conn *net.UDPConn
	evs  []dhcpv6pd.Event
}

func newRelay(t *testing.T, server netip.AddrPort, rc bool) *relay {
	t.Helper()
	conn, err := ListenUDP(netip.MustParseAddrPort("[::1]:0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c, err := dhcpv6pd.NewClient(dhcpv6pd.ClientConfig{HoA: netip.IPv6Loopback(), Server: server,
		DUID: dhcpv6pd.NewDUIDUUID([16]byte{0: 0x42, 15: byte(os.Getpid())}), IAID: [4]byte{0, 0, 0, 1}, PrefixLen: 56, RapidCommit: rc},
		nil, rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1)))
	if err != nil {
		t.Fatal(err)
	}
	return &relay{t: t, c: c, conn: conn}
}

func (r *relay) send(out dhcpv6pd.Output) {
	r.t.Helper()
	r.evs = append(r.evs, out.Events...)
	for _, d := range out.Send {
		if _, err := r.conn.WriteToUDPAddrPort(d.Data, d.To); err != nil {
			r.t.Fatal(err)
		}
	}
}

// until runs the client until cond holds or the deadline passes.
func (r *relay) until(what string, d time.Duration, cond func() bool) {
	r.t.Helper()
	end := time.Now().Add(d)
	buf := make([]byte, 65536)
	for !cond() {
		if time.Now().After(end) {
			r.t.Fatalf("%s: still %v after %v", what, r.c.State(), d)
		}
		wake := r.c.Next()
		if wake.IsZero() || wake.After(end) {
			wake = end
		}
		r.conn.SetReadDeadline(wake)
		n, from, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				r.t.Fatal(err)
			}
			r.send(r.c.Tick(time.Now()))
			continue
		}
		out, err := r.c.Receive(buf[:n], netip.AddrPortFrom(from.Addr().WithZone(""), from.Port()), time.Now())
		if err != nil {
			r.t.Logf("client dropped a datagram: %v", err)
		}
		r.send(out)
	}
}

func startService(t *testing.T, m Machine, onOut func(dhcpv6pd.Output)) (netip.AddrPort, *Service) {
	t.Helper()
	conn, err := ListenUDP(netip.MustParseAddrPort("[::1]:0"))
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{Conn: conn, Machine: m, OnOutput: onOut}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		conn.Close()
		if err := <-done; err != nil {
			t.Errorf("service: %v", err)
		}
	})
	return conn.LocalAddr().(*net.UDPAddr).AddrPort(), s
}

// The built-in delegating router behind a real socket, with its state in
// a lease file.
func TestServiceDelegatesOverLoopback(t *testing.T) {
	srv, err := dhcpv6pd.NewServer(dhcpv6pd.ServerConfig{DUID: dhcpv6pd.NewDUIDUUID([16]byte{0: 1}),
		Pools:   []dhcpv6pd.Pool{{Name: "fleet", Prefix: netip.MustParsePrefix("2001:db8:200::/40"), Length: 56}},
		Routers: map[netip.Addr]string{netip.IPv6Loopback(): "fleet"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	store := &FileStore{Path: filepath.Join(t.TempDir(), "pd-leases.json")}
	var mu sync.Mutex
	var evs []dhcpv6pd.Event
	addr, svc := startService(t, srv, func(o dhcpv6pd.Output) {
		mu.Lock()
		defer mu.Unlock()
		evs = append(evs, o.Events...)
		if o.StateChanged {
			if _, err := store.Save(dhcpv6pd.EncodeServerState(srv.State())); err != nil {
				t.Error(err)
			}
		}
	})
	r := newRelay(t, addr, false)
	r.send(r.c.Start(time.Now()))
	r.until("delegation", 10*time.Second, func() bool { return r.c.State() == dhcpv6pd.Bound })
	p := r.c.Prefixes(time.Now())[0].Prefix
	if !netip.MustParsePrefix("2001:db8:200::/40").Contains(p.Addr()) || p.Bits() != 56 {
		t.Fatalf("got %v", p)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(evs)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(evs) != 1 || evs[0].Kind != dhcpv6pd.Delegated || evs[0].Prefix != p || evs[0].Router != netip.IPv6Loopback() {
		t.Fatalf("server events %v", evs)
	}
	b, err := os.ReadFile(store.Path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := dhcpv6pd.DecodeServerState(b)
	if err != nil || len(st.Leases) != 1 || st.Leases[0].Prefix != p || !st.Leases[0].Active {
		t.Fatalf("lease file %+v %v", st, err)
	}
	if c := svc.Counters(); c.Received != 2 || c.Sent != 2 || c.Dropped != 0 {
		t.Fatalf("counters %+v", c)
	}
}
