package ubus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"nemod/internal/sock"
)

// DefaultSocket is where OpenWrt's ubusd listens.
const DefaultSocket = "/var/run/ubus/ubus.sock"

// Defaults for the zero fields of Options.
const (
	DefaultTimeout    = 30 * time.Second // the ubus tool's default too
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
)

// ErrClosed is returned by a client after Close.
var ErrClosed = errors.New("ubus: client closed")

// Options configure a Client. The zero value connects to DefaultSocket
// once and gives up when the connection goes.
type Options struct {
	// Path of ubusd's socket; empty means DefaultSocket.
	Path string
	// Dial opens the transport to ubusd. Nil dials the unix socket at
	// Path. Tests give net.Pipe ends or a socketpair.
	Dial func(ctx context.Context) (io.ReadWriteCloser, error)
	// Timeout bounds a request whose context has no deadline; zero
	// means DefaultTimeout.
	Timeout time.Duration
	// Reconnect keeps the client across ubusd restarts: it dials again
	// with exponential backoff between MinBackoff and MaxBackoff, then
	// adds its objects again, registers its event patterns again and
	// subscribes again to the paths it follows. While it is
	// disconnected requests fail with StatusConnectionFailed.
	Reconnect              bool
	MinBackoff, MaxBackoff time.Duration
	// OnConnect runs after every connection is up and, on a reconnection,
	// restored; OnDisconnect when one is lost. Both run on the goroutine
	// that delivers invocations, notifications and events, so they are
	// ordered with them: a notification handled after OnConnect came on
	// the new connection.
	OnConnect    func(id uint32, reconnected bool)
	OnDisconnect func(err error)
	// Logf reports what the client drops (malformed messages, replies
	// nobody waits for) and restore failures; nil is silent. Stats counts
	// them either way.
	Logf func(format string, args ...any)
}

// Stats counts what a client had to drop or redo.
type Stats struct {
	Malformed  uint64 // messages that did not decode
	Unexpected uint64 // well-formed messages nobody was waiting for
	Reconnects uint64
}

// Client is a connection to ubusd. Its methods are safe for concurrent
// use. Incoming calls, notifications and events are handled one at a time,
// in arrival order, on one goroutine; a handler may make requests of its
// own (their answers are read on another goroutine), but must not wait for
// another incoming call.
type Client struct {
	opts Options
	ctx  context.Context // cancelled by Close; given to handlers
	stop context.CancelFunc

	mu           sync.Mutex
	cur          *conn
	seq          uint16
	pending      map[uint16]*request
	objects      []*Object // live objects in the order they were added
	byID         map[uint32]*Object
	typeIDs      map[*ObjectType]uint32
	closed       bool
	reconnecting bool
	objAdd       *Listener // shared "ubus.object.add" listener, made on first need
	waiters      map[*waiter]struct{}
	monitor      func(MonitorMessage)

	q          queue
	dispatched chan struct{} // closed when the delivery goroutine ends

	malformed, unexpected, reconnects atomic.Uint64
}

type conn struct {
	rwc     io.ReadWriteCloser
	id      uint32
	wmu     sync.Mutex
	dead    chan struct{}
	timeout time.Duration
}

type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

// write sends one message. A ubusd that stops reading must not block the
// client for ever: where the transport has deadlines, a write gives up
// after the request timeout and the connection is dropped.
func (cn *conn) write(m *Message) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	d, ok := cn.rwc.(writeDeadliner)
	if ok {
		d.SetWriteDeadline(time.Now().Add(cn.timeout))
	}
	_, err = cn.rwc.Write(b)
	if ok {
		d.SetWriteDeadline(time.Time{})
	}
	if err != nil {
		cn.rwc.Close() // the reader sees the end and cleans up
	}
	return err
}

