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

// MRConfig configures the mobile router's data plane.
type MRConfig struct {
	HoA  netip.Addr
	MNPs []netip.Prefix
	HA   netip.Addr // the home agent's IPv6 address
	HAv4 netip.Addr // and IPv4 address (invalid if none)
	// HomeAgents are the other home agents' addresses the router may move
	// to (mrha.go).
	HomeAgents []netip.Addr
	Devices    []string // uplink devices, by uplink index
	LANs       []string // the mobile network's interfaces
	TunName    string   // default "nemo0"
	// Table and RulePriority place the policy routing that sends the
	// mobile network's traffic into the TUN device (defaults 4191, 4191).
	Table, RulePriority int
	// OnSignal receives the Mobility Header packets the home agent sends
	// over an uplink's UDP socket; it runs on a reader goroutine.
	OnSignal func(pkt []byte)
	// OnProbeAnswer receives the home agent's answers to the daemon's
	// probes: the uplink, the probe's sequence number, when it arrived,
	// and whether it carries the unbound mark (nemo.NemodUnboundSubType);
	// it runs on a reader goroutine.
	OnProbeAnswer func(uplink int, seq uint32, at time.Time, unbound bool)
	// Order is the BIDs by BID-PRI then BID: where packets no flow binding
	// takes go (the first usable).
	Order  []uint16
	Logger *slog.Logger
	// Stack opens the uplinks' sockets and System the TUN device and the
	// routing: the kernel's, or a test's.
	Stack  netio.Stack
	System RouterSystem
	// NoAddress leaves the home address to whoever owns the device's
	// addresses (netifd, on OpenWrt: see NetworkRoutes).
	NoAddress bool
	// IPv4: the mobile network asks for IPv4 (RFC 5555), so each uplink
	// also has an IPv4-in-IPv6 socket.
	IPv4 bool
}

// mrUplink is one uplink: its sockets, opened when its device appears and
// closed when it goes or changes index (a flapping carrier opens nothing),
// and its binding's counters and liveness clock, which outlive them.
type mrUplink struct {
	index int
	dev   string
	stats *Stats
	socks *mrSocks // nil while the device is absent; event loop only
}

type mrSocks struct {
	index   int
	hdrincl netio.Sender // native signalling (Home Address option)
	raw     netio.Conn   // IPv6-in-IPv6
	udp4    netio.Conn   // RFC 5555 over IPv4; nil without an IPv4 home agent address
	udp6    netio.Conn   // UDP over IPv6
	raw4    netio.Conn   // IPv4-in-IPv6; nil unless MRConfig.IPv4
	mh      netio.Conn   // Heartbeat answers on native paths
	wg      sync.WaitGroup
}

func (s *mrSocks) close() {
	if s.hdrincl != nil {
		s.hdrincl.Close()
	}
	for _, c := range []netio.Conn{s.raw, s.udp4, s.udp6, s.raw4, s.mh} {
		if c != nil {
			c.Close()
		}
	}
	s.wg.Wait()
}

// MR is the mobile router's data plane.
type MR struct {
	cfg     MRConfig
	log     *slog.Logger
	sys     RouterSystem
	tun     Device
	uplinks []*mrUplink
	table   atomic.Pointer[routerTable]
	drops   Drops
	gen     uint64
	mtu     int
	wg      sync.WaitGroup
	closed  atomic.Bool
	// bindings and flows are what the table was last built from; event
	// loop only.
	bindings []binding.BindingStatus
	linkMTU  func(int) int
	flows    *flowState
	// mnps are the mobile network prefixes now (local.go: delegated ones
	// come and go); event loop only.
	mnps []netip.Prefix
	// local takes the packets from the home agent for the router itself
	// (local.go); nil: none.
	local atomic.Pointer[func([]byte) bool]
	// ha is the home agent in use (mrha.go).
	ha atomic.Pointer[mrHA]
	// breakout is what SetDirect installed last (devices.go); event loop
	// only.
	breakout Breakout
	// v4 is the mobile network's IPv4 (ipv4.go); event loop only.
	v4 routerV4
}

