package tunnel

import (
	"net/netip"
	"time"

	"nemod/binding"
	"nemod/nemo"
	"nemod/policy"
)

// RouterPlane is what the mobile router's daemon needs of a data plane.
// MR, the userspace one on TUN, implements it; a kernel backend (ip6tnl
// and fou with policy routing, where a kernel has them) would too.
type RouterPlane interface {
	// SetUplink follows an uplink's device (interface index, 0: gone).
	SetUplink(i, index int) error
	// SendSignal sends a Binding Update or probe through an uplink.
	SendSignal(i int, e nemo.Encap, pkt []byte) error
	// SetBindings installs the usable bindings.
	SetBindings(bs []binding.BindingStatus, linkMTU func(uplink int) int)
	// SetFlows and SetDirect install the flow table and local breakout.
	SetFlows(t *policy.Table)
	SetDirect(t *policy.Table) error
	// LastRx says when the home agent was last heard on an uplink.
	LastRx(i int) time.Time
	Status() Status
	Flows() FlowsView
	BindingStats(bid uint16) StatsView
	Close() error
}

// AgentPlane is what the home agent's daemon needs of a data plane. HA,
// the userspace one on TUN, implements it.
type AgentPlane interface {
	SetRouters(routers []HARouter) error
	Update(hoa netip.Addr, prefixes []netip.Prefix, bindings []binding.Binding, flows *policy.Table)
	Status() Status
	Flows(hoa netip.Addr) FlowsView
	BindingStats(hoa netip.Addr, bid uint16) StatsView
	Close() error
}

var (
	_ RouterPlane = (*MR)(nil)
	_ AgentPlane  = (*HA)(nil)
)

// Status is a data plane's part of `nemod ctl status`, on either role.
type Status struct {
	Backend string    `json:"backend"`
	Kernel  string    `json:"kernel_backend"`
	Device  string    `json:"device"`
	MTU     int       `json:"mtu"`
	Drops   DropsView `json:"drops"`
}

func userspaceStatus(tun *TUN, mtu int, drops *Drops) Status {
	return Status{Backend: "userspace-tun", Kernel: KernelBackend(), Device: tun.Name(), MTU: mtu, Drops: drops.View()}
}
