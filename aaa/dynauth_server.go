package aaa

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"layeh.com/radius"
)

// DefaultDynAuthPort is the Disconnect-Request port (RFC 5176 §3).
const DefaultDynAuthPort = 3799

// DynAuthConfig configures a DynAuthServer.
type DynAuthConfig struct {
	// Listen is the address and port to listen on (port 0: any free one;
	// the configuration's default is DefaultDynAuthPort).
	Listen netip.AddrPort
	// Clients are the addresses Disconnect-Requests may come from (the
	// RADIUS servers, as a rule); datagrams from others are dropped.
	Clients []netip.Addr
	DynAuthPolicy
	// MaxPending bounds the revocations handed to the event loop and not
	// answered yet (default 256); past it a request is refused at once
	// with Error-Cause 506 (resources unavailable).
	MaxPending int
}

// Revocation asks the home agent to end a mobile router's session: revoke
// its bindings (RFC 5846) and stop its accounting. The event loop answers
// it with exactly one of Ack (done) or Nak (with why not, e.g.
// CauseSessionNotFound); either returns at once.
type Revocation struct {
	Selector
	From netip.AddrPort
	d    *Disconnect
	srv  *DynAuthServer
	key  dupKey
	done atomic.Bool
}

// Ack answers Disconnect-ACK: the session was found and ended.
func (r *Revocation) Ack() { r.answer(ackCode(r.d.Code), 0) }

// Nak answers Disconnect-NAK with cause.
func (r *Revocation) Nak(cause ErrorCause) { r.answer(nakCode(r.d.Code), cause) }

func (r *Revocation) answer(code radius.Code, cause ErrorCause) {
	if r.done.Swap(true) {
		return
	}
	r.srv.pending.Add(-1)
	b, err := encodeDynAuthReply(r.d, code, cause, r.srv.cfg.Secret)
	if err != nil {
		return
	}
	r.srv.reply(r.key, r.From, b, code)
}

// DynAuthStats count what the dynamic authorization server did.
type DynAuthStats struct {
	Received    uint64 `json:"received"`
	Discarded   uint64 `json:"discarded"`   // not authentic, malformed, replayed, or from a stranger
	Duplicates  uint64 `json:"duplicates"`  // retransmissions, answered from memory
	Revocations uint64 `json:"revocations"` // handed to the event loop
	ACKs        uint64 `json:"acks"`
	NAKs        uint64 `json:"naks"`
}

// DynAuthServer receives Disconnect-Requests (RFC 5176) and hands each
// authentic one to the event loop as a Revocation.
type DynAuthServer struct {
	cfg     DynAuthConfig
	conn    *net.UDPConn
	events  chan *Revocation
	out     chan outgoing
	pending atomic.Int64
	wg      sync.WaitGroup
	done    chan struct{}

	mu    sync.Mutex
	dups  map[dupKey]*dupEntry
	stats DynAuthStats
}

type dupKey struct {
	from netip.AddrPort
	id   byte
}

// dupEntry remembers a request for the time a client retransmits it, so
// that a retransmission is answered the same way and not acted on twice.
type dupEntry struct {
	auth    [16]byte
	reply   []byte // nil while the event loop has not answered
	expires time.Time
}

type outgoing struct {
	to netip.AddrPort
	b  []byte
}

// dupLifetime is how long a request is remembered: longer than a client
// goes on retransmitting.
const dupLifetime = 30 * time.Second

// ListenDynAuth opens the listening socket and starts serving.
func ListenDynAuth(cfg DynAuthConfig) (*DynAuthServer, error) {
	if len(cfg.Secret) == 0 {
		return nil, errSecret
	}
	if !cfg.Listen.Addr().IsValid() {
		return nil, errors.New("aaa: no address to listen on for Disconnect-Requests")
	}
	if len(cfg.Clients) == 0 {
		return nil, errors.New("aaa: no dynamic authorization clients: whom to accept Disconnect-Requests from")
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 256
	}
	cfg.Secret = append([]byte(nil), cfg.Secret...)
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(cfg.Listen))
	if err != nil {
		return nil, err
	}
	s := &DynAuthServer{
		cfg:    cfg,
		conn:   conn,
		events: make(chan *Revocation, cfg.MaxPending),
		out:    make(chan outgoing, cfg.MaxPending+64),
		done:   make(chan struct{}),
		dups:   make(map[dupKey]*dupEntry),
	}
	s.wg.Add(2)
	go s.read()
	go s.write()
	return s, nil
}

