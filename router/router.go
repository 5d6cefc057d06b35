// Package router is the mobile router daemon: an event loop around the
// binding update list (package binding), driven by the interface monitor
// (package ifmon), sending and receiving signalling through per-uplink
// sockets, steering the data plane (package tunnel) and answering the
// control socket. Everything it touches the host with (sockets, monitor,
// TUN and routing) comes through Options, so that the whole daemon runs in
// a test without root.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"nemod/binding"
	"nemod/config"
	"nemod/control"
	"nemod/hostnet"
	"nemod/ifmon"
	"nemod/internal/logsum"
	"nemod/internal/procstat"
	"nemod/nemo"
	"nemod/netio"
	"nemod/policy"
	"nemod/setup"
	"nemod/status"
	"nemod/tunnel"
)

// Monitor is what the daemon needs of the interface monitor (ifmon's).
type Monitor interface {
	// Changes signals that Snapshot may have changed.
	Changes() <-chan struct{}
	// Done is closed when the monitor gave up; Err says why.
	Done() <-chan struct{}
	Err() error
	// Snapshot reports the uplinks' devices, in the order asked for.
	Snapshot() []ifmon.Link
	Close() error
}

// Options adjust a daemon. The zero value runs on the host's kernel.
type Options struct {
	Logger *slog.Logger
	// Stack opens the sockets (netio.System when nil).
	Stack netio.Stack
	// System is the data plane's host side: TUN device, policy routing,
	// local breakout (hostnet's when nil).
	System tunnel.RouterSystem
	// Monitor starts the interface monitor of the uplinks' devices
	// (ifmon.Start when nil).
	Monitor func(ctx context.Context, devices []string) (Monitor, error)
	// Signals replaces the process's SIGTERM, SIGINT and SIGHUP when set.
	Signals <-chan os.Signal
	// Offer is what the router offers its home agent in nemod's Vendor
	// Specific option (nemo.Caps): when nil, Heartbeat answers and, where
	// the kernel segments UDP, UDP over IPv6 with offload.
	Offer func() nemo.Caps
	// LAN4 takes the LAN's IPv4 as the home agent grants it (HostLAN4
	// when nil: the address on the first lan interface, DHCPv4 there).
	LAN4 LAN4
	// ListenHTTP opens option metrics_listen's listener (net.Listen's
	// TCP when nil).
	ListenHTTP func(netip.AddrPort) (net.Listener, error)
	// LAN opens a list lan interface's router advertisements (pd.go;
	// ranet.Open on the kernel when nil).
	LAN LANOpener
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if o.Stack == nil {
		o.Stack = netio.System{}
	}
	if o.System == nil {
		o.System = &hostnet.Router{}
	}
	if o.Monitor == nil {
		o.Monitor = func(ctx context.Context, devices []string) (Monitor, error) {
			return ifmon.Start(ctx, devices, ifmon.Options{})
		}
	}
	if o.Offer == nil {
		o.Offer = DefaultOffer
	}
	if o.LAN4 == nil {
		o.LAN4 = &HostLAN4{Log: o.Logger}
	}
}

// Uplink is one configured uplink and what the interface monitor last said
// of its device.
type Uplink struct {
	Cfg  config.Uplink
	Link ifmon.Link
	// open: the data plane has this device's sockets.
	open bool
}

// Daemon is a running mobile router.
type Daemon struct {
	path    string
	opts    Options
	cfg     *config.Router
	log     *slog.Logger
	br      *binding.UpdateList
	mon     Monitor
	ctl     *control.Server
	pl      netio.Listener
	uplinks []*Uplink
	fwd     tunnel.RouterPlane
	sig     chan []byte
	// probeAnswers carries the answers to the probes (liveness.go).
	probeAnswers chan probeAnswer
	gen          uint64
	// dropped counts signalling packets the readers (the packet listener
	// and the data plane's goroutines) could not queue.
	dropped atomic.Uint64
	start   time.Time
	// answers keeps a flood of answers the router ignores or is refused
	// to a few lines and a summary per interval.
	answers *logsum.Summarizer
	ops     *ops       // publish.go
	pd      *pdState   // prefix delegation and the LANs (pd.go)
	ub      *ubusState // OpenWrt's ubus and netifd (ubus.go, netifd.go)
	// has are the home agents signalling is taken from (readPackets
	// reads it), curHA the one the data plane uses (halist.go).
	has   atomic.Value
	curHA binding.HomeAgentAddr
	// The mobile network's IPv4 last applied (ipv4.go).
	lan4       LAN4
	v4HoA      netip.Addr
	v4Prefixes []netip.Prefix
	v4Applied  bool
}

