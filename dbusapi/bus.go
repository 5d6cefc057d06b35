// Package dbusapi publishes a daemon's status on the system bus: the
// mobile router as org.nemod.Router1 at /org/nemod/Router1 with a child
// object per uplink, the home agent as org.nemod.HomeAgent1 at
// /org/nemod/HomeAgent1 with a child per mobile router; typed read-only
// properties that signal their changes, an ObjectManager on the root
// object, introspection data, and the Reload (both roles) and Revoke (home
// agent) methods, which call back into the daemon.
//
// The daemon's event loop calls Update with each new snapshot. Update only
// stores it and wakes the publisher's goroutine, which diffs it against
// what the bus was last told and emits the signals; snapshots that arrive
// faster than the bus takes them are coalesced to the latest. When the bus
// goes away (dbus-daemon restarted) the publisher reconnects, requests its
// name again and serves the latest snapshot.
//
// Who may do what is the bus's policy, packaging/dbus/org.nemod.conf:
// root owns the names and calls the methods; members of group nemod read
// properties and receive signals.
package dbusapi

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/godbus/dbus/v5"

	"nemod/status"
)

// Config is what a publisher needs from the daemon.
type Config struct {
	// Address is the bus's address; empty: SystemBusAddress().
	Address string
	// Reload is called by the Reload method; nil answers NotSupported.
	// It runs on a bus goroutine, possibly several at once: the daemon
	// hands the request to its event loop and waits for the answer.
	Reload func() (status.Reload, error)
	// Revoke (home agent only) is called by the Revoke method with a
	// valid home address and a BID from 1; nil answers NotSupported.
	// Returning an error wrapping ErrNoSuchBinding answers
	// org.nemod.HomeAgent1.Error.NoSuchBinding. Same goroutine rules as
	// Reload.
	Revoke func(home netip.Addr, bid uint16) error
	// Logf, when not nil, hears of connections made and lost.
	Logf func(format string, args ...any)
	// RetryMin and RetryMax bound the wait between connection attempts,
	// which doubles from the first to the second (defaults 1 s and 30 s).
	RetryMin, RetryMax time.Duration
}

// ErrNoSuchBinding is what Config.Revoke returns (wrapped or not) when the
// home agent holds no binding of that home address and BID.
var ErrNoSuchBinding = errors.New("no such binding")

// D-Bus error names answered.
const (
	ErrorNotSupported     = "org.freedesktop.DBus.Error.NotSupported"
	ErrorInvalidArgs      = "org.freedesktop.DBus.Error.InvalidArgs"
	ErrorFailed           = "org.freedesktop.DBus.Error.Failed"
	ErrorUnknownInterface = "org.freedesktop.DBus.Error.UnknownInterface"
	ErrorUnknownProperty  = "org.freedesktop.DBus.Error.UnknownProperty"
	ErrorPropertyReadOnly = "org.freedesktop.DBus.Error.PropertyReadOnly"
	ErrorNoSuchBinding    = "org.nemod.HomeAgent1.Error.NoSuchBinding"
)

func busError(name, format string, args ...any) *dbus.Error {
	return dbus.NewError(name, []any{fmt.Sprintf(format, args...)})
}

// Router publishes a mobile router.
type Router struct{ p *publisher }

// NewRouter starts publishing a mobile router; nothing is on the bus until
// the first Update.
func NewRouter(cfg Config) *Router {
	return &Router{newPublisher(cfg, RouterName, RouterPath)}
}

// Update publishes s. It does not block; s's slices and maps must not be
// changed afterwards (the publisher reads them on its own goroutine).
func (r *Router) Update(s status.Router) { r.p.post(func() *tree { return routerTree(s) }) }

// Published reports whether the router is on the bus now: connected and
// owner of its name.
func (r *Router) Published() bool { return r.p.published.Load() }

// Close takes the router off the bus and stops the publisher.
func (r *Router) Close() error { return r.p.close() }

// HomeAgent publishes a home agent.
type HomeAgent struct{ p *publisher }