// Events returns the channel revocations arrive on; it is closed by Close.
func (s *DynAuthServer) Events() <-chan *Revocation { return s.events }

// Addr returns the address the server listens on.
func (s *DynAuthServer) Addr() netip.AddrPort { return s.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// Stats returns a snapshot of the counters.
func (s *DynAuthServer) Stats() DynAuthStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Close stops the server.
func (s *DynAuthServer) Close() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	close(s.done)
	err := s.conn.Close()
	s.wg.Wait()
	close(s.events) // its only sender, the reader, is gone
	return err
}

func (s *DynAuthServer) allowed(a netip.Addr) bool {
	a = a.Unmap()
	for _, c := range s.cfg.Clients {
		if c.Unmap() == a {
			return true
		}
	}
	return false
}

func (s *DynAuthServer) read() {
	defer s.wg.Done()
	buf := make([]byte, radius.MaxPacketLength)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s.handle(buf[:n], from, time.Now())
	}
}

func (s *DynAuthServer) handle(pkt []byte, from netip.AddrPort, now time.Time) {
	s.mu.Lock()
	s.stats.Received++
	s.mu.Unlock()
	if !s.allowed(from.Addr()) {
		s.count(func(st *DynAuthStats) { st.Discarded++ })
		return
	}
	d, err := ParseDisconnect(pkt, &s.cfg.DynAuthPolicy, now)
	if errors.Is(err, ErrDiscard) {
		s.count(func(st *DynAuthStats) { st.Discarded++ })
		return
	}
	key := dupKey{from, d.Identifier}
	s.mu.Lock()
	for k, e := range s.dups {
		if !now.Before(e.expires) {
			delete(s.dups, k)
		}
	}
	if e := s.dups[key]; e != nil && e.auth == d.Authenticator {
		s.stats.Duplicates++
		reply := e.reply
		s.mu.Unlock()
		if reply != nil {
			s.send(from, reply)
		}
		return
	}
	s.dups[key] = &dupEntry{auth: d.Authenticator, expires: now.Add(dupLifetime)}
	s.mu.Unlock()

	var nak *NakError
	if errors.As(err, &nak) {
		if b, err := encodeDynAuthReply(d, nakCode(d.Code), nak.Cause, s.cfg.Secret); err == nil {
			s.reply(key, from, b, nakCode(d.Code))
		}
		return
	}
	r := &Revocation{Selector: d.Selector, From: from, d: d, srv: s, key: key}
	if s.pending.Add(1) > int64(s.cfg.MaxPending) {
		r.Nak(CauseResourcesUnavailable) // gives back the count
		return
	}
	select {
	case s.events <- r:
		s.count(func(st *DynAuthStats) { st.Revocations++ })
	default:
		r.Nak(CauseResourcesUnavailable)
	}
}

func (s *DynAuthServer) count(f func(*DynAuthStats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// reply remembers the answer for retransmissions and sends it.
func (s *DynAuthServer) reply(key dupKey, to netip.AddrPort, b []byte, code radius.Code) {
	s.mu.Lock()
	if e := s.dups[key]; e != nil {
		e.reply = b
	}
	if code == radius.CodeDisconnectACK || code == radius.CodeCoAACK {
		s.stats.ACKs++
	} else {
		s.stats.NAKs++
	}
	s.mu.Unlock()
	s.send(to, b)
}

// send queues a datagram for the writer, never blocking the caller (the
// event loop, for Ack and Nak); when the queue is full the client's
// retransmission gets the answer from memory.
func (s *DynAuthServer) send(to netip.AddrPort, b []byte) {
	select {
	case s.out <- outgoing{to, b}:
	default:
	}
}

func (s *DynAuthServer) write() {
	defer s.wg.Done()
	for {
		select {
		case o := <-s.out:
			s.conn.WriteToUDPAddrPort(o.b, o.to)
		case <-s.done:
			return
		}
	}
}
