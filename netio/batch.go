package netio

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr; Go's layout rules add the same tail padding
// as C on 64-bit systems.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// cmsgSpace is room for the control messages of one datagram: a UDP_GRO
// or UDP_SEGMENT value and the IPv6 packet info.
var cmsgSpace = unix.CmsgSpace(int(unsafe.Sizeof(unix.Inet6Pktinfo{}))) + unix.CmsgSpace(4)

// Batch is a set of datagram buffers for one recvmmsg or sendmmsg call,
// allocated once: the data plane moves packets without allocating.
type Batch struct {
	Bufs [][]byte         // the datagram buffers (full capacity)
	N    []int            // per message: octets received, or to send
	Addr []netip.AddrPort // per message: source received, or destination
	Seg  []int            // per message: UDP GRO/GSO segment size, 0 if none
	// Src, when valid, is the IPv6 source address a message is sent from
	// (IPV6_PKTINFO): a tunnelled packet must leave from exactly the
	// care-of address its binding registered, whatever address the
	// kernel would choose.
	Src   []netip.Addr
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	oob   []byte
}

// NewBatch allocates n buffers of size octets each.
func NewBatch(n, size int) *Batch {
	b := &Batch{
		Bufs: make([][]byte, n), N: make([]int, n), Addr: make([]netip.AddrPort, n), Seg: make([]int, n), Src: make([]netip.Addr, n),
		hdrs: make([]mmsghdr, n), iovs: make([]unix.Iovec, n), names: make([]unix.RawSockaddrInet6, n),
		oob: make([]byte, n*cmsgSpace),
	}
	mem := make([]byte, n*size)
	for i := range b.Bufs {
		b.Bufs[i] = mem[i*size : (i+1)*size : (i+1)*size]
	}
	return b
}

// syscallConn is a socket the batch calls run on: a *net.UDPConn or a
// *net.IPConn.
type syscallConn interface {
	SyscallConn() (syscall.RawConn, error)
}

// BatchConn does batched I/O on one socket.
type BatchConn struct {
	rc  syscall.RawConn
	udp bool
	v6  bool // the socket is AF_INET6 (IPv4 peers appear v4-mapped)
}

// NewBatchConn prepares c for batched I/O. For a UDP socket it turns on
// UDP GRO when the kernel has it, so that a burst from one peer arrives as
// one large buffer with its segment size.
func NewBatchConn(c syscallConn, udp bool) (*BatchConn, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	bc := &BatchConn{rc: rc, udp: udp}
	var serr error
	err = rc.Control(func(fd uintptr) {
		var dom int
		dom, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
		bc.v6 = dom == unix.AF_INET6
		if udp {
			// Best effort: a kernel without UDP GRO simply delivers
			// datagrams one by one.
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1)
		}
	})
	if err != nil {
		return nil, err
	}
	return bc, serr
}

// Recv receives up to len(b.Bufs) datagrams, blocking for the first. It
// fills b.N, b.Addr and b.Seg for each and returns how many arrived.
func (c *BatchConn) Recv(b *Batch) (int, error) {
	for i := range b.hdrs {
		b.iovs[i] = unix.Iovec{Base: &b.Bufs[i][0]}
		b.iovs[i].SetLen(cap(b.Bufs[i]))
		h := &b.hdrs[i].hdr
		*h = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&b.names[i])), Namelen: unix.SizeofSockaddrInet6, Iov: &b.iovs[i]}
		h.SetIovlen(1)
		if c.udp {
			h.Control = &b.oob[i*cmsgSpace]
			h.SetControllen(cmsgSpace)
		}
	}
	var n int
	var errno syscall.Errno
	err := c.rc.Read(func(fd uintptr) bool {
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(len(b.hdrs)), unix.MSG_DONTWAIT, 0, 0)
		n, errno = int(r), e
		return errno != unix.EAGAIN
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	for i := 0; i < n; i++ {
		b.N[i] = int(b.hdrs[i].n)
		b.Addr[i] = sockaddrToAddrPort(&b.names[i])
		b.Seg[i] = 0
		if c.udp {
			b.Seg[i] = groSize(b.oob[i*cmsgSpace : i*cmsgSpace+int(b.hdrs[i].hdr.Controllen)])
		}
	}
	return n, nil
}