// NewHomeAgent starts publishing a home agent; nothing is on the bus
// until the first Update.
func NewHomeAgent(cfg Config) *HomeAgent {
	return &HomeAgent{newPublisher(cfg, HomeAgentName, HomeAgentPath)}
}

// Update publishes s, as Router.Update does.
func (h *HomeAgent) Update(s status.HomeAgent) { h.p.post(func() *tree { return homeAgentTree(s) }) }

// Published reports whether the home agent is on the bus now.
func (h *HomeAgent) Published() bool { return h.p.published.Load() }

// Close takes the home agent off the bus and stops the publisher.
func (h *HomeAgent) Close() error { return h.p.close() }

type publisher struct {
	cfg  Config
	name string
	root dbus.ObjectPath

	tree atomic.Pointer[tree] // what method calls see

	mu      sync.Mutex
	pending func() *tree // the latest snapshot not yet applied

	wake      chan struct{}
	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	published atomic.Bool
	applied   atomic.Uint64 // snapshots applied, for tests
	connects  atomic.Uint64 // connections made, for tests
}

func newPublisher(cfg Config, name string, root dbus.ObjectPath) *publisher {
	if cfg.Address == "" {
		cfg.Address = SystemBusAddress()
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = time.Second
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(30*time.Second, cfg.RetryMin)
	}
	p := &publisher{cfg: cfg, name: name, root: root,
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

func (p *publisher) logf(format string, args ...any) {
	if p.cfg.Logf != nil {
		p.cfg.Logf("dbus: "+format, args...)
	}
}

func (p *publisher) post(build func() *tree) {
	p.mu.Lock()
	p.pending = build
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *publisher) close() error {
	p.closeOnce.Do(func() { close(p.quit) })
	<-p.done
	return nil
}

// apply builds the pending snapshot, makes it what calls see, and tells
// conn (when there is one) what changed.
func (p *publisher) apply(conn *dbus.Conn) error {
	p.mu.Lock()
	build := p.pending
	p.pending = nil
	p.mu.Unlock()
	if build == nil {
		return nil
	}
	next := build()
	old := p.tree.Swap(next)
	p.applied.Add(1)
	if conn == nil {
		return nil
	}
	// Signals go out after the swap: a client that reads a property on
	// hearing of its change reads the new value.
	for _, s := range diff(old, next) {
		if err := conn.Emit(s.path, s.member, s.body...); err != nil {
			return err
		}
	}
	return nil
}

func (p *publisher) run() {
	defer close(p.done)
	select {
	case <-p.wake:
	case <-p.quit:
		return
	}
	p.apply(nil)
	delay := p.cfg.RetryMin
	for {
		conn, err := p.connect()
		if err != nil {
			p.logf("%s: %v; trying again in %v", p.name, err, delay)
			if !p.wait(delay) {
				return
			}
			delay = min(2*delay, p.cfg.RetryMax)
			continue
		}
		delay = p.cfg.RetryMin
		p.connects.Add(1)
		p.published.Store(true)
		p.logf("%s published on %s", p.name, p.cfg.Address)
		quit := p.serve(conn)
		p.published.Store(false)
		if quit {
			conn.ReleaseName(p.name)
			conn.Close()
			return
		}
		conn.Close()
		p.logf("%s: bus connection lost; reconnecting", p.name)
	}
}

// serve applies snapshots on conn until it fails (false) or the publisher
// closes (true).
func (p *publisher) serve(conn *dbus.Conn) bool {
	// A snapshot posted while connecting is told as a change of what
	// calls were answered with already.
	if err := p.apply(conn); err != nil {
		return false
	}
	for {
		select {
		case <-p.wake:
			if err := p.apply(conn); err != nil {
				return false
			}
		case <-conn.Context().Done():
			return false
		case <-p.quit:
			return true
		}
	}
}

// wait sleeps d while applying snapshots (without a bus to tell); false
// when the publisher closes meanwhile.
func (p *publisher) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case <-p.wake:
			p.apply(nil)
		case <-p.quit:
			return false
		}
	}
}

