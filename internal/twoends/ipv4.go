package twoends

import (
	"net/netip"
	"sync"

	"nemod/router"
	"nemod/status"
)

// LAN4 records what the router gives its LAN's IPv4 host side: the
// assignments in order.
type LAN4 struct {
	mu      sync.Mutex
	applied []router.LANv4
	closed  bool
}

// Apply implements router.LAN4.
func (l *LAN4) Apply(a router.LANv4) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.applied = append(l.applied, a)
	return nil
}

// Status implements router.LAN4.
func (l *LAN4) Status() (string, *status.DHCPv4Leases) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.applied) == 0 || !l.applied[len(l.applied)-1].Address.IsValid() {
		return "", nil
	}
	a := l.applied[len(l.applied)-1]
	return a.Address.String(), nil
}

// Close implements router.LAN4.
func (l *LAN4) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return nil
}

// Last is the last assignment (zero before any).
func (l *LAN4) Last() router.LANv4 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.applied) == 0 {
		return router.LANv4{}
	}
	return l.applied[len(l.applied)-1]
}

// Count is the number of assignments applied.
func (l *LAN4) Count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.applied)
}

// MRIPv4 is the router's IPv4 status (nil when it asks for none).
func (e *Ends) MRIPv4() *status.RouterIPv4 { return e.MRStatus().IPv4 }

// HACar1 is car1 at the home agent.
func (e *Ends) HACar1() status.MobileRouter {
	for _, r := range e.HAStatus().MobileRouters {
		if r.Name == "car1" {
			return r
		}
	}
	return status.MobileRouter{}
}

// LAN4Host is an address on the lab's IPv4 mobile network prefix.
var LAN4Host = netip.MustParseAddr("10.201.5.10")
