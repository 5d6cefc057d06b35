package tunnel

import (
	"sync/atomic"
	"time"

	"nemod/status"
)

// Stats count one binding's traffic and keep its liveness clock. They
// outlive the forwarding tables that point at them, so a table rebuild
// loses no count.
type Stats struct {
	TxPackets, TxBytes atomic.Uint64 // into the tunnel, towards the peer
	RxPackets, RxBytes atomic.Uint64 // out of the tunnel, from the peer
	TxPacketsV4        atomic.Uint64 // the IPv4 packets among TxPackets
	RxPacketsV4        atomic.Uint64 // and among RxPackets
	// lastRx is when anything last came from the peer over this binding
	// (Unix nanoseconds): traffic, a probe or its answer, signalling. It
	// is the binding's one liveness clock: the data plane keeps it, the
	// router's binding update list and the home agent's forwarding read it.
	lastRx atomic.Int64
	// Probed: the peer probes this binding (a nemod router does), so the
	// home agent may judge it by lastRx; a peer that never probes is not
	// judged, lest its idle bindings look dead.
	Probed atomic.Bool
	Probes atomic.Uint64 // probes answered (home agent) or sent (router)
}

// heard notes that something came from the peer at now (Unix ns).
func (s *Stats) heard(now int64) {
	if now > s.lastRx.Load() {
		s.lastRx.Store(now)
	}
}

// LastRx is when anything last came from the peer; zero if never.
func (s *Stats) LastRx() time.Time {
	if t := s.lastRx.Load(); t != 0 {
		return time.Unix(0, t)
	}
	return time.Time{}
}

func (s *Stats) received(n int, now int64) {
	s.RxPackets.Add(1)
	s.RxBytes.Add(uint64(n))
	s.heard(now)
}

func (s *Stats) sent(n int) {
	s.TxPackets.Add(1)
	s.TxBytes.Add(uint64(n))
}

// Traffic returns a snapshot of the counts.
func (s *Stats) Traffic() status.Traffic {
	if s == nil {
		return status.Traffic{}
	}
	return status.Traffic{TxPackets: s.TxPackets.Load(), TxBytes: s.TxBytes.Load(), RxPackets: s.RxPackets.Load(), RxBytes: s.RxBytes.Load(),
		TxPacketsV4: s.TxPacketsV4.Load(), RxPacketsV4: s.RxPacketsV4.Load()}
}