// Connect dials ubusd and waits for its greeting. With Options.Reconnect it
// keeps trying, with backoff, until ctx ends.
func Connect(ctx context.Context, opts Options) (*Client, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(DefaultMaxBackoff, opts.MinBackoff)
	}
	if opts.Dial == nil {
		path := opts.Path
		if path == "" {
			path = DefaultSocket
		}
		opts.Dial = func(ctx context.Context) (io.ReadWriteCloser, error) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return sock.DialUnix(path)
		}
	}
	c := &Client{opts: opts, byID: map[uint32]*Object{}, typeIDs: map[*ObjectType]uint32{},
		pending: map[uint16]*request{}, waiters: map[*waiter]struct{}{}}
	c.ctx, c.stop = context.WithCancel(context.Background())
	c.q.init()
	c.dispatched = make(chan struct{})
	backoff := opts.MinBackoff
	for {
		cn, err := c.dial(ctx)
		if err == nil {
			c.install(cn)
			break
		}
		if !opts.Reconnect {
			c.stop()
			return nil, err
		}
		c.logf("ubus: connect: %v; again in %v", err, backoff)
		select {
		case <-ctx.Done():
			c.stop()
			return nil, fmt.Errorf("ubus: connect: %w (last error: %w)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, opts.MaxBackoff)
	}
	go c.dispatchLoop()
	id := c.ID()
	c.enqueue(func() {
		if c.opts.OnConnect != nil {
			c.opts.OnConnect(id, false)
		}
	})
	return c, nil
}

// dial opens a transport and reads ubusd's HELLO.
func (c *Client) dial(ctx context.Context) (*conn, error) {
	rwc, err := c.opts.Dial(ctx)
	if err != nil {
		return nil, err
	}
	type result struct {
		m   *Message
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := ReadFrame(rwc)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		m, err := ParseMessage(b)
		ch <- result{m, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		rwc.Close()
		return nil, ctx.Err()
	}
	if r.err == nil && r.m.Type != MsgHello {
		r.err = fmt.Errorf("ubus: ubusd greeted with %s instead of HELLO", r.m.Type)
	}
	if r.err != nil {
		rwc.Close()
		return nil, fmt.Errorf("ubus: greeting: %w", r.err)
	}
	return &conn{rwc: rwc, id: r.m.Peer, dead: make(chan struct{}), timeout: c.opts.Timeout}, nil
}

// install makes cn the current connection and starts reading it; false
// (and cn closed) if the client was closed meanwhile.
func (c *Client) install(cn *conn) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		cn.rwc.Close()
		return false
	}
	c.cur = cn
	c.seq = 0
	c.mu.Unlock()
	go c.readLoop(cn)
	return true
}

// ID is the client id ubusd gave the current connection (0 while there is
// none).
func (c *Client) ID() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		return 0
	}
	return c.cur.id
}

// Connected reports whether a connection is up.
func (c *Client) Connected() bool { return c.ID() != 0 }

// Stats returns the counters.
func (c *Client) Stats() Stats {
	return Stats{Malformed: c.malformed.Load(), Unexpected: c.unexpected.Load(), Reconnects: c.reconnects.Load()}
}

// Close drops the connection for good. Requests in flight fail with
// ErrClosed. Messages that arrived before are still delivered; Done tells
// when the last handler has returned (Close does not wait for it, so that
// a handler may call Close).
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	cn := c.cur
	c.mu.Unlock()
	c.stop()
	var err error
	if cn != nil {
		err = cn.rwc.Close()
		<-cn.dead
	}
	c.q.close()
	return err
}

// Done is closed once the client is closed and its delivery goroutine has
// run the last handler.
func (c *Client) Done() <-chan struct{} { return c.dispatched }

func (c *Client) logf(format string, args ...any) {
	if c.opts.Logf != nil {
		c.opts.Logf(format, args...)
	}
}

func (c *Client) readLoop(cn *conn) {
	for {
		b, err := ReadFrame(cn.rwc)
		if err != nil {
			c.lost(cn, err)
			return
		}
		m, err := ParseMessage(b)
		if err != nil {
			c.malformed.Add(1)
			c.logf("ubus: dropped a malformed message: %v", err)
			continue
		}
		switch m.Type {
		case MsgStatus, MsgData:
			c.reply(m)
		case MsgInvoke, MsgNotify, MsgUnsubscribe, MsgMonitor:
			// The object is found now, on the connection the message came
			// on, even if that connection is gone when it is delivered.
			id, _ := m.ObjID()
			c.mu.Lock()
			o, mon := c.byID[id], c.monitor
			c.mu.Unlock()
			if m.Type == MsgMonitor {
				c.enqueue(func() { c.monitored(mon, m) })
				break
			}
			c.enqueue(func() { c.incoming(cn, o, m) })
		default:
			c.unexpected.Add(1)
			c.logf("ubus: dropped an unexpected %s", m.Type)
		}
	}
}

