// Package ranet is the I/O shell of package ra: an ICMPv6 socket per LAN
// interface that sends the router advertisements and hears the router
// solicitations, and the router's own addresses put on the interface by
// netlink behind a small interface.
package ranet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/ipv6"

	"nemod/internal/sock"
	"nemod/ra"
)

// AddrSetter gives a LAN interface exactly the router addresses it should
// have (those this program manages; others are left alone).
type AddrSetter interface {
	SetAddrs(ifname string, want []netip.Prefix) error
}

// Netlink is the AddrSetter on a netlink handle. It removes only the
// addresses it added itself, so that an address a person configured stays.
type Netlink struct {
	H    *netlink.Handle // nil: the process's namespace
	mu   sync.Mutex
	ours map[string]map[netip.Prefix]bool
}

func (n *Netlink) handle() *netlink.Handle {
	if n.H != nil {
		return n.H
	}
	return &netlink.Handle{}
}

// SetAddrs implements AddrSetter.
func (n *Netlink) SetAddrs(ifname string, want []netip.Prefix) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	h := n.handle()
	link, err := h.LinkByName(ifname)
	if err != nil {
		return err
	}
	if n.ours == nil {
		n.ours = map[string]map[netip.Prefix]bool{}
	}
	ours := n.ours[ifname]
	if ours == nil {
		ours = map[netip.Prefix]bool{}
		n.ours[ifname] = ours
	}
	have, err := h.AddrList(link, netlink.FAMILY_V6)
	if err != nil {
		return err
	}
	present := map[netip.Prefix]bool{}
	for _, a := range have {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			bits, _ := a.Mask.Size()
			present[netip.PrefixFrom(ip, bits)] = true
		}
	}
	var errs []error
	for _, p := range want {
		if present[p] {
			continue
		}
		a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 128)}}
		if err := h.AddrAdd(link, a); err != nil {
			errs = append(errs, fmt.Errorf("add %v on %s: %w", p, ifname, err))
			continue
		}
		ours[p] = true
	}
	for p := range ours {
		if slices.Contains(want, p) {
			continue
		}
		a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 128)}}
		if err := h.AddrDel(link, a); err != nil && present[p] {
			errs = append(errs, fmt.Errorf("remove %v from %s: %w", p, ifname, err))
			continue
		}
		delete(ours, p)
	}
	return errors.Join(errs...)
}

// Conn is what a LAN needs of its ICMPv6 socket (Open makes the real
// one): WriteTo sends an ICMPv6 message, the kernel filling in its
// checksum.
type Conn interface {
	ReadRaw(b []byte) (int, *ipv6.ControlMessage, netip.Addr, error)
	WriteTo(b []byte, cm *ipv6.ControlMessage, dst netip.Addr) error
	Close() error
}

// icmpConn is the raw ICMPv6 socket of one interface.
type icmpConn struct {
	pc   *ipv6.PacketConn
	c    net.PacketConn
	zone string
}

func (c *icmpConn) ReadRaw(b []byte) (int, *ipv6.ControlMessage, netip.Addr, error) {
	n, cm, src, err := c.pc.ReadFrom(b)
	if err != nil {
		return n, cm, netip.Addr{}, err
	}
	var a netip.Addr
	if ia, ok := src.(*net.IPAddr); ok {
		a, _ = netip.AddrFromSlice(ia.IP)
		a = a.WithZone(ia.Zone)
	}
	return n, cm, a, nil
}

func (c *icmpConn) WriteTo(b []byte, cm *ipv6.ControlMessage, dst netip.Addr) error {
	_, err := c.pc.WriteTo(b, cm, &net.IPAddr{IP: dst.AsSlice(), Zone: c.zone})
	return err
}

func (c *icmpConn) Close() error { return c.c.Close() }

// linkLocal is the interface's link-local address, once DAD let it be
// used.
func linkLocal(ifi *net.Interface) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Is6() && ip.IsLinkLocalUnicast() {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("%s has no IPv6 link-local address", ifi.Name)
}

// NewLAN runs a LAN on any Conn (Open makes the real one).
func NewLAN(ifname string, conn Conn, adv *ra.Advertiser, addrs AddrSetter) *LAN {
	return &LAN{Ifname: ifname, Adv: adv, Addrs: addrs, conn: conn, upd: make(chan update, 8)}
}

// AllRouters is the group Router Solicitations go to (RFC 4861 §6.3.7).
var AllRouters = netip.MustParseAddr("ff02::2")

// LAN runs one interface's advertisements.
type LAN struct {
	Ifname string
	Adv    *ra.Advertiser
	Addrs  AddrSetter
	Now    func() time.Time // nil: time.Now
	OnErr  func(err error)  // nil: ignored; for the daemon's log
	conn   Conn
	upd    chan update
	mu     sync.Mutex
	counts Counters
}

