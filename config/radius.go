package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Radius is the home agent's RADIUS client, from the single `config radius`
// section: mobile routers that no mobile_router section names are
// authorized by these servers, by the NAI they identify themselves with.
//
//	config radius 'aaa'
//		list server '[2001:db8:ffff::18]:1812'
//		list server '192.0.2.18'
//		option secret 'a long shared secret'
//		option timeout '1s'
//		option accounting '1'
//		option dynauth_listen '[::1]:3799'
type Radius struct {
	Name string
	// Servers are the authentication servers, in order of preference
	// (option server, or list server for fail-over); the port defaults to
	// 1812. Accounting goes to each one's port plus one.
	Servers []netip.AddrPort
	Secret  string        // option secret, required
	Timeout time.Duration // option timeout: one try ("1s", "500ms")
	Retries int           // option retries: sends again to one server before the next
	// DeadTime is how long a server that stopped answering is left alone
	// before it is probed (option dead_time).
	DeadTime time.Duration
	// Accounting: option accounting '1' sends Start, Interim-Update and
	// Stop records; InterimInterval is option interim_interval (0: no
	// Interim-Updates unless the server's Acct-Interim-Interval asks).
	Accounting      bool
	InterimInterval time.Duration
	// DynAuthListen is option dynauth_listen, where Disconnect-Requests
	// (RFC 5176) are accepted; invalid when not given. The port defaults
	// to 3799. DynAuthClients (list dynauth_client) may send them; by
	// default the servers' addresses.
	DynAuthListen  netip.AddrPort
	DynAuthClients []netip.Addr
	// NASIdentifier is option nas_identifier, sent as NAS-Identifier; the
	// home agent's address goes as NAS-IPv6-Address in any case.
	NASIdentifier string
	// CacheLifetime is how long an authorization without Session-Timeout
	// is trusted (option cache_lifetime, seconds).
	CacheLifetime time.Duration
	// RequireMessageAuthenticator (option require_message_authenticator,
	// default '1') refuses answers without a Message-Authenticator; '0' is
	// for servers that cannot send one.
	RequireMessageAuthenticator bool
	Line                        int
}

// Defaults of the radius section.
const (
	DefaultRadiusAuthPort      = 1812
	DefaultRadiusDynAuthPort   = 3799
	DefaultRadiusTimeout       = time.Second
	DefaultRadiusRetries       = 2
	DefaultRadiusDeadTime      = 30 * time.Second
	DefaultRadiusCacheLifetime = 600 * time.Second
	maxRadiusServers           = 16 // what the client takes
	maxRadiusRetries           = 10
	minRadiusSecret            = 16 // RFC 2865 §3 prefers at least 16 octets
)

