package dhcpv6pd

import (
	"encoding/hex"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	hoaHex  = "20010db8000100000000000000000010"
	duidHex = "0004 0102030405064708890a0b0c0d0e0f10" // DUID-UUID, version and variant bits set
)

// The library's encoding of what the client sends, checked byte by byte
// against RFC 8415 §9 (relay header), §21.1 (Client ID), §21.21/§21.22
// (IA_PD, IA Prefix), §21.9, §21.7, §21.14, RFC 6276 §3.1.2 (hop count 1,
// link and peer address the home address).
func TestSolicitBytes(t *testing.T) {
	c := newTestClient(t, true, nil)
	out, at := firstSend(t, c)
	_ = at
	xid := hex.EncodeToString(c.xid[:])
	want := unhex(t, `
		0c 01`+hoaHex+hoaHex+`
		0009 0059
		  01 `+xid+`
		  0001 0012 `+duidHex+`
		  0019 0029 00000001 00000000 00000000
		    001a 0019 00000000 00000000 38 00000000000000000000000000000000
		  0008 0002 0000
		  0006 0004 0017 0052
		  000e 0000`)
	eqBytes(t, "relayed Solicit", out.Send[0].Data, want)
	if out.Send[0].To != netip.MustParseAddrPort("[2001:db8:1::1]:547") {
		t.Fatalf("to %v", out.Send[0].To)
	}
}

func TestRenewRebindReleaseBytes(t *testing.T) {
	l, _ := bind(t, false)
	lease := l.c.Lease()
	p := lease.Prefixes[0].Prefix.Addr().As16()
	ph := hex.EncodeToString(p[:])
	sid := hex.EncodeToString(srvDUID)

	ren := l.c.Tick(lease.T1)
	m := inner(t, ren.Send[0].Data)
	want := unhex(t, `
		0c 01`+hoaHex+hoaHex+`
		0009 006b
		  05 `+hex.EncodeToString(m.XID[:])+`
		  0001 0012 `+duidHex+`
		  0002 0012 `+sid+`
		  0019 0029 00000001 00000000 00000000
		    001a 0019 00000000 00000000 38 `+ph+`
		  0008 0002 0000
		  0006 0004 0017 0052`)
	eqBytes(t, "relayed Renew", ren.Send[0].Data, want)

	// Rebind at T2: no Server ID, the lifetimes left.
	reb := l.c.Tick(lease.T2)
	m = inner(t, reb.Send[0].Data)
	left := func(u time.Time) string {
		s := left(lease.T2, u)
		return hex.EncodeToString([]byte{byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)})
	}
	want = unhex(t, `
		0c 01`+hoaHex+hoaHex+`
		0009 0055
		  06 `+hex.EncodeToString(m.XID[:])+`
		  0001 0012 `+duidHex+`
		  0019 0029 00000001 00000000 00000000
		    001a 0019 `+left(lease.Prefixes[0].PreferredUntil)+left(lease.Prefixes[0].ValidUntil)+` 38 `+ph+`
		  0008 0002 0000
		  0006 0004 0017 0052`)
	eqBytes(t, "relayed Rebind", reb.Send[0].Data, want)

	rel := l.c.Release(lease.T2)
	m = inner(t, rel.Send[0].Data)
	want = unhex(t, `
		0c 01`+hoaHex+hoaHex+`
		0009 0063
		  08 `+hex.EncodeToString(m.XID[:])+`
		  0001 0012 `+duidHex+`
		  0002 0012 `+sid+`
		  0019 0029 00000001 00000000 00000000
		    001a 0019 00000000 00000000 38 `+ph+`
		  0008 0002 0000`)
	eqBytes(t, "relayed Release", rel.Send[0].Data, want)
}

