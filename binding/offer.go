package binding

import (
	"slices"
	"time"

	"nemod/nemo"
)

// The negotiation of the fast encapsulation (see nemo/vendor.go): a
// router whose configuration offers UDP over IPv6 with segmentation
// offload (UpdateListConfig.Offer) says so in every Binding Update; a nemod
// home agent that supports it too says so in its acknowledgement. From
// then on the uplinks with encap 'auto' and IPv6 prefer UDP over IPv6
// to IPv6-in-IPv6: a registered one moves at once (a registration over
// UDP, through the path it will use), and IPv6-in-IPv6 stays its
// fallback when UDP gets no answer. An acknowledgement without the
// option (any other home agent, or one that stopped agreeing) puts
// IPv6-in-IPv6 first again; the next refresh moves back to it.

// negotiate follows what an accepting acknowledgement said of the offer.
func (r *UpdateList) negotiate(ba *nemo.BindingAck, now time.Time) {
	caps, _ := ba.NemodCaps()
	fast := r.cfg.Offer&caps&nemo.CapUDP6Offload != 0
	if fast != r.peerFast {
		r.peerFast = fast
		if fast {
			r.cfg.Logf("home agent agreed to UDP over IPv6 with offload: uplinks with encap auto use it")
		}
		for i := range r.links {
			r.reorder(i, now)
		}
	}
	for i, l := range r.links {
		if l.reorderLater && l.state == StateRegistered && l.reg == nil {
			l.reorderLater = false
			r.tryPreferred(i, now)
		}
	}
}

// tryPreferred has a registered binding on a fallback try the preferred
// encapsulation; the binding keeps its path until the home agent
// confirms.
func (r *UpdateList) tryPreferred(i int, now time.Time) {
	l := r.links[i]
	if l.cand > 0 && l.path.rec == nil {
		l.reg = &pending{kind: kindRegister, via: i, links: []int{i}, timeout: r.cfg.InitialTimeout, retryAt: now}
	}
}

// reorder puts uplink i's candidates in the order the negotiation says; a
// registered binding that is now on a fallback tries the preferred
// encapsulation at once.
func (r *UpdateList) reorder(i int, now time.Time) {
	l := r.links[i]
	if len(l.candidates) == 0 {
		return
	}
	want := r.candidates(l)
	if slices.Equal(want, l.candidates) || len(want) != len(l.candidates) {
		return
	}
	old := l.candidates
	l.candidates = want
	if c := slices.Index(want, l.encap); c >= 0 {
		l.cand = c
	}
	if p := l.reg; p != nil && p.kind == kindRegister && p.cand < len(old) {
		p.cand = max(slices.Index(want, old[p.cand]), 0)
	}
	switch {
	case l.state == StateRegistered && l.reg == nil:
		r.tryPreferred(i, now)
	case l.state == StateRegistering && l.path.rec == nil:
		// Its registration in flight lands on what is now a fallback:
		// move once it is acknowledged.
		l.reorderLater = true
	}
}
