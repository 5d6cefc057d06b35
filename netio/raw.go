package netio

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"nemod/internal/sock"
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

// ListenUDP opens a UDP socket ("udp4", "udp6", or "udp" for dual stack)
// on laddr, bound to device when it is not empty.
func ListenUDP(network, device string, laddr netip.AddrPort) (*net.UDPConn, error) {
	return sock.ListenUDP(network, laddr, sock.BindToDevice(device))
}

// ListenIP opens a raw IP socket for protocol proto ("ip6:41", "ip6:135",
// ...) bound to device when it is not empty. The kernel strips the IPv6
// header on receive and builds it on send.
func ListenIP(network, device string, laddr netip.Addr) (*net.IPConn, error) {
	return sock.ListenIP(network, laddr, sock.BindToDevice(device))
}
