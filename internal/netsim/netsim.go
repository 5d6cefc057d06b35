// Package netsim is an in-process network for tests: hosts with links and
// addresses, the sockets nemod opens on them (a netio.Stack per host),
// carrier changes and black holes, an IPv4 NAT, and TUN devices. A mobile
// router and its home agent, data planes and daemons, run in one test
// process over it, without root, the way wireguard-go's tests wire two
// devices together.
//
// It models what the code under test relies on and no more: one flat
// network where every address is one hop away; a socket bound to a device
// sends and receives only through that link; a raw IPv6 socket of a
// protocol gets the payload of every packet of that protocol to its host
// (a copy each); a header-included packet whose first next header is a
// routing or destination options header goes to the host's extension
// header listeners, as the kernel's packet socket filter passes it; UDP
// segmentation offload arrives as separate datagrams.
package netsim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"nemod/header"
	"nemod/ifmon"
	"nemod/netio"
)

// Net is the whole network.
type Net struct {
	mu        sync.Mutex
	hosts     []*Host
	owners    map[netip.Addr]*Link
	nats      map[netip.Addr]*NAT
	nextIndex int
}

// New returns an empty network.
func New() *Net {
	return &Net{owners: map[netip.Addr]*Link{}, nats: map[netip.Addr]*NAT{}, nextIndex: 10}
}

// Host is one machine on the network.
type Host struct {
	net       *Net
	Name      string
	links     []*Link
	socks     []*sock
	listeners []*listener
	monitors  []*Monitor
	nextPort  uint16
}

// Host adds a host.
func (n *Net) Host(name string) *Host {
	n.mu.Lock()
	defer n.mu.Unlock()
	h := &Host{net: n, Name: name, nextPort: 40000}
	n.hosts = append(n.hosts, h)
	return h
}

// Link is one interface of a host.
type Link struct {
	host      *Host
	Name      string
	Index     int
	addrs     []netip.Addr
	up        bool
	blackhole bool
	mtu       int
	nat       *NAT
	blocked   map[uint8]bool
}

// Link adds an interface with the given addresses, up, MTU 1500.
func (h *Host) Link(name string, addrs ...string) *Link {
	n := h.net
	n.mu.Lock()
	defer n.mu.Unlock()
	l := &Link{host: h, Name: name, Index: n.nextIndex, up: true, mtu: 1500}
	n.nextIndex++
	for _, a := range addrs {
		ad := netip.MustParseAddr(a)
		l.addrs = append(l.addrs, ad)
		n.owners[ad] = l
	}
	h.links = append(h.links, l)
	h.notifyLocked()
	return l
}

// SetUp changes the link's carrier; a link that is down neither sends nor
// receives.
func (l *Link) SetUp(up bool) {
	n := l.host.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if l.up != up {
		l.up = up
		l.host.notifyLocked()
	}
}

// SetBlackhole makes the link lose everything both ways while its carrier
// stays up: the silent failure only probing finds.
func (l *Link) SetBlackhole(on bool) {
	n := l.host.net
	n.mu.Lock()
	defer n.mu.Unlock()
	l.blackhole = on
}

// Block drops, both ways, the IPv6 packets of these upper-layer
// protocols (behind any extension headers), as a firewall that filters
// Mobile IPv6 and IPv6-in-IPv6 does; none unblocks.
func (l *Link) Block(protos ...uint8) {
	n := l.host.net
	n.mu.Lock()
	defer n.mu.Unlock()
	l.blocked = map[uint8]bool{}
	for _, p := range protos {
		l.blocked[p] = true
	}
}

func (l *Link) blocks(p packet) bool {
	if len(l.blocked) == 0 || p.udp {
		return false
	}
	proto := p.proto
	if p.whole {
		if ip, err := header.ParseIPv6(p.payload); err == nil {
			if u, err := header.Walk(ip, nil); err == nil {
				proto = u.Proto
			}
		}
	}
	return l.blocked[proto]
}

// SetMTU changes the link's MTU, as the monitor reports it.
func (l *Link) SetMTU(mtu int) {
	n := l.host.net
	n.mu.Lock()
	defer n.mu.Unlock()
	l.mtu = mtu
	l.host.notifyLocked()
}

// NAT translates the IPv4 UDP traffic leaving one link to its public
// address, as a carrier-grade NAT in front of a cellular uplink does.
type NAT struct {
	link     *Link
	public   netip.Addr
	byInside map[netip.AddrPort]uint16
	byPort   map[uint16]netip.AddrPort
	next     uint16
}

