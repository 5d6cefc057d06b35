package tunnel

import (
	"net/netip"
	"slices"
)

// prefixTable finds the entry of the longest configured prefix containing
// an address. Mobile routers' prefixes come in a handful of lengths, so a
// map per length, longest first, beats a trie here. It is built once and
// then only read.
type prefixTable[T any] struct {
	lens []int // distinct lengths, longest first
	m    map[netip.Prefix]T
}

func newPrefixTable[T any](entries map[netip.Prefix]T) *prefixTable[T] {
	t := &prefixTable[T]{m: make(map[netip.Prefix]T, len(entries))}
	for p, v := range entries {
		p = p.Masked()
		t.m[p] = v
		if !slices.Contains(t.lens, p.Bits()) {
			t.lens = append(t.lens, p.Bits())
		}
	}
	slices.SortFunc(t.lens, func(a, b int) int { return b - a })
	return t
}

// lookup returns the entry of the longest prefix containing a.
func (t *prefixTable[T]) lookup(a netip.Addr) (T, bool) {
	for _, l := range t.lens {
		p, _ := a.Prefix(l)
		if v, ok := t.m[p]; ok {
			return v, true
		}
	}
	var zero T
	return zero, false
}

// covers reports whether a is one of the addresses, or inside one of the
// prefixes.
func covers(a netip.Addr, addrs []netip.Addr, prefixes []netip.Prefix) bool {
	for _, x := range addrs {
		if x == a {
			return true
		}
	}
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
