package ubus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"nemod/ubus/ubusvec"
)

// Client replay: for every recorded connection, a fakeUbusd plays the
// recorded ubusd side to our Client, and a driver makes the Client do what
// the recorded program did, through the public API, one request at a time:
// the Client must send the recorded program's bytes. What the program sent
// by itself falls in three kinds:
//   - requests (ADD_OBJECT, LOOKUP, INVOKE, NOTIFY, ...): the driver makes
//     the matching API call when the fake waits for that frame;
//   - answers to calls of a method of one of its objects: the method's
//     handler gives the recorded answer when the fake waits for it;
//   - answers the library makes by itself ("auto"): completions of events,
//     answers to notifications, errors for calls no handler takes. The
//     driver does nothing for them; the Client must send them unprompted.

type stepKind int

const (
	stepRecv    stepKind = iota // s2c
	stepRequest                 // the driver calls the API
	stepHandler                 // a method handler answers
	stepAuto                    // the library answers by itself
)

type step struct {
	kind  stepKind
	cause int // for answers: the index of the INVOKE answered
	// For requests: the index of the frame that completes it (-1: none
	// recorded).
	completes int
}

type objKind int

const (
	objMethods objKind = iota
	objSubscriber
	objListener
)

// planFile classifies every frame of a recording.
func planFile(t testing.TB, f *ubusvec.File) ([]step, []*Message) {
	t.Helper()
	msgs := make([]*Message, len(f.Frames))
	for i, fr := range f.Frames {
		m, err := ParseMessage(fr.Bytes)
		if err != nil {
			t.Fatalf("%s frame %d: %v", f.Name, i+1, err)
		}
		msgs[i] = m
	}
	// Kinds and signatures of the program's objects, from its ADD_OBJECTs
	// and their recorded answers.
	kinds := map[uint32]objKind{}
	sigs := map[uint32]Signature{}
	typeSig := map[uint32]Signature{}
	registered := map[uint32]bool{}
	for i, m := range msgs {
		if f.Frames[i].C2S && m.Type == MsgInvoke && m.Peer == ObjectEvents {
			if meth, _ := m.Method(); meth == "register" {
				d, _, _ := m.Data()
				id, _ := d.Int32("object")
				registered[uint32(id)] = true
			}
		}
	}
	for i, m := range msgs {
		if !f.Frames[i].C2S || m.Type != MsgAddObject {
			continue
		}
		ans := answer(f, msgs, i, MsgData, 0)
		if ans < 0 {
			continue
		}
		id, _ := msgs[ans].ObjID()
		_, hasPath := m.Path()
		switch {
		case hasPath:
			kinds[id] = objMethods
			if raw, ok := m.Attr(AttrSignature); ok {
				sig, err := ParseSignature(raw)
				if err != nil {
					t.Fatalf("%s frame %d: %v", f.Name, i+1, err)
				}
				sigs[id] = sig
				if tid, ok := msgs[ans].U32(AttrObjType); ok {
					typeSig[tid] = sig
				}
			} else if tid, ok := m.U32(AttrObjType); ok {
				sigs[id] = typeSig[tid]
			}
		case registered[id]:
			kinds[id] = objListener
		default:
			kinds[id] = objSubscriber
		}
	}
	plan := make([]step, len(msgs))
	for i, m := range msgs {
		if !f.Frames[i].C2S {
			plan[i] = step{kind: stepRecv}
			continue
		}
		switch m.Type {
		case MsgStatus, MsgData:
			plan[i] = classifyAnswer(f, msgs, i, kinds, sigs)
		default:
			plan[i] = step{kind: stepRequest, completes: completion(f, msgs, i)}
		}
	}
	return plan, msgs
}

// answer finds the first s2c message of type typ after frame i with frame
// i's seq (and, unless peer is 0, that peer).
func answer(f *ubusvec.File, msgs []*Message, i int, typ MsgType, peer uint32) int {
	for j := i + 1; j < len(msgs); j++ {
		if !f.Frames[j].C2S && msgs[j].Type == typ && msgs[j].Seq == msgs[i].Seq && (peer == 0 || msgs[j].Peer == peer) {
			return j
		}
	}
	return -1
}

