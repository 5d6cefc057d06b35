package aaa

import (
	"errors"
	"nemod/internal/freerad"
	"net/netip"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"nemod/internal/testenv"
)

func clientFor(t *testing.T, cfg Config, servers ...*radiusServer) *Client {
	t.Helper()
	for _, s := range servers {
		cfg.Servers = append(cfg.Servers, s.auth6())
	}
	cfg.Secret = servers[0].secret
	if cfg.Timeout == 0 {
		cfg.Timeout = 500 * time.Millisecond
	}
	return newTestClient(t, cfg)
}

// TestFreeRADIUSAuthorize: FreeRADIUS's Access-Accept for a known router
// decodes to its authorization, key decrypted; an unknown one is rejected.
// Over IPv6 and IPv4.
func TestFreeRADIUSAuthorize(t *testing.T) {
	srv := startFreeRADIUS(t)
	for _, addr := range []netip.AddrPort{srv.auth6(), srv.auth4()} {
		c := newTestClient(t, Config{Servers: []netip.AddrPort{addr}, Secret: srv.secret, Timeout: 500 * time.Millisecond})
		if err := c.Submit(AccessRequest{NAI: "car9@fleet.example", CoA: netip.MustParseAddr("2001:db8:c0a::5")}); err != nil {
			t.Fatal(err)
		}
		r := waitResult(t, c, 5*time.Second)
		if r.Err != nil {
			t.Fatalf("%v: %v", addr, r.Err)
		}
		full := wantFull()
		want := &Authorization{NAI: "car9@fleet.example", HoA: full.HoA, MNPs: full.MNPs[:2], HoA4: full.HoA4, Lifetime: time.Hour, SPI: 4097, Key: full.Key}
		if !reflect.DeepEqual(r.Auth, want) || r.Server != addr || r.Kind != KindAccess || r.NAI != "car9@fleet.example" {
			t.Errorf("%v: got %+v\nwant %+v", addr, r.Auth, want)
		}
		if err := c.Submit(AccessRequest{NAI: "car10@fleet.example"}); err != nil {
			t.Fatal(err)
		}
		r = waitResult(t, c, 5*time.Second)
		var rej *RejectError
		if !errors.As(r.Err, &rej) || rej.Message != "unknown router" || r.Auth != nil {
			t.Errorf("%v: unknown router: %+v", addr, r)
		}
		if s := c.Stats(); s.Servers[0].Responses != 2 || s.Servers[0].Dropped != 0 || s.Servers[0].Dead {
			t.Errorf("%v: stats %+v", addr, s.Servers[0])
		}
	}
}