func (p *publisher) connect() (*dbus.Conn, error) {
	conn, err := dbus.Connect(p.cfg.Address, dbus.WithHandler(p))
	if err != nil {
		return nil, err
	}
	reply, err := conn.RequestName(p.name, dbus.NameFlagDoNotQueue)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("requesting the name: %w", err)
	}
	if reply != dbus.RequestNameReplyPrimaryOwner && reply != dbus.RequestNameReplyAlreadyOwner {
		conn.Close()
		return nil, errors.New("the name is owned by another connection (a second daemon?)")
	}
	return conn, nil
}

// LookupObject makes the publisher the connection's handler of method
// calls: every object is resolved from the tree of the moment, so objects
// come and go with the snapshots without exports to keep in step.
func (p *publisher) LookupObject(path dbus.ObjectPath) (dbus.ServerObject, bool) {
	t := p.tree.Load()
	if t == nil || !t.isNode(path) {
		return nil, false
	}
	return &serverObject{p: p, t: t, path: path}, true
}

type serverObject struct {
	p    *publisher
	t    *tree
	path dbus.ObjectPath
}

type methodSet map[string]dbus.Method

func (m methodSet) LookupMethod(name string) (dbus.Method, bool) {
	x, ok := m[name]
	return x, ok
}

func (o *serverObject) LookupInterface(name string) (dbus.Interface, bool) {
	obj, isObject := o.t.objects[o.path]
	switch name {
	case introspectIntf:
		return methodSet{"Introspect": &method{out: []any{""}, fn: o.introspect}}, true
	case propertiesIntf:
		if !isObject {
			return nil, false
		}
		return methodSet{
			"Get":    &method{in: "ss", out: []any{dbus.Variant{}}, fn: o.get},
			"GetAll": &method{in: "s", out: []any{map[string]dbus.Variant{}}, fn: o.getAll},
			"Set":    &method{in: "ssv", fn: o.set},
		}, true
	case objectManagerIntf:
		if o.path != o.t.root {
			return nil, false
		}
		return methodSet{"GetManagedObjects": &method{out: []any{map[dbus.ObjectPath]map[string]map[string]dbus.Variant{}}, fn: o.managedObjects}}, true
	case "":
		// A call that names no interface: the member alone decides.
		all := methodSet{}
		for _, n := range []string{propertiesIntf, objectManagerIntf, introspectIntf, o.p.name} {
			if i, ok := o.LookupInterface(n); ok {
				maps.Copy(all, i.(methodSet))
			}
		}
		return all, true
	}
	if o.path == o.t.root && name == o.p.name {
		ms := methodSet{"Reload": &method{out: []any{false, []string{}, []string{}}, fn: o.reload}}
		if name == HomeAgentName {
			ms["Revoke"] = &method{in: "sq", fn: o.revoke}
		}
		return ms, true
	}
	if _, ok := obj[name]; ok {
		return methodSet{}, true // properties only
	}
	return nil, false
}

// method is one callable member: the arguments it takes (checked before
// it runs, so that bad input gets InvalidArgs and calls nothing) and what
// it does.
type method struct {
	in  string
	out []any
	fn  func(args []any) ([]any, error)
}

func (m *method) DecodeArguments(_ *dbus.Conn, _ string, _ *dbus.Message, args []any) ([]any, error) {
	if got := dbus.SignatureOf(args...).String(); got != m.in {
		return nil, busError(ErrorInvalidArgs, "arguments of type (%s) expected, not (%s)", m.in, got)
	}
	return args, nil
}

func (m *method) Call(args ...any) ([]any, error) { return m.fn(args) }
func (m *method) NumArguments() int               { return len(sigElems(m.in)) }
func (m *method) ArgumentValue(int) any           { return nil }
func (m *method) NumReturns() int                 { return len(m.out) }
func (m *method) ReturnValue(i int) any           { return m.out[i] }
func sigElems(s string) []dbus.Signature {
	var out []dbus.Signature
	for s != "" {
		n := oneType(s)
		out = append(out, dbus.ParseSignatureMust(s[:n]))
		s = s[n:]
	}
	return out
}

