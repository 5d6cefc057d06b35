package aaa

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2866"
)

// countingRand is a deterministic source of authenticators.
type countingRand struct{ n byte }

func (r *countingRand) Read(b []byte) (int, error) {
	for i := range b {
		r.n++
		b[i] = r.n
	}
	return len(b), nil
}

var (
	srvA  = netip.MustParseAddrPort("[2001:db8:ffff::18]:1812")
	srvB  = netip.MustParseAddrPort("192.0.2.18:1812")
	acctA = netip.MustParseAddrPort("[2001:db8:ffff::18]:1813")
	acctB = netip.MustParseAddrPort("192.0.2.18:1813")
)

func testEngine(maxPorts int) *engine {
	return newEngine(engineConfig{
		auth: []netip.AddrPort{srvA, srvB}, acct: []netip.AddrPort{acctA, acctB},
		secret: testSecret, nas: testNAS, timeout: time.Second, tries: 3,
		deadTime: 10 * time.Second, maxPorts: maxPorts, rand: &countingRand{},
	})
}

func accessJob(nai string) *job { return &job{kind: KindAccess, access: AccessRequest{NAI: nai}} }

// one takes the only send, checking where it goes.
func one(t *testing.T, e *engine, ep int) send {
	t.Helper()
	s := e.takeSends()
	if len(s) != 1 {
		t.Fatalf("%d sends, want 1", len(s))
	}
	if s[0].ep != ep {
		t.Fatalf("sent to endpoint %d, want %d", s[0].ep, ep)
	}
	return s[0]
}

func none(t *testing.T, e *engine) {
	t.Helper()
	if s := e.takeSends(); len(s) != 0 {
		t.Fatalf("%d unexpected sends", len(s))
	}
}

func accept(t *testing.T, req []byte) []byte {
	return response(t, req, radius.CodeAccessAccept, testSecret, true, fullAccept(t))
}

// TestEngineFailover: a server that never answers gets its retransmissions,
// is marked dead, the request goes on to the next; later requests skip the
// dead server; its probe brings it back.
func TestEngineFailover(t *testing.T) {
	e := testEngine(16)
	t0 := time.Unix(100, 0)
	e.submit(accessJob("car9@fleet.example"), t0)
	first := one(t, e, 0)
	if !e.nextWake().Equal(t0.Add(time.Second)) {
		t.Errorf("next wake %v", e.nextWake())
	}
	e.tick(t0.Add(999 * time.Millisecond))
	none(t, e)
	for i := 1; i <= 2; i++ {
		e.tick(t0.Add(time.Duration(i) * time.Second))
		if s := one(t, e, 0); !bytes.Equal(s.b, first.b) || s.port != first.port {
			t.Fatalf("retransmission %d differs", i)
		}
	}
	e.tick(t0.Add(3 * time.Second))
	second := one(t, e, 1)
	if bytes.Equal(second.b[4:20], first.b[4:20]) {
		t.Error("the same Request Authenticator to another server")
	}
	if !e.eps[0].dead || e.eps[0].Timeouts != 1 || e.eps[0].Retransmissions != 2 || e.eps[0].Requests != 1 || e.eps[0].InFlight != 0 {
		t.Errorf("server A: dead %v %+v", e.eps[0].dead, e.eps[0].EndpointStats)
	}
	e.receive(1, second.port, accept(t, second.b), t0.Add(3500*time.Millisecond))
	r := e.takeResults()
	if len(r) != 1 || r[0].Err != nil || r[0].Auth == nil || r[0].Auth.SPI != 4097 || r[0].Auth.NAI != "car9@fleet.example" || r[0].Server != srvB ||
		r[0].Latency != 3500*time.Millisecond || r[0].NAI != "car9@fleet.example" || r[0].Kind != KindAccess {
		t.Fatalf("result %+v", r)
	}
	// A second answer to the same request (a retransmission's) is dropped.
	e.receive(1, second.port, accept(t, second.b), t0.Add(3600*time.Millisecond))
	if len(e.takeResults()) != 0 || e.eps[1].Dropped != 1 {
		t.Error("duplicate answer not dropped")
	}
	// A is dead: the next request goes to B straight away.
	e.submit(accessJob("car10@fleet.example"), t0.Add(4*time.Second))
	s := one(t, e, 1)
	e.receive(1, s.port, accept(t, s.b), t0.Add(4*time.Second))
	e.takeResults()
	// The probe, when A's dead time is over.
	if !e.nextWake().Equal(t0.Add(13 * time.Second)) {
		t.Errorf("probe due at %v", e.nextWake())
	}
	e.tick(t0.Add(13 * time.Second))
	probe := one(t, e, 0)
	if radius.Code(probe.b[0]) != radius.CodeStatusServer || e.eps[0].Probes != 1 {
		t.Fatalf("probe code %v", radius.Code(probe.b[0]))
	}
	if _, err := checkMessageAuthenticator(probe.b, (*[16]byte)(probe.b[4:20]), testSecret, true); err != nil {
		t.Errorf("probe Message-Authenticator: %v", err)
	}
	e.receive(0, probe.port, response(t, probe.b, radius.CodeAccessAccept, testSecret, false, nil), t0.Add(13*time.Second))
	if e.eps[0].dead || len(e.takeResults()) != 0 {
		t.Error("probe answered: A still dead, or a result for a probe")
	}
	e.submit(accessJob("car11@fleet.example"), t0.Add(14*time.Second))
	one(t, e, 0)
}

