package dhcpv6pd

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/big"
	"net/netip"
	"slices"
	"time"
)

// Defaults of the delegating router's timers. A mobile router can be out of
// reach of its home agent for hours (at sea, in a tunnel, powered off
// overnight): a one-day valid lifetime keeps its LAN's addresses through
// that, and the prefix is only routed to it while it has bindings anyway.
// Four hours preferred, renewed at half of it: a Renew through the tunnel
// every two hours costs nothing, and a prefix the pool takes back (router
// removed) is deprecated on the LAN within four hours.
const (
	DefaultPreferred = 4 * time.Hour
	DefaultValid     = 24 * time.Hour
	DefaultT1        = DefaultPreferred / 2      // RFC 8415 §21.21: 0.5 × preferred
	DefaultT2        = DefaultPreferred * 8 / 10 // 0.8 × preferred
)

// offerHold is how long a prefix offered in an Advertise stays reserved for
// the router that was offered it, waiting for its Request.
const offerHold = 60 * time.Second

// Pool is a range of prefixes delegated in pieces of one length (config
// pd_pool).
type Pool struct {
	Name   string
	Prefix netip.Prefix // e.g. 2001:db8:200::/40
	Length int          // e.g. 56
}

// slots is how many prefixes the pool holds, capped at 2^24: the
// allocator probes slots and a bigger pool would not be used anyway.
func (p *Pool) slots() uint64 {
	return 1 << min(p.Length-p.Prefix.Bits(), 24)
}

// slot returns the i-th prefix of the pool.
func (p *Pool) slot(i uint64) netip.Prefix {
	a := p.Prefix.Addr().As16()
	n := new(big.Int).SetBytes(a[:])
	n.Or(n, new(big.Int).Lsh(new(big.Int).SetUint64(i), uint(128-p.Length)))
	var b [16]byte
	n.FillBytes(b[:])
	return netip.PrefixFrom(netip.AddrFrom16(b), p.Length)
}

// contains reports whether q is one of the pool's prefixes.
func (p *Pool) contains(q netip.Prefix) bool {
	return q.Bits() == p.Length && p.Prefix.Contains(q.Addr()) && q == q.Masked() &&
		p.slotIndexOK(q)
}

// slotIndexOK rejects the part of a pool above 2^24 slots, which slot()
// never hands out, so that a Rebind cannot claim it either.
func (p *Pool) slotIndexOK(q netip.Prefix) bool {
	if p.Length-p.Prefix.Bits() <= 24 {
		return true
	}
	a := q.Addr().As16()
	n := new(big.Int).SetBytes(a[:])
	n.Rsh(n, uint(128-p.Length))
	n.And(n, new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(p.Length-p.Prefix.Bits())), big.NewInt(1)))
	return n.Cmp(new(big.Int).SetUint64(p.slots())) < 0
}

// ServerConfig is the delegating router's configuration.
type ServerConfig struct {
	// DUID is the server's DUID, used when the stored state has none.
	DUID  DUID
	Pools []Pool
	// Routers are the mobile routers with option pd '1', by home address,
	// each with the name of its pool ("" = the first pool).
	Routers map[netip.Addr]string
	// Registered says whether a router has a binding now; nil: every
	// configured router counts as registered. RFC 6276 §3.1: a router
	// registers before it asks for prefixes.
	Registered func(hoa netip.Addr) bool
	// Lifetimes and timers sent; zero: the defaults above.
	Preferred, Valid, T1, T2 time.Duration
	// NoRapidCommit refuses two-message exchanges; by default a Solicit
	// with Rapid Commit gets a Reply (RFC 8415 §18.3.1: fine where one
	// server serves the link, as here).
	NoRapidCommit bool
	DNS           []netip.Addr // DNS servers offered (option 23); none if empty
}

// ServerLease is one delegation, active or kept after its end so that the
// same router gets the same prefix again.
type ServerLease struct {
	HoA            netip.Addr
	DUID           DUID
	IAID           [4]byte
	Prefix         netip.Prefix
	PreferredUntil time.Time
	ValidUntil     time.Time
	Active         bool // false: released or expired, kept for affinity
}