// NAT44 puts a NAT with the given public address in front of the link.
func (l *Link) NAT44(public string) *NAT {
	n := l.host.net
	n.mu.Lock()
	defer n.mu.Unlock()
	t := &NAT{link: l, public: netip.MustParseAddr(public), next: 20000}
	t.reset()
	l.nat = t
	n.nats[t.public] = t
	return t
}

func (t *NAT) reset() {
	t.byInside, t.byPort = map[netip.AddrPort]uint16{}, map[uint16]netip.AddrPort{}
}

// Reset forgets every mapping, as a NAT that rebooted or timed out does:
// what comes back to an old mapping is lost, and the next packet out gets a
// new port.
func (t *NAT) Reset() {
	n := t.link.host.net
	n.mu.Lock()
	defer n.mu.Unlock()
	t.reset()
	t.next += 1000
}

func (t *NAT) outbound(src netip.AddrPort) netip.AddrPort {
	p, ok := t.byInside[src]
	if !ok {
		p = t.next
		t.next++
		t.byInside[src], t.byPort[p] = p, src
	}
	return netip.AddrPortFrom(t.public, p)
}

// datagram is one packet on its way to a socket.
type datagram struct {
	data    []byte
	from    netip.AddrPort
	ifindex int // the link it came in on
}

// packet is what travels: a UDP datagram, a raw IPv6 payload of a
// protocol, or a whole header-included IPv6 packet.
type packet struct {
	udp     bool
	proto   uint8 // raw protocol; for a whole packet its first next header
	whole   bool
	src     netip.AddrPort
	dst     netip.AddrPort
	payload []byte
}

var (
	errNetDown      = syscall.ENETDOWN
	errNetUnreach   = syscall.ENETUNREACH
	errAddrNotAvail = syscall.EADDRNOTAVAIL
)

// send routes p out of host h, through bound when it is set. The caller
// holds n.mu.
func (n *Net) send(h *Host, bound *Link, p packet) error {
	dst := p.dst.Addr().Unmap()
	out := bound
	if out == nil && p.src.Addr().IsValid() && !p.src.Addr().IsUnspecified() {
		if l := n.owners[p.src.Addr().Unmap()]; l != nil && l.host == h {
			out = l
		}
	}
	if out == nil {
		for _, l := range h.links {
			if l.up && l.addrOf(dst.Is4()).IsValid() {
				out = l
				break
			}
		}
	}
	if out == nil {
		return errNetUnreach
	}
	if !out.up {
		return errNetDown
	}
	src := p.src.Addr().Unmap()
	if !src.IsValid() || src.IsUnspecified() {
		if src = out.addrOf(dst.Is4()); !src.IsValid() {
			return errAddrNotAvail
		}
	}
	p.src = netip.AddrPortFrom(src, p.src.Port())
	if out.blackhole || out.blocks(p) {
		return nil
	}
	if out.nat != nil && src.Is4() && p.udp {
		p.src = out.nat.outbound(p.src)
	}
	if t := n.nats[dst]; t != nil && p.udp {
		inside, ok := t.byPort[p.dst.Port()]
		if !ok || !t.link.up || t.link.blackhole {
			return nil
		}
		p.dst = inside
		return t.link.host.deliver(t.link, p)
	}
	in := n.owners[dst]
	if in == nil || !in.up || in.blackhole || in.blocks(p) {
		return nil // lost on the way, as IP loses it
	}
	p.dst = netip.AddrPortFrom(dst, p.dst.Port())
	return in.host.deliver(in, p)
}

func (l *Link) addrOf(v4 bool) netip.Addr {
	for _, a := range l.addrs {
		if a.Is4() == v4 && !a.IsLinkLocalUnicast() {
			return a
		}
	}
	return netip.Addr{}
}

