package aaa

import (
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Client.
type Config struct {
	// Servers are the authentication servers' addresses, in order of
	// preference: requests go to the first live one.
	Servers []netip.AddrPort
	// AcctServers are the accounting servers; nil means each of Servers
	// with its port plus one (1812 → 1813).
	AcctServers []netip.AddrPort
	Secret      []byte // shared with every server
	NAS         NAS
	// Timeout is how long one try waits for its answer (default 1 s).
	Timeout time.Duration
	// Retries is how many times a request is sent again to the same server
	// before the next is tried (0: none).
	Retries int
	// DeadTime is how long a server that stopped answering is left alone
	// before it is probed with Status-Server (default 30 s).
	DeadTime time.Duration
	// MaxPending bounds the Access-Requests queued or out (default 4096);
	// MaxPendingAccounting the Accounting-Requests (default 4096). Past
	// them, Submit and Account refuse at once with ErrQueueFull.
	MaxPending           int
	MaxPendingAccounting int
	// SocketsPerServer bounds the UDP sockets to one server (default 32):
	// each carries at most 128 requests at once (half its identifiers),
	// so that 4096 can be out to one server.
	SocketsPerServer int
	// AllowMissingMessageAuthenticator accepts Access-Accept and
	// Access-Reject without Message-Authenticator (one that is present is
	// still checked). Only for servers that cannot be made to send it: see
	// the package documentation.
	AllowMissingMessageAuthenticator bool
	// Rand is the source of Request Authenticators (default crypto/rand).
	Rand io.Reader
}

// ErrQueueFull is returned by Submit and Account when as many requests as
// the client holds are already queued or out. The home agent drops the
// Binding Update; the router sends it again.
var ErrQueueFull = errors.New("aaa: RADIUS queue full")

// Client sends Access- and Accounting-Requests for the home agent's event
// loop without ever blocking it: Submit and Account queue a request or
// refuse it at once, and every queued request's Result arrives on the
// channel Results returns. One goroutine owns the sockets and the engine;
// each socket has a reader goroutine.
type Client struct {
	cfg     Config
	eng     *engine
	submit  chan *job
	rx      chan datagram
	results chan Result
	stats   chan chan Stats
	done    chan struct{}
	exited  chan struct{}
	wg      sync.WaitGroup

	mu         sync.RWMutex // held for reading while submitting; Close takes it to refuse the rest
	closed     bool
	outAccess  atomic.Int64
	outAcct    atomic.Int64
	refused    atomic.Uint64
	sendErrors uint64 // the loop's own

	conns [][]*net.UDPConn // by endpoint, by port; the loop's
}

type datagram struct {
	ep, port int
	b        []byte
}

// ServerStats is one server as the client sees it.
type ServerStats struct {
	Addr netip.AddrPort `json:"addr"`
	Kind string         `json:"kind"` // "access" or "accounting"
	Dead bool           `json:"dead"`
	EndpointStats
}

// Stats is a snapshot of the client's counters.
type Stats struct {
	Servers    []ServerStats `json:"servers"`
	Refused    uint64        `json:"refused"`     // submissions refused: queue full
	SendErrors uint64        `json:"send_errors"` // datagrams the kernel would not send
	Waiting    int           `json:"waiting"`     // requests waiting for an identifier
}

// NewClient checks cfg and starts a client. It opens sockets as requests
// need them, so it succeeds even while no server is reachable.
func NewClient(cfg Config) (*Client, error) {
	if len(cfg.Servers) == 0 || len(cfg.Servers) > maxServers {
		return nil, errors.New("aaa: 1.." + itoa(maxServers) + " servers")
	}
	if len(cfg.Secret) == 0 {
		return nil, errSecret
	}
	if err := cfg.NAS.check(); err != nil {
		return nil, err
	}
	if cfg.AcctServers == nil {
		for _, s := range cfg.Servers {
			if s.Port() == 65535 {
				return nil, errors.New("aaa: server " + s.String() + " leaves no port for accounting; set AcctServers")
			}
			cfg.AcctServers = append(cfg.AcctServers, netip.AddrPortFrom(s.Addr(), s.Port()+1))
		}
	}
	if len(cfg.AcctServers) > maxServers {
		return nil, errors.New("aaa: 1.." + itoa(maxServers) + " accounting servers")
	}
	for _, s := range append(append([]netip.AddrPort(nil), cfg.Servers...), cfg.AcctServers...) {
		if !s.IsValid() || s.Port() == 0 || s.Addr().IsUnspecified() || s.Addr().IsMulticast() {
			return nil, errors.New("aaa: " + s.String() + " is not a server address")
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	cfg.Retries = max(cfg.Retries, 0)
	if cfg.DeadTime <= 0 {
		cfg.DeadTime = 30 * time.Second
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 4096
	}
	if cfg.MaxPendingAccounting <= 0 {
		cfg.MaxPendingAccounting = 4096
	}
	if cfg.SocketsPerServer <= 0 {
		cfg.SocketsPerServer = 32
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	cfg.Secret = append([]byte(nil), cfg.Secret...)
	c := &Client{
		cfg: cfg,
		eng: newEngine(engineConfig{
			auth: cfg.Servers, acct: cfg.AcctServers, secret: cfg.Secret, nas: cfg.NAS,
			timeout: cfg.Timeout, tries: 1 + cfg.Retries, deadTime: cfg.DeadTime,
			maxPorts: cfg.SocketsPerServer, allowMissingMA: cfg.AllowMissingMessageAuthenticator,
			rand: cfg.Rand,
		}),
		submit:  make(chan *job, cfg.MaxPending+cfg.MaxPendingAccounting),
		rx:      make(chan datagram, 1024),
		results: make(chan Result, cfg.MaxPending+cfg.MaxPendingAccounting),
		stats:   make(chan chan Stats),
		done:    make(chan struct{}),
		exited:  make(chan struct{}),
	}
	c.conns = make([][]*net.UDPConn, len(c.eng.eps))
	go c.run()
	return c, nil
}

// Results returns the channel every result arrives on. It is closed after
// Close.
func (c *Client) Results() <-chan Result { return c.results }

// Submit queues an Access-Request for r, or refuses it at once: with
// ErrQueueFull when the queue is full, ErrClosed after Close, or an error
// saying what is wrong with r.
func (c *Client) Submit(r AccessRequest) error {
	if err := r.check(); err != nil {
		return err
	}
	return c.enqueue(&job{kind: KindAccess, access: r}, &c.outAccess, c.cfg.MaxPending)
}

// Account queues an Accounting-Request for r, or refuses it as Submit
// does. Its result says whether a server acknowledged it.
func (c *Client) Account(r AccountingRecord) error {
	if err := r.check(); err != nil {
		return err
	}
	r.MNPs = append([]netip.Prefix(nil), r.MNPs...)
	r.Class = append([][]byte(nil), r.Class...)
	return c.enqueue(&job{kind: KindAccounting, acct: r}, &c.outAcct, c.cfg.MaxPendingAccounting)
}

func (c *Client) enqueue(j *job, out *atomic.Int64, limit int) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return ErrClosed
	}
	if out.Add(1) > int64(limit) {
		out.Add(-1)
		c.refused.Add(1)
		return ErrQueueFull
	}
	// Never blocks: the channel holds both limits, and a job leaves the
	// count only once its result is handed over.
	c.submit <- j
	return nil
}

// Stats returns a snapshot of the counters.
func (c *Client) Stats() Stats {
	ch := make(chan Stats, 1)
	select {
	case c.stats <- ch:
		return <-ch
	case <-c.exited:
		return Stats{Refused: c.refused.Load()}
	}
}

// Close stops the client. Requests still out end with ErrClosed, as far as
// the results channel has room, and the channel is closed.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	close(c.done)
	<-c.exited
	c.wg.Wait()
	return nil
}

func (c *Client) run() {
	defer close(c.exited)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var out []Result
	for {
		var resCh chan Result
		var first Result
		if len(out) > 0 {
			resCh, first = c.results, out[0]
		}
		select {
		case j := <-c.submit:
			c.eng.submit(j, time.Now())
		case d := <-c.rx:
			c.eng.receive(d.ep, d.port, d.b, time.Now())
		case <-timer.C:
			c.eng.tick(time.Now())
		case resCh <- first:
			// The channel was full (a slow reader) and has room again.
			out[0] = Result{}
			out = out[1:]
			c.delivered(first.Kind)
		case ch := <-c.stats:
			ch <- c.snapshot()
		case <-c.done:
			c.shutdown(out)
			return
		}
		c.flush()
		out = c.deliver(append(out, c.eng.takeResults()...))
		if at := c.eng.nextWake(); at.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(time.Until(at))
		}
	}
}

