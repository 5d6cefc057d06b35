package ubus

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Handler answers a call to a method. Returning a table sends it as the
// answer's DATA; the error, a Status or any other error (then
// StatusUnknownError), becomes the final STATUS. A handler that called
// r.Defer answers later with r.Reply and r.Complete instead, and its return
// values are ignored.
type Handler func(ctx context.Context, r *Request) (Table, error)

// Method is one method an object offers. Args is its declared signature:
// an argument present with another type than declared is refused with
// StatusInvalidArgument before the handler runs (TypeUnspec accepts any).
type Method struct {
	Name    string
	Args    []ArgSig
	Handler Handler
}

// ObjectType is a set of methods. Objects added with the same type share
// it on ubusd: the first sends the signature, the others only name the type
// id ubusd gave it, as netifd does for its network.interface.NAME objects.
type ObjectType struct {
	methods []Method
}

// NewObjectType makes a type from methods.
func NewObjectType(methods ...Method) *ObjectType {
	return &ObjectType{methods: append([]Method(nil), methods...)}
}

// Signature is the type's declaration.
func (t *ObjectType) Signature() Signature {
	s := make(Signature, len(t.methods))
	for i, m := range t.methods {
		s[i] = MethodSig{m.Name, m.Args}
	}
	return s
}

func (t *ObjectType) method(name string) (Method, bool) {
	for _, m := range t.methods {
		if m.Name == name {
			return m, true
		}
	}
	return Method{}, false
}

// Object is one object this client added: a published one with a path and
// methods, or an anonymous one behind a Subscriber or a Listener.
type Object struct {
	c          *Client
	path       string
	typ        *ObjectType
	onActive   func(bool)
	subscriber *Subscriber
	listener   *Listener

	// Guarded by c.mu.
	id     uint32
	active bool
}

// ID is the object's id on the current connection (0 while disconnected).
func (o *Object) ID() uint32 {
	o.c.mu.Lock()
	defer o.c.mu.Unlock()
	return o.id
}

// Path is the object's path ("" for an anonymous object).
func (o *Object) Path() string { return o.path }

// Subscribed reports what ubusd last said: whether the object has any
// subscriber (NOTIFY with ACTIVE).
func (o *Object) Subscribed() bool {
	o.c.mu.Lock()
	defer o.c.mu.Unlock()
	return o.active
}

// AddObject publishes an object at path with the methods of typ. onActive,
// if not nil, is told when the object gains its first subscriber (true) and
// loses its last (false).
func (c *Client) AddObject(ctx context.Context, path string, typ *ObjectType, onActive func(active bool)) (*Object, error) {
	if path == "" || typ == nil {
		return nil, fmt.Errorf("%w: an object needs a path and a type", StatusInvalidArgument)
	}
	return c.newObject(ctx, &Object{c: c, path: path, typ: typ, onActive: onActive})
}

func (c *Client) newObject(ctx context.Context, o *Object) (*Object, error) {
	if err := c.addObject(ctx, o); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.objects = append(c.objects, o)
	c.mu.Unlock()
	return o, nil
}

// addObject sends ADD_OBJECT for o on the current connection.
func (c *Client) addObject(ctx context.Context, o *Object) error {
	m := NewMessage(MsgAddObject, 0, 0)
	if o.path != "" {
		m.PutString(AttrObjPath, o.path)
		c.mu.Lock()
		tid := c.typeIDs[o.typ]
		c.mu.Unlock()
		if tid != 0 {
			m.PutU32(AttrObjType, tid)
		} else {
			sig, err := o.typ.Signature().Encode()
			if err != nil {
				return err
			}
			m.PutRaw(AttrSignature, sig)
		}
	}
	r := &request{onData: func(d *Message) {
		id, ok := d.ObjID()
		if !ok {
			return
		}
		o.id = id
		c.byID[id] = o
		if tid, ok := d.U32(AttrObjType); ok && o.typ != nil {
			c.typeIDs[o.typ] = tid
		}
	}}
	if err := c.roundTrip(ctx, m, r); err != nil {
		return err
	}
	if o.ID() == 0 {
		return fmt.Errorf("ubus: add object %q: %w", o.path, StatusNoData)
	}
	return nil
}

