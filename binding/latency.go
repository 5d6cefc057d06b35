package binding

import "time"

// maxAccepts bounds the registration round trips kept for a daemon that
// never takes them (no metrics): the newest are kept.
const maxAccepts = 64

// noteAccepted records the round trip of a Binding Update the home agent
// accepted: from its last transmission to the answer.
func (r *UpdateList) noteAccepted(rtt time.Duration) {
	if len(r.accepts) == maxAccepts {
		r.accepts = append(r.accepts[:0], r.accepts[1:]...)
	}
	r.accepts = append(r.accepts, rtt)
}

// TakeAccepted returns the round trips of the Binding Updates accepted
// since the last call, oldest first, and forgets them: the registration
// latency a daemon publishes.
func (r *UpdateList) TakeAccepted() []time.Duration {
	out := r.accepts
	r.accepts = nil
	return out
}