// deliver hands over what results the channel has room for. Only this
// goroutine sends on it, so with room a send cannot block; and the
// request's place in its queue is given back before the send, so that a
// reader who submits again as soon as it has a result never meets
// ErrQueueFull for a place it has just freed.
func (c *Client) deliver(out []Result) []Result {
	for len(out) > 0 && len(c.results) < cap(c.results) {
		c.delivered(out[0].Kind)
		c.results <- out[0]
		out[0] = Result{}
		out = out[1:]
	}
	return out
}

func (c *Client) delivered(k Kind) {
	if k == KindAccounting {
		c.outAcct.Add(-1)
	} else {
		c.outAccess.Add(-1)
	}
}

// flush sends what the engine decided to, opening sockets on first use.
// A send that fails is left to its timeout: to the engine it is a lost
// datagram like any other.
func (c *Client) flush() {
	for _, s := range c.eng.takeSends() {
		conn := c.conn(s.ep, s.port)
		if conn == nil {
			c.sendErrors++
			continue
		}
		if _, err := conn.Write(s.b); err != nil {
			c.sendErrors++
		}
	}
}

func (c *Client) conn(ep, port int) *net.UDPConn {
	for len(c.conns[ep]) <= port {
		c.conns[ep] = append(c.conns[ep], nil)
	}
	if conn := c.conns[ep][port]; conn != nil {
		return conn
	}
	// A connected socket: the kernel passes up only datagrams from the
	// server's own address and port.
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(c.eng.eps[ep].addr))
	if err != nil {
		return nil
	}
	// Room for a burst of answers to every request the socket carries
	// (the kernel caps it at net.core.rmem_max).
	conn.SetReadBuffer(1 << 20)
	c.conns[ep][port] = conn
	c.wg.Add(1)
	go c.read(conn, ep, port)
	return conn
}

