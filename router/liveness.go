package router

import (
	"time"

	"nemod/nemo"
	"nemod/netio"
)

// The router daemon's side of path liveness: what it offers the home
// agent, and the probe answers the data plane hands to the event loop.

// DefaultOffer is what a router offers its home agent: it answers
// Heartbeats, and does UDP over IPv6 with offload where the kernel
// segments UDP.
func DefaultOffer() nemo.Caps {
	c := nemo.CapHeartbeat
	if netio.UDPSegmentation() {
		c |= nemo.CapUDP6Offload
	}
	return c
}

// probeAnswer is the home agent's answer to one of the router's probes,
// from the data plane's readers to the event loop.
type probeAnswer struct {
	uplink  int
	seq     uint32
	at      time.Time
	unbound bool
}

// queueAnswer hands a probe's answer to the event loop; when it is behind,
// the answer is dropped (the data plane's clock already heard it).
func (d *Daemon) queueAnswer(uplink int, seq uint32, at time.Time, unbound bool) {
	select {
	case d.probeAnswers <- probeAnswer{uplink, seq, at, unbound}:
	default:
		d.dropped.Add(1)
	}
}
