package ifmon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	defaultRecvBuffer = 1 << 20
	// chanDepth lets the library's reader goroutines run a little ahead of
	// the tracker; the socket buffer does the real absorbing.
	chanDepth = 64
	// After this many resyncs failing in a row the monitor gives up and
	// reports through Err: by then the namespace or the process is broken.
	maxResyncFailures = 8
	// minRetry is also the least time between two resyncs, so that dumps
	// interrupted again and again under heavy churn cannot make a storm.
	minRetry = 50 * time.Millisecond
	maxRetry = 5 * time.Second
	// A dump the kernel flags as interrupted is tried again this often
	// before its (still usable) result is taken as is.
	dumpRetries = 3
)

// Monitor is the netlink shell around a Tracker.
//
// The library opens one socket per subscription, so links, addresses and
// routes arrive on three sockets and the kernel's order between them is
// lost. The Tracker tolerates most of that (an address before its device);
// a route read out of order against its device's admin state makes the
// Monitor re-list. One race remains: a route added just before the last
// IPv4 address of its device is removed, but read after, lingers (the
// kernel flushes it silently) until the next resync.
type Monitor struct {
	opts Options
	ns   netns.NsHandle // owned: closed when the loop ends

	subs    *subscription // the loop goroutine's alone
	lastGen uint64

	mu   sync.Mutex
	tr   *Tracker // changed only by the loop goroutine, under mu
	snap []Link
	err  error

	changes  chan struct{}
	resyncCh chan struct{} // an error callback asks for a resync
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	resyncs atomic.Uint64
	lastErr atomic.Pointer[error] // the last non-fatal error, for diagnosis
}

// Start watches devices in the network namespace of the calling goroutine,
// or in opts.NetNS. When it returns, Snapshot already holds what the kernel
// listed (with any "up" still in its hold-down). ctx ends the monitor like
// Close does.
func Start(ctx context.Context, devices []string, opts Options) (*Monitor, error) {
	if len(devices) == 0 {
		return nil, errors.New("ifmon: no devices to watch")
	}
	for i, d := range devices {
		if d == "" || len(d) >= unix.IFNAMSIZ {
			return nil, fmt.Errorf("ifmon: bad device name %q", d)
		}
		if slices.Contains(devices[:i], d) {
			return nil, fmt.Errorf("ifmon: device %q listed twice", d)
		}
	}
	ns, err := openNS(opts.NetNS)
	if err != nil {
		return nil, err
	}
	m := &Monitor{
		opts:     opts,
		ns:       ns,
		tr:       NewTracker(devices, opts),
		changes:  make(chan struct{}, 1),
		resyncCh: make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	// The first sync runs here so that a broken set-up fails Start instead
	// of a goroutine later.
	if err := m.resync(); err != nil {
		ns.Close()
		return nil, err
	}
	go m.loop(ctx)
	return m, nil
}

func openNS(path string) (netns.NsHandle, error) {
	if path != "" {
		ns, err := netns.GetFromPath(path)
		if err != nil {
			return netns.None(), fmt.Errorf("ifmon: open netns %s: %w", path, err)
		}
		return ns, nil
	}
	// Resyncs run on other threads later; pin down now which namespace the
	// caller meant, since the caller's thread may be one it moved.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ns, err := netns.Get()
	if err != nil {
		return netns.None(), fmt.Errorf("ifmon: current netns: %w", err)
	}
	return ns, nil
}

// Changes has capacity 1; a value means "state changed, read Snapshot".
// Sends never block the monitor: changes coalesce until read.
func (m *Monitor) Changes() <-chan struct{} { return m.changes }

// Done is closed once the monitor has stopped and released everything.
func (m *Monitor) Done() <-chan struct{} { return m.done }

// Snapshot returns the reported state, in the order of the devices given to
// Start.
func (m *Monitor) Snapshot() []Link {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Link(nil), m.snap...)
}

// Close stops the goroutines and closes the netlink sockets and the
// namespace handle, and waits for that. It is idempotent.
func (m *Monitor) Close() error {
	m.stopOnce.Do(func() { close(m.stop) })
	<-m.done
	return nil
}

// Err reports why the monitor stopped when Close did not stop it: a fatal
// error, or the context's. Nil while it runs.
func (m *Monitor) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// Resyncs counts the full re-lists done since Start (the first included).
func (m *Monitor) Resyncs() uint64 { return m.resyncs.Load() }

