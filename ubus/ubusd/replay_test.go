package ubusd

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"

	"nemod/ubus"
	"nemod/ubus/ubusvec"
)

// The replay tests play the recorded programs' side of every connection of
// a scenario to a Broker, merged in the recording's time order, and check
// that the broker sends each connection exactly the bytes the real ubusd
// sent, in the same order.
//
// ubusd draws client, object and type ids at random; the recording shows
// which ones it drew. scriptIDs hands the broker those: the id of each
// HELLO, and for each ADD_OBJECT the ids its recorded answer carries. No
// other field is normalised.
//
// A program's message is given to the broker only once every message the
// program had received before sending it (in the recording's order) has
// been produced by the broker. Among the messages that are ready, the one
// recorded first goes first.

type scriptIDs struct {
	t    *testing.T
	next map[IDKind][]uint32
}

func (s *scriptIDs) New(kind IDKind, taken func(uint32) bool) uint32 {
	q := s.next[kind]
	if len(q) == 0 {
		s.t.Errorf("the broker asked for an id of kind %d the recording does not show", kind)
		return RandomIDs{}.New(kind, taken)
	}
	s.next[kind] = q[1:]
	if taken(q[0]) {
		s.t.Errorf("recorded id %#08x is already taken", q[0])
	}
	return q[0]
}

type rconn struct {
	name   string
	frames []ubusvec.Frame
	msgs   []*ubus.Message
	ident  Identity
	// truncated: the recording left out frames at the end; output
	// beyond the recorded ones is not checked.
	truncated bool
	sendNext  int // next c2s frame to give the broker
	recvNext  int // next s2c frame the broker must produce
	id        uint32
	open      bool
	closed    bool
	extra     int
	// closeAt, if set, is when the program went away, when that was
	// later than its last message.
	closeAt float64
}