// NewMR opens the TUN device, gives it the home address, and routes the
// mobile network's traffic (and the router's own from its home address)
// into it; traffic between the mobile network's own links stays local.
func NewMR(cfg MRConfig) (*MR, error) {
	if cfg.TunName == "" {
		cfg.TunName = "nemo0"
	}
	if cfg.Table == 0 {
		cfg.Table = 4191
	}
	if cfg.RulePriority == 0 {
		cfg.RulePriority = 4191
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Stack == nil || cfg.System == nil {
		return nil, errors.New("data plane: no network stack or system")
	}
	m := &MR{cfg: cfg, log: cfg.Logger, sys: cfg.System, mtu: MTU(1500, nemo.EncapUDP6), flows: newFlowState(nil), mnps: cfg.MNPs}
	for i, d := range cfg.Devices {
		m.uplinks = append(m.uplinks, &mrUplink{index: i, dev: d, stats: new(Stats)})
	}
	m.homeAgentInit()
	m.rebuild()
	var err error
	if m.tun, err = m.sys.OpenTUN(cfg.TunName, m.mtu); err != nil {
		return nil, err
	}
	if err := m.sys.RouteNetwork(NetworkRoutes{Device: m.tun.Name(), HoA: cfg.HoA, MNPs: cfg.MNPs, LANs: cfg.LANs,
		Table: cfg.Table, Priority: cfg.RulePriority, NoAddress: cfg.NoAddress}); err != nil {
		m.Close()
		return nil, err
	}
	if cfg.IPv4 {
		if err := m.route4(); err != nil {
			m.Close()
			return nil, err
		}
	}
	if !m.sys.Forwarding() {
		m.log.Warn("IPv6 forwarding is off: the mobile network's traffic will not reach the tunnel (sysctl net.ipv6.conf.all.forwarding=1)")
	}
	m.wg.Add(1)
	go m.readTUN()
	return m, nil
}

// SetUplink follows uplink i's device: index 0 means it is gone. Its
// sockets are (re)opened only when the interface index changes.
func (m *MR) SetUplink(i, index int) error {
	u := m.uplinks[i]
	if u.socks != nil && u.socks.index == index {
		return nil
	}
	if u.socks != nil {
		u.socks.close()
		u.socks = nil
		m.rebuild()
	}
	if index == 0 {
		return nil
	}
	s, err := m.openSocks(u, index)
	if err != nil {
		return err
	}
	u.socks = s
	m.rebuild()
	return nil
}

func (m *MR) openSocks(u *mrUplink, index int) (*mrSocks, error) {
	st := m.cfg.Stack
	s := &mrSocks{index: index}
	var err error
	fail := func(e error) (*mrSocks, error) { s.close(); return nil, fmt.Errorf("uplink %s: %w", u.dev, e) }
	if s.hdrincl, err = st.NewSender(u.dev); err != nil {
		return fail(err)
	}
	if s.raw, err = st.ListenIP(header.ProtoIPv6, u.dev, netip.Addr{}); err != nil {
		return fail(err)
	}
	if m.anyV4() {
		if s.udp4, err = st.ListenUDP("udp4", u.dev, netip.AddrPort{}); err != nil {
			return fail(err)
		}
	}
	if s.udp6, err = st.ListenUDP("udp6", u.dev, netip.AddrPort{}); err != nil {
		return fail(err)
	}
	if s.mh, err = st.ListenIP(header.ProtoMH, u.dev, netip.Addr{}); err != nil {
		return fail(err)
	}
	if m.cfg.IPv4 {
		if s.raw4, err = st.ListenIP(header.ProtoIPv4, u.dev, netip.Addr{}); err != nil {
			return fail(err)
		}
		s.wg.Add(1)
		go m.readRaw(u, s, s.raw4)
	}
	s.wg.Add(3)
	go m.readRaw(u, s, s.raw)
	go m.readMH(u, s)
	go m.readUDP(u, s, s.udp6, netip.AddrPortFrom(m.cfg.HA, nemo.UDPPort), nemo.EncapUDP6)
	if s.udp4 != nil {
		s.wg.Add(1)
		go m.readUDP(u, s, s.udp4, netip.AddrPortFrom(m.cfg.HAv4, nemo.UDPPort), nemo.EncapUDP4)
	}
	return s, nil
}

// SendSignal sends a Binding Update or probe through uplink i: natively
// (an IPv6 packet with its own header) or in UDP to the home agent.
func (m *MR) SendSignal(i int, e nemo.Encap, pkt []byte) error {
	s := m.uplinks[i].socks
	if s == nil {
		return errors.New("device does not exist")
	}
	b := netio.NewBatch(1, len(pkt))
	b.N[0] = copy(b.Bufs[0], pkt)
	switch e {
	case nemo.EncapIPv6:
		return s.hdrincl.Send(pkt)
	case nemo.EncapUDP4:
		if s.udp4 == nil {
			return errors.New("no IPv4 home agent address")
		}
		b.Addr[0] = netip.AddrPortFrom(m.cur().v4, nemo.UDPPort)
		_, err := s.udp4.Send(b, 1)
		return err
	case nemo.EncapUDP6:
		b.Addr[0] = netip.AddrPortFrom(m.cur().v6, nemo.UDPPort)
		_, err := s.udp6.Send(b, 1)
		return err
	}
	return errors.New("no encapsulation")
}

// SetFlows installs the flow binding table (nil: none) the mobile
// network's packets are steered by.
func (m *MR) SetFlows(t *policy.Table) {
	m.flows = newFlowState(t)
	m.rebuild()
}

// SetDirect installs local breakout for the direct entries of the flow
// table (charter item A.5): the host routes them out of the uplinks,
// masqueraded, ahead of the tunnel.
func (m *MR) SetDirect(t *policy.Table) error {
	b := Breakout{Uplinks: m.cfg.Devices, MNPs: m.mnps, MNPs4: m.v4.mnps, Priority: m.cfg.RulePriority - 64}
	if t != nil {
		for i := range t.Entries {
			if t.Entries[i].Direct {
				b.Entries = append(b.Entries, &t.Entries[i])
			}
		}
	}
	m.breakout = b
	return m.sys.SetBreakout(b)
}

// Flows returns the flow binding table with its counters.
func (m *MR) Flows() status.Flows {
	t := m.table.Load()
	return t.flows.view(t.usable)
}

// SetBindings installs the usable bindings (registered ones, in order of
// preference) and sizes the TUN device's MTU for the smallest path, so
// that the kernel answers an oversized packet from the mobile network with
// Packet Too Big before it reaches the tunnel. linkMTU gives each uplink's
// device MTU.
func (m *MR) SetBindings(bs []binding.BindingStatus, linkMTU func(uplink int) int) {
	m.bindings, m.linkMTU = bs, linkMTU
	m.rebuild()
	t := m.table.Load()
	mtu := 0
	for _, b := range t.bindings {
		if mtu == 0 || b.mtu < mtu {
			mtu = b.mtu
		}
	}
	if mtu != 0 && mtu != m.mtu {
		if err := m.tun.SetMTU(mtu); err != nil {
			m.log.Warn("setting the tunnel MTU", "mtu", mtu, "err", err)
		} else {
			m.mtu = mtu
		}
	}
}

// rebuild makes a new forwarding table from the bindings, the uplinks'
// sockets and the flow table, and swaps it in.
func (m *MR) rebuild() {
	m.gen++
	t := &routerTable{gen: m.gen, hoa: m.cfg.HoA, mnps: m.mnps, order: m.cfg.Order, flows: m.flows, v4: m.v4}
	ha := m.cur()
	for i, b := range m.bindings {
		if i >= len(m.uplinks) || b.State != binding.StateRegistered {
			continue
		}
		u := m.uplinks[i]
		s := u.socks
		if s == nil {
			continue
		}
		rb := &routerBinding{uplink: i, bid: b.BID, encap: b.Encap, coa: b.CoA, stats: u.stats}
		switch b.Encap {
		case nemo.EncapIPv6:
			rb.conn, rb.to = s.raw, netip.AddrPortFrom(ha.v6, 0)
			rb.conn4 = s.raw4
		case nemo.EncapUDP4:
			rb.conn, rb.to = s.udp4, netip.AddrPortFrom(ha.v4, nemo.UDPPort)
			// The kernel picks the source behind NAT: it may not be the
			// care-of address the binding registered.
			rb.coa = netip.Addr{}
			rb.conn4 = rb.conn
		case nemo.EncapUDP6:
			rb.conn, rb.to = s.udp6, netip.AddrPortFrom(ha.v6, nemo.UDPPort)
			rb.conn4 = rb.conn
		}
		if rb.conn == nil {
			continue
		}
		l := 1500
		if m.linkMTU != nil && m.linkMTU(i) > 0 {
			l = m.linkMTU(i)
		}
		rb.mtu = MTU(l, b.Encap)
		t.bindings = append(t.bindings, rb)
	}
	m.table.Store(t)
}

// readTUN carries the mobile network's packets into the tunnel, each
// through the binding(s) its flow binding names.
func (m *MR) readTUN() {
	defer m.wg.Done()
	r := newTunReader(m.tun)
	pkts := make([][]byte, 0, m.tun.BatchSize())
	senders := map[netio.Conn]*sender{}
	w := newTunWriter(m.tun, 8, &m.drops) // Packet Too Big answers
	var gen uint64
	targets := make([]*routerBinding, 0, 8)
	ptb := make([]byte, 0, header.ICMPv6MinMTU)
	var frag fragmenter
	for {
		var err error
		pkts, err = r.read(pkts)
		if errors.Is(err, os.ErrClosed) || m.closed.Load() {
			return
		}
		t := m.table.Load()
		now := time.Now().UnixNano()
		if t.gen != gen {
			// Forget the senders of sockets no binding uses any more.
			gen = t.gen
			for c := range senders {
				used := false
				for _, b := range t.bindings {
					used = used || b.conn == c || b.conn4 == c
				}
				if !used {
					delete(senders, c)
				}
			}
		}
		for _, p := range pkts {
			var d Drop
			var mtu int
			targets, d, mtu = t.fromNetwork(p, targets[:0])
			if d != Forward {
				m.drops.AddPacket(d, p)
				if d == DropTooBig {
					if e := tooBig(ptb[:0], p, mtu, m.cfg.HoA, t.v4.icmpSource4()); e != nil {
						w.add(e)
					}
				}
				continue
			}
			for _, b := range targets {
				conn := b.connFor(p)
				s := senders[conn]
				if s == nil {
					s = newSender(conn, b.encap != nemo.EncapIPv6, senderBatch(b.encap, m.tun), &m.drops)
					senders[conn] = s
				}
				b.stats.sentPacket(p, now)
				frag.add(s, p, b.mtu, b.to, b.coa)
			}
		}
		for _, s := range senders {
			s.flush()
		}
		w.flush()
	}
}

// readRaw reads IPv6-in-IPv6 (or, from raw4, IPv4-in-IPv6) arriving on
// an uplink.
func (m *MR) readRaw(u *mrUplink, s *mrSocks, c netio.Conn) {
	defer s.wg.Done()
	b := netio.NewBatch(32, 2048)
	w := newTunWriter(m.tun, 32, &m.drops)
	for {
		n, err := c.Recv(b)
		if err != nil {
			if netio.IsClosed(err) || m.closed.Load() {
				return
			}
			continue
		}
		now := time.Now().UnixNano()
		t := m.table.Load()
		for i := 0; i < n; i++ {
			p := b.Bufs[i][:b.N[i]]
			if !m.fromHA(b.Addr[i].Addr()) {
				m.drops.AddPacket(DropNotFromHA, p)
				continue
			}
			m.downlink(p, u, t, w, now)
		}
		w.flush()
	}
}

// readUDP reads an uplink's UDP socket: signalling to the daemon,
// tunnelled traffic into the TUN device.
func (m *MR) readUDP(u *mrUplink, s *mrSocks, c netio.Conn, ha netip.AddrPort, enc nemo.Encap) {
	defer s.wg.Done()
	b := netio.NewBatch(16, maxPacket)
	w := newTunWriter(m.tun, 64, &m.drops)
	hs := newHeartbeats()
	for {
		n, err := c.Recv(b)
		if err != nil {
			if netio.IsClosed(err) || m.closed.Load() {
				return
			}
			continue
		}
		now := time.Now().UnixNano()
		t := m.table.Load()
		for i := 0; i < n; i++ {
			if b.Addr[i].Port() != ha.Port() || !m.fromHA(b.Addr[i].Addr()) {
				m.drops.Add(DropNotFromHA)
				continue
			}
			netio.Segments(b.Bufs[i][:b.N[i]], b.Seg[i], func(p []byte) {
				switch {
				case isHeartbeat(p, m.cfg.HoA):
					// Whether it counts as hearing from the binding depends
					// on what it says.
					m.udpHeartbeat(u, c, p, b.Addr[i], t, hs, now)
				case isSignalling(p, m.cfg.HoA):
					u.stats.heard(now)
					if m.cfg.OnSignal != nil {
						m.cfg.OnSignal(append([]byte(nil), p...))
					}
				default:
					u.stats.heard(now)
					m.downlink(p, u, t, w, now)
				}
			})
		}
		w.flush()
	}
}

// readMH reads the Heartbeats of native paths: the answers to our
// probes, and the home agent's own probes.
func (m *MR) readMH(u *mrUplink, s *mrSocks) {
	defer s.wg.Done()
	b := netio.NewBatch(8, 2048)
	hs := newHeartbeats()
	for {
		n, err := s.mh.Recv(b)
		if err != nil {
			if netio.IsClosed(err) || m.closed.Load() {
				return
			}
			continue
		}
		now := time.Now().UnixNano()
		for i := 0; i < n; i++ {
			if !m.fromHA(b.Addr[i].Addr()) {
				m.drops.Add(DropBadProbe)
				continue
			}
			m.mhHeartbeat(u, s, b.Bufs[i][:b.N[i]], b.Addr[i].Addr(), hs, now)
		}
	}
}

// downlink delivers a packet from the home agent to the mobile network.
func (m *MR) downlink(p []byte, u *mrUplink, t *routerTable, w *tunWriter, now int64) {
	d, dup := t.toNetwork(p, now)
	if d != Forward {
		m.drops.AddPacket(d, p)
		return
	}
	u.stats.receivedPacket(p, now)
	if !dup && !m.takeLocal(p) {
		w.add(p)
	}
}

// Heard returns when anything last came from the home agent through
// uplink i (zero if never): the binding's liveness clock.
func (m *MR) Heard(i int) time.Time { return m.uplinks[i].stats.LastRx() }

// Status reports the data plane's state.
func (m *MR) Status() status.DataPlane { return dataPlaneStatus(m.tun, m.mtu, &m.drops) }

// Traffic returns the counts of uplink i's binding.
func (m *MR) Traffic(i int) status.Traffic { return m.uplinks[i].stats.Traffic() }

// Drops returns the drop counters.
func (m *MR) Drops() *Drops { return &m.drops }

// Close stops everything and removes the routing and the TUN device.
func (m *MR) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	m.sys.Close()
	for _, u := range m.uplinks {
		if u.socks != nil {
			u.socks.close()
			u.socks = nil
		}
	}
	if m.tun != nil {
		m.tun.Close()
	}
	m.wg.Wait()
	return nil
}