func routerConfig(r *config.Router, logf func(string, ...any)) binding.UpdateListConfig {
	rc := binding.UpdateListConfig{
		HoA: r.HomeAddress, HA: r.HomeAgent, HAv4: r.HomeAgentV4, MNPs: r.MNPs,
		SPI: r.SPI, Key: r.Key, NAI: r.NAI, Lifetime: r.Lifetime, Logf: logf,
		ReplayWindow: r.ReplayWindow, RevokedHoldoff: r.RevokedHoldoff,
		HomeAgents: homeAgents(r), HATimeout: r.HATimeout,
	}
	if r.PD != nil && r.PD.Enabled {
		rc.MNPs = nil // implicit mode: the home agent knows the prefixes it delegated
	}
	for _, u := range r.Uplinks {
		rc.Uplinks = append(rc.Uplinks, binding.UplinkConfig{Name: u.Name, BID: u.BID, Pri: u.Priority, Mode: u.Encap,
			ProbeInterval: u.ProbeInterval, ProbeFailures: u.ProbeFailures})
	}
	return rc
}

// Run loads the configuration at path and runs the mobile router until ctx
// is done or SIGTERM/SIGINT arrives, then de-registers every binding.
func Run(ctx context.Context, path string, opts Options) error {
	// What check-config runs too: the file loaded and its flow bindings
	// compiled.
	plan, err := setup.Router(path)
	if err != nil {
		return err
	}
	f, table := plan.File, plan.Table
	opts.defaults()
	log := opts.Logger
	for _, w := range f.Warnings {
		log.Warn(w)
	}
	d := &Daemon{path: path, opts: opts, cfg: f.Router, log: log, sig: make(chan []byte, 256), start: time.Now(),
		answers: logsum.New("binding acknowledgements not taken", 5, 10*time.Second), probeAnswers: make(chan probeAnswer, 64)}
	logf := func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) }
	for _, u := range d.cfg.Uplinks {
		d.uplinks = append(d.uplinks, &Uplink{Cfg: u})
	}
	rc := routerConfig(d.cfg, logf)
	withIPv4(&rc, d.cfg)
	d.lan4 = opts.LAN4
	rc.Flows = table.FlowIDs()
	rc.Clock = func(i int) binding.Clock { return d.fwd.Clock(i) }
	rc.Offer = opts.Offer()
	// A random first sequence number: after a restart, an old one could
	// look like a replay (RFC 6275 §11.7.1 leaves the choice open).
	d.br = binding.NewUpdateList(rc, uint16(rand.Uint32()))
	d.has.Store(d.br.HomeAgents())
	d.curHA = d.br.HomeAgent().Current
	defer d.close()
	if d.ctl, err = control.Listen(d.cfg.ControlSocket); err != nil {
		return err
	}
	// Binding Acknowledgements with a type 2 routing header: this kernel
	// drops them before any IP socket, so read them off the uplinks.
	if d.pl, err = opts.Stack.ListenExtHeaders(0); err != nil {
		return err
	}
	if err := d.startUbus(ctx); err != nil {
		return err
	}
	if d.mon, err = opts.Monitor(ctx, d.devices()); err != nil {
		return err
	}
	plane, err := tunnel.NewMR(tunnel.MRConfig{
		HoA: d.cfg.HomeAddress, MNPs: d.cfg.MNPs, HA: d.cfg.HomeAgent, HAv4: d.cfg.HomeAgentV4, HomeAgents: homeAgentAddrs(d.cfg),
		Devices: d.devices(), LANs: d.cfg.LAN, OnSignal: d.queue, OnProbeAnswer: d.queueAnswer, Logger: log, Order: policy.UplinkOrder(d.cfg),
		Stack: opts.Stack, System: opts.System, NoAddress: d.netifdOwns(), IPv4: d.cfg.HasIPv4(),
	})
	if err != nil {
		return err
	}
	d.fwd = plane
	d.fwd.SetFlows(table)
	if err := d.fwd.SetDirect(table); err != nil {
		return err
	}
	if err := d.startPD(ctx); err != nil {
		return err
	}
	go d.readPackets()
	if err := d.startOps(); err != nil {
		return err
	}
	log.Info("mobile router running", "home_address", d.cfg.HomeAddress, "home_agent", d.cfg.HomeAgent,
		"home_agent_v4", d.cfg.HomeAgentV4, "uplinks", len(d.uplinks), "control", d.cfg.ControlSocket)
	return d.loop(ctx)
}

