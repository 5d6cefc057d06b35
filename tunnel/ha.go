package tunnel

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
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
	Address    netip.Addr   // the home agent's IPv6 address
	HomePrefix netip.Prefix // routed to the TUN device: the virtual home link
	TunName    string       // default "nemoha0"
	MTU        int          // default 1500 less the largest encapsulation
	// UDP is the DSMIPv6 socket: the data plane reads it and hands the
	// signalling it finds to OnSignal; it closes it on Close.
	UDP      *net.UDPConn
	OnSignal func([]SignalPacket)
	Routers  []HARouter
	Logger   *slog.Logger
	// LivenessTimeout: a probed binding that nothing came through for
	// this long is not used (default 1 s: a nemod router probes every
	// 450 ms).
	LivenessTimeout time.Duration
}

// haBinding is one usable binding in a forwarding view.
type haBinding struct {
	bid   uint16
	encap nemo.Encap
	outer netip.AddrPort
	stats *Stats
}

// alive reports whether the binding may carry traffic: a probed one only
// if something came through it lately.
func (b *haBinding) alive(now int64, timeout time.Duration) bool {
	return !b.stats.Probed.Load() || now-b.stats.LastRx.Load() < int64(timeout)
}

// haView is what a mobile router's registration allows: immutable,
// swapped whole.
type haView struct {
	hoa      netip.Addr
	prefixes []netip.Prefix
	bindings []*haBinding // by BID
	order    []uint16     // BIDs by BID-PRI, then BID: the fallback for unmatched packets
	flows    *flowState
}

func (v *haView) binding(bid uint16) *haBinding {
	for _, b := range v.bindings {
		if b.bid == bid {
			return b
		}
	}
	return nil
}

// bindingFrom returns the binding whose outer address a tunnelled packet
// came from.
func (v *haView) bindingFrom(outer netip.AddrPort, e nemo.Encap) *haBinding {
	for _, b := range v.bindings {
		if b.encap != e {
			continue
		}
		if (e == nemo.EncapIPv6 && b.outer.Addr() == outer.Addr()) || b.outer == outer {
			return b
		}
	}
	return nil
}

func (v *haView) covers(a netip.Addr) bool {
	return a == v.hoa || covers(a, nil, v.prefixes)
}

// haSlot is a configured mobile router; its view changes as it registers.
type haSlot struct {
	hoa   netip.Addr
	view  atomic.Pointer[haView]
	stats map[uint16]*Stats // owned by the event loop
	// outers are the keys this router's bindings have in HA.byOuter.
	outers []netip.AddrPort
}

// HA is the home agent's data plane.
type HA struct {
	cfg  HAConfig
	log  *slog.Logger
	tun  *TUN
	raw  *net.IPConn
	rawb *netio.BatchConn
	mh   *net.IPConn // Heartbeats (liveness probes) from native care-of addresses
	// byOuter finds a binding by the outer address its probes come from;
	// the event loop writes it, the readers look up.
	byOuter sync.Map // netip.AddrPort -> *haBinding
	udpb    *netio.BatchConn
	table   atomic.Pointer[prefixTable[*haSlot]]
	slots   map[netip.Addr]*haSlot // event loop only
	drops   Drops
	// udpOut is shared by the TUN reader's sends; the socket may also be
	// written by the daemon (signalling), which the kernel allows.
	wg     sync.WaitGroup
	routes *routeSet
	closed atomic.Bool
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
		cfg.LivenessTimeout = time.Second
	}
	h := &HA{cfg: cfg, log: cfg.Logger, slots: map[netip.Addr]*haSlot{}}
	var err error
	fail := func(e error) (*HA, error) { h.Close(); return nil, e }
	if h.udpb, err = netio.NewBatchConn(cfg.UDP, true); err != nil {
		return fail(err)
	}
	if h.tun, err = OpenTUN(cfg.TunName, cfg.MTU); err != nil {
		return fail(err)
	}
	if err := linkUp(h.tun.Name()); err != nil {
		return fail(err)
	}
	// IPv6-in-IPv6 to the home agent's address only.
	if h.raw, err = netio.ListenIP("ip6:41", "", cfg.Address); err != nil {
		return fail(fmt.Errorf("protocol 41 socket: %w", err))
	}
	h.raw.SetReadBuffer(4 << 20)
	if h.rawb, err = netio.NewBatchConn(h.raw, false); err != nil {
		return fail(err)
	}
	// Mobility Header without extension headers: a nemod router's
	// Heartbeats (a kernel without Mobile IPv6 delivers these to a raw
	// socket, unlike Binding Updates with a Home Address option).
	if h.mh, err = netio.ListenIP("ip6:135", "", cfg.Address); err != nil {
		return fail(fmt.Errorf("mobility header socket: %w", err))
	}
	if h.routes, err = newRouteSet(h.tun.Name()); err != nil {
		return fail(err)
	}
	if err := h.SetRouters(cfg.Routers); err != nil {
		return fail(err)
	}
	h.wg.Add(4)
	go h.readTUN()
	go h.readRaw()
	go h.readUDP()
	go h.readMH()
	return h, nil
}

