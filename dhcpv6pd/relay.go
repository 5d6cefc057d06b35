package dhcpv6pd

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// RelayConfig is the home agent's relay to an external DHCPv6 server
// (option dhcpv6_server).
type RelayConfig struct {
	// Server is the external server, port 547.
	Server netip.AddrPort
	// LinkAddr is the link-address of the home agent's Relay-forward: its
	// address on the home link, which the mobile routers' home addresses
	// are on, so that a server picks the subnet by it (RFC 8415 §19.1.2).
	LinkAddr netip.Addr
	// LocalPort is the port the shell's socket is bound to. When it is not
	// 547 the Relay-forward carries a Relay Source Port option (RFC 8357)
	// so that the server answers there.
	LocalPort uint16
	// Routers are the home addresses of the routers with option pd '1';
	// Registered as in ServerConfig.
	Routers    map[netip.Addr]bool
	Registered func(hoa netip.Addr) bool
}

// RelayCounters count what the relay did.
type RelayCounters struct {
	FromRouters uint64 `json:"from_routers"`
	FromServer  uint64 `json:"from_server"`
	Malformed   uint64 `json:"malformed"`
	NotAllowed  uint64 `json:"not_allowed"`
	Unmatched   uint64 `json:"unmatched"` // replies for no router we relayed for
	Learned     uint64 `json:"learned"`
}

// pendingRelease remembers the prefixes of a Release on its way to the
// server: the Reply that confirms it need not list them.
type pendingRelease struct {
	prefixes []netip.Prefix
	until    time.Time
}

type relayKey struct {
	hoa netip.Addr
	xid [3]byte
}

// learned is a prefix the server delegated to a router, as seen in the
// Replies relayed back.
type learned struct {
	hoa                        netip.Addr
	preferredUntil, validUntil time.Time
}

// HARelay relays the mobile routers' Relay-forwards to an external DHCPv6
// server, wrapped once more (RFC 8415 §19.1.2), and the server's
// Relay-replies back, unwrapped once (§19.2); from the Replies it learns
// which router has which prefix until when, and emits the same events as
// Server. It does no I/O and is not safe for concurrent use.
type HARelay struct {
	cfg      RelayConfig
	ports    map[netip.Addr]uint16 // each router's relay's source port
	releases map[relayKey]pendingRelease
	prefixes map[netip.Prefix]learned
	RelayCounters
}

// releaseWait is how long a Release waits for the server's Reply: past
// REL_MAX_RC transmissions of it.
const releaseWait = 2 * time.Minute

// NewHARelay returns a relay for cfg.
func NewHARelay(cfg RelayConfig) (*HARelay, error) {
	if !cfg.Server.Addr().Is6() || !cfg.LinkAddr.Is6() {
		return nil, errors.New("dhcpv6pd: relay needs IPv6 server and link addresses")
	}
	if cfg.LocalPort == 0 {
		cfg.LocalPort = ServerPort
	}
	return &HARelay{cfg: cfg, ports: map[netip.Addr]uint16{}, releases: map[relayKey]pendingRelease{},
		prefixes: map[netip.Prefix]learned{}}, nil
}

// Handle takes a datagram that reached the relay's socket: from the
// server's address and port, a Relay-reply; from anyone else, a mobile
// router's Relay-forward.
func (h *HARelay) Handle(b []byte, from netip.AddrPort, now time.Time) (Output, error) {
	if from == h.cfg.Server {
		h.FromServer++
		return h.fromServer(b, now)
	}
	h.FromRouters++
	return h.fromRouter(b, from, now)
}

func (h *HARelay) allowed(hoa netip.Addr) bool {
	return h.cfg.Routers[hoa] && (h.cfg.Registered == nil || h.cfg.Registered(hoa))
}

func (h *HARelay) fromRouter(b []byte, from netip.AddrPort, now time.Time) (Output, error) {
	r, err := ParseRelay(b)
	if err != nil {
		h.Malformed++
		return Output{}, err
	}
	if r.Type != RelayForw {
		h.Malformed++
		return Output{}, fmt.Errorf("%w: %v from a router", ErrUnexpected, r.Type)
	}
	if r.LinkAddr != from.Addr() || !h.allowed(from.Addr()) {
		// A router without pd, or one naming another's home address:
		// dropped, as an external server's answer could not be vetted.
		h.NotAllowed++
		return Output{}, ErrNotAllowed
	}
	if r.HopCount+1 >= HopCountLimit {
		h.Malformed++
		return Output{}, ErrHopCount
	}
	m, err := ParseMsg(r.Inner)
	if err != nil {
		h.Malformed++
		return Output{}, err
	}
	hoa := from.Addr()
	h.ports[hoa] = from.Port()
	if m.Type == Release {
		var ps []netip.Prefix
		for _, ia := range m.IAPDs {
			for _, p := range ia.Prefixes {
				if l, ok := h.prefixes[p.Prefix]; ok && l.hoa == hoa {
					ps = append(ps, p.Prefix)
				}
			}
		}
		h.releases[relayKey{hoa, m.XID}] = pendingRelease{ps, now.Add(releaseWait)}
	}
	outer := Relay{Type: RelayForw, HopCount: r.HopCount + 1, LinkAddr: h.cfg.LinkAddr, PeerAddr: hoa, Inner: b}
	if h.cfg.LocalPort != ServerPort {
		outer.RelayPort, outer.HasRelayPort = h.cfg.LocalPort, true
	}
	return Output{Send: []Datagram{{To: h.cfg.Server, Data: outer.Marshal()}}}, nil
}

