package aaa

import (
	"errors"
	"io"
	"net/netip"
	"time"
)

// Kind says what a request was.
type Kind uint8

const (
	KindAccess     Kind = iota // an Access-Request
	KindAccounting             // an Accounting-Request
	kindProbe                  // a Status-Server to a dead server; no result
)

func (k Kind) String() string {
	switch k {
	case KindAccess:
		return "access"
	case KindAccounting:
		return "accounting"
	case kindProbe:
		return "probe"
	}
	return "Kind(" + itoa(int(k)) + ")"
}

// Result is the outcome of one submitted request. Every request the client
// accepted gets exactly one.
type Result struct {
	Kind Kind
	NAI  string
	// SessionID and Status are the accounting record's.
	SessionID string
	Status    AcctStatus
	// Auth is the authorization of an Access-Accept; nil otherwise.
	Auth *Authorization
	// Err is nil for an Access-Accept or an Accounting-Response. Otherwise
	// it matches ErrRejected, ErrTimeout, ErrBadResponse or ErrClosed.
	Err error
	// Server is the server that answered, or the last one tried.
	Server netip.AddrPort
	// Latency runs from the submission to the result.
	Latency time.Duration
}

// ErrTimeout is what a result's error matches when no server answered:
// every server was tried, each with its retransmissions.
var ErrTimeout = errors.New("aaa: no RADIUS server answered")

// ErrClosed is the error of the results of requests still out when the
// client was closed, and of submissions after.
var ErrClosed = errors.New("aaa: client closed")

// maxServers bounds the server list: each job remembers the servers it
// tried in a bit mask.
const maxServers = 16

// engineConfig is what the engine needs; Config fills it.
type engineConfig struct {
	auth, acct     []netip.AddrPort // by preference
	secret         []byte
	nas            NAS
	timeout        time.Duration // one try
	tries          int           // sends to one server before the next
	deadTime       time.Duration // between probes of a dead server
	maxPorts       int           // sockets per server: perPort requests each
	allowMissingMA bool
	rand           io.Reader
}

// engine is the client's state machine: it decides what to send where and
// when, matches responses to requests, retransmits, fails over, marks
// servers dead and revives them. It does no I/O and takes the time as a
// parameter: its sends and results are collected for the shell to carry
// out (takeSends, takeResults).
type engine struct {
	cfg     engineConfig
	eps     []*endpoint // auth servers, then accounting servers
	timers  []timer     // by deadline: every try has the same timeout
	thead   int
	waiting []*job // no identifier free on their server
	sends   []send
	results []Result
}

type endpoint struct {
	idx       int
	addr      netip.AddrPort
	kind      Kind
	dead      bool
	nextProbe time.Time
	lastHeard time.Time
	probe     *job
	ports     []*port
	EndpointStats
}

// EndpointStats count what happened with one server.
type EndpointStats struct {
	Requests        uint64 `json:"requests"`        // first sends
	Retransmissions uint64 `json:"retransmissions"` // further sends of the same packet
	Responses       uint64 `json:"responses"`       // authentic answers matched to a request
	Timeouts        uint64 `json:"timeouts"`        // requests it never answered
	Dropped         uint64 `json:"dropped"`         // datagrams unmatched or not authentic
	Probes          uint64 `json:"probes"`          // Status-Servers sent while dead
	DeadTimes       uint64 `json:"dead_times"`      // times it was marked dead
	InFlight        int    `json:"in_flight"`
}

type port struct {
	jobs [256]*job
	used int
	next uint8 // where the search for a free identifier starts
}

type job struct {
	kind      Kind
	access    AccessRequest
	acct      AccountingRecord
	submitted time.Time
	ep        *endpoint // where it is out now; nil while waiting
	port      int
	id        uint8
	wire      []byte
	sends     int
	firstSend time.Time
	gen       uint32 // bumped by every send and release: stale timers skip
	tried     uint32 // endpoints tried, by idx
	done      bool
	lastEP    netip.AddrPort
}

type timer struct {
	at  time.Time
	j   *job
	gen uint32
}

type send struct {
	ep, port int
	b        []byte
}

func newEngine(cfg engineConfig) *engine {
	e := &engine{cfg: cfg}
	for _, a := range cfg.auth {
		e.eps = append(e.eps, &endpoint{idx: len(e.eps), addr: a, kind: KindAccess})
	}
	for _, a := range cfg.acct {
		e.eps = append(e.eps, &endpoint{idx: len(e.eps), addr: a, kind: KindAccounting})
	}
	return e
}

func (e *engine) takeSends() []send {
	s := e.sends
	e.sends = e.sends[:0:0]
	return s
}

func (e *engine) takeResults() []Result {
	r := e.results
	e.results = e.results[:0:0]
	return r
}

// submit starts a request.
func (e *engine) submit(j *job, now time.Time) {
	j.submitted = now
	e.dispatch(j, now)
}

