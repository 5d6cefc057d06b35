package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"nemod/lab"
)

const (
	streamPort = 9000 // the measured stream, on the uplink the fault hits
	dupPort    = 9100 // the duplicated flow
	tcpPort    = 9200 // the TCP transfer
	payloadLen = 160  // a 20 ms G.711 voice frame's worth
	interval   = time.Millisecond
	tcpRate    = 20e6 / 8 // bytes a second: 20 Mbit/s
)

var (
	lanHost = lab.LANHost
	cnHost  = netip.MustParseAddr("2001:db8:c::1")
	magic   = [2]byte{'n', 'f'}
	// The family the traffic uses (ipv4.go switches it per fault).
	udpNet, tcpNet = "udp6", "tcp6"
)

// stream is one direction of one UDP flow: numbered datagrams, one every
// interval, from a socket at one end to the socket at the other.
type stream struct {
	name string
	id   uint16
	port int
	up   bool // LAN host -> correspondent
	dup  bool
	out  *net.UDPConn
	to   netip.AddrPort
	// Offsets from the epoch in ns. sent is written by the sender only,
	// recv (0: never arrived) by the receiver only, and both are read
	// after the two have stopped.
	sent     []int64
	recv     []int64
	copies   int // datagrams that arrived more than once
	foreign  int // datagrams that were not this stream's
	sendErrs int
}

// traffic runs the four UDP streams (9000 and 9100, each way) and the TCP
// transfer, all from this process with sockets in the lab's namespaces.
type traffic struct {
	epoch   time.Time
	streams []*stream
	conns   []*net.UDPConn
	tcp     *transfer
	quit    chan struct{}
	sender  sync.WaitGroup
	readers sync.WaitGroup
	once    sync.Once
}

func (t *traffic) now() time.Duration { return time.Since(t.epoch) }

// startTraffic opens a socket on port 9000 and one on 9100 at each end and
// starts sending. Each socket sends one direction and receives the other,
// so a flow's two directions have the same ports, as the policy rules see
// them from the LAN: CN -> LAN datagrams leave from port 9000 (or 9100),
// which the home agent's downlink classification matches against the
// rule's dest_port.
func startTraffic(l *lab.Lab) (*traffic, error) {
	t := &traffic{epoch: time.Now(), quit: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			t.stop()
		}
	}()
	var id uint16
	for _, port := range []int{streamPort, dupPort} {
		var lanConn, cnConn *net.UDPConn
		var err error
		open := func(role string, a netip.Addr, c **net.UDPConn) error {
			return l.InNS(role, func() error {
				*c, err = net.ListenUDP(udpNet, net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, uint16(port))))
				return err
			})
		}
		if err := open(lab.LAN, lanHost, &lanConn); err != nil {
			return nil, err
		}
		t.conns = append(t.conns, lanConn)
		if err := open(lab.CN, cnHost, &cnConn); err != nil {
			return nil, err
		}
		t.conns = append(t.conns, cnConn)
		for _, c := range []*net.UDPConn{lanConn, cnConn} {
			// Room for a few hundred ms of datagrams: a reader this process
			// did not schedule in time must not show as a loss in nemod.
			_ = c.SetReadBuffer(1 << 20)
			_ = c.SetWriteBuffer(1 << 20)
		}
		kind := "stream"
		if port == dupPort {
			kind = "dup"
		}
		up := &stream{name: fmt.Sprintf("%s %d LAN->CN", kind, port), id: id, port: port, up: true, dup: port == dupPort,
			out: lanConn, to: netip.AddrPortFrom(cnHost, uint16(port))}
		down := &stream{name: fmt.Sprintf("%s %d CN->LAN", kind, port), id: id + 1, port: port, dup: port == dupPort,
			out: cnConn, to: netip.AddrPortFrom(lanHost, uint16(port))}
		id += 2
		t.streams = append(t.streams, up, down)
		t.readers.Add(2)
		go t.receive(cnConn, up)
		go t.receive(lanConn, down)
	}
	tcp, err := startTransfer(l, t)
	if err != nil {
		return nil, err
	}
	t.tcp = tcp
	t.sender.Add(1)
	go t.send()
	ok = true
	return t, nil
}