// Remove withdraws the object.
func (o *Object) Remove(ctx context.Context) error {
	c := o.c
	c.mu.Lock()
	id := o.id
	c.mu.Unlock()
	if id == 0 {
		c.forget(o)
		return fmt.Errorf("%w: object not registered", StatusNotFound)
	}
	r := &request{}
	err := c.roundTrip(ctx, NewMessage(MsgRemoveObject, 0, 0).PutU32(AttrObjID, id), r)
	if err == nil {
		for _, d := range r.data {
			if _, ok := d.U32(AttrObjType); ok && o.typ != nil {
				// ubusd dropped the type with its last object.
				c.mu.Lock()
				delete(c.typeIDs, o.typ)
				c.mu.Unlock()
			}
		}
	}
	// Gone either way: on a broken connection ubusd dropped it, and it is
	// not added again on the next one.
	c.forget(o)
	return err
}

func (c *Client) forget(o *Object) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID[o.id] == o {
		delete(c.byID, o.id)
	}
	o.id = 0
	for i, x := range c.objects {
		if x == o {
			c.objects = append(c.objects[:i], c.objects[i+1:]...)
			break
		}
	}
}

// NotifyAnswer is one subscriber's answer to a notification.
type NotifyAnswer struct {
	Subscriber uint32 // the subscriber's object id
	Status     Status
}

// Notify sends a notification to the object's subscribers and waits until
// ubusd and every subscriber it named have answered, or ctx ends (then the
// answers so far come with the error).
func (o *Object) Notify(ctx context.Context, method string, data Table) ([]NotifyAnswer, error) {
	m, err := o.notifyMsg(method, data)
	if err != nil {
		return nil, err
	}
	r := &request{peer: m.Peer, notify: true}
	err = o.c.roundTrip(ctx, m, r)
	o.c.mu.Lock()
	answers := append([]NotifyAnswer(nil), r.answers...)
	o.c.mu.Unlock()
	return answers, err
}

// NotifyNoReply sends a notification nobody answers (NO_REPLY), as netifd
// sends its interface.update and interface.down.
func (o *Object) NotifyNoReply(method string, data Table) error {
	m, err := o.notifyMsg(method, data)
	if err != nil {
		return err
	}
	m.PutU8(AttrNoReply, 1)
	return o.c.send(m, nil)
}

func (o *Object) notifyMsg(method string, data Table) (*Message, error) {
	id := o.ID()
	if id == 0 {
		return nil, fmt.Errorf("%w: object not registered", StatusConnectionFailed)
	}
	m := NewMessage(MsgNotify, 0, id).PutU32(AttrObjID, id).PutString(AttrMethod, method)
	if err := m.PutTable(AttrData, data); err != nil {
		return nil, err
	}
	return m, nil
}

// Request is one incoming call.
type Request struct {
	Object *Object
	Method string
	Args   Table
	// User and Group are what ubusd says about the caller.
	User, Group string
	// Caller is the caller's client id.
	Caller uint32

	c     *Client
	cn    *conn
	seq   uint16
	objID uint32

	mu       sync.Mutex
	deferred bool
	done     bool
}

// Defer keeps the request open after the handler returns; answer it with
// Reply and Complete from any goroutine.
func (r *Request) Defer() {
	r.mu.Lock()
	r.deferred = true
	r.mu.Unlock()
}

// Reply sends one DATA answer; a request may have several.
func (r *Request) Reply(data Table) error {
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	if done {
		return errors.New("ubus: reply to a completed request")
	}
	m := NewMessage(MsgData, r.seq, r.Caller).PutU32(AttrObjID, r.objID)
	if err := m.PutTable(AttrData, data); err != nil {
		return err
	}
	return r.cn.write(m)
}

// Complete sends the final STATUS.
func (r *Request) Complete(s Status) error {
	r.mu.Lock()
	if r.done {
		r.mu.Unlock()
		return errors.New("ubus: request completed twice")
	}
	r.done = true
	r.mu.Unlock()
	return r.cn.write(statusReply(r.seq, r.Caller, s, r.objID))
}

func statusReply(seq uint16, peer uint32, s Status, objID uint32) *Message {
	return NewMessage(MsgStatus, seq, peer).PutU32(AttrStatus, uint32(s)).PutU32(AttrObjID, objID)
}

