package homeagent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"nemod/binding"
	"nemod/config"
	"nemod/control"
	"nemod/status"
)

// The Home Agent Switch (RFC 5142) for maintenance: `nemod ctl switch`
// tells routers to move to another home agent address, `nemod ctl drain`
// moves every router off this home agent (in a cluster, to the instances
// other members own, and then gives this member's instances up) before it
// is stopped. The messages are paced by a token bucket
// (MAX-HA-SWITCH-TRANSMIT-RATE, option switch_rate), retransmissions
// included.

// SwitchArgs are the arguments of the control socket's "switch" and
// "drain" commands.
type SwitchArgs struct {
	// Target is a router's home address or NAI, or "all" (switch only).
	Target string `json:"target,omitempty"`
	// To is where to: one address or more, in order of preference;
	// drain picks the other members' instances when none is given.
	To []string `json:"to,omitempty"`
	// Wait (seconds) bounds how long drain waits for the routers to move
	// (default 60).
	Wait float64 `json:"wait,omitempty"`
}

type switches struct {
	timer  *time.Timer
	tokens float64
	last   time.Time
	rate   float64
	// drain is the drain under way, answered when its routers moved.
	drain *drainCall
}

type drainCall struct {
	call     *control.Call
	reply    status.SwitchReply
	waiting  map[netip.Addr]string // by home address: name
	deadline time.Time
}

func (d *Daemon) switchesInit() {
	d.sw.timer = time.NewTimer(time.Hour)
	d.sw.timer.Stop()
	d.sw.rate = config.DefaultSwitchRate
	if d.cfg.Cluster != nil {
		d.sw.rate = d.cfg.Cluster.SwitchRate
	}
	d.sw.tokens = 1
}

