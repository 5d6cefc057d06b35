package aaa

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"nemod/config"
)

// TestFromConfig: the reference radius section becomes the settings the
// client, the dynamic authorization server and the cache start with, and
// the client starts with them.
func TestFromConfig(t *testing.T) {
	f, err := config.Load("../config/testdata/good/radius.uci")
	if err != nil {
		t.Fatal(err)
	}
	ha := f.HomeAgent.Address
	s := FromConfig(f.Radius, ha)
	nas := NAS{Identifier: "ha1.fleet.example", IPv6: ha}
	want := Settings{
		Client: Config{
			Servers: []netip.AddrPort{netip.MustParseAddrPort("[2001:db8:ffff::18]:1812"), netip.MustParseAddrPort("192.0.2.18:1812"), netip.MustParseAddrPort("[2001:db8:ffff::19]:18120")},
			Secret:  []byte("a long shared secret, 32 chars!"), NAS: nas,
			Timeout: 500 * time.Millisecond, Retries: 3, DeadTime: time.Minute,
			AllowMissingMessageAuthenticator: true,
		},
		DynAuth: &DynAuthConfig{
			Listen:        netip.MustParseAddrPort("[::1]:3799"),
			Clients:       []netip.Addr{netip.MustParseAddr("2001:db8:ffff::18"), netip.MustParseAddr("192.0.2.20")},
			DynAuthPolicy: DynAuthPolicy{Secret: []byte("a long shared secret, 32 chars!"), NAS: nas},
		},
		Cache:           CacheConfig{DefaultLifetime: 300 * time.Second},
		Accounting:      true,
		InterimInterval: 600 * time.Second,
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("settings\n got %+v\nwant %+v", s, want)
	}
	c, err := NewClient(s.Client)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got := s.InterimFor(&Authorization{InterimInterval: 10 * time.Second}); got != time.Minute {
		t.Errorf("InterimFor 10 s: %v", got)
	}
	if got := s.InterimFor(&Authorization{}); got != 600*time.Second {
		t.Errorf("InterimFor none: %v", got)
	}
}
