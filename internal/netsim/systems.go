package netsim

import (
	"net/netip"
	"slices"
	"sync"

	"nemod/tunnel"
)

// RouterSystem is a mobile router's host side for tests: TUN devices from
// netsim, and the routing and breakout it was asked for, recorded.
type RouterSystem struct {
	mu       sync.Mutex
	tuns     map[string]*TUN
	routes   tunnel.NetworkRoutes
	routes4  tunnel.NetworkRoutes4
	breakout tunnel.Breakout
	closed   bool
	// NoForwarding makes Forwarding report false.
	NoForwarding bool
}

var _ tunnel.RouterSystem = (*RouterSystem)(nil)

// OpenTUN implements tunnel.RouterSystem.
func (s *RouterSystem) OpenTUN(name string, mtu int) (tunnel.Device, error) {
	return s.open(name, mtu), nil
}

func (s *RouterSystem) open(name string, mtu int) *TUN {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tuns == nil {
		s.tuns = map[string]*TUN{}
	}
	t := NewTUN(name, mtu)
	s.tuns[name] = t
	return t
}

// TUN returns the device of that name once the data plane opened it.
func (s *RouterSystem) TUN(name string) *TUN {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tuns[name]
}

// RouteNetwork implements tunnel.RouterSystem.
func (s *RouterSystem) RouteNetwork(r tunnel.NetworkRoutes) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes = r
	return nil
}

// SetMNPs implements tunnel.RouterSystem: Routes reports them from now on.
func (s *RouterSystem) SetMNPs(mnps []netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes.MNPs = append([]netip.Prefix(nil), mnps...)
	return nil
}

// Routes is what RouteNetwork was given, with the prefixes SetMNPs gave.
func (s *RouterSystem) Routes() tunnel.NetworkRoutes {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.routes
}

// Breakout is what SetBreakout was last given.
func (s *RouterSystem) Breakout() tunnel.Breakout {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.breakout
}

// Closed reports whether Close was called.
func (s *RouterSystem) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// SetBreakout implements tunnel.RouterSystem.
func (s *RouterSystem) SetBreakout(b tunnel.Breakout) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.breakout = b
	return nil
}

// Forwarding implements tunnel.RouterSystem.
func (s *RouterSystem) Forwarding() bool { return !s.NoForwarding }

// Close implements tunnel.RouterSystem.
func (s *RouterSystem) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// AgentSystem is a home agent's host side for tests.
type AgentSystem struct {
	RouterSystem
	prefixes, changed []netip.Prefix
	// RouteChanges counts the RouteChange calls.
	RouteChanges int
	// Link is where a cluster member's instance addresses go
	// (instance.go); instances those it holds.
	Link      *Link
	instances []tunnel.Instance
	masq4     []netip.Prefix
	masqTo    netip.Addr
}

var _ tunnel.AgentSystem = (*AgentSystem)(nil)

// RoutePrefixes implements tunnel.AgentSystem.
func (s *AgentSystem) RoutePrefixes(device string, prefixes []netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prefixes = append([]netip.Prefix(nil), prefixes...)
	return nil
}

// RouteChange implements tunnel.AgentSystem.
func (s *AgentSystem) RouteChange(device string, add, del []netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range add {
		if !slices.Contains(s.changed, p) {
			s.changed = append(s.changed, p)
		}
	}
	s.changed = slices.DeleteFunc(s.changed, func(p netip.Prefix) bool { return slices.Contains(del, p) })
	s.RouteChanges++
	return nil
}

// Prefixes returns what is routed into the device: what RoutePrefixes was
// last given, and what RouteChange added and did not remove.
func (s *AgentSystem) Prefixes() []netip.Prefix {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append(slices.Clone(s.prefixes), s.changed...)
}
