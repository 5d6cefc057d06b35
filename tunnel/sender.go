package tunnel

import (
	"errors"
	"net/netip"
	"syscall"

	"nemod/nemo"
	"nemod/netio"
)

// UDP GSO limits: the kernel refuses more segments than this in one send,
// and the whole must stay within one (64 KB) UDP datagram.
const (
	maxGSOSegments = 64
	maxGSOBytes    = 65000
)

// sender collects the packets for one socket and sends them with one
// sendmmsg. On a UDP socket, a run of equal-sized packets to the same peer
// (what a TCP burst split by the TUN reader looks like) goes out as one
// message the kernel segments (UDP GSO), ending at a shorter packet. One
// goroutine owns a sender.
type sender struct {
	conn    netio.Conn
	b       *netio.Batch
	n       int
	udp     bool
	gso     bool
	segs    []int  // packets in each message
	segSize []int  // their size (the first one's)
	closed  []bool // a shorter packet ended the run
	drops   *Drops
}

// senderBatch is how many messages a sender of encapsulation e gathers
// for one sendmmsg: a raw IPv6-in-IPv6 socket gets every packet of a TUN
// read as a message of its own, so its batch is the read's, one system
// call per read; a UDP one sends a whole burst per offloaded message.
func senderBatch(e nemo.Encap, dev Device) int {
	if e == nemo.EncapIPv6 {
		return max(32, dev.BatchSize())
	}
	return 32
}

func newSender(conn netio.Conn, udp bool, n int, drops *Drops) *sender {
	size := 2048
	if udp {
		size = maxGSOBytes
	}
	return &sender{
		conn: conn, b: netio.NewBatch(n, size), udp: udp, gso: udp,
		segs: make([]int, n), segSize: make([]int, n), closed: make([]bool, n), drops: drops,
	}
}

// add queues pkt for to, sent from src (if valid).
func (s *sender) add(pkt []byte, to netip.AddrPort, src netip.Addr) {
	if s.gso && s.n > 0 {
		l := s.n - 1
		if s.b.Addr[l] == to && s.b.Src[l] == src && !s.closed[l] && s.segs[l] < maxGSOSegments &&
			len(pkt) <= s.segSize[l] && s.b.N[l]+len(pkt) <= maxGSOBytes {
			copy(s.b.Bufs[l][s.b.N[l]:cap(s.b.Bufs[l])], pkt)
			s.b.N[l] += len(pkt)
			s.segs[l]++
			s.b.Seg[l] = s.segSize[l]
			s.closed[l] = len(pkt) < s.segSize[l]
			return
		}
	}
	if s.n == len(s.b.Bufs) {
		s.flush()
	}
	i := s.n
	if len(pkt) > cap(s.b.Bufs[i]) {
		s.drops.Add(DropTooBig)
		return
	}
	s.b.N[i] = copy(s.b.Bufs[i][:cap(s.b.Bufs[i])], pkt)
	s.b.Addr[i], s.b.Src[i], s.b.Seg[i] = to, src, 0
	s.segs[i], s.segSize[i], s.closed[i] = 1, len(pkt), false
	s.n++
}

// flush sends what was queued.
func (s *sender) flush() {
	if s.n == 0 {
		return
	}
	if s.conn == nil {
		// A socket this end does not have (a home agent without IPv6).
		s.drops.Add(DropSendError)
		s.n = 0
		return
	}
	_, err := s.conn.Send(s.b, s.n)
	if err != nil {
		var errno syscall.Errno
		if s.gso && errors.As(err, &errno) && (errno == syscall.EIO || errno == syscall.EINVAL) && s.anyGSO() {
			// A kernel or device without UDP GSO: from now on, one packet
			// per message. The messages that failed are lost.
			s.gso = false
		}
		s.drops.Add(DropSendError)
	}
	s.n = 0
}

func (s *sender) anyGSO() bool {
	for i := 0; i < s.n; i++ {
		if s.b.Seg[i] > 0 {
			return true
		}
	}
	return false
}
