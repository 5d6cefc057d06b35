package ubus

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// pipeClient connects a Client to the test's end of a net.Pipe, after a
// HELLO naming it 0x1234.
func pipeClient(t *testing.T) (*Client, net.Conn) {
	t.Helper()
	a, b := net.Pipe()
	go func() {
		hello, _ := NewMessage(MsgHello, 0, 0x1234).Marshal()
		a.Write(hello)
	}()
	c, err := Connect(context.Background(), Options{Dial: func(context.Context) (io.ReadWriteCloser, error) { return b, nil },
		Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); a.Close() })
	return c, a
}

func send(t *testing.T, w io.Writer, m *Message) {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, r net.Conn) *Message {
	t.Helper()
	r.SetReadDeadline(time.Now().Add(2 * time.Second))
	b, err := ReadFrame(r)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestClientBadInput: a malformed message from ubusd is counted and
// dropped and the connection goes on; a call for an object the client
// does not have is answered NOT_FOUND; a reply nobody waits for is counted;
// a broken frame length ends the connection, failing the request in
// flight with CONNECTION_FAILED.
func TestClientBadInput(t *testing.T) {
	c, srv := pipeClient(t)
	if c.ID() != 0x1234 {
		t.Fatalf("id %#x", c.ID())
	}
	// A STATUS whose attribute runs past the container.
	srv.Write([]byte{0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 12, 1, 0, 0, 9, 0, 0, 0, 0})
	send(t, srv, NewMessage(MsgInvoke, 7, 0x99).PutU32(AttrObjID, 0x5555).PutString(AttrMethod, "x").PutRaw(AttrData, []byte{}))
	ans := read(t, srv)
	if s, _ := ans.Status(); ans.Type != MsgStatus || ans.Seq != 7 || ans.Peer != 0x99 || s != StatusNotFound {
		t.Errorf("answer %+v", ans)
	}
	send(t, srv, NewMessage(MsgStatus, 42, 0).PutU32(AttrStatus, 0))
	errc := make(chan error, 1)
	go func() { _, err := c.Lookup(context.Background(), "x"); errc <- err }()
	if m := read(t, srv); m.Type != MsgLookup {
		t.Fatalf("%+v", m)
	}
	srv.Write([]byte{0, 2, 0, 1, 0, 0, 0, 0, 0, 0x7f, 0, 0}) // length beyond MaxMessageLen
	if err := <-errc; !errors.Is(err, StatusConnectionFailed) {
		t.Errorf("lookup over a broken connection: %v", err)
	}
	st := c.Stats()
	if st.Malformed != 1 || st.Unexpected != 2 || c.Connected() {
		t.Errorf("stats %+v, connected %v", st, c.Connected())
	}
	if err := c.Ping(context.Background()); !errors.Is(err, StatusConnectionFailed) {
		t.Errorf("ping after the end: %v", err)
	}
}

// TestHandlerResults: a handler's error becomes the STATUS (UNKNOWN_ERROR
// for errors that are no Status); a deferred request answers when told,
// once.
func TestHandlerResults(t *testing.T) {
	c, srv := pipeClient(t)
	later := make(chan *Request, 1)
	typ := NewObjectType(
		Method{Name: "oops", Handler: func(context.Context, *Request) (Table, error) { return nil, errors.New("oops") }},
		Method{Name: "later", Handler: func(_ context.Context, r *Request) (Table, error) { r.Defer(); later <- r; return nil, nil }},
	)
	done := make(chan error, 1)
	go func() { _, err := c.AddObject(context.Background(), "o", typ, nil); done <- err }()
	add := read(t, srv)
	send(t, srv, NewMessage(MsgData, add.Seq, 0).PutU32(AttrObjID, 0xabc).PutU32(AttrObjType, 0xdef))
	send(t, srv, NewMessage(MsgStatus, add.Seq, 0).PutU32(AttrStatus, 0))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	call := func(seq uint16, method string) {
		send(t, srv, NewMessage(MsgInvoke, seq, 0x77).PutU32(AttrObjID, 0xabc).PutString(AttrMethod, method).PutRaw(AttrData, []byte{}))
	}
	call(3, "oops")
	if m := read(t, srv); m.Seq != 3 {
		t.Fatalf("%+v", m)
	} else if s, _ := m.Status(); s != StatusUnknownError {
		t.Errorf("oops answered %v", s)
	}
	call(4, "later")
	deferred := <-later
	go func() {
		deferred.Reply(Table{{"n", Int32(1)}})
		deferred.Complete(StatusNotSupported)
	}()
	if m := read(t, srv); m.Type != MsgData || m.Seq != 4 || m.Peer != 0x77 {
		t.Errorf("%+v", m)
	}
	if m := read(t, srv); m.Type != MsgStatus {
		t.Errorf("%+v", m)
	} else if s, _ := m.Status(); s != StatusNotSupported {
		t.Errorf("later answered %v", s)
	}
	if err := deferred.Complete(StatusOK); err == nil {
		t.Error("completed twice")
	}
	if err := deferred.Reply(nil); err == nil {
		t.Error("reply after completion")
	}
}