// send keeps every stream at one datagram per interval. On each tick it
// sends as many as are due by the time elapsed, so a late wake-up (two
// cores shared with the daemons) shows as a short burst, not a lower rate.
func (t *traffic) send() {
	defer t.sender.Done()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	start := time.Now()
	buf := make([]byte, payloadLen)
	var seq uint64
	for {
		due := uint64(time.Since(start)/interval) + 1
		for ; seq < due; seq++ {
			for _, s := range t.streams {
				fillPayload(buf, s.id, seq)
				s.sent = append(s.sent, int64(t.now()))
				if _, err := s.out.WriteToUDPAddrPort(buf, s.to); err != nil {
					s.sendErrs++
				}
			}
		}
		select {
		case <-t.quit:
			return
		case <-tick.C:
		}
	}
}

// fillPayload writes datagram seq of stream id: magic, id, seq, zeros.
func fillPayload(buf []byte, id uint16, seq uint64) {
	clear(buf)
	copy(buf, magic[:])
	binary.BigEndian.PutUint16(buf[2:], id)
	binary.BigEndian.PutUint64(buf[4:], seq)
}

// zeroChecksum reports whether datagram seq's UDP checksum computes to
// zero, which a sender must put on the wire as 0xffff (RFC 768; RFC 8200
// forbids a zero UDP checksum over IPv6): a path that writes 0x0000
// instead loses that datagram at the receiver, one in 65,536 or so,
// whatever the fault.
func (s *stream) zeroChecksum(seq uint64) bool {
	if lanHost.Is4() {
		return false // over IPv4 a zero UDP checksum is allowed: none
	}
	src, dst := lanHost, cnHost
	if !s.up {
		src, dst = cnHost, lanHost
	}
	buf := make([]byte, payloadLen)
	fillPayload(buf, s.id, seq)
	n := uint32(8 + payloadLen)
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
	}
	a, b := src.As16(), dst.As16()
	add(a[:])
	add(b[:])
	sum += n>>16 + n&0xffff + 17
	sum += 2*uint32(s.port) + n // both ports, the length; checksum field 0
	add(buf)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum) == 0
}

func (t *traffic) receive(c *net.UDPConn, s *stream) {
	defer t.readers.Done()
	buf := make([]byte, 2048)
	for {
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		at := int64(t.now())
		if n != payloadLen || buf[0] != magic[0] || buf[1] != magic[1] || binary.BigEndian.Uint16(buf[2:]) != s.id {
			s.foreign++
			continue
		}
		seq := binary.BigEndian.Uint64(buf[4:])
		if seq > 1<<26 {
			s.foreign++
			continue
		}
		for uint64(len(s.recv)) <= seq {
			s.recv = append(s.recv, make([]int64, max(4096, len(s.recv)))...)
		}
		if s.recv[seq] != 0 {
			s.copies++
			continue
		}
		s.recv[seq] = at
	}
}

// stop ends the traffic and waits until every goroutine is done, so that
// the streams' records can be read. Idempotent.
func (t *traffic) stop() {
	t.once.Do(func() {
		close(t.quit)
		t.sender.Wait()
		if t.tcp != nil {
			t.tcp.stop()
		}
		// Datagrams still in flight (or queued behind a slow path) are
		// counted as arrived, not lost.
		time.Sleep(300 * time.Millisecond)
		for _, c := range t.conns {
			c.Close()
		}
		t.readers.Wait()
	})
}

// transfer is a TCP transfer from the LAN host to the correspondent, paced
// at tcpRate like `iperf3 -b 20M`: fast enough to keep segments in flight
// at every moment of a fault, slow enough not to crowd out the datagram
// streams. If the connection fails it is noted and dialled again, so that
// one failure does not hide what later trials would show.
type transfer struct {
	t      *traffic
	ln     net.Listener
	dialer func(context.Context) (net.Conn, error)
	quit   chan struct{}
	wg     sync.WaitGroup

	mu       sync.Mutex
	reads    []tcpRead
	failures []tcpEvent
	conns    []net.Conn
	stopping bool
}

