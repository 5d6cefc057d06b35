// Package homeagent is the home agent daemon: an event loop around the
// binding cache (package binding), fed by the signalling sockets of package
// netio, steering the data plane (package tunnel) and answering the
// control socket. Its sockets, TUN device and routes come through Options,
// so that the whole daemon runs in a test without root.
package homeagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"nemod/aaa"
	"nemod/binding"
	"nemod/config"
	"nemod/control"
	"nemod/header"
	"nemod/hostnet"
	"nemod/internal/logsum"
	"nemod/internal/procstat"
	"nemod/nemo"
	"nemod/netio"
	"nemod/setup"
	"nemod/status"
	"nemod/tunnel"
)

// signal is a Mobility Header packet for the event loop.
type sigPacket struct {
	pkt []byte
	arr binding.Arrival
}

// Daemon is a running home agent.
type Daemon struct {
	path  string
	cfg   *config.HomeAgent
	log   *slog.Logger
	cache *binding.Cache
	opts  Options
	ctl   *control.Server
	// sigIn reads the Binding Updates that arrive natively: off the links
	// (a packet socket), or from the kernel's Mobile IPv6 where it has it.
	sigIn netio.Listener
	udp   netio.Conn
	raw   netio.Sender
	fwd   tunnel.AgentPlane
	sig   chan []sigPacket
	// replies collects the UDP answers of one batch of signalling, sent
	// together.
	replies *netio.Batch
	// pool assigns dynamic IPv4 (nil without pool_v4; ipv4.go).
	pool *binding.Pool4
	// dropped counts signalling packets the readers could not queue; the
	// readers are goroutines of their own. sent counts the answers sent.
	dropped atomic.Uint64
	sent    uint64
	start   time.Time
	// refusals keeps a flood of refused Binding Updates to a few lines and
	// a summary per interval.
	refusals *logsum.Summarizer
	ops      *ops  // publish.go
	pd       *haPD // the delegating router or relay (pd.go); nil: none
	// rev: revocations (revoke.go); rad: RADIUS (radius.go), nil without.
	rev revocations
	rad *radiusGlue
	// cl: the cluster (cluster.go), nil without; sw: Home Agent Switch
	// (switch.go).
	cl *haCluster
	sw switches
}

// Options adjust a daemon. The zero value runs on the host's kernel.
type Options struct {
	Logger *slog.Logger
	// Stack opens the sockets (netio.System when nil).
	Stack netio.Stack
	// System is the data plane's host side: TUN device and routes
	// (hostnet's when nil).
	System tunnel.AgentSystem
	// KernelMIP6 reports whether the kernel has Mobile IPv6, whose
	// Mobility Header socket then delivers Binding Updates
	// (netio.KernelMIP6 when nil).
	KernelMIP6 func() bool
	// Signals replaces the process's SIGTERM, SIGINT and SIGHUP when set.
	Signals <-chan os.Signal
	// Offer is what the home agent agrees to of what nemod routers offer
	// in nemod's Vendor Specific option (nemo.Caps): when nil, Heartbeat
	// answers and, where the kernel segments UDP, UDP over IPv6 with
	// offload. A test gives it nothing to stand for a home agent of
	// another make, which ignores the option.
	Offer func() nemo.Caps
	// ListenHTTP opens option metrics_listen's listener (net.Listen's
	// TCP when nil).
	ListenHTTP func(netip.AddrPort) (net.Listener, error)
	// DHCPv6 opens the socket of prefix delegation (pd.go; the kernel's
	// UDP when nil).
	DHCPv6 DHCPv6Listener
	// Cluster opens a cluster's store (cluster.go; etcd when nil).
	Cluster StoreOpener
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if o.Stack == nil {
		o.Stack = netio.System{}
	}
	if o.System == nil {
		o.System = &hostnet.Agent{}
	}
	if o.KernelMIP6 == nil {
		o.KernelMIP6 = netio.KernelMIP6
	}
	if o.Offer == nil {
		o.Offer = func() nemo.Caps {
			c := nemo.CapHeartbeat
			if netio.UDPSegmentation() {
				c |= nemo.CapUDP6Offload
			}
			return c
		}
	}
}

