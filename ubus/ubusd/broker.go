package ubusd

import (
	"encoding/binary"
	"math/rand/v2"
	"sort"
	"strings"

	"nemod/ubus"
)

// IDKind says what an id is for. ubusd keeps one id space per kind, so a
// client and an object may have the same number.
type IDKind int

// The id spaces.
const (
	ClientID IDKind = iota
	ObjectID
	TypeID
)

// IDSource hands out ids. New must return an id of at least
// ubus.SystemObjectMax for which taken is false. ubusd draws them at
// random; tests give the ones a recording shows.
type IDSource interface {
	New(kind IDKind, taken func(uint32) bool) uint32
}

// RandomIDs is the IDSource ubusd's behaviour calls for: random 32-bit ids,
// skipping the system range and those in use.
type RandomIDs struct{}

// New implements IDSource.
func (RandomIDs) New(_ IDKind, taken func(uint32) bool) uint32 {
	for {
		id := rand.Uint32()
		if id >= ubus.SystemObjectMax && !taken(id) {
			return id
		}
	}
}

// Identity is what the broker knows about a client's credentials. ubusd
// reads them with SO_PEERCRED and puts the names into the calls it forwards;
// uid 0 and gid 0 are needed for the monitor (ACLs, which ubusd skips for
// root, are not implemented: every client is treated as root would be).
type Identity struct {
	User, Group string
	UID, GID    uint32
}

// Root is the identity of uid 0 on a usual system.
var Root = Identity{User: "root", Group: "root"}

// Output is one message for one client, in the order the broker made them.
type Output struct {
	Client uint32
	Frame  []byte
}

// Stats counts what the broker refused.
type Stats struct {
	Malformed  uint64 // messages from clients that did not decode
	Dropped    uint64 // answers for unknown objects or callers, discarded as ubusd does
	Clients    int    // connected now
	Objects    int    // client objects now
	Events     uint64 // event deliveries
	Forwarded  uint64 // calls and notifications forwarded to objects
	Subscribes uint64
}

// Broker is ubusd's logic without its sockets: it takes messages from
// clients and returns the messages to send, reproducing ubusd's answers,
// their order and its counters byte for byte. It does no I/O and is not
// safe for concurrent use; Server runs one on sockets.
type Broker struct {
	ids     IDSource
	clients map[uint32]*client
	objects map[uint32]*object
	paths   map[string]*object
	types   map[uint32]*objType
	// patterns are the event patterns, kept sorted as ubusd's tree is
	// (by string; equal ones in registration order).
	patterns    []*pattern
	patternSeq  uint64
	eventSeq    uint32
	objEventSeq uint64
	monitors    []*monitor

	out   []Output
	stats Stats
}

type client struct {
	id      uint32
	ident   Identity
	objects []*object // newest first, the order ubusd frees them in
}

type object struct {
	id      uint32
	client  *client // nil for ubusd's own objects
	path    string
	hasPath bool
	typ     *objType
	// subscribers: the subscriptions to this object; targets: this
	// object's own subscriptions. Both newest first.
	subscribers []*subscription
	targets     []*subscription
	events      []*pattern
	invokeSeq   uint16
	eventSeen   uint64
	system      func(b *Broker, cl *client, m *ubus.Message, method string) int
}

type objType struct {
	id      uint32
	refs    int
	methods [][]byte // each method's blobmsg attribute, as received
}

type subscription struct {
	subscriber, target *object
}

type pattern struct {
	key     string
	partial bool
	obj     *object
	order   uint64
}

type monitor struct {
	cl  *client
	seq uint32
}

// noStatus tells the dispatcher that a handler answered (or forwarded)
// itself.
const noStatus = -1