// ServerState is what the delegating router persists (option lease_file).
type ServerState struct {
	DUID   DUID
	Leases []ServerLease
}

// ServerCounters count what the delegating router did.
type ServerCounters struct {
	Received     uint64 `json:"received"`
	Malformed    uint64 `json:"malformed"`
	NotAllowed   uint64 `json:"not_allowed"`  // from a router without pd, or not registered
	WrongServer  uint64 `json:"wrong_server"` // Server ID of another server
	Unsupported  uint64 `json:"unsupported"`  // Decline, Confirm, Information-request...
	PoolExhaust  uint64 `json:"pool_exhausted"`
	Delegations  uint64 `json:"delegations"`
	Renewals     uint64 `json:"renewals"`
	Releases     uint64 `json:"releases"`
	Expirations  uint64 `json:"expirations"`
	RebindsTaken uint64 `json:"rebinds_taken"` // bindings created from a Rebind
}

type leaseKey struct {
	hoa  netip.Addr
	duid string
	iaid [4]byte
}

type offer struct {
	key   leaseKey
	until time.Time
}

// Server is the delegating router built into the home agent (RFC 6276 §3,
// RFC 8415 §18.3). It answers the Relay-forward messages the mobile
// routers' co-located relays send through their tunnels. It does no I/O
// and is not safe for concurrent use.
type Server struct {
	cfg      ServerConfig
	duid     DUID
	byKey    map[leaseKey]*ServerLease
	byPrefix map[netip.Prefix]*ServerLease
	offers   map[netip.Prefix]offer
	ServerCounters
}

// NewServer returns a delegating router with the stored state (nil: none).
func NewServer(cfg ServerConfig, st *ServerState) (*Server, error) {
	if len(cfg.Pools) == 0 {
		return nil, errors.New("dhcpv6pd: server without a pool")
	}
	for _, p := range cfg.Pools {
		if !p.Prefix.Addr().Is6() || p.Prefix != p.Prefix.Masked() || p.Length <= p.Prefix.Bits() || p.Length > 128 {
			return nil, fmt.Errorf("dhcpv6pd: pool %s: %v cannot be cut into /%d", p.Name, p.Prefix, p.Length)
		}
	}
	for hoa, pool := range cfg.Routers {
		if pool != "" && !slices.ContainsFunc(cfg.Pools, func(p Pool) bool { return p.Name == pool }) {
			return nil, fmt.Errorf("dhcpv6pd: router %v: no pool %q", hoa, pool)
		}
	}
	if cfg.Preferred == 0 {
		cfg.Preferred = DefaultPreferred
	}
	if cfg.Valid == 0 {
		cfg.Valid = DefaultValid
	}
	if cfg.T1 == 0 {
		cfg.T1 = cfg.Preferred / 2
	}
	if cfg.T2 == 0 {
		cfg.T2 = cfg.Preferred * 8 / 10
	}
	if cfg.Preferred > cfg.Valid || cfg.T1 > cfg.T2 {
		return nil, errors.New("dhcpv6pd: preferred > valid or T1 > T2")
	}
	s := &Server{cfg: cfg, duid: cfg.DUID, byKey: map[leaseKey]*ServerLease{},
		byPrefix: map[netip.Prefix]*ServerLease{}, offers: map[netip.Prefix]offer{}}
	if st != nil {
		if st.DUID != nil {
			s.duid = slices.Clone(st.DUID)
		}
		for _, l := range st.Leases {
			l := l
			k := leaseKey{l.HoA, string(l.DUID), l.IAID}
			if s.byPrefix[l.Prefix] != nil || s.byKey[k] != nil {
				continue // a damaged file: the first claim wins
			}
			s.byKey[k] = &l
			s.byPrefix[l.Prefix] = &l
		}
	}
	if err := checkDUID(s.duid); err != nil {
		return nil, fmt.Errorf("dhcpv6pd: server DUID: %w", err)
	}
	return s, nil
}

