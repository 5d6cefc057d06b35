package binding

import (
	"strconv"

	"nemod/status"
)

// Status returns the home agent's counters in the shape both roles
// report. sent is the number of answers the daemon sent and queueDropped
// the signalling its readers could not queue: the daemon counts those.
func (c Counters) Status(sent, queueDropped uint64) status.Counters {
	return status.Counters{
		Sent: sent, Received: c.Received, Accepted: c.Accepted, Deregistrations: c.Deregistrations,
		Expired: c.Expired, QueueDropped: queueDropped, RateLimited: c.RejectsDropped,
		Rejected: map[string]uint64{
			"unknown_home_address": c.UnknownHomeAddr, "auth_failed": c.AuthFailed, "no_timestamp": c.NoTimestamp,
			"bad_timestamp": c.BadTimestamp, "seq_out_of_window": c.SeqOutOfWindow, "prefix_rejected": c.PrefixRejected,
			"prohibited": c.Prohibited, "bid_rejected": c.BIDRejected, "flows_refused": c.FlowsRefused,
		},
		Ignored: map[string]uint64{
			"malformed": c.Malformed, "bad_checksum": c.BadChecksum, "unknown_mh_type": c.UnknownMHType, "other": c.Ignored,
		},
	}
}

// Counters returns the mobile router's counters in the shape both roles
// report; queueDropped is the signalling its readers could not queue.
func (r *Router) Counters(queueDropped uint64) status.Counters {
	c := status.Counters{
		Sent: r.Sent, Received: r.Acked, Accepted: r.Accepted, Retransmits: r.Retransmits,
		Probes: r.Probes, DeadPaths: r.DeadPaths, Failovers: r.Failovers, QueueDropped: queueDropped,
		Rejected: map[string]uint64{}, Ignored: map[string]uint64{},
	}
	for st, n := range r.RejectedBy {
		c.Rejected["status_"+strconv.Itoa(int(st))] = n
	}
	return c
}
