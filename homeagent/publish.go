package homeagent

// What the home agent tells the outside besides its control socket:
// systemd (ready, reloading, stopping, the watchdog from the event loop),
// the D-Bus service, and one HTTP listener with the Prometheus metrics at
// /metrics and the live fleet page at /. The event loop builds one status
// snapshot per change (internal/pubsched decides when, and spaces them
// out on a large fleet) and hands it to every publisher.

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"nemod/config"
	"nemod/dbusapi"
	"nemod/fleetweb"
	"nemod/internal/httpd"
	"nemod/internal/pubsched"
	"nemod/internal/sdnotify"
	"nemod/metrics"
	"nemod/status"
)

// ops is the daemon's publishing state, owned by the event loop.
type ops struct {
	sched pubsched.Schedule
	calls *pubsched.Calls
	timer *time.Timer
	fp    fingerprint
	bus   *dbusapi.HomeAgent
	m     *metrics.HomeAgent
	fleet *fleetweb.Fleet
	srv   *httpd.Server
	ln    net.Listener
}

// fingerprint changes with every signalling message the loop handles and
// every binding that expires; traffic is caught by the refresh.
type fingerprint struct {
	received, expired, sent, dropped uint64
}

func (d *Daemon) fingerprint() fingerprint {
	return fingerprint{d.cache.Counters.Received, d.cache.Counters.Expired, d.sent, d.dropped.Load()}
}

// scrapeWait bounds how long a scrape waits for the loop's fresh snapshot
// before it is answered with the last one.
const scrapeWait = 2 * time.Second

func listenHTTP(addr netip.AddrPort) (net.Listener, error) { return net.Listen("tcp", addr.String()) }

// startOps opens the listener and the bus connection the configuration
// asks for, and tells systemd the daemon is ready: the control socket,
// the data plane and the signalling sockets are up.
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
			return fmt.Errorf("option metrics_listen %s: %w (set another address, or 'off')", cfg.MetricsListen, err)
		}
		o.ln, o.m = ln, &metrics.HomeAgent{}
		o.fleet = fleetweb.New(fleetweb.Options{Token: cfg.WebToken})
		mux := httpd.NewMux()
		metrics.Mount(mux, func() []metrics.Family {
			o.calls.Do(func() { d.publish(time.Now()) }, scrapeWait)
			return o.m.Families()
		})
		o.fleet.Mount(mux)
		o.srv = httpd.NewServer(mux.Serve)
		go o.srv.Serve(ln)
		page := "the fleet page wants option web_token"
		if cfg.WebToken == "" {
			page = "the fleet page answers loopback clients only (no option web_token)"
		}
		d.log.Info("metrics and fleet page", "listen", ln.Addr().String(), "page", page)
	}
	if cfg.DBus == config.On || cfg.DBus == config.Auto && dbusapi.SystemBusAvailable() {
		o.bus = dbusapi.NewHomeAgent(dbusapi.Config{Reload: d.busReload, Revoke: d.revoker(),
			Logf: func(format string, args ...any) { d.log.Info(fmt.Sprintf(format, args...)) }})
	}
	o.sched.Publish = o.bus != nil || o.m != nil
	if err := sdnotify.Ready(); err != nil {
		d.log.Warn("telling systemd the daemon is ready", "err", err)
	}
	return nil
}

// revoker is the bus's Revoke method: none until the home agent revokes
// bindings (the bus then answers NotSupported). The hook for revocation.
func (d *Daemon) revoker() func(home netip.Addr, bid uint16) error { return nil }

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

// publish builds one snapshot and hands it to every publisher; they keep
// it, so nothing of it is changed afterwards.
func (d *Daemon) publish(now time.Time) {
	o := d.ops
	if o.bus == nil && o.m == nil {
		return
	}
	st := d.status(now)
	if o.bus != nil {
		o.bus.Update(st)
	}
	if o.m != nil {
		o.m.Update(st)
		o.fleet.Update(fleetweb.Snapshot{Status: st, Flows: d.flows()})
	}
	o.sched.Published(now, time.Since(now))
}

// busReload is the bus's Reload method: the reload runs on the event
// loop, as SIGHUP's and the control socket's do.
func (d *Daemon) busReload() (status.Reload, error) {
	var r status.Reload
	var err error
	if !d.ops.calls.Do(func() { r, err = d.reload() }, 30*time.Second) {
		return status.Reload{}, fmt.Errorf("the daemon is stopping")
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

// stopping tells systemd the daemon is shutting down.
func (d *Daemon) stopping() {
	if err := sdnotify.Stopping(); err != nil {
		d.log.Warn("telling systemd the daemon stops", "err", err)
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
