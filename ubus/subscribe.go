package ubus

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// Notification is one notification a Subscriber received.
type Notification struct {
	Method string
	Data   Table
	// User and Group are what ubusd says about the notifying owner.
	User, Group string
	// Owner is the notifying owner's client id.
	Owner uint32
	// NoReply: the owner asked for no answer (netifd always does).
	NoReply bool
}

// Target reports a change of one of a Subscriber's subscriptions.
type Target struct {
	Path       string // "" for a subscription made by id
	ID         uint32 // the target object's id on ubusd
	Subscribed bool   // false: the target went away (or the connection did)
}

// Subscriber is an anonymous object that receives the notifications of the
// objects it subscribes to.
type Subscriber struct {
	obj      *Object
	onNotify func(Notification)
	onTarget func(Target)

	mu      sync.Mutex
	targets []*target
}

type target struct {
	path   string // "" for a subscription by id
	id     uint32 // 0 while not subscribed
	follow bool   // subscribe again when an object with the path comes back
}

// NewSubscriber registers an anonymous object for notifications. onNotify
// gets them; onTarget, if not nil, hears of subscriptions made again after
// their target came back or ubusd restarted, and of targets that went away.
// Both run on the client's delivery goroutine.
func (c *Client) NewSubscriber(ctx context.Context, onNotify func(Notification), onTarget func(Target)) (*Subscriber, error) {
	s := &Subscriber{onNotify: onNotify, onTarget: onTarget}
	s.obj = &Object{c: c, subscriber: s}
	if _, err := c.newObject(ctx, s.obj); err != nil {
		return nil, err
	}
	return s, nil
}

// Subscribe registers an anonymous object, looks path up and subscribes to
// it, as `ubus subscribe` does (see SubscribePath).
func (c *Client) Subscribe(ctx context.Context, path string, onNotify func(Notification), onTarget func(Target)) (*Subscriber, error) {
	s, err := c.NewSubscriber(ctx, onNotify, onTarget)
	if err != nil {
		return nil, err
	}
	if _, err := s.SubscribePath(ctx, path); err != nil {
		s.Close(ctx)
		return nil, err
	}
	return s, nil
}

// Object is the subscriber's anonymous object.
func (s *Subscriber) Object() *Object { return s.obj }

// Subscribe subscribes to the object with this id. Such a subscription ends
// with its target or the connection.
func (s *Subscriber) Subscribe(ctx context.Context, id uint32) error {
	t := &target{id: id}
	s.mu.Lock()
	s.targets = append(s.targets, t)
	s.mu.Unlock()
	if err := s.subscribe(ctx, id); err != nil {
		s.mu.Lock()
		s.targets = slices.DeleteFunc(s.targets, func(x *target) bool { return x == t })
		s.mu.Unlock()
		return err
	}
	return nil
}

// SubscribePath looks path up and subscribes to the object. After ubusd
// restarts the path is looked up and subscribed to again; when the object
// goes, the subscription ends (onTarget hears of it). No object at path is
// StatusNotFound.
func (s *Subscriber) SubscribePath(ctx context.Context, path string) (uint32, error) {
	return s.addPath(ctx, path, false)
}

// Follow is SubscribePath that also outlives the object: when it goes (its
// owner restarts), the subscription is made again as soon as an object with
// the path exists, and onTarget is told. A path nobody has published yet
// gives id 0 and no error; the subscription is made when it appears.
func (s *Subscriber) Follow(ctx context.Context, path string) (uint32, error) {
	return s.addPath(ctx, path, true)
}

func (s *Subscriber) addPath(ctx context.Context, path string, follow bool) (uint32, error) {
	t := &target{path: path, follow: follow}
	s.mu.Lock()
	s.targets = append(s.targets, t)
	s.mu.Unlock()
	id, err := s.lookupSubscribe(ctx, t)
	if err != nil || (id == 0 && !follow) {
		s.mu.Lock()
		s.targets = slices.DeleteFunc(s.targets, func(x *target) bool { return x == t })
		s.mu.Unlock()
	}
	if err == nil && id == 0 && !follow {
		err = StatusNotFound
	}
	return id, err
}

