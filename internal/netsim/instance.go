package netsim

import (
	"net/netip"
	"slices"

	"nemod/tunnel"
)

// A cluster's instance addresses move between the members' hosts: the
// owner holds them on its link (the one its host reaches the network
// through), so that packets for them reach it and no other.

// AddAddr gives the link an address, taking it from whichever link had
// it.
func (l *Link) AddAddr(a netip.Addr) {
	n := l.host.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if o := n.owners[a]; o != nil && o != l {
		o.addrs = slices.DeleteFunc(o.addrs, func(x netip.Addr) bool { return x == a })
	}
	if !slices.Contains(l.addrs, a) {
		l.addrs = append(l.addrs, a)
	}
	n.owners[a] = l
}

// RemoveAddr takes an address off the link, if it has it.
func (l *Link) RemoveAddr(a netip.Addr) {
	n := l.host.net
	n.mu.Lock()
	defer n.mu.Unlock()
	l.addrs = slices.DeleteFunc(l.addrs, func(x netip.Addr) bool { return x == a })
	if n.owners[a] == l {
		delete(n.owners, a)
	}
}

// Addrs are the link's addresses.
func (l *Link) Addrs() []netip.Addr {
	n := l.host.net
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(l.addrs)
}

var _ tunnel.InstanceSystem = (*AgentSystem)(nil)

// SetInstance implements tunnel.InstanceSystem on the agent's Link (none:
// nothing moves).
func (s *AgentSystem) SetInstance(device string, inst tunnel.Instance, on bool) error {
	if s.Link == nil {
		return nil
	}
	for _, a := range []netip.Addr{inst.Address, inst.AddressV4} {
		if !a.IsValid() {
			continue
		}
		if on {
			s.Link.AddAddr(a)
		} else {
			s.Link.RemoveAddr(a)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.instances = slices.DeleteFunc(s.instances, func(i tunnel.Instance) bool { return i.Address == inst.Address })
	if on {
		s.instances = append(s.instances, inst)
	}
	return nil
}

// Instances are the instances whose addresses the host holds.
func (s *AgentSystem) Instances() []netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []netip.Addr
	for _, i := range s.instances {
		out = append(out, i.Address)
	}
	return out
}

// Close implements tunnel.AgentSystem: as the kernel removes a TUN
// device's addresses with it, the instances' addresses go.
func (s *AgentSystem) Close() error {
	s.mu.Lock()
	insts := s.instances
	s.instances = nil
	s.mu.Unlock()
	for _, i := range insts {
		if s.Link != nil {
			s.Link.RemoveAddr(i.Address)
			if i.AddressV4.IsValid() {
				s.Link.RemoveAddr(i.AddressV4)
			}
		}
	}
	return s.RouterSystem.Close()
}

// RemoveAddr takes an address off whichever of the host's links has it.
func (h *Host) RemoveAddr(a netip.Addr) {
	h.net.mu.Lock()
	links := slices.Clone(h.links)
	h.net.mu.Unlock()
	for _, l := range links {
		l.RemoveAddr(a)
	}
}
