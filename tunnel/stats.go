package tunnel

import (
	"sync/atomic"
	"time"

	"nemod/binding"
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
	// lastData is when traffic last came from the peer, lastTx when it
	// last went to it; waiting when the first packet went after lastRx
	// (not after it: answered). Together with lastRx they are the path's
	// binding.Clock.
	lastData, lastTx, waiting atomic.Int64
	// The home agent's own probing of the binding (see liveness.go): the
	// watch and its cached thresholds belong to the goroutine that sends
	// towards the router; dead is the start of the episode that found the
	// path dead (zero: alive), read by every goroutine.
	watch     binding.Watch
	suspectNs int64
	probeSeq  uint32
	dead      atomic.Int64
	// The last probe the home agent sent, for the round-trip sample its
	// answer gives, and the samples so far.
	hbSeq        atomic.Uint32
	hbSent       atomic.Int64
	srtt, rttvar atomic.Int64
	rttSamples   atomic.Int64
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
	if now > s.lastData.Load() {
		s.lastData.Store(now)
	}
}

// sent counts a packet sent towards the peer at now (Unix ns, one reading
// per batch): its clock moves only when the time does, so a batch costs
// the shared cache line one write, not one per packet.
func (s *Stats) sent(n int, now int64) {
	s.TxPackets.Add(1)
	s.TxBytes.Add(uint64(n))
	if s.lastTx.Load() != now {
		s.lastTx.Store(now)
	}
	if w := s.waiting.Load(); w <= s.lastRx.Load() && w != now {
		s.waiting.Store(now)
	}
}

// Clock is the binding's path clock, for the liveness judgement.
func (s *Stats) Clock() binding.Clock {
	return binding.Clock{Heard: unixTime(s.lastRx.Load()), Data: unixTime(s.lastData.Load()),
		Sent: unixTime(s.lastTx.Load()), Waiting: unixTime(s.waiting.Load())}
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Traffic returns a snapshot of the counts.
func (s *Stats) Traffic() status.Traffic {
	if s == nil {
		return status.Traffic{}
	}
	return status.Traffic{TxPackets: s.TxPackets.Load(), TxBytes: s.TxBytes.Load(), RxPackets: s.RxPackets.Load(), RxBytes: s.RxBytes.Load(),
		TxPacketsV4: s.TxPacketsV4.Load(), RxPacketsV4: s.RxPacketsV4.Load()}
}
