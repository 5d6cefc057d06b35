package ubusd_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os/user"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"nemod/ubus"
	"nemod/ubus/ubusd"
)

// startServer runs a Server on a unix socket in a temporary directory.
func startServer(t *testing.T, path string) *ubusd.Server {
	t.Helper()
	srv := ubusd.NewServer(nil)
	l, err := ubusd.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return srv
}

func connect(t *testing.T, opts ubus.Options) *ubus.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := ubus.Connect(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// recv waits for one value.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s", what)
	}
	var zero T
	return zero
}

// TestClientsThroughServer: an object owner and callers on our client,
// through our ubusd on a real unix socket: calls with typed arguments,
// deferred and failing methods, lookups, events, subscriptions with
// subscriber awareness, timeouts, wait_for, and the caller's identity as
// ubusd reads it from the socket.
func TestClientsThroughServer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ubus.sock")
	srv := startServer(t, path)
	ctx := testCtx(t)
	owner := connect(t, ubus.Options{Path: path})
	caller := connect(t, ubus.Options{Path: path})

	never := make(chan struct{})
	defer close(never)
	typ := ubus.NewObjectType(
		ubus.Method{Name: "hello", Args: []ubus.ArgSig{{Name: "msg", Type: ubus.TypeString}, {Name: "n", Type: ubus.TypeInt32}},
			Handler: func(ctx context.Context, r *ubus.Request) (ubus.Table, error) {
				msg, _ := r.Args.String("msg")
				return ubus.Table{{Name: "echo", Value: ubus.String(msg)}, {Name: "user", Value: ubus.String(r.User)}}, nil
			}},
		ubus.Method{Name: "later", Handler: func(ctx context.Context, r *ubus.Request) (ubus.Table, error) {
			r.Defer()
			go func() {
				time.Sleep(20 * time.Millisecond)
				r.Reply(ubus.Table{{Name: "part", Value: ubus.Int32(1)}})
				r.Reply(ubus.Table{{Name: "part", Value: ubus.Int32(2)}})
				r.Complete(ubus.StatusOK)
			}()
			return nil, nil
		}},
		ubus.Method{Name: "fail", Handler: func(ctx context.Context, r *ubus.Request) (ubus.Table, error) {
			return nil, ubus.StatusNotSupported
		}},
		ubus.Method{Name: "hang", Handler: func(ctx context.Context, r *ubus.Request) (ubus.Table, error) {
			r.Defer()
			return nil, nil
		}},
	)
	active := make(chan bool, 4)
	obj, err := owner.AddObject(ctx, "nemo.test", typ, func(a bool) { active <- a })
	if err != nil {
		t.Fatal(err)
	}

	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	got, err := caller.Call(ctx, "nemo.test", "hello", ubus.Table{{Name: "msg", Value: ubus.String("hi")}})
	want := ubus.Table{{Name: "echo", Value: ubus.String("hi")}, {Name: "user", Value: ubus.String(me.Username)}}
	if err != nil || !ubus.Equal(got, want) {
		t.Errorf("hello: %v %v, want %v", got, err, want)
	}
	id, _ := caller.LookupID(ctx, "nemo.test")
	parts, err := caller.Invoke(ctx, id, "later", nil)
	if err != nil || len(parts) != 2 {
		t.Errorf("later: %v %v", parts, err)
	}
	for _, c := range []struct {
		path, method string
		args         ubus.Table
		want         ubus.Status
	}{
		{"nemo.test", "hello", ubus.Table{{Name: "msg", Value: ubus.Int32(1)}}, ubus.StatusInvalidArgument},
		{"nemo.test", "nosuch", nil, ubus.StatusMethodNotFound},
		{"nemo.test", "fail", nil, ubus.StatusNotSupported},
		{"nemo.none", "hello", nil, ubus.StatusNotFound},
	} {
		if _, err := caller.Call(ctx, c.path, c.method, c.args); !errors.Is(err, c.want) {
			t.Errorf("%s %s: %v, want %v", c.path, c.method, err, c.want)
		}
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = caller.Call(short, "nemo.test", "hang", nil)
	cancel()
	if !errors.Is(err, ubus.StatusTimeout) {
		t.Errorf("hang: %v, want a timeout", err)
	}
	// The late answer of nothing must not disturb the next call.
	if _, err := caller.Call(ctx, "nemo.test", "hello", nil); err != nil {
		t.Errorf("after a timeout: %v", err)
	}

	objs, err := caller.Lookup(ctx, "nemo.*")
	if err != nil || len(objs) != 1 || objs[0].ID != obj.ID() || len(objs[0].Signature) != 4 ||
		objs[0].Signature[0].Args[1] != (ubus.ArgSig{Name: "n", Type: ubus.TypeInt32}) {
		t.Errorf("lookup: %+v %v", objs, err)
	}

	// Events: a pattern with a wildcard; a sender does not hear itself.
	events := make(chan ubus.Event, 4)
	if _, err := caller.Listen(ctx, func(e ubus.Event) { events <- e }, "nemo.*"); err != nil {
		t.Fatal(err)
	}
	own := make(chan ubus.Event, 4)
	if _, err := owner.Listen(ctx, func(e ubus.Event) { own <- e }, "nemo.*"); err != nil {
		t.Fatal(err)
	}
	if err := owner.Send(ctx, "nemo.ev", ubus.Table{{Name: "x", Value: ubus.Int32(1)}}); err != nil {
		t.Fatal(err)
	}
	if e := recv(t, events, "event"); e.Name != "nemo.ev" || !ubus.Equal(e.Data, ubus.Table{{Name: "x", Value: ubus.Int32(1)}}) {
		t.Errorf("event %+v", e)
	}
	if err := owner.Send(ctx, "ubus.fake", nil); !errors.Is(err, ubus.StatusPermissionDenied) {
		t.Errorf("reserved event: %v", err)
	}

	// Subscriptions: the owner hears of its first subscriber and of the
	// last one leaving; notifications reach the subscriber, with and
	// without answers.
	notes := make(chan ubus.Notification, 4)
	sub, err := caller.Subscribe(ctx, "nemo.test", func(n ubus.Notification) { notes <- n }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !recv(t, active, "ACTIVE") || !obj.Subscribed() {
		t.Error("owner not told of its subscriber")
	}
	answers, err := obj.Notify(ctx, "status", ubus.Table{{Name: "up", Value: ubus.Bool(true)}})
	if err != nil || len(answers) != 1 || answers[0].Subscriber != sub.Object().ID() || answers[0].Status != ubus.StatusOK {
		t.Errorf("notify: %+v %v", answers, err)
	}
	if n := recv(t, notes, "notification"); n.Method != "status" || n.NoReply || n.Owner != owner.ID() {
		t.Errorf("notification %+v", n)
	}
	if err := obj.NotifyNoReply("down", nil); err != nil {
		t.Fatal(err)
	}
	if n := recv(t, notes, "notification"); n.Method != "down" || !n.NoReply {
		t.Errorf("notification %+v", n)
	}
	if err := sub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if recv(t, active, "ACTIVE 0") || obj.Subscribed() {
		t.Error("owner not told its subscriber left")
	}

	// wait_for an object that comes later.
	waited := make(chan error, 1)
	go func() { waited <- caller.WaitFor(ctx, "nemo.late") }()
	time.Sleep(20 * time.Millisecond)
	if _, err := owner.AddObject(ctx, "nemo.late", typ, nil); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, waited, "wait_for"); err != nil {
		t.Error(err)
	}
	// A path is taken once.
	if _, err := caller.AddObject(ctx, "nemo.late", typ, nil); !errors.Is(err, ubus.StatusInvalidArgument) {
		t.Errorf("second nemo.late: %v", err)
	}
	if err := caller.Ping(ctx); err != nil {
		t.Error(err)
	}
	if st := srv.Stats(); st.Clients != 2 || st.Events == 0 || st.Forwarded == 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestMalformedInput: a client that sends garbage in a well-framed message
// gets INVALID_ARGUMENT and stays; one that breaks the framing is dropped;
// neither disturbs anyone else.
func TestMalformedInput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ubus.sock")
	srv := startServer(t, path)
	ctx := testCtx(t)
	good := connect(t, ubus.Options{Path: path})
	raw, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := ubus.ReadFrame(raw); err != nil { // HELLO
		t.Fatal(err)
	}
	// LOOKUP whose OBJPATH string lacks its NUL.
	raw.Write([]byte{0, 4, 0, 7, 0, 0, 0, 0, 0, 0, 0, 12, 2, 0, 0, 8, 't', 'e', 's', 't'})
	f, err := ubus.ReadFrame(raw)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := ubus.ParseMessage(f)
	if s, _ := m.Status(); m.Type != ubus.MsgStatus || m.Seq != 7 || s != ubus.StatusInvalidArgument {
		t.Errorf("answer %+v", m)
	}
	if srv.Stats().Malformed != 1 {
		t.Errorf("stats %+v", srv.Stats())
	}
	// A container length beyond the limit: ubusd hangs up.
	raw.Write([]byte{0, 4, 0, 8, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff})
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := ubus.ReadFrame(raw); err == nil {
		t.Error("connection still open after a bad length")
	}
	if err := good.Ping(ctx); err != nil {
		t.Error(err)
	}
}

