package tunnel

import (
	"errors"
	"net/netip"
	"slices"

	"nemod/nemo"
	"nemod/netio"
)

// The mobile router's home agents: the one its traffic goes to changes
// when the router moves to another (a failover, a Home Agent Switch:
// package binding's home agent list), and what comes from any of them is
// taken, since the one left forwards until the router de-registered
// there.

// mrHA is the home agent in use and every one whose packets are taken.
type mrHA struct {
	v6, v4 netip.Addr
	known  []netip.Addr
}

func (m *MR) homeAgentInit() {
	h := &mrHA{v6: m.cfg.HA, v4: m.cfg.HAv4}
	for _, a := range append([]netip.Addr{m.cfg.HA, m.cfg.HAv4}, m.cfg.HomeAgents...) {
		if a.IsValid() && !slices.Contains(h.known, a) {
			h.known = append(h.known, a)
		}
	}
	m.ha.Store(h)
}

// cur is the home agent in use.
func (m *MR) cur() *mrHA { return m.ha.Load() }

// fromHA reports whether a packet's source is one of the home agents.
func (m *MR) fromHA(a netip.Addr) bool { return slices.Contains(m.ha.Load().known, a.Unmap()) }

// anyV4 reports whether some home agent has an IPv4 address.
func (m *MR) anyV4() bool {
	for _, a := range m.ha.Load().known {
		if a.Is4() {
			return true
		}
	}
	return false
}

// SetHomeAgent makes the home agent at v6 (and v4, for IPv4 paths) the
// one the mobile network's traffic goes to.
func (m *MR) SetHomeAgent(v6, v4 netip.Addr) {
	old := m.ha.Load()
	h := &mrHA{v6: v6, v4: v4, known: slices.Clone(old.known)}
	for _, a := range []netip.Addr{v6, v4} {
		if a.IsValid() && !slices.Contains(h.known, a) {
			h.known = append(h.known, a)
		}
	}
	m.ha.Store(h)
	m.rebuild()
}

// SendSignalTo is SendSignal to a given home agent address (IPv6, or IPv4
// for UDP over IPv4): the de-registration from the one left.
func (m *MR) SendSignalTo(i int, e nemo.Encap, dst netip.Addr, pkt []byte) error {
	if e == nemo.EncapIPv6 || !dst.IsValid() {
		return m.SendSignal(i, e, pkt)
	}
	s := m.uplinks[i].socks
	if s == nil {
		return errors.New("device does not exist")
	}
	c := s.udp6
	if e == nemo.EncapUDP4 {
		c = s.udp4
	}
	if c == nil {
		return errors.New("no socket for that home agent")
	}
	b := netio.NewBatch(1, len(pkt))
	b.N[0] = copy(b.Bufs[0], pkt)
	b.Addr[0] = netip.AddrPortFrom(dst, nemo.UDPPort)
	_, err := c.Send(b, 1)
	return err
}