// SetRouters installs the configured mobile routers: routes for their
// prefixes (and the home link) into the TUN device, and the table the
// packets are looked up in. Routers that stay keep their registrations.
func (h *HA) SetRouters(routers []HARouter) error {
	entries := map[netip.Prefix]*haSlot{}
	want := []netip.Prefix{h.cfg.HomePrefix}
	slots := map[netip.Addr]*haSlot{}
	for _, r := range routers {
		s := h.slots[r.HoA]
		if s == nil {
			s = &haSlot{hoa: r.HoA, stats: map[uint16]*Stats{}}
		}
		slots[r.HoA] = s
		entries[netip.PrefixFrom(r.HoA, 128)] = s
		for _, p := range r.Prefixes {
			entries[p] = s
			want = append(want, p)
		}
	}
	h.slots = slots
	h.table.Store(newPrefixTable(entries))
	return h.routes.set(want)
}

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
		s.view.Store(nil)
		return
	}
	now := time.Now().UnixNano()
	v := &haView{hoa: hoa, prefixes: append([]netip.Prefix(nil), prefixes...)}
	if old != nil && (old.flows.table == flows || flows == nil && old.flows.table == emptyTable) {
		v.flows = old.flows // the same table: keep its counters
	} else {
		v.flows = newFlowState(flows)
	}
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
		hb := &haBinding{bid: b.BID, encap: b.Encap, outer: b.Outer, stats: st}
		if old == nil || old.bindingFrom(b.Outer, b.Encap) == nil {
			// A new path: its registration came through it, which counts
			// as hearing from it.
			st.LastRx.Store(now)
		}
		v.bindings = append(v.bindings, hb)
		h.byOuter.Store(b.Outer, hb)
		s.outers = append(s.outers, b.Outer)
	}
	s.view.Store(v)
}

// readTUN carries packets towards the mobile networks: each to the
// preferred binding of the router its destination belongs to.
func (h *HA) readTUN() {
	defer h.wg.Done()
	r := newTunReader(h.tun)
	pkts := make([][]byte, 0, h.tun.BatchSize())
	udp := newSender(h.udpb, true, 64, &h.drops)
	raw := newSender(h.rawb, false, 64, &h.drops)
	for {
		var err error
		pkts, err = r.read(pkts)
		if errors.Is(err, os.ErrClosed) || h.closed.Load() {
			return
		}
		table := h.table.Load()
		now := time.Now().UnixNano()
		for _, p := range pkts {
			h.downlink(p, table, udp, raw, now)
		}
		udp.flush()
		raw.flush()
	}
}