// choose picks the server for a job's next attempt: the first live one it
// has not tried, else the first dead one it has not tried (a dead server
// may be back; with every server dead, trying is all there is), else none.
func (e *engine) choose(j *job) *endpoint {
	var fallback *endpoint
	for _, ep := range e.eps {
		if ep.kind != j.kind || j.tried&(1<<ep.idx) != 0 {
			continue
		}
		if !ep.dead {
			return ep
		}
		if fallback == nil {
			fallback = ep
		}
	}
	return fallback
}

func (e *engine) dispatch(j *job, now time.Time) {
	ep := e.choose(j)
	if ep == nil {
		e.finish(j, Result{Err: ErrTimeout}, now)
		return
	}
	e.start(j, ep, now)
}

// start sends j to ep with a fresh identifier, or parks it when ep has none
// free.
func (e *engine) start(j *job, ep *endpoint, now time.Time) {
	p, id, ok := e.alloc(ep, j)
	if !ok && j.kind == kindProbe {
		// Every identifier is out to a dead server: probe later.
		ep.probe, ep.nextProbe = nil, now.Add(e.cfg.deadTime)
		j.done = true
		return
	}
	if !ok {
		j.ep = nil
		e.waiting = append(e.waiting, j)
		return
	}
	j.ep, j.port, j.id, j.lastEP = ep, p, id, ep.addr
	var err error
	switch j.kind {
	case KindAccess, kindProbe:
		var auth [16]byte
		if _, err = io.ReadFull(e.cfg.rand, auth[:]); err == nil {
			if j.kind == KindAccess {
				j.wire, err = encodeAccessRequest(&j.access, &e.cfg.nas, id, &auth, e.cfg.secret)
			} else {
				j.wire, err = encodeStatusServer(&e.cfg.nas, id, &auth, e.cfg.secret)
			}
		}
	case KindAccounting:
		j.wire, err = encodeAccountingRequest(&j.acct, &e.cfg.nas, id, e.cfg.secret, now)
	}
	if err != nil {
		e.finish(j, Result{Err: err}, now)
		return
	}
	j.sends, j.firstSend = 0, now
	if j.kind == kindProbe {
		ep.Probes++
	} else {
		ep.Requests++
	}
	e.transmit(j, now)
}

func (e *engine) transmit(j *job, now time.Time) {
	j.sends++
	j.gen++
	e.sends = append(e.sends, send{ep: j.ep.idx, port: j.port, b: j.wire})
	e.timers = append(e.timers, timer{at: now.Add(e.cfg.timeout), j: j, gen: j.gen})
}

// perPort is how many requests one socket carries at once: half its
// identifiers. Identifiers are handed out in turn, so one freed is reused
// only some 128 requests later. A server still finishing the old request
// when the identifier comes back with a new one gives one of them up
// (FreeRADIUS logs "Received conflicting packet"), and RFC 5080 §2.2.1
// asks that identifiers not be reused soon.
const perPort = 128

// alloc finds a free identifier on ep, opening a further socket (port)
// when every one in use carries perPort requests.
func (e *engine) alloc(ep *endpoint, j *job) (int, uint8, bool) {
	for pi, p := range ep.ports {
		if p.used >= perPort {
			continue
		}
		for k := range len(p.jobs) {
			id := p.next + uint8(k)
			if p.jobs[id] == nil {
				p.jobs[id], p.next = j, id+1
				p.used++
				ep.InFlight++
				return pi, id, true
			}
		}
	}
	if len(ep.ports) >= e.cfg.maxPorts {
		return 0, 0, false
	}
	p := &port{jobs: [256]*job{0: j}, used: 1, next: 1}
	ep.ports = append(ep.ports, p)
	ep.InFlight++
	return len(ep.ports) - 1, 0, true
}

// release frees j's identifier and forgets its timers.
func (e *engine) release(j *job) {
	if j.ep == nil {
		return
	}
	p := j.ep.ports[j.port]
	if p.jobs[j.id] == j {
		p.jobs[j.id] = nil
		p.used--
		j.ep.InFlight--
	}
	j.tried |= 1 << j.ep.idx
	j.ep = nil
	j.gen++
}

func (e *engine) finish(j *job, r Result, now time.Time) {
	e.release(j)
	if j.done {
		return
	}
	j.done = true
	if j.kind == kindProbe {
		return
	}
	r.Kind, r.NAI, r.Latency = j.kind, j.access.NAI, now.Sub(j.submitted)
	if r.Server == (netip.AddrPort{}) {
		r.Server = j.lastEP
	}
	if j.kind == KindAccounting {
		r.NAI, r.SessionID, r.Status = j.acct.NAI, j.acct.SessionID, j.acct.Status
	}
	e.results = append(e.results, r)
}

