package tunnel

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"nemod/binding"
	"nemod/header"
	"nemod/nemo"
	"nemod/netio"
	"nemod/policy"
	"nemod/status"
)

// SignalPacket is a Mobility Header packet that arrived on the UDP port,
// for the daemon's event loop.
type SignalPacket struct {
	Pkt  []byte
	From netip.AddrPort
}

// HARouter is a mobile router as the home agent is configured for it.
type HARouter struct {
	HoA      netip.Addr
	Prefixes []netip.Prefix // every prefix it may claim
}

// HAConfig configures the home agent's data plane.
type HAConfig struct {
	Address netip.Addr // the home agent's IPv6 address
	// AddressV4 is the home agent's IPv4 address: UDP over IPv4 leaves
	// from it, and the ICMP errors answering the mobile networks' IPv4
	// come from it (none when invalid).
	AddressV4  netip.Addr
	HomePrefix netip.Prefix // routed to the TUN device: the virtual home link
	TunName    string       // default "nemoha0"
	MTU        int          // default 1500 less the largest encapsulation
	// UDP is the DSMIPv6 socket: the data plane reads it and hands the
	// signalling it finds to OnSignal (on its reader goroutine); it closes
	// it on Close. The daemon may send on it too.
	UDP      netio.Conn
	OnSignal func([]SignalPacket)
	Routers  []HARouter
	Logger   *slog.Logger
	// LivenessTimeout: a probed binding that nothing came through for
	// this long is not used (default 1.5 s: a nemod router's idle probes
	// go every 450 ms natively, every 836 ms in UDP over IPv6).
	LivenessTimeout time.Duration
	// Stack opens the sockets and System the TUN device and its routes:
	// the kernel's, or a test's.
	Stack  netio.Stack
	System AgentSystem
	// Instances, in a cluster, are the home agent addresses its members
	// share, each on standby until SetActive (cluster.go).
	Instances []Instance
	// NoIPv6: the home agent has no IPv6 address of its own (Address is
	// a signalling address only), so it opens no IPv6 sockets and serves
	// care-of addresses in UDP over IPv4 only.
	NoIPv6 bool
}

// routerSlot is a configured mobile router; its view changes as it
// registers.
type routerSlot struct {
	hoa   netip.Addr
	view  atomic.Pointer[routerView]
	stats map[uint16]*Stats // by BID, owned by the event loop
	// outers are the keys this router's bindings have in HA.byOuter;
	// known the outer addresses its bindings have had, latest last
	// (HA.known).
	outers []netip.AddrPort
	known  []netip.Addr
	// inst is the cluster's instance it registered with (cluster.go),
	// nil outside a cluster. The event loop sets it; the Heartbeat
	// readers read it to answer from the instance's address.
	inst atomic.Pointer[instanceState]
	// flows is the last flow state, kept while the router has no
	// binding so that its counters go on when it registers again.
	flows *flowState
}

// HA is the home agent's data plane.
type HA struct {
	cfg  HAConfig
	log  *slog.Logger
	sys  AgentSystem
	tun  Device
	raw  netio.Conn // IPv6-in-IPv6
	raw4 netio.Conn // IPv4-in-IPv6
	mh   netio.Conn // Heartbeats (liveness probes) from native care-of addresses
	udp  netio.Conn
	// byOuter finds a binding by the outer address its probes come from;
	// the event loop writes it, the readers look up.
	byOuter sync.Map // netip.AddrPort -> *agentBinding
	// known finds the router an address one of its bindings had belongs
	// to (a native probe from a path with no binding carries no home
	// address); the event loop writes it.
	known    sync.Map // netip.Addr -> *routerSlot
	table    atomic.Pointer[agentTable]
	slots    map[netip.Addr]*routerSlot // event loop only
	liveness atomic.Int64               // LivenessTimeout in nanoseconds
	drops    Drops
	wg       sync.WaitGroup
	closed   atomic.Bool
	fleet    fleet         // fleet.go, hairpin.go
	cl       *clusterState // cluster.go; nil outside a cluster
}