// Run loads the configuration at path and runs the home agent until ctx is
// done or SIGTERM/SIGINT arrives. SIGHUP reloads the configuration.
func Run(ctx context.Context, path string, opts Options) error {
	// What check-config runs too.
	plan, err := setup.HomeAgent(path)
	if err != nil {
		return err
	}
	f := plan.File
	opts.defaults()
	log := opts.Logger
	for _, w := range f.Warnings {
		log.Warn(w)
	}
	d := &Daemon{path: path, opts: opts, cfg: f.HomeAgent, log: log, sig: make(chan []sigPacket, 4096), start: time.Now(),
		refusals: logsum.New("refused binding updates", 5, 10*time.Second)}
	plan.Cache.Authorize = f.Radius != nil
	plan.Cache.Offer = opts.Offer()
	d.openPool(&plan.Cache)
	d.cache = binding.NewCache(plan.Cache)
	d.revocationsInit()
	d.switchesInit()
	if a, ok := opts.System.(*hostnet.Agent); ok {
		a.Table = d.cfg.RouteTable
	}
	if err := d.openRadius(f); err != nil {
		return err
	}
	if err := d.open(); err != nil {
		d.close()
		return err
	}
	defer d.close()
	plane, err := tunnel.NewHA(tunnel.HAConfig{
		Address: d.cfg.Address, AddressV4: d.cfg.AddressV4, HomePrefix: d.cfg.HomePrefix, UDP: d.udp,
		OnSignal: d.udpSignal, Routers: d.haRouters(d.cfg, nil), Logger: log, LivenessTimeout: d.cfg.LivenessTimeout,
		Stack: opts.Stack, System: opts.System, Instances: clusterInstances(d.cfg), NoIPv6: d.cfg.IPv4Only,
	})
	if err != nil {
		return err
	}
	d.fwd = plane
	if err := d.startIPv4(); err != nil {
		return err
	}
	if err := d.startPD(); err != nil {
		return err
	}
	if err := d.startCluster(ctx); err != nil {
		return err
	}
	go d.readNative()
	if err := d.startOps(); err != nil {
		return err
	}
	sigPath := "packet socket (no Mobile IPv6 in this kernel)"
	if _, ok := d.sigIn.(*netio.MHListener); ok {
		sigPath = "the kernel's Mobile IPv6"
	}
	log.Info("home agent running", "signalling", sigPath, "address", d.cfg.Address, "address_v4", d.cfg.AddressV4,
		"home_prefix", d.cfg.HomePrefix, "mobile_routers", len(d.cfg.MobileRouters), "control", d.cfg.ControlSocket)
	return d.loop(ctx)
}

func (d *Daemon) open() error {
	var err error
	if d.ctl, err = control.Listen(d.cfg.ControlSocket); err != nil {
		return err
	}
	// Binding Updates with a Home Address option: a kernel without
	// CONFIG_IPV6_MIP6 drops them before any IP socket, so read them off
	// the links; a kernel with it hands them to a Mobility Header socket.
	if d.opts.KernelMIP6() {
		if d.sigIn, err = netio.ListenMH(); err != nil {
			return err
		}
	} else if d.sigIn, err = d.opts.Stack.ListenExtHeaders(0); err != nil {
		return err
	}
	if d.raw, err = d.opts.Stack.NewSender(""); err != nil {
		return err
	}
	// One dual-stack socket: IPv4 uplinks through NAT and the IPv6
	// firewall fallback (RFC 5555).
	if d.udp, err = d.opts.Stack.ListenUDP("udp", "", netip.AddrPortFrom(netip.Addr{}, nemo.UDPPort)); err != nil {
		return fmt.Errorf("UDP port %d: %w", nemo.UDPPort, err)
	}
	d.replies = netio.NewBatch(sigBatch, 512)
	return nil
}

