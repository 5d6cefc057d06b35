package router

// OpenWrt: the router on ubus (option ubus_socket, used when it exists at
// start). One client, reconnecting when ubusd restarts, does all of it:
//
//   - the object nemod: status (ctl status's shape, and per uplink what
//     mwan3's users read), flows and reload (root only: ubusd's ACL,
//     /usr/share/acl.d/nemod.json, lets group nemod call status and flows);
//   - the event nemod.binding at every binding change;
//   - netifd: the tunnel's interface told of every registration change
//     (notify_proto), and the uplinks that follow a netifd interface
//     (option interface) driven by its reports (netifd.go).
//
// Nothing of it waits on the event loop for ubusd: calls are answered on
// the loop through the publishing's call queue, and what goes out (the
// tunnel's updates, the events) is sent by a goroutine of its own, the
// tunnel's updates coalesced to the latest.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"nemod/binding"
	"nemod/netifd"
	"nemod/owrt"
	"nemod/status"
	"nemod/ubus"
)

// UbusObject is the path of the router's ubus object.
const UbusObject = "nemod"

// ubusState is the router's ubus side; event loop only, but for what the
// goroutines it starts own.
type ubusState struct {
	c   *ubus.Client
	ctx context.Context
	// netifd: network.interface answered at start. netifd then owns the
	// tunnel's addresses and routes and the LAN (odhcpd advertises).
	netifd bool
	// seen: netifd is there, now or at start; the tunnel is reported
	// only then.
	seen    bool
	uplinks *owrt.Uplinks
	changes chan netifd.Change // netifd's, from the follower's goroutine
	out     *ubusOut
	added   bool   // the object was added (or that failed: not again)
	gen     uint64 // the binding generation last turned into events
	prev    []binding.BindingStatus
	fp      string // the tunnel state last sent, as owrt's fingerprint
	up      bool   // and whether it was up
	device  string // the TUN device
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// startUbus connects to ubusd when its socket exists (an uplink that
// follows netifd needs it), learns whether netifd runs and takes its
// first report of the interfaces the uplinks follow, so that the monitor
// and the data plane start on their devices.
func (d *Daemon) startUbus(ctx context.Context) error {
	path := d.cfg.OpenWrt.UbusSocket
	if path == "" {
		return nil
	}
	if _, err := os.Stat(path); err != nil {
		if d.cfg.HasInterfaceUplinks() {
			return fmt.Errorf("option interface follows netifd over ubus, and ubusd's socket %s: %w", path, err)
		}
		return nil
	}
	ub := &ubusState{changes: make(chan netifd.Change, 16)}
	names := make([]string, len(d.uplinks))
	for i, u := range d.uplinks {
		names[i] = u.Cfg.Interface
	}
	ub.uplinks = owrt.NewUplinks(names)
	ub.ctx, ub.cancel = context.WithCancel(ctx)
	logf := func(format string, args ...any) { d.log.Warn(fmt.Sprintf(format, args...)) }
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := ubus.Connect(cctx, ubus.Options{Path: path, Reconnect: true, Logf: logf,
		OnConnect: func(_ uint32, reconnected bool) {
			if reconnected {
				d.log.Info("ubus: connected again", "socket", path)
				ub.out.resend()
			}
		}})
	if err != nil {
		ub.cancel()
		if d.cfg.HasInterfaceUplinks() {
			return fmt.Errorf("ubus %s: %w", path, err)
		}
		d.log.Warn("ubus: not connected; going on without it", "socket", path, "err", err)
		return nil
	}
	ub.c = c
	d.ub = ub
	ub.out = newUbusOut(c, d.log.Warn)
	ub.wg.Add(1)
	go func() { defer ub.wg.Done(); ub.out.run(ub.ctx) }()
	if _, err := c.LookupID(cctx, netifd.Object); err == nil {
		ub.netifd, ub.seen = true, true
	}
	d.log.Info("ubus: connected", "socket", path, "netifd", ub.netifd)
	if !ub.netifd && !ub.uplinks.Follows() {
		return nil
	}
	f, err := netifd.Follow(cctx, c, netifd.FollowerOptions{Logf: logf})
	if err != nil {
		return fmt.Errorf("following netifd: %w", err)
	}
	// The first dump, before the monitor and the data plane start.
	done, stop := context.WithCancel(ctx)
	stop()
	for f.Pending() > 0 {
		ch, err := f.Next(done)
		if err != nil {
			break
		}
		d.netifdChanged(ch, time.Now(), false)
	}
	ub.wg.Add(1)
	go func() {
		defer ub.wg.Done()
		defer f.Close(context.Background())
		for {
			ch, err := f.Next(ub.ctx)
			if err != nil {
				return
			}
			select {
			case ub.changes <- ch:
			case <-ub.ctx.Done():
				return
			}
		}
	}()
	return nil
}

// netifdOwns reports whether netifd owns the tunnel's addresses and
// routes and runs the LAN: nemod must not install the same over netlink,
// or they fight (its policy routing into the TUN device, and the LAN's
// source filter, stay its own everywhere).
func (d *Daemon) netifdOwns() bool { return d.ub != nil && d.ub.netifd }

// lanRA is whether the router advertises the prefixes on its LANs itself:
// option lan_ra, which, left out, is off where netifd runs the LAN
// (odhcpd advertises what netifd assigns it) and on elsewhere.
func (d *Daemon) lanRA() bool {
	if d.cfg.OpenWrt.LanRAUnset && d.netifdOwns() {
		return false
	}
	return d.cfg.PD.LanRA
}

// ubusChanges is the event loop's channel of netifd's changes (nil, which
// never fires, without ubus).
func (d *Daemon) ubusChanges() <-chan netifd.Change {
	if d.ub == nil {
		return nil
	}
	return d.ub.changes
}

// ubusTick runs at every turn of the event loop: the object added on the
// first, events for the bindings that changed, the tunnel's state to
// netifd when it changed.
func (d *Daemon) ubusTick(now time.Time) {
	ub := d.ub
	if ub == nil {
		return
	}
	if !ub.added {
		ub.added = true
		d.addUbusObject()
	}
	if g := d.br.Gen(); g != ub.gen || ub.prev == nil {
		ub.gen = g
		bs := d.br.Bindings()
		for _, ev := range owrt.BindingEvents(ub.prev, bs, d.uplinkNames()) {
			ub.out.event(owrt.BindingEvent, ev)
		}
		ub.prev = bs
	}
	if d.cfg.OpenWrt.NetifdInterface == "" || !ub.seen {
		return
	}
	in := d.tunnelInput()
	if fp := in.Fingerprint(); fp != ub.fp {
		ub.fp = fp
		st := owrt.Tunnel(in, now)
		ub.up = st.Up
		ub.out.tunnel(st.Update())
	}
}

func (d *Daemon) uplinkNames() []owrt.UplinkNames {
	out := make([]owrt.UplinkNames, len(d.uplinks))
	for i, u := range d.uplinks {
		out[i] = owrt.UplinkNames{Device: u.Cfg.Device, Interface: u.Cfg.Interface}
	}
	return out
}

// ubusCallWait bounds how long a ubus call waits for the event loop.
const ubusCallWait = 10 * time.Second

// errLoop answers a call the event loop did not take.
var errLoop = fmt.Errorf("%w: the daemon is stopping or busy", ubus.StatusUnknownError)

// onLoop runs f on the event loop for a ubus call.
func (d *Daemon) onLoop(f func()) error {
	if !d.ops.calls.Do(f, ubusCallWait) {
		return errLoop
	}
	return nil
}

// asTable turns one of the status shapes into a ubus table, typed as the
// ubus tool would type its JSON.
func asTable(v any) (ubus.Table, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return ubus.ParseJSON(string(b))
}

func (d *Daemon) addUbusObject() {
	typ := ubus.NewObjectType(
		ubus.Method{Name: "status", Handler: func(context.Context, *ubus.Request) (ubus.Table, error) {
			var st status.OpenWrtRouter
			if err := d.onLoop(func() { st = d.ubusStatus(time.Now()) }); err != nil {
				return nil, err
			}
			return asTable(st)
		}},
		ubus.Method{Name: "flows", Handler: func(context.Context, *ubus.Request) (ubus.Table, error) {
			var fl status.RouterFlows
			if err := d.onLoop(func() {
				fl = status.RouterFlows{Role: status.RoleRouter, Flows: d.fwd.Flows(), Refused: refused(d.br.FlowStatus())}
			}); err != nil {
				return nil, err
			}
			return asTable(fl)
		}},
		ubus.Method{Name: "reload", Handler: func(_ context.Context, r *ubus.Request) (ubus.Table, error) {
			// ubusd's ACL keeps reload from the group that reads; this
			// holds with a broker that has no ACLs too.
			if r.User != "root" {
				return nil, ubus.StatusPermissionDenied
			}
			var rl status.Reload
			var rerr error
			if err := d.onLoop(func() { rl, rerr = d.reload() }); err != nil {
				return nil, err
			}
			t, err := asTable(rl)
			if err != nil {
				return nil, err
			}
			if rerr != nil {
				// The running configuration stays; the answer says why.
				return append(t, ubus.Field{Name: "error", Value: ubus.String(rerr.Error())}), ubus.StatusInvalidArgument
			}
			return t, nil
		}},
	)
	ctx, cancel := context.WithTimeout(d.ub.ctx, 5*time.Second)
	defer cancel()
	if _, err := d.ub.c.AddObject(ctx, UbusObject, typ, nil); err != nil {
		d.log.Error("ubus: publishing object "+UbusObject, "err", err)
	}
}

// ubusStatus is the object's status.
func (d *Daemon) ubusStatus(now time.Time) status.OpenWrtRouter {
	st := d.status(now)
	return status.OpenWrtRouter{Router: st, Uplinks: owrt.Health(st, d.br.Bindings(), d.uplinkNames(), now)}
}

// stopUbus tells netifd the tunnel is down (the bindings are gone by now)
// and leaves ubus.
func (d *Daemon) stopUbus() {
	ub := d.ub
	if ub == nil {
		return
	}
	// The de-registration's events, then the tunnel down.
	if ub.prev != nil {
		for _, ev := range owrt.BindingEvents(ub.prev, d.br.Bindings(), d.uplinkNames()) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			ub.c.Send(ctx, owrt.BindingEvent, ev)
			cancel()
		}
	}
	if ub.up && ub.seen && d.cfg.OpenWrt.NetifdInterface != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := netifd.Notify(ctx, ub.c, netifd.TunnelState{Interface: d.cfg.OpenWrt.NetifdInterface}.Update()); err != nil {
			d.log.Warn("netifd: telling it the tunnel is down", "err", err)
		}
		cancel()
	}
	ub.cancel()
	ub.wg.Wait()
	ub.c.Close()
}