// NewHA opens the TUN device, routes the home link and the mobile network
// prefixes into it, and starts reading the TUN device, the UDP port and the
// protocol-41 socket.
func NewHA(cfg HAConfig) (*HA, error) {
	if cfg.TunName == "" {
		cfg.TunName = "nemoha0"
	}
	if cfg.MTU == 0 {
		cfg.MTU = MTU(1500, nemo.EncapUDP6)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.LivenessTimeout == 0 {
		cfg.LivenessTimeout = 1500 * time.Millisecond
	}
	if cfg.Stack == nil || cfg.System == nil || cfg.UDP == nil {
		return nil, errors.New("data plane: no network stack, system or UDP socket")
	}
	h := &HA{cfg: cfg, log: cfg.Logger, sys: cfg.System, udp: cfg.UDP, slots: map[netip.Addr]*routerSlot{}}
	h.liveness.Store(int64(cfg.LivenessTimeout))
	h.cl = newClusterState(cfg.Instances)
	h.fleetInit()
	h.table.Store(newPrefixTable[*routerSlot](nil))
	var err error
	fail := func(e error) (*HA, error) { h.Close(); return nil, e }
	if h.tun, err = h.sys.OpenTUN(cfg.TunName, cfg.MTU); err != nil {
		return fail(err)
	}
	if !cfg.NoIPv6 {
		// IPv6-in-IPv6 and IPv4-in-IPv6 to the home agent's address only.
		if h.raw, err = cfg.Stack.ListenIP(header.ProtoIPv6, "", h.bindAddr()); err != nil {
			return fail(fmt.Errorf("protocol 41 socket: %w", err))
		}
		if h.raw4, err = cfg.Stack.ListenIP(header.ProtoIPv4, "", h.bindAddr()); err != nil {
			return fail(fmt.Errorf("protocol 4 socket: %w", err))
		}
		// Mobility Header without extension headers: a nemod router's
		// Heartbeats (a kernel without Mobile IPv6 delivers these to a raw
		// socket, unlike Binding Updates with a Home Address option).
		if h.mh, err = cfg.Stack.ListenIP(header.ProtoMH, "", h.bindAddr()); err != nil {
			return fail(fmt.Errorf("mobility header socket: %w", err))
		}
	}
	if err := h.SetRouters(cfg.Routers); err != nil {
		return fail(err)
	}
	h.wg.Add(2)
	go h.readTUN()
	go h.readUDP()
	if !cfg.NoIPv6 {
		h.wg.Add(3)
		go h.readRaw(h.raw)
		go h.readRaw(h.raw4)
		go h.readMH()
	}
	return h, nil
}

// SetRouters installs the configured mobile routers and the table the
// packets are looked up in; the home link is routed into the TUN device,
// and each router's home address and prefixes while it is registered
// (Update). Routers that stay keep their registrations.
func (h *HA) SetRouters(routers []HARouter) error { return h.setRouters(routers) }

// SetLivenessTimeout changes how long a probed binding may stay silent
// before it is not used.
func (h *HA) SetLivenessTimeout(d time.Duration) { h.liveness.Store(int64(d)) }

// Update installs a mobile router's registration: the prefixes it has
// registered, its bindings and its flow binding list (nil: none).
func (h *HA) Update(hoa netip.Addr, prefixes []netip.Prefix, bindings []binding.Binding, flows *policy.Table) {
	s := h.slots[hoa]
	if s == nil {
		return
	}
	old := s.view.Load()
	for _, o := range s.outers {
		h.byOuter.Delete(o)
	}
	s.outers = s.outers[:0]
	if len(bindings) == 0 {
		if old != nil {
			s.flows = old.flows
		}
		s.view.Store(nil)
		h.announce(hoa, old, nil)
		return
	}
	now := time.Now().UnixNano()
	v := &routerView{hoa: hoa, prefixes: append([]netip.Prefix(nil), prefixes...), announced: h.active(s)}
	if old != nil {
		s.flows = old.flows
	}
	if s.flows != nil && (s.flows.table == flows || flows == nil && s.flows.table == emptyTable) {
		v.flows = s.flows // the same table: keep its counters
	} else {
		v.flows = s.flows.carry(flows)
	}
	s.flows = v.flows
	bids := make([]nemo.BID, 0, len(bindings))
	for _, b := range bindings {
		bids = append(bids, nemo.BID{ID: b.BID, Pri: b.Pri})
	}
	v.order = policy.BindingOrder(bids, nil)
	for _, b := range bindings {
		st := s.stats[b.BID]
		if st == nil {
			st = new(Stats)
			s.stats[b.BID] = st
		}
		ab := &agentBinding{bid: b.BID, encap: b.Encap, outer: b.Outer, hoa: hoa, answers: b.Caps&nemo.CapHeartbeat != 0, stats: st}
		ab.fill(h.instanceOf(s))
		h.remember(s, b.Outer.Addr())
		if old == nil || old.bindingFrom(b.Outer, b.Encap) == nil {
			// A new path: its registration came through it, which counts
			// as hearing from it.
			st.heard(now)
		}
		if b.Encap == nemo.EncapUDP6 && old != nil && old.bindingFrom(netip.AddrPortFrom(b.Outer.Addr(), 0), nemo.EncapIPv6) != nil {
			ab.nativeUntil = now + int64(switchGrace)
		}
		v.bindings = append(v.bindings, ab)
		h.byOuter.Store(b.Outer, ab)
		s.outers = append(s.outers, b.Outer)
	}
	s.view.Store(v)
	h.announce(hoa, old, v)
}

// readTUN carries packets towards the mobile networks: each by the
// binding(s) of the router its destination belongs to.
func (h *HA) readTUN() {
	defer h.wg.Done()
	r := newTunReader(h.tun)
	pkts := make([][]byte, 0, h.tun.BatchSize())
	w := newTunWriter(h.tun, 8, &h.drops) // Packet Too Big answers
	o := h.newTunnelOut(w)
	o.probes = h.newProber(o.udp)
	for {
		var err error
		pkts, err = r.read(pkts)
		if errors.Is(err, os.ErrClosed) || h.closed.Load() {
			return
		}
		table := h.table.Load()
		now, liveness := time.Now().UnixNano(), h.liveness.Load()
		for _, p := range pkts {
			var d Drop
			var mtu int
			o.targets, d, mtu = towardsRouter(p, table, h.cfg.MTU, liveness, now, o.targets[:0])
			if d != Forward {
				h.drops.AddPacket(d, p)
				if d == DropTooBig {
					if e := tooBig(o.ptb[:0], p, mtu, h.cfg.Address, h.cfg.AddressV4); e != nil {
						w.add(e)
					}
				}
				continue
			}
			h.send(o, p, now)
		}
		o.flush()
		w.flush()
	}
}

// readRaw reads IPv6-in-IPv6 (or, from raw4, IPv4-in-IPv6) from care-of
// addresses.
func (h *HA) readRaw(c netio.Conn) {
	defer h.wg.Done()
	b := netio.NewBatch(64, 2048)
	w := newTunWriter(h.tun, 64, &h.drops)
	hp := h.newTunnelOut(w)
	for {
		n, err := c.Recv(b)
		if err != nil {
			if netio.IsClosed(err) || h.closed.Load() {
				return
			}
			continue
		}
		table := h.table.Load()
		now := time.Now().UnixNano()
		for i := 0; i < n; i++ {
			h.uplink(b.Bufs[i][:b.N[i]], netip.AddrPortFrom(b.Addr[i].Addr(), 0), nemo.EncapIPv6, table, w, hp, now)
		}
		hp.flush()
		w.flush()
	}
}

// readUDP reads the DSMIPv6 port: tunnelled packets into the TUN device,
// probes answered, signalling to the daemon.
func (h *HA) readUDP() {
	defer h.wg.Done()
	b := netio.NewBatch(64, maxPacket)
	w := newTunWriter(h.tun, 128, &h.drops)
	replies := newSender(h.udp, true, 64, &h.drops)
	hs := newHeartbeats()
	hp := h.newTunnelOut(w)
	for {
		n, err := h.udp.Recv(b)
		if err != nil {
			if netio.IsClosed(err) || h.closed.Load() {
				return
			}
			continue
		}
		table := h.table.Load()
		now := time.Now().UnixNano()
		var sig []SignalPacket
		for i := 0; i < n; i++ {
			from := b.Addr[i]
			enc := nemo.EncapUDP6
			if from.Addr().Is4() {
				enc = nemo.EncapUDP4
			}
			netio.Segments(b.Bufs[i][:b.N[i]], b.Seg[i], func(p []byte) {
				switch {
				case isProbe(p):
					h.probe(p, from, now, replies)
				case h.isHeartbeatHere(p):
					h.udpHeartbeat(p, from, now, replies, hs)
				case h.isSignallingHere(p):
					sig = append(sig, SignalPacket{Pkt: append([]byte(nil), p...), From: from})
				default:
					h.uplink(p, from, enc, table, w, hp, now)
				}
			})
		}
		hp.flush()
		w.flush()
		replies.flush()
		if len(sig) > 0 && h.cfg.OnSignal != nil {
			h.cfg.OnSignal(sig)
		}
	}
}

// probe answers the 8-octet probe of routers from before Heartbeats in UDP
// (nemo.Probe), so that a home agent can be upgraded before its routers.
func (h *HA) probe(p []byte, from netip.AddrPort, now int64, replies *sender) {
	pr, err := nemo.ParseProbe(p)
	v, ok := h.byOuter.Load(from)
	if err != nil || pr.Reply || !ok {
		h.drops.Add(DropBadProbe)
		return
	}
	b := v.(*agentBinding)
	if b.onStandby() {
		h.drops.Add(DropStandby)
		return
	}
	b.stats.heard(now)
	b.stats.Probed.Store(true)
	b.stats.Probes.Add(1)
	var out [nemo.ProbeLen]byte
	src := h.srcFor(b, from.Addr().Is6())
	replies.add(nemo.Probe{Reply: true, Seq: pr.Seq}.Append(out[:0]), from, src)
}

// readMH answers the Heartbeats of native paths (RFC 5847): a request
// from a registered care-of address gets a response with its sequence
// number and counts as hearing from the binding; one from an address a
// binding had gets the unbound mark, within the rate limit; a response
// answers the home agent's own probe (see mhHeartbeat).
func (h *HA) readMH() {
	defer h.wg.Done()
	b := netio.NewBatch(16, 2048)
	out := netio.NewBatch(16, 64)
	hs := newHeartbeats()
	for {
		n, err := h.mh.Recv(b)
		if err != nil {
			if netio.IsClosed(err) || h.closed.Load() {
				return
			}
			continue
		}
		now := time.Now().UnixNano()
		k := 0
		for i := 0; i < n; i++ {
			src := b.Addr[i].Addr()
			answer, local, ok := h.mhHeartbeat(b.Bufs[i][:b.N[i]], src, now, hs)
			if !ok {
				continue
			}
			resp, err := nemo.AppendMessage(out.Bufs[k][:0], &answer)
			if err != nil {
				continue
			}
			nemo.SetChecksum(resp, local, src)
			out.N[k], out.Addr[k], out.Src[k], out.Seg[k] = len(resp), netip.AddrPortFrom(src, 0), h.sendFrom(local), 0
			k++
		}
		if k > 0 {
			if _, err := h.mh.Send(out, k); err != nil {
				h.drops.Add(DropSendError)
			}
		}
	}
}

// uplink forwards a decapsulated packet if fromRouter lets it: into
// another mobile router's tunnel (hairpin) or the TUN device.
func (h *HA) uplink(p []byte, outer netip.AddrPort, e nemo.Encap, table *agentTable, w *tunWriter, hp *tunnelOut, now int64) {
	b, d, dup := fromRouter(p, outer, e, table, now)
	if d == Forward && b.onStandby() {
		d = DropStandby
	}
	if d != Forward {
		h.drops.AddPacket(d, p)
		return
	}
	b.stats.receivedPacket(p, now)
	if !dup && !h.hairpin(p, table, now, hp) {
		w.add(p)
	}
}

// Status reports the data plane's state.
func (h *HA) Status() status.DataPlane { return dataPlaneStatus(h.tun, h.cfg.MTU, &h.drops) }

// Drops returns the drop counters.
func (h *HA) Drops() *Drops { return &h.drops }

// Flows returns a router's flow binding table with its counters.
func (h *HA) Flows(hoa netip.Addr) status.Flows {
	s := h.slots[hoa]
	if s == nil {
		return status.Flows{Flows: []status.Flow{}}
	}
	v := s.view.Load()
	if v == nil {
		return newFlowState(nil).view(nil)
	}
	now, liveness := time.Now().UnixNano(), h.liveness.Load()
	return v.flows.view(func(bid uint16) bool {
		b := v.binding(bid)
		return b != nil && b.alive(now, liveness)
	})
}

// Traffic returns the counts of one binding (zero if none).
func (h *HA) Traffic(hoa netip.Addr, bid uint16) status.Traffic {
	if s := h.slots[hoa]; s != nil {
		return s.stats[bid].Traffic()
	}
	return status.Traffic{}
}

// Close stops the readers, removes the routes and the TUN device.
func (h *HA) Close() error {
	if h.closed.Swap(true) {
		return nil
	}
	h.sys.Close()
	for _, c := range []netio.Conn{h.raw, h.raw4, h.mh, h.udp} {
		if c != nil {
			c.Close()
		}
	}
	if h.tun != nil {
		h.tun.Close()
	}
	h.wg.Wait()
	return nil
}

// switchGrace is how long a binding that moved from IPv6-in-IPv6 to UDP
// over IPv6 still takes native packets from its care-of address: the ones
// the router sent between its two acknowledgements, in flight or queued.
const switchGrace = 2 * time.Second
