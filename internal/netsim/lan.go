package netsim

import (
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// LANLink is a mobile network's link as the router's advertisements see
// it (a ranet.Conn and ranet.AddrSetter): it keeps the router
// advertisements sent on it and the addresses the router gave itself
// there, for a test to look at. Nothing arrives on it.
type LANLink struct {
	mu     sync.Mutex
	ras    []*ndp.RouterAdvertisement
	addrs  []netip.Prefix
	closed chan struct{}
	once   sync.Once
}

// NewLANLink returns an empty link.
func NewLANLink() *LANLink { return &LANLink{closed: make(chan struct{})} }

// ReadRaw blocks until the link is closed: no host solicits here.
func (l *LANLink) ReadRaw([]byte) (int, *ipv6.ControlMessage, netip.Addr, error) {
	<-l.closed
	return 0, nil, netip.Addr{}, net.ErrClosed
}

// WriteTo keeps a router advertisement, decoded by an independent NDP
// library.
func (l *LANLink) WriteTo(b []byte, _ *ipv6.ControlMessage, _ netip.Addr) error {
	m, err := ndp.ParseMessage(b)
	if err != nil {
		return err
	}
	if ra, ok := m.(*ndp.RouterAdvertisement); ok {
		l.mu.Lock()
		l.ras = append(l.ras, ra)
		l.mu.Unlock()
	}
	return nil
}

// Close closes the link's socket.
func (l *LANLink) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// SetAddrs keeps the router's addresses on the link.
func (l *LANLink) SetAddrs(_ string, want []netip.Prefix) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addrs = slices.Clone(want)
	return nil
}

// Addrs are the router's addresses on the link.
func (l *LANLink) Addrs() []netip.Prefix {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.addrs)
}

// LastRA is the last router advertisement sent (nil if none).
func (l *LANLink) LastRA() *ndp.RouterAdvertisement {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ras) == 0 {
		return nil
	}
	return l.ras[len(l.ras)-1]
}