// New makes a broker with ubusd's built-in objects: events (1), acl (2) and
// monitor (3). A nil IDSource means RandomIDs.
func New(ids IDSource) *Broker {
	if ids == nil {
		ids = RandomIDs{}
	}
	b := &Broker{ids: ids, clients: map[uint32]*client{}, objects: map[uint32]*object{},
		paths: map[string]*object{}, types: map[uint32]*objType{}}
	b.objects[ubus.ObjectEvents] = &object{id: ubus.ObjectEvents, system: (*Broker).eventsCall}
	b.objects[ubus.ObjectACL] = &object{id: ubus.ObjectACL, system: (*Broker).aclCall}
	b.objects[ubus.ObjectMonitor] = &object{id: ubus.ObjectMonitor, system: (*Broker).monitorCall}
	return b
}

// Stats returns the counters.
func (b *Broker) Stats() Stats {
	s := b.stats
	s.Clients = len(b.clients)
	n := 0
	for _, o := range b.objects {
		if o.client != nil {
			n++
		}
	}
	s.Objects = n
	return s
}

func (b *Broker) flush() []Output {
	out := b.out
	b.out = nil
	return out
}

// Connect admits a client and returns its id and the greeting.
func (b *Broker) Connect(ident Identity) (uint32, []Output) {
	id := b.ids.New(ClientID, func(v uint32) bool { return b.clients[v] != nil })
	cl := &client{id: id, ident: ident}
	b.clients[id] = cl
	hello := ubus.NewMessage(ubus.MsgHello, 0, id)
	b.send(cl, hello)
	return id, b.flush()
}

// Disconnect forgets a client: it stops monitoring and its objects go,
// which tells their subscribers and owners of its subscriptions.
func (b *Broker) Disconnect(id uint32) []Output {
	cl := b.clients[id]
	if cl == nil {
		return nil
	}
	b.monitorDrop(cl)
	for len(cl.objects) > 0 {
		b.freeObject(cl.objects[0])
	}
	delete(b.clients, id)
	return b.flush()
}

// Handle takes one framed message from a client.
func (b *Broker) Handle(id uint32, frame []byte) []Output {
	cl := b.clients[id]
	if cl == nil {
		return nil
	}
	m, err := ubus.ParseMessage(frame)
	if err == nil {
		b.monitorCopy(cl, frame, false)
	} else {
		// ubusd would copy it to the monitors as it is; they would get a
		// MONITOR they cannot decode. It is counted instead.
		b.stats.Malformed++
		if len(frame) >= ubus.HeaderLen {
			// Answer what can be answered: the header names the request.
			seq := binary.BigEndian.Uint16(frame[2:])
			peer := binary.BigEndian.Uint32(frame[4:])
			b.status(cl, seq, peer, ubus.StatusInvalidArgument)
		}
		return b.flush()
	}
	ret := int(ubus.StatusInvalidCommand)
	switch m.Type {
	case ubus.MsgPing:
		echo := *m
		echo.Type = ubus.MsgData
		b.send(cl, &echo)
		ret = 0
	case ubus.MsgAddObject:
		ret = b.addObject(cl, m)
	case ubus.MsgRemoveObject:
		ret = b.removeObject(cl, m)
	case ubus.MsgLookup:
		ret = b.lookup(cl, m)
	case ubus.MsgInvoke:
		ret = b.invoke(cl, m)
	case ubus.MsgStatus, ubus.MsgData:
		b.response(cl, m)
		ret = noStatus
	case ubus.MsgSubscribe:
		ret = b.subscribe(cl, m)
	case ubus.MsgUnsubscribe:
		ret = b.unsubscribe(cl, m)
	case ubus.MsgNotify:
		ret = b.notify(cl, m)
	}
	if ret != noStatus {
		b.status(cl, m.Seq, m.Peer, ubus.Status(ret))
	}
	return b.flush()
}

// status sends ubusd's own STATUS, which echoes the request's seq and peer.
func (b *Broker) status(cl *client, seq uint16, peer uint32, s ubus.Status) {
	b.send(cl, ubus.NewMessage(ubus.MsgStatus, seq, peer).PutU32(ubus.AttrStatus, uint32(s)))
}