// TestEngineProbeUnanswered: a probe that goes unanswered is sent again
// a dead time later, and requests meanwhile still skip the server.
func TestEngineProbeUnanswered(t *testing.T) {
	e := testEngine(16)
	t0 := time.Unix(100, 0)
	e.submit(accessJob("a@x"), t0)
	for i := 1; i <= 3; i++ {
		e.takeSends()
		e.tick(t0.Add(time.Duration(i) * time.Second))
	}
	s := one(t, e, 1) // failed over to B, which answers
	e.receive(1, s.port, accept(t, s.b), t0.Add(3*time.Second))
	e.takeResults()
	for i := 4; i <= 12; i++ {
		e.tick(t0.Add(time.Duration(i) * time.Second))
		none(t, e)
	}
	e.tick(t0.Add(13 * time.Second))
	probe := one(t, e, 0)
	if radius.Code(probe.b[0]) != radius.CodeStatusServer {
		t.Fatal("not a probe")
	}
	e.submit(accessJob("b@x"), t0.Add(13500*time.Millisecond))
	s = one(t, e, 1)
	e.receive(1, s.port, accept(t, s.b), t0.Add(13500*time.Millisecond))
	e.tick(t0.Add(14 * time.Second)) // the probe timed out
	for _, s := range e.takeSends() {
		if s.ep == 0 {
			t.Error("sent to A while it is dead")
		}
	}
	if !e.eps[0].dead || e.eps[0].probe != nil {
		t.Error("A after an unanswered probe")
	}
	for i := 15; i <= 23; i++ {
		e.tick(t0.Add(time.Duration(i) * time.Second))
		for _, s := range e.takeSends() {
			if s.ep == 0 {
				t.Fatalf("sent to A at +%ds, before its dead time", i)
			}
		}
	}
	e.tick(t0.Add(24 * time.Second))
	if probes := e.takeSends(); len(probes) != 1 || probes[0].ep != 0 || radius.Code(probes[0].b[0]) != radius.CodeStatusServer || e.eps[0].Probes != 2 {
		t.Errorf("second probe: %v", probes)
	}
}

