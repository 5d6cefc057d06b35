package dhcp4

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"

	"nemod/internal/atomicfile"
)

// Server is a LAN's DHCPv4 server: Leases on a UDP socket, the leases kept
// in a file.
type Server struct {
	leases *Leases
	srv    *server4.Server
	file   string
	log    *slog.Logger
	saveMu sync.Mutex
	done   chan struct{}
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
	var opts []server4.ServerOpt
	if conn != nil {
		opts = append(opts, server4.WithConn(conn))
	}
	srv, err := server4.NewServer(ifname, &net.UDPAddr{Port: dhcpv4.ServerPort}, s.handle, opts...)
	if err != nil {
		return nil, err
	}
	s.srv = srv
	return s, nil
}

// Serve answers until Close.
func (s *Server) Serve() {
	defer close(s.done)
	s.srv.Serve()
}

// Leases is the server's state.
func (s *Server) Leases() *Leases { return s.leases }

// SetConfig changes what the server hands out.
func (s *Server) SetConfig(cfg Config) {
	s.leases.SetConfig(cfg)
	s.save()
}

// Close stops the server.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}

// handle answers one message, on a goroutine of its own.
func (s *Server) handle(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
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
		to = &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
	}
	if !m.GatewayIPAddr.IsUnspecified() && m.GatewayIPAddr != nil {
		to = &net.UDPAddr{IP: m.GatewayIPAddr, Port: dhcpv4.ServerPort} // through a relay
	}
	if _, err := conn.WriteTo(r.ToBytes(), to); err != nil {
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
