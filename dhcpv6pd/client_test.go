package dhcpv6pd

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func bind(t *testing.T, rc bool) (*link, time.Time) {
	t.Helper()
	l := &link{t: t, c: newTestClient(t, rc, nil), s: newTestServer(t, nil, nil)}
	l.deliver(l.c.Start(t0), t0)
	now := l.run(t0, t0.Add(5*time.Second))
	if l.c.State() != Bound {
		t.Fatalf("state %v after %v, want bound", l.c.State(), types(l.sent))
	}
	return l, now
}

func TestSolicitAdvertiseRequestReply(t *testing.T) {
	l, _ := bind(t, false)
	if got := strings.Join(types(l.sent), ","); got != "SOLICIT,REQUEST" {
		t.Fatalf("client sent %s", got)
	}
	if got := strings.Join(types(l.got), ","); got != "ADVERTISE,REPLY" {
		t.Fatalf("server sent %s", got)
	}
	held := l.c.Prefixes(t0)
	if len(held) != 1 || held[0].Prefix.Bits() != 56 || !pool.Contains(held[0].Prefix.Addr()) {
		t.Fatalf("held %v", held)
	}
	p := held[0].Prefix
	// The Solicit asked for a /56 (reqprefix 56), with no server ID; the
	// Request went to the advertising server with the advertised prefix.
	sol, req := l.sent[0], l.sent[1]
	if sol.ServerID != nil || len(sol.IAPDs) != 1 || sol.IAPDs[0].Prefixes[0].Prefix != netip.MustParsePrefix("::/56") || sol.RapidCommit {
		t.Fatalf("solicit %+v", sol)
	}
	if !req.ServerID.Equal(srvDUID) || req.IAPDs[0].Prefixes[0].Prefix != p {
		t.Fatalf("request %+v", req)
	}
	// Both ends report the same delegation, valid for DefaultValid.
	want := Event{Kind: Delegated, Router: hoa, Prefix: p, PreferredUntil: held[0].PreferredUntil, ValidUntil: held[0].ValidUntil}
	if len(l.cevs) != 1 || l.cevs[0] != want || len(l.sevs) != 1 || l.sevs[0] != want {
		t.Fatalf("events client %v server %v, want %v", l.cevs, l.sevs, want)
	}
	if d := held[0].ValidUntil.Sub(l.c.rt.start); d < DefaultValid-time.Second || d > DefaultValid {
		t.Fatalf("valid for %v", d)
	}
	lease := l.c.Lease()
	if !lease.ServerID.Equal(srvDUID) || lease.T1.Sub(l.c.rt.start).Round(time.Second) != DefaultT1 || lease.T2.Sub(l.c.rt.start).Round(time.Second) != DefaultT2 {
		t.Fatalf("lease %+v", lease)
	}
}

func TestRapidCommit(t *testing.T) {
	l, _ := bind(t, true)
	if got := strings.Join(types(l.sent), ","); got != "SOLICIT" {
		t.Fatalf("client sent %s", got)
	}
	if len(l.got) != 1 || l.got[0].Type != Reply || !l.got[0].RapidCommit {
		t.Fatalf("server sent %v", types(l.got))
	}
	// A server that does not do Rapid Commit answers with an Advertise
	// and the client goes on with a Request.
	l2 := &link{t: t, c: newTestClient(t, true, nil), s: newTestServer(t, nil, func(c *ServerConfig) { c.NoRapidCommit = true })}
	l2.deliver(l2.c.Start(t0), t0)
	l2.run(t0, t0.Add(5*time.Second))
	if got := strings.Join(types(l2.sent), ","); got != "SOLICIT,REQUEST" || l2.c.State() != Bound {
		t.Fatalf("client sent %s, state %v", got, l2.c.State())
	}
}

// serverMsg wraps a server message in the Relay-reply the client expects.
func serverMsg(m *Msg) []byte {
	r := Relay{Type: RelayRepl, HopCount: 1, LinkAddr: hoa, PeerAddr: hoa, Inner: m.Marshal()}
	return r.Marshal()
}

func advertise(c *Client, server DUID, pref uint8, p string) *Msg {
	return &Msg{Type: Advertise, XID: c.xid, ClientID: duid1, ServerID: server, Preference: pref, HasPreference: pref != 0,
		IAPDs: []IAPD{{IAID: iaid, T1: 100, T2: 160, Prefixes: []Prefix{{Prefix: netip.MustParsePrefix(p), Preferred: 200, Valid: 400}}}}}
}