// The server's Reply, byte by byte: RELAY-REPL copies hop count and
// addresses (RFC 8415 §18.3.10), IA_PD with the default T1/T2 and lifetimes.
func TestReplyBytes(t *testing.T) {
	s := newTestServer(t, nil, nil)
	out, err := s.Handle(clientMsg(hoa, solicit(duid1, "2001:db8:2ab:cd00::/56", true)), mrPort, t0)
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, `
		0d 01`+hoaHex+hoaHex+`
		0009 0061
		  07 010203
		  0001 0012 `+duidHex+`
		  0002 0012 `+hex.EncodeToString(srvDUID)+`
		  0019 0029 00000001 00001c20 00002d00
		    001a 0019 00003840 00015180 38 20010db802abcd000000000000000000
		  000e 0000`)
	eqBytes(t, "relayed Reply", out.Send[0].Data, want)
}

func TestMsgRoundTrip(t *testing.T) {
	msgs := []*Msg{
		{Type: Advertise, XID: [3]byte{1, 2, 3}, ClientID: duid1, ServerID: srvDUID, Preference: 7, HasPreference: true,
			IAPDs: []IAPD{{IAID: iaid, T1: 1, T2: 2, Prefixes: []Prefix{{Prefix: netip.MustParsePrefix("2001:db8::/48"), Preferred: Infinity, Valid: Infinity,
				Status: &Status{Code: 0, Message: "ok"}}}}, {IAID: [4]byte{9}, Status: &Status{Code: StatusNoPrefixAvail, Message: "none"}}},
			Status: &Status{Code: StatusSuccess, Message: "fine"}, DNS: []netip.Addr{netip.MustParseAddr("2001:db8::53")}},
		{Type: Solicit, XID: [3]byte{4}, ClientID: duid2, HasElapsed: true, Elapsed: 1230 * time.Millisecond, ORO: []uint16{23, 82}, RapidCommit: true,
			IAPDs: []IAPD{{IAID: iaid, Prefixes: []Prefix{{Prefix: netip.MustParsePrefix("::/60")}}}}},
		{Type: Reply, XID: [3]byte{5}, ClientID: duid1, ServerID: srvDUID},
	}
	for _, m := range msgs {
		b := m.Marshal()
		got, err := ParseMsg(b)
		if err != nil {
			t.Fatalf("%v: %v", m.Type, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, m)
		}
		eqBytes(t, "re-encoded", got.Marshal(), b)
	}
	r := &Relay{Type: RelayForw, HopCount: 3, LinkAddr: haAddr, PeerAddr: hoa, InterfaceID: []byte("tun0"), RelayPort: 10547, HasRelayPort: true, Inner: msgs[1].Marshal()}
	got, err := ParseRelay(r.Marshal())
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("relay round trip %+v %v", got, err)
	}
}

