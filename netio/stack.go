package netio

import (
	"fmt"
	"net"
	"net/netip"
)

// Conn is a datagram socket doing batched I/O: UDP, or raw IPv6 of one
// protocol (whose packets it reads and writes without the IPv6 header, the
// kernel building it).
type Conn interface {
	// Recv blocks for at least one datagram and fills b (see BatchConn.Recv).
	Recv(b *Batch) (int, error)
	// Send sends messages 0..n-1 of b (see BatchConn.Send).
	Send(b *Batch, n int) (int, error)
	Close() error
}

// Sender sends whole IPv6 packets, header and extension headers included,
// as the caller built them (RawSender).
type Sender interface {
	Send(pkt []byte) error
	Close() error
}

// Listener reads packets off the links: IPv6 packets whose first next
// header is a routing or destination options header (PacketListener), or
// the kernel's Mobility Header packets rebuilt into wire form.
type Listener interface {
	// Read blocks for the next packet: its length and the index of the
	// interface it came in on (0 when unknown).
	Read(buf []byte) (n, ifindex int, err error)
	Close() error
}

// Stack opens the sockets the data plane and the daemons use. System is the
// kernel's; tests run both ends in one process on an in-process network.
type Stack interface {
	// ListenUDP opens a UDP socket ("udp4", "udp6" or dual-stack "udp") on
	// laddr, bound to device unless it is empty.
	ListenUDP(network, device string, laddr netip.AddrPort) (Conn, error)
	// ListenIP opens a raw IPv6 socket for protocol proto, bound to device
	// unless it is empty and to laddr when it is valid.
	ListenIP(proto uint8, device string, laddr netip.Addr) (Conn, error)
	// NewSender opens a header-included IPv6 socket, bound to device unless
	// it is empty.
	NewSender(device string) (Sender, error)
	// ListenExtHeaders listens for IPv6 packets with extension headers on
	// the interface with index ifindex (0: every interface).
	ListenExtHeaders(ifindex int) (Listener, error)
}

// System is the kernel's Stack.
type System struct{}

var (
	_ Stack    = System{}
	_ Listener = (*MHListener)(nil)
	_ Listener = (*PacketListener)(nil)
	_ Sender   = (*RawSender)(nil)
)

// socketBuffer is what every data-plane socket asks of the kernel for each
// direction: a burst of tens of 64 KB offload buffers (a TCP window, a
// fleet's registrations after an outage) must not overflow it. The kernel
// caps it at rmem_max and wmem_max.
const socketBuffer = 4 << 20

// socket is a batched socket that owns its file.
type socket struct {
	*BatchConn
	c net.PacketConn
}

func (s *socket) Close() error { return s.c.Close() }

type bufferSetter interface {
	SetReadBuffer(int) error
	SetWriteBuffer(int) error
}

func batched(c net.PacketConn, udp bool) (Conn, error) {
	if bs, ok := c.(bufferSetter); ok {
		bs.SetReadBuffer(socketBuffer)
		bs.SetWriteBuffer(socketBuffer)
	}
	bc, err := NewBatchConn(c.(syscallConn), udp)
	if err != nil {
		c.Close()
		return nil, err
	}
	return &socket{BatchConn: bc, c: c}, nil
}

// ListenUDP implements Stack.
func (System) ListenUDP(network, device string, laddr netip.AddrPort) (Conn, error) {
	c, err := ListenUDP(network, device, laddr)
	if err != nil {
		return nil, err
	}
	return batched(c, true)
}

// ListenIP implements Stack.
func (System) ListenIP(proto uint8, device string, laddr netip.Addr) (Conn, error) {
	c, err := ListenIP(fmt.Sprintf("ip6:%d", proto), device, laddr)
	if err != nil {
		return nil, err
	}
	return batched(c, false)
}

// NewSender implements Stack.
func (System) NewSender(device string) (Sender, error) { return NewRawSender(device) }

// ListenExtHeaders implements Stack.
func (System) ListenExtHeaders(ifindex int) (Listener, error) { return ListenExtHeaders(ifindex) }
