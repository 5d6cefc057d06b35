package dhcp4

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"nemod/internal/atomicfile"
	"nemod/internal/sock"
)

// Server is a LAN's DHCPv4 server: Leases on a UDP socket, the leases kept
// in a file.
type Server struct {
	leases *Leases
	conn   net.PacketConn
	file   string
	log    *slog.Logger
	saveMu sync.Mutex
	done   chan struct{}
	closed atomic.Bool
	// malformed counts the datagrams Parse refused.
	malformed atomic.Uint64
	// Now is the clock (time.Now unless a test sets it before Serve).
	Now func() time.Time
}

// Listen opens the server's socket on interface ifname, port 67 (with
// conn set, it serves on that socket instead: a test's), loading the
// leases file when there is one.
func Listen(ifname string, cfg Config, leaseFile string, conn net.PacketConn, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{file: leaseFile, log: log, done: make(chan struct{}), Now: time.Now}
	var saved []Lease
	if leaseFile != "" {
		if b, err := os.ReadFile(leaseFile); err == nil {
			if saved, err = ParseLeases(b); err != nil {
				log.Warn("DHCPv4 lease file unreadable, starting without it", "file", leaseFile, "err", err)
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			log.Warn("DHCPv4 lease file", "file", leaseFile, "err", err)
		}
	}
	s.leases = NewLeases(cfg, saved)
	if conn == nil {
		var err error
		if conn, err = listen(ifname); err != nil {
			return nil, err
		}
	}
	s.conn = conn
	return s, nil
}

// listen opens UDP port 67 on the interface only (a router has other
// LANs and uplinks), allowed to broadcast: a host without an address yet
// hears its answer only at 255.255.255.255 (RFC 2131 §4.1).
func listen(ifname string) (net.PacketConn, error) {
	reuse := func(fd int) error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1) }
	// SO_BROADCAST: sock sets it on every datagram socket.
	return sock.ListenUDP("udp4", netip.AddrPortFrom(netip.IPv4Unspecified(), 67), reuse, sock.BindToDevice(ifname))
}

// Serve answers until Close, one message at a time.
func (s *Server) Serve() {
	defer close(s.done)
	buf := make([]byte, 65536)
	for {
		n, peer, err := s.conn.ReadFrom(buf)
		if err != nil {
			if s.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		m, err := Parse(buf[:n])
		if err != nil {
			s.malformed.Add(1)
			continue
		}
		s.handle(peer, m)
	}
}

// Leases is the server's state.
func (s *Server) Leases() *Leases { return s.leases }

// Malformed is the number of datagrams that were not DHCPv4 messages.
func (s *Server) Malformed() uint64 { return s.malformed.Load() }

// SetConfig changes what the server hands out.
func (s *Server) SetConfig(cfg Config) {
	s.leases.SetConfig(cfg)
	s.save()
}

// Close stops the server.
func (s *Server) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	err := s.conn.Close()
	<-s.done
	return err
}

// handle answers one message.
func (s *Server) handle(peer net.Addr, m *Message) {
	r := s.leases.Handle(m, s.Now())
	// The lease is on disk before the host hears of it (RFC 2131 §4.3.1:
	// the server commits the binding before the DHCPACK).
	s.save()
	if r == nil {
		return
	}
	to := peer
	if u, ok := peer.(*net.UDPAddr); ok && (u.IP.Equal(net.IPv4bcast) || u.IP.IsUnspecified()) {
		// A host without an address yet: the answer is broadcast to the
		// client port (RFC 2131 §4.1), which every client accepts.
		to = &net.UDPAddr{IP: net.IPv4bcast, Port: ClientPort}
	}
	if g := fromMsg(m.GIAddr); g.IsValid() {
		to = net.UDPAddrFromAddrPort(netip.AddrPortFrom(g, ServerPort)) // through a relay
	}
	if _, err := s.conn.WriteTo(r.Append(make([]byte, 0, bootpMin)), to); err != nil {
		s.log.Warn("DHCPv4 answer", "to", to, "err", err)
	}
}

// save writes the lease file when the leases changed: a temporary file
// renamed over it, so that a crash never leaves half a file.
func (s *Server) save() {
	if s.file == "" {
		return
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	b, changed := s.leases.Save()
	if !changed {
		return
	}
	if err := atomicfile.Write(s.file, b); err != nil {
		s.log.Warn("saving DHCPv4 leases", "file", s.file, "err", err)
	}
}