func newRconn(t *testing.T, name string, frames []ubusvec.Frame, shift float64) *rconn {
	c := &rconn{name: name, ident: Root}
	for _, f := range frames {
		f.T += shift
		c.frames = append(c.frames, f)
		m, err := ubus.ParseMessage(f.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c.msgs = append(c.msgs, m)
	}
	c.sendNext = c.nextDir(0, true)
	c.recvNext = c.nextDir(0, false)
	return c
}

func (c *rconn) nextDir(from int, c2s bool) int {
	for from < len(c.frames) && c.frames[from].C2S != c2s {
		from++
	}
	return from
}

type replay struct {
	t     *testing.T
	b     *Broker
	ids   *scriptIDs
	conns []*rconn
	byID  map[uint32]*rconn
	log   []string
}

func newReplay(t *testing.T) *replay {
	ids := &scriptIDs{t: t, next: map[IDKind][]uint32{}}
	return &replay{t: t, b: New(ids), ids: ids, byID: map[uint32]*rconn{}}
}

// event kinds, in the order they go when recorded at the same time.
const (
	evOpen = iota
	evSend
	evClose
)

// run plays the scenario. It returns false if it got stuck: no connection
// could go on while some had frames left.
func (r *replay) run() bool {
	for {
		best, bestKind, bestT := (*rconn)(nil), 0, math.Inf(1)
		for _, c := range r.conns {
			kind, at, ok := c.ready()
			if ok && (at < bestT || at == bestT && kind < bestKind) {
				best, bestKind, bestT = c, kind, at
			}
		}
		if best == nil {
			for _, c := range r.conns {
				done := c.truncated && c.sendNext >= len(c.frames) && c.recvNext >= len(c.frames)
				if !c.closed && !done {
					return false
				}
			}
			return true
		}
		switch bestKind {
		case evOpen:
			r.ids.next[ClientID] = append(r.ids.next[ClientID], best.msgs[0].Peer)
			id, out := r.b.Connect(best.ident)
			best.id, best.open = id, true
			r.byID[id] = best
			r.logf("%.3f %s connects as %#08x", bestT, best.name, id)
			r.deliver(out)
		case evSend:
			i := best.sendNext
			best.sendNext = best.nextDir(i+1, true)
			r.prepareIDs(best, i)
			r.logf("%.3f %s sends frame %d: %s", bestT, best.name, i+1, summary(best.frames[i].Note))
			r.deliver(r.b.Handle(best.id, best.frames[i].Bytes))
		case evClose:
			best.closed = true
			r.logf("%.3f %s closes", bestT, best.name)
			r.deliver(r.b.Disconnect(best.id))
		}
		if r.t.Failed() {
			return true
		}
	}
}

// ready tells what the connection would do next and when.
func (c *rconn) ready() (kind int, at float64, ok bool) {
	switch {
	case c.closed:
		return 0, 0, false
	case !c.open:
		return evOpen, c.frames[0].T, true
	case c.sendNext < len(c.frames):
		// Everything the program had received before this message must
		// have been produced.
		if c.recvNext < c.sendNext && c.recvNext < len(c.frames) {
			return 0, 0, false
		}
		return evSend, c.frames[c.sendNext].T, true
	case c.recvNext >= len(c.frames) && !c.truncated:
		// A cut-short recording's program went on; it does not close.
		return evClose, max(c.closeAt, c.frames[len(c.frames)-1].T), true
	}
	return 0, 0, false
}

// prepareIDs gives the scripted id source the ids the recorded answer to
// an ADD_OBJECT carries: the type id (for a new signature) and the object
// id, in the order ubusd draws them.
func (r *replay) prepareIDs(c *rconn, i int) {
	m := c.msgs[i]
	if m.Type != ubus.MsgAddObject {
		return
	}
	for j := i + 1; j < len(c.msgs); j++ {
		a := c.msgs[j]
		if c.frames[j].C2S || a.Type != ubus.MsgData || a.Seq != m.Seq {
			continue
		}
		if _, sig := m.Attr(ubus.AttrSignature); sig {
			tid, ok := a.U32(ubus.AttrObjType)
			if !ok {
				r.t.Fatalf("%s frame %d: no OBJTYPE in the answer to a signature", c.name, j+1)
			}
			r.ids.next[TypeID] = append(r.ids.next[TypeID], tid)
		}
		oid, _ := a.ObjID()
		r.ids.next[ObjectID] = append(r.ids.next[ObjectID], oid)
		return
	}
	r.t.Fatalf("%s frame %d: ADD_OBJECT without a recorded answer", c.name, i+1)
}

func (r *replay) deliver(out []Output) {
	for _, o := range out {
		c := r.byID[o.Client]
		if c == nil || c.closed {
			r.fail("output to client %#08x, which is not connected: %x", o.Client, o.Frame)
			return
		}
		if c.recvNext >= len(c.frames) {
			if c.truncated {
				c.extra++
				continue
			}
			r.fail("%s: unexpected extra output %x", c.name, o.Frame)
			return
		}
		want := c.frames[c.recvNext]
		if !bytes.Equal(o.Frame, want.Bytes) {
			got, _ := ubus.ParseMessage(o.Frame)
			r.fail("%s frame %d: broker sent\n%x (%v)\nrecorded\n%x (%s)", c.name, c.recvNext+1, o.Frame, got, want.Bytes, summary(want.Note))
			return
		}
		c.recvNext = c.nextDir(c.recvNext+1, false)
	}
}

func (r *replay) logf(format string, a ...any) {
	r.log = append(r.log, fmt.Sprintf(format, a...))
}

func (r *replay) fail(format string, a ...any) {
	r.t.Helper()
	tail := r.log
	if len(tail) > 12 {
		tail = tail[len(tail)-12:]
	}
	r.t.Errorf(format+"\nlast steps:\n  %s", append(a, strings.Join(tail, "\n  "))...)
}

func summary(note string) string {
	if i := strings.Index(note, "| "); i >= 0 {
		note = note[i+2:]
	}
	if len(note) > 140 {
		note = note[:140] + "..."
	}
	return note
}

func loadDir(t testing.TB, dir string) []*ubusvec.Scenario {
	t.Helper()
	scs, err := ubusvec.Load("../testdata/" + dir)
	if err != nil {
		t.Fatal(err)
	}
	return scs
}

// TestReplayUbusScenarios replays every scenario of the ubus recordings,
// each on a fresh broker as each had a fresh ubusd.
//
// Three scenarios lack a connection the recording did not capture: the
// list ones ran while the example server and rpcd were connected, and the
// monitor one called the example server. For them the test adds the
// missing owners first, rebuilt from what the recorded clients saw (the
// LOOKUP answers give path, ids and signature; the monitor's copies give the
// server's messages), and checks those connections too.
func TestReplayUbusScenarios(t *testing.T) {
	for _, sc := range loadDir(t, "ubus") {
		t.Run(sc.Name, func(t *testing.T) {
			r := newReplay(t)
			var trunc bool
			for _, f := range sc.Files {
				c := newRconn(t, f.Name, f.Frames, 0)
				c.truncated = f.Truncated > 0
				trunc = trunc || c.truncated
				r.conns = append(r.conns, c)
			}
			switch sc.Name {
			case "list", "list-verbose", "list-path":
				r.conns = append(lookupOwners(t, sc), r.conns...)
			case "monitor":
				r.conns = append([]*rconn{monitoredServer(t, sc)}, r.conns...)
			}
			done := r.run()
			if t.Failed() {
				return
			}
			for _, c := range r.conns {
				if c.recvNext < len(c.frames) && !trunc {
					t.Errorf("%s: frame %d (%s) never produced", c.name, c.recvNext+1, summary(c.frames[c.recvNext].Note))
				}
			}
			if !done && !trunc {
				t.Fatalf("replay stuck:\n  %s", strings.Join(r.log[max(0, len(r.log)-10):], "\n  "))
			}
			if trunc {
				// The example client's and server's recordings were both
				// cut short, each on its own: the client's later
				// notifications wait for answers the server's recording
				// no longer holds. Every frame up to there must match.
				for _, c := range r.conns {
					want := map[string]int{"example-client.server.json": 17, "example-client.client.json": 21}[c.name]
					if got := min(c.sendNext, c.recvNext); got < want {
						t.Errorf("%s: replay reached frame %d, want at least %d", c.name, got, want)
					}
				}
			}
		})
	}
}

// lookupOwners rebuilds the owners of the objects the recorded LOOKUPs
// found: one connection per object that publishes it before the scenario
// starts, with the recorded path, ids and signature.
func lookupOwners(t *testing.T, sc *ubusvec.Scenario) []*rconn {
	seen := map[uint32]bool{}
	var out []*rconn
	for _, f := range sc.Files {
		for _, fr := range f.Frames {
			m, _ := ubus.ParseMessage(fr.Bytes)
			if fr.C2S || m.Type != ubus.MsgData {
				continue
			}
			id, _ := m.ObjID()
			path, ok := m.Path()
			if !ok || seen[id] {
				continue
			}
			seen[id] = true
			typ, _ := m.U32(ubus.AttrObjType)
			sig, _ := m.Attr(ubus.AttrSignature)
			cid := 0x5e000000 + uint32(len(out))
			frames := []*ubus.Message{
				ubus.NewMessage(ubus.MsgHello, 0, cid),
				ubus.NewMessage(ubus.MsgAddObject, 1, 0).PutString(ubus.AttrObjPath, path).PutRaw(ubus.AttrSignature, sig),
				ubus.NewMessage(ubus.MsgData, 1, 0).PutU32(ubus.AttrObjID, id).PutU32(ubus.AttrObjType, typ),
				ubus.NewMessage(ubus.MsgStatus, 1, 0).PutU32(ubus.AttrStatus, 0),
			}
			out = append(out, synth(t, "owner of "+path, frames, []bool{false, true, false, false}, -1))
		}
	}
	// Keep the owners open for the whole scenario.
	for _, c := range out {
		b := ping(t)
		m, _ := ubus.ParseMessage(b)
		c.frames = append(c.frames, ubusvec.Frame{C2S: true, T: 1e9, Bytes: b})
		c.msgs = append(c.msgs, m)
		c.sendNext = c.nextDir(0, true)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// ping is a message a connection sends at the end to stay open until then;
// the broker's answers to it are not checked (the connection is marked
// truncated).
func ping(t *testing.T) []byte {
	b, err := ubus.NewMessage(ubus.MsgPing, 99, 0).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func synth(t *testing.T, name string, msgs []*ubus.Message, c2s []bool, at float64) *rconn {
	var frames []ubusvec.Frame
	for i, m := range msgs {
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, ubusvec.Frame{C2S: c2s[i], Bytes: b, T: at, Note: "| (rebuilt) " + m.Type.String()})
	}
	c := newRconn(t, name, frames, 0)
	c.truncated = true
	return c
}

// monitoredServer rebuilds the example server of the monitor scenario: it
// publishes "test" with the recorded ids and signature before the monitor
// starts, then receives the call and answers it with the messages the
// monitor's copies show, at their times.
func monitoredServer(t *testing.T, sc *ubusvec.Scenario) *rconn {
	var cli, mon *ubusvec.File
	for _, f := range sc.Files {
		switch f.Role {
		case "cli-call":
			cli = f
		case "cli-monitor":
			mon = f
		}
	}
	look, _ := ubus.ParseMessage(cli.Frames[2].Bytes) // the LOOKUP answer
	id, _ := look.ObjID()
	typ, _ := look.U32(ubus.AttrObjType)
	sig, _ := look.Attr(ubus.AttrSignature)
	type copyOf struct {
		client uint32
		sent   bool
		msg    *ubus.Message
		at     float64
	}
	var copies []copyOf
	var server uint32
	for _, fr := range mon.Frames {
		m, _ := ubus.ParseMessage(fr.Bytes)
		if m.Type != ubus.MsgMonitor {
			continue
		}
		cl, _ := m.U32(ubus.MonitorClient)
		peer, _ := m.U32(ubus.MonitorPeer)
		typN, _ := m.U32(ubus.MonitorType)
		seq, _ := m.U32(ubus.MonitorSeq)
		send, _ := m.U8(ubus.MonitorSend)
		data, _ := m.Attr(ubus.MonitorData)
		inner := ubus.NewMessage(ubus.MsgType(typN), uint16(seq), peer)
		inner.Attrs = splitAttrsForTest(t, data)
		if oid, _ := inner.ObjID(); inner.Type == ubus.MsgInvoke && send == 1 && oid == id {
			server = cl // the call ubusd forwarded went to the server
		}
		copies = append(copies, copyOf{cl, send == 1, inner, fr.T})
	}
	if server == 0 {
		t.Fatal("monitor scenario: no forwarded call seen")
	}
	msgs := []*ubus.Message{
		ubus.NewMessage(ubus.MsgHello, 0, server),
		ubus.NewMessage(ubus.MsgAddObject, 1, 0).PutString(ubus.AttrObjPath, "test").PutRaw(ubus.AttrSignature, sig),
		ubus.NewMessage(ubus.MsgData, 1, 0).PutU32(ubus.AttrObjID, id).PutU32(ubus.AttrObjType, typ),
		ubus.NewMessage(ubus.MsgStatus, 1, 0).PutU32(ubus.AttrStatus, 0),
	}
	c2s := []bool{false, true, false, false}
	times := []float64{-1, -1, -1, -1}
	for _, c := range copies {
		if c.client == server {
			msgs = append(msgs, c.msg)
			c2s = append(c2s, !c.sent)
			times = append(times, c.at)
		}
	}
	c := synth(t, "monitored example server", msgs, c2s, -1)
	for i := range c.frames {
		c.frames[i].T = times[i]
	}
	c.truncated = false
	return c
}

func splitAttrsForTest(t *testing.T, payload []byte) []ubus.Attr {
	// A container around the payload parses like any message.
	hdr := ubus.NewMessage(0, 0, 0).PutRaw(1, nil)
	b, _ := hdr.Marshal()
	b = append(b[:8], 0, 0, 0, 0)
	b = append(b, payload...)
	l := uint32(4 + len(payload))
	b[8], b[9], b[10], b[11] = 0, byte(l>>16), byte(l>>8), byte(l)
	m, err := ubus.ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	return m.Attrs
}

// TestReplayNetifdRun replays the whole netifd recording: netifd's and
// odhcpd's connections from start to end and every ubus tool run between,
// all on one broker as they were on one ubusd. The scenarios' files have
// their own clocks; each is moved onto the session's clock by the offset
// between its netifd excerpt and the same frames in the session (the test
// checks that the excerpts are those frames).
func TestReplayNetifdRun(t *testing.T) {
	scs := loadDir(t, "netifd")
	session := map[string]*ubusvec.File{}
	for _, sc := range scs {
		if sc.Name == "session" {
			for _, f := range sc.Files {
				session[f.Role] = f
			}
		}
	}
	if session["netifd"] == nil || session["odhcpd"] == nil {
		t.Fatal("no session recordings")
	}
	r := newReplay(t)
	netifd := newRconn(t, "session.netifd.json", session["netifd"].Frames, 0)
	odhcpd := newRconn(t, "session.odhcpd.json", session["odhcpd"].Frames, 0)
	// At the end of the run odhcpd was stopped, some seconds after its
	// last message and before netifd: netifd's recording shows when, as
	// the NOTIFY that network.interface (odhcpd was its last subscriber)
	// has none left.
	for i, m := range netifd.msgs {
		if a, ok := m.U8(ubus.AttrActive); ok && a == 0 && m.Type == ubus.MsgNotify && !netifd.frames[i].C2S {
			odhcpd.closeAt = netifd.frames[i].T - 0.0005
		}
	}
	if odhcpd.closeAt == 0 {
		t.Fatal("netifd's recording does not show odhcpd leaving")
	}
	r.conns = append(r.conns, netifd, odhcpd)
	for _, sc := range scs {
		if sc.Name == "session" {
			continue
		}
		shift := math.NaN()
		for _, f := range sc.Files {
			whole := session[f.Role]
			if f.ExcerptFirst == 0 || whole == nil {
				continue
			}
			off := whole.Frames[f.ExcerptFirst-1].T - f.Frames[0].T
			for i, fr := range f.Frames {
				w := whole.Frames[f.ExcerptFirst-1+i]
				if !bytes.Equal(fr.Bytes, w.Bytes) || math.Abs(w.T-fr.T-off) > 0.0015 {
					t.Fatalf("%s frame %d is not frame %d of the session", f.Name, i+1, f.ExcerptFirst+i)
				}
			}
			if f.Role == "netifd" {
				shift = off
			}
		}
		if math.IsNaN(shift) {
			t.Fatalf("scenario %s has no netifd excerpt", sc.Name)
		}
		for _, f := range sc.Files {
			if f.ExcerptFirst == 0 {
				r.conns = append(r.conns, newRconn(t, f.Name, f.Frames, shift))
			}
		}
	}
	if !r.run() {
		t.Fatalf("replay stuck:\n  %s", strings.Join(r.log[max(0, len(r.log)-10):], "\n  "))
	}
	frames := 0
	for _, c := range r.conns {
		if c.recvNext < len(c.frames) {
			t.Errorf("%s: frame %d (%s) never produced", c.name, c.recvNext+1, summary(c.frames[c.recvNext].Note))
		}
		frames += len(c.frames)
	}
	// Two whole sessions and every ubus tool run: 37 connections.
	if len(r.conns) != 37 || frames != 506 {
		t.Errorf("%d connections, %d frames replayed; want 37 and 506", len(r.conns), frames)
	}
}