func firstSend(t *testing.T, c *Client) (Output, time.Time) {
	t.Helper()
	c.Start(t0)
	at := c.Next()
	if at.Before(t0) || !at.Before(t0.Add(solMaxDelay)) {
		t.Fatalf("first Solicit at %v: not within SOL_MAX_DELAY", at.Sub(t0))
	}
	out := c.Tick(at)
	if len(out.Send) != 1 {
		t.Fatalf("sent %d", len(out.Send))
	}
	return out, at
}

func TestAdvertisePreference(t *testing.T) {
	c := newTestClient(t, false, nil)
	_, at := firstSend(t, c)
	s1, s2, s3 := NewDUIDUUID([16]byte{0: 1}), NewDUIDUUID([16]byte{0: 2}), NewDUIDUUID([16]byte{0: 3})
	for _, a := range []*Msg{advertise(c, s1, 10, "2001:db8:a::/56"), advertise(c, s2, 200, "2001:db8:b::/56"), advertise(c, s3, 50, "2001:db8:c::/56")} {
		out, err := c.Receive(serverMsg(a), haPort, at.Add(100*time.Millisecond))
		if err != nil || len(out.Send) != 0 {
			t.Fatalf("advertise: %v %v", out, err)
		}
	}
	// An Advertise without prefixes is ignored (RFC 8415 §18.2.9).
	empty := advertise(c, NewDUIDUUID([16]byte{0: 4}), 254, "2001:db8:d::/56")
	empty.IAPDs[0].Prefixes = nil
	if _, err := c.Receive(serverMsg(empty), haPort, at); err == nil {
		t.Fatal("empty Advertise taken")
	}
	if c.State() != Soliciting {
		t.Fatalf("state %v before the first RT ended", c.State())
	}
	out := c.Tick(c.Next())
	if c.State() != Requesting || len(out.Send) != 1 {
		t.Fatalf("state %v", c.State())
	}
	req := inner(t, out.Send[0].Data)
	if req.Type != Request || !req.ServerID.Equal(s2) || req.IAPDs[0].Prefixes[0].Prefix != netip.MustParsePrefix("2001:db8:b::/56") {
		t.Fatalf("request %+v", req)
	}
}

func TestAdvertisePreference255RequestsAtOnce(t *testing.T) {
	c := newTestClient(t, false, nil)
	_, at := firstSend(t, c)
	out, err := c.Receive(serverMsg(advertise(c, srvDUID, 255, "2001:db8:b::/56")), haPort, at.Add(time.Millisecond))
	if err != nil || c.State() != Requesting || len(out.Send) != 1 || inner(t, out.Send[0].Data).Type != Request {
		t.Fatalf("state %v, %v", c.State(), err)
	}
}

func TestSolicitRetransmissionBackoff(t *testing.T) {
	c := newTestClient(t, false, nil)
	_, at := firstSend(t, c)
	var times []time.Time
	var elapsed []time.Duration
	times = append(times, at)
	elapsed = append(elapsed, 0)
	for len(times) < 16 {
		next := c.Next()
		out := c.Tick(next)
		if len(out.Send) != 1 {
			t.Fatalf("tick at %v sent %d", next, len(out.Send))
		}
		m := inner(t, out.Send[0].Data)
		if m.Type != Solicit || m.XID != c.xid {
			t.Fatalf("retransmission %v", m.Type)
		}
		times = append(times, next)
		elapsed = append(elapsed, m.Elapsed)
	}
	// RT1 in (IRT, 1.1 IRT]; then each RT is 1.9..2.1 times the last, capped
	// at SOL_MAX_RT ± 10 %.
	rt := times[1].Sub(times[0])
	if rt <= time.Second || rt > 1100*time.Millisecond {
		t.Fatalf("first RT %v", rt)
	}
	for i := 2; i < len(times); i++ {
		prev, cur := times[i-1].Sub(times[i-2]), times[i].Sub(times[i-1])
		capped := cur >= 3240*time.Second
		if !capped && (cur < scale(prev, 1.9)-time.Millisecond || cur > scale(prev, 2.1)+time.Millisecond) {
			t.Fatalf("RT %d: %v after %v", i, cur, prev)
		}
		if cur > 3960*time.Second {
			t.Fatalf("RT %d: %v above SOL_MAX_RT+10%%", i, cur)
		}
	}
	if last := times[len(times)-1].Sub(times[len(times)-2]); last < 3240*time.Second {
		t.Fatalf("last RT %v: not at SOL_MAX_RT", last)
	}
	// Elapsed Time counts from the first transmission, saturating at
	// 655.35 s.
	for i := range elapsed {
		want := min(times[i].Sub(times[0]).Round(10*time.Millisecond), 0xffff*10*time.Millisecond)
		if d := elapsed[i] - want; d < -10*time.Millisecond || d > 10*time.Millisecond {
			t.Fatalf("elapsed %d: %v, want %v", i, elapsed[i], want)
		}
	}
	if c.Retransmits != 15 || c.State() != Soliciting {
		t.Fatalf("retransmits %d state %v", c.Retransmits, c.State())
	}
}