// statusOf maps a handler's error to the status it answers.
func statusOf(err error) Status {
	if err == nil {
		return StatusOK
	}
	var s Status
	if errors.As(err, &s) {
		return s
	}
	return StatusUnknownError
}

// monitored gives a MONITOR to the handler that was set when it arrived.
func (c *Client) monitored(h func(MonitorMessage), m *Message) {
	mm, err := parseMonitor(m)
	if err != nil {
		c.malformed.Add(1)
		c.logf("ubus: dropped a malformed MONITOR: %v", err)
		return
	}
	if h == nil {
		c.unexpected.Add(1)
		return
	}
	h(mm)
}

// incoming handles an INVOKE, NOTIFY or UNSUBSCRIBE on the dispatch
// goroutine.
func (c *Client) incoming(cn *conn, o *Object, m *Message) {
	if _, hasID := m.ObjID(); !hasID {
		c.malformed.Add(1)
		return
	}
	switch m.Type {
	case MsgNotify:
		active, ok := m.U8(AttrActive)
		if o == nil || !ok {
			c.unexpected.Add(1)
			return
		}
		c.mu.Lock()
		o.active = active != 0
		c.mu.Unlock()
		if o.onActive != nil {
			o.onActive(active != 0)
		}
	case MsgUnsubscribe:
		target, ok := m.U32(AttrTarget)
		if o == nil || o.subscriber == nil || !ok {
			c.unexpected.Add(1)
			return
		}
		o.subscriber.targetGone(target)
	case MsgInvoke:
		c.invoke(cn, o, m)
	}
}

// invoke answers a call, a notification or an event delivery the way
// libubus does.
func (c *Client) invoke(cn *conn, o *Object, m *Message) {
	objID, _ := m.ObjID()
	status := func(s Status) {
		if err := cn.write(statusReply(m.Seq, m.Peer, s, objID)); err != nil {
			c.logf("ubus: answering %s: %v", m.Type, err)
		}
	}
	if o == nil {
		c.unexpected.Add(1)
		status(StatusNotFound)
		return
	}
	method, ok := m.Method()
	if !ok {
		status(StatusInvalidArgument)
		return
	}
	noReply := false
	if v, ok := m.U8(AttrNoReply); ok {
		noReply = v != 0
	}
	var mdef Method
	if o.typ != nil {
		if mdef, ok = o.typ.method(method); !ok {
			status(StatusMethodNotFound)
			return
		}
	}
	args, hasData, err := m.Data()
	if !hasData || err != nil {
		if err != nil {
			c.malformed.Add(1)
			c.logf("ubus: %s %q: %v", m.Type, method, err)
		}
		status(StatusInvalidArgument)
		return
	}
	user, _ := m.String(AttrUser)
	group, _ := m.String(AttrGroup)
	switch {
	case o.listener != nil:
		o.listener.deliver(Event{Name: method, Data: args})
		status(StatusOK) // ubusd drops it (peer 0), libubus sends it anyway
	case o.subscriber != nil:
		o.subscriber.deliver(Notification{Method: method, Data: args, User: user, Group: group,
			Owner: m.Peer, NoReply: noReply})
		if !noReply {
			status(StatusOK)
		}
	default:
		if !argsMatch(mdef.Args, args) {
			status(StatusInvalidArgument)
			return
		}
		r := &Request{Object: o, Method: method, Args: args, User: user, Group: group, Caller: m.Peer,
			c: c, cn: cn, seq: m.Seq, objID: objID}
		var data Table
		var herr error
		if mdef.Handler == nil {
			herr = StatusNotSupported
		} else {
			data, herr = mdef.Handler(c.ctx, r)
		}
		r.mu.Lock()
		deferred := r.deferred
		r.mu.Unlock()
		if deferred {
			return
		}
		if data != nil {
			if err := r.Reply(data); err != nil {
				c.logf("ubus: answering %q: %v", method, err)
			}
		}
		if noReply {
			return
		}
		if err := r.Complete(statusOf(herr)); err != nil {
			c.logf("ubus: answering %q: %v", method, err)
		}
	}
}

func argsMatch(sig []ArgSig, args Table) bool {
	for _, a := range sig {
		if a.Type == TypeUnspec {
			continue
		}
		if v, ok := args.Get(a.Name); ok && v.Type() != a.Type {
			return false
		}
	}
	return true
}