// deliver hands p, arrived on link in, to the host's sockets.
func (h *Host) deliver(in *Link, p packet) error {
	if p.whole {
		ip, err := header.ParseIPv6(p.payload)
		if err != nil {
			return nil
		}
		if nh := ip.NextHeader(); nh == header.ProtoRouting || nh == header.ProtoDstOpts {
			for _, l := range h.listeners {
				if l.ifindex == 0 || l.ifindex == in.Index {
					l.put(datagram{data: clone(ip), ifindex: in.Index})
				}
			}
			return nil
		}
		p.payload, p.proto = ip.Payload(), ip.NextHeader()
	}
	for _, s := range h.socks {
		if !s.accepts(in, p) {
			continue
		}
		s.put(datagram{data: clone(p.payload), from: p.src})
		if p.udp {
			return nil
		}
	}
	return nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// notifyLocked tells the host's monitors that a link changed.
func (h *Host) notifyLocked() {
	for _, m := range h.monitors {
		select {
		case m.changes <- struct{}{}:
		default:
		}
	}
}

// Stack returns the host's netio.Stack.
func (h *Host) Stack() netio.Stack { return stack{h} }

type stack struct{ h *Host }

func (s stack) link(device string) (*Link, error) {
	if device == "" {
		return nil, nil
	}
	for _, l := range s.h.links {
		if l.Name == device {
			return l, nil
		}
	}
	return nil, fmt.Errorf("bind to %s: %w", device, syscall.ENODEV)
}

func (s stack) ListenUDP(network, device string, laddr netip.AddrPort) (netio.Conn, error) {
	return s.open(&sock{udp: true, network: network, laddr: laddr}, device)
}

func (s stack) ListenIP(proto uint8, device string, laddr netip.Addr) (netio.Conn, error) {
	return s.open(&sock{network: "ip6", proto: proto, laddr: netip.AddrPortFrom(laddr, 0)}, device)
}

func (s stack) open(k *sock, device string) (*sock, error) {
	n := s.h.net
	n.mu.Lock()
	defer n.mu.Unlock()
	l, err := s.link(device)
	if err != nil {
		return nil, err
	}
	k.host, k.device = s.h, l
	k.q, k.closed = make(chan datagram, 4096), make(chan struct{})
	if k.udp {
		if k.laddr.Port() == 0 {
			k.laddr = netip.AddrPortFrom(k.laddr.Addr(), s.h.nextPort)
			s.h.nextPort++
		}
		for _, o := range s.h.socks {
			if o.udp && o.laddr.Port() == k.laddr.Port() && o.device == k.device && o.familyOverlaps(k) {
				return nil, fmt.Errorf("listen udp %s: %w", k.laddr, syscall.EADDRINUSE)
			}
		}
	}
	s.h.socks = append(s.h.socks, k)
	return k, nil
}

func (s stack) NewSender(device string) (netio.Sender, error) {
	n := s.h.net
	n.mu.Lock()
	defer n.mu.Unlock()
	l, err := s.link(device)
	if err != nil {
		return nil, err
	}
	return &sender{h: s.h, device: l}, nil
}

func (s stack) ListenExtHeaders(ifindex int) (netio.Listener, error) {
	n := s.h.net
	n.mu.Lock()
	defer n.mu.Unlock()
	l := &listener{h: s.h, ifindex: ifindex, q: make(chan datagram, 1024), closed: make(chan struct{})}
	s.h.listeners = append(s.h.listeners, l)
	return l, nil
}

type sock struct {
	host    *Host
	udp     bool
	network string // "udp", "udp4", "udp6" or "ip6"
	proto   uint8
	device  *Link
	laddr   netip.AddrPort
	q       chan datagram
	closed  chan struct{}
	once    sync.Once
}

func (s *sock) put(d datagram) {
	select {
	case s.q <- d:
	default:
	}
}

func (s *sock) familyOverlaps(o *sock) bool {
	return s.network == "udp" || o.network == "udp" || s.network == o.network
}

func (s *sock) accepts(in *Link, p packet) bool {
	if s.device != nil && s.device != in {
		return false
	}
	if a := s.laddr.Addr(); a.IsValid() && !a.IsUnspecified() && a.Unmap() != p.dst.Addr() {
		return false
	}
	if !s.udp {
		return !p.udp && s.proto == p.proto && p.dst.Addr().Is6()
	}
	if !p.udp || s.laddr.Port() != p.dst.Port() {
		return false
	}
	v4 := p.dst.Addr().Is4()
	return s.network == "udp" || (s.network == "udp4") == v4
}

// Recv implements netio.Conn.
func (s *sock) Recv(b *netio.Batch) (int, error) {
	var d datagram
	select {
	case <-s.closed:
		return 0, net.ErrClosed
	case d = <-s.q:
	}
	n := 0
	for {
		b.N[n] = copy(b.Bufs[n][:cap(b.Bufs[n])], d.data)
		b.Addr[n], b.Seg[n] = d.from, 0
		n++
		if n == len(b.Bufs) {
			return n, nil
		}
		select {
		case d = <-s.q:
		default:
			return n, nil
		}
	}
}

// Send implements netio.Conn: each message as the kernel would route it,
// a UDP GSO message as its segments.
func (s *sock) Send(b *netio.Batch, n int) (int, error) {
	net := s.host.net
	net.mu.Lock()
	defer net.mu.Unlock()
	var first error
	for i := 0; i < n; i++ {
		data := b.Bufs[i][:b.N[i]]
		src := s.laddr
		if b.Src[i].IsValid() {
			src = netip.AddrPortFrom(b.Src[i], s.laddr.Port())
		}
		var err error
		netio.Segments(data, b.Seg[i], func(seg []byte) {
			if e := net.send(s.host, s.device, packet{udp: s.udp, proto: s.proto, src: src, dst: b.Addr[i], payload: seg}); e != nil && err == nil {
				err = e
			}
		})
		if err != nil && first == nil {
			first = err
		}
	}
	return n, first
}

// Close implements netio.Conn.
func (s *sock) Close() error {
	s.once.Do(func() {
		close(s.closed)
		n := s.host.net
		n.mu.Lock()
		defer n.mu.Unlock()
		h := s.host
		for i, o := range h.socks {
			if o == s {
				h.socks = append(h.socks[:i], h.socks[i+1:]...)
				break
			}
		}
	})
	return nil
}

type sender struct {
	h      *Host
	device *Link
	closed bool
}

// Send implements netio.Sender.
func (s *sender) Send(pkt []byte) error {
	ip, err := header.ParseIPv6(pkt)
	if err != nil {
		return errors.New("raw send: not an IPv6 packet")
	}
	n := s.h.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if s.closed {
		return net.ErrClosed
	}
	return n.send(s.h, s.device, packet{whole: true, proto: ip.NextHeader(),
		src: netip.AddrPortFrom(ip.Src(), 0), dst: netip.AddrPortFrom(ip.Dst(), 0), payload: clone(ip)})
}

// Close implements netio.Sender.
func (s *sender) Close() error {
	n := s.h.net
	n.mu.Lock()
	defer n.mu.Unlock()
	s.closed = true
	return nil
}

type listener struct {
	h       *Host
	ifindex int
	q       chan datagram
	closed  chan struct{}
	once    sync.Once
}

func (l *listener) put(d datagram) {
	select {
	case l.q <- d:
	default:
	}
}

// Read implements netio.Listener.
func (l *listener) Read(buf []byte) (int, int, error) {
	select {
	case <-l.closed:
		return 0, 0, net.ErrClosed
	case d := <-l.q:
		return copy(buf, d.data), d.ifindex, nil
	}
}

// Close implements netio.Listener.
func (l *listener) Close() error {
	l.once.Do(func() {
		close(l.closed)
		n := l.h.net
		n.mu.Lock()
		defer n.mu.Unlock()
		for i, o := range l.h.listeners {
			if o == l {
				l.h.listeners = append(l.h.listeners[:i], l.h.listeners[i+1:]...)
				break
			}
		}
	})
	return nil
}

// Monitor reports a host's links as the interface monitor does.
type Monitor struct {
	h       *Host
	devices []string
	changes chan struct{}
	done    chan struct{}
}

// Monitor starts a monitor of the named devices.
func (h *Host) Monitor(devices []string) *Monitor {
	n := h.net
	n.mu.Lock()
	defer n.mu.Unlock()
	m := &Monitor{h: h, devices: devices, changes: make(chan struct{}, 1), done: make(chan struct{})}
	h.monitors = append(h.monitors, m)
	return m
}

// Changes signals that Snapshot may have changed.
func (m *Monitor) Changes() <-chan struct{} { return m.changes }

// Done is closed when the monitor stops by itself (never, here).
func (m *Monitor) Done() <-chan struct{} { return m.done }

// Err is why the monitor stopped.
func (m *Monitor) Err() error { return nil }

// Snapshot reports each device: a link that exists has an index, is up
// with its carrier, and has a default route for each family it has an
// address of.
func (m *Monitor) Snapshot() []ifmon.Link {
	n := m.h.net
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]ifmon.Link, len(m.devices))
	for i, d := range m.devices {
		out[i].Name = d
		for _, l := range m.h.links {
			if l.Name != d {
				continue
			}
			v6, v4 := l.addrOf(false), l.addrOf(true)
			out[i] = ifmon.Link{Name: d, Index: l.Index, Exists: true, Up: l.up, MTU: l.mtu,
				IPv6: v6, IPv4: v4, Default6: v6.IsValid(), Default4: v4.IsValid()}
		}
	}
	return out
}