func TestRequestGivesUpAfterMRC(t *testing.T) {
	c := newTestClient(t, false, nil)
	_, at := firstSend(t, c)
	c.Receive(serverMsg(advertise(c, srvDUID, 255, "2001:db8:b::/56")), haPort, at)
	n := 1
	for c.State() == Requesting {
		out := c.Tick(c.Next())
		for _, d := range out.Send {
			if inner(t, d.Data).Type == Request {
				n++
			}
		}
	}
	if n != reqParams.MRC || c.State() != Soliciting || c.Failures != 1 {
		t.Fatalf("%d Requests, then %v", n, c.State())
	}
}

func TestRenewAtT1(t *testing.T) {
	l, _ := bind(t, false)
	before := l.c.Lease()
	p := before.Prefixes[0]
	l.sent, l.cevs, l.sevs = nil, nil, nil
	now := l.run(t0, before.T1.Add(time.Second))
	if got := strings.Join(types(l.sent), ","); got != "RENEW" {
		t.Fatalf("client sent %s", got)
	}
	ren := l.sent[0]
	if !ren.ServerID.Equal(srvDUID) || ren.IAPDs[0].Prefixes[0].Prefix != p.Prefix {
		t.Fatalf("renew %+v", ren)
	}
	after := l.c.Lease()
	if l.c.State() != Bound || after.Prefixes[0].Prefix != p.Prefix || !after.Prefixes[0].ValidUntil.After(p.ValidUntil) || !after.T1.After(before.T1) {
		t.Fatalf("after renew: %v %+v", l.c.State(), after)
	}
	if len(l.cevs) != 1 || l.cevs[0].Kind != Delegated || l.cevs[0].ValidUntil != after.Prefixes[0].ValidUntil {
		t.Fatalf("events %v", l.cevs)
	}
	if string(EncodeLease(before)) == string(EncodeLease(after)) {
		t.Fatal("lease file would not change")
	}
	_ = now
}

func TestRebindAfterRenewFails(t *testing.T) {
	l, _ := bind(t, false)
	lease := l.c.Lease()
	l.sent = nil
	l.drop = true
	l.run(t0, lease.T2.Add(-time.Second))
	if l.c.State() != Renewing || len(l.sent) < 2 || slices.ContainsFunc(l.sent, func(m Msg) bool { return m.Type != Renew }) {
		t.Fatalf("state %v, sent %v", l.c.State(), types(l.sent))
	}
	// Renew: IRT 10 s doubling: at T1, +10, +30, +70... all to the same
	// server until T2.
	l.sent = nil
	l.drop = false
	l.run(lease.T2.Add(-time.Second), lease.T2.Add(time.Second))
	if got := strings.Join(types(l.sent), ","); got != "REBIND" {
		t.Fatalf("at T2 sent %s", got)
	}
	if l.sent[0].ServerID != nil {
		t.Fatal("Rebind with a Server ID")
	}
	if l.c.State() != Bound || l.c.Lease().Prefixes[0].Prefix != lease.Prefixes[0].Prefix {
		t.Fatalf("state %v lease %+v", l.c.State(), l.c.Lease())
	}
}

func TestExpiryStartsOver(t *testing.T) {
	l, _ := bind(t, false)
	lease := l.c.Lease()
	p := lease.Prefixes[0]
	l.drop = true
	l.cevs, l.sent = nil, nil
	l.run(t0, p.ValidUntil.Add(2*time.Second))
	if len(l.cevs) != 1 || l.cevs[0] != (Event{Kind: Expired, Router: hoa, Prefix: p.Prefix}) {
		t.Fatalf("events %v", l.cevs)
	}
	if l.c.State() != Soliciting || len(l.c.Prefixes(p.ValidUntil)) != 0 {
		t.Fatalf("state %v", l.c.State())
	}
	// The new Solicit asks for the lost prefix back.
	last := l.sent[len(l.sent)-1]
	if last.Type != Solicit || last.IAPDs[0].Prefixes[0].Prefix != p.Prefix {
		t.Fatalf("last sent %+v", last)
	}
	if got := l.c.Lease(); got.ServerID != nil || !got.T1.IsZero() || got.Hint != p.Prefix {
		t.Fatalf("lease %+v", got)
	}
}