func (h *HA) downlink(p []byte, table *prefixTable[*haSlot], udp, raw *sender, now int64) {
	if len(p) < 40 || p[0]>>4 != 6 {
		h.drops.NotIPv6.Add(1)
		return
	}
	dst := addr16(p[24:])
	s, ok := table.lookup(dst)
	if !ok {
		h.drops.NoRoute.Add(1)
		return
	}
	v := s.view.Load()
	if v == nil || !v.covers(dst) {
		h.drops.NoBinding.Add(1)
		return
	}
	// The router's flow bindings choose the binding(s); without a match,
	// the first usable binding by BID-PRI (RFC 6089 §5.1.1).
	usable := func(bid uint16) bool {
		b := v.binding(bid)
		return b != nil && b.alive(now, h.cfg.LivenessTimeout)
	}
	var tbuf [8]uint16
	pkt, ok := policy.ParsePacket(p)
	var targets []uint16
	if ok {
		var e *policy.Entry
		targets, e, _ = v.flows.table.Targets(&pkt, policy.ToMN, usable, v.order, tbuf[:0])
		if e != nil {
			v.flows.count(e)
		}
	} else {
		for _, bid := range v.order {
			if usable(bid) {
				targets = append(tbuf[:0], bid)
				break
			}
		}
	}
	if len(targets) == 0 {
		h.drops.NoBinding.Add(1)
		return
	}
	for _, bid := range targets {
		b := v.binding(bid)
		b.stats.TxPackets.Add(1)
		b.stats.TxBytes.Add(uint64(len(p)))
		if b.encap == nemo.EncapIPv6 {
			raw.add(p, b.outer, netip.Addr{})
			continue
		}
		src := netip.Addr{}
		if b.encap == nemo.EncapUDP6 {
			src = h.cfg.Address
		}
		udp.add(p, b.outer, src)
	}
}

// readRaw reads IPv6-in-IPv6 from care-of addresses.
func (h *HA) readRaw() {
	defer h.wg.Done()
	b := netio.NewBatch(64, 2048)
	w := newTunWriter(h.tun, 64, &h.drops)
	for {
		n, err := h.rawb.Recv(b)
		if err != nil {
			if netio.IsClosed(err) || h.closed.Load() {
				return
			}
			continue
		}
		table := h.table.Load()
		now := time.Now().UnixNano()
		for i := 0; i < n; i++ {
			h.uplink(b.Bufs[i][:b.N[i]], netip.AddrPortFrom(b.Addr[i].Addr(), 0), nemo.EncapIPv6, table, w, now)
		}
		w.flush()
	}
}

// readUDP reads the DSMIPv6 port: tunnelled packets into the TUN device,
// signalling to the daemon.
func (h *HA) readUDP() {
	defer h.wg.Done()
	b := netio.NewBatch(64, maxPacket)
	w := newTunWriter(h.tun, 128, &h.drops)
	replies := newSender(h.udpb, true, 64, &h.drops)
	for {
		n, err := h.udpb.Recv(b)
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
				case len(p) > 0 && p[0]>>4 == 0:
					h.probe(p, from, now, replies)
				case IsSignalling(p, h.cfg.Address):
					sig = append(sig, SignalPacket{Pkt: append([]byte(nil), p...), From: from})
				default:
					h.uplink(p, from, enc, table, w, now)
				}
			})
		}
		w.flush()
		replies.flush()
		if len(sig) > 0 && h.cfg.OnSignal != nil {
			h.cfg.OnSignal(sig)
		}
	}
}

// probe answers a liveness probe on a UDP path of a registered binding.
func (h *HA) probe(p []byte, from netip.AddrPort, now int64, replies *sender) {
	pr, err := nemo.ParseProbe(p)
	v, ok := h.byOuter.Load(from)
	if err != nil || pr.Reply || !ok {
		h.drops.BadProbe.Add(1)
		return
	}
	b := v.(*haBinding)
	b.stats.LastRx.Store(now)
	b.stats.Probed.Store(true)
	b.stats.Probes.Add(1)
	var out [nemo.ProbeLen]byte
	src := netip.Addr{}
	if from.Addr().Is6() {
		src = h.cfg.Address
	}
	replies.add(nemo.Probe{Reply: true, Seq: pr.Seq}.Append(out[:0]), from, src)
}