// receive handles a datagram that came from endpoint epIdx on its socket
// portIdx. What does not answer an outstanding request authentically is
// counted and dropped: a forged or stale datagram changes nothing.
func (e *engine) receive(epIdx, portIdx int, pkt []byte, now time.Time) {
	if epIdx < 0 || epIdx >= len(e.eps) {
		return
	}
	ep := e.eps[epIdx]
	if portIdx < 0 || portIdx >= len(ep.ports) || len(pkt) < headerLen {
		ep.Dropped++
		return
	}
	j := ep.ports[portIdx].jobs[pkt[1]]
	if j == nil {
		ep.Dropped++
		return
	}
	r := Result{Server: ep.addr}
	switch j.kind {
	case KindAccess:
		auth, err := ParseAccessResponse(pkt, j.wire, e.cfg.secret, e.cfg.allowMissingMA)
		if err != nil && !errors.Is(err, ErrRejected) && !errors.Is(err, ErrBadResponse) {
			ep.Dropped++
			return
		}
		if auth != nil {
			auth.NAI = j.access.NAI
		}
		r.Auth, r.Err = auth, err
	case KindAccounting:
		if err := checkAccountingResponse(pkt, j.wire, e.cfg.secret); err != nil {
			ep.Dropped++
			return
		}
	case kindProbe:
		if err := checkPlainResponse(pkt, j.wire, e.cfg.secret, 0); err != nil {
			ep.Dropped++
			return
		}
	}
	ep.Responses++
	ep.lastHeard = now
	if ep.dead {
		ep.dead = false
		ep.probe = nil
	}
	e.finish(j, r, now)
	e.drain(now)
}

// tick handles the timers due at now: retransmissions, fail-over, and the
// probes of dead servers.
func (e *engine) tick(now time.Time) {
	for e.thead < len(e.timers) && !e.timers[e.thead].at.After(now) {
		t := e.timers[e.thead]
		e.timers[e.thead] = timer{}
		e.thead++
		if t.j.done || t.j.gen != t.gen {
			continue
		}
		e.expired(t.j, now)
	}
	e.compactTimers()
	for _, ep := range e.eps {
		if ep.dead && ep.probe == nil && !now.Before(ep.nextProbe) {
			ep.probe = &job{kind: kindProbe, submitted: now}
			e.start(ep.probe, ep, now)
		}
	}
	e.drain(now)
}

// compactTimers drops the stale timers at the head of the queue (their
// request was answered or moved on: a generation only grows, so they stay
// stale) and reclaims the space they held.
func (e *engine) compactTimers() {
	for e.thead < len(e.timers) {
		t := e.timers[e.thead]
		if !t.j.done && t.j.gen == t.gen {
			break
		}
		e.timers[e.thead] = timer{}
		e.thead++
	}
	if e.thead == len(e.timers) {
		e.timers, e.thead = e.timers[:0], 0
	} else if e.thead > 1024 && e.thead*2 > len(e.timers) {
		n := copy(e.timers, e.timers[e.thead:])
		clear(e.timers[n:])
		e.timers, e.thead = e.timers[:n], 0
	}
}

// expired handles a try of j that got no answer in time.
func (e *engine) expired(j *job, now time.Time) {
	ep := j.ep
	if j.kind == kindProbe {
		ep.probe = nil
		ep.nextProbe = now.Add(e.cfg.deadTime)
		e.finish(j, Result{}, now)
		return
	}
	if j.sends < e.cfg.tries {
		ep.Retransmissions++
		e.transmit(j, now)
		return
	}
	ep.Timeouts++
	first := j.firstSend
	e.release(j)
	// A server that answered nothing since this request first went to it
	// is dead; one that answered others merely lost or ignored this one.
	if !ep.dead && ep.lastHeard.Before(first) {
		e.markDead(ep, now)
	}
	e.dispatch(j, now)
}

// markDead marks ep dead and moves the requests still out to it to the
// next server at once, instead of letting each wait out its own tries.
func (e *engine) markDead(ep *endpoint, now time.Time) {
	ep.dead = true
	ep.DeadTimes++
	ep.nextProbe = now.Add(e.cfg.deadTime)
	var moved []*job
	for _, p := range ep.ports {
		for _, j := range p.jobs {
			if j != nil && j.kind != kindProbe {
				moved = append(moved, j)
			}
		}
	}
	for _, j := range moved {
		ep.Timeouts++
		e.release(j)
		e.dispatch(j, now)
	}
}

// drain restarts parked jobs while identifiers are free for them.
func (e *engine) drain(now time.Time) {
	for len(e.waiting) > 0 {
		j := e.waiting[0]
		e.waiting[0] = nil
		e.waiting = e.waiting[1:]
		e.dispatch(j, now)
		if j.ep == nil && !j.done {
			// Parked again (dispatch appended it): stop until the next
			// identifier frees.
			return
		}
	}
}

// nextWake returns when tick should next run; zero when nothing waits.
func (e *engine) nextWake() time.Time {
	e.compactTimers()
	var at time.Time
	if e.thead < len(e.timers) {
		at = e.timers[e.thead].at
	}
	for _, ep := range e.eps {
		if ep.dead && ep.probe == nil && (at.IsZero() || ep.nextProbe.Before(at)) {
			at = ep.nextProbe
		}
	}
	return at
}

// failAll ends every request with err (the client is closing).
func (e *engine) failAll(err error, now time.Time) {
	for _, ep := range e.eps {
		for _, p := range ep.ports {
			for _, j := range p.jobs {
				if j != nil {
					e.finish(j, Result{Err: err}, now)
				}
			}
		}
	}
	for _, j := range e.waiting {
		e.finish(j, Result{Err: err}, now)
	}
	e.waiting = nil
}