// Close stops the monitor.
func (m *Monitor) Close() error {
	n := m.h.net
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, o := range m.h.monitors {
		if o == m {
			m.h.monitors = append(m.h.monitors[:i], m.h.monitors[i+1:]...)
			break
		}
	}
	return nil
}

// TUN is a TUN device in memory: what the data plane writes comes out of
// Written, and what the test injects, as the kernel routing a packet into
// the device would, comes out of the data plane's reads. It implements the
// data plane's device interface.
type TUN struct {
	name    string
	mu      sync.Mutex
	mtu     int
	in, out chan []byte
	closed  chan struct{}
	once    sync.Once
	local   map[netip.AddrPort]*TUNConn // local.go
}

// NewTUN returns a device of that name and MTU.
func NewTUN(name string, mtu int) *TUN {
	return &TUN{name: name, mtu: mtu, in: make(chan []byte, 4096), out: make(chan []byte, 4096), closed: make(chan struct{})}
}

// Inject queues a packet for the data plane to read.
func (t *TUN) Inject(pkt []byte) {
	select {
	case t.in <- clone(pkt):
	case <-t.closed:
	}
}

// Written delivers the packets the data plane wrote, in order.
func (t *TUN) Written() <-chan []byte { return t.out }

// Read implements the device: at least one packet, then what is queued.
func (t *TUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	var p []byte
	select {
	case <-t.closed:
		return 0, net.ErrClosed
	case p = <-t.in:
	}
	n := 0
	for {
		sizes[n] = copy(bufs[n][offset:], p)
		n++
		if n == len(bufs) {
			return n, nil
		}
		select {
		case p = <-t.in:
		default:
			return n, nil
		}
	}
}