// LastError is the last error the netlink side reported that did not stop
// the monitor (an overrun, a message that failed to parse), or nil.
func (m *Monitor) LastError() error {
	if p := m.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (m *Monitor) loop(ctx context.Context) {
	defer close(m.done)
	defer m.ns.Close()
	defer m.dropSubs()

	hold := time.NewTimer(time.Hour)
	hold.Stop()
	defer hold.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	armHold := func() {
		if d := m.tr.NextDeadline(); d.IsZero() {
			hold.Stop()
		} else {
			hold.Reset(time.Until(d))
		}
	}
	armHold()

	failures := 0
	backoff := minRetry
	needResync := false
	lastResync := time.Now() // Start's
	for {
		var links <-chan netlink.LinkUpdate
		var addrs <-chan netlink.AddrUpdate
		var routes <-chan netlink.RouteUpdate
		if s := m.subs; s != nil {
			links, addrs, routes = s.links, s.addrs, s.routes
		}
		select {
		case <-m.stop:
			return
		case <-ctx.Done():
			m.fail(context.Cause(ctx))
			return
		// A closed channel means its reader ended: an overrun (ENOBUFS)
		// or a socket error. The other two readers go as well, at once:
		// a closed channel would make this select spin.
		case u, ok := <-links:
			if !ok {
				needResync = m.dropSubs()
			} else {
				m.step(func(now time.Time) { m.tr.Link(linkMsg(u), now) })
			}
		case u, ok := <-addrs:
			if !ok {
				needResync = m.dropSubs()
			} else if a, valid := addrMsg(u); valid {
				m.step(func(now time.Time) { m.tr.Addr(a, now) })
			}
		case u, ok := <-routes:
			if !ok {
				needResync = m.dropSubs()
			} else {
				m.step(func(now time.Time) {
					for _, r := range routeMsgs(u.Route, u.Type == unix.RTM_DELROUTE, u.NlFlags&unix.NLM_F_REPLACE != 0) {
						m.tr.Route(r, now)
					}
					needResync = m.tr.Doubtful()
				})
			}
		case <-m.resyncCh:
			needResync = true
		case <-hold.C:
			m.step(nil)
		case <-retry.C:
			needResync = true
		}
		if needResync {
			needResync = false
			if wait := minRetry - time.Since(lastResync); wait > 0 {
				if failures == 0 { // else the backoff is armed already
					retry.Reset(wait)
				}
				armHold()
				continue
			}
			lastResync = time.Now()
			if err := m.resync(); err != nil {
				m.noteErr(err)
				failures++
				if failures >= maxResyncFailures {
					m.fail(fmt.Errorf("ifmon: giving up after %d failed resyncs: %w", failures, err))
					return
				}
				retry.Reset(backoff)
				backoff = min(2*backoff, maxRetry)
			} else {
				failures, backoff = 0, minRetry
			}
		}
		armHold()
	}
}

// dropSubs stops the current subscriptions, if any, and reports true so a
// caller can ask for a resync in the same breath.
func (m *Monitor) dropSubs() bool {
	if m.subs != nil {
		m.subs.stop()
		m.subs = nil
	}
	return true
}

// fail records why the monitor stops by itself and withdraws every device,
// so a router still reading Snapshot falls back to "nothing usable" rather
// than trusting state nobody keeps up to date.
func (m *Monitor) fail(err error) {
	m.mu.Lock()
	m.err = err
	m.snap = make([]Link, len(m.tr.devices))
	for i, d := range m.tr.devices {
		m.snap[i] = Link{Name: d}
	}
	m.mu.Unlock()
	m.notify()
}

func (m *Monitor) noteErr(err error) { m.lastErr.Store(&err) }

// step applies f to the tracker and publishes the result, under mu, so a
// Snapshot never sees half a message (and a test can stall the loop by
// holding mu).
func (m *Monitor) step(f func(now time.Time)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if f != nil {
		f(now)
	}
	m.publishLocked(now)
}

func (m *Monitor) publishLocked(now time.Time) {
	links := m.tr.Current(now)
	if g := m.tr.Generation(); g != m.lastGen {
		m.lastGen = g
		m.snap = links
		m.notify()
	}
}

func (m *Monitor) notify() {
	select {
	case m.changes <- struct{}{}:
	default:
	}
}

// resync drops the subscriptions, subscribes anew and re-lists. The
// subscriptions come first so nothing that happens during the list is
// missed; their own ListExisting dump, ordered with their events, then
// corrects whatever the list raced with. The list is fed to the tracker
// right after Reset, before anyone can read a state, so an overrun does not
// show the router a loss.
func (m *Monitor) resync() error {
	m.resyncs.Add(1)
	m.dropSubs()
	s, err := m.subscribe()
	if err != nil {
		return err
	}
	l, err := m.list()
	if err != nil {
		s.stop()
		return err
	}
	m.subs = s
	m.step(func(now time.Time) {
		m.tr.Reset(now)
		for _, x := range l.links {
			m.tr.Link(x, now)
		}
		for _, x := range l.addrs {
			m.tr.Addr(x, now)
		}
		for _, x := range l.routes {
			m.tr.Route(x, now)
		}
		// Separate dumps are not one snapshot either; what they disagree
		// on, the subscriptions' events settle without another re-list.
		m.tr.Doubtful()
	})
	return nil
}

// subscription is one generation of the three netlink subscriptions.
type subscription struct {
	done    chan struct{}
	links   chan netlink.LinkUpdate
	addrs   chan netlink.AddrUpdate
	routes  chan netlink.RouteUpdate
	started [3]bool // the library closes only the channels it started readers for
}

func (m *Monitor) subscribe() (*subscription, error) {
	s := &subscription{
		done:   make(chan struct{}),
		links:  make(chan netlink.LinkUpdate, chanDepth),
		addrs:  make(chan netlink.AddrUpdate, chanDepth),
		routes: make(chan netlink.RouteUpdate, chanDepth),
	}
	cb := func(err error) {
		select {
		case <-s.done:
			// The socket was closed on purpose; its reader says so.
			return
		default:
		}
		m.noteErr(err)
		// An interrupted dump may have skipped entries that did not
		// change; only a new dump finds them. A failed receive closes
		// the channel, which the loop sees by itself.
		if errors.Is(err, netlink.ErrDumpInterrupted) {
			select {
			case m.resyncCh <- struct{}{}:
			default:
			}
		}
	}
	buf := m.opts.RecvBuffer
	if buf <= 0 {
		buf = defaultRecvBuffer
	}
	ns := m.ns
	// Not ReceiveBufferForceSize: when SO_RCVBUFFORCE is refused the
	// library returns without closing the socket it made.
	err := netlink.LinkSubscribeWithOptions(s.links, s.done, netlink.LinkSubscribeOptions{
		Namespace: &ns, ErrorCallback: cb, ListExisting: true, ReceiveBufferSize: buf,
	})
	s.started[0] = err == nil
	if err == nil {
		err = netlink.AddrSubscribeWithOptions(s.addrs, s.done, netlink.AddrSubscribeOptions{
			Namespace: &ns, ErrorCallback: cb, ListExisting: true, ReceiveBufferSize: buf,
		})
		s.started[1] = err == nil
	}
	if err == nil {
		err = netlink.RouteSubscribeWithOptions(s.routes, s.done, netlink.RouteSubscribeOptions{
			Namespace: &ns, ErrorCallback: cb, ListExisting: true, ReceiveBufferSize: buf,
		})
		s.started[2] = err == nil
	}
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("ifmon: subscribe: %w", err)
	}
	return s, nil
}

