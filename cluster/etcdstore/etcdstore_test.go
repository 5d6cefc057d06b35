package etcdstore

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"nemod/binding"
	"nemod/cluster"
	"nemod/internal/testenv"
	"nemod/lab"
)

// The store against a real etcd: Debian's etcd-server, three members in
// network namespaces of the lab's cluster topology, data in memory; the
// test's client connects from a home agent's namespace.

func etcdLab(t *testing.T) (*lab.Lab, Config) {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "ip", "nft", "etcd", "etcdctl", "bird")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := lab.New(ctx, lab.Options{Logf: t.Logf, NoRadvd: true, Cluster: lab.ClusterOptions{Members: 1}})
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	ns := l.NS(lab.HA1)
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		var c net.Conn
		err := lab.InNamespace(ns, func() (err error) {
			c, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			return err
		})
		return c, err
	}
	return l, Config{Endpoints: lab.EtcdEndpoints(), Dial: dial}
}

func open(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestEtcdStore(t *testing.T) {
	t.Parallel()
	l, cfg := etcdLab(t)
	s := open(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lease, err := s.Grant(ctx, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ttl, err := s.KeepAlive(ctx, lease); err != nil || ttl != 2*time.Second {
		t.Fatalf("keepalive: %v %v", ttl, err)
	}
	_, rev0, err := s.Get(ctx, "/t/")
	if err != nil {
		t.Fatal(err)
	}
	w := s.Watch(ctx, "/t/", rev0+1)
	// Compare-and-swap: a key that must not exist, then its revision.
	rev, ok, err := s.Commit(ctx, []cluster.Op{{Key: "/t/a", Value: []byte("1"), Lease: lease}, {Key: "/t/b", Value: []byte("2")}})
	if err != nil || !ok {
		t.Fatalf("create: %v %v", ok, err)
	}
	if _, ok, _ := s.Commit(ctx, []cluster.Op{{Key: "/t/a", Value: []byte("x")}}); ok {
		t.Fatal("created a key that exists")
	}
	if _, ok, _ := s.Commit(ctx, []cluster.Op{{Key: "/t/a", Value: []byte("x"), Rev: rev - 1}, {Key: "/t/b", Value: []byte("y"), Rev: rev}}); ok {
		t.Fatal("a stale revision written, or half a transaction")
	}
	rev2, ok, err := s.Commit(ctx, []cluster.Op{{Key: "/t/a", Value: []byte("3"), Lease: lease, Rev: rev}})
	if err != nil || !ok {
		t.Fatalf("update: %v %v", ok, err)
	}
	kvs, _, err := s.Get(ctx, "/t/")
	if err != nil || len(kvs) != 2 || string(kvs[0].Value) != "3" || kvs[0].ModRev != rev2 || kvs[0].CreateRev != rev || kvs[0].Lease != lease {
		t.Fatalf("get: %+v %v", kvs, err)
	}
	var evs []cluster.Event
	for len(evs) < 3 {
		select {
		case e := <-w:
			evs = append(evs, e...)
		case <-ctx.Done():
			t.Fatalf("watch: %+v", evs)
		}
	}
	if evs[0].Key != "/t/a" || evs[1].Key != "/t/b" || evs[2].ModRev != rev2 || evs[2].Deleted {
		t.Fatalf("watched %+v", evs)
	}
	// An etcd member killed: two of three carry on.
	p := l.Etcd(0)
	p.Signal(syscall.SIGKILL)
	p.Wait()
	if _, err := s.KeepAlive(ctx, lease); err != nil {
		t.Fatalf("keepalive with a member down: %v", err)
	}
	if _, ok, err := s.Commit(ctx, []cluster.Op{{Key: "/t/c", Value: []byte("4")}}); err != nil || !ok {
		t.Fatalf("commit with a member down: %v %v", ok, err)
	}
	// The lease runs out: its keys go, the watch says so.
	start := time.Now()
	for {
		select {
		case e := <-w:
			if len(e) > 0 && e[0].Key == "/t/a" && e[0].Deleted {
				t.Logf("lease of 2 s expired %v after its last refresh", time.Since(start).Round(time.Millisecond))
				if _, err := s.KeepAlive(ctx, lease); err != cluster.ErrNoLease {
					t.Fatalf("keepalive of an expired lease: %v", err)
				}
				if err := l.StartEtcd(0); err != nil {
					t.Fatal(err)
				}
				return
			}
		case <-ctx.Done():
			t.Fatal("the lease never expired")
		}
	}
}

// Two members on etcd: the records one writes reach the other, batched;
// the owner leaves and the other takes its instance at once.
func TestMembersOnEtcd(t *testing.T) {
	t.Parallel()
	_, cfg := etcdLab(t)
	inst := netip.MustParseAddr("2001:db8:ffff::1")
	start := func(node string) (*cluster.Member, chan cluster.Update) {
		m, err := cluster.Start(context.Background(), cluster.Config{Store: open(t, cfg), Node: node, Prefix: "/m", Instances: []netip.Addr{inst}, LeaseTTL: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ch := make(chan cluster.Update, 1024)
		go func() {
			for u := range m.Updates() {
				ch <- u
			}
		}()
		return m, ch
	}
	m1, u1 := start("ha1")
	waitOwned := func(ch chan cluster.Update, want bool) time.Duration {
		start := time.Now()
		for {
			select {
			case u := <-ch:
				if u.OwnedChanged && (len(u.Owned) == 1) == want {
					return time.Since(start)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("ownership not %v", want)
			}
		}
	}
	waitOwned(u1, true)
	m2, u2 := start("ha2")
	var recs []*binding.Record
	for i := range 300 {
		hoa := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 1, 14: byte(i >> 8), 15: byte(i)})
		recs = append(recs, &binding.Record{HoA: hoa, Name: "r", HA: inst, HasSeq: true, Seq: 1, TS: 100,
			Bindings: []binding.RecordBinding{{BID: 1, Expires: time.Now().Add(time.Minute).UnixNano()}}})
	}
	t0 := time.Now()
	for i := range recs {
		m1.Publish(recs[i:i+1], uint64(i+1))
	}
	got := map[netip.Addr]bool{}
	committed := 0
	for len(got) < len(recs) || committed < len(recs) {
		select {
		case u := <-u2:
			for _, r := range u.Records {
				got[r.HoA] = true
			}
		case u := <-u1:
			committed += len(u.Committed)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d records at ha2, %d committed", len(got), len(recs), committed)
		}
	}
	st := m1.Status()
	t.Logf("300 records written in %d transactions, all at the other member in %v", st.Commits, time.Since(t0).Round(time.Millisecond))
	if st.Commits > 150 {
		t.Errorf("%d transactions for 300 records: not batched", st.Commits)
	}
	m1.Close()
	d := waitOwned(u2, true)
	t.Logf("ha1 left: ha2 owned the instance %v later", d.Round(time.Millisecond))
	if s := m2.Status(); !slices.Contains(s.Owned, inst) {
		t.Fatalf("status: %+v", s)
	}
	m2.Close()
}