func TestRelease(t *testing.T) {
	l, now := bind(t, false)
	p := l.c.Lease().Prefixes[0].Prefix
	l.sent, l.cevs, l.sevs = nil, nil, nil
	l.deliver(l.c.Release(now), now)
	if got := strings.Join(types(l.sent), ","); got != "RELEASE" || !l.sent[0].ServerID.Equal(srvDUID) || l.sent[0].IAPDs[0].Prefixes[0].Prefix != p {
		t.Fatalf("sent %v", l.sent)
	}
	want := Event{Kind: Released, Router: hoa, Prefix: p}
	if len(l.cevs) != 1 || l.cevs[0] != want || len(l.sevs) != 1 || l.sevs[0] != want {
		t.Fatalf("events client %v server %v", l.cevs, l.sevs)
	}
	if l.c.State() != Init || len(l.c.Lease().Prefixes) != 0 || len(l.s.Leases(hoa)) != 0 || !l.c.Next().IsZero() {
		t.Fatalf("state %v", l.c.State())
	}
	// Unanswered, the Release goes REL_MAX_RC times, then the client stops.
	l2, now2 := bind(t, false)
	l2.drop = true
	l2.sent = nil
	l2.deliver(l2.c.Release(now2), now2)
	l2.run(now2, now2.Add(time.Hour))
	if len(l2.sent) != relParams.MRC || l2.c.State() != Init {
		t.Fatalf("%d Releases, state %v", len(l2.sent), l2.c.State())
	}
}

func TestRestartRebindKeepsPrefix(t *testing.T) {
	l, now := bind(t, false)
	p := l.c.Lease().Prefixes[0].Prefix
	stored, err := DecodeLease(EncodeLease(l.c.Lease()))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		srv  *Server
	}{
		// The home agent kept its lease file...
		{"same server", l.s},
		{"server restarted", newTestServer(t, mustState(t, l.s), nil)},
		// ...or lost it: the Rebind still gets the prefix back.
		{"server lost its state", newTestServer(t, nil, nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			later := now.Add(10 * time.Minute)
			c := newTestClient(t, false, stored)
			l2 := &link{t: t, c: c, s: tc.srv}
			out := c.Start(later)
			if c.State() != Rebinding || len(out.Send) != 1 {
				t.Fatalf("state %v", c.State())
			}
			// The stored prefix is usable at once.
			if len(out.Events) != 1 || out.Events[0].Kind != Delegated || out.Events[0].Prefix != p {
				t.Fatalf("events at start %v", out.Events)
			}
			l2.deliver(out, later)
			reb := l2.sent[0]
			if reb.Type != Rebind || reb.ServerID != nil || reb.IAPDs[0].Prefixes[0].Prefix != p || reb.IAPDs[0].Prefixes[0].Valid == 0 {
				t.Fatalf("rebind %+v", reb)
			}
			if c.State() != Bound || c.Lease().Prefixes[0].Prefix != p || len(c.Lease().Prefixes) != 1 {
				t.Fatalf("state %v lease %+v", c.State(), c.Lease())
			}
			if ls := tc.srv.Leases(hoa); len(ls) != 1 || ls[0].Prefix != p {
				t.Fatalf("server leases %v", ls)
			}
		})
	}
}

