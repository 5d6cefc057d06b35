package router

// What the mobile router tells the outside besides its control socket:
// systemd (ready, reloading, stopping, the watchdog from the event loop),
// the D-Bus service and the Prometheus metrics. The event loop builds one
// status snapshot per change (internal/pubsched decides when) and hands it
// to every publisher.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"nemod/config"
	"nemod/internal/httpd"
	"nemod/internal/pubsched"
	"nemod/internal/sdnotify"
	"nemod/internal/sock"
	"nemod/metrics"
	"nemod/status"
)

// routerBus is the D-Bus service (dbusapi's; none in a routeronly build).
type routerBus interface {
	Update(status.Router)
	Close() error
}

// ops is the daemon's publishing state, owned by the event loop.
type ops struct {
	sched pubsched.Schedule
	calls *pubsched.Calls
	timer *time.Timer
	fp    fingerprint
	bus   routerBus
	m     *metrics.Router
	srv   *httpd.Server
	ln    net.Listener
}

// fingerprint is what changes with every event the loop handles that a
// snapshot shows; traffic and probe timings are caught by the refresh.
type fingerprint struct {
	gen, sent, received, accepted, probes, dead, ignored, dropped uint64
}

func (d *Daemon) fingerprint() fingerprint {
	b := d.br
	return fingerprint{b.Gen(), b.Sent, b.Received, b.Accepted, b.Probes, b.DeadPaths, b.Ignored, d.dropped.Load()}
}

// scrapeWait bounds how long a scrape waits for the loop's fresh snapshot
// before it is answered with the last one (a stuck loop is still
// scraped, and the watchdog restarts it).
const scrapeWait = 2 * time.Second

func listenHTTP(addr netip.AddrPort) (net.Listener, error) { return sock.ListenTCP(addr) }

// startOps opens the metrics listener and the bus connection the
// configuration asks for, and tells systemd the daemon is ready: the
// control socket, the data plane and the signalling sockets are up.
func (d *Daemon) startOps() error {
	o := &ops{calls: pubsched.NewCalls(), timer: time.NewTimer(time.Hour)}
	d.ops = o
	cfg := d.cfg.Ops
	if wd, err := sdnotify.WatchdogInterval(); err != nil {
		d.log.Warn("no systemd watchdog", "err", err)
	} else {
		o.sched.Watchdog = wd / 2
	}
	if cfg.MetricsListen.IsValid() {
		listen := d.opts.ListenHTTP
		if listen == nil {
			listen = listenHTTP
		}
		ln, err := listen(cfg.MetricsListen)
		if err != nil {
			return fmt.Errorf("option metrics_listen %s: %w", cfg.MetricsListen, err)
		}
		reg, _ := metrics.NewHistogram(metrics.RegistrationBuckets)
		o.m, o.ln = &metrics.Router{Registration: reg}, ln
		o.srv, _ = metrics.Serve(ln, func() []metrics.Family {
			o.calls.Do(func() { d.publish(time.Now()) }, scrapeWait)
			return o.m.Families()
		})
		d.log.Info("metrics", "listen", ln.Addr().String())
	}
	// A routeronly build has no bus: setup refuses option dbus '1' there,
	// and busAvailable is false.
	if cfg.DBus == config.On || cfg.DBus == config.Auto && busAvailable() {
		o.bus = startBus(d.busReload, func(format string, args ...any) { d.log.Info(fmt.Sprintf(format, args...)) })
	}
	o.sched.Publish = o.bus != nil || o.m != nil
	if err := sdnotify.Ready(); err != nil {
		d.log.Warn("telling systemd the daemon is ready", "err", err)
	}
	return nil
}

// opsTick runs at every turn of the event loop: the keep-alive when due,
// a snapshot when something changed (or the refresh is due), and the
// timer set for the next of them.
func (d *Daemon) opsTick(now time.Time) {
	o := d.ops
	if fp := d.fingerprint(); fp != o.fp {
		o.fp = fp
		o.sched.Changed()
	}
	publish, watchdog := o.sched.Step(now)
	if watchdog {
		if err := sdnotify.Watchdog(); err != nil {
			d.log.Warn("systemd watchdog", "err", err)
		}
	}
	if publish {
		d.publish(now)
	}
	o.timer.Stop()
	if next := o.sched.Next(); !next.IsZero() {
		o.timer.Reset(max(time.Until(next), 0))
	}
}

// publish builds one snapshot and hands it to every publisher; the
// publishers keep it, so nothing of it is changed afterwards.
func (d *Daemon) publish(now time.Time) {
	o := d.ops
	for _, rtt := range d.br.TakeAccepted() {
		if o.m != nil {
			o.m.Registration.Observe(rtt.Seconds())
		}
	}
	if o.bus == nil && o.m == nil {
		return
	}
	st := d.status(now)
	if o.bus != nil {
		o.bus.Update(st)
	}
	if o.m != nil {
		o.m.Update(st)
	}
	o.sched.Published(now, time.Since(now))
}

// busReload is the bus's Reload method: the reload runs on the event
// loop, as SIGHUP's and the control socket's do.
func (d *Daemon) busReload() (status.Reload, error) {
	var r status.Reload
	var err error
	if !d.ops.calls.Do(func() { r, err = d.reload() }, 30*time.Second) {
		return status.Reload{}, errors.New("the daemon is stopping")
	}
	return r, err
}

// reloading tells systemd of a reload; call the function it returns when
// done, whatever the outcome (the daemon runs on either way). What the
// reload changed is published at once.
func (d *Daemon) reloading() func() {
	sdnotify.Reloading()
	return func() {
		sdnotify.Ready()
		if d.ops != nil {
			d.ops.sched.Changed()
		}
	}
}

// stopOps takes the daemon off the bus and closes the listener.
func (d *Daemon) stopOps() {
	o := d.ops
	if o == nil {
		return
	}
	o.calls.Stop()
	o.timer.Stop()
	if o.bus != nil {
		o.bus.Close()
	}
	if o.srv != nil {
		o.srv.Close()
	}
	if o.ln != nil {
		o.ln.Close()
	}
}

// stopping tells systemd the daemon is shutting down (de-registering
// takes a few round trips).
func (d *Daemon) stopping() {
	if err := sdnotify.Stopping(); err != nil {
		d.log.Warn("telling systemd the daemon stops", "err", err)
	}
}
