package aaa

import (
	"net/netip"
	"testing"

	"nemod/internal/freerad"
)

// radiusServer is a real FreeRADIUS (Debian's freeradius package) run for
// one test, by package freerad, with this package's users file.
type radiusServer struct {
	*freerad.Server
	secret []byte
}

// The users file: one known mobile router, everything else rejected.
const usersFile = `car9@fleet.example Auth-Type := Accept
	Framed-IPv6-Address = 2001:db8:ffff:1::9,
	Delegated-IPv6-Prefix = 2001:db8:900::/56,
	Delegated-IPv6-Prefix += 2001:db8:901::/56,
	Framed-IP-Address = 198.51.100.9,
	Session-Timeout = 3600,
	Tunnel-Password:1 = "` + testKeyHex + `",
	Tunnel-Client-Auth-ID:1 = "4097"

DEFAULT Auth-Type := Reject
	Reply-Message = "unknown router"
`

func startFreeRADIUS(t testing.TB) *radiusServer {
	t.Helper()
	return startFreeRADIUSWith(t, freerad.RandomSecret(t))
}

// startFreeRADIUSWith starts one with the given shared secret.
func startFreeRADIUSWith(t testing.TB, secret []byte) *radiusServer {
	t.Helper()
	s := freerad.Start(t, freerad.Options{Users: usersFile, Secret: secret})
	return &radiusServer{Server: s, secret: s.Secret}
}

func (s *radiusServer) start()                       { s.Start() }
func (s *radiusServer) kill()                        { s.Kill() }
func (s *radiusServer) auth4() netip.AddrPort        { return s.Auth4() }
func (s *radiusServer) auth6() netip.AddrPort        { return s.Auth6() }
func (s *radiusServer) details() []map[string]string { return s.Details() }
func (s *radiusServer) pid() int                     { return s.PID() }
