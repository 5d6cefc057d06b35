package aaa

import (
	"net/netip"
	"time"

	"nemod/config"
)

// Settings is what a `config radius` section sets up: the client, the
// dynamic authorization server (nil without option dynauth_listen), the
// cache, and the accounting the home agent does.
type Settings struct {
	Client  Config
	DynAuth *DynAuthConfig
	Cache   CacheConfig
	// Accounting says whether to send Start, Interim-Update and Stop;
	// InterimInterval is how often Interim-Updates go (0: only when an
	// authorization's Acct-Interim-Interval asks).
	Accounting      bool
	InterimInterval time.Duration
}

// FromConfig turns the radius section of a home agent whose own address
// is haAddr (sent as NAS-IPv6-Address, and checked in Disconnect-Requests)
// into Settings.
func FromConfig(r *config.Radius, haAddr netip.Addr) Settings {
	nas := NAS{Identifier: r.NASIdentifier, IPv6: haAddr}
	s := Settings{
		Client: Config{
			Servers:                          append([]netip.AddrPort(nil), r.Servers...),
			Secret:                           []byte(r.Secret),
			NAS:                              nas,
			Timeout:                          r.Timeout,
			Retries:                          r.Retries,
			DeadTime:                         r.DeadTime,
			AllowMissingMessageAuthenticator: !r.RequireMessageAuthenticator,
		},
		Cache:           CacheConfig{DefaultLifetime: r.CacheLifetime},
		Accounting:      r.Accounting,
		InterimInterval: r.InterimInterval,
	}
	if r.DynAuthListen.IsValid() {
		s.DynAuth = &DynAuthConfig{
			Listen:  r.DynAuthListen,
			Clients: append([]netip.Addr(nil), r.DynAuthClients...),
			// A Message-Authenticator is checked when present, not
			// required: a Disconnect-Request's Request Authenticator is
			// already keyed over the whole packet (RFC 5176 §2.3), and the
			// collision attack that makes it matter for Access-Accept needs
			// an answer to forge from, which a DAS never gives.
			DynAuthPolicy: DynAuthPolicy{Secret: []byte(r.Secret), NAS: nas},
		}
	}
	return s
}

// InterimFor returns how often a session authorized by a should send
// Interim-Updates: the server's Acct-Interim-Interval when it gave one
// (at least a minute, RFC 2869 §5.16 wants no less), else the configured
// interval.
func (s *Settings) InterimFor(a *Authorization) time.Duration {
	if a != nil && a.InterimInterval > 0 {
		return max(a.InterimInterval, time.Minute)
	}
	return s.InterimInterval
}