func (d *Daemon) close() {
	d.stopUbus()
	d.stopOps()
	if d.pd != nil {
		d.pd.cancel()
	}
	if d.lan4 != nil {
		d.lan4.Close()
	}
	if d.fwd != nil {
		d.fwd.Close()
	}
	if d.mon != nil {
		d.mon.Close()
	}
	if d.pl != nil {
		d.pl.Close()
	}
	if d.ctl != nil {
		d.ctl.Close()
	}
}

// devices are the uplinks' devices, in uplink order.
func (d *Daemon) devices() []string {
	out := make([]string, len(d.uplinks))
	for i, u := range d.uplinks {
		out[i] = u.Cfg.Device
	}
	return out
}

func (d *Daemon) queue(pkt []byte) {
	select {
	case d.sig <- pkt:
	default:
		d.dropped.Add(1)
	}
}

// readPackets reads Binding Acknowledgements with a type 2 routing header
// for our home address, arriving natively on any uplink.
func (d *Daemon) readPackets() {
	buf := make([]byte, 65536)
	for {
		n, _, err := d.pl.Read(buf)
		if err != nil {
			if netio.IsClosed(err) {
				return
			}
			continue
		}
		p, err := nemo.ParsePacket(buf[:n])
		if err != nil || p.RH2Address != d.cfg.HomeAddress || !d.fromHomeAgent(p.Src) {
			continue
		}
		d.queue(append([]byte(nil), buf[:n]...))
	}
}

func (d *Daemon) send(s binding.Send) {
	if err := d.fwd.SendSignalTo(s.Path.Uplink, s.Path.Encap, s.Path.Dst, s.Packet); err != nil {
		what := "binding update"
		if s.Probe {
			what = "probe"
		}
		d.log.Warn("sending "+what, "uplink", d.uplinks[s.Path.Uplink].Cfg.Name, "encap", s.Path.Encap, "err", err)
	}
}

func (d *Daemon) linkChanged(now time.Time) {
	for i, l := range d.mon.Snapshot() {
		l = d.netifdLink(i, l)
		u := d.uplinks[i]
		if err := d.fwd.SetUplink(i, l.Index); err != nil {
			d.log.Error("opening uplink sockets", "uplink", u.Cfg.Name, "err", err)
			u.open = false
		} else {
			u.open = l.Index != 0
		}
		if l.Up != u.Link.Up || l.IPv6 != u.Link.IPv6 || l.IPv4 != u.Link.IPv4 || l.Default6 != u.Link.Default6 || l.Default4 != u.Link.Default4 {
			d.log.Info("uplink state", "uplink", u.Cfg.Name, "device", u.Cfg.Device, "up", l.Up,
				"ipv6", addrOrNone(l.IPv6), "default6", l.Default6, "ipv4", addrOrNone(l.IPv4), "default4", l.Default4)
		}
		u.Link = l
		st := binding.LinkState{Up: l.Up && u.open}
		if l.Usable6() {
			st.IPv6 = l.IPv6
		}
		if l.Usable4() {
			st.IPv4 = l.IPv4
		}
		d.br.SetLink(i, st, now)
	}
}

