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

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"nemod/binding"
	"nemod/nemo"
	"nemod/netio"
	"nemod/policy"
)

// MRConfig configures the mobile router's data plane.
type MRConfig struct {
	HoA     netip.Addr
	MNPs    []netip.Prefix
	HA      netip.Addr // the home agent's IPv6 address
	HAv4    netip.Addr // and IPv4 address (invalid if none)
	Devices []string   // uplink devices, by uplink index
	TunName string     // default "nemo0"
	// Table and RulePriority place the policy routing that sends the
	// mobile network's traffic into the TUN device (defaults 4191, 4191).
	Table, RulePriority int
	// OnSignal receives the Mobility Header packets the home agent sends
	// over an uplink's UDP socket.
	OnSignal func(pkt []byte)
	// Order is the BIDs by BID-PRI then BID: where packets no flow binding
	// takes go (the first usable).
	Order  []uint16
	Logger *slog.Logger
}

// mrSocks are one uplink's sockets, opened when its device appears and
// closed when it goes or changes index: a flapping carrier opens nothing.
type mrSocks struct {
	dev     string
	index   int
	hdrincl *netio.RawSender // native signalling (Home Address option)
	raw     *net.IPConn      // IPv6-in-IPv6
	rawb    *netio.BatchConn
	udp4    *net.UDPConn // RFC 5555 over IPv4
	udp4b   *netio.BatchConn
	udp6    *net.UDPConn // UDP over IPv6
	udp6b   *netio.BatchConn
	mh      *net.IPConn // Heartbeat answers on native paths
	// lastRx is when anything last came from the home agent through this
	// uplink (Unix nanoseconds): what liveness probing judges a path by.
	lastRx atomic.Int64
	wg     sync.WaitGroup
}

func (s *mrSocks) close() {
	if s.hdrincl != nil {
		s.hdrincl.Close()
	}
	if s.raw != nil {
		s.raw.Close()
	}
	if s.udp4 != nil {
		s.udp4.Close()
	}
	if s.udp6 != nil {
		s.udp6.Close()
	}
	if s.mh != nil {
		s.mh.Close()
	}
	s.wg.Wait()
}

// mrBinding is one usable binding in a forwarding view.
type mrBinding struct {
	bid   uint16
	encap nemo.Encap
	coa   netip.Addr
	to    netip.AddrPort
	conn  *netio.BatchConn
	stats *Stats
}

type mrView struct {
	gen      uint64
	bindings []*mrBinding // usable ones
}

func (v *mrView) binding(bid uint16) *mrBinding {
	for _, b := range v.bindings {
		if b.bid == bid {
			return b
		}
	}
	return nil
}

// MR is the mobile router's data plane.
type MR struct {
	cfg    MRConfig
	log    *slog.Logger
	tun    *TUN
	socks  []*mrSocks // by uplink, event loop only; nil while absent
	view   atomic.Pointer[mrView]
	flows  atomic.Pointer[flowState]
	stats  map[uint16]*Stats // event loop only
	drops  Drops
	gen    uint64
	mtu    int
	wg     sync.WaitGroup
	closed atomic.Bool
	rules  []*netlink.Rule
	// directRules are the local breakout rules (SetDirect).
	directRules []*netlink.Rule
	routes      *routeSet
}

// NewMR opens the TUN device, gives it the home address, and routes the
// mobile network's traffic (and the router's own from its home address)
// into it by policy routing; traffic between the mobile network's own
// links stays local.
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
	m := &MR{cfg: cfg, log: cfg.Logger, socks: make([]*mrSocks, len(cfg.Devices)), stats: map[uint16]*Stats{}, mtu: MTU(1500, nemo.EncapUDP6)}
	m.view.Store(&mrView{})
	m.flows.Store(newFlowState(nil))
	var err error
	fail := func(e error) (*MR, error) { m.Close(); return nil, e }
	if m.tun, err = OpenTUN(cfg.TunName, m.mtu); err != nil {
		return fail(err)
	}
	if err := m.setupRouting(); err != nil {
		return fail(err)
	}
	if !forwarding() {
		m.log.Warn("IPv6 forwarding is off: the mobile network's traffic will not reach the tunnel (sysctl net.ipv6.conf.all.forwarding=1)")
	}
	m.wg.Add(1)
	go m.readTUN()
	return m, nil
}

