// Package pdio is the thin I/O shell around package dhcpv6pd: the UDP
// socket of the home agent's delegating router or relay, the loop that
// feeds a state machine from it, and the lease file store.
package pdio

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"nemod/dhcpv6pd"
)

// Conn is the datagram socket a Service needs; *net.UDPConn fits through
// UDP, and tests may pass anything else.
type Conn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, to netip.AddrPort) (int, error)
	LocalAddr() net.Addr
	Close() error
}

// ListenUDP binds the home agent's DHCPv6 socket: addr is its address and
// port 547 in production (root or CAP_NET_BIND_SERVICE), any port in tests.
// Binding to the address, not to ::, keeps the socket off the other
// addresses of the machine and makes replies leave from the address the
// routers sent to.
func ListenUDP(addr netip.AddrPort) (*net.UDPConn, error) {
	return net.ListenUDP("udp6", net.UDPAddrFromAddrPort(addr))
}

// Machine is what a Service drives: *dhcpv6pd.Server and
// *dhcpv6pd.HARelay.
type Machine interface {
	Handle(b []byte, from netip.AddrPort, now time.Time) (dhcpv6pd.Output, error)
	Tick(now time.Time) dhcpv6pd.Output
	Next() time.Time
}

// Counters count what a Service did.
type Counters struct {
	Received  uint64 `json:"received"`
	Dropped   uint64 `json:"dropped"` // refused by the machine
	Sent      uint64 `json:"sent"`
	SendError uint64 `json:"send_errors"`
}

// Service runs a Machine on a Conn: one goroutine reads, the Run loop owns
// the machine, so the machine needs no lock. Output (events, state to
// persist) goes to OnOutput on the Run goroutine.
type Service struct {
	Conn     Conn
	Machine  Machine
	Now      func() time.Time                     // nil: time.Now
	OnOutput func(dhcpv6pd.Output)                // nil: ignored
	OnDrop   func(err error, from netip.AddrPort) // nil: ignored; for the daemon's log

	mu sync.Mutex
	c  Counters
}

// Counters returns a copy of the counters.
func (s *Service) Counters() Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

type datagram struct {
	b    []byte
	from netip.AddrPort
}

// Run serves until ctx ends or the socket fails; it closes the socket.
func (s *Service) Run(ctx context.Context) error {
	in := make(chan datagram, 64)
	rerr := make(chan error, 1)
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := s.Conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				rerr <- err
				return
			}
			// A zone on a link-local source would never match a router's
			// home address.
			from = netip.AddrPortFrom(from.Addr().WithZone(""), from.Port())
			select {
			case in <- datagram{append([]byte(nil), buf[:n]...), from}:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer s.Conn.Close()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Reset(s.wait())
		select {
		case <-ctx.Done():
			return nil
		case err := <-rerr:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case d := <-in:
			s.mu.Lock()
			s.c.Received++
			s.mu.Unlock()
			out, err := s.Machine.Handle(d.b, d.from, s.now())
			if err != nil {
				s.mu.Lock()
				s.c.Dropped++
				s.mu.Unlock()
				if s.OnDrop != nil {
					s.OnDrop(err, d.from)
				}
			}
			s.emit(out)
		case <-timer.C:
			s.emit(s.Machine.Tick(s.now()))
		}
	}
}

// wait is how long until the machine's next timer, at most a minute (a
// clock step must not leave it asleep for a day).
func (s *Service) wait() time.Duration {
	next := s.Machine.Next()
	if next.IsZero() {
		return time.Minute
	}
	return min(max(time.Until(next), 0), time.Minute)
}

func (s *Service) emit(out dhcpv6pd.Output) {
	for _, d := range out.Send {
		_, err := s.Conn.WriteToUDPAddrPort(d.Data, d.To)
		s.mu.Lock()
		if err != nil {
			s.c.SendError++
		} else {
			s.c.Sent++
		}
		s.mu.Unlock()
	}
	if s.OnOutput != nil && (len(out.Events) > 0 || out.StateChanged) {
		s.OnOutput(out)
	}
}

// FileStore keeps one small file (a lease, the delegating router's
// state). It writes only when the content changes, because on a router the
// file lives on flash, and atomically (a temporary file in the same folder,
// synced, then renamed over), so a power cut leaves the old file or the
// new one, never half of one.
type FileStore struct {
	Path   string
	last   []byte
	known  bool
	Writes int // how many times the file was written
}

// Load reads the file; a missing file is no error and returns nil.
func (f *FileStore) Load() ([]byte, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		f.last, f.known = nil, true
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f.last, f.known = b, true
	return b, nil
}

// Save writes b unless the file already holds exactly b, and says whether
// it wrote.
func (f *FileStore) Save(b []byte) (bool, error) {
	if !f.known {
		if _, err := f.Load(); err != nil {
			return false, err
		}
	}
	if f.last != nil && string(f.last) == string(b) {
		return false, nil
	}
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.Path)+".*")
	if err != nil {
		return false, err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(b); err != nil {
		return false, err
	}
	if err := tmp.Sync(); err != nil {
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		return false, err
	}
	ok = true
	// The rename itself must reach the disk too.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	f.last = append([]byte(nil), b...)
	f.Writes++
	return true, nil
}