func TestParseErrors(t *testing.T) {
	good := (&Msg{Type: Reply, XID: [3]byte{5}, ClientID: duid1, ServerID: srvDUID,
		IAPDs: []IAPD{{IAID: iaid, Prefixes: []Prefix{{Prefix: netip.MustParsePrefix("2001:db8::/48"), Valid: 1}}}}}).Marshal()
	bad := map[string][]byte{
		"empty":           nil,
		"short":           good[:3],
		"cut option":      good[:len(good)-1],
		"stray bytes":     append(append([]byte{}, good...), 0, 1),
		"two client ids":  append(append([]byte{}, good...), good[4:4+22]...),
		"prefix len 129":  func() []byte { b := append([]byte{}, good...); b[len(b)-17] = 129; return b }(),
		"short ia_pd":     unhex(t, "07 000005 0019 0004 00000001"),
		"rapid with data": unhex(t, "07 000005 000e 0001 00"),
		"short duid":      unhex(t, "07 000005 0001 0002 0004"),
	}
	for name, b := range bad {
		if _, err := ParseMsg(b); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	if _, err := ParseMsg(clientMsg(hoa, solicit(duid1, "", false))); err != ErrIsRelay {
		t.Errorf("relay as message: %v", err)
	}
	relay := (&Relay{Type: RelayRepl, LinkAddr: hoa, PeerAddr: hoa, Inner: good}).Marshal()
	badRelay := map[string][]byte{
		"short":        relay[:33],
		"no relay msg": relay[:34],
		"two relay msgs": append(append([]byte{}, relay...),
			relay[34:]...),
		"cut": relay[:len(relay)-2],
	}
	for name, b := range badRelay {
		if _, err := ParseRelay(b); err == nil {
			t.Errorf("relay %s: parsed", name)
		}
	}
	if _, err := ParseRelay(good); err != ErrNotRelay {
		t.Errorf("message as relay: %v", err)
	}
}

func TestLeaseRoundTrip(t *testing.T) {
	l, _ := bind(t, false)
	lease := l.c.Lease()
	lease.DNS = []netip.Addr{netip.MustParseAddr("2001:db8::53")}
	b := EncodeLease(lease)
	got, err := DecodeLease(b)
	if err != nil {
		t.Fatal(err)
	}
	eqBytes(t, "re-encoded lease", EncodeLease(got), b)
	if !got.Prefixes[0].ValidUntil.Equal(lease.Prefixes[0].ValidUntil) || !got.DUID.Equal(duid1) || got.Hint != lease.Hint {
		t.Fatalf("decoded %+v", got)
	}
	for name, s := range map[string]string{
		"not json":       "{",
		"version":        `{"version":2,"duid":"000401","iaid":"00000001","prefixes":[]}`,
		"short duid":     `{"version":1,"duid":"00","iaid":"00000001","prefixes":[]}`,
		"iaid":           `{"version":1,"duid":"000401","iaid":"01","prefixes":[]}`,
		"unknown field":  `{"version":1,"duid":"000401","iaid":"00000001","prefixes":[],"x":1}`,
		"unmasked":       `{"version":1,"duid":"000401","iaid":"00000001","prefixes":[{"prefix":"2001:db8::1/56","preferred_until":"2026-01-01T00:00:00Z","valid_until":"2026-01-01T00:00:00Z"}]}`,
		"pref > valid":   `{"version":1,"duid":"000401","iaid":"00000001","prefixes":[{"prefix":"2001:db8::/56","preferred_until":"2026-01-02T00:00:00Z","valid_until":"2026-01-01T00:00:00Z"}]}`,
		"ipv4 prefix":    `{"version":1,"duid":"000401","iaid":"00000001","prefixes":[{"prefix":"10.0.0.0/8","preferred_until":"2026-01-01T00:00:00Z","valid_until":"2026-01-01T00:00:00Z"}]}`,
		"trailing data":  `{"version":1,"duid":"000401","iaid":"00000001","prefixes":[]} {}`,
		"t1 after t2":    `{"version":1,"duid":"000401","iaid":"00000001","prefixes":[],"t1":"2026-01-02T00:00:00Z","t2":"2026-01-01T00:00:00Z"}`,
		"dns not ipv6":   `{"version":1,"duid":"000401","iaid":"00000001","prefixes":[],"dns":["10.0.0.1"]}`,
		"hint not ipv6":  `{"version":1,"duid":"000401","iaid":"00000001","prefixes":[],"hint":"10.0.0.0/8"}`,
		"server id odd":  `{"version":1,"duid":"000401","iaid":"00000001","prefixes":[],"server_id":"0"}`,
		"prefix garbage": `{"version":1,"duid":"000401","iaid":"00000001","prefixes":[{"prefix":"x"}]}`,
	} {
		if _, err := DecodeLease([]byte(s)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func TestServerStateRoundTrip(t *testing.T) {
	s := newTestServer(t, nil, nil)
	delegate(t, s, hoa, duid1, t0)
	delegate(t, s, hoa2, duid2, t0)
	b := EncodeServerState(s.State())
	st, err := DecodeServerState(b)
	if err != nil {
		t.Fatal(err)
	}
	eqBytes(t, "re-encoded state", EncodeServerState(st), b)
	dup := strings.Replace(string(b), `"leases": [`, `"leases": [`+leaseJSON(st.Leases[0])+",", 1)
	if _, err := DecodeServerState([]byte(dup)); err == nil {
		t.Fatal("duplicate prefix decoded")
	}
}

func leaseJSON(l ServerLease) string {
	b := EncodeServerState(&ServerState{DUID: srvDUID, Leases: []ServerLease{l}})
	s := string(b)
	i := strings.Index(s, `"leases": [`) + len(`"leases": [`)
	j := strings.LastIndex(s, "]")
	return s[i:j]
}
