package ranet

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"

	"nemod/ra"
)

// fakeConn is a LAN socket in memory: reads come from in, writes are kept.
type fakeConn struct {
	in     chan []byte
	hl     int
	mu     sync.Mutex
	writes []ndp.Message
	dsts   []netip.Addr
	closed chan struct{}
}

func (f *fakeConn) ReadRaw(b []byte) (int, *ipv6.ControlMessage, netip.Addr, error) {
	select {
	case m := <-f.in:
		f.mu.Lock()
		hl := f.hl
		f.mu.Unlock()
		return copy(b, m), &ipv6.ControlMessage{HopLimit: hl}, netip.MustParseAddr("fe80::2"), nil
	case <-f.closed:
		return 0, nil, netip.Addr{}, errors.New("closed")
	}
}

func (f *fakeConn) WriteTo(b []byte, _ *ipv6.ControlMessage, dst netip.Addr) error {
	m, err := ndp.ParseMessage(b)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = append(f.writes, m)
	f.dsts = append(f.dsts, dst)
	return nil
}

func (f *fakeConn) Close() error {
	select {
	case <-f.closed:
	default:
		close(f.closed)
	}
	return nil
}

func (f *fakeConn) sent() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.writes)
}

type fakeAddrs struct {
	mu   sync.Mutex
	sets [][]netip.Prefix
}

func (f *fakeAddrs) SetAddrs(ifname string, want []netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets = append(f.sets, slices.Clone(want))
	return nil
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	end := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The shell without root: an update sends an RA to ff02::1 and sets the
// router's address; an RS with hop limit 255 gets an answer, one with
// another hop limit is counted and dropped; stopping sends a final RA.
func TestLANShellWithoutRoot(t *testing.T) {
	conn := &fakeConn{in: make(chan []byte, 4), hl: 255, closed: make(chan struct{})}
	addrs := &fakeAddrs{}
	adv, err := ra.NewAdvertiser(ra.Config{}, rand.New(rand.NewPCG(5, 6)))
	if err != nil {
		t.Fatal(err)
	}
	lan := NewLAN("lan0", conn, adv, addrs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lan.Run(ctx) }()
	subs, _ := ra.Plan([]ra.MNP{{Prefix: netip.MustParsePrefix("2001:db8:5::/48"), PreferredUntil: ra.Forever, ValidUntil: ra.Forever}}, []ra.LAN{{Name: "lan0"}})
	lan.Update(subs, true)
	eventually(t, "first RA", func() bool { return conn.sent() == 1 })
	addrs.mu.Lock()
	if len(addrs.sets) != 1 || !slices.Equal(addrs.sets[0], []netip.Prefix{netip.MustParsePrefix("2001:db8:5::1/64")}) {
		t.Fatalf("addresses %v", addrs.sets)
	}
	addrs.mu.Unlock()
	conn.mu.Lock()
	if conn.dsts[0] != ra.AllNodes || conn.writes[0].(*ndp.RouterAdvertisement).RouterLifetime != 1800*time.Second {
		t.Fatalf("RA %+v to %v", conn.writes[0], conn.dsts[0])
	}
	conn.mu.Unlock()
	rs, _ := ndp.MarshalMessage(&ndp.RouterSolicitation{})
	conn.mu.Lock()
	conn.hl = 64
	conn.mu.Unlock()
	conn.in <- rs
	eventually(t, "bad RS counted", func() bool { return lan.Counters().Dropped == 1 })
	conn.mu.Lock()
	conn.hl = 255
	conn.mu.Unlock()
	conn.in <- rs
	// The answer waits MIN_DELAY_BETWEEN_RAS after the first RA.
	eventually(t, "answer", func() bool { return conn.sent() == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := conn.sent(); n != 3 || conn.writes[2].(*ndp.RouterAdvertisement).RouterLifetime != 0 {
		t.Fatalf("%d RAs, last %+v", n, conn.writes[n-1])
	}
}
