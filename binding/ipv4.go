package binding

import (
	"net/netip"
	"slices"
	"time"

	"nemod/nemo"
)

// The home agent's side of RFC 5555's IPv4 home addresses and prefixes:
// each IPv4 Home Address option of a registration is answered, in its
// order, by an IPv4 Address Acknowledgement; what is granted is forwarded
// to the router while its IPv6 bindings last.

// EntryV4 is a mobile router's IPv4 registration.
type EntryV4 struct {
	HoA      netip.Addr     // its IPv4 home address; invalid if none
	Prefixes []netip.Prefix // its IPv4 mobile network prefixes
	// Dynamic: some of it came from the pool, whose lease capped the
	// lifetime granted.
	Dynamic bool
}

// PrefixesV4 is what the home agent forwards to the router over IPv4: its
// home address as a /32 and its prefixes; none while it has no binding.
func (e *Entry) PrefixesV4() []netip.Prefix {
	if !e.Registered() {
		return nil
	}
	var out []netip.Prefix
	if e.V4.HoA.IsValid() {
		out = append(out, netip.PrefixFrom(e.V4.HoA, 32))
	}
	return append(out, e.V4.Prefixes...)
}

// IPv4Claims are every configured router's static IPv4 home addresses
// and prefixes: what a pool must not assign.
func IPv4Claims(peers []Peer) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range peers {
		if p.HoAv4.IsValid() {
			out = append(out, netip.PrefixFrom(p.HoAv4, 32))
		}
		out = append(out, p.MNPsV4...)
	}
	return out
}

func sameV4(a, b *Peer) bool { return a.HoAv4 == b.HoAv4 && slices.Equal(a.MNPsV4, b.MNPsV4) }

// isPrefixRequest tells an option asking for a prefix from one naming the
// home address: the P flag, or a prefix length under 32 (in a refresh the
// P flag is to be ignored, and the length is the one assigned).
func isPrefixRequest(h nemo.IPv4HomeAddress) bool { return h.P || h.PrefixLen < 32 }

// ipv4 answers the IPv4 Home Address options of an authenticated
// registration (RFC 5555 §4.5): what the router may have, the
// acknowledgements in the options' order, and the lease that caps the
// lifetime when the pool gave any of it (0: no cap). A registration without
// the options ends its IPv4 binding (§4.4.2.1).
func (c *Cache) ipv4(e *Entry, bu *nemo.BindingUpdate, now time.Time) (EntryV4, []nemo.IPv4AddrAck, time.Duration) {
	var v EntryV4
	if len(bu.IPv4HoAs) == 0 {
		return v, nil, 0
	}
	p := e.Peer
	pool := c.cfg.Pool4
	acks := make([]nemo.IPv4AddrAck, 0, len(bu.IPv4HoAs))
	var granted []netip.Prefix // in this registration, not to be granted twice
	for _, h := range bu.IPv4HoAs {
		q, st, dyn := c.ipv4One(p, pool, h, granted, now)
		if st == nemo.IPv4StatusOK && !isPrefixRequest(h) && v.HoA.IsValid() {
			// A router has one IPv4 home address: a second request for
			// one gets none.
			st = nemo.IPv4StatusDynamicNotAvail
			if !h.Addr.IsUnspecified() {
				st = nemo.IPv4StatusIncorrectHoA
			}
		}
		ack := nemo.IPv4AddrAck{Status: st, Addr: h.Addr}
		if st != nemo.IPv4StatusOK {
			c.IPv4Refused++
			acks = append(acks, ack)
			continue
		}
		granted = append(granted, q)
		ack.Addr, ack.PrefixLen = q.Addr(), uint8(q.Bits())
		acks = append(acks, ack)
		v.Dynamic = v.Dynamic || dyn
		if isPrefixRequest(h) {
			v.Prefixes = append(v.Prefixes, q)
		} else {
			v.HoA = q.Addr()
		}
	}
	var lease time.Duration
	if v.Dynamic {
		lease = c.cfg.LeaseV4
		if lease <= 0 {
			lease = time.Hour
		}
		pool.Renew(p.HoA, now.Add(lease))
	}
	return v, acks, lease
}

// ipv4One decides one option: the address or prefix granted, the status,
// and whether it came from the pool.
func (c *Cache) ipv4One(p *Peer, pool *Pool4, h nemo.IPv4HomeAddress, granted []netip.Prefix, now time.Time) (netip.Prefix, uint8, bool) {
	prefix := isPrefixRequest(h)
	if h.Addr.IsUnspecified() {
		// A request for dynamic assignment: the router's configured claim
		// if it has one, else the pool's.
		if prefix {
			for _, q := range p.MNPsV4 {
				if !slices.Contains(granted, q) {
					return q, nemo.IPv4StatusOK, false
				}
			}
		} else if p.HoAv4.IsValid() {
			return netip.PrefixFrom(p.HoAv4, 32), nemo.IPv4StatusOK, false
		}
		if pool == nil {
			if p.HoAv4.IsValid() || len(p.MNPsV4) > 0 {
				// It has IPv4, just not what it asks for.
				return netip.Prefix{}, nemo.IPv4StatusDynamicNotAvail, false
			}
			return netip.Prefix{}, nemo.IPv4StatusProhibited, false
		}
		if prefix {
			q, ok := pool.Prefix(p.HoA, int(h.PrefixLen), granted, now)
			if !ok {
				return netip.Prefix{}, nemo.IPv4StatusDynamicNotAvail, false
			}
			return q, nemo.IPv4StatusOK, true
		}
		a, ok := pool.Address(p.HoA, now)
		if !ok {
			return netip.Prefix{}, nemo.IPv4StatusDynamicNotAvail, false
		}
		return netip.PrefixFrom(a, 32), nemo.IPv4StatusOK, true
	}
	q := h.Prefix()
	if !h.Addr.IsGlobalUnicast() || q.Masked() != q {
		return netip.Prefix{}, nemo.IPv4StatusInvalidAddr, false
	}
	// A static address or prefix, or one assigned earlier: it must be this
	// router's (§4.5).
	dyn := pool != nil && pool.Owns(p.HoA, q)
	switch {
	case slices.Contains(granted, q):
		return netip.Prefix{}, nemo.IPv4StatusInvalidAddr, false
	case prefix && (slices.Contains(p.MNPsV4, q) || dyn):
	case prefix:
		return netip.Prefix{}, nemo.IPv4StatusPrefixUnauth, false
	case h.Addr == p.HoAv4 || dyn:
	default:
		return netip.Prefix{}, nemo.IPv4StatusIncorrectHoA, false
	}
	return q, nemo.IPv4StatusOK, dyn
}