// Write implements the device.
func (t *TUN) Write(bufs [][]byte, offset int) (int, error) {
	for i, b := range bufs {
		if t.deliverLocal(b[offset:]) {
			continue
		}
		select {
		case <-t.closed:
			return i, net.ErrClosed
		case t.out <- clone(b[offset:]):
		default:
			return i, syscall.ENOBUFS // nobody is reading: as a full queue
		}
	}
	return len(bufs), nil
}

// BatchSize implements the device.
func (t *TUN) BatchSize() int { return 16 }

// Name implements the device.
func (t *TUN) Name() string { return t.name }

// MTU is the device's MTU.
func (t *TUN) MTU() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mtu
}

// SetMTU implements the device.
func (t *TUN) SetMTU(mtu int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mtu = mtu
	return nil
}

// Close implements the device.
func (t *TUN) Close() error {
	t.once.Do(func() { close(t.closed) })
	return nil
}

// UDP6 builds an IPv6 UDP packet with a payload of n octets, each the tag:
// test traffic whose copies a test can tell apart.
func UDP6(src, dst netip.Addr, sport, dport uint16, n int, tag byte) []byte {
	u := make([]byte, header.UDPSize+n)
	binary.BigEndian.PutUint16(u, sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	for i := header.UDPSize; i < len(u); i++ {
		u[i] = tag
	}
	header.UDP(u).SetChecksum(header.TransportChecksum(src, dst, header.ProtoUDP, u))
	return append(header.AppendIPv6(nil, src, dst, header.ProtoUDP, 64, len(u)), u...)
}

// Expect waits up to two seconds for the device to write a packet equal
// to want, skipping others, and reports whether it did.
func (t *TUN) Expect(want []byte) bool {
	deadline := time.After(2 * time.Second)
	for {
		select {
		case got := <-t.out:
			if bytes.Equal(got, want) {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

// Quiet reports whether the device writes nothing equal to p for d.
func (t *TUN) Quiet(p []byte, d time.Duration) bool {
	deadline := time.After(d)
	for {
		select {
		case got := <-t.out:
			if bytes.Equal(got, p) {
				return false
			}
		case <-deadline:
			return true
		}
	}
}