func (h *HARelay) fromServer(b []byte, now time.Time) (Output, error) {
	outer, err := ParseRelay(b)
	if err != nil {
		h.Malformed++
		return Output{}, err
	}
	if outer.Type != RelayRepl {
		h.Malformed++
		return Output{}, fmt.Errorf("%w: %v from the server", ErrUnexpected, outer.Type)
	}
	hoa := outer.PeerAddr
	port, ok := h.ports[hoa]
	if !ok || !h.cfg.Routers[hoa] {
		h.Unmatched++
		return Output{}, fmt.Errorf("%w: reply for %v", ErrNotOurs, hoa)
	}
	inner, err := ParseRelay(outer.Inner)
	if err != nil || inner.Type != RelayRepl || inner.LinkAddr != hoa {
		h.Malformed++
		if err == nil {
			err = fmt.Errorf("%w: inner message is not the router's Relay-reply", ErrMalformed)
		}
		return Output{}, err
	}
	m, err := ParseMsg(inner.Inner)
	if err != nil {
		h.Malformed++
		return Output{}, err
	}
	out := Output{Send: []Datagram{{To: netip.AddrPortFrom(hoa, port), Data: outer.Inner}}}
	if m.Type == Reply {
		h.learn(hoa, m, now, &out)
	}
	return out, nil
}

// learn follows a Reply on its way to a router (RFC 8415 §18.2.10.1's
// rules, as the router will apply them).
func (h *HARelay) learn(hoa netip.Addr, m *Msg, now time.Time, out *Output) {
	k := relayKey{hoa, m.XID}
	if rel, ok := h.releases[k]; ok {
		delete(h.releases, k)
		for _, p := range rel.prefixes {
			h.drop(p, hoa, Released, out)
		}
		return
	}
	if m.Status != nil && m.Status.Code != StatusSuccess {
		return
	}
	for _, ia := range m.IAPDs {
		if ia.Status != nil && ia.Status.Code != StatusSuccess || ia.T2 != 0 && ia.T1 > ia.T2 {
			continue
		}
		for _, p := range ia.Prefixes {
			if !p.Prefix.IsValid() || p.Prefix.Bits() == 0 || p.Preferred > p.Valid {
				continue
			}
			q := p.Prefix.Masked()
			if p.Valid == 0 {
				h.drop(q, hoa, Released, out)
				continue
			}
			if l, ok := h.prefixes[q]; ok && l.hoa != hoa {
				// The server moved the prefix to another router: the old
				// one loses it first.
				h.drop(q, l.hoa, Released, out)
			}
			l := learned{hoa, until(now, p.Preferred), until(now, p.Valid)}
			h.prefixes[q] = l
			h.Learned++
			out.Events = append(out.Events, Event{Kind: Delegated, Router: hoa, Prefix: q,
				PreferredUntil: l.preferredUntil, ValidUntil: l.validUntil})
			out.StateChanged = true
		}
	}
}

func (h *HARelay) drop(q netip.Prefix, hoa netip.Addr, k EventKind, out *Output) {
	if l, ok := h.prefixes[q]; ok && l.hoa == hoa {
		delete(h.prefixes, q)
		out.Events = append(out.Events, Event{Kind: k, Router: hoa, Prefix: q})
		out.StateChanged = true
	}
}

// Tick expires learned prefixes whose valid lifetime ended by now.
func (h *HARelay) Tick(now time.Time) Output {
	var out Output
	for q, l := range h.prefixes {
		if !now.Before(l.validUntil) {
			h.drop(q, l.hoa, Expired, &out)
		}
	}
	for k, r := range h.releases {
		if !now.Before(r.until) {
			delete(h.releases, k)
		}
	}
	sortEvents(out.Events)
	return out
}

// Next returns when Tick must next run; zero if never.
func (h *HARelay) Next() time.Time {
	var t time.Time
	for _, l := range h.prefixes {
		if t.IsZero() || l.validUntil.Before(t) {
			t = l.validUntil
		}
	}
	for _, r := range h.releases {
		if t.IsZero() || r.until.Before(t) {
			t = r.until
		}
	}
	return t
}

// Active returns the learned delegations as Delegated events, in prefix
// order.
func (h *HARelay) Active() []Event {
	var out []Event
	for q, l := range h.prefixes {
		out = append(out, Event{Kind: Delegated, Router: l.hoa, Prefix: q, PreferredUntil: l.preferredUntil, ValidUntil: l.validUntil})
	}
	sortEvents(out)
	return slices.Clip(out)
}
