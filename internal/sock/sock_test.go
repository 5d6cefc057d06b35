package sock

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"nemod/internal/testenv"
)

func sockopt(t *testing.T, c syscall.Conn, level, opt int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	rc.Control(func(fd uintptr) { v, serr = unix.GetsockoptInt(int(fd), level, opt) })
	if serr != nil {
		t.Fatal(serr)
	}
	return v
}

// The UDP sockets are what net.ListenPacket made: the family and
// IPV6_V6ONLY as the network says, SO_BROADCAST, the caller's options set
// before bind, and datagrams through them both ways.
func TestListenUDP(t *testing.T) {
	var ran []int
	mark := func(n int) Setup { return func(int) error { ran = append(ran, n); return nil } }
	dual, err := ListenUDP("udp", netip.AddrPort{}, mark(1), mark(2))
	if err != nil {
		t.Fatal(err)
	}
	defer dual.Close()
	if len(ran) != 2 || ran[0] != 1 || ran[1] != 2 {
		t.Errorf("setups ran %v", ran)
	}
	if v := sockopt(t, dual, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); v != 0 {
		t.Errorf("udp: IPV6_V6ONLY %d", v)
	}
	if v := sockopt(t, dual, unix.SOL_SOCKET, unix.SO_BROADCAST); v != 1 {
		t.Errorf("udp: SO_BROADCAST %d", v)
	}
	port := dual.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	if port == 0 {
		t.Fatalf("not bound: %v", dual.LocalAddr())
	}
	v6, err := ListenUDP("udp6", netip.MustParseAddrPort("[::1]:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer v6.Close()
	if v := sockopt(t, v6, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); v != 1 {
		t.Errorf("udp6: IPV6_V6ONLY %d", v)
	}
	v4, err := ListenUDP("udp4", netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer v4.Close()
	// The dual-stack socket hears both families.
	for _, from := range []*net.UDPConn{v4, v6} {
		to := netip.AddrPortFrom(netip.IPv6Loopback(), port)
		if from == v4 {
			to = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
		}
		if _, err := from.WriteToUDPAddrPort([]byte("hello"), to); err != nil {
			t.Fatal(err)
		}
		dual.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 16)
		n, src, err := dual.ReadFromUDPAddrPort(buf)
		if err != nil || string(buf[:n]) != "hello" || src.Port() != from.LocalAddr().(*net.UDPAddr).AddrPort().Port() {
			t.Errorf("from %v: %q from %v, %v", from.LocalAddr(), buf[:n], src, err)
		}
	}
	// A family the address does not have, a failing setup: errors, no
	// socket.
	if _, err := ListenUDP("udp4", netip.MustParseAddrPort("[::1]:0")); err == nil {
		t.Error("udp4 on ::1")
	}
	boom := errors.New("boom")
	if _, err := ListenUDP("udp", netip.AddrPort{}, func(int) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("failing setup: %v", err)
	}
	if _, err := ListenUDP("udp6", netip.MustParseAddrPort("[fe80::1%no-such-if]:0")); err == nil {
		t.Error("a zone that is no interface")
	}
}

func TestListenTCP(t *testing.T) {
	ln, err := ListenTCP(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "hi" {
		t.Errorf("%q %v", b, err)
	}
	// The port is taken now.
	if _, err := ListenTCP(ln.Addr().(*net.TCPAddr).AddrPort()); err == nil {
		t.Error("the same port twice")
	}
}

func TestDialUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	if _, err := DialUnix(path); !errors.Is(err, unix.ENOENT) {
		t.Errorf("no socket: %v", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	c, err := DialUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	c.Close()
	if err != nil || string(b) != "hi" {
		t.Errorf("%q %v", b, err)
	}
	ln.Close()
	if _, err := DialUnix(path); err == nil {
		t.Error("a closed listener answered")
	}
}

// A raw IPv6 socket for a protocol number hears that protocol only, with
// the IPv6 header stripped.
func TestListenIP(t *testing.T) {
	testenv.NeedRoot(t)
	if _, err := ListenIP("ip6:ipv6-icmp", netip.Addr{}); err == nil {
		t.Error("a protocol name")
	}
	c, err := ListenIP("ip6:253", netip.IPv6Loopback())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ListenIP("ip6:253", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.WriteToIP([]byte("payload"), &net.IPAddr{IP: net.IPv6loopback}); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, _, err := c.ReadFromIP(buf)
	if err != nil || string(buf[:n]) != "payload" {
		t.Errorf("%q %v", buf[:n], err)
	}
}
