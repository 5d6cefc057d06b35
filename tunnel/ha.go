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
	"nemod/nemo"
	"nemod/netio"
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
}

// haBinding is one usable binding in a forwarding view.
type haBinding struct {
	bid   uint16
	encap binding.Encap
	outer netip.AddrPort
	stats *Stats
}

// haView is what a mobile router's registration allows: immutable,
// swapped whole.
type haView struct {
	hoa      netip.Addr
	prefixes []netip.Prefix
	bindings []*haBinding // preferred first
}

// bindingFrom returns the binding whose outer address a tunnelled packet
// came from.
func (v *haView) bindingFrom(outer netip.AddrPort, e binding.Encap) *haBinding {
	for _, b := range v.bindings {
		if b.encap != e {
			continue
		}
		if (e == binding.EncapIPv6 && b.outer.Addr() == outer.Addr()) || b.outer == outer {
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
}

// HA is the home agent's data plane.
type HA struct {
	cfg   HAConfig
	log   *slog.Logger
	tun   *TUN
	raw   *net.IPConn
	rawb  *netio.BatchConn
	udpb  *netio.BatchConn
	table atomic.Pointer[prefixTable[*haSlot]]
	slots map[netip.Addr]*haSlot // event loop only
	drops Drops
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
		cfg.MTU = MTU(1500, binding.EncapUDP6)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
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
	if h.routes, err = newRouteSet(h.tun.Name()); err != nil {
		return fail(err)
	}
	if err := h.SetRouters(cfg.Routers); err != nil {
		return fail(err)
	}
	h.wg.Add(3)
	go h.readTUN()
	go h.readRaw()
	go h.readUDP()
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
// registered and its bindings, in order of preference.
func (h *HA) Update(hoa netip.Addr, prefixes []netip.Prefix, bindings []binding.Binding) {
	s := h.slots[hoa]
	if s == nil {
		return
	}
	if len(bindings) == 0 {
		s.view.Store(nil)
		return
	}
	v := &haView{hoa: hoa, prefixes: append([]netip.Prefix(nil), prefixes...)}
	for _, b := range bindings {
		st := s.stats[b.BID]
		if st == nil {
			st = new(Stats)
			s.stats[b.BID] = st
		}
		v.bindings = append(v.bindings, &haBinding{bid: b.BID, encap: b.Encap, outer: b.Outer, stats: st})
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
		for _, p := range pkts {
			h.downlink(p, table, udp, raw)
		}
		udp.flush()
		raw.flush()
	}
}

func (h *HA) downlink(p []byte, table *prefixTable[*haSlot], udp, raw *sender) {
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
	if v == nil || len(v.bindings) == 0 || !v.covers(dst) {
		h.drops.NoBinding.Add(1)
		return
	}
	b := v.bindings[0]
	b.stats.TxPackets.Add(1)
	b.stats.TxBytes.Add(uint64(len(p)))
	if b.encap == binding.EncapIPv6 {
		raw.add(p, b.outer, netip.Addr{})
		return
	}
	src := netip.Addr{}
	if b.encap == binding.EncapUDP6 {
		src = h.cfg.Address
	}
	udp.add(p, b.outer, src)
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
			h.uplink(b.Bufs[i][:b.N[i]], netip.AddrPortFrom(b.Addr[i].Addr(), 0), binding.EncapIPv6, table, w, now)
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
			enc := binding.EncapUDP6
			if from.Addr().Is4() {
				enc = binding.EncapUDP4
			}
			netio.Segments(b.Bufs[i][:b.N[i]], b.Seg[i], func(p []byte) {
				if IsSignalling(p, h.cfg.Address) {
					sig = append(sig, SignalPacket{Pkt: append([]byte(nil), p...), From: from})
					return
				}
				h.uplink(p, from, enc, table, w, now)
			})
		}
		w.flush()
		if len(sig) > 0 && h.cfg.OnSignal != nil {
			h.cfg.OnSignal(sig)
		}
	}
}

// uplink forwards a decapsulated packet if the router it claims to come
// from registered the care-of address it came through (RFC 3963 §6.4).
func (h *HA) uplink(p []byte, outer netip.AddrPort, e binding.Encap, table *prefixTable[*haSlot], w *tunWriter, now int64) {
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
	w.add(p)
}

// IsSignalling reports whether a UDP payload is an IPv6 packet to addr
// carrying a Mobility Header (possibly behind extension headers).
func IsSignalling(p []byte, addr netip.Addr) bool {
	if len(p) < 40 || p[0]>>4 != 6 || addr16(p[24:]) != addr {
		return false
	}
	switch p[6] {
	case nemo.ProtoMH, nemo.ProtoDstOpts, nemo.ProtoRouting, nemo.ProtoHopByHop:
		return true
	}
	return false
}

// HAStatus is the data plane's part of `nemod ctl status`.
type HAStatus struct {
	Backend string    `json:"backend"`
	Kernel  string    `json:"kernel_backend"`
	Device  string    `json:"device"`
	MTU     int       `json:"mtu"`
	Drops   DropsView `json:"drops"`
}

// Status reports the data plane's state; BindingStats a binding's counts.
func (h *HA) Status() HAStatus {
	return HAStatus{Backend: "userspace-tun", Kernel: KernelBackend(), Device: h.tun.Name(), MTU: h.cfg.MTU, Drops: h.drops.View()}
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
	if h.cfg.UDP != nil {
		h.cfg.UDP.Close()
	}
	h.wg.Wait()
	return nil
}