func classifyAnswer(f *ubusvec.File, msgs []*Message, i int, kinds map[uint32]objKind, sigs map[uint32]Signature) step {
	m := msgs[i]
	// The INVOKE it answers: the latest s2c one with its seq and peer.
	cause := -1
	for j := i - 1; j >= 0; j-- {
		if !f.Frames[j].C2S && msgs[j].Type == MsgInvoke && msgs[j].Seq == m.Seq && msgs[j].Peer == m.Peer {
			cause = j
			break
		}
	}
	if cause < 0 {
		panic(fmt.Sprintf("%s frame %d answers nothing recorded", f.Name, i+1))
	}
	inv := msgs[cause]
	oid, _ := inv.ObjID()
	if kinds[oid] != objMethods {
		return step{kind: stepAuto, cause: cause}
	}
	meth, _ := inv.Method()
	ms, ok := sigs[oid].Method(meth)
	args, _, _ := inv.Data()
	if !ok || !argsMatch(ms.Args, args) {
		return step{kind: stepAuto, cause: cause}
	}
	return step{kind: stepHandler, cause: cause}
}

// completion finds the frame that completes request i: its final STATUS,
// or for a NOTIFY expecting answers the last subscriber's.
func completion(f *ubusvec.File, msgs []*Message, i int) int {
	m := msgs[i]
	if m.Type == MsgNotify {
		if _, ok := m.U8(AttrNoReply); ok {
			return i
		}
		j := answer(f, msgs, i, MsgStatus, m.Peer)
		if j < 0 {
			return -1
		}
		subs, _ := msgs[j].Subscribers()
		last := j
		for _, s := range subs {
			k := answer(f, msgs, i, MsgStatus, s)
			if k < 0 {
				return -1
			}
			last = max(last, k)
		}
		return last
	}
	return answer(f, msgs, i, MsgStatus, m.Peer)
}

// driver makes a Client repeat a recorded program.
type driver struct {
	t    *testing.T
	f    *ubusvec.File
	fake *fakeUbusd
	c    *Client
	plan []step
	msgs []*Message

	mu        sync.Mutex
	objects   map[uint32]*Object
	listeners map[uint32]*Listener
	subs      map[uint32]*Subscriber
	types     map[uint32]*ObjectType
	handling  map[[2]uint32]*handled
	events    []Event
	notes     []Notification
	monitor   []MonitorMessage

	wg      sync.WaitGroup
	pending []*call
}

type handled struct {
	r    *Request
	done chan error
}

// call is an API call in flight and what the recording says it ends with.
type call struct {
	frame     int
	completes int
	want      Status
	done      chan error
}

func newDriver(t *testing.T, f *ubusvec.File) *driver {
	plan, msgs := planFile(t, f)
	d := &driver{t: t, f: f, plan: plan, msgs: msgs,
		objects: map[uint32]*Object{}, listeners: map[uint32]*Listener{}, subs: map[uint32]*Subscriber{},
		types: map[uint32]*ObjectType{}, handling: map[[2]uint32]*handled{}}
	d.fake = newFake(t, f.Name, f.Frames, plan)
	return d
}

func (d *driver) connect() {
	c, err := Connect(context.Background(), Options{Dial: d.fake.dial, Timeout: 10 * time.Second})
	if err != nil {
		d.t.Fatalf("%s: connect: %v", d.f.Name, err)
	}
	d.c = c
	if c.ID() != d.msgs[0].Peer {
		d.t.Errorf("%s: client id %#08x, HELLO said %#08x", d.f.Name, c.ID(), d.msgs[0].Peer)
	}
}

// handler is every method's handler in a replay: it waits for the driver
// to say how to answer.
func (d *driver) handler(ctx context.Context, r *Request) (Table, error) {
	h := &handled{r: r, done: make(chan error, 1)}
	d.mu.Lock()
	d.handling[[2]uint32{uint32(r.seq), r.Caller}] = h
	d.mu.Unlock()
	select {
	case err := <-h.done:
		return nil, err
	case <-time.After(10 * time.Second):
		d.t.Errorf("%s: handler for %q never told how to answer", d.f.Name, r.Method)
		return nil, StatusTimeout
	}
}