func (d *decoder) radius(x *section) *Radius {
	r := &Radius{
		Name: x.name, Line: x.s.Line,
		Timeout: DefaultRadiusTimeout, Retries: DefaultRadiusRetries, DeadTime: DefaultRadiusDeadTime,
		CacheLifetime: DefaultRadiusCacheLifetime, RequireMessageAuthenticator: true,
	}
	serverAt := make(map[netip.AddrPort]int)
	if o := x.items("server"); o == nil {
		x.missing("option server", "list server")
	} else {
		for i, v := range o.Values {
			ap, msg := hostPort(v, DefaultRadiusAuthPort)
			switch line, dup := serverAt[ap]; {
			case msg != "":
				x.itemErrorf(o, i, "%s", msg)
			case dup:
				x.itemErrorf(o, i, "%s is listed twice (line %d)", ap, line)
			case len(r.Servers) == maxRadiusServers:
				x.itemErrorf(o, i, "more than %d servers", maxRadiusServers)
			default:
				serverAt[ap] = itemLine(o, i)
				r.Servers = append(r.Servers, ap)
				if !strings.HasPrefix(v, "[") && strings.Count(v, ":") > 1 && (strings.HasSuffix(v, ":1812") || strings.HasSuffix(v, ":1813")) {
					x.d.warnf(itemLine(o, i), "list server: %s is taken as an IPv6 address with port %d; for port %s write [ADDRESS]:%s",
						v, ap.Port(), v[len(v)-4:], v[len(v)-4:])
				}
			}
		}
	}
	if v, o, ok := x.scalar("secret"); o == nil {
		x.missing("option secret", "")
	} else if ok {
		// (An empty value is no option at all: uci drops it.)
		if len(v) < minRadiusSecret {
			x.d.warnf(o.Line, "option secret: %d characters; RFC 2865 prefers at least %d, and a short one can be guessed from one captured exchange", len(v), minRadiusSecret)
		}
		r.Secret = v
	}
	if iv, _, ok := parsed(x, "timeout", func(v string) (time.Duration, string) {
		return interval(v, 100*time.Millisecond, 30*time.Second)
	}); ok {
		r.Timeout = iv
	}
	if v, o, ok := x.scalar("retries"); ok {
		if n, inRange := uintIn(v, 0, maxRadiusRetries); inRange {
			r.Retries = int(n)
		} else {
			x.errorf(o, "%s is out of range (0..%d)", show(v), maxRadiusRetries)
		}
	}
	if iv, _, ok := parsed(x, "dead_time", func(v string) (time.Duration, string) {
		return interval(v, time.Second, time.Hour)
	}); ok {
		r.DeadTime = iv
	}
	var acctOpt *Option
	if b, o, ok := parsed(x, "accounting", boolean); ok {
		r.Accounting, acctOpt = b, o
	}
	if iv, o, ok := parsed(x, "interim_interval", func(v string) (time.Duration, string) {
		return interval(v, 60*time.Second, 24*time.Hour)
	}); ok {
		r.InterimInterval = iv
		if !r.Accounting {
			x.d.warnf(o.Line, "option interim_interval is ignored: option accounting is not '1'")
		}
	}
	if r.Accounting {
		for _, s := range r.Servers {
			if s.Port() == 65535 {
				x.errorf(acctOpt, "server %s leaves no port for accounting (its port plus one)", s)
				break
			}
		}
	}
	if ap, _, ok := parsed(x, "dynauth_listen", func(v string) (netip.AddrPort, string) {
		return listenPort(v, DefaultRadiusDynAuthPort)
	}); ok {
		r.DynAuthListen = ap
	}
	if o := x.items("dynauth_client"); o != nil {
		if !r.DynAuthListen.IsValid() {
			x.d.warnf(o.Line, "list dynauth_client is ignored: no option dynauth_listen")
		}
		seen := make(map[netip.Addr]int)
		for i, v := range o.Values {
			a, err := netip.ParseAddr(v)
			switch line, dup := seen[a]; {
			case err != nil || a.Zone() != "" || a.IsUnspecified() || a.IsMulticast():
				x.itemErrorf(o, i, "%s is not a unicast IP address", show(v))
			case dup:
				x.itemErrorf(o, i, "%s is listed twice (line %d)", a, line)
			default:
				seen[a] = itemLine(o, i)
				r.DynAuthClients = append(r.DynAuthClients, a.Unmap())
			}
		}
	} else if r.DynAuthListen.IsValid() {
		for _, s := range r.Servers {
			if a := s.Addr().Unmap(); !containsAddr(r.DynAuthClients, a) {
				r.DynAuthClients = append(r.DynAuthClients, a)
			}
		}
	}
	if v, o, ok := x.scalar("nas_identifier"); ok {
		if v == "" || len(v) > 253 || strings.ContainsFunc(v, func(c rune) bool { return c < ' ' || c > '~' }) {
			x.errorf(o, "%s is not a NAS-Identifier (1..253 printable characters)", show(v))
		} else {
			r.NASIdentifier = v
		}
	}
	r.CacheLifetime = x.seconds("cache_lifetime", DefaultRadiusCacheLifetime, 10, 7*24*3600)
	if b, _, ok := parsed(x, "require_message_authenticator", boolean); ok {
		r.RequireMessageAuthenticator = b
	}
	x.finish()
	return r
}

func containsAddr(as []netip.Addr, a netip.Addr) bool {
	for _, b := range as {
		if a == b {
			return true
		}
	}
	return false
}

// hostPort parses a server's address: "[2001:db8::18]:1812",
// "192.0.2.18:1812", or an address alone, which takes port def. Names are
// not resolved: the configuration does no I/O, and a name that resolves
// differently later would move the servers under the daemon.
func hostPort(s string, def uint16) (netip.AddrPort, string) {
	ap, msg := addrPort(s, def)
	switch {
	case msg != "":
		return ap, msg
	case ap.Addr().IsUnspecified() || ap.Addr().IsMulticast():
		return ap, show(s) + " is not a unicast address"
	}
	return ap, ""
}

// listenPort parses where to listen: an address (the unspecified one for
// every address) with an optional port.
func listenPort(s string, def uint16) (netip.AddrPort, string) {
	ap, msg := addrPort(s, def)
	if msg == "" && ap.Addr().IsMulticast() {
		return ap, show(s) + " is a multicast address"
	}
	return ap, msg
}

func addrPort(s string, def uint16) (netip.AddrPort, string) {
	const form = " is not ADDRESS or ADDRESS:PORT (IPv6 in brackets: [2001:db8::18]:1812; a name is not resolved)"
	bare := s
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		bare = s[1 : len(s)-1] // [2001:db8::18], the port left out
	}
	if a, err := netip.ParseAddr(bare); err == nil && (bare == s || a.Is6()) {
		if a.Zone() != "" {
			return netip.AddrPort{}, show(s) + " has a zone; write a global address"
		}
		return netip.AddrPortFrom(a.Unmap(), def), ""
	}
	ap, err := netip.ParseAddrPort(s)
	switch {
	case err != nil:
		return ap, show(s) + form
	case ap.Addr().Zone() != "":
		return ap, show(s) + " has a zone; write a global address"
	case ap.Port() == 0:
		return ap, show(s) + ": port 0 is not a port"
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), ""
}

// boolean parses a UCI boolean the way OpenWrt's scripts read one.
func boolean(s string) (bool, string) {
	switch strings.ToLower(s) {
	case "1", "on", "yes", "true", "enabled":
		return true, ""
	case "0", "off", "no", "false", "disabled":
		return false, ""
	}
	return false, fmt.Sprintf("%s is not a boolean (1 or 0)", show(s))
}