// lookupSubscribe looks a target's path up and subscribes to it; a
// followed target that is not there is waited for (id 0, no error).
func (s *Subscriber) lookupSubscribe(ctx context.Context, t *target) (uint32, error) {
	c := s.obj.c
	id, err := c.LookupID(ctx, t.path)
	if err == StatusNotFound && !t.follow {
		return 0, nil
	}
	if err == StatusNotFound {
		if err := c.watchObjects(ctx); err != nil {
			return 0, err
		}
		// It may have come between the lookup and the registration.
		id, err = c.LookupID(ctx, t.path)
		if err == StatusNotFound {
			return 0, nil
		}
	}
	if err != nil {
		return 0, err
	}
	// Known before the answer: an UNSUBSCRIBE may follow it at once.
	s.mu.Lock()
	t.id = id
	s.mu.Unlock()
	if err := s.subscribe(ctx, id); err != nil {
		s.mu.Lock()
		t.id = 0
		s.mu.Unlock()
		return 0, err
	}
	return id, nil
}

func (s *Subscriber) subscribe(ctx context.Context, id uint32) error {
	own := s.obj.ID()
	if own == 0 {
		return fmt.Errorf("%w: subscriber not registered", StatusConnectionFailed)
	}
	m := NewMessage(MsgSubscribe, 0, 0).PutU32(AttrObjID, own).PutU32(AttrTarget, id)
	return s.obj.c.roundTrip(ctx, m, &request{})
}

// Unsubscribe ends the subscription to the object with this id (and stops
// following its path).
func (s *Subscriber) Unsubscribe(ctx context.Context, id uint32) error {
	s.mu.Lock()
	s.targets = slices.DeleteFunc(s.targets, func(t *target) bool { return t.id == id })
	s.mu.Unlock()
	own := s.obj.ID()
	m := NewMessage(MsgUnsubscribe, 0, 0).PutU32(AttrObjID, own).PutU32(AttrTarget, id)
	return s.obj.c.roundTrip(ctx, m, &request{})
}

// Close removes the subscriber's object, which ends its subscriptions.
func (s *Subscriber) Close(ctx context.Context) error {
	s.mu.Lock()
	s.targets = nil
	s.mu.Unlock()
	return s.obj.Remove(ctx)
}

func (s *Subscriber) deliver(n Notification) {
	if s.onNotify != nil {
		s.onNotify(n)
	}
}

func (s *Subscriber) tell(t Target) {
	if s.onTarget != nil {
		s.onTarget(t)
	}
}

// targetGone handles ubusd's UNSUBSCRIBE: the target object was removed.
func (s *Subscriber) targetGone(id uint32) {
	s.mu.Lock()
	var gone *target
	for _, t := range s.targets {
		if t.id == id {
			gone = t
			break
		}
	}
	if gone != nil {
		gone.id = 0
		if !gone.follow {
			s.targets = slices.DeleteFunc(s.targets, func(t *target) bool { return t == gone })
		}
	}
	s.mu.Unlock()
	if gone == nil {
		return
	}
	s.tell(Target{Path: gone.path, ID: id})
	if gone.follow {
		ctx, cancel := context.WithTimeout(s.obj.c.ctx, s.obj.c.opts.Timeout)
		defer cancel()
		if id, err := s.lookupSubscribe(ctx, gone); err != nil {
			s.obj.c.logf("ubus: following %q again: %v", gone.path, err)
		} else if id != 0 {
			s.tell(Target{Path: gone.path, ID: id, Subscribed: true})
		}
	}
}

// objectAdded subscribes followed targets waiting for this path.
func (s *Subscriber) objectAdded(path string, id uint32) {
	s.mu.Lock()
	var hit *target
	for _, t := range s.targets {
		if t.follow && t.path == path && t.id == 0 {
			hit = t
			break
		}
	}
	s.mu.Unlock()
	if hit == nil {
		return
	}
	ctx, cancel := context.WithTimeout(s.obj.c.ctx, s.obj.c.opts.Timeout)
	defer cancel()
	s.mu.Lock()
	hit.id = id
	s.mu.Unlock()
	if err := s.subscribe(ctx, id); err != nil {
		s.obj.c.logf("ubus: subscribing to %q: %v", path, err)
		s.mu.Lock()
		hit.id = 0
		s.mu.Unlock()
		return
	}
	s.tell(Target{Path: path, ID: id, Subscribed: true})
}