// switchTargets parses the addresses to switch to.
func switchTargets(to []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range to {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() || a.Is4In6() {
			return nil, fmt.Errorf("%q is not a home agent's IPv6 address", s)
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, errors.New("no address to switch to (--to ADDRESS)")
	}
	return out, nil
}

// mine reports whether this home agent answers for a router: outside a
// cluster every router is; in one, those of the instances it owns.
func (d *Daemon) mine(e *binding.Entry) bool {
	return e.Registered() && (d.cl == nil || d.cl.owned[d.instanceOf(e)])
}

func (d *Daemon) switchCall(c *control.Call) {
	var a SwitchArgs
	if len(c.Args) > 0 {
		if err := json.Unmarshal(c.Args, &a); err != nil {
			c.Reply(nil, fmt.Errorf("switch: %w", err))
			return
		}
	}
	to, err := switchTargets(a.To)
	if err != nil {
		c.Reply(nil, fmt.Errorf("switch: %w", err))
		return
	}
	var es []*binding.Entry
	if a.Target == "all" {
		for _, e := range d.cache.Entries() {
			if d.mine(e) && !slices.Contains(to, d.instanceOf(e)) {
				es = append(es, e)
			}
		}
	} else if e := d.target(a.Target); e == nil {
		c.Reply(nil, fmt.Errorf("switch: no mobile router has home address or NAI %q", a.Target))
		return
	} else {
		es = append(es, e)
	}
	reply := status.SwitchReply{Switched: []string{}, Moved: []string{}, Unanswered: []string{}, To: a.To, HandedOver: []string{}}
	now := time.Now()
	for _, e := range es {
		if _, err := d.cache.Switch(e.Peer.HoA, to, now); err != nil {
			if a.Target != "all" {
				c.Reply(nil, fmt.Errorf("switch: %w", err))
				return
			}
			continue
		}
		reply.Switched = append(reply.Switched, e.Peer.Name)
	}
	d.log.Info("home agent switch", "routers", len(reply.Switched), "to", a.To)
	d.pollSwitches(now)
	c.Reply(reply, nil)
}

// drainCall serves `ctl drain`: every router this member answers for is
// switched away; once they moved (or the wait ran out) a cluster member
// gives its instances up and stands for none again.
func (d *Daemon) drainCall(c *control.Call) {
	var a SwitchArgs
	if len(c.Args) > 0 {
		if err := json.Unmarshal(c.Args, &a); err != nil {
			c.Reply(nil, fmt.Errorf("drain: %w", err))
			return
		}
	}
	if d.sw.drain != nil {
		c.Reply(nil, errors.New("drain: already draining"))
		return
	}
	var to []netip.Addr
	if len(a.To) > 0 {
		var err error
		if to, err = switchTargets(a.To); err != nil {
			c.Reply(nil, fmt.Errorf("drain: %w", err))
			return
		}
	} else if d.cl != nil {
		to = d.otherInstances()
	}
	if len(to) == 0 && d.cl == nil {
		c.Reply(nil, errors.New("drain: a home agent outside a cluster needs --to ADDRESS"))
		return
	}
	wait := 60 * time.Second
	if a.Wait > 0 {
		wait = time.Duration(a.Wait * float64(time.Second))
	}
	now := time.Now()
	dc := &drainCall{call: c, waiting: map[netip.Addr]string{}, deadline: now.Add(wait),
		reply: status.SwitchReply{Switched: []string{}, Moved: []string{}, Unanswered: []string{}, To: []string{}, HandedOver: []string{}}}
	for _, t := range to {
		dc.reply.To = append(dc.reply.To, t.String())
	}
	if len(to) > 0 {
		for _, e := range d.cache.Entries() {
			if !d.mine(e) {
				continue
			}
			// Spread the routers over the targets, each first in its
			// own list.
			order := slices.Clone(to)
			k := len(dc.waiting) % len(order)
			order = append(order[k:], order[:k]...)
			if _, err := d.cache.Switch(e.Peer.HoA, order, now); err != nil {
				continue
			}
			dc.waiting[e.Peer.HoA] = e.Peer.Name
			dc.reply.Switched = append(dc.reply.Switched, e.Peer.Name)
		}
	}
	d.sw.drain = dc
	d.log.Info("draining", "routers", len(dc.waiting), "to", dc.reply.To)
	d.pollSwitches(now)
}

// pollSwitches sends the Home Agent Switch messages due, as many as the
// rate allows, and finishes a drain whose routers moved.
func (d *Daemon) pollSwitches(now time.Time) {
	if !d.sw.last.IsZero() {
		d.sw.tokens = min(max(d.sw.rate, 1), d.sw.tokens+now.Sub(d.sw.last).Seconds()*d.sw.rate)
	}
	d.sw.last = now
	sends, done := d.cache.PollSwitches(now, int(d.sw.tokens))
	d.sw.tokens -= float64(len(sends))
	queued := 0
	for _, s := range sends {
		d.send(s, &queued)
	}
	d.flush(&queued)
	for _, sw := range done {
		d.log.Info("home agent switch done", "router", sw.Name, "moved", sw.Moved, "messages", sw.Sent)
		if dc := d.sw.drain; dc != nil {
			if name, ok := dc.waiting[sw.HoA]; ok {
				delete(dc.waiting, sw.HoA)
				if sw.Moved {
					dc.reply.Moved = append(dc.reply.Moved, name)
				} else {
					dc.reply.Unanswered = append(dc.reply.Unanswered, name)
				}
			}
		}
	}
	if dc := d.sw.drain; dc != nil && (len(dc.waiting) == 0 || !now.Before(dc.deadline)) {
		for _, name := range dc.waiting {
			dc.reply.Unanswered = append(dc.reply.Unanswered, name)
		}
		if d.cl != nil {
			for _, inst := range d.drainInstances() {
				dc.reply.HandedOver = append(dc.reply.HandedOver, inst.String())
			}
		}
		d.sw.drain = nil
		d.log.Info("drained", "moved", len(dc.reply.Moved), "unanswered", len(dc.reply.Unanswered), "handed_over", dc.reply.HandedOver)
		dc.call.Reply(dc.reply, nil)
	}
	d.armSwitches(now)
}

func (d *Daemon) armSwitches(now time.Time) {
	d.sw.timer.Stop()
	next := d.cache.NextSwitch()
	if !next.IsZero() && d.sw.tokens < 1 {
		// Wait for the next token too.
		if t := now.Add(time.Duration((1 - d.sw.tokens) / d.sw.rate * float64(time.Second))); t.After(next) {
			next = t
		}
	}
	if d.sw.drain != nil && (next.IsZero() || d.sw.drain.deadline.Before(next)) {
		next = d.sw.drain.deadline
	}
	if d.sw.drain != nil && len(d.cache.Switching()) > 0 {
		// Routers that move show it by their registrations elsewhere:
		// look again soon.
		if n := now.Add(200 * time.Millisecond); next.IsZero() || n.Before(next) {
			next = n
		}
	}
	if !next.IsZero() {
		d.sw.timer.Reset(max(time.Until(next), 0))
	}
}

// switchStatus lists the switches under way.
func (d *Daemon) switchStatus() []status.Switching {
	out := []status.Switching{}
	for _, sw := range d.cache.Switching() {
		s := status.Switching{Router: sw.Name, HomeAddress: sw.HoA.String(), From: sw.From.String(), Sent: sw.Sent}
		for _, t := range sw.To {
			s.To = append(s.To, t.String())
		}
		out = append(out, s)
	}
	return out
}
