package tunnel

import (
	"net/netip"
	"sync/atomic"
	"time"

	"nemod/header"
)

// A home agent in a cluster (package cluster): it answers at the home
// agent addresses of the instances it owns, and stands by for the others.
// Every router's bindings are installed either way, so that when the
// member takes an instance over its routers' traffic flows at once; but
// a router whose instance is not owned here is neither forwarded for (in
// either direction, probes unanswered) nor routed: its routes are
// announced only by its instance's owner. Each binding's packets leave
// from its instance's address (IPv6, or IPv4 for UDP over IPv4), never
// from the member's own: the router and the NAT in front of it see the
// same source whichever member sends.

// Instance is one home agent address pair of a cluster.
type Instance struct {
	Address   netip.Addr
	AddressV4 netip.Addr
}

type instanceState struct {
	Instance
	standby atomic.Bool
	cl      *clusterState
}

// forwarding reports whether the member forwards for the instance now:
// it owns it, and its lease surely holds. The lease's deadline is checked
// here, per packet, and not only by the event loop that takes the
// instance off when the member finds its lease lost: a loaded event loop
// runs late, and a member cut off from etcd must have stopped forwarding
// before the lease ends and another member takes the instance over.
func (i *instanceState) forwarding() bool {
	if i.standby.Load() {
		return false
	}
	f := i.cl.fence.Load()
	return f == nil || time.Now().UnixNano() < f.Load()
}

// clusterState is the instances; set once, before the readers start.
type clusterState struct {
	by   map[netip.Addr]*instanceState // by IPv6 address
	by4  map[netip.Addr]*instanceState
	list []*instanceState
	// fence is the member's lease deadline in Unix nanoseconds, 0 while
	// it holds no lease (SetFence); nil: no deadline is checked.
	fence atomic.Pointer[atomic.Int64]
}

func newClusterState(insts []Instance) *clusterState {
	if len(insts) == 0 {
		return nil
	}
	c := &clusterState{by: map[netip.Addr]*instanceState{}, by4: map[netip.Addr]*instanceState{}}
	for _, i := range insts {
		s := &instanceState{Instance: i, cl: c}
		s.standby.Store(true)
		c.by[i.Address] = s
		if i.AddressV4.IsValid() {
			c.by4[i.AddressV4] = s
		}
		c.list = append(c.list, s)
	}
	return c
}

// local reports whether a is one of the home agent's addresses.
func (h *HA) local(a netip.Addr) bool {
	if a == h.cfg.Address {
		return true
	}
	if h.cl == nil {
		return false
	}
	_, ok := h.cl.by[a]
	if !ok {
		_, ok = h.cl.by4[a]
	}
	return ok
}

// Local reports whether a is an address of the home agent: its own or an
// instance's (owned or not).
func (h *HA) Local(a netip.Addr) bool { return h.local(a) }

// bindAddr is what the raw sockets bind to: the home agent's address, or
// any in a cluster, where an instance's address is only there while the
// member owns it.
func (h *HA) bindAddr() netip.Addr {
	if h.cl != nil {
		return netip.Addr{}
	}
	return h.cfg.Address
}

// instanceOf is a router's instance, nil outside a cluster (or for an
// instance the cluster does not have).
func (h *HA) instanceOf(s *routerSlot) *instanceState {
	return s.inst.Load()
}

// isSignallingHere is isSignalling for any of the home agent's addresses.
func (h *HA) isSignallingHere(p []byte) bool {
	if h.cl == nil {
		return isSignalling(p, h.cfg.Address)
	}
	ip, err := header.ParseIPv6(p)
	return err == nil && h.local(ip.Dst()) && isSignalling(p, ip.Dst())
}

// fill sets a binding's source address and instance from its
// router's instance.
func (b *agentBinding) fill(inst *instanceState) {
	if inst == nil {
		return
	}
	b.inst = inst
	b.src = inst.Address
	if b.outer.Addr().Is4() {
		b.src = inst.AddressV4
	}
}

// onStandby reports whether a binding's instance is owned elsewhere, or
// by this member past its lease.
func (b *agentBinding) onStandby() bool { return b.inst != nil && !b.inst.forwarding() }

// active reports whether the slot's router is forwarded for here.
func (h *HA) active(s *routerSlot) bool {
	i := h.instanceOf(s)
	return i == nil || !i.standby.Load()
}

// SetRouterInstance says which instance a router registered with (its
// Binding Update's destination); the next Update follows it.
func (h *HA) SetRouterInstance(hoa, inst netip.Addr) {
	if s := h.slots[hoa]; s != nil && h.cl != nil {
		s.inst.Store(h.cl.by[inst])
	}
}

// SetActive starts (on) or stops forwarding for the routers of an
// instance, and announcing their routes.
func (h *HA) SetActive(inst netip.Addr, on bool) {
	if h.cl == nil {
		return
	}
	i := h.cl.by[inst]
	if i == nil || i.standby.Load() == !on {
		return
	}
	i.standby.Store(!on)
	for hoa, s := range h.slots {
		if s.inst.Load() != i {
			continue
		}
		old := s.view.Load()
		if old == nil {
			continue
		}
		v := *old
		v.announced = on
		s.view.Store(&v)
		h.announce(hoa, old, &v)
	}
}

// SetFence gives the data plane the member's lease deadline (Unix
// nanoseconds, 0 without a lease), which the member keeps current: past
// it, nothing is forwarded for any instance, whatever SetActive said last.
func (h *HA) SetFence(deadline *atomic.Int64) {
	if h.cl != nil {
		h.cl.fence.Store(deadline)
	}
}

// Active returns the instances this member forwards for.
func (h *HA) Active() []netip.Addr {
	if h.cl == nil {
		return nil
	}
	var out []netip.Addr
	for _, i := range h.cl.list {
		if !i.standby.Load() {
			out = append(out, i.Address)
		}
	}
	return out
}

// srcFor is where a packet to a router's binding leaves from: its
// instance's address, or the home agent's, whichever address the kernel
// would pick for the way out (the router, and a NAT in front of it, take
// only the address they sent to).
func (h *HA) srcFor(b *agentBinding, v6 bool) netip.Addr {
	if b != nil && b.src.IsValid() {
		return b.src
	}
	if v6 {
		return h.cfg.Address
	}
	return h.cfg.AddressV4
}

// ClusterPlane is what a cluster member's daemon needs of the data plane
// besides AgentPlane; HA implements it.
type ClusterPlane interface {
	SetRouterInstance(hoa, inst netip.Addr)
	SetActive(inst netip.Addr, on bool)
	SetFence(deadline *atomic.Int64)
	Active() []netip.Addr
	Local(a netip.Addr) bool
}

var _ ClusterPlane = (*HA)(nil)

// InstanceSystem is what a cluster member asks of its host besides
// AgentSystem: an instance's addresses on the TUN device and the routes
// for them (protocol 135, as the registered routers' routes) that the
// routing daemon announces. Both go with the device when the process
// dies, so that a member killed attracts no traffic.
type InstanceSystem interface {
	SetInstance(device string, inst Instance, on bool) error
}

// SetInstanceAddresses puts an instance's addresses on the data plane's
// device (on) or takes them off, where the host can (InstanceSystem).
func (h *HA) SetInstanceAddresses(inst Instance, on bool) error {
	is, ok := h.sys.(InstanceSystem)
	if !ok {
		return nil
	}
	return is.SetInstance(h.tun.Name(), inst, on)
}