// send queues m for cl, after copies for the monitors (ubusd copies every
// message but MONITOR ones before sending it).
func (b *Broker) send(cl *client, m *ubus.Message) {
	f, err := m.Marshal()
	if err != nil {
		// Only an oversized message fails, and every message here is at
		// most a received one plus a few attributes.
		b.stats.Dropped++
		return
	}
	b.sendFrame(cl, f)
}

func (b *Broker) sendFrame(cl *client, f []byte) {
	if ubus.MsgType(f[1]) != ubus.MsgMonitor {
		b.monitorCopy(cl, f, true)
	}
	b.out = append(b.out, Output{cl.id, f})
}

func (b *Broker) monitorCopy(cl *client, f []byte, sent bool) {
	if len(b.monitors) == 0 {
		return
	}
	m := ubus.NewMessage(ubus.MsgMonitor, 0, 0).
		PutU32(ubus.MonitorClient, cl.id).
		PutU32(ubus.MonitorPeer, binary.BigEndian.Uint32(f[4:])).
		PutU32(ubus.MonitorSeq, uint32(binary.BigEndian.Uint16(f[2:]))).
		PutU32(ubus.MonitorType, uint32(f[1]))
	s := uint8(0)
	if sent {
		s = 1
	}
	m.PutU8(ubus.MonitorSend, s).PutRaw(ubus.MonitorData, f[ubus.HeaderLen+4:])
	for _, mon := range b.monitors {
		mon.seq++
		m.Seq = uint16(mon.seq)
		if out, err := m.Marshal(); err == nil {
			b.out = append(b.out, Output{mon.cl.id, out})
		}
	}
}

func (b *Broker) findObject(m *ubus.Message, id ubus.AttrID) (*object, bool) {
	v, ok := m.U32(id)
	if !ok {
		return nil, false
	}
	return b.objects[v], true
}

func (b *Broker) addObject(cl *client, m *ubus.Message) int {
	var typ *objType
	if tid, ok := m.U32(ubus.AttrObjType); ok {
		typ = b.types[tid]
		if typ != nil {
			typ.refs++
		}
	} else if sig, ok := m.Attr(ubus.AttrSignature); ok {
		typ = b.newType(sig)
	}
	o := &object{client: cl, typ: typ}
	o.id = b.ids.New(ObjectID, func(v uint32) bool { return b.objects[v] != nil })
	if path, ok := m.Path(); ok {
		if b.paths[path] != nil {
			b.unrefType(typ)
			return int(ubus.StatusInvalidArgument)
		}
		o.path, o.hasPath = path, true
	}
	// The object holds the type's reference taken above.
	b.objects[o.id] = o
	if o.hasPath {
		b.paths[o.path] = o
		b.objectEvent(o, "ubus.object.add")
	}
	cl.objects = append([]*object{o}, cl.objects...)
	reply := ubus.NewMessage(ubus.MsgData, m.Seq, m.Peer).PutU32(ubus.AttrObjID, o.id)
	if _, ok := m.Attr(ubus.AttrSignature); ok && typ != nil {
		reply.PutU32(ubus.AttrObjType, typ.id)
	}
	b.send(cl, reply)
	return 0
}

// newType makes a type from a signature; a signature that is not a list
// of named blobmsg attributes gives no type, and the object is made without
// one (what ubusd does).
func (b *Broker) newType(sig []byte) *objType {
	typ := &objType{refs: 1}
	typ.id = b.ids.New(TypeID, func(v uint32) bool { return b.types[v] != nil })
	for off := 0; off < len(sig); {
		if len(sig)-off < 4 {
			return nil
		}
		l := int(binary.BigEndian.Uint32(sig[off:]) & 0xffffff)
		if l < 4 || off+l > len(sig) || sig[off]&0x80 == 0 {
			return nil
		}
		if _, err := ubus.ParseTable(sig[off : off+((l+3)&^3)]); err != nil {
			return nil
		}
		typ.methods = append(typ.methods, sig[off:off+l])
		off += (l + 3) &^ 3
	}
	b.types[typ.id] = typ
	return typ
}