func (d *driver) waitHandler(seq uint16, peer uint32) *handled {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		d.mu.Lock()
		h := d.handling[[2]uint32{uint32(seq), peer}]
		d.mu.Unlock()
		if h != nil {
			return h
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// run plays the whole recording.
func (d *driver) run() {
	d.connect()
	for k, st := range d.plan {
		if st.kind == stepRecv || st.kind == stepAuto {
			continue
		}
		d.settle(k)
		if !d.fake.waitPos(k) {
			break
		}
		m := d.msgs[k]
		if st.kind == stepHandler {
			h := d.waitHandler(m.Seq, m.Peer)
			if h == nil {
				d.t.Errorf("%s frame %d: no handler running for seq %d from %#08x", d.f.Name, k+1, m.Seq, m.Peer)
				break
			}
			if m.Type == MsgData {
				data, _, err := m.Data()
				if err == nil {
					err = h.r.Reply(data)
				}
				if err != nil {
					d.t.Errorf("%s frame %d: %v", d.f.Name, k+1, err)
				}
				continue
			}
			s, _ := m.Status()
			d.mu.Lock()
			delete(d.handling, [2]uint32{uint32(m.Seq), m.Peer})
			d.mu.Unlock()
			if s == StatusOK {
				h.done <- nil
			} else {
				h.done <- s
			}
			continue
		}
		d.request(k)
	}
	d.fake.finish(d.c)
	d.settle(len(d.plan))
	d.wg.Wait()
}

// settle waits for the calls the recording completes before frame k.
func (d *driver) settle(k int) {
	keep := d.pending[:0]
	for _, c := range d.pending {
		if c.completes < 0 || c.completes >= k {
			keep = append(keep, c)
			continue
		}
		select {
		case err := <-c.done:
			if got := statusOf(err); got != c.want || (err != nil && !errors.Is(err, c.want)) {
				d.t.Errorf("%s: the call of frame %d ended with %v, the recording with %v", d.f.Name, c.frame+1, err, c.want)
			}
		case <-time.After(5 * time.Second):
			d.t.Errorf("%s: the call of frame %d did not end", d.f.Name, c.frame+1)
		}
	}
	d.pending = keep
}

// request makes the API call that sends frame k.
func (d *driver) request(k int) {
	m := d.msgs[k]
	st := d.plan[k]
	want := StatusOK
	if st.completes >= 0 && st.completes != k {
		want, _ = d.msgs[st.completes].Status()
	}
	if m.Type == MsgNotify {
		want = StatusOK // the subscribers' answers are not the call's result
		if st.completes >= 0 && st.completes != k {
			if s, _ := d.msgs[answer(d.f, d.msgs, k, MsgStatus, m.Peer)].Status(); s != StatusOK {
				want = s
			}
		}
	}
	fn := d.apiCall(k, m)
	c := &call{frame: k, completes: st.completes, want: want, done: make(chan error, 1)}
	d.pending = append(d.pending, c)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		c.done <- fn()
	}()
}

func (d *driver) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	d.t.Cleanup(cancel)
	return ctx
}

// recordedID is the object id the recorded answer to request k gave.
func (d *driver) recordedID(k int) uint32 {
	j := answer(d.f, d.msgs, k, MsgData, 0)
	if j < 0 {
		return 0
	}
	id, _ := d.msgs[j].ObjID()
	return id
}