// lost handles the end of a connection: requests in flight fail, objects
// lose their ids, and with Reconnect a new connection is sought.
func (c *Client) lost(cn *conn, cause error) {
	cn.rwc.Close()
	c.mu.Lock()
	defer close(cn.dead)
	if c.cur != cn {
		c.mu.Unlock()
		return
	}
	c.cur = nil
	err := error(ErrClosed)
	if !c.closed {
		err = fmt.Errorf("%w: %w", StatusConnectionFailed, cause)
	}
	for seq, r := range c.pending {
		r.finish(StatusConnectionFailed, err)
		delete(c.pending, seq)
	}
	for _, o := range c.objects {
		o.id = 0
		o.active = false
	}
	clear(c.byID)
	clear(c.typeIDs)
	start := c.opts.Reconnect && !c.closed && !c.reconnecting
	if start {
		c.reconnecting = true
	}
	closed := c.closed
	c.mu.Unlock()
	if !closed {
		c.enqueue(func() {
			if c.opts.OnDisconnect != nil {
				c.opts.OnDisconnect(err)
			}
		})
	}
	if start {
		go c.reconnectLoop()
	}
}

func (c *Client) reconnectLoop() {
	backoff := c.opts.MinBackoff
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, c.opts.MaxBackoff)
		ctx, cancel := context.WithTimeout(c.ctx, c.opts.Timeout)
		cn, err := c.dial(ctx)
		cancel()
		if err != nil {
			c.logf("ubus: reconnect: %v; again in %v", err, backoff)
			continue
		}
		if !c.install(cn) {
			return
		}
		if err := c.restore(); err != nil {
			c.logf("ubus: restoring after reconnecting: %v", err)
			cn.rwc.Close()
			<-cn.dead
			continue
		}
		c.mu.Lock()
		ok := c.cur == cn
		if ok {
			c.reconnecting = false
		}
		c.mu.Unlock()
		if !ok {
			continue
		}
		c.reconnects.Add(1)
		c.enqueue(func() {
			if c.opts.OnConnect != nil {
				c.opts.OnConnect(cn.id, true)
			}
		})
		return
	}
}

// restore adds the objects again, registers the event patterns and
// subscribes to the followed paths. A refusal by ubusd (a path someone else
// took meanwhile) is logged and the object left without an id; only a
// broken connection fails the restore.
func (c *Client) restore() error {
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.Timeout)
	defer cancel()
	c.mu.Lock()
	objs := append([]*Object(nil), c.objects...)
	mon := c.monitor != nil
	c.mu.Unlock()
	for _, o := range objs {
		if err := c.addObject(ctx, o); err != nil {
			if isConnErr(err) {
				return err
			}
			c.logf("ubus: adding %q again: %v", o.path, err)
		}
	}
	for _, o := range objs {
		if o.listener == nil {
			continue
		}
		for _, p := range o.listener.patternList() {
			if err := o.listener.register(ctx, p); err != nil {
				if isConnErr(err) {
					return err
				}
				c.logf("ubus: registering event pattern %q again: %v", p, err)
			}
		}
	}
	for _, o := range objs {
		if o.subscriber == nil {
			continue
		}
		if err := o.subscriber.resubscribe(ctx); err != nil && isConnErr(err) {
			return err
		}
	}
	if mon {
		if err := c.monitorCall(ctx, "add"); err != nil && isConnErr(err) {
			return err
		}
	}
	return nil
}

func isConnErr(err error) bool {
	return errors.Is(err, StatusConnectionFailed) || errors.Is(err, ErrClosed)
}

// request is one request waiting for its answers.
type request struct {
	seq  uint16
	peer uint32 // the header peer its answers carry
	data []*Message
	// onData, if set, sees each DATA on the reader goroutine with c.mu
	// held, before the next message is read: an ADD_OBJECT's answer must
	// take effect before a call to the new object can be dispatched.
	onData func(*Message)
	done   chan struct{}
	once   sync.Once

	status Status
	err    error

	// For a NOTIFY: the subscriber ids ubusd named, the answers so far.
	notify  bool
	listed  bool
	waiting map[uint32]bool
	answers []NotifyAnswer
}

func (r *request) finish(s Status, err error) {
	r.once.Do(func() {
		r.status, r.err = s, err
		close(r.done)
	})
}

