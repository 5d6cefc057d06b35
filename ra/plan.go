// Package ra advertises the mobile network's prefixes on the router's LAN
// interfaces (RFC 4861 router advertisements, SLAAC per RFC 4862): which
// /64 each LAN gets from the mobile network prefixes, the router's own
// address on it, and when to send which advertisement. It does no I/O and
// takes the time as a parameter; package ra/ranet is its shell.
package ra

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"time"
)

// MNP is a mobile network prefix with its lifetimes: a delegated one's
// from its lease, a configured one's Forever.
type MNP struct {
	Prefix                     netip.Prefix
	PreferredUntil, ValidUntil time.Time
}

// Forever is the end of a configured prefix's lifetimes.
var Forever = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// LAN is one interface of the mobile network (list lan) with its
// assignment hints, in the manner of option ip6assign and ip6hint.
type LAN struct {
	Name string
	// Assign is the length of the piece of each MNP the LAN gets (option
	// ip6assign); 0 means 64. The LAN's SLAAC prefix is the first /64 of
	// its piece.
	Assign int
	// Hint, when HasHint, is which piece (counted in pieces of Assign bits)
	// the LAN wants (option ip6hint); otherwise pieces go in LAN order.
	Hint    uint64
	HasHint bool
}

// Subnet is what one LAN gets from one MNP.
type Subnet struct {
	LAN                        string
	From                       netip.Prefix // the MNP
	Piece                      netip.Prefix // the assigned piece (/Assign)
	Prefix                     netip.Prefix // the /64 advertised
	Router                     netip.Addr   // the router's own address on the LAN: ::1 of the /64
	PreferredUntil, ValidUntil time.Time
}

// ErrNoRoom: an MNP has no room left for a LAN's piece.
var ErrNoRoom = errors.New("ra: mobile network prefix too small for the LANs")

// Plan carves every MNP among the LANs: hinted LANs first at their hint,
// then the others in order, each at the lowest free aligned piece. A LAN
// that does not fit in an MNP gets nothing from it, and the returned error
// (wrapping ErrNoRoom) says so; the rest of the plan still holds.
func Plan(mnps []MNP, lans []LAN) ([]Subnet, error) {
	var out []Subnet
	var errs []error
	for _, m := range mnps {
		p := m.Prefix.Masked()
		if !p.Addr().Is6() || p.Addr().Is4In6() || p.Bits() > 64 {
			errs = append(errs, fmt.Errorf("ra: %v cannot hold a /64", m.Prefix))
			continue
		}
		var taken []netip.Prefix
		free := func(q netip.Prefix) bool {
			for _, t := range taken {
				if t.Overlaps(q) {
					return false
				}
			}
			return true
		}
		got := make([]netip.Prefix, len(lans))
		place := func(i int, q netip.Prefix) {
			got[i] = q
			taken = append(taken, q)
		}
		for pass := 0; pass < 2; pass++ {
			for i, l := range lans {
				bits := l.Assign
				if bits == 0 {
					bits = 64
				}
				if bits < p.Bits() || bits > 64 {
					if pass == 0 {
						errs = append(errs, fmt.Errorf("%w: %s wants a /%d of %v", ErrNoRoom, l.Name, bits, p))
					}
					continue
				}
				if pass == 0 && l.HasHint {
					if q, ok := piece(p, bits, l.Hint); ok && free(q) {
						place(i, q)
					}
					continue
				}
				if pass == 1 && !got[i].IsValid() {
					n := uint64(1) << min(bits-p.Bits(), 32)
					for k := uint64(0); k < n; k++ {
						q, _ := piece(p, bits, k)
						if free(q) {
							place(i, q)
							break
						}
					}
					if !got[i].IsValid() {
						errs = append(errs, fmt.Errorf("%w: no /%d left in %v for %s", ErrNoRoom, bits, p, l.Name))
					}
				}
			}
		}
		for i, q := range got {
			if !q.IsValid() {
				continue
			}
			s64 := netip.PrefixFrom(q.Addr(), 64)
			out = append(out, Subnet{LAN: lans[i].Name, From: p, Piece: q, Prefix: s64, Router: s64.Addr().Next(),
				PreferredUntil: m.PreferredUntil, ValidUntil: m.ValidUntil})
		}
	}
	return out, errors.Join(errs...)
}

// piece returns the k-th /bits of p, if there is one.
func piece(p netip.Prefix, bits int, k uint64) (netip.Prefix, bool) {
	if bits-p.Bits() < 64 && k >= uint64(1)<<(bits-p.Bits()) {
		return netip.Prefix{}, false
	}
	a := p.Addr().As16()
	n := new(big.Int).SetBytes(a[:])
	n.Or(n, new(big.Int).Lsh(new(big.Int).SetUint64(k), uint(128-bits)))
	var b [16]byte
	n.FillBytes(b[:])
	return netip.PrefixFrom(netip.AddrFrom16(b), bits), true
}

// ForLAN returns the subnets of one LAN.
func ForLAN(subnets []Subnet, lan string) []Subnet {
	var out []Subnet
	for _, s := range subnets {
		if s.LAN == lan {
			out = append(out, s)
		}
	}
	return out
}