// ubusOut sends what the router tells ubus: netifd's updates (the latest
// only) and events (each, in order).
type ubusOut struct {
	c    *ubus.Client
	warn func(string, ...any)
	mu   sync.Mutex
	// next is the update to send, last the one sent (sent again after
	// ubusd or netifd restarted).
	next, last *netifd.Update
	events     []outEvent
	wake       chan struct{}
	lastErr    string // the last failure logged
}

type outEvent struct {
	name string
	data ubus.Table
}

func newUbusOut(c *ubus.Client, warn func(string, ...any)) *ubusOut {
	return &ubusOut{c: c, warn: warn, wake: make(chan struct{}, 1)}
}

func (o *ubusOut) poke() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *ubusOut) tunnel(u netifd.Update) {
	o.mu.Lock()
	o.next = &u
	o.mu.Unlock()
	o.poke()
}

func (o *ubusOut) event(name string, data ubus.Table) {
	o.mu.Lock()
	// A ubusd that stays away must not make the queue grow for ever.
	if len(o.events) < 256 {
		o.events = append(o.events, outEvent{name, data})
	}
	o.mu.Unlock()
	o.poke()
}

// resend sends the last update again: netifd or ubusd restarted and
// forgot it.
func (o *ubusOut) resend() {
	o.mu.Lock()
	if o.next == nil {
		o.next = o.last
	}
	o.mu.Unlock()
	o.poke()
}

func (o *ubusOut) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		}
		o.mu.Lock()
		next, events := o.next, o.events
		o.next, o.events = nil, nil
		o.mu.Unlock()
		for _, e := range events {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := o.c.Send(cctx, e.name, e.data)
			cancel()
			o.note("ubus: event "+e.name, err)
		}
		if next != nil {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := netifd.Notify(cctx, o.c, *next)
			cancel()
			o.mu.Lock()
			o.last = next
			o.mu.Unlock()
			o.note("netifd: notify_proto "+next.Interface, err)
		}
	}
}

// note logs a failure once until the next success or another failure.
func (o *ubusOut) note(what string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err == nil {
		o.lastErr = ""
		return
	}
	if msg := what + ": " + err.Error(); msg != o.lastErr {
		o.lastErr = msg
		o.warn(msg)
	}
}
