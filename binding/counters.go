package binding

import (
	"maps"
	"strconv"

	"nemod/status"
)

// Status returns the home agent's counters in the shape both roles
// report. sent is the number of answers the daemon sent and queueDropped
// the signalling its readers could not queue: the daemon counts those.
// Rejected holds, beside the refused Binding Updates, the flow binding,
// BID and IPv4 home address options refused inside accepted ones.
func (c Counters) Status(sent, queueDropped uint64) status.Counters {
	rejected := c.Rejected()
	rejected["flows_refused"], rejected["bids_refused"], rejected["ipv4_refused"] = c.FlowsRefused, c.BIDsRefused, c.IPv4Refused
	return status.Counters{
		Sent: sent, Received: c.Received, Accepted: c.Accepted, Deregistrations: c.Deregistrations,
		Expired: c.Expired, QueueDropped: queueDropped, RateLimited: c.RejectsDropped,
		Rejected: rejected, Ignored: c.NotActedOn(),
	}
}

// Counters returns the mobile router's counters in the shape both roles
// report; queueDropped is the signalling its readers could not queue.
func (r *UpdateList) Counters(queueDropped uint64) status.Counters {
	c := status.Counters{
		Sent: r.Sent, Received: r.Received, Accepted: r.Accepted, Retransmits: r.Retransmits,
		Probes: r.Probes, DeadPaths: r.DeadPaths, Failovers: r.Failovers, QueueDropped: queueDropped,
		Rejected: map[string]uint64{}, Ignored: maps.Clone(r.IgnoredBy),
	}
	if c.Ignored == nil {
		c.Ignored = map[string]uint64{}
	}
	for st, n := range r.RejectedBy {
		c.Rejected["status_"+strconv.Itoa(int(st))] = n
	}
	for st, n := range r.RejectedV4 {
		c.Rejected["ipv4_status_"+strconv.Itoa(int(st))] = n
	}
	return c
}
