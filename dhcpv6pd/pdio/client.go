package pdio

import (
	"context"
	crand "crypto/rand"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"nemod/dhcpv6pd"
)

// Tunnel is how the router's co-located relay reaches its home agent: the
// data plane takes whole IPv6 packets from the home address into the
// reverse tunnel (RFC 3963 §5.2).
type Tunnel interface {
	Send(pkt []byte) error
}

// ClientCounters count what a ClientRunner did.
type ClientCounters struct {
	Delivered   uint64 `json:"delivered"`
	NotForUs    uint64 `json:"not_for_us"` // packets handed over that were not UDP to [HoA]:547
	Dropped     uint64 `json:"dropped"`    // refused by the client state machine
	QueueFull   uint64 `json:"queue_full"`
	SendErrors  uint64 `json:"send_errors"`
	StoreErrors uint64 `json:"store_errors"`
}

// ClientRunner runs the router's dhcpv6pd.Client: it sends through the
// tunnel from [HoA]:547 to [HA]:547, takes the answers the data plane hands
// it, keeps the lease file and reports the prefix events.
type ClientRunner struct {
	client   *dhcpv6pd.Client
	hoa      netip.AddrPort
	tunnel   Tunnel
	store    *FileStore
	onEvents func([]dhcpv6pd.Event)
	now      func() time.Time

	in      chan []byte
	release chan chan struct{}
	mu      sync.Mutex
	c       ClientCounters
	st      ClientStatus
}

// ClientStatus is the client as it was after the last thing it did, for
// the daemon's status: the client itself belongs to the Run goroutine.
type ClientStatus struct {
	State    dhcpv6pd.State
	Lease    *dhcpv6pd.Lease
	Counters dhcpv6pd.ClientCounters
}

// Status returns the client's last state.
func (r *ClientRunner) Status() ClientStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st
	st.Lease = st.Lease.Clone()
	return st
}

// snapshot records the client's state; on the Run goroutine (or before
// Run starts).
func (r *ClientRunner) snapshot() {
	st := ClientStatus{State: r.client.State(), Lease: r.client.Lease(), Counters: r.client.ClientCounters}
	r.mu.Lock()
	r.st = st
	r.mu.Unlock()
}

// ClientOptions are the parts of a ClientRunner besides the client.
type ClientOptions struct {
	Tunnel   Tunnel
	Store    *FileStore             // the lease file; nil: none kept
	OnEvents func([]dhcpv6pd.Event) // on the Run goroutine; nil: ignored
	Now      func() time.Time       // nil: time.Now
	Rand     *rand.Rand             // nil: seeded from the runtime's random source
}

// NewClientRunner reads the lease file (its DUID, or a new DUID-UUID from
// random bytes when there is no file: the DUID is then kept for good) and
// makes the client for cfg, whose DUID it fills in.
func NewClientRunner(cfg dhcpv6pd.ClientConfig, opts ClientOptions) (*ClientRunner, error) {
	r := opts.Rand
	if r == nil {
		r = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	var stored *dhcpv6pd.Lease
	if opts.Store != nil {
		b, err := opts.Store.Load()
		if err != nil {
			return nil, err
		}
		if b != nil {
			if stored, err = dhcpv6pd.DecodeLease(b); err != nil {
				return nil, err
			}
		}
	}
	if stored != nil {
		cfg.DUID, cfg.IAID = stored.DUID, stored.IAID
	} else if cfg.DUID == nil {
		var u [16]byte
		crand.Read(u[:])
		cfg.DUID = dhcpv6pd.NewDUIDUUID(u)
	}
	c, err := dhcpv6pd.NewClient(cfg, stored, r)
	if err != nil {
		return nil, err
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	cr := &ClientRunner{client: c, hoa: netip.AddrPortFrom(cfg.HoA, dhcpv6pd.ServerPort), tunnel: opts.Tunnel,
		store: opts.Store, onEvents: opts.OnEvents, now: now, in: make(chan []byte, 16), release: make(chan chan struct{})}
	if stored == nil {
		// Keep the DUID from the first start on.
		cr.persist()
	}
	cr.snapshot()
	return cr, nil
}

// Counters returns a copy of the counters.
func (r *ClientRunner) Counters() ClientCounters {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.c
}

func (r *ClientRunner) count(f func(c *ClientCounters)) {
	r.mu.Lock()
	f(&r.c)
	r.mu.Unlock()
}

// Deliver hands over an IPv6 packet that came out of the tunnel; the
// runner keeps it if it is UDP to [HoA]:547. Safe from any goroutine;
// never blocks.
func (r *ClientRunner) Deliver(pkt []byte) bool {
	_, dst, _, err := dhcpv6pd.ParseIPv6UDP(pkt)
	if err != nil || dst != r.hoa {
		r.count(func(c *ClientCounters) { c.NotForUs++ })
		return false
	}
	select {
	case r.in <- append([]byte(nil), pkt...):
		return true
	default:
		r.count(func(c *ClientCounters) { c.QueueFull++ })
		return false
	}
}

// Release asks the Run loop to give the prefixes back (see
// dhcpv6pd.Client.Release) and waits until it has sent the Release.
func (r *ClientRunner) Release(ctx context.Context) {
	done := make(chan struct{})
	select {
	case r.release <- done:
		<-done
	case <-ctx.Done():
	}
}

// Run starts the client (call it once the first binding is registered)
// and serves until ctx ends. The lease stays on file for the next start.
func (r *ClientRunner) Run(ctx context.Context) error {
	r.apply(r.client.Start(r.now()))
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := time.Minute
		if next := r.client.Next(); !next.IsZero() {
			wait = min(max(next.Sub(r.now()), 0), time.Minute)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case pkt := <-r.in:
			src, _, payload, _ := dhcpv6pd.ParseIPv6UDP(pkt)
			out, err := r.client.Receive(payload, src, r.now())
			if err != nil {
				r.count(func(c *ClientCounters) { c.Dropped++ })
			} else {
				r.count(func(c *ClientCounters) { c.Delivered++ })
			}
			r.apply(out)
		case done := <-r.release:
			r.apply(r.client.Release(r.now()))
			close(done)
		case <-timer.C:
			r.apply(r.client.Tick(r.now()))
		}
	}
}

func (r *ClientRunner) apply(out dhcpv6pd.Output) {
	for _, d := range out.Send {
		if err := r.tunnel.Send(dhcpv6pd.IPv6UDP(r.hoa, d.To, 64, d.Data)); err != nil {
			r.count(func(c *ClientCounters) { c.SendErrors++ })
		}
	}
	if out.StateChanged {
		r.persist()
	}
	r.snapshot()
	if len(out.Events) > 0 && r.onEvents != nil {
		r.onEvents(out.Events)
	}
}

func (r *ClientRunner) persist() {
	if r.store == nil {
		return
	}
	if _, err := r.store.Save(dhcpv6pd.EncodeLease(r.client.Lease())); err != nil {
		r.count(func(c *ClientCounters) { c.StoreErrors++ })
	}
}