// TestReconnect restarts ubusd under two clients: they reconnect with
// backoff, say so, publish their object again, register their event
// pattern again and subscribe again to the path they follow; while ubusd
// is away their requests fail with CONNECTION_FAILED.
func TestReconnect(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ubus.sock")
	srv := startServer(t, path)
	ctx := testCtx(t)
	type conn struct {
		id          uint32
		reconnected bool
	}
	ownerUp, watcherUp := make(chan conn, 4), make(chan conn, 4)
	opts := func(up chan conn) ubus.Options {
		return ubus.Options{Path: path, Reconnect: true, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
			OnConnect: func(id uint32, re bool) { up <- conn{id, re} }}
	}
	owner := connect(t, opts(ownerUp))
	watcher := connect(t, opts(watcherUp))
	recv(t, ownerUp, "first connection")
	recv(t, watcherUp, "first connection")

	typ := ubus.NewObjectType(ubus.Method{Name: "ping", Handler: func(context.Context, *ubus.Request) (ubus.Table, error) {
		return ubus.Table{{Name: "pong", Value: ubus.Bool(true)}}, nil
	}})
	obj, err := owner.AddObject(ctx, "nemo.r", typ, nil)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan ubus.Event, 8)
	if _, err := watcher.Listen(ctx, func(e ubus.Event) { events <- e }, "nemo.*"); err != nil {
		t.Fatal(err)
	}
	notes := make(chan ubus.Notification, 8)
	targets := make(chan ubus.Target, 8)
	sub, err := watcher.NewSubscriber(ctx, func(n ubus.Notification) { notes <- n }, func(tg ubus.Target) { targets <- tg })
	if err != nil {
		t.Fatal(err)
	}
	if id, err := sub.Follow(ctx, "nemo.r"); err != nil || id != obj.ID() {
		t.Fatalf("follow: %d %v", id, err)
	}
	if _, err := obj.Notify(ctx, "before", nil); err != nil {
		t.Fatal(err)
	}
	if n := recv(t, notes, "notification"); n.Method != "before" {
		t.Errorf("got %+v", n)
	}

	// ubusd goes away and comes back on the same socket.
	srv.Close()
	deadline := time.Now().Add(5 * time.Second)
	for owner.Connected() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := owner.Ping(ctx); !errors.Is(err, ubus.StatusConnectionFailed) {
		t.Errorf("while ubusd is away: %v", err)
	}
	startServer(t, path)
	if c := recv(t, ownerUp, "reconnection"); !c.reconnected || c.id == 0 {
		t.Errorf("owner: %+v", c)
	}
	if c := recv(t, watcherUp, "reconnection"); !c.reconnected {
		t.Errorf("watcher: %+v", c)
	}

	fresh := connect(t, ubus.Options{Path: path})
	if got, err := fresh.Call(ctx, "nemo.r", "ping", nil); err != nil || !got.Has("pong") {
		t.Errorf("the object after ubusd came back: %v %v", got, err)
	}
	if err := fresh.Send(ctx, "nemo.after", nil); err != nil {
		t.Fatal(err)
	}
	if e := recv(t, events, "event"); e.Name != "nemo.after" {
		t.Errorf("event %+v", e)
	}
	// The watcher subscribes again, now or once the owner is back.
	for tg := recv(t, targets, "resubscription"); !tg.Subscribed || tg.Path != "nemo.r"; tg = recv(t, targets, "resubscription") {
	}
	if !obj.Subscribed() {
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := obj.Notify(ctx, "after", nil); err != nil {
		t.Fatal(err)
	}
	if n := recv(t, notes, "notification"); n.Method != "after" {
		t.Errorf("got %+v", n)
	}
	if owner.Stats().Reconnects != 1 || watcher.Stats().Reconnects != 1 {
		t.Errorf("reconnects: %+v %+v", owner.Stats(), watcher.Stats())
	}
}