func (c *Client) read(conn *net.UDPConn, ep, port int) {
	defer c.wg.Done()
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// ICMP port unreachable and the like: the server is not
			// there; its requests will time out.
			select {
			case <-c.done:
				return
			default:
				continue
			}
		}
		d := datagram{ep: ep, port: port, b: append([]byte(nil), buf[:n]...)}
		select {
		case c.rx <- d:
		case <-c.done:
			return
		}
	}
}

func (c *Client) snapshot() Stats {
	s := Stats{Refused: c.refused.Load(), SendErrors: c.sendErrors, Waiting: len(c.eng.waiting)}
	for _, ep := range c.eng.eps {
		s.Servers = append(s.Servers, ServerStats{Addr: ep.addr, Kind: ep.kind.String(), Dead: ep.dead, EndpointStats: ep.EndpointStats})
	}
	return s
}

func (c *Client) shutdown(out []Result) {
	now := time.Now()
	for {
		select {
		case j := <-c.submit:
			j.submitted = now
			c.eng.finish(j, Result{Err: ErrClosed}, now)
			continue
		default:
		}
		break
	}
	c.eng.failAll(ErrClosed, now)
	out = append(out, c.eng.takeResults()...)
	for _, r := range out {
		select {
		case c.results <- r:
		default:
		}
	}
	close(c.results)
	for _, ps := range c.conns {
		for _, conn := range ps {
			if conn != nil {
				conn.Close()
			}
		}
	}
}