// resubscribe runs after a reconnection: subscriptions by id are gone,
// those by path are looked up again.
func (s *Subscriber) resubscribe(ctx context.Context) error {
	c := s.obj.c
	s.mu.Lock()
	var lost []uint32
	var paths []*target
	keep := s.targets[:0]
	for _, t := range s.targets {
		if t.path == "" {
			if t.id != 0 {
				lost = append(lost, t.id)
			}
			continue
		}
		t.id = 0
		paths = append(paths, t)
		keep = append(keep, t)
	}
	s.targets = keep
	s.mu.Unlock()
	for _, id := range lost {
		c.enqueue(func() { s.tell(Target{ID: id}) })
	}
	for _, t := range paths {
		id, err := s.lookupSubscribe(ctx, t)
		if err != nil {
			return err
		}
		path := t.path
		if id != 0 {
			c.enqueue(func() { s.tell(Target{Path: path, ID: id, Subscribed: true}) })
		} else if !t.follow {
			s.mu.Lock()
			s.targets = slices.DeleteFunc(s.targets, func(x *target) bool { return x == t })
			s.mu.Unlock()
			c.enqueue(func() { s.tell(Target{Path: path}) })
		}
	}
	return nil
}

// Event is one event a Listener received.
type Event struct {
	Name string
	Data Table
}

// Listener is an anonymous object that receives the events matching the
// patterns registered for it.
type Listener struct {
	obj *Object
	on  func(Event)

	mu       sync.Mutex
	patterns []string
}

// NewListener registers an anonymous object for events; on gets them, on
// the client's delivery goroutine.
func (c *Client) NewListener(ctx context.Context, on func(Event)) (*Listener, error) {
	l := &Listener{on: on}
	l.obj = &Object{c: c, listener: l}
	if _, err := c.newObject(ctx, l.obj); err != nil {
		return nil, err
	}
	return l, nil
}

// Listen registers a listener for the patterns, as `ubus listen` does. A
// pattern is an event name, or a prefix followed by "*"; "*" is every event.
func (c *Client) Listen(ctx context.Context, on func(Event), patterns ...string) (*Listener, error) {
	l, err := c.NewListener(ctx, on)
	if err != nil {
		return nil, err
	}
	for _, p := range patterns {
		if err := l.Register(ctx, p); err != nil {
			l.Close(ctx)
			return nil, err
		}
	}
	return l, nil
}

// Register adds a pattern; it is registered again after a reconnection.
func (l *Listener) Register(ctx context.Context, pattern string) error {
	if err := l.register(ctx, pattern); err != nil {
		return err
	}
	l.mu.Lock()
	l.patterns = append(l.patterns, pattern)
	l.mu.Unlock()
	return nil
}

func (l *Listener) register(ctx context.Context, pattern string) error {
	id := l.obj.ID()
	if id == 0 {
		return fmt.Errorf("%w: listener not registered", StatusConnectionFailed)
	}
	_, err := l.obj.c.Invoke(ctx, ObjectEvents, "register", Table{{"object", Int32(id)}, {"pattern", String(pattern)}})
	return err
}

func (l *Listener) patternList() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.patterns)
}

// Object is the listener's anonymous object.
func (l *Listener) Object() *Object { return l.obj }

// Close removes the listener's object, which drops its patterns.
func (l *Listener) Close(ctx context.Context) error { return l.obj.Remove(ctx) }

func (l *Listener) deliver(e Event) {
	if l.on != nil {
		l.on(e)
	}
}

// A waiter is a WaitFor call waiting for paths.
type waiter struct {
	paths map[string]bool
	done  chan struct{}
}

// watchObjects makes sure the shared listener for ubusd's "ubus.object.add"
// event exists. WaitFor and followed subscriptions rely on it.
func (c *Client) watchObjects(ctx context.Context) error {
	c.mu.Lock()
	have := c.objAdd != nil
	c.mu.Unlock()
	if have {
		return nil
	}
	l, err := c.Listen(ctx, c.objectAdded, "ubus.object.add")
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.objAdd == nil {
		c.objAdd, l = l, nil
	}
	c.mu.Unlock()
	if l != nil {
		l.Close(ctx) // another goroutine made one meanwhile
	}
	return nil
}

func (c *Client) objectAdded(e Event) {
	path, ok1 := e.Data.String("path")
	id, ok2 := e.Data.Int32("id")
	if !ok1 || !ok2 {
		c.malformed.Add(1)
		return
	}
	c.mu.Lock()
	for w := range c.waiters {
		if w.paths[path] {
			delete(w.paths, path)
			if len(w.paths) == 0 {
				close(w.done)
				delete(c.waiters, w)
			}
		}
	}
	var subs []*Subscriber
	for _, o := range c.objects {
		if o.subscriber != nil {
			subs = append(subs, o.subscriber)
		}
	}
	c.mu.Unlock()
	for _, s := range subs {
		s.objectAdded(path, uint32(id))
	}
}

