package netio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// RawSender sends complete IPv6 packets, header and extension headers
// included, as the application built them (IPPROTO_RAW implies
// IPV6_HDRINCL). It is how a type 2 routing header or a Home Address option
// leaves a host whose kernel cannot build them.
type RawSender struct {
	f  *os.File
	rc syscall.RawConn
}

// NewRawSender opens a header-included IPv6 socket, bound to device when it
// is not empty.
func NewRawSender(device string) (*RawSender, error) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return nil, fmt.Errorf("raw IPv6 socket: %w", err)
	}
	if device != "" {
		if err := unix.BindToDevice(fd, device); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("raw IPv6 socket: bind to %s: %w", device, err)
		}
	}
	f := os.NewFile(uintptr(fd), "raw6")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &RawSender{f: f, rc: rc}, nil
}

// Send sends pkt, an IPv6 packet, to its destination address.
func (s *RawSender) Send(pkt []byte) error {
	if len(pkt) < 40 || pkt[0]>>4 != 6 {
		return errors.New("raw send: not an IPv6 packet")
	}
	sa := &unix.SockaddrInet6{Addr: [16]byte(pkt[24:40])}
	var err error
	werr := s.rc.Write(func(fd uintptr) bool {
		err = unix.Sendto(int(fd), pkt, 0, sa)
		return !errors.Is(err, unix.EAGAIN)
	})
	if werr != nil {
		return werr
	}
	return err
}

// Close closes the socket.
func (s *RawSender) Close() error { return s.f.Close() }

// bindControl returns a net.ListenConfig Control function that binds the
// socket to device (if set) before it is bound to an address.
func bindControl(device string, extra func(fd int) error) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if device != "" {
				if serr = unix.BindToDevice(int(fd), device); serr != nil {
					serr = fmt.Errorf("bind to %s: %w", device, serr)
					return
				}
			}
			if extra != nil {
				serr = extra(int(fd))
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}

// ListenUDP opens a UDP socket ("udp4", "udp6", or "udp" for dual stack)
// on laddr, bound to device when it is not empty.
func ListenUDP(network, device string, laddr netip.AddrPort) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: bindControl(device, nil)}
	addr := laddr.String()
	if !laddr.Addr().IsValid() {
		addr = fmt.Sprintf(":%d", laddr.Port())
	}
	pc, err := lc.ListenPacket(context.Background(), network, addr)
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

// ListenIP opens a raw IP socket for protocol proto ("ip6:41", "ip6:135",
// ...) bound to device when it is not empty. The kernel strips the IPv6
// header on receive and builds it on send.
func ListenIP(network, device string, laddr netip.Addr) (*net.IPConn, error) {
	lc := net.ListenConfig{Control: bindControl(device, nil)}
	addr := ""
	if laddr.IsValid() {
		addr = laddr.String()
	}
	pc, err := lc.ListenPacket(context.Background(), network, addr)
	if err != nil {
		return nil, err
	}
	return pc.(*net.IPConn), nil
}