// apiCall picks the API call that sends message k.
func (d *driver) apiCall(k int, m *Message) func() error {
	ctx := d.ctx()
	data, _, _ := m.Data()
	method, _ := m.Method()
	switch m.Type {
	case MsgAddObject:
		id := d.recordedID(k)
		path, hasPath := m.Path()
		if !hasPath {
			if d.kindOf(id) == objListener {
				return func() error {
					l, err := d.c.NewListener(ctx, d.onEvent)
					d.mu.Lock()
					d.listeners[id] = l
					d.objects[id] = l.Object()
					d.mu.Unlock()
					return err
				}
			}
			return func() error {
				s, err := d.c.NewSubscriber(ctx, d.onNotify, nil)
				d.mu.Lock()
				d.subs[id] = s
				d.objects[id] = s.Object()
				d.mu.Unlock()
				return err
			}
		}
		var typ *ObjectType
		if tid, ok := m.U32(AttrObjType); ok {
			d.mu.Lock()
			typ = d.types[tid]
			d.mu.Unlock()
			if typ == nil {
				d.t.Fatalf("%s frame %d: type %#08x unknown", d.f.Name, k+1, tid)
			}
		} else {
			raw, _ := m.Attr(AttrSignature)
			sig, _ := ParseSignature(raw)
			var methods []Method
			for _, ms := range sig {
				methods = append(methods, Method{Name: ms.Name, Args: ms.Args, Handler: d.handler})
			}
			typ = NewObjectType(methods...)
			if j := answer(d.f, d.msgs, k, MsgData, 0); j >= 0 {
				if tid, ok := d.msgs[j].U32(AttrObjType); ok {
					d.mu.Lock()
					d.types[tid] = typ
					d.mu.Unlock()
				}
			}
		}
		return func() error {
			o, err := d.c.AddObject(ctx, path, typ, nil)
			d.mu.Lock()
			d.objects[id] = o
			d.mu.Unlock()
			return err
		}
	case MsgRemoveObject:
		id, _ := m.ObjID()
		return func() error { return d.object(id).Remove(ctx) }
	case MsgLookup:
		path, ok := m.Path()
		if ok && path == "" {
			return func() error { _, err := d.c.RoundTrip(ctx, m); return err }
		}
		return func() error { _, err := d.c.Lookup(ctx, path); return err }
	case MsgPing:
		return func() error { return d.c.Ping(ctx) }
	case MsgSubscribe:
		id, _ := m.ObjID()
		target, _ := m.U32(AttrTarget)
		return func() error {
			d.mu.Lock()
			s := d.subs[id]
			d.mu.Unlock()
			return s.Subscribe(ctx, target)
		}
	case MsgNotify:
		id, _ := m.ObjID()
		if _, ok := m.U8(AttrNoReply); ok {
			return func() error { return d.object(id).NotifyNoReply(method, data) }
		}
		return func() error { _, err := d.object(id).Notify(ctx, method, data); return err }
	case MsgInvoke:
		id, _ := m.ObjID()
		_, hasMethod := m.Method()
		switch {
		case !hasMethod:
			return func() error { _, err := d.c.RoundTrip(ctx, m); return err }
		case id == ObjectEvents && method == "register":
			oid, _ := data.Int32("object")
			pattern, _ := data.String("pattern")
			return func() error {
				d.mu.Lock()
				l := d.listeners[uint32(oid)]
				d.mu.Unlock()
				return l.Register(ctx, pattern)
			}
		case id == ObjectEvents && method == "send":
			ev, _ := data.String("id")
			payload, _ := data.Table("data")
			return func() error { return d.c.Send(ctx, ev, payload) }
		case id == ObjectMonitor && method == "add":
			return func() error { return d.c.Monitor(ctx, d.onMonitor) }
		case id == ObjectMonitor && method == "remove":
			return func() error { return d.c.StopMonitor(ctx) }
		}
		return func() error { _, err := d.c.Invoke(ctx, m.Peer, method, data); return err }
	}
	// Anything else (an unknown message type) goes out as it is.
	return func() error { _, err := d.c.RoundTrip(ctx, m); return err }
}

func (d *driver) kindOf(id uint32) objKind {
	for i, m := range d.msgs {
		if d.f.Frames[i].C2S && m.Type == MsgInvoke && m.Peer == ObjectEvents {
			if meth, _ := m.Method(); meth == "register" {
				dd, _, _ := m.Data()
				if oid, _ := dd.Int32("object"); uint32(oid) == id {
					return objListener
				}
			}
		}
	}
	return objSubscriber
}

func (d *driver) object(id uint32) *Object {
	d.mu.Lock()
	defer d.mu.Unlock()
	o := d.objects[id]
	if o == nil {
		d.t.Fatalf("%s: object %#08x unknown", d.f.Name, id)
	}
	return o
}

func (d *driver) onEvent(e Event) {
	d.mu.Lock()
	d.events = append(d.events, e)
	d.mu.Unlock()
}

func (d *driver) onNotify(n Notification) {
	d.mu.Lock()
	d.notes = append(d.notes, n)
	d.mu.Unlock()
}

func (d *driver) onMonitor(m MonitorMessage) {
	d.mu.Lock()
	d.monitor = append(d.monitor, m)
	d.mu.Unlock()
}

// TestReplayClientAPI drives the Client through every recorded connection
// of both recordings, checking every byte it sends (see the top of this
// file). The hand-written probe's deliberately odd requests go through
// RoundTrip.
func TestReplayClientAPI(t *testing.T) {
	files := allVectorFiles(t)
	n := 0
	for _, f := range files {
		if f.Truncated > 0 {
			continue // TestReplayTruncated
		}
		if f.ExcerptFirst > 1 {
			continue // part of a session, which is replayed whole
		}
		t.Run(f.Name, func(t *testing.T) {
			d := newDriver(t, f)
			d.run()
		})
		n++
	}
	// 96 recordings, less the 2 cut short and the 13 excerpts of the
	// two sessions that begin mid-connection.
	if n != 81 {
		t.Errorf("%d recordings replayed, want 81", n)
	}
}
