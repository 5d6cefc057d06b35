package netio

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"nemod/internal/testenv"
	"nemod/lab"
	"nemod/nemo"
)

// twoNamespaces builds a and b joined by a veth pair (a: eth0 fd00::1,
// b: eth0 fd00::2), unique to the test, removed on every exit path.
func twoNamespaces(t *testing.T) (a, b string) {
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "ip")
	id := fmt.Sprintf("nio%d-%04x", os.Getpid()%100000, rand.IntN(0x10000))
	a, b = id+"a", id+"b"
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	run("netns", "add", a)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", a).Run() })
	run("netns", "add", b)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", b).Run() })
	run("-n", a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b)
	run("-n", a, "addr", "add", "fd00::1/64", "dev", "eth0", "nodad")
	run("-n", b, "addr", "add", "fd00::2/64", "dev", "eth0", "nodad")
	run("-n", a, "link", "set", "eth0", "up")
	run("-n", b, "link", "set", "eth0", "up")
	return a, b
}

// inNS runs f with the calling goroutine in namespace name; sockets f
// opens stay in that namespace.
func inNS(t *testing.T, name string, f func()) {
	t.Helper()
	if err := lab.InNamespace(name, func() error { f(); return nil }); err != nil {
		t.Fatal(err)
	}
}

// A Binding Update with a Home Address option, sent by the header-included
// raw socket, reaches the packet listener on a kernel that drops it before
// any IP socket; ordinary traffic does not.
func TestExtensionHeaderSignallingOnStockKernel(t *testing.T) {
	a, b := twoNamespaces(t)
	var (
		l   *PacketListener
		s   *RawSender
		err error
	)
	inNS(t, b, func() { l, err = ListenExtHeaders(0) })
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	inNS(t, a, func() { s, err = NewRawSender("eth0") })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	src, dst := netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
	hoa := netip.MustParseAddr("2001:db8:ffff:1::100")
	mh, _ := nemo.Marshal(&nemo.BindingUpdate{Seq: 9, Flags: nemo.BUFlagA | nemo.BUFlagH})
	pkt, err := nemo.AppendPacket(nil, src, dst, hoa, netip.Addr{}, 64, mh)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 4)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := l.Read(buf)
			if err != nil {
				close(got)
				return
			}
			got <- append([]byte(nil), buf[:n]...)
		}
	}()
	// Ordinary traffic first: it must not show up.
	exec.Command("ip", "netns", "exec", a, "ping", "-6", "-c", "1", "-W", "1", "fd00::2").Run()
	for i := 0; i < 3; i++ { // the first may race neighbour discovery
		if err := s.Send(pkt); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-got:
			parsed, err := nemo.ParsePacket(p)
			if err != nil {
				t.Fatalf("received %x: %v", p, err)
			}
			if parsed.HomeAddress != hoa || parsed.Src != src {
				t.Fatalf("received %+v", parsed)
			}
			var bu nemo.BindingUpdate
			if err := nemo.Unmarshal(parsed.MH, &bu); err != nil || bu.Seq != 9 {
				t.Fatalf("BU %+v %v", bu, err)
			}
			l.Close()
			for range got {
			}
			return
		case <-time.After(time.Second):
		}
	}
	t.Fatal("the Binding Update never reached the packet listener")
}