// TestFreeRADIUSAccounting: Start, Interim-Update and Stop reach the detail
// file with the session, the addresses and the counters, 64-bit octets
// split into Gigawords.
func TestFreeRADIUSAccounting(t *testing.T) {
	srv := startFreeRADIUS(t)
	c := clientFor(t, Config{}, srv)
	base := AccountingRecord{
		SessionID: NewSessionID(), NAI: "car9@fleet.example",
		HoA:  netip.MustParseAddr("2001:db8:ffff:1::9"),
		MNPs: []netip.Prefix{netip.MustParsePrefix("2001:db8:900::/56")},
		CoA:  netip.MustParseAddr("192.0.2.7"), Class: [][]byte{[]byte("fleet-gold")},
	}
	start, interim, stop := base, base, base
	start.Status = AcctStart
	interim.Status, interim.InputOctets, interim.OutputOctets, interim.InputPackets, interim.OutputPackets, interim.SessionTime =
		AcctInterim, 1234567, 7654321, 1000, 2000, 300*time.Second
	stop.Status, stop.InputOctets, stop.OutputOctets, stop.InputPackets, stop.OutputPackets, stop.SessionTime, stop.TerminateCause =
		AcctStop, 5<<32+17, 3<<32+9, 4000000, 5000000, 3600*time.Second, TerminateUserRequest
	for _, r := range []AccountingRecord{start, interim, stop} {
		if err := c.Account(r); err != nil {
			t.Fatal(err)
		}
		// One at a time, so that the detail file has them in order.
		res := waitResult(t, c, 5*time.Second)
		if res.Err != nil || res.Kind != KindAccounting || res.Status != r.Status || res.SessionID != base.SessionID {
			t.Fatalf("result %+v", res)
		}
	}
	recs := srv.details()
	if len(recs) != 3 {
		t.Fatalf("%d records in the detail file", len(recs))
	}
	common := map[string]string{
		"Acct-Session-Id": base.SessionID, "User-Name": "car9@fleet.example",
		"Framed-IPv6-Address": "2001:db8:ffff:1::9", "Delegated-IPv6-Prefix": "2001:db8:900::/56",
		"Calling-Station-Id": "192.0.2.7", "NAS-Identifier": testNAS.Identifier,
		"NAS-IPv6-Address": "2001:db8:ffff::1", "Class": "0x" + hexOf("fleet-gold"), "Acct-Delay-Time": "0",
	}
	wants := []map[string]string{
		{"Acct-Status-Type": "Start"},
		{"Acct-Status-Type": "Interim-Update", "Acct-Input-Octets": "1234567", "Acct-Output-Octets": "7654321",
			"Acct-Input-Gigawords": "0", "Acct-Output-Gigawords": "0", "Acct-Input-Packets": "1000",
			"Acct-Output-Packets": "2000", "Acct-Session-Time": "300"},
		{"Acct-Status-Type": "Stop", "Acct-Input-Octets": "17", "Acct-Input-Gigawords": "5", "Acct-Output-Octets": "9",
			"Acct-Output-Gigawords": "3", "Acct-Input-Packets": "4000000", "Acct-Output-Packets": "5000000",
			"Acct-Session-Time": "3600", "Acct-Terminate-Cause": "User-Request"},
	}
	for i, w := range wants {
		for k, v := range common {
			w[k] = v
		}
		for k, v := range w {
			if recs[i][k] != v {
				t.Errorf("record %d: %s = %q, want %q", i, k, recs[i][k], v)
			}
		}
		if _, ok := recs[i]["Event-Timestamp"]; !ok {
			t.Errorf("record %d: no Event-Timestamp", i)
		}
	}
	if _, ok := recs[0]["Acct-Input-Octets"]; ok {
		t.Error("a Start with counters")
	}
}

func hexOf(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteString(strconv.FormatUint(uint64(s[i])>>4, 16) + strconv.FormatUint(uint64(s[i])&15, 16))
	}
	return b.String()
}

// TestFreeRADIUSDown: with the only server killed, a request ends in
// ErrTimeout after its tries; when the server is back, the probe finds it
// and requests are answered again.
func TestFreeRADIUSDown(t *testing.T) {
	srv := startFreeRADIUS(t)
	c := clientFor(t, Config{Timeout: 200 * time.Millisecond, Retries: 1, DeadTime: 300 * time.Millisecond}, srv)
	srv.kill()
	if err := c.Submit(AccessRequest{NAI: "car9@fleet.example"}); err != nil {
		t.Fatal(err)
	}
	if r := waitResult(t, c, 5*time.Second); !errors.Is(r.Err, ErrTimeout) || r.Server != srv.auth6() {
		t.Fatalf("server down: %+v", r)
	}
	if s := c.Stats(); !s.Servers[0].Dead || s.Servers[0].Timeouts != 1 || s.Servers[0].Retransmissions != 1 {
		t.Errorf("stats %+v", s.Servers[0])
	}
	srv.start()
	waitFor(t, 10*time.Second, func() bool { return !c.Stats().Servers[0].Dead })
	if s := c.Stats(); s.Servers[0].Probes == 0 {
		t.Error("revived without a probe")
	}
	if err := c.Submit(AccessRequest{NAI: "car9@fleet.example"}); err != nil {
		t.Fatal(err)
	}
	if r := waitResult(t, c, 5*time.Second); r.Err != nil || r.Auth.SPI != 4097 {
		t.Fatalf("server back: %+v", r)
	}
}