func (b *Broker) unrefType(t *objType) {
	if t == nil {
		return
	}
	t.refs--
	if t.refs <= 0 {
		delete(b.types, t.id)
	}
}

func (b *Broker) removeObject(cl *client, m *ubus.Message) int {
	o, ok := b.findObject(m, ubus.AttrObjID)
	switch {
	case !ok:
		return int(ubus.StatusInvalidArgument)
	case o == nil:
		return int(ubus.StatusNotFound)
	case o.client != cl:
		return int(ubus.StatusPermissionDenied)
	}
	reply := ubus.NewMessage(ubus.MsgData, m.Seq, m.Peer).PutU32(ubus.AttrObjID, o.id)
	if o.typ != nil && o.typ.refs == 1 {
		reply.PutU32(ubus.AttrObjType, o.typ.id)
	}
	b.send(cl, reply)
	b.freeObject(o)
	return 0
}

// freeObject removes an object the way ubusd does, in its order: its own
// subscriptions end (owners that lose their last subscriber hear it), its
// subscribers get UNSUBSCRIBE, its event patterns go, "ubus.object.remove"
// is sent.
func (b *Broker) freeObject(o *object) {
	for len(o.targets) > 0 {
		b.unsubscribeOne(o.targets[0])
	}
	for len(o.subscribers) > 0 {
		s := o.subscribers[0]
		s.subscriber.invokeSeq++
		b.send(s.subscriber.client, ubus.NewMessage(ubus.MsgUnsubscribe, s.subscriber.invokeSeq, 0).
			PutU32(ubus.AttrObjID, s.subscriber.id).PutU32(ubus.AttrTarget, o.id))
		b.unsubscribeOne(s)
	}
	for _, p := range o.events {
		b.dropPattern(p)
	}
	o.events = nil
	if o.hasPath {
		b.objectEvent(o, "ubus.object.remove")
		delete(b.paths, o.path)
	}
	if cl := o.client; cl != nil {
		for i, x := range cl.objects {
			if x == o {
				cl.objects = append(cl.objects[:i], cl.objects[i+1:]...)
				break
			}
		}
	}
	delete(b.objects, o.id)
	b.unrefType(o.typ)
}

func (b *Broker) lookup(cl *client, m *ubus.Message) int {
	if _, ok := m.Attr(ubus.AttrObjPath); !ok {
		for _, o := range b.sortedPaths("") {
			b.sendObject(cl, m, o)
		}
		return 0
	}
	path, _ := m.Path()
	switch {
	case path == "":
		return int(ubus.StatusInvalidArgument)
	case !strings.HasSuffix(path, "*"):
		o := b.paths[path]
		if o == nil {
			return int(ubus.StatusNotFound)
		}
		b.sendObject(cl, m, o)
		return 0
	}
	found := b.sortedPaths(strings.TrimSuffix(path, "*"))
	if len(found) == 0 {
		return int(ubus.StatusNotFound)
	}
	for _, o := range found {
		b.sendObject(cl, m, o)
	}
	return 0
}

