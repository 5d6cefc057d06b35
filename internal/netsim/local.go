package netsim

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"

	"nemod/header"
)

// TUNConn is a UDP socket of the host a TUN device is on, as the kernel
// wires it to the device: packets the data plane writes into the device
// for the socket's address and port come out of the socket instead of
// Written, and what the socket sends is routed into the device (its
// destinations are the ones routed there). The home agent's DHCPv6 socket
// hears its mobile routers through the tunnel this way.
type TUNConn struct {
	t    *TUN
	addr netip.AddrPort
	in   chan datagram
	done chan struct{}
	once sync.Once
}

// ListenUDP opens a TUNConn on addr.
func (t *TUN) ListenUDP(addr netip.AddrPort) *TUNConn {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.local == nil {
		t.local = map[netip.AddrPort]*TUNConn{}
	}
	c := &TUNConn{t: t, addr: addr, in: make(chan datagram, 256), done: make(chan struct{})}
	t.local[addr] = c
	return c
}

// deliverLocal hands p to the socket it is for, if any, and reports
// whether one took it.
func (t *TUN) deliverLocal(p []byte) bool {
	t.mu.Lock()
	local := t.local
	t.mu.Unlock()
	if len(local) == 0 {
		return false
	}
	ip, err := header.ParseIPv6(p)
	if err != nil || ip.NextHeader() != header.ProtoUDP || len(ip.Payload()) < header.UDPSize {
		return false
	}
	u := ip.Payload()
	dst := netip.AddrPortFrom(ip.Dst(), binary.BigEndian.Uint16(u[2:]))
	t.mu.Lock()
	c := t.local[dst]
	t.mu.Unlock()
	if c == nil {
		return false
	}
	from := netip.AddrPortFrom(ip.Src(), binary.BigEndian.Uint16(u))
	select {
	case c.in <- datagram{data: clone(u[header.UDPSize:]), from: from}:
	default: // a full socket buffer drops, as the kernel's does
	}
	return true
}

// ReadFromUDPAddrPort reads one datagram.
func (c *TUNConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	select {
	case d := <-c.in:
		return copy(b, d.data), d.from, nil
	case <-c.t.closed:
		return 0, netip.AddrPort{}, net.ErrClosed
	case <-c.done:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}

// WriteToUDPAddrPort sends b to to, into the device.
func (c *TUNConn) WriteToUDPAddrPort(b []byte, to netip.AddrPort) (int, error) {
	u := make([]byte, header.UDPSize+len(b))
	binary.BigEndian.PutUint16(u, c.addr.Port())
	binary.BigEndian.PutUint16(u[2:], to.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[header.UDPSize:], b)
	header.UDP(u).SetChecksum(header.TransportChecksum(c.addr.Addr(), to.Addr(), header.ProtoUDP, u))
	c.t.Inject(append(header.AppendIPv6(nil, c.addr.Addr(), to.Addr(), header.ProtoUDP, 64, len(u)), u...))
	return len(b), nil
}

// LocalAddr is the socket's address.
func (c *TUNConn) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(c.addr) }

// Close closes the socket.
func (c *TUNConn) Close() error {
	c.once.Do(func() { close(c.done) })
	c.t.mu.Lock()
	defer c.t.mu.Unlock()
	if c.t.local[c.addr] == c {
		delete(c.t.local, c.addr)
	}
	return nil
}