func (m *MR) setupRouting() error {
	l, err := netlink.LinkByName(m.tun.Name())
	if err != nil {
		return err
	}
	hoa := &netlink.Addr{IPNet: &net.IPNet{IP: m.cfg.HoA.AsSlice(), Mask: net.CIDRMask(128, 128)}, Flags: unix.IFA_F_NODAD}
	if err := netlink.AddrReplace(l, hoa); err != nil {
		return fmt.Errorf("home address on %s: %w", m.tun.Name(), err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return err
	}
	if m.routes, err = newRouteSet(m.tun.Name()); err != nil {
		return err
	}
	def := m.routes.route(netip.MustParsePrefix("::/0"), m.cfg.Table)
	if err := netlink.RouteReplace(def); err != nil {
		return fmt.Errorf("default route in table %d: %w", m.cfg.Table, err)
	}
	add := func(r *netlink.Rule) error {
		r.Family = unix.AF_INET6
		r.Protocol = rtprotNemod
		netlink.RuleDel(r) // left by a daemon that crashed
		if err := netlink.RuleAdd(r); err != nil {
			return fmt.Errorf("policy rule %s: %w", r, err)
		}
		m.rules = append(m.rules, r)
		return nil
	}
	prio := m.cfg.RulePriority
	for _, p := range m.cfg.MNPs {
		r := netlink.NewRule()
		r.Priority, r.Table, r.Dst = prio, unix.RT_TABLE_MAIN, ipnet(p)
		if err := add(r); err != nil {
			return err
		}
	}
	for _, p := range append([]netip.Prefix{netip.PrefixFrom(m.cfg.HoA, 128)}, m.cfg.MNPs...) {
		r := netlink.NewRule()
		r.Priority, r.Table, r.Src = prio+1, m.cfg.Table, ipnet(p)
		if err := add(r); err != nil {
			return err
		}
	}
	return nil
}

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// SetUplink follows uplink i's device: index 0 means it is gone. Its
// sockets are (re)opened only when the interface index changes.
func (m *MR) SetUplink(i, index int) error {
	old := m.socks[i]
	if old != nil && old.index == index {
		return nil
	}
	if old != nil {
		old.close()
		m.socks[i] = nil
	}
	if index == 0 {
		return nil
	}
	s, err := m.openSocks(m.cfg.Devices[i], index)
	if err != nil {
		return err
	}
	m.socks[i] = s
	return nil
}

func (m *MR) openSocks(dev string, index int) (*mrSocks, error) {
	s := &mrSocks{dev: dev, index: index}
	var err error
	fail := func(e error) (*mrSocks, error) { s.close(); return nil, fmt.Errorf("uplink %s: %w", dev, e) }
	if s.hdrincl, err = netio.NewRawSender(dev); err != nil {
		return fail(err)
	}
	if s.raw, err = netio.ListenIP("ip6:41", dev, netip.Addr{}); err != nil {
		return fail(err)
	}
	// A burst from the home agent is tens of packets at once: with the
	// default buffer the kernel drops some, and TCP takes them for losses.
	s.raw.SetReadBuffer(4 << 20)
	s.raw.SetWriteBuffer(4 << 20)
	if s.rawb, err = netio.NewBatchConn(s.raw, false); err != nil {
		return fail(err)
	}
	if m.cfg.HAv4.IsValid() {
		if s.udp4, err = netio.ListenUDP("udp4", dev, netip.AddrPort{}); err != nil {
			return fail(err)
		}
		if s.udp4b, err = netio.NewBatchConn(s.udp4, true); err != nil {
			return fail(err)
		}
	}
	if s.udp6, err = netio.ListenUDP("udp6", dev, netip.AddrPort{}); err != nil {
		return fail(err)
	}
	if s.udp6b, err = netio.NewBatchConn(s.udp6, true); err != nil {
		return fail(err)
	}
	if s.mh, err = netio.ListenIP("ip6:135", dev, netip.Addr{}); err != nil {
		return fail(err)
	}
	for _, c := range []*net.UDPConn{s.udp4, s.udp6} {
		if c != nil {
			c.SetReadBuffer(4 << 20)
			c.SetWriteBuffer(4 << 20)
		}
	}
	s.wg.Add(2)
	go m.readRaw(s)
	go m.readMH(s)
	if s.udp4b != nil {
		s.wg.Add(1)
		go m.readUDP(s, s.udp4b, netip.AddrPortFrom(m.cfg.HAv4, nemo.UDPPort))
	}
	s.wg.Add(1)
	go m.readUDP(s, s.udp6b, netip.AddrPortFrom(m.cfg.HA, nemo.UDPPort))
	return s, nil
}

// SendSignal sends a Binding Update through uplink i: natively (an IPv6
// packet with its own header) or in UDP to the home agent.
func (m *MR) SendSignal(i int, e nemo.Encap, pkt []byte) error {
	s := m.socks[i]
	if s == nil {
		return errors.New("device does not exist")
	}
	var err error
	switch e {
	case nemo.EncapIPv6:
		err = s.hdrincl.Send(pkt)
	case nemo.EncapUDP4:
		if s.udp4 == nil {
			return errors.New("no IPv4 home agent address")
		}
		_, err = s.udp4.WriteToUDPAddrPort(pkt, netip.AddrPortFrom(m.cfg.HAv4, nemo.UDPPort))
	case nemo.EncapUDP6:
		_, err = s.udp6.WriteToUDPAddrPort(pkt, netip.AddrPortFrom(m.cfg.HA, nemo.UDPPort))
	default:
		err = errors.New("no encapsulation")
	}
	return err
}

// SetFlows installs the flow binding table (nil: none) the mobile
// network's packets are steered by.
func (m *MR) SetFlows(t *policy.Table) { m.flows.Store(newFlowState(t)) }

// Flows returns the flow binding table with its counters.
func (m *MR) Flows() FlowsView {
	v := m.view.Load()
	return m.flows.Load().view(func(bid uint16) bool { return v.binding(bid) != nil })
}

// SetBindings installs the usable bindings (registered ones, in order of
// preference) and sizes the TUN device's MTU for the smallest path, so
// that the kernel answers an oversized packet from the mobile network with
// Packet Too Big instead of the tunnel losing it. linkMTU gives each
// uplink's device MTU.
func (m *MR) SetBindings(bs []binding.BindingStatus, linkMTU func(uplink int) int) {
	m.gen++
	v := &mrView{gen: m.gen}
	mtu := 0
	for i, b := range bs {
		s := m.socks[i]
		if b.State != binding.StateRegistered || s == nil {
			continue
		}
		mb := &mrBinding{bid: b.BID, encap: b.Encap, coa: b.CoA, stats: m.statsOf(b.BID)}
		switch b.Encap {
		case nemo.EncapIPv6:
			mb.conn, mb.to = s.rawb, netip.AddrPortFrom(m.cfg.HA, 0)
		case nemo.EncapUDP4:
			mb.conn, mb.to = s.udp4b, netip.AddrPortFrom(m.cfg.HAv4, nemo.UDPPort)
		case nemo.EncapUDP6:
			mb.conn, mb.to = s.udp6b, netip.AddrPortFrom(m.cfg.HA, nemo.UDPPort)
		}
		if mb.conn == nil {
			continue
		}
		v.bindings = append(v.bindings, mb)
		l := 1500
		if linkMTU != nil && linkMTU(i) > 0 {
			l = linkMTU(i)
		}
		if t := MTU(l, b.Encap); mtu == 0 || t < mtu {
			mtu = t
		}
	}
	m.view.Store(v)
	if mtu != 0 && mtu != m.mtu {
		if err := m.tun.SetMTU(mtu); err != nil {
			m.log.Warn("setting the tunnel MTU", "mtu", mtu, "err", err)
		} else {
			m.mtu = mtu
		}
	}
}

func (m *MR) statsOf(bid uint16) *Stats {
	st := m.stats[bid]
	if st == nil {
		st = new(Stats)
		m.stats[bid] = st
	}
	return st
}

// readTUN carries the mobile network's packets into the tunnel, each
// through the preferred binding.
func (m *MR) readTUN() {
	defer m.wg.Done()
	r := newTunReader(m.tun)
	pkts := make([][]byte, 0, m.tun.BatchSize())
	senders := map[*netio.BatchConn]*sender{}
	var gen uint64
	for {
		var err error
		pkts, err = r.read(pkts)
		if errors.Is(err, os.ErrClosed) || m.closed.Load() {
			return
		}
		v := m.view.Load()
		if v.gen != gen {
			// Forget the senders of sockets no binding uses any more.
			gen = v.gen
			for c := range senders {
				used := false
				for _, b := range v.bindings {
					used = used || b.conn == c
				}
				if !used {
					delete(senders, c)
				}
			}
		}
		fs := m.flows.Load()
		usable := func(bid uint16) bool { return v.binding(bid) != nil }
		var tbuf [8]uint16
		for _, p := range pkts {
			if len(p) < 40 || p[0]>>4 != 6 {
				m.drops.NotIPv6.Add(1)
				continue
			}
			if !covers(addr16(p[8:]), []netip.Addr{m.cfg.HoA}, m.cfg.MNPs) {
				m.drops.BadSource.Add(1)
				continue
			}
			pkt, ok := policy.ParsePacket(p)
			if !ok {
				m.drops.Malformed.Add(1)
				continue
			}
			targets, e, direct := fs.table.Targets(&pkt, policy.FromMN, usable, m.cfg.Order, tbuf[:0])
			if e != nil {
				fs.count(e)
			}
			if direct {
				// Local breakout is the kernel's (policy rules ahead of the
				// tunnel); one that got here anyway is not tunnelled.
				m.drops.Direct.Add(1)
				continue
			}
			if len(targets) == 0 {
				m.drops.NoBinding.Add(1)
				continue
			}
			for _, bid := range targets {
				b := v.binding(bid)
				s := senders[b.conn]
				if s == nil {
					s = newSender(b.conn, b.encap != nemo.EncapIPv6, 32, &m.drops)
					senders[b.conn] = s
				}
				b.stats.TxPackets.Add(1)
				b.stats.TxBytes.Add(uint64(len(p)))
				src := b.coa
				if b.encap == nemo.EncapUDP4 {
					src = netip.Addr{}
				}
				s.add(p, b.to, src)
			}
		}
		for _, s := range senders {
			s.flush()
		}
	}
}

// readRaw reads IPv6-in-IPv6 arriving on an uplink.
func (m *MR) readRaw(s *mrSocks) {
	defer s.wg.Done()
	b := netio.NewBatch(32, 2048)
	var w *tunWriter
	for {
		n, err := s.rawb.Recv(b)
		if err != nil {
			if netio.IsClosed(err) || m.closed.Load() {
				return
			}
			continue
		}
		if w == nil {
			w = newTunWriter(m.tun, 32, &m.drops)
		}
		now := time.Now().UnixNano()
		for i := 0; i < n; i++ {
			if b.Addr[i].Addr() != m.cfg.HA {
				m.drops.NotFromHA.Add(1)
				continue
			}
			s.lastRx.Store(now)
			m.downlink(b.Bufs[i][:b.N[i]], nemo.EncapIPv6, s, w, now)
		}
		w.flush()
	}
}

// readUDP reads an uplink's UDP socket: signalling to the daemon,
// tunnelled traffic into the TUN device.
func (m *MR) readUDP(s *mrSocks, c *netio.BatchConn, ha netip.AddrPort) {
	defer s.wg.Done()
	b := netio.NewBatch(16, maxPacket)
	var w *tunWriter
	enc := nemo.EncapUDP6
	if ha.Addr().Is4() {
		enc = nemo.EncapUDP4
	}
	for {
		n, err := c.Recv(b)
		if err != nil {
			if netio.IsClosed(err) || m.closed.Load() {
				return
			}
			continue
		}
		now := time.Now().UnixNano()
		for i := 0; i < n; i++ {
			if b.Addr[i] != ha {
				m.drops.NotFromHA.Add(1)
				continue
			}
			s.lastRx.Store(now)
			netio.Segments(b.Bufs[i][:b.N[i]], b.Seg[i], func(p []byte) {
				if len(p) > 0 && p[0]>>4 == 0 {
					// A probe's answer: hearing it is all it is for.
					return
				}
				if IsSignalling(p, m.cfg.HoA) {
					if m.cfg.OnSignal != nil {
						m.cfg.OnSignal(append([]byte(nil), p...))
					}
					return
				}
				if w == nil {
					w = newTunWriter(m.tun, 64, &m.drops)
				}
				m.downlink(p, enc, s, w, now)
			})
		}
		if w != nil {
			w.flush()
		}
	}
}

// readMH reads the Heartbeat answers of native paths.
func (m *MR) readMH(s *mrSocks) {
	defer s.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, from, err := s.mh.ReadFromIP(buf)
		if err != nil {
			if netio.IsClosed(err) || m.closed.Load() {
				return
			}
			continue
		}
		var hb nemo.Heartbeat
		if a, ok := netip.AddrFromSlice(from.IP); !ok || a.Unmap() != m.cfg.HA || nemo.Unmarshal(buf[:n], &hb) != nil || !hb.Response {
			m.drops.BadProbe.Add(1)
			continue
		}
		s.lastRx.Store(time.Now().UnixNano())
	}
}

