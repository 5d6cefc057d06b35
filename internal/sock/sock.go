// Package sock opens the daemons' sockets with system calls and hands them
// to package net as files, so that no socket of nemod is opened through a
// string address.
//
// Why: every way of opening a socket that takes a string address (net.Listen,
// net.ListenPacket, net.ListenConfig, net.Dialer, even for "unix") passes
// through net's name resolution, and so links the DNS resolver, the hosts,
// resolv.conf and nsswitch parsers and the address sorting of RFC 6724
// into the binary although no caller ever resolves a name: about 300 KB of
// a router's flash on mipsle (see BENCHMARKS.md). The functions here take
// typed addresses, set the socket options net would set (and the ones a
// caller asks for, before bind), and return what net would have.
package sock

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Setup is called on the new socket before it is bound (socket options,
// SO_BINDTODEVICE).
type Setup func(fd int) error

// BindToDevice is a Setup that binds the socket to device (nothing if
// device is "").
func BindToDevice(device string) Setup {
	return func(fd int) error {
		if device == "" {
			return nil
		}
		if err := unix.BindToDevice(fd, device); err != nil {
			return fmt.Errorf("bind to %s: %w", device, err)
		}
		return nil
	}
}

// ListenUDP opens a UDP socket: network "udp4", "udp6" (IPv6 only) or
// "udp" (dual stack unless laddr is IPv4), on laddr (the unspecified
// address if invalid; a zone names the interface of a link-local one).
func ListenUDP(network string, laddr netip.AddrPort, setup ...Setup) (*net.UDPConn, error) {
	family, v6only, err := familyOf(network, laddr.Addr())
	if err != nil {
		return nil, err
	}
	f, err := open(network, family, unix.SOCK_DGRAM, 0, v6only, laddr, setup)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := net.FilePacketConn(f)
	if err != nil {
		return nil, err
	}
	return c.(*net.UDPConn), nil
}

// ListenIP opens a raw IP socket: network "ip6:PROTO" or "ip4:PROTO" with
// the protocol number, on laddr (any address if invalid). The kernel
// strips the IPv6 header on receive and builds it on send (an IPv4 one
// stays in received packets; *net.IPConn strips it).
func ListenIP(network string, laddr netip.Addr, setup ...Setup) (*net.IPConn, error) {
	afnet, p, ok := strings.Cut(network, ":")
	proto, err := strconv.ParseUint(p, 10, 8)
	if !ok || err != nil || (afnet != "ip4" && afnet != "ip6") {
		return nil, fmt.Errorf("listen %s: not ip4:N or ip6:N", network)
	}
	family, _, err := familyOf(afnet, laddr)
	if err != nil {
		return nil, err
	}
	f, err := open(network, family, unix.SOCK_RAW, int(proto), false, netip.AddrPortFrom(laddr, 0), setup)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := net.FilePacketConn(f)
	if err != nil {
		return nil, err
	}
	return c.(*net.IPConn), nil
}

// ListenTCP opens a TCP listener on laddr ("tcp" as net.Listen: dual
// stack on the unspecified IPv6 address, IPv4 only on an IPv4 one).
func ListenTCP(laddr netip.AddrPort) (net.Listener, error) {
	family, v6only, err := familyOf("tcp", laddr.Addr())
	if err != nil {
		return nil, err
	}
	reuse := func(fd int) error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1) }
	f, err := open("tcp", family, unix.SOCK_STREAM, 0, v6only, laddr, []Setup{reuse})
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := unix.Listen(int(f.Fd()), unix.SOMAXCONN); err != nil {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: net.TCPAddrFromAddrPort(laddr), Err: os.NewSyscallError("listen", err)}
	}
	return net.FileListener(f)
}