func (d *Daemon) close() {
	d.closeCluster()
	d.stopOps()
	d.closePD()
	d.closeRevocations()
	d.closeRadius()
	if d.fwd != nil {
		d.fwd.Close() // closes the UDP socket too
		d.udp = nil
	}
	if d.ctl != nil {
		d.ctl.Close()
	}
	if d.sigIn != nil {
		d.sigIn.Close()
	}
	if d.raw != nil {
		d.raw.Close()
	}
	if d.udp != nil {
		d.udp.Close()
	}
}

// sigBatch is how many signalling packets a reader hands over at once, and
// how many answers go out in one system call.
const sigBatch = 64

func (d *Daemon) queue(ps []sigPacket) {
	if len(ps) == 0 {
		return
	}
	select {
	case d.sig <- ps:
	default:
		// The event loop is behind: drop rather than block the reader.
		d.dropped.Add(uint64(len(ps)))
	}
}

// readNative reads the Binding Updates with a Home Address option that
// arrive natively for the home agent.
func (d *Daemon) readNative() {
	buf := make([]byte, 65536)
	for {
		n, _, err := d.sigIn.Read(buf)
		if err != nil {
			if netio.IsClosed(err) {
				return
			}
			continue
		}
		// A router sees forwarded packets with extension headers too: keep
		// only those for us.
		ip, err := header.ParseIPv6(buf[:n])
		if err != nil || !d.localAddr(ip.Dst()) {
			continue
		}
		d.queue([]sigPacket{{pkt: append([]byte(nil), ip...), arr: binding.Arrival{Encap: nemo.EncapIPv6, Outer: netip.AddrPortFrom(ip.Src(), 0)}}})
	}
}

// send sends an answer natively at once, or queues it in the batch of UDP
// answers that flush sends.
func (d *Daemon) send(res binding.Result, queued *int) {
	if res.Reply == nil {
		return
	}
	if res.Encap == nemo.EncapIPv6 {
		d.sent++
		if err := d.raw.Send(res.Reply); err != nil {
			d.log.Warn("sending answer", "to", res.ReplyTo, "err", err)
		}
		return
	}
	i := *queued
	if i == sigBatch || len(res.Reply) > cap(d.replies.Bufs[i]) {
		d.flush(queued)
		i = 0
		if len(res.Reply) > cap(d.replies.Bufs[0]) {
			d.log.Warn("answer too long to send", "to", res.ReplyTo, "octets", len(res.Reply))
			return
		}
	}
	d.replies.N[i] = copy(d.replies.Bufs[i][:cap(d.replies.Bufs[i])], res.Reply)
	d.replies.Addr[i], d.replies.Seg[i], d.replies.Src[i] = res.ReplyTo, 0, d.replySource(res)
	*queued = i + 1
}

// flush sends the queued UDP answers in one system call.
func (d *Daemon) flush(queued *int) {
	if *queued == 0 {
		return
	}
	d.sent += uint64(*queued)
	if _, err := d.udp.Send(d.replies, *queued); err != nil {
		d.log.Warn("sending answers", "err", err)
	}
	*queued = 0
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
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	defer d.stopping()
	for {
		d.opsTick(time.Now())
		d.clusterFlush()
		select {
		case <-ctx.Done():
			return nil
		case s := <-sigs:
			if s == syscall.SIGHUP {
				d.reload()
				continue
			}
			d.log.Info("stopping", "signal", s.String())
			return nil
		case ps := <-d.sig:
			now, queued := time.Now(), 0
			for _, p := range ps {
				d.handle(p, now, &queued)
			}
			d.commit()
			d.flush(&queued)
		case now := <-tick.C:
			for _, r := range d.refusals.Flush(now) {
				d.log.Warn(r.String())
			}
			for _, e := range d.cache.Expire(now) {
				d.log.Info("binding expired", "router", e.Peer.Name, "bindings_left", len(e.Bindings))
				d.forwardCause(e, aaa.TerminateLostService)
			}
			d.savePool()
			d.pdTick(now)
			d.radiusTick(now)
			d.commit()
		case r := <-d.radiusResults():
			d.radiusBatch(r)
		case r := <-d.revocationRequests():
			d.disconnect(r, time.Now())
			d.commit()
		case <-d.rev.timer.C:
			d.pollRevocations(time.Now())
		case c := <-d.ctl.Calls():
			d.control(c)
		case dg := <-d.pdIn():
			d.pdHandle(dg)
		case f := <-d.ops.calls.C:
			f()
		case <-d.ops.timer.C:
		case u := <-d.clusterUpdates():
			d.clusterUpdate(u)
		case <-d.sw.timer.C:
			d.pollSwitches(time.Now())
		}
	}
}