func mustState(t *testing.T, s *Server) *ServerState {
	t.Helper()
	st, err := DecodeServerState(EncodeServerState(s.State()))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestRebindNoBindingStartsOver(t *testing.T) {
	l, now := bind(t, false)
	lease := l.c.Lease()
	// The server refuses (here: the router lost its right to delegation).
	srv := newTestServer(t, nil, func(c *ServerConfig) { c.Registered = func(netip.Addr) bool { return false } })
	c := newTestClient(t, false, lease)
	l2 := &link{t: t, c: c, s: srv}
	l2.deliver(c.Start(now), now)
	if len(l2.got) != 1 || l2.got[0].IAPDs[0].Status == nil || l2.got[0].IAPDs[0].Status.Code != StatusNoBinding {
		t.Fatalf("server answered %+v", l2.got)
	}
	if c.State() != Soliciting {
		t.Fatalf("state %v", c.State())
	}
	// A handcrafted NoBinding Reply does the same.
	c3 := newTestClient(t, false, lease)
	c3.Start(now)
	r := &Msg{Type: Reply, XID: c3.xid, ClientID: duid1, ServerID: srvDUID, IAPDs: []IAPD{{IAID: iaid, Status: &Status{Code: StatusNoBinding}}}}
	if _, err := c3.Receive(serverMsg(r), haPort, now); err != nil || c3.State() != Soliciting {
		t.Fatalf("state %v %v", c3.State(), err)
	}
}

func TestRenewNoBindingRequestsAgain(t *testing.T) {
	l, _ := bind(t, false)
	lease := l.c.Lease()
	l.c.Tick(lease.T1)
	if l.c.State() != Renewing {
		t.Fatal(l.c.State())
	}
	r := &Msg{Type: Reply, XID: l.c.xid, ClientID: duid1, ServerID: srvDUID, IAPDs: []IAPD{{IAID: iaid, Status: &Status{Code: StatusNoBinding}}}}
	out, err := l.c.Receive(serverMsg(r), haPort, lease.T1)
	if err != nil || l.c.State() != Requesting || len(out.Send) != 1 {
		t.Fatalf("state %v %v", l.c.State(), err)
	}
	req := inner(t, out.Send[0].Data)
	if req.Type != Request || !req.ServerID.Equal(srvDUID) || req.IAPDs[0].Prefixes[0].Prefix != lease.Prefixes[0].Prefix {
		t.Fatalf("request %+v", req)
	}
}

func TestReplyLifetimeZeroRemovesPrefix(t *testing.T) {
	l, _ := bind(t, false)
	lease := l.c.Lease()
	l.c.Tick(lease.T1)
	keep := netip.MustParsePrefix("2001:db8:300::/56")
	r := &Msg{Type: Reply, XID: l.c.xid, ClientID: duid1, ServerID: srvDUID, IAPDs: []IAPD{{IAID: iaid, T1: 100, T2: 200, Prefixes: []Prefix{
		{Prefix: lease.Prefixes[0].Prefix}, {Prefix: keep, Preferred: 300, Valid: 600}}}}}
	out, err := l.c.Receive(serverMsg(r), haPort, lease.T1)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Events) != 2 || out.Events[0] != (Event{Kind: Released, Router: hoa, Prefix: lease.Prefixes[0].Prefix}) || out.Events[1].Prefix != keep {
		t.Fatalf("events %v", out.Events)
	}
	got := l.c.Lease()
	if len(got.Prefixes) != 1 || got.Prefixes[0].Prefix != keep || got.T1 != lease.T1.Add(100*time.Second) {
		t.Fatalf("lease %+v", got)
	}
}

func TestClientIgnoresWhatIsNotItsOwn(t *testing.T) {
	c := newTestClient(t, true, nil)
	_, at := firstSend(t, c)
	good := &Msg{Type: Reply, XID: c.xid, ClientID: duid1, ServerID: srvDUID, RapidCommit: true,
		IAPDs: []IAPD{{IAID: iaid, T1: 100, T2: 160, Prefixes: []Prefix{{Prefix: netip.MustParsePrefix("2001:db8:b::/56"), Preferred: 200, Valid: 400}}}}}
	mut := func(f func(m *Msg)) []byte {
		m := *good
		m.IAPDs = slices.Clone(good.IAPDs)
		f(&m)
		return serverMsg(&m)
	}
	cases := map[string][]byte{
		"wrong xid":         mut(func(m *Msg) { m.XID[0]++ }),
		"other client":      mut(func(m *Msg) { m.ClientID = duid2 }),
		"no server id":      mut(func(m *Msg) { m.ServerID = nil }),
		"no rapid commit":   mut(func(m *Msg) { m.RapidCommit = false }),
		"other iaid":        mut(func(m *Msg) { m.IAPDs[0].IAID[3] = 9 }),
		"t1 > t2":           mut(func(m *Msg) { m.IAPDs[0].T1 = 500 }),
		"unspecfail":        mut(func(m *Msg) { m.Status = &Status{Code: StatusUnspecFail} }),
		"not relayed":       good.Marshal(),
		"truncated":         serverMsg(good)[:40],
		"other relay peer":  (&Relay{Type: RelayRepl, LinkAddr: hoa, PeerAddr: hoa2, Inner: good.Marshal()}).Marshal(),
		"relay-forw":        (&Relay{Type: RelayForw, LinkAddr: hoa, PeerAddr: hoa, Inner: good.Marshal()}).Marshal(),
		"noprefixavail RC":  mut(func(m *Msg) { m.IAPDs[0] = IAPD{IAID: iaid, Status: &Status{Code: StatusNoPrefixAvail}} }),
		"advertise no pref": mut(func(m *Msg) { m.Type = Advertise; m.IAPDs[0].Prefixes = nil }),
	}
	before := string(EncodeLease(c.Lease()))
	for name, b := range cases {
		if _, err := c.Receive(b, haPort, at); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if c.State() != Soliciting || string(EncodeLease(c.Lease())) != before {
			t.Fatalf("%s changed the client", name)
		}
	}
	if _, err := c.Receive(serverMsg(good), netip.AddrPortFrom(hoa2, 547), at); err == nil {
		t.Error("accepted from another address")
	}
	if _, err := c.Receive(serverMsg(good), haPort, at); err != nil || c.State() != Bound {
		t.Fatalf("good reply: %v %v", err, c.State())
	}
}