// stop closes the sockets and waits for the library's readers to end. They
// may be blocked handing over an update, so the channels are drained until
// the library closes them.
func (s *subscription) stop() {
	close(s.done)
	if s.started[0] {
		for range s.links {
		}
	}
	if s.started[1] {
		for range s.addrs {
		}
	}
	if s.started[2] {
		for range s.routes {
		}
	}
}

type listing struct {
	links  []LinkMsg
	addrs  []AddrMsg
	routes []RouteMsg
}

func (m *Monitor) list() (listing, error) {
	var l listing
	h, err := netlink.NewHandleAt(m.ns, unix.NETLINK_ROUTE)
	if err != nil {
		return l, fmt.Errorf("ifmon: netlink handle: %w", err)
	}
	defer h.Close()

	err = retryDump(func() error {
		links, err := h.LinkList()
		l.links = l.links[:0]
		for _, k := range links {
			a := k.Attrs()
			l.links = append(l.links, LinkMsg{Index: a.Index, Name: a.Name, Flags: a.RawFlags, OperState: uint8(a.OperState), MTU: a.MTU})
		}
		return err
	})
	if err != nil {
		return l, fmt.Errorf("ifmon: list links: %w", err)
	}
	err = retryDump(func() error {
		addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
		l.addrs = l.addrs[:0]
		for _, a := range addrs {
			if x, ok := addrFrom(a.LinkIndex, a.IPNet, a.Flags, a.Scope, a.PreferedLft, a.ValidLft, false); ok {
				l.addrs = append(l.addrs, x)
			}
		}
		return err
	})
	if err != nil {
		return l, fmt.Errorf("ifmon: list addresses: %w", err)
	}
	err = retryDump(func() error {
		l.routes = l.routes[:0]
		// An empty filter keeps the main table only, and the library drops
		// cloned routes. (A nil filter panics in v1.3.1.)
		return h.RouteListFilteredIter(netlink.FAMILY_ALL, &netlink.Route{}, 0, func(r netlink.Route) bool {
			l.routes = append(l.routes, routeMsgs(r, false, false)...)
			return true
		})
	})
	if err != nil {
		return l, fmt.Errorf("ifmon: list routes: %w", err)
	}
	return l, nil
}