// Counters count what a LAN did.
type Counters struct {
	Sent       uint64 `json:"sent"`
	SendErrors uint64 `json:"send_errors"`
	AddrErrors uint64 `json:"addr_errors"`
	Dropped    uint64 `json:"dropped"` // invalid solicitations
}

type update struct {
	subnets    []ra.Subnet
	registered bool
}

// Open makes the LAN's socket: raw ICMPv6 from its link-local address,
// hop limit 255 (ndp.Listen), joined to all-routers, taking only Router
// Solicitations. Call it in the network namespace of the interface; the
// socket stays there.
func Open(ifname string, adv *ra.Advertiser, addrs AddrSetter) (*LAN, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	ll, err := linkLocal(ifi)
	if err != nil {
		return nil, fmt.Errorf("ra on %s: %w", ifname, err)
	}
	c, err := sock.ListenIP("ip6:58", ll.WithZone(strconv.Itoa(ifi.Index)))
	if err != nil {
		return nil, fmt.Errorf("ra on %s: %w", ifname, err)
	}
	conn := &icmpConn{pc: ipv6.NewPacketConn(c), c: c, zone: ifname}
	fail := func(what string, err error) (*LAN, error) {
		c.Close()
		return nil, fmt.Errorf("ra on %s: %s: %w", ifname, what, err)
	}
	// Neighbor Discovery's hop limit both ways (RFC 4861 §6.1.2), RAs to
	// ff02::1 out of this interface only.
	if err := conn.pc.SetHopLimit(255); err != nil {
		return fail("hop limit", err)
	}
	if err := conn.pc.SetMulticastHopLimit(255); err != nil {
		return fail("multicast hop limit", err)
	}
	if err := conn.pc.SetMulticastInterface(ifi); err != nil {
		return fail("multicast interface", err)
	}
	if err := conn.pc.SetMulticastLoopback(false); err != nil {
		return fail("multicast loopback", err)
	}
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeRouterSolicitation)
	if err := conn.pc.SetICMPFilter(&f); err != nil {
		return fail("ICMPv6 filter", err)
	}
	if err := conn.pc.SetControlMessage(ipv6.FlagHopLimit, true); err != nil {
		return fail("hop limit reports", err)
	}
	if err := conn.pc.JoinGroup(ifi, &net.IPAddr{IP: AllRouters.AsSlice()}); err != nil {
		return fail("all-routers group", err)
	}
	return NewLAN(ifname, conn, adv, addrs), nil
}

// Update hands new subnets and the registration state to the Run loop.
func (l *LAN) Update(subnets []ra.Subnet, registered bool) {
	l.upd <- update{slices.Clone(subnets), registered}
}

// Counters returns a copy of the counters.
func (l *LAN) Counters() Counters {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts
}

func (l *LAN) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

type solicitation struct {
	b   []byte
	src netip.Addr
	hl  int
}

// Run owns the advertiser until ctx ends; then it sends the first final
// RA (router lifetime 0, prefixes deprecated) and closes the socket.
func (l *LAN) Run(ctx context.Context) error {
	in := make(chan solicitation, 16)
	rerr := make(chan error, 1)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, cm, src, err := l.conn.ReadRaw(buf)
			if err != nil {
				rerr <- err
				return
			}
			hl := -1
			if cm != nil {
				hl = cm.HopLimit
			}
			select {
			case in <- solicitation{append([]byte(nil), buf[:n]...), src.WithZone(""), hl}:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer l.conn.Close()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := time.Minute
		if next := l.Adv.Next(); !next.IsZero() {
			wait = min(max(time.Until(next), 0), time.Minute)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			l.apply(l.Adv.Stop(l.now()))
			return nil
		case err := <-rerr:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case u := <-l.upd:
			l.apply(l.Adv.Update(u.subnets, u.registered, l.now()))
		case s := <-in:
			out, err := l.Adv.ReceiveRS(s.b, s.src, s.hl, l.now())
			if err != nil {
				l.mu.Lock()
				l.counts.Dropped++
				l.mu.Unlock()
			}
			l.apply(out)
		case <-timer.C:
			l.apply(l.Adv.Tick(l.now()))
		}
	}
}

func (l *LAN) apply(out ra.Output) {
	if out.AddrsChanged && l.Addrs != nil {
		if err := l.Addrs.SetAddrs(l.Ifname, out.Addrs); err != nil {
			l.mu.Lock()
			l.counts.AddrErrors++
			l.mu.Unlock()
			if l.OnErr != nil {
				l.OnErr(err)
			}
		}
	}
	for _, s := range out.Send {
		err := l.conn.WriteTo(s.RA.Marshal(), nil, s.Dst)
		l.mu.Lock()
		if err != nil {
			l.counts.SendErrors++
		} else {
			l.counts.Sent++
		}
		l.mu.Unlock()
		if err != nil && l.OnErr != nil {
			l.OnErr(err)
		}
	}
}