// WaitFor returns once objects with all the paths exist, as `ubus wait_for`
// does: it listens for "ubus.object.add", then looks up every object.
func (c *Client) WaitFor(ctx context.Context, paths ...string) error {
	if err := c.watchObjects(ctx); err != nil {
		return err
	}
	w := &waiter{paths: map[string]bool{}, done: make(chan struct{})}
	for _, p := range paths {
		w.paths[p] = true
	}
	c.mu.Lock()
	c.waiters[w] = struct{}{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiters, w)
		c.mu.Unlock()
	}()
	objs, err := c.Lookup(ctx, "")
	if err != nil && err != StatusNotFound {
		return err
	}
	c.mu.Lock()
	for _, o := range objs {
		delete(w.paths, o.Path)
	}
	all := len(w.paths) == 0
	c.mu.Unlock()
	if all {
		return nil
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", StatusTimeout, ctx.Err())
	}
}

// MonitorMessage is the copy of one message ubusd handled, as a monitor
// receives it.
type MonitorMessage struct {
	Client uint32 // the client ubusd received it from or sent it to
	Sent   bool   // true: ubusd sent it; false: ubusd received it
	// Msg is the observed message: its type, seq and peer, and its
	// attributes.
	Msg *Message
}

func parseMonitor(m *Message) (MonitorMessage, error) {
	cl, ok1 := m.U32(MonitorClient)
	peer, ok2 := m.U32(MonitorPeer)
	seq, ok3 := m.U32(MonitorSeq)
	typ, ok4 := m.U32(MonitorType)
	send, ok5 := m.U8(MonitorSend)
	data, ok6 := m.Attr(MonitorData)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || typ > 0xff || seq > 0xffff {
		return MonitorMessage{}, &DecodeError{"MONITOR", 0, "missing or bad attributes"}
	}
	inner := &Message{Header: Header{Type: MsgType(typ), Seq: uint16(seq), Peer: peer}}
	attrs, err := splitAttrs(data, 0, "monitored message")
	if err != nil {
		return MonitorMessage{}, err
	}
	for _, a := range attrs {
		if a.ext {
			return MonitorMessage{}, &DecodeError{"monitored message", a.off, "extended attribute"}
		}
		if err := checkAttr(inner.Type, a); err != nil {
			return MonitorMessage{}, err
		}
		inner.Attrs = append(inner.Attrs, Attr{AttrID(a.id), a.payload})
	}
	return MonitorMessage{Client: cl, Sent: send != 0, Msg: inner}, nil
}

// Monitor makes this client a monitor (root only): from now on every
// message ubusd receives or sends is given to on, on the delivery
// goroutine. StopMonitor ends it.
func (c *Client) Monitor(ctx context.Context, on func(MonitorMessage)) error {
	c.mu.Lock()
	c.monitor = on
	c.mu.Unlock()
	if err := c.monitorCall(ctx, "add"); err != nil {
		c.mu.Lock()
		c.monitor = nil
		c.mu.Unlock()
		return err
	}
	return nil
}

// StopMonitor ends Monitor.
func (c *Client) StopMonitor(ctx context.Context) error {
	err := c.monitorCall(ctx, "remove")
	c.mu.Lock()
	c.monitor = nil
	c.mu.Unlock()
	return err
}

// monitorCall invokes the monitor object. Its DATA holds, like libubus's,
// a copy of the request's own OBJID and METHOD attributes rather than
// blobmsg: libubus builds it from the buffer it is filling, ubusd ignores
// it, and sending the same bytes keeps this client indistinguishable.
func (c *Client) monitorCall(ctx context.Context, method string) error {
	inner := NewMessage(0, 0, 0).PutU32(AttrObjID, ObjectMonitor).PutString(AttrMethod, method)
	var data []byte
	for _, a := range inner.Attrs {
		data = appendRawAttr(data, uint8(a.ID), a.Data)
	}
	m := NewMessage(MsgInvoke, 0, ObjectMonitor).PutU32(AttrObjID, ObjectMonitor).PutString(AttrMethod, method).PutRaw(AttrData, data)
	return c.roundTrip(ctx, m, &request{peer: ObjectMonitor})
}