// refused keeps the flow bindings the home agent did not accept.
func refused(st map[uint16]uint8) map[uint16]uint8 {
	out := map[uint16]uint8{}
	for fid, s := range st {
		if s != 0 {
			out[fid] = s
		}
	}
	return out
}

func addrOrNone(a netip.Addr) string {
	if !a.IsValid() {
		return "none"
	}
	return a.String()
}

func (d *Daemon) signals() (<-chan os.Signal, func()) {
	if d.opts.Signals != nil {
		return d.opts.Signals, func() {}
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	return sigs, func() { signal.Stop(sigs) }
}

func (d *Daemon) loop(ctx context.Context) error {
	sigs, stop := d.signals()
	defer stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	d.linkChanged(time.Now())
	for {
		now := time.Now()
		for _, s := range d.br.Poll(now) {
			d.send(s)
		}
		d.afterChange()
		d.opsTick(now)
		d.ubusTick(now)
		for _, r := range d.answers.Flush(now) {
			d.log.Warn(r.String())
		}
		next := d.br.NextDeadline()
		if due := d.answers.Due(); !due.IsZero() && (next.IsZero() || due.Before(next)) {
			next = due
		}
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), 0))
		} else {
			timer.Reset(time.Hour)
		}
		select {
		case <-ctx.Done():
			return d.shutdown()
		case s := <-sigs:
			if s == syscall.SIGHUP {
				d.reload()
				continue
			}
			d.log.Info("stopping: de-registering", "signal", s.String())
			return d.shutdown()
		case <-d.mon.Changes():
			d.linkChanged(time.Now())
		case <-d.mon.Done():
			// The monitor gave up resynchronising with the kernel (it
			// retries a few times first): start a new one rather than
			// leave the router blind; if even that fails, exit and let the
			// service manager restart the daemon.
			d.log.Error("interface monitor stopped, restarting it", "err", d.mon.Err())
			d.mon.Close()
			mon, err := d.opts.Monitor(ctx, d.devices())
			if err != nil {
				return fmt.Errorf("interface monitor: %w", err)
			}
			d.mon = mon
			d.linkChanged(time.Now())
		case pkt := <-d.sig:
			d.handle(pkt)
		case a := <-d.probeAnswers:
			d.br.ProbeAnswered(a.uplink, a.seq, a.at, a.unbound)
		case <-timer.C:
		case c := <-d.ctl.Calls():
			d.control(c)
		case ev := <-d.pdEvents():
			d.pdHandle(ev)
		case ch := <-d.ubusChanges():
			d.netifdChanged(ch, time.Now(), true)
		case f := <-d.ops.calls.C:
			f()
		case <-d.ops.timer.C:
		}
	}
}

// handle gives a signalling packet to the binding update list; what it
// does not take is logged, the first few of each reason per interval one
// by one and the rest in the loop's summaries.
func (d *Daemon) handle(pkt []byte) {
	now := time.Now()
	if err := d.br.HandlePacket(pkt, now); err != nil && d.answers.Admit(binding.Reason(err), now) {
		d.log.Warn("binding acknowledgement", "reason", binding.Reason(err), "err", err)
	}
}

// afterChange follows binding changes into the data plane.
func (d *Daemon) afterChange() {
	if g := d.br.Gen(); g != d.gen {
		d.gen = g
		d.followHomeAgent()
		d.fwd.SetBindings(d.br.Bindings(), func(i int) int { return d.uplinks[i].Link.MTU })
		d.followIPv4()
		d.pdBindings()
	}
}

// shutdown de-registers every binding, waiting up to 2 s for the answer.
func (d *Daemon) shutdown() error {
	d.stopping()
	d.stopPD()
	for _, s := range d.br.Shutdown(time.Now()) {
		d.send(s)
	}
	deadline := time.After(2 * time.Second)
	for !d.br.Done() {
		timer := time.NewTimer(max(time.Until(d.br.NextDeadline()), time.Millisecond))
		select {
		case pkt := <-d.sig:
			d.handle(pkt)
		case <-timer.C:
			for _, s := range d.br.Poll(time.Now()) {
				d.send(s)
			}
		case <-deadline:
			timer.Stop()
			d.log.Warn("no answer to the de-registration; the home agent will let the bindings expire")
			return nil
		}
		timer.Stop()
	}
	d.log.Info("de-registered")
	return nil
}

