package tunnel

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"nemod/netio"
)

// The router's own traffic through its tunnel, and mobile network prefixes
// that change while it runs: what prefix delegation (RFC 6276) needs of the
// data plane. The router's DHCPv6 relay sends from its home address to
// the home agent through the reverse tunnel (RFC 3963 §5.2) and hears the
// answers that come back through it; its delegated prefixes come and go
// with their leases.

// SendLocal sends an IPv6 packet the router built itself, from its home
// address, into the tunnel as if it came from the TUN device: through the
// binding(s) the flow table picks for it. Safe from any goroutine.
func (m *MR) SendLocal(pkt []byte) error {
	t := m.table.Load()
	targets, d, _ := t.fromNetwork(pkt, nil)
	if d != Forward {
		m.drops.Add(d)
		return fmt.Errorf("not sent: %v", d)
	}
	var firstErr error
	for _, b := range targets {
		batch := netio.NewBatch(1, len(pkt))
		batch.N[0] = copy(batch.Bufs[0], pkt)
		batch.Addr[0], batch.Src[0] = b.to, b.coa
		if _, err := b.conn.Send(batch, 1); err != nil {
			m.drops.Add(DropSendError)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		b.stats.sent(len(pkt), time.Now().UnixNano())
	}
	return firstErr
}

// SetLocal installs take, which sees each packet the home agent tunnels
// to the router before it goes into the TUN device, and keeps those that
// are for the router's own relay (true: it took it). nil removes it. take
// runs on the data plane's reader goroutines and must not block.
func (m *MR) SetLocal(take func(pkt []byte) bool) {
	if take == nil {
		m.local.Store(nil)
		return
	}
	m.local.Store(&take)
}

func (m *MR) takeLocal(p []byte) bool {
	f := m.local.Load()
	return f != nil && (*f)(p)
}

// SetMNPs replaces the mobile network prefixes: the sources the data plane
// forwards from the mobile network and the destinations it delivers to it,
// the host's policy routing and the sources local breakout admits.
func (m *MR) SetMNPs(mnps []netip.Prefix) error {
	if slices.Equal(mnps, m.mnps) {
		return nil
	}
	m.mnps = slices.Clone(mnps)
	m.rebuild()
	if err := m.sys.SetMNPs(m.mnps); err != nil {
		return err
	}
	return m.SetDirect(m.flows.table)
}