// oneType is the length of the single complete type at the start of s.
func oneType(s string) int {
	switch s[0] {
	case 'a':
		return 1 + oneType(s[1:])
	case '(', '{':
		depth := 0
		for i := 0; i < len(s); i++ {
			switch s[i] {
			case '(', '{':
				depth++
			case ')', '}':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
	}
	return 1
}

func (o *serverObject) introspect([]any) ([]any, error) {
	x, _ := o.t.introspect(o.path)
	return []any{x}, nil
}

// lookupProps finds iface's properties on the object; an empty iface
// means all of them (the specification leaves it to the object).
func (o *serverObject) lookupProps(iface string) (props, error) {
	obj := o.t.objects[o.path]
	if iface == "" {
		all := props{}
		for _, ps := range obj {
			maps.Copy(all, ps)
		}
		return all, nil
	}
	ps, ok := obj[iface]
	if !ok {
		if iface == propertiesIntf || iface == introspectIntf || iface == peerIntf {
			return props{}, nil
		}
		return nil, busError(ErrorUnknownInterface, "%s has no interface %s", o.path, iface)
	}
	return ps, nil
}

func (o *serverObject) get(args []any) ([]any, error) {
	iface, name := args[0].(string), args[1].(string)
	ps, err := o.lookupProps(iface)
	if err != nil {
		return nil, err
	}
	v, ok := ps[name]
	if !ok {
		return nil, busError(ErrorUnknownProperty, "%s has no property %s.%s", o.path, iface, name)
	}
	return []any{v}, nil
}

func (o *serverObject) getAll(args []any) ([]any, error) {
	ps, err := o.lookupProps(args[0].(string))
	if err != nil {
		return nil, err
	}
	return []any{map[string]dbus.Variant(maps.Clone(ps))}, nil
}

func (o *serverObject) set(args []any) ([]any, error) {
	iface, name := args[0].(string), args[1].(string)
	ps, err := o.lookupProps(iface)
	if err != nil {
		return nil, err
	}
	if _, ok := ps[name]; !ok {
		return nil, busError(ErrorUnknownProperty, "%s has no property %s.%s", o.path, iface, name)
	}
	return nil, busError(ErrorPropertyReadOnly, "%s.%s is read-only", iface, name)
}

func (o *serverObject) managedObjects([]any) ([]any, error) {
	out := map[dbus.ObjectPath]map[string]map[string]dbus.Variant{}
	for _, p := range o.t.children() {
		out[p] = o.t.managed(p)
	}
	return []any{out}, nil
}

func (o *serverObject) reload([]any) ([]any, error) {
	if o.p.cfg.Reload == nil {
		return nil, busError(ErrorNotSupported, "this daemon does not reload over the bus")
	}
	r, err := o.p.cfg.Reload()
	if err != nil {
		return nil, busError(ErrorFailed, "reload: %v", err)
	}
	return []any{r.Reloaded, slices.Clip(strs(r.Applied)), slices.Clip(strs(r.NeedsRestart))}, nil
}

func (o *serverObject) revoke(args []any) ([]any, error) {
	if o.p.cfg.Revoke == nil {
		return nil, busError(ErrorNotSupported, "this home agent does not revoke bindings yet")
	}
	home, bid := args[0].(string), args[1].(uint16)
	a, err := netip.ParseAddr(home)
	if err != nil || a.Zone() != "" {
		return nil, busError(ErrorInvalidArgs, "home address %q is not an IP address", home)
	}
	if bid == 0 {
		return nil, busError(ErrorInvalidArgs, "BID 0 is reserved; BIDs start at 1")
	}
	if err := o.p.cfg.Revoke(a, bid); err != nil {
		if errors.Is(err, ErrNoSuchBinding) {
			return nil, busError(ErrorNoSuchBinding, "%v", err)
		}
		return nil, busError(ErrorFailed, "revoke: %v", err)
	}
	return []any{}, nil
}