// DUID returns the server's DUID.
func (s *Server) DUID() DUID { return slices.Clone(s.duid) }

// State returns the state to persist, leases in prefix order (so that
// the same state encodes to the same bytes).
func (s *Server) State() *ServerState {
	st := &ServerState{DUID: slices.Clone(s.duid)}
	for _, l := range s.byPrefix {
		c := *l
		c.DUID = slices.Clone(l.DUID)
		st.Leases = append(st.Leases, c)
	}
	slices.SortFunc(st.Leases, func(a, b ServerLease) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
	return st
}

// Leases returns the active delegations of a router.
func (s *Server) Leases(hoa netip.Addr) []ServerLease {
	var out []ServerLease
	for _, l := range s.State().Leases {
		if l.Active && l.HoA == hoa {
			out = append(out, l)
		}
	}
	return out
}

func (s *Server) allowed(hoa netip.Addr) bool {
	if _, ok := s.cfg.Routers[hoa]; !ok {
		return false
	}
	return s.cfg.Registered == nil || s.cfg.Registered(hoa)
}

func (s *Server) pool(hoa netip.Addr) *Pool {
	name := s.cfg.Routers[hoa]
	for i := range s.cfg.Pools {
		if name == "" || s.cfg.Pools[i].Name == name {
			return &s.cfg.Pools[i]
		}
	}
	return nil
}

// ErrNotAllowed: the message came from a router that may not have prefixes.
var ErrNotAllowed = errors.New("dhcpv6pd: router not allowed prefix delegation")

// Handle takes a datagram that reached the home agent's port 547 from
// from. It must be a Relay-forward from a mobile router's co-located relay
// whose link-address is the router's home address, which must also be the
// datagram's source (the tunnel's ingress filter guarantees the source is
// the router's). Errors mean the datagram was dropped and nothing changed;
// a refusal the router should hear about is an answer, not an error.
func (s *Server) Handle(b []byte, from netip.AddrPort, now time.Time) (Output, error) {
	s.Received++
	r, err := ParseRelay(b)
	if err != nil {
		s.Malformed++
		return Output{}, err
	}
	if r.Type != RelayForw {
		s.Malformed++
		return Output{}, fmt.Errorf("%w: %v", ErrUnexpected, r.Type)
	}
	if r.LinkAddr != from.Addr() || r.HopCount >= HopCountLimit {
		s.NotAllowed++
		return Output{}, fmt.Errorf("%w: link-address %v from %v", ErrNotAllowed, r.LinkAddr, from.Addr())
	}
	m, err := ParseMsg(r.Inner)
	if err != nil {
		s.Malformed++
		return Output{}, err
	}
	if m.ClientID == nil || !m.HasElapsed {
		s.Malformed++
		return Output{}, fmt.Errorf("%w: client message without Client ID or Elapsed Time", ErrMalformed)
	}
	hoa := r.LinkAddr
	var out Output
	reply, err := s.answer(m, hoa, now, &out)
	if err != nil || reply == nil {
		return out, err
	}
	rr := Relay{Type: RelayRepl, HopCount: r.HopCount, LinkAddr: r.LinkAddr, PeerAddr: r.PeerAddr,
		InterfaceID: r.InterfaceID, Inner: reply.Marshal()}
	// To the port the relay sent from: 547 for a relay that follows RFC
	// 8415 §7.2, its own port for one with the Relay Source Port option.
	out.Send = append(out.Send, Datagram{To: from, Data: rr.Marshal()})
	return out, nil
}

func (s *Server) answer(m *Msg, hoa netip.Addr, now time.Time, out *Output) (*Msg, error) {
	switch m.Type {
	case Solicit, Request, Renew, Rebind, Release:
	default:
		// Decline and Confirm concern addresses, not delegated prefixes
		// (RFC 8415 §18.2.8, §18.3.3); Information-request is not served.
		s.Unsupported++
		return nil, fmt.Errorf("%w: %v", ErrUnexpected, m.Type)
	}
	switch m.Type {
	case Solicit, Rebind:
		if m.ServerID != nil {
			s.Malformed++
			return nil, fmt.Errorf("%w: %v with a Server ID", ErrMalformed, m.Type)
		}
	default:
		if !m.ServerID.Equal(s.duid) {
			s.WrongServer++
			return nil, fmt.Errorf("%w: Server ID %v", ErrNotOurs, m.ServerID)
		}
	}
	reply := &Msg{Type: Reply, XID: m.XID, ClientID: m.ClientID, ServerID: s.duid}
	rapid := m.Type == Solicit && m.RapidCommit && !s.cfg.NoRapidCommit
	if m.Type == Solicit && !rapid {
		reply.Type = Advertise
		// The only server of its routers: 255 makes them Request at
		// once instead of collecting Advertises for a second.
		reply.Preference, reply.HasPreference = 255, true
	}
	reply.RapidCommit = rapid
	if !s.allowed(hoa) {
		// Refused, and told so: NoPrefixAvail (RFC 8415 §18.3.9, RFC
		// 3633 §11.2) for a new delegation, NoBinding for the rest.
		s.NotAllowed++
		for _, ia := range m.IAPDs {
			st := &Status{Code: StatusNoPrefixAvail, Message: "no prefix delegation for this router"}
			if m.Type != Solicit && m.Type != Request {
				st = &Status{Code: StatusNoBinding, Message: "no prefix delegation for this router"}
			}
			reply.IAPDs = append(reply.IAPDs, IAPD{IAID: ia.IAID, Status: st})
		}
		return reply, nil
	}
	if len(s.cfg.DNS) > 0 && m.Type != Release {
		reply.DNS = s.cfg.DNS
	}
	for _, ia := range m.IAPDs {
		k := leaseKey{hoa, string(m.ClientID), ia.IAID}
		var res IAPD
		switch m.Type {
		case Solicit:
			if rapid {
				res = s.commit(k, ia, now, out)
			} else {
				res = s.offer(k, ia, now)
			}
		case Request:
			res = s.commit(k, ia, now, out)
		case Renew:
			res = s.extend(k, ia, now, out, false)
		case Rebind:
			res = s.extend(k, ia, now, out, true)
		case Release:
			res = s.release(k, ia, out)
		}
		reply.IAPDs = append(reply.IAPDs, res)
	}
	if m.Type == Release {
		reply.IAPDs = slices.DeleteFunc(reply.IAPDs, func(ia IAPD) bool { return ia.Status == nil })
		reply.Status = &Status{Code: StatusSuccess, Message: "released"}
	}
	return reply, nil
}

func (s *Server) lifetimes(l *ServerLease) Prefix {
	return Prefix{Prefix: l.Prefix, Preferred: uint32(s.cfg.Preferred / time.Second), Valid: uint32(s.cfg.Valid / time.Second)}
}

func (s *Server) granted(ia IAPD, l *ServerLease) IAPD {
	return IAPD{IAID: ia.IAID, T1: uint32(s.cfg.T1 / time.Second), T2: uint32(s.cfg.T2 / time.Second),
		Prefixes: []Prefix{s.lifetimes(l)}}
}

func noPrefix() IAPD {
	return IAPD{Status: &Status{Code: StatusNoPrefixAvail, Message: "pool exhausted"}}
}

// takenBy returns who else holds or is offered q now, if anyone.
func (s *Server) takenBy(q netip.Prefix, k leaseKey, now time.Time) bool {
	if l := s.byPrefix[q]; l != nil && l.Active && (leaseKey{l.HoA, string(l.DUID), l.IAID}) != k {
		return true
	}
	if o, ok := s.offers[q]; ok && o.key != k && now.Before(o.until) {
		return true
	}
	return false
}

// choose picks the prefix for k: its own lease's (active or not), the
// hint if free, a slot found from a hash of the DUID, or the slot least
// recently someone else's.
func (s *Server) choose(k leaseKey, ia IAPD, now time.Time) (netip.Prefix, bool) {
	pool := s.pool(k.hoa)
	if l := s.byKey[k]; l != nil && pool.contains(l.Prefix) && !s.takenBy(l.Prefix, k, now) {
		return l.Prefix, true
	}
	for _, h := range ia.Prefixes {
		if h.Prefix.IsValid() && pool.contains(h.Prefix) && !s.takenBy(h.Prefix, k, now) && s.byPrefix[h.Prefix] == nil {
			return h.Prefix, true
		}
	}
	n := pool.slots()
	f := fnv.New64a()
	f.Write([]byte(k.duid))
	f.Write(k.iaid[:])
	start := f.Sum64() % n
	// First a slot nobody ever had; failing that, the one whose old
	// owner's affinity is oldest.
	var oldest netip.Prefix
	var oldestAt time.Time
	for i := uint64(0); i < n; i++ {
		q := pool.slot((start + i) % n)
		if s.takenBy(q, k, now) {
			continue
		}
		l := s.byPrefix[q]
		if l == nil {
			return q, true
		}
		if !oldest.IsValid() || l.ValidUntil.Before(oldestAt) {
			oldest, oldestAt = q, l.ValidUntil
		}
	}
	return oldest, oldest.IsValid()
}

func (s *Server) offer(k leaseKey, ia IAPD, now time.Time) IAPD {
	if l := s.byKey[k]; l != nil && l.Active {
		return s.granted(ia, l)
	}
	q, ok := s.choose(k, ia, now)
	if !ok {
		s.PoolExhaust++
		res := noPrefix()
		res.IAID = ia.IAID
		return res
	}
	s.offers[q] = offer{k, now.Add(offerHold)}
	return s.granted(ia, &ServerLease{Prefix: q})
}

// bindTo makes q k's active lease from now.
func (s *Server) bindTo(k leaseKey, q netip.Prefix, now time.Time, out *Output) *ServerLease {
	if old := s.byKey[k]; old != nil && old.Prefix != q {
		if old.Active {
			out.Events = append(out.Events, Event{Kind: Released, Router: k.hoa, Prefix: old.Prefix})
		}
		delete(s.byPrefix, old.Prefix)
	}
	if prev := s.byPrefix[q]; prev != nil {
		delete(s.byKey, leaseKey{prev.HoA, string(prev.DUID), prev.IAID})
	}
	delete(s.offers, q)
	l := &ServerLease{HoA: k.hoa, DUID: DUID(k.duid), IAID: k.iaid, Prefix: q, Active: true}
	s.byKey[k], s.byPrefix[q] = l, l
	s.renew(l, now, out)
	return l
}

func (s *Server) renew(l *ServerLease, now time.Time, out *Output) {
	l.Active = true
	l.PreferredUntil = now.Add(s.cfg.Preferred).Truncate(time.Second)
	l.ValidUntil = now.Add(s.cfg.Valid).Truncate(time.Second)
	out.Events = append(out.Events, Event{Kind: Delegated, Router: l.HoA, Prefix: l.Prefix,
		PreferredUntil: l.PreferredUntil, ValidUntil: l.ValidUntil})
	out.StateChanged = true
}

func (s *Server) commit(k leaseKey, ia IAPD, now time.Time, out *Output) IAPD {
	q, ok := s.choose(k, ia, now)
	if !ok {
		s.PoolExhaust++
		res := noPrefix()
		res.IAID = ia.IAID
		return res
	}
	s.Delegations++
	return s.granted(ia, s.bindTo(k, q, now, out))
}

// extend handles one IA_PD of a Renew or Rebind (RFC 8415 §18.3.4,
// §18.3.5).
func (s *Server) extend(k leaseKey, ia IAPD, now time.Time, out *Output, rebind bool) IAPD {
	res := IAPD{IAID: ia.IAID, T1: uint32(s.cfg.T1 / time.Second), T2: uint32(s.cfg.T2 / time.Second)}
	l := s.byKey[k]
	if l != nil && !l.Active {
		l = nil
	}
	existed := l != nil
	if l == nil && rebind {
		// No binding, but a Rebind after a restart names the prefix the
		// router had: take it back if it is in the router's pool and
		// nobody else holds it, so that its LAN keeps its addresses.
		pool := s.pool(k.hoa)
		for _, p := range ia.Prefixes {
			if p.Prefix.IsValid() && pool.contains(p.Prefix) && !s.takenBy(p.Prefix, k, now) {
				s.RebindsTaken++
				l = s.bindTo(k, p.Prefix, now, out)
				break
			}
		}
	}
	if l == nil && (len(ia.Prefixes) == 0 || !rebind) {
		res.T1, res.T2 = 0, 0
		res.Status = &Status{Code: StatusNoBinding, Message: "no binding"}
		return res
	}
	for _, p := range ia.Prefixes {
		if l != nil && p.Prefix == l.Prefix {
			continue
		}
		// Not this router's: lifetimes 0 tell it to stop using it.
		res.Prefixes = append(res.Prefixes, Prefix{Prefix: p.Prefix})
	}
	if l != nil {
		if existed {
			s.Renewals++
			s.renew(l, now, out)
		}
		res.Prefixes = append([]Prefix{s.lifetimes(l)}, res.Prefixes...)
	}
	return res
}

func (s *Server) release(k leaseKey, ia IAPD, out *Output) IAPD {
	l := s.byKey[k]
	if l == nil || !l.Active {
		return IAPD{IAID: ia.IAID, Status: &Status{Code: StatusNoBinding, Message: "no binding"}}
	}
	l.Active = false
	s.Releases++
	out.Events = append(out.Events, Event{Kind: Released, Router: k.hoa, Prefix: l.Prefix})
	out.StateChanged = true
	return IAPD{IAID: ia.IAID}
}

// Revoke ends every delegation of a router at once: for a router whose
// option pd was switched off or that was removed from the configuration.
func (s *Server) Revoke(hoa netip.Addr) Output {
	var out Output
	for _, l := range s.byPrefix {
		if l.HoA == hoa && l.Active {
			l.Active = false
			out.Events = append(out.Events, Event{Kind: Released, Router: hoa, Prefix: l.Prefix})
			out.StateChanged = true
		}
	}
	sortEvents(out.Events)
	return out
}

// Tick expires the delegations whose valid lifetime ended by now.
func (s *Server) Tick(now time.Time) Output {
	var out Output
	for _, l := range s.byPrefix {
		if l.Active && !now.Before(l.ValidUntil) {
			l.Active = false
			s.Expirations++
			out.Events = append(out.Events, Event{Kind: Expired, Router: l.HoA, Prefix: l.Prefix})
			out.StateChanged = true
		}
	}
	for q, o := range s.offers {
		if !now.Before(o.until) {
			delete(s.offers, q)
		}
	}
	sortEvents(out.Events)
	return out
}

// Next returns when Tick must next run; zero if never.
func (s *Server) Next() time.Time {
	var t time.Time
	for _, l := range s.byPrefix {
		if l.Active && (t.IsZero() || l.ValidUntil.Before(t)) {
			t = l.ValidUntil
		}
	}
	for _, o := range s.offers {
		if t.IsZero() || o.until.Before(t) {
			t = o.until
		}
	}
	return t
}

// Active returns every active delegation as Delegated events: what the
// home agent applies to its binding cache at start.
func (s *Server) Active() []Event {
	var out []Event
	for _, l := range s.State().Leases {
		if l.Active {
			out = append(out, Event{Kind: Delegated, Router: l.HoA, Prefix: l.Prefix,
				PreferredUntil: l.PreferredUntil, ValidUntil: l.ValidUntil})
		}
	}
	return out
}

func sortEvents(ev []Event) {
	slices.SortFunc(ev, func(a, b Event) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
}