func (d *Daemon) handle(p sigPacket, now time.Time, queued *int) {
	d.handleResult(d.cache.HandlePacket(p.pkt, p.arr, now), p, queued, now)
}

// handleResult sends the answer to a signalling packet and follows what
// it changed.
func (d *Daemon) handleResult(res binding.Result, p sigPacket, queued *int, now time.Time) {
	d.sendOrHold(res, queued)
	if res.Err != nil {
		d.log.Debug("signalling refused", "from", p.arr.Outer, "status", res.Status, "err", res.Err)
		if res.Status >= 128 && d.refusals.Admit(res.Reason, now) {
			d.log.Warn("binding update refused", "from", p.arr.Outer, "status", res.Status, "reason", res.Err)
		}
	}
	if res.Changed != nil {
		e := res.Changed
		attrs := []any{"router", e.Peer.Name, "home_address", e.Peer.HoA, "bindings", len(e.Bindings)}
		for _, b := range e.Bindings {
			attrs = append(attrs, fmt.Sprintf("bid%d", b.BID), fmt.Sprintf("%s %s via %s", b.CoA, b.Encap, b.Outer))
		}
		d.log.Info("bindings changed", attrs...)
		d.forward(e)
	}
	if res.Authorize != nil {
		d.authorize(p, res.Authorize, now, queued)
	}
	if res.Revoked != nil {
		d.revocationDone(res.Revoked)
		d.armRevocations()
	}
}

func (d *Daemon) forward(e *binding.Entry) {
	d.clusterForward(e)
	d.fwd.Update(e.Peer.HoA, forwarded(e), e.Bindings, e.Flows)
	d.accounting(e)
}

// udpSignal takes the Mobility Header packets the data plane found on the
// UDP port (it reads the socket; it runs on its reader goroutine).
func (d *Daemon) udpSignal(ps []tunnel.SignalPacket) {
	sig := make([]sigPacket, len(ps))
	for i, p := range ps {
		enc := nemo.EncapUDP6
		if p.From.Addr().Is4() {
			enc = nemo.EncapUDP4
		}
		sig[i] = sigPacket{pkt: p.Pkt, arr: binding.Arrival{Encap: enc, Outer: p.From}}
	}
	d.queue(sig)
}

// haRouters are the data plane's routers: their configured prefixes,
// those delegated to them (pd.go) and their IPv4 claims and assignments
// (ipv4.go).
func (d *Daemon) haRouters(ha *config.HomeAgent, delegated map[netip.Addr][]netip.Prefix) []tunnel.HARouter {
	out := make([]tunnel.HARouter, 0, len(ha.MobileRouters))
	for _, m := range ha.MobileRouters {
		ps := m.MNPs
		dp, v4 := delegated[m.HomeAddress], d.prefixesV4(m.HomeAddress, m.HomeAddressV4, m.MNPsV4)
		if len(dp)+len(v4) > 0 {
			ps = slices.Concat(m.MNPs, dp, v4)
		}
		out = append(out, tunnel.HARouter{HoA: m.HomeAddress, Prefixes: ps})
	}
	return out
}