// TestFollowOwnerRestart: a followed object's owner goes and another
// publishes the path again; the subscriber is told and subscribes anew.
func TestFollowOwnerRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ubus.sock")
	startServer(t, path)
	ctx := testCtx(t)
	watcher := connect(t, ubus.Options{Path: path})
	notes := make(chan ubus.Notification, 8)
	targets := make(chan ubus.Target, 8)
	sub, err := watcher.NewSubscriber(ctx, func(n ubus.Notification) { notes <- n }, func(tg ubus.Target) { targets <- tg })
	if err != nil {
		t.Fatal(err)
	}
	// Following a path nobody has yet.
	if id, err := sub.Follow(ctx, "netd.iface"); err != nil || id != 0 {
		t.Fatalf("follow: %d %v", id, err)
	}
	typ := ubus.NewObjectType(ubus.Method{Name: "dump"})
	var objs []*ubus.Object
	for round := range 2 {
		owner := connect(t, ubus.Options{Path: path})
		o, err := owner.AddObject(ctx, "netd.iface", typ, nil)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
		if tg := recv(t, targets, "subscription"); !tg.Subscribed || tg.ID != o.ID() {
			t.Fatalf("round %d: %+v", round, tg)
		}
		if err := o.NotifyNoReply("interface.update", nil); err != nil {
			t.Fatal(err)
		}
		recv(t, notes, "notification")
		id := o.ID()
		owner.Close()
		if tg := recv(t, targets, "loss"); tg.Subscribed || tg.ID != id {
			t.Fatalf("round %d: %+v", round, tg)
		}
	}
	if objs[0].ID() != 0 {
		t.Error("object of a closed client keeps an id")
	}
}

