package dhcpv6pd

import (
	"math/rand/v2"
	"time"
)

// params are one message type's retransmission variables (RFC 8415 §15,
// values from §7.6). MRD is not here: for Renew and Rebind it depends on
// the lease (until T2, until the last valid lifetime ends).
type params struct {
	IRT, MRT time.Duration
	MRC      int
	// firstAbove makes the first RT strictly greater than IRT (Solicit,
	// RFC 8415 §18.2.1), so that Advertises are collected for at least
	// SOL_TIMEOUT.
	firstAbove bool
}

var (
	solParams = params{IRT: 1 * time.Second, MRT: 3600 * time.Second, firstAbove: true}
	reqParams = params{IRT: 1 * time.Second, MRT: 30 * time.Second, MRC: 10}
	renParams = params{IRT: 10 * time.Second, MRT: 600 * time.Second}
	rebParams = params{IRT: 10 * time.Second, MRT: 600 * time.Second}
	relParams = params{IRT: 1 * time.Second, MRC: 4}
)

// solMaxDelay is SOL_MAX_DELAY: the first Solicit waits a random time up to
// this, so that routers that start together do not solicit together.
const solMaxDelay = time.Second

// retrans tracks one client message's transmissions.
type retrans struct {
	p        params
	start    time.Time // first transmission
	deadline time.Time // start+MRD; zero: none
	rt       time.Duration
	sent     int
	next     time.Time // when RT expires
}

// rnd returns RAND, uniform in [-0.1, +0.1], or in (0, +0.1] when positive.
func rnd(r *rand.Rand, positive bool) float64 {
	if positive {
		return (1 - r.Float64()) * 0.1 // Float64 is in [0,1): this is in (0, 0.1]
	}
	return r.Float64()*0.2 - 0.1
}

func scale(d time.Duration, f float64) time.Duration { return time.Duration(float64(d) * f) }

// begin records the first transmission at now.
func (x *retrans) begin(p params, now, deadline time.Time, r *rand.Rand) {
	*x = retrans{p: p, start: now, deadline: deadline, sent: 1}
	x.rt = p.IRT + scale(p.IRT, rnd(r, p.firstAbove))
	x.next = now.Add(x.rt)
}

// again records a retransmission at now.
func (x *retrans) again(now time.Time, r *rand.Rand) {
	x.sent++
	f := rnd(r, false)
	x.rt = 2*x.rt + scale(x.rt, f)
	if x.p.MRT != 0 && x.rt > x.p.MRT {
		x.rt = x.p.MRT + scale(x.p.MRT, f)
	}
	x.next = now.Add(x.rt)
}

// failed reports whether the exchange has failed by now: MRC transmissions
// made and the last one's RT over, or MRD over.
func (x *retrans) failed(now time.Time) bool {
	if !x.deadline.IsZero() && !now.Before(x.deadline) {
		return true
	}
	return x.p.MRC != 0 && x.sent >= x.p.MRC && !now.Before(x.next)
}

// wake is when the exchange next needs attention.
func (x *retrans) wake() time.Time {
	if !x.deadline.IsZero() && x.deadline.Before(x.next) {
		return x.deadline
	}
	return x.next
}

// elapsed is the Elapsed Time option's value at now.
func (x *retrans) elapsed(now time.Time) time.Duration { return now.Sub(x.start) }
