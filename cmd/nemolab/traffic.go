package main

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"nemod/lab"
)

// stream is what an application in the LAN sends: a numbered datagram
// every interval from the LAN host to a port of the correspondent, which
// echoes it back. The demo measures on it what a user would notice: the
// longest silence and the datagrams lost across an uplink failure.
type stream struct {
	lan, echo *net.UDPConn
	start     time.Time
	sent      atomic.Uint64
	stop      chan struct{}

	mu       sync.Mutex
	answered map[uint64]bool
	arrivals []time.Duration // of the answers, since start, in order
	rtts     []time.Duration
	sources  map[netip.Addr]bool // as the correspondent saw them
}

// mark is a point in a stream: the next sequence number and the time.
type mark struct {
	seq uint64
	at  time.Duration
}

func startStream(l *lab.Lab, port uint16, interval time.Duration) (*stream, error) {
	s := &stream{start: time.Now(), stop: make(chan struct{}), answered: map[uint64]bool{}, sources: map[netip.Addr]bool{}}
	err := l.InNS(lab.CN, func() (err error) {
		s.echo, err = net.ListenUDP("udp6", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lab.CN6, port)))
		return err
	})
	if err != nil {
		return nil, err
	}
	err = l.InNS(lab.LAN, func() (err error) {
		s.lan, err = net.ListenUDP("udp6", &net.UDPAddr{IP: lab.LANHost.AsSlice()})
		return err
	})
	if err != nil {
		s.echo.Close()
		return nil, err
	}
	go s.answer()
	go s.receive()
	go s.send(netip.AddrPortFrom(lab.CN6, port), interval)
	return s, nil
}

func (s *stream) answer() {
	buf := make([]byte, 64)
	for {
		n, from, err := s.echo.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.sources[from.Addr()] = true
		s.mu.Unlock()
		s.echo.WriteToUDPAddrPort(buf[:n], from)
	}
}

func (s *stream) receive() {
	buf := make([]byte, 64)
	for {
		n, err := s.lan.Read(buf)
		if err != nil {
			return
		}
		if n < 16 {
			continue
		}
		now := time.Since(s.start)
		seq := binary.BigEndian.Uint64(buf)
		sentAt := time.Duration(binary.BigEndian.Uint64(buf[8:]))
		s.mu.Lock()
		if !s.answered[seq] {
			s.answered[seq] = true
			s.arrivals = append(s.arrivals, now)
			s.rtts = append(s.rtts, now-sentAt)
		}
		s.mu.Unlock()
	}
}

func (s *stream) send(dst netip.AddrPort, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var b [16]byte
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		seq := s.sent.Load()
		binary.BigEndian.PutUint64(b[:], seq)
		binary.BigEndian.PutUint64(b[8:], uint64(time.Since(s.start)))
		s.lan.WriteToUDPAddrPort(b[:], dst)
		s.sent.Add(1)
	}
}

func (s *stream) mark() mark { return mark{s.sent.Load(), time.Since(s.start)} }

// between reports, for what was sent from a to b, the longest time
// without an answer and how many were never answered. Call it a moment
// after b, so that the last answers have arrived.
func (s *stream) between(a, b mark) (gap time.Duration, lost int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for seq := a.seq; seq < b.seq; seq++ {
		if !s.answered[seq] {
			lost++
		}
	}
	// Arrivals are appended in time order by the one reader.
	i := sort.Search(len(s.arrivals), func(i int) bool { return s.arrivals[i] > a.at })
	prev := a.at
	if i > 0 {
		prev = s.arrivals[i-1]
	}
	for ; i < len(s.arrivals) && s.arrivals[i] <= b.at; i++ {
		gap = max(gap, s.arrivals[i]-prev)
		prev = s.arrivals[i]
	}
	return max(gap, b.at-prev), lost
}

// medianRTT is the median round trip over every answer so far.
func (s *stream) medianRTT() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.rtts) == 0 {
		return 0
	}
	r := slices.Clone(s.rtts)
	slices.Sort(r)
	return r[len(r)/2]
}

// seenFrom lists the source addresses the correspondent saw.
func (s *stream) seenFrom() []netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []netip.Addr
	for a := range s.sources {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

func (s *stream) close() {
	close(s.stop)
	s.lan.Close()
	s.echo.Close()
}

// bulk is a TCP transfer from the LAN host to the correspondent, paced so
// that it runs for the whole demo: a session that must not be lost.
type bulk struct {
	ln      net.Listener
	conn    net.Conn
	carried atomic.Int64 // octets the correspondent received
	stop    chan struct{}

	mu   sync.Mutex
	errs []error
}

func startBulk(l *lab.Lab, port uint16) (*bulk, error) {
	b := &bulk{stop: make(chan struct{})}
	dst := netip.AddrPortFrom(lab.CN6, port)
	err := l.InNS(lab.CN, func() (err error) {
		b.ln, err = net.Listen("tcp6", dst.String())
		return err
	})
	if err != nil {
		return nil, err
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := b.ln.Accept()
		if err != nil {
			b.fail(err)
			close(accepted)
			return
		}
		accepted <- c
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			b.carried.Add(int64(n))
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
					b.fail(err)
				}
				c.Close()
				return
			}
		}
	}()
	err = l.InNS(lab.LAN, func() (err error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: lab.LANHost.AsSlice()}, Timeout: 5 * time.Second}
		b.conn, err = d.Dial("tcp6", dst.String())
		return err
	})
	if err != nil {
		b.ln.Close()
		return nil, err
	}
	if _, ok := <-accepted; !ok {
		b.close()
		return nil, errors.New("the correspondent did not accept the connection")
	}
	go b.write()
	return b, nil
}

// write sends 16 KiB every 10 ms, about 13 Mbit/s.
func (b *bulk) write() {
	chunk := make([]byte, 16<<10)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		if _, err := b.conn.Write(chunk); err != nil {
			b.fail(err)
			return
		}
	}
}

func (b *bulk) fail(err error) {
	b.mu.Lock()
	b.errs = append(b.errs, err)
	b.mu.Unlock()
}

// err is the first error either end saw, nil while the session lives.
func (b *bulk) err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errs) == 0 {
		return nil
	}
	return b.errs[0]
}

func (b *bulk) close() {
	close(b.stop)
	b.conn.Close()
	b.ln.Close()
}
