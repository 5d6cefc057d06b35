package tunnel

import (
	"net/netip"
	"sync"
	"time"

	"nemod/binding"
	"nemod/nemo"
	"nemod/netio"
	"nemod/policy"
	"nemod/status"
)

// RouterPlane is what the mobile router's daemon needs of a data plane.
// MR, the userspace one on TUN, implements it; a kernel backend (ip6tnl
// and fou with policy routing, where a kernel has them) would too.
type RouterPlane interface {
	// SetUplink follows an uplink's device (interface index, 0: gone).
	SetUplink(i, index int) error
	// SetDevice moves an uplink to another device (devices.go).
	SetDevice(i int, dev string) error
	// SendSignal sends a Binding Update or probe through an uplink.
	SendSignal(i int, e nemo.Encap, pkt []byte) error
	// SetBindings installs the usable bindings.
	SetBindings(bs []binding.BindingStatus, linkMTU func(uplink int) int)
	// SetFlows and SetDirect install the flow table and local breakout.
	SetFlows(t *policy.Table)
	SetDirect(t *policy.Table) error
	// SetIPv4 installs the mobile network's IPv4 as the home agent granted
	// it (RFC 5555): what is forwarded and routed into the tunnel.
	SetIPv4(hoa netip.Addr, prefixes []netip.Prefix) error
	// SendLocal, SetLocal and SetMNPs are prefix delegation's
	// (local.go): the router's own packets through the tunnel, the
	// packets back for it, and prefixes that change while it runs.
	SendLocal(pkt []byte) error
	SetLocal(take func(pkt []byte) bool)
	SetMNPs(mnps []netip.Prefix) error
	// Heard is uplink i's liveness clock: when the home agent was last
	// heard through it; Clock is the whole path clock, sending included.
	Heard(i int) time.Time
	Clock(i int) binding.Clock
	Status() status.DataPlane
	Flows() status.Flows
	Traffic(i int) status.Traffic
	Close() error
	// SetHomeAgent and SendSignalTo follow the router to another home
	// agent (mrha.go).
	SetHomeAgent(v6, v4 netip.Addr)
	SendSignalTo(i int, e nemo.Encap, dst netip.Addr, pkt []byte) error
}

// AgentPlane is what the home agent's daemon needs of a data plane. HA,
// the userspace one on TUN, implements it.
type AgentPlane interface {
	SetRouters(routers []HARouter) error
	Update(hoa netip.Addr, prefixes []netip.Prefix, bindings []binding.Binding, flows *policy.Table)
	SetLivenessTimeout(d time.Duration)
	Status() status.DataPlane
	Flows(hoa netip.Addr) status.Flows
	Traffic(hoa netip.Addr, bid uint16) status.Traffic
	Close() error
	// Routers authorized at run time, and what a fleet's home agent
	// reports (fleet.go).
	AddRouter(r HARouter)
	RemoveRouter(hoa netip.Addr)
	Commit()
	Routed() []netip.Prefix
	Hairpin() status.Hairpin
	RouterTraffic(hoa netip.Addr) status.Traffic
}

var (
	_ RouterPlane = (*MR)(nil)
	_ AgentPlane  = (*HA)(nil)
)

func dataPlaneStatus(dev Device, mtu int, drops *Drops) status.DataPlane {
	return status.DataPlane{Backend: "userspace-tun", Kernel: KernelBackend(), Device: dev.Name(), MTU: mtu, Drops: drops.View(), DropsV4: drops.View4()}
}

// KernelBackend says whether a kernel tunnel backend could run here; the
// userspace one runs either way. The kernel's configuration is read once:
// status is asked for often, and the answer does not change while the
// kernel runs.
var KernelBackend = sync.OnceValue(func() string {
	switch has, known := netio.KernelCheck("CONFIG_IPV6_TUNNEL", "ip6_tunnel"); {
	case has:
		return "ip6_tunnel available (not used)"
	case !known:
		return "unknown: ip6_tunnel not loaded, and this build does not read the kernel's compressed configuration"
	}
	return "unavailable: no ip6_tunnel or fou in this kernel"
})