func waitFor(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFreeRADIUSFailover: two FreeRADIUS instances with one secret; with
// the first killed, requests fail over to the second; once the first is
// back and its probe answered, requests go to it again.
func TestFreeRADIUSFailover(t *testing.T) {
	a := startFreeRADIUS(t)
	b := startFreeRADIUSWith(t, a.secret)
	c := clientFor(t, Config{Timeout: 200 * time.Millisecond, Retries: 1, DeadTime: 300 * time.Millisecond}, a, b)
	ask := func() Result {
		t.Helper()
		if err := c.Submit(AccessRequest{NAI: "car9@fleet.example"}); err != nil {
			t.Fatal(err)
		}
		return waitResult(t, c, 5*time.Second)
	}
	if r := ask(); r.Err != nil || r.Server != a.auth6() {
		t.Fatalf("both up: %+v", r)
	}
	a.kill()
	if r := ask(); r.Err != nil || r.Server != b.auth6() || r.Auth.SPI != 4097 {
		t.Fatalf("first down: %+v", r)
	}
	// A is dead now: the next request goes straight to B.
	before := c.Stats().Servers[0].Requests
	if r := ask(); r.Err != nil || r.Server != b.auth6() || c.Stats().Servers[0].Requests != before {
		t.Fatalf("while A is dead: %+v", r)
	}
	a.start()
	waitFor(t, 10*time.Second, func() bool { return !c.Stats().Servers[0].Dead })
	if r := ask(); r.Err != nil || r.Server != a.auth6() {
		t.Fatalf("first back: %+v", r)
	}
}

// TestRadclientDisconnect: a Disconnect-Request sent by radclient (Debian's
// freeradius-utils) to the dynamic authorization server is a Revocation for
// the event loop, and the Disconnect-ACK it answers is one radclient
// accepts; a session that does not exist gets a Disconnect-NAK with
// Error-Cause 503; a wrong secret gets nothing.
func TestRadclientDisconnect(t *testing.T) {
	radclient := testenv.NeedTool(t, "radclient")
	secret := freerad.RandomSecret(t)
	srv, err := ListenDynAuth(DynAuthConfig{
		Listen:        netip.MustParseAddrPort("[::1]:0"),
		Clients:       []netip.Addr{netip.MustParseAddr("::1")},
		DynAuthPolicy: DynAuthPolicy{Secret: secret, NAS: testNAS, RequireMessageAuthenticator: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	// The event loop: one known session.
	stop := make(chan struct{})
	defer close(stop)
	var got []Selector
	seen := make(chan Selector, 10)
	go func() {
		for {
			select {
			case r := <-srv.Events():
				seen <- r.Selector
				if r.Matches("car9@fleet.example", "5f3a9c0e12d4b7a1", netip.MustParseAddr("2001:db8:ffff:1::9"), netip.Addr{}) {
					r.Ack()
				} else {
					r.Nak(CauseSessionNotFound)
				}
			case <-stop:
				return
			}
		}
	}()
	run := func(input, secret string) (string, error) {
		cmd := exec.Command(radclient, "-x", "-r", "1", "-t", "2", srv.Addr().String(), "disconnect", secret)
		cmd.Stdin = strings.NewReader(input)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("User-Name = \"car9@fleet.example\"\nAcct-Session-Id = \"5f3a9c0e12d4b7a1\"\nNAS-Identifier = \""+testNAS.Identifier+"\"\nMessage-Authenticator = 0x00\n", string(secret))
	if err != nil || !strings.Contains(out, "Received Disconnect-ACK") {
		t.Fatalf("radclient: %v\n%s", err, out)
	}
	got = append(got, <-seen)
	if want := (Selector{NAI: "car9@fleet.example", SessionID: "5f3a9c0e12d4b7a1"}); got[0] != want {
		t.Errorf("revocation %+v", got[0])
	}
	out, _ = run("User-Name = \"car10@fleet.example\"\nMessage-Authenticator = 0x00\n", string(secret))
	if !strings.Contains(out, "Received Disconnect-NAK") || !strings.Contains(out, "Error-Cause = Session-Context-Not-Found") {
		t.Errorf("unknown session:\n%s", out)
	}
	<-seen
	out, _ = run("User-Name = \"car9@fleet.example\"\nMessage-Authenticator = 0x00\n", "wrong-secret") // waits out radclient's timeout
	if strings.Contains(out, "Received") {
		t.Errorf("wrong secret answered:\n%s", out)
	}
	st := srv.Stats()
	if st.ACKs != 1 || st.NAKs != 1 || st.Revocations != 2 || st.Discarded < 1 {
		t.Errorf("stats %+v", st)
	}
	select {
	case s := <-seen:
		t.Errorf("revocation with the wrong secret: %+v", s)
	default:
	}
}
