package netifd

import (
	"context"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"nemod/ubus"
	"nemod/ubus/ubusd"
	"nemod/ubus/ubusvec"
)

// The follower test runs our ubusd with netifd played from its recorded
// connection: a player connects first and sends, in order, the requests
// the real netifd sent (publishing its objects, sending its events and
// notifications), and answers the follower's dump with a dump netifd
// recorded. ubusd gets the recorded ids for the player's objects, so the
// recorded NOTIFY frames go out unchanged. A fake clock follows the
// recording's, so that lifetimes and uptimes come out as netifd meant them.

// recordedIDs gives ubusd, in order, the ids the recording shows for the
// player's connection and objects; then random ones.
type recordedIDs struct {
	mu   sync.Mutex
	next map[ubusd.IDKind][]uint32
}

func (r *recordedIDs) New(kind ubusd.IDKind, taken func(uint32) bool) uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if q := r.next[kind]; len(q) > 0 && !taken(q[0]) {
		r.next[kind] = q[1:]
		return q[0]
	}
	return ubusd.RandomIDs{}.New(kind, taken)
}

type player struct {
	t      *testing.T
	frames []ubusvec.Frame
	msgs   []*ubus.Message
	conn   net.Conn
	wmu    sync.Mutex
	dump   atomic.Pointer[ubus.Table]
	dumps  atomic.Int32
	done   chan struct{}
	pong   chan struct{}
}

// pingSeq numbers the player's PING; netifd's own requests stay below.
const pingSeq = 0xfff0

