package homeagent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"nemod/aaa"
	"nemod/binding"
	"nemod/control"
	"nemod/nemo"
	"nemod/status"
)

// Binding revocation by the operator (`nemod ctl revoke`, RFC 5846) and by
// the RADIUS server (a Disconnect-Request, radius.go): the indication goes
// out at once, the bindings are removed, and the answer to the control
// call waits for the router's acknowledgement or the last retransmission.

// RevokeArgs are the arguments of the control socket's "revoke" command.
type RevokeArgs struct {
	// Target is the router's home address or NAI.
	Target string `json:"target"`
	// BIDs are the bindings to revoke; none: every binding.
	BIDs []uint16 `json:"bids,omitempty"`
	// Reason is the revocation trigger by name (RevokeReasons); default
	// administrative.
	Reason string `json:"reason,omitempty"`
}

// RevokeReasons names the revocation triggers `ctl revoke --reason` takes
// (RFC 5846 §6.1).
var RevokeReasons = map[string]uint8{
	"unspecified":    nemo.RevTriggerUnspecified,
	"administrative": nemo.RevTriggerAdministrative,
	"user":           nemo.RevTriggerUserInitiated,
	"access-network": nemo.RevTriggerAccessNetwork,
	"out-of-sync":    nemo.RevTriggerOutOfSync,
}

// revocations is the daemon's state of the revocations under way.
type revocations struct {
	timer *time.Timer
	// waiting are the control calls answered when their revocation is
	// done, by revocation ID.
	waiting               map[uint64]*control.Call
	started               uint64
	disconnects, notFound uint64
}

func (d *Daemon) revocationsInit() {
	d.rev.timer = time.NewTimer(time.Hour)
	d.rev.timer.Stop()
	d.rev.waiting = map[uint64]*control.Call{}
}

// revokeCall serves `ctl revoke`.
func (d *Daemon) revokeCall(c *control.Call) {
	var a RevokeArgs
	if len(c.Args) > 0 {
		if err := json.Unmarshal(c.Args, &a); err != nil {
			c.Reply(nil, fmt.Errorf("revoke: %w", err))
			return
		}
	}
	trigger := nemo.RevTriggerAdministrative
	if a.Reason != "" {
		t, ok := RevokeReasons[a.Reason]
		if !ok {
			c.Reply(nil, fmt.Errorf("revoke: unknown reason %q", a.Reason))
			return
		}
		trigger = t
	}
	e := d.target(a.Target)
	if e == nil {
		c.Reply(nil, fmt.Errorf("revoke: no mobile router has home address or NAI %q", a.Target))
		return
	}
	rev, err := d.revoke(e, a.BIDs, trigger, time.Now())
	if err != nil {
		c.Reply(nil, fmt.Errorf("revoke: %w", err))
		return
	}
	d.rev.waiting[rev.ID] = c
}

// target finds a router by home address or NAI.
func (d *Daemon) target(s string) *binding.Entry {
	if a, err := netip.ParseAddr(s); err == nil {
		return d.cache.Entry(a)
	}
	return d.cache.ByNAI(s)
}

// revoke sends the indication and follows the bindings' removal into the
// data plane.
func (d *Daemon) revoke(e *binding.Entry, bids []uint16, trigger uint8, now time.Time) (*binding.Revocation, error) {
	rev, res, err := d.cache.Revoke(e.Peer.HoA, bids, trigger, now)
	if err != nil {
		return nil, err
	}
	d.rev.started++
	queued := 0
	d.send(res, &queued)
	d.flush(&queued)
	d.log.Info("revoking bindings", "router", rev.Name, "home_address", rev.HoA, "bids", fmt.Sprint(rev.BIDs), "trigger", trigger)
	// A router whose every binding is revoked ends its accounting session
	// as reset by the operator.
	d.forwardCause(res.Changed, aaa.TerminateAdminReset)
	d.armRevocations()
	return rev, nil
}

func (d *Daemon) armRevocations() {
	d.rev.timer.Stop()
	if next := d.cache.NextRevocation(); !next.IsZero() {
		d.rev.timer.Reset(max(time.Until(next), 0))
	}
}

// pollRevocations retransmits the indications due and finishes those given
// up.
func (d *Daemon) pollRevocations(now time.Time) {
	sends, gaveUp := d.cache.PollRevocations(now)
	queued := 0
	for _, s := range sends {
		d.send(s, &queued)
	}
	d.flush(&queued)
	for _, rev := range gaveUp {
		d.log.Warn("revocation not acknowledged; the bindings are removed all the same", "router", rev.Name, "home_address", rev.HoA)
		d.revocationDone(rev)
	}
	d.armRevocations()
}

// revocationDone answers the control call waiting for rev, if any.
func (d *Daemon) revocationDone(rev *binding.Revocation) {
	if rev.Answered {
		d.log.Info("revocation acknowledged", "router", rev.Name, "home_address", rev.HoA, "status", rev.Status)
	}
	c := d.rev.waiting[rev.ID]
	if c == nil {
		return
	}
	delete(d.rev.waiting, rev.ID)
	c.Reply(status.Revocation{Router: rev.Name, HomeAddress: rev.HoA.String(), BIDs: slices.Clone(rev.BIDs), Trigger: rev.Trigger,
		Answered: rev.Answered, Status: rev.Status, Transmissions: rev.Sent}, nil)
}

func (d *Daemon) revocationStatus() status.Revocations {
	return status.Revocations{
		Revoked: d.rev.started, Sent: d.cache.RevocationsSent, Acknowledged: d.cache.RevocationAcks,
		Unanswered: d.cache.RevocationsUnanswered, Pending: d.cache.Revoking(),
		Disconnects: d.rev.disconnects, DisconnectsNotFound: d.rev.notFound,
	}
}

// closeRevocations answers the calls still waiting: the daemon stops.
func (d *Daemon) closeRevocations() {
	for id, c := range d.rev.waiting {
		c.Reply(nil, errors.New("revoke: the home agent is stopping"))
		delete(d.rev.waiting, id)
	}
}