// retryDump runs a dump again while the kernel flags it interrupted; past
// the retries the partial result is kept, and the subscriptions' own dump
// and events fill in.
func retryDump(f func() error) error {
	var err error
	for range dumpRetries {
		if err = f(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return err
		}
	}
	return nil
}

func linkMsg(u netlink.LinkUpdate) LinkMsg {
	a := u.Attrs()
	return LinkMsg{
		Index:     int(u.Index),
		Name:      a.Name,
		Flags:     u.Flags,
		OperState: uint8(a.OperState),
		MTU:       a.MTU,
		Deleted:   u.Header.Type == unix.RTM_DELLINK,
	}
}

func addrMsg(u netlink.AddrUpdate) (AddrMsg, bool) {
	n := u.LinkAddress
	return addrFrom(u.LinkIndex, &n, u.Flags, u.Scope, u.PreferedLft, u.ValidLft, !u.NewAddr)
}

func addrFrom(index int, n *net.IPNet, flags, scope, pref, valid int, deleted bool) (AddrMsg, bool) {
	if n == nil {
		return AddrMsg{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return AddrMsg{}, false
	}
	a = a.Unmap()
	bits, _ := n.Mask.Size()
	if a.Is4() && bits > 32 {
		bits -= 96
	}
	return AddrMsg{
		Index: index, Prefix: netip.PrefixFrom(a, bits), Flags: flags, Scope: scope,
		PreferredLft: pref, ValidLft: valid, Deleted: deleted,
	}, true
}

func ipAddr(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

// routeMsgs turns a route into one message per next hop: an ECMP default
// spans devices, and each device needs to know it has a share.
func routeMsgs(r netlink.Route, deleted, replace bool) []RouteMsg {
	if r.Flags&unix.RTM_F_CLONED != 0 {
		// Cached exceptions (PMTU, redirects) are not configured routes.
		return nil
	}
	var dst netip.Prefix
	if r.Dst != nil {
		bits, _ := r.Dst.Mask.Size()
		a := ipAddr(r.Dst.IP)
		if a.Is4() && bits > 32 {
			bits -= 96
		}
		dst = netip.PrefixFrom(a, bits)
	}
	base := RouteMsg{
		Dst: dst, Table: r.Table, Family: r.Family, Deleted: deleted,
		Priority: r.Priority, Type: r.Type, Replace: replace,
	}
	if len(r.MultiPath) == 0 {
		base.Index, base.Gateway = r.LinkIndex, ipAddr(r.Gw)
		return []RouteMsg{base}
	}
	out := make([]RouteMsg, 0, len(r.MultiPath))
	for i, nh := range r.MultiPath {
		x := base
		x.Index, x.Gateway = nh.LinkIndex, ipAddr(nh.Gw)
		// Replacing is done by the first next hop; the others join it.
		x.Replace = replace && i == 0
		out = append(out, x)
	}
	return out
}
