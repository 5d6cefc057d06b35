package binding

import (
	"errors"
	"net/netip"
	"slices"
	"time"

	"nemod/nemo"
)

// Mobile routers the configuration does not name, authorized by a RADIUS
// server (HAConfig.Authorize): the cache asks the daemon to authorize
// them, and the daemon installs each authorized router as a peer of its
// own (AddPeer) for as long as the authorization lasts.

// AuthRequest is a Binding Update waiting for its router's authorization:
// from a home address no peer has, identified by a NAI (RFC 4283).
type AuthRequest struct {
	NAI string
	HoA netip.Addr
	CoA netip.Addr // where the router is: the source of the Binding Update's path
}

// ReasonNeedsAuth counts the Binding Updates held for their router's
// authorization: the daemon asks, and handles them again with Retry once
// the answer is known (or drops them: the router retransmits).
const ReasonNeedsAuth = "needs_authorization"

var (
	errNeedsAuth = errors.New("mobile router not yet authorized")
	// ErrStaticPeer is AddPeer's answer for a home address or NAI the
	// configuration gives a router of its own: that one takes precedence.
	ErrStaticPeer = errors.New("home address or NAI belongs to a configured mobile router")
)

// needsAuth reports what to ask for a BU from an unknown home address, or
// nil when it is to be refused as before (no authorization configured, a
// home address outside the home prefix, no NAI).
func (c *Cache) needsAuth(p *nemo.Packet, arr Arrival, bu *nemo.BindingUpdate, hoa netip.Addr) *AuthRequest {
	if !c.cfg.Authorize || !c.cfg.HomePrefix.Contains(hoa) || hoa == c.cfg.Address ||
		!bu.HasMNID || bu.MNIDSubtype != nemo.MNIDSubtypeNAI || len(bu.MNID) == 0 {
		return nil
	}
	coa := p.Src
	if arr.Encap.UDP() {
		coa = arr.Outer.Addr()
	}
	return &AuthRequest{NAI: string(bu.MNID), HoA: hoa, CoA: coa}
}

// Retry handles again a Binding Update that HandlePacket held for
// authorization (ReasonNeedsAuth), now that its router is a peer: it is
// counted once, under what happens to it this time.
func (c *Cache) Retry(pkt []byte, arr Arrival, now time.Time) Result {
	c.uncountHeld()
	return c.HandlePacket(pkt, arr, now)
}

// Refuse answers a Binding Update held for authorization with status 129
// (administratively prohibited, RFC 6275 §6.1.8): the RADIUS server
// refused its router, or the authorization was unusable. The answer is not
// authenticated: the home agent has no key for the router.
func (c *Cache) Refuse(pkt []byte, arr Arrival, why error, now time.Time) Result {
	c.uncountHeld()
	c.Received++
	r := c.refuse(pkt, arr, why, now)
	*c.counter(r.Reason)++
	return r
}

func (c *Cache) refuse(pkt []byte, arr Arrival, why error, now time.Time) Result {
	p, err := nemo.ParsePacket(pkt)
	if err != nil {
		return Result{Err: err, Reason: ReasonMalformed}
	}
	bu := &c.bu
	if err := nemo.Unmarshal(p.MH, bu); err != nil {
		return Result{Err: err, Reason: ReasonMalformed}
	}
	return c.reject(nil, &p, arr, bu, nemo.StatusProhibited, bu.Timestamp, why, ReasonProhibited, now)
}

// uncountHeld takes back the counting of a held Binding Update, which is
// then counted by what is done with it.
func (c *Cache) uncountHeld() {
	if c.NeedsAuth > 0 {
		c.NeedsAuth--
		c.Received--
	}
}

// AddPeer installs or renews a mobile router authorized until until:
// Binding Update lifetimes are capped by it. A router that stays with the
// same key, SPI and prefixes keeps its bindings; otherwise it must
// register again. A NAI that moves to another home address leaves the old
// one. It returns the entries whose forwarding state changed.
func (c *Cache) AddPeer(p Peer, until time.Time) ([]*Entry, error) {
	if e := c.entries[p.HoA]; e != nil && !e.dynamic {
		return nil, ErrStaticPeer
	}
	if p.NAI != "" && c.staticNAI[p.NAI] {
		return nil, ErrStaticPeer
	}
	var changed []*Entry
	if old := c.byNAI(p.NAI); old != nil && old.Peer.HoA != p.HoA {
		if e := c.RemovePeer(old.Peer.HoA); e != nil {
			changed = append(changed, e)
		}
	}
	np := p
	np.MNPs = slices.Clone(p.MNPs)
	np.Key = slices.Clone(p.Key)
	if old := c.entries[p.HoA]; old != nil {
		same := old.Peer.SPI == p.SPI && string(old.Peer.Key) == string(p.Key) && slices.Equal(old.Peer.MNPs, p.MNPs)
		if same {
			old.Peer, old.authUntil = &np, until
			c.nais[np.NAI] = old
			return changed, nil
		}
		if old.Registered() {
			old.Bindings, old.MNPs = old.Bindings[:0], old.MNPs[:0]
			changed = append(changed, old)
		}
	}
	e := &Entry{Peer: &np, dynamic: true, authUntil: until}
	c.entries[p.HoA] = e
	if np.NAI != "" {
		c.nais[np.NAI] = e
	}
	return changed, nil
}

// RemovePeer removes a router AddPeer installed (its authorization lapsed
// or was revoked) and returns its entry when it had bindings, for the data
// plane to follow; nil otherwise. Configured routers stay.
func (c *Cache) RemovePeer(hoa netip.Addr) *Entry {
	e := c.entries[hoa]
	if e == nil || !e.dynamic {
		return nil
	}
	delete(c.entries, hoa)
	if c.nais[e.Peer.NAI] == e {
		delete(c.nais, e.Peer.NAI)
	}
	if !e.Registered() {
		return nil
	}
	e.Bindings, e.MNPs = e.Bindings[:0], e.MNPs[:0]
	return e
}

// Authorized reports whether an entry's router was authorized at run time
// (AddPeer), and until when.
func (e *Entry) Authorized() (bool, time.Time) { return e.dynamic, e.authUntil }

// DynamicPeers returns the entries AddPeer installed, in home address
// order.
func (c *Cache) DynamicPeers() []*Entry {
	var out []*Entry
	for _, e := range c.entries {
		if e.dynamic {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *Entry) int { return a.Peer.HoA.Compare(b.Peer.HoA) })
	return out
}

// ByNAI returns the entry of the router that identifies itself by nai, or
// nil.
func (c *Cache) ByNAI(nai string) *Entry { return c.byNAI(nai) }

func (c *Cache) byNAI(nai string) *Entry {
	if nai == "" {
		return nil
	}
	if e := c.nais[nai]; e != nil {
		return e
	}
	if c.staticNAI[nai] {
		for _, e := range c.entries {
			if !e.dynamic && e.Peer.NAI == nai {
				return e
			}
		}
	}
	return nil
}

// authCap caps a lifetime by the router's authorization: at least one
// lifetime unit (4 s), so that a registration accepted in the last
// seconds of an authorization is not granted nothing; the daemon removes
// the router when the authorization lapses without renewal.
func (e *Entry) authCap(lifetime time.Duration, now time.Time) time.Duration {
	if !e.dynamic {
		return lifetime
	}
	return min(lifetime, max(e.authUntil.Sub(now), 4*time.Second))
}