// TestEngineAllDead: with no server answering, the request tries each in
// turn and ends with ErrTimeout after all their tries.
func TestEngineAllDead(t *testing.T) {
	e := testEngine(16)
	t0 := time.Unix(100, 0)
	e.submit(accessJob("a@x"), t0)
	var sends []int
	for i := 0; i <= 6; i++ {
		e.tick(t0.Add(time.Duration(i) * time.Second))
		for _, s := range e.takeSends() {
			sends = append(sends, s.ep)
		}
	}
	if want := []int{0, 0, 0, 1, 1, 1}; !equalInts(sends, want) {
		t.Errorf("sends to %v, want %v", sends, want)
	}
	r := e.takeResults()
	if len(r) != 1 || !errors.Is(r[0].Err, ErrTimeout) || r[0].Server != srvB || r[0].Latency != 6*time.Second {
		t.Fatalf("result %+v", r)
	}
	if !e.eps[0].dead || !e.eps[1].dead {
		t.Error("both should be dead")
	}
	// Every server dead: the next request still tries, in order.
	e.submit(accessJob("b@x"), t0.Add(7*time.Second))
	one(t, e, 0)
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestEngineDeadMovesOthers: when a server is marked dead, the requests
// still out to it go to the next at once, not after their own timeouts:
// a dead server costs only the routers whose requests were on it, once.
func TestEngineDeadMovesOthers(t *testing.T) {
	e := testEngine(16)
	t0 := time.Unix(100, 0)
	e.submit(accessJob("a@x"), t0)
	e.submit(accessJob("b@x"), t0.Add(500*time.Millisecond))
	e.submit(accessJob("c@x"), t0.Add(900*time.Millisecond))
	e.takeSends()
	for _, at := range []time.Duration{1000, 1500, 1900, 2000, 2500, 2900} {
		e.tick(t0.Add(at * time.Millisecond))
	}
	e.takeSends()
	e.tick(t0.Add(3 * time.Second))
	sends := e.takeSends()
	if len(sends) != 3 {
		t.Fatalf("%d sends at the failure, want all 3 moved to B", len(sends))
	}
	for _, s := range sends {
		if s.ep != 1 {
			t.Errorf("moved to %d", s.ep)
		}
		e.receive(1, s.port, accept(t, s.b), t0.Add(3*time.Second))
	}
	r := e.takeResults()
	if len(r) != 3 || e.eps[0].Timeouts != 3 {
		t.Errorf("%d results, %d timeouts on A", len(r), e.eps[0].Timeouts)
	}
	for _, x := range r {
		if x.Err != nil || x.Server != srvB {
			t.Errorf("result %+v", x)
		}
	}
}

// TestEngineLiveServerNotDead: a server that answers other requests is
// not marked dead when one of its requests goes unanswered.
func TestEngineLiveServerNotDead(t *testing.T) {
	e := testEngine(16)
	t0 := time.Unix(100, 0)
	e.submit(accessJob("a@x"), t0)
	e.takeSends()
	e.submit(accessJob("b@x"), t0.Add(100*time.Millisecond))
	s := one(t, e, 0)
	e.receive(0, s.port, accept(t, s.b), t0.Add(200*time.Millisecond))
	for i := 1; i <= 3; i++ {
		e.tick(t0.Add(time.Duration(i) * time.Second))
	}
	sends := e.takeSends()
	if len(sends) != 3 || sends[2].ep != 1 || e.eps[0].dead {
		t.Errorf("sends %d, last to %d, A dead %v", len(sends), sends[len(sends)-1].ep, e.eps[0].dead)
	}
}

// TestEngineForged: an answer made with another secret, or tampered with,
// is dropped and the request goes on waiting for the real one.
func TestEngineForged(t *testing.T) {
	e := testEngine(16)
	t0 := time.Unix(100, 0)
	e.submit(accessJob("a@x"), t0)
	s := one(t, e, 0)
	e.receive(0, s.port, response(t, s.b, radius.CodeAccessReject, []byte("guess"), true, nil), t0)
	e.receive(0, s.port+1, accept(t, s.b), t0) // a socket that does not exist
	e.receive(0, s.port, []byte{2, 1}, t0)
	if len(e.takeResults()) != 0 || e.eps[0].Dropped != 3 {
		t.Fatalf("forgeries: %d dropped", e.eps[0].Dropped)
	}
	e.receive(0, s.port, response(t, s.b, radius.CodeAccessReject, testSecret, true, nil), t0)
	if r := e.takeResults(); len(r) != 1 || !errors.Is(r[0].Err, ErrRejected) {
		t.Errorf("result %+v", r)
	}
}

// TestEngineIdentifiers: 128 requests at once per socket, further sockets
// up to the limit, requests beyond that wait for a free identifier, and a
// freed identifier is not the next one handed out.
func TestEngineIdentifiers(t *testing.T) {
	e := testEngine(2)
	t0 := time.Unix(100, 0)
	seen := map[[2]int]bool{}
	for i := range 2*perPort + 1 {
		e.submit(accessJob("a@x"), t0)
		for _, s := range e.takeSends() {
			k := [2]int{s.port, int(s.b[1])}
			if seen[k] {
				t.Fatalf("request %d: identifier %v in use twice", i, k)
			}
			seen[k] = true
		}
	}
	if len(seen) != 2*perPort || len(e.waiting) != 1 || len(e.eps[0].ports) != 2 || e.eps[0].InFlight != 2*perPort {
		t.Fatalf("%d out, %d waiting, %d sockets", len(seen), len(e.waiting), len(e.eps[0].ports))
	}
	// Answer identifier 7 of socket 1: the waiting request takes the next
	// identifier in turn, not the one just freed.
	req := e.eps[0].ports[1].jobs[7].wire
	e.receive(0, 1, accept(t, req), t0)
	s := one(t, e, 0)
	if s.port != 1 || s.b[1] != perPort {
		t.Errorf("the waiting request got socket %d id %d, want 1 and %d", s.port, s.b[1], perPort)
	}
	if len(e.waiting) != 0 || len(e.takeResults()) != 1 {
		t.Error("waiting request not started")
	}
	// Round and round: answering the oldest request and sending a new one,
	// 300 times, never hands out an identifier freed fewer than 127 sends
	// before.
	p := e.eps[0].ports[1]
	freedAt := map[uint8]int{}
	for n := range 300 {
		var oldest *job
		for id := range 256 {
			k := uint8(int(p.next) + id)
			if p.jobs[k] != nil {
				oldest = p.jobs[k]
				break
			}
		}
		freedAt[oldest.id] = n
		e.receive(0, 1, accept(t, oldest.wire), t0)
		e.takeResults()
		e.submit(accessJob("a@x"), t0)
		for _, s := range e.takeSends() {
			if at, ok := freedAt[s.b[1]]; ok && s.port == 1 && n-at < perPort-1 {
				t.Fatalf("identifier %d reused %d sends after it was freed", s.b[1], n-at)
			}
		}
	}
}

// TestEngineAccounting: accounting goes to the accounting servers, its
// retransmissions are the same datagram, and the Accounting-Response ends it.
func TestEngineAccounting(t *testing.T) {
	e := testEngine(16)
	t0 := time.Unix(1767225600, 0)
	rec := AccountingRecord{Status: AcctStop, SessionID: "s1", NAI: "a@x", InputOctets: 5 << 32, Event: t0.Add(-2 * time.Second)}
	e.submit(&job{kind: KindAccounting, acct: rec}, t0)
	s := one(t, e, 2)
	if err := checkAuthenticator(s.b, &zero16, testSecret); err != nil {
		t.Fatal(err)
	}
	p, err := radius.Parse(s.b, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := radius.Integer(p.Get(rfc2866.AcctDelayTime_Type)); d != 2 {
		t.Errorf("Acct-Delay-Time %d", d)
	}
	e.tick(t0.Add(time.Second))
	if r := one(t, e, 2); !bytes.Equal(r.b, s.b) {
		t.Error("accounting retransmission differs")
	}
	// An Access-Accept is no answer to an Accounting-Request.
	e.receive(2, s.port, response(t, s.b, radius.CodeAccessAccept, testSecret, false, nil), t0)
	e.receive(2, s.port, response(t, s.b, radius.CodeAccountingResponse, testSecret, false, nil), t0.Add(1500*time.Millisecond))
	r := e.takeResults()
	if len(r) != 1 || r[0].Err != nil || r[0].Kind != KindAccounting || r[0].SessionID != "s1" || r[0].Status != AcctStop ||
		r[0].NAI != "a@x" || r[0].Server != acctA || e.eps[2].Dropped != 1 {
		t.Errorf("result %+v", r)
	}
}

func TestEngineFailAll(t *testing.T) {
	e := testEngine(1)
	t0 := time.Unix(100, 0)
	for range 300 {
		e.submit(accessJob("a@x"), t0)
	}
	e.failAll(ErrClosed, t0)
	r := e.takeResults()
	if len(r) != 300 {
		t.Fatalf("%d results", len(r))
	}
	for _, x := range r {
		if !errors.Is(x.Err, ErrClosed) {
			t.Fatal(x.Err)
		}
	}
	if e.eps[0].InFlight != 0 {
		t.Errorf("%d still in flight", e.eps[0].InFlight)
	}
}