// DialUnix connects to the stream socket at path. It does not wait: a
// listener whose queue is full answers EAGAIN at once, which for a local
// daemon's socket is as good as refused.
func DialUnix(path string) (net.Conn, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	f := os.NewFile(uintptr(fd), "unix:"+path)
	defer f.Close()
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		return nil, &net.OpError{Op: "dial", Net: "unix", Addr: &net.UnixAddr{Name: path, Net: "unix"}, Err: os.NewSyscallError("connect", err)}
	}
	return net.FileConn(f)
}

// familyOf is net's choice of address family for network and a local
// address: the digit decides; without one, an IPv4 address makes an IPv4
// socket and anything else a dual-stack IPv6 one.
func familyOf(network string, a netip.Addr) (family int, v6only bool, err error) {
	switch network[len(network)-1] {
	case '4':
		if a.IsValid() && !a.Unmap().Is4() {
			return 0, false, fmt.Errorf("listen %s: %s is not an IPv4 address", network, a)
		}
		return unix.AF_INET, false, nil
	case '6':
		if a.IsValid() && !a.Is6() {
			return 0, false, fmt.Errorf("listen %s: %s is not an IPv6 address", network, a)
		}
		return unix.AF_INET6, true, nil
	}
	if a.Is4() {
		return unix.AF_INET, false, nil
	}
	return unix.AF_INET6, false, nil
}

// open makes the socket, sets net's default options (IPV6_V6ONLY as the
// network says, SO_BROADCAST on datagram and raw sockets) and the
// caller's, and binds it.
func open(network string, family, typ, proto int, v6only bool, laddr netip.AddrPort, setup []Setup) (*os.File, error) {
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, proto)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: os.NewSyscallError("socket", err)}
	}
	f := os.NewFile(uintptr(fd), network)
	fail := func(op string, err error) (*os.File, error) {
		f.Close()
		return nil, &net.OpError{Op: "listen", Net: network, Addr: addr(typ, laddr), Err: os.NewSyscallError(op, err)}
	}
	if family == unix.AF_INET6 && typ != unix.SOCK_RAW {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, boolint(v6only)); err != nil {
			return fail("setsockopt", err)
		}
	}
	if typ != unix.SOCK_STREAM {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1); err != nil {
			return fail("setsockopt", err)
		}
	}
	for _, s := range setup {
		if err := s(fd); err != nil {
			f.Close()
			return nil, &net.OpError{Op: "listen", Net: network, Addr: addr(typ, laddr), Err: err}
		}
	}
	sa, err := sockaddr(family, laddr)
	if err != nil {
		f.Close()
		return nil, &net.OpError{Op: "listen", Net: network, Addr: addr(typ, laddr), Err: err}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	return f, nil
}

func sockaddr(family int, ap netip.AddrPort) (unix.Sockaddr, error) {
	a := ap.Addr()
	if family == unix.AF_INET {
		sa := &unix.SockaddrInet4{Port: int(ap.Port())}
		if a.IsValid() {
			sa.Addr = a.Unmap().As4()
		}
		return sa, nil
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port())}
	if !a.IsValid() {
		return sa, nil
	}
	sa.Addr = a.As16()
	if z := a.Zone(); z != "" {
		if n, err := strconv.ParseUint(z, 10, 32); err == nil {
			sa.ZoneId = uint32(n)
		} else if ifi, err := net.InterfaceByName(z); err == nil {
			sa.ZoneId = uint32(ifi.Index)
		} else {
			return nil, errors.New("no interface " + strconv.Quote(z))
		}
	}
	return sa, nil
}

func addr(typ int, ap netip.AddrPort) net.Addr {
	switch typ {
	case unix.SOCK_DGRAM:
		return net.UDPAddrFromAddrPort(ap)
	case unix.SOCK_STREAM:
		return net.TCPAddrFromAddrPort(ap)
	}
	return &net.IPAddr{IP: ap.Addr().AsSlice(), Zone: ap.Addr().Zone()}
}

func boolint(b bool) int {
	if b {
		return 1
	}
	return 0
}