// TestServeConn: a connection that is not a socket (here net.Pipe) is
// served with the identity given.
func TestServeConn(t *testing.T) {
	srv := ubusd.NewServer(nil)
	defer srv.Close()
	var mu sync.Mutex
	dial := func(context.Context) (net.Conn, error) {
		a, b := net.Pipe()
		mu.Lock()
		srv.ServeConn(b, ubusd.Identity{User: "nobody", Group: "nogroup", UID: 65534, GID: 65534})
		mu.Unlock()
		return a, nil
	}
	ctx := testCtx(t)
	opts := ubus.Options{Dial: func(ctx context.Context) (io.ReadWriteCloser, error) { return dial(ctx) }}
	owner := connect(t, opts)
	caller := connect(t, opts)
	users := make(chan string, 1)
	typ := ubus.NewObjectType(ubus.Method{Name: "who", Handler: func(_ context.Context, r *ubus.Request) (ubus.Table, error) {
		users <- r.User + ":" + r.Group
		return nil, nil
	}})
	if _, err := owner.AddObject(ctx, "x", typ, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := caller.Call(ctx, "x", "who", nil); err != nil {
		t.Fatal(err)
	}
	if u := recv(t, users, "call"); u != "nobody:nogroup" {
		t.Errorf("identity %q", u)
	}
	// The monitor is for root only.
	if err := caller.Monitor(ctx, func(ubus.MonitorMessage) {}); !errors.Is(err, ubus.StatusPermissionDenied) {
		t.Errorf("monitor as nobody: %v", err)
	}
}

// TestConnectWaitsForUbusd: with Reconnect, Connect keeps trying until
// ubusd is there; without, it fails at once.
func TestConnectWaitsForUbusd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ubus.sock")
	ctx := testCtx(t)
	if _, err := ubus.Connect(ctx, ubus.Options{Path: path}); err == nil {
		t.Fatal("connected to nothing")
	}
	done := make(chan error, 1)
	go func() {
		c, err := ubus.Connect(ctx, ubus.Options{Path: path, Reconnect: true, MinBackoff: 5 * time.Millisecond})
		if err == nil {
			err = c.Ping(ctx)
			c.Close()
		}
		done <- err
	}()
	time.Sleep(30 * time.Millisecond)
	startServer(t, path)
	if err := recv(t, done, "connection"); err != nil {
		t.Error(err)
	}
}