// reply routes a STATUS or DATA to the request it answers (libubus matches
// seq and peer the same way).
func (c *Client) reply(m *Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.pending[m.Seq]
	if r == nil || (!r.notify && m.Peer != r.peer) {
		c.unexpected.Add(1)
		c.logf("ubus: dropped a %s (seq %d, peer %#08x) no request waits for", m.Type, m.Seq, m.Peer)
		return
	}
	if r.notify {
		c.notifyReply(r, m)
		return
	}
	if m.Type == MsgData {
		r.data = append(r.data, m)
		if r.onData != nil {
			r.onData(m)
		}
		return
	}
	s, ok := m.Status()
	if !ok {
		s = StatusInvalidArgument // what libubus makes of a STATUS without status
	}
	delete(c.pending, m.Seq)
	if s != StatusOK {
		r.finish(s, s)
	} else {
		r.finish(s, nil)
	}
}

// notifyReply collects ubusd's answer to a NOTIFY (the subscriber list) and
// then one STATUS per subscriber.
func (c *Client) notifyReply(r *request, m *Message) {
	if m.Type != MsgStatus {
		c.unexpected.Add(1)
		return
	}
	s, _ := m.Status()
	switch {
	case !r.listed && m.Peer == r.peer:
		r.listed = true
		if s != StatusOK {
			delete(c.pending, r.seq)
			r.finish(s, s)
			return
		}
		ids, err := m.Subscribers()
		if err != nil {
			c.malformed.Add(1)
		}
		for _, id := range ids {
			r.waiting[id] = true
		}
	case r.listed && r.waiting[m.Peer]:
		delete(r.waiting, m.Peer)
		r.answers = append(r.answers, NotifyAnswer{Subscriber: m.Peer, Status: s})
	default:
		c.unexpected.Add(1)
		return
	}
	if len(r.waiting) == 0 {
		delete(c.pending, r.seq)
		r.finish(StatusOK, nil)
	}
}

// send numbers m, registers r for its answers (unless r is nil) and writes
// it.
func (c *Client) send(m *Message, r *request) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	cn := c.cur
	if cn == nil {
		c.mu.Unlock()
		return fmt.Errorf("%w: not connected", StatusConnectionFailed)
	}
	c.seq++
	m.Seq = c.seq
	if r != nil {
		r.seq = m.Seq
		r.done = make(chan struct{})
		if r.notify {
			r.waiting = map[uint32]bool{}
		}
		c.pending[m.Seq] = r
	}
	c.mu.Unlock()
	if err := cn.write(m); err != nil {
		c.mu.Lock()
		if r != nil && c.pending[m.Seq] == r {
			delete(c.pending, m.Seq)
		}
		c.mu.Unlock()
		return fmt.Errorf("%w: %w", StatusConnectionFailed, err)
	}
	return nil
}

// roundTrip sends m and waits for its final STATUS.
func (c *Client) roundTrip(ctx context.Context, m *Message, r *request) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
		defer cancel()
	}
	if err := c.send(m, r); err != nil {
		return err
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		c.mu.Lock()
		if c.pending[r.seq] == r {
			delete(c.pending, r.seq)
		}
		c.mu.Unlock()
		select {
		case <-r.done: // answered meanwhile
			return r.err
		default:
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%w: %w", StatusTimeout, ctx.Err())
		}
		return ctx.Err()
	}
}

// RoundTrip sends a request built by hand (its Seq is set here) and
// returns the DATA messages answering it once the final STATUS came; a
// non-OK status is the error. Answers are matched by seq and by the
// request's header peer, as libubus matches them.
func (c *Client) RoundTrip(ctx context.Context, m *Message) ([]*Message, error) {
	r := &request{peer: m.Peer}
	err := c.roundTrip(ctx, m, r)
	c.mu.Lock()
	data := append([]*Message(nil), r.data...)
	c.mu.Unlock()
	return data, err
}

// Ping asks ubusd to echo a message.
func (c *Client) Ping(ctx context.Context) error {
	return c.roundTrip(ctx, NewMessage(MsgPing, 0, 0), &request{})
}

// ObjectInfo is one object a lookup found.
type ObjectInfo struct {
	Path      string
	ID        uint32
	TypeID    uint32
	Signature Signature
}