// sortedPaths lists the objects whose path starts with prefix, in byte
// order as ubusd's tree holds them.
func (b *Broker) sortedPaths(prefix string) []*object {
	var out []*object
	for p, o := range b.paths {
		if strings.HasPrefix(p, prefix) {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// sendObject answers a lookup with one object; objects without a type are
// not listed.
func (b *Broker) sendObject(cl *client, req *ubus.Message, o *object) {
	if o.typ == nil {
		return
	}
	var sig []byte
	for _, mth := range o.typ.methods {
		sig = append(sig, mth...)
		for len(sig)%4 != 0 {
			sig = append(sig, 0)
		}
	}
	if sig == nil {
		sig = []byte{}
	}
	b.send(cl, ubus.NewMessage(ubus.MsgData, req.Seq, req.Peer).
		PutString(ubus.AttrObjPath, o.path).PutU32(ubus.AttrObjID, o.id).
		PutU32(ubus.AttrObjType, o.typ.id).PutRaw(ubus.AttrSignature, sig))
}

func (b *Broker) invoke(cl *client, m *ubus.Message) int {
	method, okM := m.Method()
	o, okO := b.findObject(m, ubus.AttrObjID)
	switch {
	case !okM || !okO:
		return int(ubus.StatusInvalidArgument)
	case o == nil:
		return int(ubus.StatusNotFound)
	case o.client == nil:
		return o.system(b, cl, m, method)
	}
	b.forward(cl, o, m, method, false)
	return noStatus
}

// forward passes a call or a notification to the owner of o: seq stays,
// peer becomes the caller's id, ubusd adds the caller's user and group.
func (b *Broker) forward(cl *client, o *object, m *ubus.Message, method string, noReply bool) {
	f := ubus.NewMessage(ubus.MsgInvoke, m.Seq, cl.id)
	if noReply {
		f.PutU8(ubus.AttrNoReply, 1)
	}
	f.PutU32(ubus.AttrObjID, o.id).PutString(ubus.AttrMethod, method)
	if cl.ident.User != "" {
		f.PutString(ubus.AttrUser, cl.ident.User)
	}
	if cl.ident.Group != "" {
		f.PutString(ubus.AttrGroup, cl.ident.Group)
	}
	if data, ok := m.Attr(ubus.AttrData); ok {
		f.PutRaw(ubus.AttrData, data)
	}
	b.stats.Forwarded++
	b.send(o.client, f)
}

// response passes an owner's DATA or STATUS to the caller its peer names,
// with the peer rewritten to the object id; anything else is dropped
// (the STATUS libubus sends for an event names no caller).
func (b *Broker) response(cl *client, m *ubus.Message) {
	id, ok := m.ObjID()
	_, hasStatus := m.Status()
	_, hasData := m.Attr(ubus.AttrData)
	if !ok || (m.Type == ubus.MsgStatus && !hasStatus) || (m.Type == ubus.MsgData && !hasData) {
		b.stats.Dropped++
		return
	}
	o := b.objects[id]
	dst := b.clients[m.Peer]
	if o == nil || o.client != cl || dst == nil {
		b.stats.Dropped++
		return
	}
	fw := *m
	fw.Peer = id
	b.send(dst, &fw)
}

func (b *Broker) subscribe(cl *client, m *ubus.Message) int {
	o, ok1 := b.findObject(m, ubus.AttrObjID)
	t, ok2 := b.findObject(m, ubus.AttrTarget)
	switch {
	case !ok1 || !ok2:
		return int(ubus.StatusInvalidArgument)
	case o == nil:
		return int(ubus.StatusNotFound)
	case o.client != cl:
		return int(ubus.StatusInvalidArgument)
	case t == nil || t.client == nil:
		return int(ubus.StatusNotFound)
	case t.client == cl:
		return int(ubus.StatusInvalidArgument)
	case !t.hasPath && t.client.ident.User != cl.ident.User && t.client.ident.Group != cl.ident.Group:
		// An anonymous object is only for clients of the same user or group.
		return int(ubus.StatusNotFound)
	}
	s := &subscription{subscriber: o, target: t}
	first := len(t.subscribers) == 0
	t.subscribers = append([]*subscription{s}, t.subscribers...)
	o.targets = append([]*subscription{s}, o.targets...)
	b.stats.Subscribes++
	if first {
		b.activeNotify(t)
	}
	return 0
}

func (b *Broker) unsubscribe(cl *client, m *ubus.Message) int {
	o, ok1 := b.findObject(m, ubus.AttrObjID)
	tid, ok2 := m.U32(ubus.AttrTarget)
	switch {
	case !ok1 || !ok2:
		return int(ubus.StatusInvalidArgument)
	case o == nil:
		return int(ubus.StatusNotFound)
	case o.client != cl:
		return int(ubus.StatusInvalidArgument)
	}
	for _, s := range o.targets {
		if s.target.id == tid {
			b.unsubscribeOne(s)
			return 0
		}
	}
	return int(ubus.StatusNotFound)
}

func (b *Broker) unsubscribeOne(s *subscription) {
	s.target.subscribers = without(s.target.subscribers, s)
	s.subscriber.targets = without(s.subscriber.targets, s)
	if len(s.target.subscribers) == 0 {
		b.activeNotify(s.target)
	}
}

func without(list []*subscription, s *subscription) []*subscription {
	for i, x := range list {
		if x == s {
			return append(list[:i:i], list[i+1:]...)
		}
	}
	return list
}

// activeNotify tells an owner whether its object now has subscribers.
func (b *Broker) activeNotify(o *object) {
	o.invokeSeq++
	active := uint8(0)
	if len(o.subscribers) > 0 {
		active = 1
	}
	b.send(o.client, ubus.NewMessage(ubus.MsgNotify, o.invokeSeq, 0).
		PutU32(ubus.AttrObjID, o.id).PutU8(ubus.AttrActive, active))
}

func (b *Broker) notify(cl *client, m *ubus.Message) int {
	method, okM := m.Method()
	o, okO := b.findObject(m, ubus.AttrObjID)
	if !okM || !okO {
		return int(ubus.StatusInvalidArgument)
	}
	noReply := false
	if v, ok := m.U8(ubus.AttrNoReply); ok {
		noReply = v != 0
	}
	switch {
	case o == nil:
		return int(ubus.StatusNotFound)
	case o.client != cl:
		return int(ubus.StatusPermissionDenied)
	}
	if !noReply {
		var subs []byte
		for _, s := range o.subscribers {
			subs = binary.BigEndian.AppendUint32(append(subs, 0, 0, 0, 8), s.subscriber.id)
		}
		if subs == nil {
			subs = []byte{}
		}
		b.send(cl, ubus.NewMessage(ubus.MsgStatus, m.Seq, m.Peer).PutU32(ubus.AttrObjID, o.id).
			PutRaw(ubus.AttrSubscribers, subs).PutU32(ubus.AttrStatus, 0))
	}
	for _, s := range o.subscribers {
		b.forward(cl, s.subscriber, m, method, noReply)
	}
	return noStatus
}

// eventsCall is ubusd's events object: "register" a pattern for one of the
// caller's objects, "send" an event.
func (b *Broker) eventsCall(cl *client, m *ubus.Message, method string) int {
	raw, ok := m.Attr(ubus.AttrData)
	if !ok {
		if method == "register" || method == "send" {
			return int(ubus.StatusInvalidArgument)
		}
		return int(ubus.StatusInvalidCommand)
	}
	args, err := ubus.ParseTable(raw)
	switch method {
	case "register":
		if err != nil {
			return int(ubus.StatusInvalidArgument)
		}
		return b.register(cl, args)
	case "send":
		if err != nil {
			return int(ubus.StatusInvalidArgument)
		}
		id, okID := last[ubus.String](args, "id")
		data, okData := last[ubus.Table](args, "data")
		if !okID || !okData {
			return int(ubus.StatusInvalidArgument)
		}
		if strings.HasPrefix(string(id), "ubus.") {
			return int(ubus.StatusPermissionDenied)
		}
		enc, _ := ubus.EncodeTable(data)
		b.event(cl, string(id), enc)
		return 0
	}
	return int(ubus.StatusInvalidCommand)
}

// last finds a member by name and type as ubusd reads its arguments: the
// last one of that name and type counts.
func last[T ubus.Value](t ubus.Table, name string) (T, bool) {
	var v T
	found := false
	for _, f := range t {
		if x, ok := f.Value.(T); ok && f.Name == name {
			v, found = x, true
		}
	}
	return v, found
}

func (b *Broker) register(cl *client, args ubus.Table) int {
	oid, ok1 := last[ubus.Int32](args, "object")
	pat, ok2 := last[ubus.String](args, "pattern")
	if !ok1 || !ok2 {
		return int(ubus.StatusInvalidArgument)
	}
	if uint32(oid) < ubus.SystemObjectMax {
		return int(ubus.StatusPermissionDenied)
	}
	o := b.objects[uint32(oid)]
	switch {
	case o == nil:
		return int(ubus.StatusNotFound)
	case o.client != cl, pat == "":
		return int(ubus.StatusPermissionDenied)
	}
	p := &pattern{key: string(pat), obj: o}
	if strings.HasSuffix(p.key, "*") {
		p.key, p.partial = strings.TrimSuffix(p.key, "*"), true
	}
	b.patternSeq++
	p.order = b.patternSeq
	i := sort.Search(len(b.patterns), func(i int) bool { return b.patterns[i].key > p.key })
	b.patterns = append(b.patterns[:i], append([]*pattern{p}, b.patterns[i:]...)...)
	o.events = append([]*pattern{p}, o.events...)
	return 0
}

func (b *Broker) dropPattern(p *pattern) {
	for i, x := range b.patterns {
		if x == p {
			b.patterns = append(b.patterns[:i], b.patterns[i+1:]...)
			return
		}
	}
}

// event delivers an event to every object with a matching pattern, once
// per object, never to the sender's own objects (from is nil for ubusd's
// own events, which reach everyone). It walks the sorted patterns the way
// ubusd does, so receivers get their seq numbers in ubusd's order.
func (b *Broker) event(from *client, id string, data []byte) {
	b.objEventSeq++
	matchLen := 0
	for _, p := range b.patterns {
		cur, full := matchLength(id, p.key)
		if cur < matchLen {
			break
		}
		matchLen = cur
		if !full && (!p.partial || matchLen != len(p.key)) {
			continue
		}
		o := p.obj
		if from != nil && o.client == from {
			continue
		}
		if o.eventSeen == b.objEventSeq {
			continue
		}
		o.eventSeen = b.objEventSeq
		b.eventSeq++
		b.stats.Events++
		b.send(o.client, ubus.NewMessage(ubus.MsgInvoke, uint16(b.eventSeq), 0).
			PutU32(ubus.AttrObjID, o.id).PutString(ubus.AttrMethod, id).PutRaw(ubus.AttrData, data))
	}
}

// matchLength counts the leading bytes a and b share and tells whether
// they are equal.
func matchLength(a, b string) (int, bool) {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n, n == len(a) && n == len(b)
}

func (b *Broker) objectEvent(o *object, name string) {
	data, _ := ubus.EncodeTable(ubus.Table{{Name: "id", Value: ubus.Int32(o.id)}, {Name: "path", Value: ubus.String(o.path)}})
	b.event(nil, name, data)
}

// aclCall is ubusd's acl object. Without ACL files there is nothing to
// report but the ACL sequence, which starts at 1 once ubusd has loaded
// its (empty) ACL directory.
func (b *Broker) aclCall(cl *client, m *ubus.Message, method string) int {
	if method != "query" {
		return int(ubus.StatusInvalidCommand)
	}
	reply := ubus.NewMessage(ubus.MsgData, m.Seq, m.Peer).PutU32(ubus.AttrObjID, ubus.ObjectACL)
	reply.PutTable(ubus.AttrData, ubus.Table{{Name: "seq", Value: ubus.Int32(1)}, {Name: "acl", Value: ubus.Array{}}})
	b.send(cl, reply)
	return 0
}

// monitorCall is ubusd's monitor object, for root only.
func (b *Broker) monitorCall(cl *client, m *ubus.Message, method string) int {
	if cl.ident.UID != 0 || cl.ident.GID != 0 {
		return int(ubus.StatusPermissionDenied)
	}
	switch method {
	case "add":
		b.monitorDrop(cl)
		b.monitors = append(b.monitors, &monitor{cl: cl})
		return 0
	case "remove":
		b.monitorDrop(cl)
		return 0
	}
	return int(ubus.StatusMethodNotFound)
}

func (b *Broker) monitorDrop(cl *client) {
	for i, mon := range b.monitors {
		if mon.cl == cl {
			b.monitors = append(b.monitors[:i], b.monitors[i+1:]...)
			return
		}
	}
}