func loadSession(t *testing.T) *player {
	p := &player{t: t, frames: frames(t, "session.netifd.json")}
	for _, f := range p.frames {
		m, err := ubus.ParseMessage(f.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		p.msgs = append(p.msgs, m)
	}
	return p
}

// ids lists the ids ubusd gave netifd's connection and objects.
func (p *player) ids() *recordedIDs {
	r := &recordedIDs{next: map[ubusd.IDKind][]uint32{ubusd.ClientID: {p.msgs[0].Peer}}}
	for i, m := range p.msgs {
		if !p.frames[i].C2S || m.Type != ubus.MsgAddObject {
			continue
		}
		for j := i + 1; j < len(p.msgs); j++ {
			a := p.msgs[j]
			if !p.frames[j].C2S && a.Type == ubus.MsgData && a.Seq == m.Seq {
				if _, sig := m.Attr(ubus.AttrSignature); sig {
					tid, _ := a.U32(ubus.AttrObjType)
					r.next[ubusd.TypeID] = append(r.next[ubusd.TypeID], tid)
				}
				oid, _ := a.ObjID()
				r.next[ubusd.ObjectID] = append(r.next[ubusd.ObjectID], oid)
				break
			}
		}
	}
	return r
}

// recordedDumps returns the dump answers netifd gave in the run, with the
// time on the recording's clock.
func (p *player) recordedDumps() (tables []ubus.Table, at []float64) {
	for i, m := range p.msgs {
		if meth, _ := m.Method(); p.frames[i].C2S || m.Type != ubus.MsgInvoke || meth != "dump" {
			continue
		}
		for j := i + 1; j < len(p.msgs); j++ {
			if a := p.msgs[j]; p.frames[j].C2S && a.Type == ubus.MsgData && a.Seq == m.Seq && a.Peer == m.Peer {
				d, _, err := a.Data()
				if err != nil {
					p.t.Fatal(err)
				}
				tables, at = append(tables, d), append(at, p.frames[j].T)
				break
			}
		}
	}
	return
}

// connect opens the player's connection and starts answering dumps.
func (p *player) connect(path string) {
	c, err := net.Dial("unix", path)
	if err != nil {
		p.t.Fatal(err)
	}
	b, err := ubus.ReadFrame(c)
	if err != nil {
		p.t.Fatal(err)
	}
	if hello, _ := ubus.ParseMessage(b); hello.Peer != p.msgs[0].Peer {
		p.t.Fatalf("player is %#08x, netifd was %#08x", hello.Peer, p.msgs[0].Peer)
	}
	p.conn, p.done, p.pong = c, make(chan struct{}), make(chan struct{}, 1)
	p.dumps.Store(0)
	go p.answer(c, p.done)
}

func (p *player) answer(c net.Conn, done chan struct{}) {
	defer close(done)
	for {
		b, err := ubus.ReadFrame(c)
		if err != nil {
			return
		}
		m, err := ubus.ParseMessage(b)
		if err == nil && m.Type == ubus.MsgStatus && m.Seq == pingSeq {
			p.pong <- struct{}{}
			continue
		}
		if err != nil || m.Type != ubus.MsgInvoke || m.Peer == 0 {
			continue // answers to netifd's own requests, event deliveries
		}
		id, _ := m.ObjID()
		meth, _ := m.Method()
		st := ubus.StatusMethodNotFound
		if meth == "dump" {
			d := ubus.NewMessage(ubus.MsgData, m.Seq, m.Peer).PutU32(ubus.AttrObjID, id)
			d.PutTable(ubus.AttrData, *p.dump.Load())
			p.write(d)
			st = ubus.StatusOK
			p.dumps.Add(1)
		}
		p.write(ubus.NewMessage(ubus.MsgStatus, m.Seq, m.Peer).PutU32(ubus.AttrStatus, uint32(st)).PutU32(ubus.AttrObjID, id))
	}
}

func (p *player) write(m *ubus.Message) {
	b, err := m.Marshal()
	if err != nil {
		p.t.Error(err)
		return
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.conn.Write(b)
}

// play sends netifd's own requests among the frames with indexes [from,
// to) (counted from 0), with before(i) called before each.
func (p *player) play(from, to int, before func(i int, m *ubus.Message)) {
	for i := from; i < to && i < len(p.msgs); i++ {
		m := p.msgs[i]
		if !p.frames[i].C2S {
			continue
		}
		switch m.Type {
		case ubus.MsgAddObject, ubus.MsgLookup, ubus.MsgNotify, ubus.MsgInvoke, ubus.MsgRemoveObject:
		default:
			continue // answers to callers that are not here
		}
		if before != nil {
			before(i, m)
		}
		p.wmu.Lock()
		_, err := p.conn.Write(p.frames[i].Bytes)
		p.wmu.Unlock()
		if err != nil {
			p.t.Fatalf("frame %d: %v", i+1, err)
		}
	}
}

// sync returns once ubusd has handled everything the player sent: ubusd
// answers a PING only after the messages before it.
func (p *player) sync() {
	p.write(ubus.NewMessage(ubus.MsgPing, pingSeq, 0))
	select {
	case <-p.pong:
	case <-time.After(5 * time.Second):
		p.t.Fatal("ubusd does not answer the player's PING")
	}
}

// clock is the follower's time, moved along the recording's.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(recorded float64) {
	c.mu.Lock()
	c.t = now.Add(time.Duration(recorded * float64(time.Second)))
	c.mu.Unlock()
}

func nextChange(t *testing.T, f *Follower) Change {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ch, err := f.Next(ctx)
	if err != nil {
		t.Fatalf("no change: %v (pending %d, %+v)", err, f.Pending(), f.Stats())
	}
	return ch
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func hasPrefix(i *Interface, p string) bool {
	return i != nil && len(i.Prefixes) == 1 && i.Prefixes[0].Prefix == netip.MustParsePrefix(p)
}

// TestFollower follows netifd through the recorded run: the first dump,
// the interface going down and up (notifications coalesced while nobody
// reads), the daemon-sent updates and the prefix change, the link loss,
// and a ubusd restart, after which the follower reconnects, subscribes and
// dumps again and reports only what differs.
func TestFollower(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ubus.sock")
	p := loadSession(t)
	dumps, dumpAt := p.recordedDumps()
	if len(dumps) != 2 {
		t.Fatalf("%d recorded dumps", len(dumps))
	}
	serve := func() *ubusd.Server {
		srv := ubusd.NewServer(p.ids())
		l, err := ubusd.Listen(path)
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(l)
		return srv
	}
	// The follower's client dials through a gate, so that after the
	// restart the player is back first, as netifd starts before nemod.
	var gate atomic.Pointer[chan struct{}]
	open := make(chan struct{})
	close(open)
	gate.Store(&open)
	dial := func(ctx context.Context) (io.ReadWriteCloser, error) {
		select {
		case <-*gate.Load():
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}

	// netifd starts: everything up to odhcpd's arrival (frame 88, index
	// 87).
	const startup = 87
	srv := serve()
	p.connect(path)
	p.dump.Store(&dumps[0])
	p.play(1, startup, nil)
	p.sync()

	clk := &clock{}
	clk.set(dumpAt[0])
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := ubus.Connect(ctx, ubus.Options{Dial: dial, Reconnect: true, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, err := Follow(ctx, c, FollowerOptions{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"lan", "loopback", "nemo", "wan"} {
		ch := nextChange(t, f)
		if ch.Name != name || ch.Old != nil || ch.New == nil || !ch.New.Up {
			t.Fatalf("first dump: %+v, want %s up", ch, name)
		}
		if name == "nemo" && (!hasPrefix(ch.New, "2001:db8:100::/56") || ch.New.L3Device != "nemo0") {
			t.Errorf("nemo: %+v", ch.New)
		}
		if name == "wan" && len(ch.New.DefaultRoutes(6)) != 1 {
			t.Errorf("wan: %+v", ch.New)
		}
	}

	// network.interface's id, from netifd's ADD_OBJECT and its answer.
	var mainObj uint32
	for i, m := range p.msgs {
		if pth, _ := m.Path(); p.frames[i].C2S && m.Type == ubus.MsgAddObject && pth == Object {
			for j := i + 1; j < len(p.msgs); j++ {
				if a := p.msgs[j]; !p.frames[j].C2S && a.Seq == m.Seq && a.Type == ubus.MsgData {
					mainObj, _ = a.ObjID()
					break
				}
			}
			break
		}
	}
	if mainObj == 0 {
		t.Fatal("no network.interface in the recording")
	}
	// step plays on, one notification at a time: each is sent once the
	// follower took the one before, with the clock at its recorded time.
	notes := 0
	step := func(from, to int) {
		p.play(from, to, func(i int, m *ubus.Message) {
			if m.Type == ubus.MsgNotify && m.Peer == mainObj {
				// Let the follower take the one before at its time.
				waitFor(t, "a notification to be taken", func() bool { return f.Stats().Notifications == uint64(notes) })
				clk.set(p.frames[i].T)
				notes++
			}
		})
		waitFor(t, "the notifications to be taken", func() bool { return f.Stats().Notifications == uint64(notes) })
	}

	// `ubus call network.interface.nemo down`: netifd notifies
	// interface.down at once, again when the teardown finished, then
	// interface.update once the protocol handler sent its update. The
	// first is read at once; the other two coalesce into one change.
	firstDown := findNotify(t, p, mainObj, "interface.down", startup)
	step(startup, firstDown+1)
	if ch := nextChange(t, f); ch.Name != "nemo" || !ch.Old.Up || ch.New.Up || len(ch.New.IPv6) != 0 {
		t.Fatalf("nemo down: %+v", ch)
	}
	update := findNotify(t, p, mainObj, "interface.update", firstDown)
	step(firstDown+1, update+1)
	if notes != 3 || f.Pending() != 1 {
		t.Fatalf("%d notifications, %d pending", notes, f.Pending())
	}
	if ch := nextChange(t, f); ch.Old.Up || !ch.New.Up || !hasPrefix(ch.New, "2001:db8:100::/56") {
		t.Fatalf("nemo up: %+v", ch)
	}

	// On through the daemon-sent updates up to the prefix change: what
	// is read is the last state, the new prefix with its lifetimes and
	// the source-specific default route through the tunnel.
	change := findNotify(t, p, mainObj, "interface.update", findNotify(t, p, mainObj, "interface.update", findNotify(t, p, mainObj, "interface.update", update)))
	step(update+1, change+1)
	ch := nextChange(t, f)
	if !ch.New.Up || !hasPrefix(ch.New, "2001:db8:200::/56") || ch.New.Prefixes[0].Valid.IsZero() {
		t.Fatalf("prefix change: %+v", ch.New)
	}
	if d := ch.New.DefaultRoutes(6); len(d) != 1 || d[0].Source != netip.MustParsePrefix("2001:db8:200::/56") || d[0].Nexthop != addr("fe80::1") {
		t.Errorf("default route %+v", d)
	}
	if f.Pending() != 0 {
		t.Errorf("%d pending after the prefix change", f.Pending())
	}

	// The link loss: interface.down.
	loss := findNotify(t, p, mainObj, "interface.down", change)
	step(change+1, loss+1)
	if ch := nextChange(t, f); ch.New.Up || !ch.Old.Up || !ch.New.Autostart {
		t.Fatalf("link loss: %+v", ch)
	}

	// ubusd restarts. netifd is back first (its objects get their ids
	// again); the follower's client reconnects, subscribes and dumps: the
	// dump (recorded later, with nemo up again) differs from what was
	// last reported only for nemo.
	closed := make(chan struct{})
	gate.Store(&closed)
	srv.Close()
	<-p.done
	waitFor(t, "the client to notice", func() bool { return !c.Connected() })
	srv = serve()
	defer srv.Close()
	p.connect(path)
	p.dump.Store(&dumps[1])
	p.play(1, startup, nil)
	p.sync()
	clk.set(dumpAt[1])
	before := f.Stats().Dumps
	close(closed)
	waitFor(t, "the dump after the restart", func() bool { return f.Stats().Dumps == before+1 })
	ch = nextChange(t, f)
	if ch.Name != "nemo" || ch.Old.Up || !ch.New.Up || !hasPrefix(ch.New, "2001:db8:100::/56") {
		t.Errorf("after the restart: %+v", ch)
	}
	if f.Pending() != 0 {
		next := nextChange(t, f)
		t.Errorf("more changes after the restart: %s %+v -> %+v", next.Name, next.Old, next.New)
	}
	if st := f.Stats(); st.Malformed != 0 || st.Failed != 0 || st.Dumps != 2 || p.dumps.Load() != 1 {
		t.Errorf("stats %+v, %d dumps answered since the restart", st, p.dumps.Load())
	}
}

// findNotify returns the index of the first NOTIFY method on object obj
// after index from.
func findNotify(t *testing.T, p *player, obj uint32, method string, from int) int {
	t.Helper()
	for i := from + 1; i < len(p.msgs); i++ {
		m := p.msgs[i]
		if meth, _ := m.Method(); p.frames[i].C2S && m.Type == ubus.MsgNotify && m.Peer == obj && meth == method {
			return i
		}
	}
	t.Fatalf("no %s after frame %d", method, from+1)
	return 0
}