// LastRx returns when anything last came from the home agent through
// uplink i (zero if never, or while its device is absent).
func (m *MR) LastRx(i int) time.Time {
	s := m.socks[i]
	if s == nil {
		return time.Time{}
	}
	if t := s.lastRx.Load(); t != 0 {
		return time.Unix(0, t)
	}
	return time.Time{}
}

// downlink delivers a packet from the home agent to the mobile network.
func (m *MR) downlink(p []byte, e nemo.Encap, s *mrSocks, w *tunWriter, now int64) {
	if len(p) < 40 || p[0]>>4 != 6 {
		m.drops.NotIPv6.Add(1)
		return
	}
	if 40+int(p[4])<<8|int(p[5]) > len(p) {
		m.drops.Malformed.Add(1)
		return
	}
	if !covers(addr16(p[24:]), []netip.Addr{m.cfg.HoA}, m.cfg.MNPs) {
		m.drops.NotForUs.Add(1)
		return
	}
	// Count it on the binding of this uplink and encapsulation.
	v := m.view.Load()
	for _, b := range v.bindings {
		if b.encap == e && (b.conn == s.rawb || b.conn == s.udp4b || b.conn == s.udp6b) {
			b.stats.RxPackets.Add(1)
			b.stats.RxBytes.Add(uint64(len(p)))
			b.stats.LastRx.Store(now)
			break
		}
	}
	if m.flows.Load().duplicate(p, policy.ToMN, func(bid uint16) bool { return v.binding(bid) != nil }, now) {
		return // its copy came through the other uplink first
	}
	w.add(p)
}

// Status reports the data plane's state.
func (m *MR) Status() Status {
	return userspaceStatus(m.tun, m.mtu, &m.drops)
}

// BindingStats returns the counts of one binding.
func (m *MR) BindingStats(bid uint16) StatsView {
	if st := m.stats[bid]; st != nil {
		return st.View()
	}
	return StatsView{}
}

// Close stops everything and removes the rules, routes and TUN device.
func (m *MR) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	for _, r := range append(m.rules, m.directRules...) {
		netlink.RuleDel(r)
	}
	if len(m.directRules) > 0 {
		m.clearBreakoutNAT()
	}
	if m.routes != nil {
		netlink.RouteDel(m.routes.route(netip.MustParsePrefix("::/0"), m.cfg.Table))
	}
	for i, s := range m.socks {
		if s != nil {
			s.close()
			m.socks[i] = nil
		}
	}
	if m.tun != nil {
		m.tun.Close()
	}
	m.wg.Wait()
	return nil
}