// Send sends messages 0..n-1 of b to b.Addr[i]; a message with b.Seg[i] > 0
// is a run of equal segments the kernel splits (UDP GSO). It returns how
// many messages went out; a message that failed is skipped, its error
// returned after the rest was tried.
func (c *BatchConn) Send(b *Batch, n int) (int, error) {
	used := 0
	for i := 0; i < n; i++ {
		b.iovs[i] = unix.Iovec{Base: &b.Bufs[i][0]}
		b.iovs[i].SetLen(b.N[i])
		nl := c.fillName(&b.names[i], b.Addr[i])
		h := &b.hdrs[i].hdr
		*h = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&b.names[i])), Namelen: nl, Iov: &b.iovs[i]}
		h.SetIovlen(1)
		oob := b.oob[i*cmsgSpace : (i+1)*cmsgSpace]
		ctl := 0
		if b.Seg[i] > 0 && c.udp {
			ctl += putSegment(oob, b.Seg[i])
		}
		if src := b.Src[i]; src.IsValid() && c.v6 && src.Is4() == b.Addr[i].Addr().Is4() {
			// To an IPv4 peer of a dual-stack socket, the source as a
			// v4-mapped address: the kernel's IPv4 path takes it.
			ctl += putPktinfo(oob[ctl:], src)
		}
		if ctl > 0 {
			h.Control = &oob[0]
			h.SetControllen(ctl)
		}
		used++
	}
	sent := 0
	var firstErr error
	for sent < used {
		var r int
		var errno syscall.Errno
		err := c.rc.Write(func(fd uintptr) bool {
			rr, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[sent])), uintptr(used-sent), 0, 0, 0)
			r, errno = int(rr), e
			return errno != unix.EAGAIN
		})
		if err != nil {
			return sent, err
		}
		if errno != 0 {
			// The message at sent failed (no route, message too long, a
			// peer's ICMP error): skip it, keep the rest going.
			if firstErr == nil {
				firstErr = errno
			}
			sent++
			continue
		}
		sent += r
	}
	return sent, firstErr
}

func (c *BatchConn) fillName(sa *unix.RawSockaddrInet6, ap netip.AddrPort) uint32 {
	a := ap.Addr()
	if a.Is4() && !c.v6 {
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*s4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&s4.Port))[:], ap.Port())
		return unix.SizeofSockaddrInet4
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16()}
	if !c.udp {
		// A raw IPv6 socket reads sin6_port as the protocol to send: 0
		// means the socket's own.
		return unix.SizeofSockaddrInet6
	}
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], ap.Port())
	return unix.SizeofSockaddrInet6
}

func sockaddrToAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	switch sa.Family {
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port)
	case unix.AF_INET:
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), port)
	}
	return netip.AddrPort{}
}

// groSize returns the segment size of a UDP_GRO control message, 0 if none.
func groSize(oob []byte) int {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return 0
		}
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && l >= unix.CmsgLen(2) {
			d := oob[unix.CmsgLen(0):]
			if l >= unix.CmsgLen(4) {
				return int(*(*int32)(unsafe.Pointer(&d[0])))
			}
			return int(*(*uint16)(unsafe.Pointer(&d[0])))
		}
		oob = oob[min(unix.CmsgSpace(l-unix.CmsgLen(0)), len(oob)):]
	}
	return 0
}

// putSegment writes a UDP_SEGMENT control message (native byte order)
// and returns its length.
func putSegment(oob []byte, seg int) int {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&oob[unix.CmsgLen(0)])) = uint16(seg)
	return unix.CmsgSpace(2)
}

// putPktinfo writes an IPV6_PKTINFO control message choosing the source
// address, and returns its length.
func putPktinfo(oob []byte, src netip.Addr) int {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
	*pi = unix.Inet6Pktinfo{Addr: src.As16()} // v4-mapped for IPv4
	return unix.CmsgSpace(unix.SizeofInet6Pktinfo)
}

// ErrTruncated: a received datagram did not fit its buffer.
var ErrTruncated = errors.New("datagram truncated")

// Segments calls f for each datagram of a received buffer: the buffer
// itself, or, when UDP GRO joined several datagrams of one sender, each
// seg-octet piece (the last may be shorter).
func Segments(buf []byte, seg int, f func([]byte)) {
	if seg <= 0 || seg >= len(buf) {
		f(buf)
		return
	}
	for len(buf) > 0 {
		n := min(seg, len(buf))
		f(buf[:n])
		buf = buf[n:]
	}
}
