package ubusd

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"

	"nemod/ubus"
)

// MaxQueue bounds what a client may have waiting to be written to it, in
// bytes; beyond it messages to that client are dropped, as ubusd drops
// them.
const MaxQueue = 32 << 20

// Server runs a Broker on sockets: one goroutine reads each client, one
// writes to it, and the broker is called under one lock, so its answers go
// out in its order.
type Server struct {
	// Identify tells who is on a connection. Nil uses the peer
	// credentials of unix sockets (as ubusd does), and Root for other
	// connections.
	Identify func(net.Conn) (Identity, error)
	// Logf, if set, hears of refused clients and dropped messages.
	Logf func(format string, args ...any)

	mu        sync.Mutex
	b         *Broker
	conns     map[uint32]*sconn
	listeners []net.Listener
	closed    bool
	wg        sync.WaitGroup
}

type sconn struct {
	rwc  io.ReadWriteCloser
	id   uint32
	mu   sync.Mutex
	cond *sync.Cond
	q    [][]byte
	size int
	gone bool
}

// NewServer makes a server around a fresh broker (ids nil: random ones).
func NewServer(ids IDSource) *Server {
	return &Server{b: New(ids), conns: map[uint32]*sconn{}}
}

// Listen makes the unix socket ubusd listens on: an old socket file is
// removed, and the socket is left writable for everyone (ubusd's umask
// 0111), since ubusd's own checks, not file modes, decide who may do what.
func Listen(path string) (net.Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o666); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Serve accepts clients until the listener fails or the server is closed.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return net.ErrClosed
	}
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			return err
		}
		ident, err := s.identify(c)
		if err != nil {
			s.logf("ubusd: refusing a client: %v", err)
			c.Close()
			continue
		}
		s.ServeConn(c, ident)
	}
}

func (s *Server) identify(c net.Conn) (Identity, error) {
	if s.Identify != nil {
		return s.Identify(c)
	}
	if uc, ok := c.(*net.UnixConn); ok {
		return peerIdentity(uc)
	}
	return Root, nil
}

// ServeConn serves one connection that is already open, for a client with
// the given identity; it returns at once.
func (s *Server) ServeConn(rwc io.ReadWriteCloser, ident Identity) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		rwc.Close()
		return
	}
	id, out := s.b.Connect(ident)
	c := &sconn{rwc: rwc, id: id}
	c.cond = sync.NewCond(&c.mu)
	s.conns[id] = c
	s.route(out)
	s.wg.Add(2)
	s.mu.Unlock()
	go s.writeLoop(c)
	go s.readLoop(c)
}

func (s *Server) readLoop(c *sconn) {
	defer s.wg.Done()
	for {
		f, err := ubus.ReadFrame(c.rwc)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.logf("ubusd: client %#08x: %v", c.id, err)
			}
			break
		}
		s.mu.Lock()
		s.route(s.b.Handle(c.id, f))
		s.mu.Unlock()
	}
	s.mu.Lock()
	if s.conns[c.id] == c {
		delete(s.conns, c.id)
		s.route(s.b.Disconnect(c.id))
	}
	s.mu.Unlock()
	c.stop()
}

// route queues the broker's output; s.mu is held.
func (s *Server) route(out []Output) {
	for _, o := range out {
		c := s.conns[o.Client]
		if c == nil {
			continue
		}
		c.mu.Lock()
		if c.size+len(o.Frame) > MaxQueue {
			c.mu.Unlock()
			s.logf("ubusd: client %#08x does not read; dropped a message", c.id)
			continue
		}
		c.q = append(c.q, o.Frame)
		c.size += len(o.Frame)
		c.cond.Signal()
		c.mu.Unlock()
	}
}

func (s *Server) writeLoop(c *sconn) {
	defer s.wg.Done()
	for {
		c.mu.Lock()
		for len(c.q) == 0 && !c.gone {
			c.cond.Wait()
		}
		if c.gone {
			c.mu.Unlock()
			return
		}
		f := c.q[0]
		c.q[0] = nil
		c.q = c.q[1:]
		c.size -= len(f)
		c.mu.Unlock()
		if _, err := c.rwc.Write(f); err != nil {
			c.rwc.Close() // the reader then sees the end and cleans up
			return
		}
	}
}

func (c *sconn) stop() {
	c.mu.Lock()
	c.gone = true
	c.cond.Signal()
	c.mu.Unlock()
	c.rwc.Close()
}

// Stats returns the broker's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Stats()
}

// Close stops listening and drops every client, as a stopped ubusd does.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ls := s.listeners
	conns := make([]*sconn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	var err error
	for _, l := range ls {
		if e := l.Close(); e != nil && err == nil {
			err = e
		}
	}
	for _, c := range conns {
		c.rwc.Close()
	}
	s.wg.Wait()
	return err
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}