type tcpRead struct {
	at int64
	n  int32
}

type tcpEvent struct {
	at   time.Duration
	what string
}

func startTransfer(l *lab.Lab, t *traffic) (*transfer, error) {
	x := &transfer{t: t, quit: make(chan struct{})}
	dst := netip.AddrPortFrom(cnHost, tcpPort)
	err := l.InNS(lab.CN, func() (err error) {
		x.ln, err = net.Listen(tcpNet, dst.String())
		return err
	})
	if err != nil {
		return nil, err
	}
	x.dialer = func(ctx context.Context) (c net.Conn, err error) {
		var d net.Dialer
		// The socket is made on the locked thread, in the LAN host's
		// namespace; the connect that follows needs no thread of its own.
		nerr := l.InNS(lab.LAN, func() error {
			c, err = d.DialContext(ctx, tcpNet, dst.String())
			return nil
		})
		if nerr != nil {
			return nil, nerr
		}
		return c, err
	}
	x.wg.Add(2)
	go x.accept()
	go x.run()
	return x, nil
}

func (x *transfer) fail(what string, err error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.stopping {
		return
	}
	x.failures = append(x.failures, tcpEvent{x.t.now(), fmt.Sprintf("%s: %v", what, err)})
}

func (x *transfer) track(c net.Conn) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.stopping {
		c.Close()
		return false
	}
	x.conns = append(x.conns, c)
	return true
}

func (x *transfer) accept() {
	defer x.wg.Done()
	for {
		c, err := x.ln.Accept()
		if err != nil {
			return
		}
		if !x.track(c) {
			return
		}
		x.wg.Add(1)
		go x.receive(c)
	}
}

func (x *transfer) receive(c net.Conn) {
	defer x.wg.Done()
	defer c.Close()
	buf := make([]byte, 1<<16)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			at := int64(x.t.now())
			x.mu.Lock()
			x.reads = append(x.reads, tcpRead{at, int32(n)})
			x.mu.Unlock()
		}
		if err != nil {
			x.fail("correspondent's read", err)
			return
		}
	}
}

// run dials and sends until stopped, dialling again after a failure.
func (x *transfer) run() {
	defer x.wg.Done()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		c, err := x.dialer(ctx)
		cancel()
		if err != nil {
			x.fail("LAN host's dial", err)
		} else if x.track(c) {
			if err := x.pace(c); err != nil {
				x.fail("LAN host's write", err)
			}
			c.Close()
		}
		select {
		case <-x.quit:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// pace writes at tcpRate with a token bucket. The bucket holds at most
// 50 ms worth: after a stall the sender does not dump the backlog into the
// path at once, which would measure its queue instead of nemod.
func (x *transfer) pace(c net.Conn) error {
	const burst = tcpRate / 20
	chunk := make([]byte, 16<<10)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	last := time.Now()
	tokens := 0.0
	for {
		select {
		case <-x.quit:
			return nil
		case <-tick.C:
		}
		now := time.Now()
		tokens = min(tokens+now.Sub(last).Seconds()*tcpRate, burst)
		last = now
		for tokens >= float64(len(chunk)) {
			if _, err := c.Write(chunk); err != nil {
				select {
				case <-x.quit:
					return nil
				default:
					return err
				}
			}
			tokens -= float64(len(chunk))
		}
	}
}

func (x *transfer) stop() {
	x.mu.Lock()
	x.stopping = true
	conns := x.conns
	x.mu.Unlock()
	close(x.quit)
	x.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	x.wg.Wait()
}

// state returns the records for analysis; only after stop.
func (x *transfer) state() ([]tcpRead, []tcpEvent) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.reads, x.failures
}

// received returns the bytes the correspondent read so far, for the
// sanity check before the first trial.
func (x *transfer) received() int64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	var n int64
	for _, r := range x.reads {
		n += int64(r.n)
	}
	return n
}