// Lookup finds objects by path: an exact path, a prefix ending in "*", or
// every object for "". Objects come sorted by path, as ubusd lists them.
// No match is StatusNotFound.
func (c *Client) Lookup(ctx context.Context, path string) ([]ObjectInfo, error) {
	m := NewMessage(MsgLookup, 0, 0)
	if path != "" {
		m.PutString(AttrObjPath, path)
	}
	r := &request{}
	if err := c.roundTrip(ctx, m, r); err != nil {
		return nil, err
	}
	var out []ObjectInfo
	for _, d := range r.data {
		p, ok1 := d.Path()
		id, ok2 := d.ObjID()
		typ, ok3 := d.U32(AttrObjType)
		if !ok1 || !ok2 || !ok3 {
			// libubus skips such records too.
			continue
		}
		info := ObjectInfo{Path: p, ID: id, TypeID: typ}
		if raw, ok := d.Attr(AttrSignature); ok {
			sig, err := ParseSignature(raw)
			if err != nil {
				return nil, fmt.Errorf("ubus: lookup %q: signature of %q: %w", path, p, err)
			}
			info.Signature = sig
		}
		out = append(out, info)
	}
	return out, nil
}

// LookupID returns the id of the object at path.
func (c *Client) LookupID(ctx context.Context, path string) (uint32, error) {
	if path == "" {
		return 0, fmt.Errorf("%w: empty path", StatusInvalidArgument)
	}
	objs, err := c.Lookup(ctx, path)
	if err != nil {
		return 0, err
	}
	if len(objs) == 0 {
		return 0, StatusNotFound
	}
	return objs[len(objs)-1].ID, nil
}

// Invoke calls method on object id and returns the DATA tables the object
// answered with, in order. A non-OK status is returned as the error (a
// Status), together with any data that came before it.
func (c *Client) Invoke(ctx context.Context, id uint32, method string, args Table) ([]Table, error) {
	m := NewMessage(MsgInvoke, 0, id).PutU32(AttrObjID, id).PutString(AttrMethod, method)
	if err := m.PutTable(AttrData, args); err != nil {
		return nil, err
	}
	r := &request{peer: id}
	err := c.roundTrip(ctx, m, r)
	var out []Table
	for _, d := range r.data {
		t, ok, derr := d.Data()
		if derr != nil {
			return out, fmt.Errorf("ubus: reply to %s: %w", method, derr)
		}
		if ok {
			out = append(out, t)
		}
	}
	return out, err
}

// Call looks path up and invokes method on it, as `ubus call` does. It
// returns the first DATA table of the answer (nil if there was none).
func (c *Client) Call(ctx context.Context, path, method string, args Table) (Table, error) {
	id, err := c.LookupID(ctx, path)
	if err != nil {
		return nil, err
	}
	data, err := c.Invoke(ctx, id, method, args)
	if len(data) > 0 {
		return data[0], err
	}
	return nil, err
}

// Send publishes an event. ubusd answers StatusPermissionDenied for names
// starting with "ubus." and OK whether or not anyone listens.
func (c *Client) Send(ctx context.Context, event string, data Table) error {
	if data == nil {
		data = Table{}
	}
	_, err := c.Invoke(ctx, ObjectEvents, "send", Table{{"id", String(event)}, {"data", data}})
	return err
}

// queue is the unbounded FIFO the reader hands incoming messages to. It
// must not block the reader: a handler waiting for an answer needs the
// reader to go on reading.
type queue struct {
	mu     sync.Mutex
	items  []func()
	signal chan struct{}
	closed bool
}

func (q *queue) init() { q.signal = make(chan struct{}, 1) }

func (q *queue) push(f func()) {
	q.mu.Lock()
	if !q.closed {
		q.items = append(q.items, f)
	}
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// pop waits for the next item; false once the queue is closed and empty.
func (q *queue) pop() (func(), bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			f := q.items[0]
			q.items[0] = nil
			q.items = q.items[1:]
			q.mu.Unlock()
			return f, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil, false
		}
		<-q.signal
	}
}

func (c *Client) enqueue(f func()) { c.q.push(f) }

// Post runs f on the delivery goroutine, after the handlers of everything
// received before it: work that must be ordered with incoming
// notifications (a dump that they may overtake) goes there.
func (c *Client) Post(f func()) { c.enqueue(f) }

func (c *Client) dispatchLoop() {
	defer close(c.dispatched)
	for {
		f, ok := c.q.pop()
		if !ok {
			return
		}
		f()
	}
}