// readMH answers the Heartbeats of native paths (RFC 5847): a request
// from a registered care-of address gets a response with its sequence
// number, and counts as hearing from the binding.
func (h *HA) readMH() {
	defer h.wg.Done()
	buf := make([]byte, 2048)
	out := make([]byte, 0, 64)
	for {
		n, from, err := h.mh.ReadFromIP(buf)
		if err != nil {
			if netio.IsClosed(err) || h.closed.Load() {
				return
			}
			continue
		}
		src, ok := netip.AddrFromSlice(from.IP)
		if !ok {
			continue
		}
		src = src.Unmap()
		var hb nemo.Heartbeat
		v, known := h.byOuter.Load(netip.AddrPortFrom(src, 0))
		if nemo.Unmarshal(buf[:n], &hb) != nil || hb.Response || !known ||
			!nemo.VerifyChecksum(buf[:n], src, h.cfg.Address) {
			h.drops.BadProbe.Add(1)
			continue
		}
		b := v.(*haBinding)
		b.stats.LastRx.Store(time.Now().UnixNano())
		b.stats.Probed.Store(true)
		b.stats.Probes.Add(1)
		mh, err := nemo.AppendMessage(out[:0], &nemo.Heartbeat{Response: true, Seq: hb.Seq})
		if err != nil {
			continue
		}
		nemo.SetChecksum(mh, h.cfg.Address, src)
		if _, err := h.mh.WriteToIP(mh, &net.IPAddr{IP: src.AsSlice()}); err != nil {
			h.drops.SendErrors.Add(1)
		}
	}
}

// uplink forwards a decapsulated packet if the router it claims to come
// from registered the care-of address it came through (RFC 3963 §6.4).
func (h *HA) uplink(p []byte, outer netip.AddrPort, e nemo.Encap, table *prefixTable[*haSlot], w *tunWriter, now int64) {
	if len(p) < 40 || p[0]>>4 != 6 {
		h.drops.NotIPv6.Add(1)
		return
	}
	if 40+int(p[4])<<8|int(p[5]) > len(p) {
		h.drops.Malformed.Add(1)
		return
	}
	src := addr16(p[8:])
	s, ok := table.lookup(src)
	if !ok {
		h.drops.BadSource.Add(1)
		return
	}
	v := s.view.Load()
	if v == nil {
		h.drops.BadOuter.Add(1)
		return
	}
	b := v.bindingFrom(outer, e)
	if b == nil {
		h.drops.BadOuter.Add(1)
		return
	}
	if !v.covers(src) {
		h.drops.BadSource.Add(1)
		return
	}
	b.stats.RxPackets.Add(1)
	b.stats.RxBytes.Add(uint64(len(p)))
	b.stats.LastRx.Store(now)
	if v.flows.duplicate(p, policy.FromMN, func(bid uint16) bool { return v.binding(bid) != nil }, now) {
		return // the copy that came by the other path was delivered
	}
	w.add(p)
}

// IsSignalling reports whether a UDP payload is an IPv6 packet to addr
// carrying a Mobility Header (possibly behind extension headers).
func IsSignalling(p []byte, addr netip.Addr) bool {
	if len(p) < 40 || p[0]>>4 != 6 || addr16(p[24:]) != addr {
		return false
	}
	switch p[6] {
	case header.ProtoMH, header.ProtoDstOpts, header.ProtoRouting, header.ProtoHopByHop:
		return true
	}
	return false
}

// Status reports the data plane's state; BindingStats a binding's counts.
func (h *HA) Status() Status {
	return userspaceStatus(h.tun, h.cfg.MTU, &h.drops)
}

// Flows returns a router's flow binding table with its counters.
func (h *HA) Flows(hoa netip.Addr) FlowsView {
	s := h.slots[hoa]
	if s == nil {
		return FlowsView{Flows: []FlowView{}}
	}
	v := s.view.Load()
	if v == nil {
		return newFlowState(nil).view(nil)
	}
	now := time.Now().UnixNano()
	return v.flows.view(func(bid uint16) bool {
		b := v.binding(bid)
		return b != nil && b.alive(now, h.cfg.LivenessTimeout)
	})
}

// BindingStats returns the counts of one binding (zero if none).
func (h *HA) BindingStats(hoa netip.Addr, bid uint16) StatsView {
	if s := h.slots[hoa]; s != nil {
		if st := s.stats[bid]; st != nil {
			return st.View()
		}
	}
	return StatsView{}
}

// Close stops the readers, removes the routes and the TUN device.
func (h *HA) Close() error {
	if h.closed.Swap(true) {
		return nil
	}
	if h.routes != nil {
		h.routes.clear()
	}
	if h.tun != nil {
		h.tun.Close()
	}
	if h.raw != nil {
		h.raw.Close()
	}
	if h.mh != nil {
		h.mh.Close()
	}
	if h.cfg.UDP != nil {
		h.cfg.UDP.Close()
	}
	h.wg.Wait()
	return nil
}