// reload re-reads the configuration and applies every option a running
// router can take; a bad file is reported and the running configuration
// stays.
func (d *Daemon) reload() (status.Reload, error) {
	defer d.reloading()()
	plan, err := setup.Router(d.path)
	if err != nil {
		d.log.Error("reload refused, keeping the running configuration", "err", err)
		return status.Reload{Applied: []string{}, NeedsRestart: []string{}}, err
	}
	now := time.Now()
	rl := plan.Reload(d.cfg)
	rl.ApplyTo(d.cfg)
	for i, u := range d.cfg.Uplinks {
		d.br.SetUplinkTiming(i, u.ProbeInterval, u.ProbeFailures, now)
	}
	d.br.SetLifetime(d.cfg.Lifetime)
	d.br.SetHATimeout(d.cfg.HATimeout)
	d.reloadRevoked(now)
	if rl.Table != nil {
		d.fwd.SetFlows(rl.Table)
		if err := d.fwd.SetDirect(rl.Table); err != nil {
			d.log.Error("local breakout after reload", "err", err)
		}
		d.br.SetFlows(rl.Table.FlowIDs(), now)
	}
	d.log.Info("configuration reloaded", "applied", strings.Join(rl.Reply.Applied, ", "))
	if len(rl.Reply.NeedsRestart) > 0 {
		attrs := []any{"options", strings.Join(rl.Reply.NeedsRestart, ", ")}
		if rl.Held != nil {
			attrs = append(attrs, "why", rl.Held)
		}
		d.log.Warn("changed options wait for a restart", attrs...)
	}
	return rl.Reply, nil
}

func (d *Daemon) status(now time.Time) status.Router {
	s := status.Router{
		Role: status.RoleRouter, HomeAddress: d.cfg.HomeAddress.String(), HomeAgent: addrOrNone(d.curHA.Address),
		MNP: []string{}, Uptime: int64(now.Sub(d.start) / time.Second), Bindings: []status.Binding{},
		Counters: d.br.Counters(d.dropped.Load()),
	}
	for _, p := range d.mnps() {
		s.MNP = append(s.MNP, p.Prefix.String())
	}
	s.PD, s.LANs = d.pdStatus(now)
	for i, b := range d.br.Bindings() {
		bs := status.Binding{BID: b.BID, Uplink: b.Uplink, Device: d.uplinks[i].Cfg.Device, Encap: b.Encap.String(),
			State: b.State.String(), NAT: b.NAT, Traffic: d.fwd.Traffic(i)}
		if b.CoA.IsValid() {
			bs.CoA = b.CoA.String()
		}
		if b.State == binding.StateRegistered {
			bs.Lifetime = int64(b.Expires.Sub(now) / time.Second)
		}
		bs.RTTms, bs.Loss = float64(b.RTT)/float64(time.Millisecond), b.Loss
		s.Bindings = append(s.Bindings, bs)
	}
	s.DataPlane = d.fwd.Status()
	s.Runtime = procstat.Read()
	s.IPv4 = d.statusIPv4()
	s.Revocation = d.revocationStatus()
	s.HomeAgentInUse = d.homeAgentStatus(now)
	return s
}

func (d *Daemon) control(c *control.Call) {
	switch c.Cmd {
	case "status":
		c.Reply(d.status(time.Now()), nil)
	case "reload":
		c.Reply(d.reload())
	case "memstats":
		c.Reply(procstat.ReadMemory(), nil)
	case "flows":
		c.Reply(status.RouterFlows{Role: status.RoleRouter, Flows: d.fwd.Flows(), Refused: refused(d.br.FlowStatus())}, nil)
	default:
		c.Reply(nil, errors.New("unknown command "+c.Cmd))
	}
}
