// Package owrt is the mobile router's OpenWrt side without I/O: the tunnel
// state it reports to netifd (Tunnel), the uplinks it follows from netifd
// (Uplinks), the nemod.binding events it sends on ubus (BindingEvents) and
// the per-uplink health its ubus status adds (Health). The daemon (package
// router) feeds it its binding update list, prefixes and netifd's reports,
// and does the talking.
package owrt

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"nemod/binding"
	"nemod/netifd"
	"nemod/ra"
)

// TunnelInput is what the daemon knows that the tunnel's netifd interface
// shows.
type TunnelInput struct {
	Interface string // option netifd_interface
	Device    string // the TUN device
	HoA       netip.Addr
	// Bindings are the binding update list's: the tunnel is up while one
	// is registered, and the home address lives as long as the longest.
	Bindings []binding.BindingStatus
	// MNPs are the mobile network prefixes with their lifetimes: the
	// configured ones until ra.Forever, the delegated ones until their
	// lease ends.
	MNPs []ra.MNP
	// IPv4 is the tunnel's IPv4, which the IPv4 support fills in.
	IPv4 IPv4
}

// IPv4 is the IPv4 the home agent granted the mobile router (RFC 5555):
// its IPv4 home address and the IPv4 mobile network prefixes.
type IPv4 struct {
	HoA      netip.Addr
	Prefixes []netip.Prefix
	// Default asks for an IPv4 default route through the tunnel (metric
	// netifd.DefaultIPv4Metric in the main table, so that it never
	// replaces an uplink's).
	Default bool
}

// unreachableMetric is the metric netifd gives the unreachable route of a
// delegated IPv6 prefix: the last resort behind any route to a part of it.
const unreachableMetric = 2147483647

// secs is the whole seconds from now to t, 0 when past.
func secs(t, now time.Time) uint32 {
	d := t.Sub(now)
	if d <= 0 {
		return 0
	}
	if d >= time.Duration(netifd.Forever-1)*time.Second {
		return netifd.Forever - 1
	}
	return uint32(d / time.Second)
}

// Tunnel is the tunnel's state for netifd at now:
//
//   - up while a binding is registered (link loss is Up false, which
//     netifd turns into the interface going down and its addresses,
//     routes and prefixes removed);
//   - the home address as a /128 whose valid lifetime is the longest
//     binding's and whose preferred lifetime ends when that binding's
//     refresh is due: if the daemon dies, the kernel lets the address go
//     with the binding at the home agent;
//   - the mobile network prefixes delegated to netifd (which assigns the
//     LAN its /64 by ip6assign and odhcpd advertises it), configured ones
//     without lifetimes (forever), delegated ones with their lease's;
//   - on-link routes (the TUN device is point-to-point: no gateway),
//     source-specific from each prefix (netifd.TunnelState.Update);
//   - the IPv4 home address as a /32 and each IPv4 prefix as an
//     unreachable route, as netifd does for a delegated IPv6 prefix, so
//     that a part of it not on the LAN is never sent back upstream.
//
// Prefixes whose lease has ended are left out.
func Tunnel(in TunnelInput, now time.Time) netifd.TunnelState {
	st := netifd.TunnelState{Interface: in.Interface, Device: in.Device}
	var expires, refresh time.Time
	for _, b := range in.Bindings {
		if b.State != binding.StateRegistered {
			continue
		}
		st.Up = true
		if b.Expires.After(expires) {
			expires, refresh = b.Expires, b.RefreshAt
		}
	}
	if !st.Up {
		return st
	}
	if in.HoA.IsValid() {
		st.HomeAddress = netip.PrefixFrom(in.HoA, 128)
		valid := secs(expires, now)
		st.HomeLifetimes = &netifd.Lifetimes{Preferred: min(secs(refresh, now), valid), Valid: valid}
	}
	for _, m := range in.MNPs {
		p := netifd.Prefix{Prefix: m.Prefix.Masked()}
		if !m.ValidUntil.Before(ra.Forever) {
			st.Prefixes = append(st.Prefixes, p)
			continue
		}
		if !m.ValidUntil.After(now) {
			continue
		}
		valid := secs(m.ValidUntil, now)
		p.Lifetimes = &netifd.Lifetimes{Preferred: min(secs(m.PreferredUntil, now), valid), Valid: valid}
		st.Prefixes = append(st.Prefixes, p)
	}
	if in.IPv4.HoA.IsValid() {
		st.IPv4Address = netip.PrefixFrom(in.IPv4.HoA, 32)
	}
	st.IPv4Default = in.IPv4.Default
	for _, p := range in.IPv4.Prefixes {
		st.Routes = append(st.Routes, netifd.Route{Target: p.Masked(), Type: "unreachable", Metric: unreachableMetric})
	}
	return st
}

// Fingerprint changes whenever the tunnel's state for netifd changes
// other than by the passing of time: a binding registered, lost or
// refreshed, a prefix added, gone or renewed. The daemon sends an update
// when it changes (lifetimes count down by themselves in the kernel).
func (in TunnelInput) Fingerprint() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s|", in.Interface, in.Device, in.HoA)
	for _, x := range in.Bindings {
		if x.State == binding.StateRegistered {
			fmt.Fprintf(&b, "%d %d %d,", x.BID, x.Expires.UnixNano(), x.RefreshAt.UnixNano())
		}
	}
	b.WriteByte('|')
	for _, m := range in.MNPs {
		fmt.Fprintf(&b, "%s %d %d,", m.Prefix, m.PreferredUntil.UnixNano(), m.ValidUntil.UnixNano())
	}
	fmt.Fprintf(&b, "|%s %v %v", in.IPv4.HoA, in.IPv4.Prefixes, in.IPv4.Default)
	return b.String()
}