func TestAutoPrefixLengthSendsNoHint(t *testing.T) {
	c, err := NewClient(ClientConfig{HoA: hoa, Server: haPort, DUID: duid1, IAID: iaid}, nil, seeded(3))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := firstSend(t, c)
	m := inner(t, out.Send[0].Data)
	if len(m.IAPDs) != 1 || len(m.IAPDs[0].Prefixes) != 0 {
		t.Fatalf("solicit IA_PD %+v", m.IAPDs)
	}
}

func TestClientTimersFromLifetimes(t *testing.T) {
	c := newTestClient(t, true, nil)
	_, at := firstSend(t, c)
	// T1 = T2 = 0: the client takes 0.5 and 0.8 of the preferred lifetime.
	r := &Msg{Type: Reply, XID: c.xid, ClientID: duid1, ServerID: srvDUID, RapidCommit: true,
		IAPDs: []IAPD{{IAID: iaid, Prefixes: []Prefix{{Prefix: netip.MustParsePrefix("2001:db8:b::/56"), Preferred: 1000, Valid: 2000}}}}}
	if _, err := c.Receive(serverMsg(r), haPort, at); err != nil {
		t.Fatal(err)
	}
	l := c.Lease()
	if d := l.T1.Sub(at); d < 499*time.Second || d > 500*time.Second {
		t.Fatalf("T1 after %v", d)
	}
	if d := l.T2.Sub(at); d < 799*time.Second || d > 800*time.Second {
		t.Fatalf("T2 after %v", d)
	}
	// Infinite lifetimes: no renewal at all.
	c2 := newTestClient(t, true, nil)
	_, at2 := firstSend(t, c2)
	r.XID = c2.xid
	r.IAPDs[0].Prefixes[0].Preferred, r.IAPDs[0].Prefixes[0].Valid = Infinity, Infinity
	if _, err := c2.Receive(serverMsg(r), haPort, at2); err != nil {
		t.Fatal(err)
	}
	if l := c2.Lease(); !l.T1.IsZero() || !l.T2.IsZero() || l.Prefixes[0].ValidUntil != Forever || !c2.Next().Equal(Forever) {
		t.Fatalf("lease %+v next %v", l, c2.Next())
	}
}

// A SOL_MAX_RT option, even in an Advertise that is ignored, caps the
// Solicit retransmissions from then on (RFC 8415 §18.2.9).
func TestSolMaxRT(t *testing.T) {
	c := newTestClient(t, false, nil)
	_, at := firstSend(t, c)
	adv := advertise(c, srvDUID, 0, "2001:db8:b::/56")
	adv.IAPDs[0].Prefixes = nil // ignored for its lack of prefixes
	adv.Other = []Option{{Code: OptSolMaxRT, Data: []byte{0, 0, 0, 120}}}
	if _, err := c.Receive(serverMsg(adv), haPort, at); err == nil {
		t.Fatal("empty Advertise taken")
	}
	prev := at
	var last time.Duration
	for i := 0; i < 12; i++ {
		next := c.Next()
		c.Tick(next)
		last = next.Sub(prev)
		prev = next
		if last > 132*time.Second {
			t.Fatalf("RT %v above SOL_MAX_RT 120 s + 10 %%", last)
		}
	}
	if last < 108*time.Second {
		t.Fatalf("RT %v: not at SOL_MAX_RT", last)
	}
}