// reload re-reads the configuration and applies every option a running
// home agent can take; a bad file is reported and the running
// configuration stays.
func (d *Daemon) reload() (status.Reload, error) {
	defer d.reloading()()
	plan, err := setup.HomeAgent(d.path)
	if err != nil {
		d.log.Error("reload refused, keeping the running configuration", "err", err)
		return status.Reload{Applied: []string{}, NeedsRestart: []string{}}, err
	}
	rl := plan.Reload(d.cfg)
	d.radiusReload(plan.File.Radius, &rl.Reply)
	d.fwd.SetLivenessTimeout(rl.HomeAgent.LivenessTimeout)
	d.cache.SetLimits(rl.Cache.MaxLifetime, rl.Cache.ReplayWindow)
	changed := d.cache.SetPeers(rl.Cache.Peers)
	d.reloadIPv4(rl.HomeAgent)
	if err := d.fwd.SetRouters(d.haRouters(rl.HomeAgent, d.delegated())); err != nil {
		d.log.Warn("routes after reload", "err", err)
	}
	rl.ApplyTo(d.cfg)
	d.pdReload()
	for _, e := range changed {
		d.forward(e)
	}
	d.log.Info("configuration reloaded", "mobile_routers", len(d.cfg.MobileRouters), "applied", strings.Join(rl.Reply.Applied, ", "))
	if len(rl.Reply.NeedsRestart) > 0 {
		attrs := []any{"options", strings.Join(rl.Reply.NeedsRestart, ", ")}
		if rl.Held != nil {
			attrs = append(attrs, "why", rl.Held)
		}
		d.log.Warn("changed options wait for a restart", attrs...)
	}
	return rl.Reply, nil
}

func (d *Daemon) status(now time.Time) status.HomeAgent {
	s := status.HomeAgent{
		Role: status.RoleHomeAgent, Address: d.cfg.Address.String(), HomePrefix: d.cfg.HomePrefix.String(),
		Uptime: int64(now.Sub(d.start) / time.Second), MobileRouters: []status.MobileRouter{},
		Counters: d.cache.Counters.Status(d.sent, d.dropped.Load()),
	}
	if d.cfg.AddressV4.IsValid() {
		s.AddressV4 = d.cfg.AddressV4.String()
	}
	var leases func(netip.Addr) []status.Lease
	s.PD, leases = d.pdStatus(now)
	entries := d.cache.Entries()
	for _, e := range entries {
		rs := status.MobileRouter{Name: e.Peer.Name, HomeAddress: e.Peer.HoA.String(), MNP: []string{}, Bindings: []status.Binding{}}
		for _, p := range e.MNPs {
			rs.MNP = append(rs.MNP, p.String())
		}
		rs.Leases = leases(e.Peer.HoA)
		for _, b := range e.Bindings {
			rs.Bindings = append(rs.Bindings, status.Binding{
				BID: b.BID, CoA: b.CoA.String(), Encap: b.Encap.String(), State: status.StateRegistered, Outer: b.Outer.String(), NAT: b.NAT,
				Lifetime: int64(b.Expires.Sub(now) / time.Second), Since: b.Since.UTC().Format(time.RFC3339Nano),
				Traffic: d.fwd.Traffic(e.Peer.HoA, b.BID),
			})
		}
		s.MobileRouters = append(s.MobileRouters, rs)
	}
	d.statusIPv4(&s, entries)
	s.DataPlane = d.fwd.Status()
	s.Runtime = procstat.Read()
	s.Revocations, s.Radius, s.Hairpin = d.revocationStatus(), d.radiusStatus(), d.fwd.Hairpin()
	s.Cluster, s.Switches = d.clusterStatus(now), d.switchStatus()
	return s
}

func (d *Daemon) flows() status.HomeAgentFlows {
	s := status.HomeAgentFlows{Role: status.RoleHomeAgent, MobileRouters: []status.MobileRouterFlow{}}
	for _, e := range d.cache.Entries() {
		s.MobileRouters = append(s.MobileRouters, status.MobileRouterFlow{Name: e.Peer.Name, HomeAddress: e.Peer.HoA.String(), Flows: d.fwd.Flows(e.Peer.HoA)})
	}
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
		c.Reply(d.flows(), nil)
	case "revoke":
		d.revokeCall(c)
	case "switch":
		d.switchCall(c)
	case "drain":
		d.drainCall(c)
	default:
		c.Reply(nil, errors.New("unknown command "+c.Cmd))
	}
}
