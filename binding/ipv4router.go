package binding

import (
	"net/netip"
	"slices"

	"nemod/nemo"
)

// The mobile router's side of RFC 5555's IPv4 home address and prefixes:
// every registration and refresh carries one IPv4 Home Address option per
// thing configured (the home address, each prefix or the prefix to be
// assigned), and the acknowledgements, in the same order, say what the
// mobile network has.

// v4Slot is one IPv4 Home Address option the router sends.
type v4Slot struct {
	want   nemo.IPv4HomeAddress // as configured: 0.0.0.0 asks to be assigned
	prefix bool                 // a prefix, not the home address
	got    netip.Prefix         // what the home agent granted; invalid if nothing
	status uint8                // the last answer's status
}

func v4Slots(cfg *UpdateListConfig) []v4Slot {
	var s []v4Slot
	if cfg.HoAv4.Is4() {
		s = append(s, v4Slot{want: nemo.IPv4HomeAddress{PrefixLen: 32, Addr: cfg.HoAv4}})
	}
	for _, p := range cfg.MNPsV4 {
		s = append(s, v4Slot{prefix: true, want: nemo.IPv4HomeAddress{PrefixLen: uint8(p.Bits()), P: true, Addr: p.Masked().Addr()}})
	}
	if cfg.MNPv4Length > 0 && cfg.MNPv4Length < 32 {
		s = append(s, v4Slot{prefix: true, want: nemo.IPv4HomeAddress{PrefixLen: uint8(cfg.MNPv4Length), P: true, Addr: netip.IPv4Unspecified()}})
	}
	return s
}

// ipv4Options are the IPv4 Home Address options of the next Binding
// Update: what was granted is named as granted (RFC 5555 §3.1.1: a refresh
// carries the assigned address and prefix length), the rest as
// configured.
func (r *UpdateList) ipv4Options() []nemo.IPv4HomeAddress {
	if len(r.v4) == 0 {
		return nil
	}
	out := make([]nemo.IPv4HomeAddress, len(r.v4))
	for i, s := range r.v4 {
		out[i] = s.want
		if s.got.IsValid() {
			out[i] = nemo.IPv4HomeAddress{PrefixLen: uint8(s.got.Bits()), P: s.prefix, Addr: s.got.Addr()}
		}
	}
	return out
}

// noteIPv4 applies the IPv4 Address Acknowledgements of an accepting BA.
// Without any, the home agent does not do IPv4 (§4.4.2): the router has
// none. A refusal is counted and logged when it is news.
func (r *UpdateList) noteIPv4(ba *nemo.BindingAck) {
	if len(r.v4) == 0 {
		return
	}
	changed := false
	for i := range r.v4 {
		s := &r.v4[i]
		var got netip.Prefix
		st := nemo.IPv4StatusUnspecified
		if i < len(ba.IPv4AddrAcks) {
			a := ba.IPv4AddrAcks[i]
			st = a.Status
			if st < 128 {
				got = a.Prefix()
				if !got.Addr().Is4() || (!s.prefix && got.Bits() != 32) {
					got, st = netip.Prefix{}, nemo.IPv4StatusUnspecified
				}
			}
		}
		if st >= 128 {
			if r.RejectedV4 == nil {
				r.RejectedV4 = map[uint8]uint64{}
			}
			r.RejectedV4[st]++
			if s.status != st {
				what := "IPv4 home address"
				if s.prefix {
					what = "IPv4 prefix"
				}
				if i >= len(ba.IPv4AddrAcks) {
					r.cfg.Logf("home agent did not answer for %s %s: it does not serve IPv4 (RFC 5555)", what, s.want.Prefix())
				} else {
					r.cfg.Logf("home agent refused %s %s: status %d", what, s.want.Prefix(), st)
				}
			}
		} else if got != s.got {
			r.cfg.Logf("IPv4 for the mobile network: %s", got)
		}
		if got != s.got {
			changed = true
		}
		s.got, s.status = got, st
	}
	if changed {
		r.gen++
	}
}

// IPv4 is the mobile network's IPv4 as the home agent last granted it:
// the IPv4 home address (invalid if none) and prefixes. The data plane, the
// LAN's address and DHCPv4 follow it; Gen changes when it does.
func (r *UpdateList) IPv4() (hoa netip.Addr, prefixes []netip.Prefix) {
	for _, s := range r.v4 {
		switch {
		case !s.got.IsValid():
		case s.prefix:
			prefixes = append(prefixes, s.got)
		case !hoa.IsValid():
			hoa = s.got.Addr()
		}
	}
	return hoa, slices.Clip(prefixes)
}

// IPv4Status is what the last answer said of each IPv4 option: the
// configured request, what was granted and the status.
func (r *UpdateList) IPv4Status() []IPv4Slot {
	out := make([]IPv4Slot, len(r.v4))
	for i, s := range r.v4 {
		out[i] = IPv4Slot{Requested: s.want.Prefix(), Prefix: s.prefix, Granted: s.got, Status: s.status}
	}
	return out
}

// IPv4Slot describes one IPv4 Home Address option of the router.
type IPv4Slot struct {
	Requested netip.Prefix // as configured; 0.0.0.0/n asks for an assignment
	Prefix    bool
	Granted   netip.Prefix // invalid if nothing
	Status    uint8
}
