package homeagent

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"time"

	"nemod/aaa"
	"nemod/binding"
	"nemod/config"
	"nemod/status"
)

// Mobile routers the configuration does not name, authorized by RADIUS
// (package aaa): a Binding Update from such a router waits in a bounded
// queue while its Access-Request is out, and is handled again when the
// answer comes; the router's RFC 4285 authentication is checked by the
// binding cache as for any router, with the key the server gave. Nothing
// here blocks the event loop: the client and the Disconnect-Request server
// hand their results over channels.
//
// The home agent package is not linked into a routeronly build (cmd/nemod),
// so no build tag is needed here.

// maxHeld bounds the Binding Updates waiting for an authorization: past
// it they are dropped, and their routers send them again.
const maxHeld = 4096

type radiusGlue struct {
	conf     config.Radius // as started, for reloads to compare with
	settings aaa.Settings
	client   *aaa.Client
	cache    *aaa.Cache
	das      *aaa.DynAuthServer
	// held are the Binding Updates waiting for their router's
	// authorization, by NAI: the newest of each.
	held map[string]heldBU
	// sessions are the accounting sessions of the routers RADIUS
	// authorized, by home address.
	sessions map[netip.Addr]*acctSession
	// cause is the Acct-Terminate-Cause of the next Stop.
	cause                                          uint32
	accepts, rejects, failures, heldDropped, queue uint64
	acctSent, acctAnswered, acctFailed             uint64
	lastExpire                                     time.Time
}

type heldBU struct {
	p   sigPacket
	req binding.AuthRequest
}

type acctSession struct {
	id, nai     string
	hoa         netip.Addr
	mnps        []netip.Prefix
	coa         netip.Addr
	class       [][]byte
	start       time.Time
	interim     time.Duration
	nextInterim time.Time
}

// openRadius starts the RADIUS client (and the Disconnect-Request server
// with option dynauth_listen) when the file has a radius section.
func (d *Daemon) openRadius(f *config.File) error {
	if f.Radius == nil {
		return nil
	}
	s := aaa.FromConfig(f.Radius, f.HomeAgent.Address)
	client, err := aaa.NewClient(s.Client)
	if err != nil {
		return fmt.Errorf("radius: %w", err)
	}
	g := &radiusGlue{conf: *f.Radius, settings: s, client: client, cache: aaa.NewCache(s.Cache), held: map[string]heldBU{},
		sessions: map[netip.Addr]*acctSession{}, cause: aaa.TerminateUserRequest}
	if s.DynAuth != nil {
		if g.das, err = aaa.ListenDynAuth(*s.DynAuth); err != nil {
			client.Close()
			return fmt.Errorf("radius: dynauth_listen: %w", err)
		}
	}
	d.rad = g
	return nil
}

func (d *Daemon) closeRadius() {
	g := d.rad
	if g == nil {
		return
	}
	now := time.Now()
	for hoa := range g.sessions {
		d.stopSession(hoa, aaa.TerminateAdminReboot, now)
	}
	if g.das != nil {
		g.das.Close()
	}
	g.client.Close()
}

// radiusReload names the radius section among the options that wait for
// a restart when a reload finds it added, removed or changed: the client,
// its cache and the Disconnect-Request server run as started.
func (d *Daemon) radiusReload(next *config.Radius, reply *status.Reload) {
	var running *config.Radius
	if d.rad != nil {
		running = &d.rad.conf
	}
	same := running == nil && next == nil
	if running != nil && next != nil {
		a, b := *running, *next
		a.Line, b.Line = 0, 0
		same = reflect.DeepEqual(a, b)
	}
	if !same {
		reply.NeedsRestart = append(reply.NeedsRestart, "radius")
	}
}

// radiusResults and revocationRequests are the loop's channels (nil
// without RADIUS: never ready).
func (d *Daemon) radiusResults() <-chan aaa.Result {
	if d.rad == nil {
		return nil
	}
	return d.rad.client.Results()
}

func (d *Daemon) revocationRequests() <-chan *aaa.Revocation {
	if d.rad == nil || d.rad.das == nil {
		return nil
	}
	return d.rad.das.Events()
}

// authorize takes a Binding Update the cache held for its router's
// authorization.
func (d *Daemon) authorize(p sigPacket, a *binding.AuthRequest, now time.Time, queued *int) {
	g := d.rad
	if g == nil {
		return
	}
	l := g.cache.Lookup(a.NAI, now)
	switch l.State {
	case aaa.Hit, aaa.Refresh:
		if l.State == aaa.Refresh {
			d.ask(a, now)
		}
		d.authorized(p, a, l.Auth, l.Expires, now, queued)
	case aaa.Rejected:
		d.handleResult(d.cache.Refuse(p.pkt, p.arr, aaa.ErrRejected, now), p, queued, now)
	case aaa.Pending:
		d.hold(p, a)
	default:
		d.hold(p, a)
		d.ask(a, now)
	}
}

func (d *Daemon) hold(p sigPacket, a *binding.AuthRequest) {
	g := d.rad
	if _, ok := g.held[a.NAI]; !ok && len(g.held) >= maxHeld {
		g.heldDropped++
		return
	}
	g.held[a.NAI] = heldBU{p: p, req: *a}
}

// ask submits an Access-Request, unless one for the NAI is out.
func (d *Daemon) ask(a *binding.AuthRequest, now time.Time) {
	g := d.rad
	if !g.cache.Begin(a.NAI, now) {
		return
	}
	if err := g.client.Submit(aaa.AccessRequest{NAI: a.NAI, CoA: a.CoA, HoA: a.HoA}); err != nil {
		g.cache.Abandon(a.NAI)
		g.queue++
		delete(g.held, a.NAI)
	}
}

// authorized installs the router auth describes and handles its Binding
// Update again; an unusable authorization refuses it (status 129).
func (d *Daemon) authorized(p sigPacket, a *binding.AuthRequest, auth *aaa.Authorization, expires, now time.Time, queued *int) {
	if err := d.install(auth, expires); err != nil {
		d.log.Warn("authorization not usable", "nai", a.NAI, "err", err)
		d.handleResult(d.cache.Refuse(p.pkt, p.arr, err, now), p, queued, now)
		return
	}
	if auth.HoA != a.HoA {
		err := fmt.Errorf("home address %s, authorized for %s", a.HoA, auth.HoA)
		d.handleResult(d.cache.Refuse(p.pkt, p.arr, err, now), p, queued, now)
		return
	}
	d.handleResult(d.cache.Retry(p.pkt, p.arr, now), p, queued, now)
}

// install makes an authorized router a peer of the binding cache and the
// data plane.
func (d *Daemon) install(auth *aaa.Authorization, expires time.Time) error {
	if err := auth.Validate(d.cfg.HomePrefix); err != nil {
		return err
	}
	if auth.HoA == d.cfg.Address {
		return errors.New("the home address is the home agent's own")
	}
	peer := binding.Peer{Name: auth.NAI, NAI: auth.NAI, HoA: auth.HoA, SPI: auth.SPI, Key: auth.Key, MNPs: auth.MNPs}
	changed, err := d.cache.AddPeer(peer, expires)
	if err != nil {
		return err
	}
	for _, e := range changed {
		d.forwardCause(e, aaa.TerminateUserRequest)
	}
	d.fwd.AddRouter(d.dynamicRouter(&peer))
	if s := d.rad.sessions[auth.HoA]; s != nil {
		s.class = auth.Class
	}
	return nil
}

// radiusResults takes a result of the client and the others already
// there, then commits the routers added to the data plane and sends the
// answers.
func (d *Daemon) radiusBatch(first aaa.Result) {
	now, queued := time.Now(), 0
	d.radiusResult(first, now, &queued)
	for range 255 {
		select {
		case r := <-d.rad.client.Results():
			d.radiusResult(r, now, &queued)
			continue
		default:
		}
		break
	}
	d.commit()
	d.flush(&queued)
}

// radiusResult takes one result of the client.
func (d *Daemon) radiusResult(r aaa.Result, now time.Time, queued *int) {
	g := d.rad
	switch r.Kind {
	case aaa.KindAccounting:
		if r.Err != nil {
			g.acctFailed++
		} else {
			g.acctAnswered++
		}
		return
	case aaa.KindAccess:
	default:
		return
	}
	g.cache.Complete(r.NAI, r.Auth, r.Err, now)
	h, held := g.held[r.NAI]
	delete(g.held, r.NAI)
	switch {
	case r.Err == nil && r.Auth != nil:
		g.accepts++
		l := g.cache.Lookup(r.NAI, now)
		if held {
			d.authorized(h.p, &h.req, r.Auth, l.Expires, now, queued)
		} else if e := d.cache.ByNAI(r.NAI); e != nil {
			// A renewal: the router stays with the new lifetime (or
			// registers again, if its key or prefixes changed).
			if err := d.install(r.Auth, l.Expires); err != nil {
				d.log.Warn("renewed authorization not usable", "nai", r.NAI, "err", err)
				d.deauthorize(e, aaa.TerminateAdminReset, now)
			}
		}
	case errors.Is(r.Err, aaa.ErrRejected):
		g.rejects++
		d.log.Info("mobile router refused by RADIUS", "nai", r.NAI, "err", r.Err)
		if held {
			d.handleResult(d.cache.Refuse(h.p.pkt, h.p.arr, r.Err, now), h.p, queued, now)
		}
		if e := d.cache.ByNAI(r.NAI); e != nil {
			if dyn, _ := e.Authorized(); dyn {
				d.deauthorize(e, aaa.TerminateAdminReset, now)
			}
		}
	default:
		// No server answered: the router sends its Binding Update again,
		// and an authorization not yet lapsed stays.
		g.failures++
		d.log.Warn("no RADIUS answer", "nai", r.NAI, "err", r.Err)
	}
}

// deauthorize removes a router RADIUS authorized: its bindings, its
// routes, its accounting session.
func (d *Daemon) deauthorize(e *binding.Entry, cause uint32, now time.Time) {
	hoa := e.Peer.HoA
	if changed := d.cache.RemovePeer(hoa); changed != nil {
		d.forwardCause(changed, cause)
	}
	d.stopSession(hoa, cause, now)
	d.fwd.RemoveRouter(hoa)
}

// forwardCause follows an entry into the data plane with the
// Acct-Terminate-Cause its session ends with, should it end.
func (d *Daemon) forwardCause(e *binding.Entry, cause uint32) {
	if d.rad == nil {
		d.forward(e)
		return
	}
	d.rad.cause = cause
	d.forward(e)
	d.rad.cause = aaa.TerminateUserRequest
}

// accounting starts and stops the sessions of routers RADIUS authorized
// as their first binding comes and their last one goes.
func (d *Daemon) accounting(e *binding.Entry) {
	g := d.rad
	if g == nil || !g.settings.Accounting {
		return
	}
	if dyn, _ := e.Authorized(); !dyn {
		return
	}
	now := time.Now()
	hoa := e.Peer.HoA
	s := g.sessions[hoa]
	switch {
	case e.Registered() && s == nil:
		l := g.cache.Lookup(e.Peer.NAI, now)
		s = &acctSession{id: aaa.NewSessionID(), nai: e.Peer.NAI, hoa: hoa, mnps: e.MNPs, coa: e.Bindings[0].CoA, start: now}
		if l.Auth != nil {
			s.class = l.Auth.Class
		}
		s.interim = g.settings.InterimFor(l.Auth)
		if s.interim > 0 {
			s.nextInterim = now.Add(s.interim)
		}
		g.sessions[hoa] = s
		d.account(s, aaa.AcctStart, 0, now)
	case !e.Registered() && s != nil:
		d.stopSession(hoa, g.cause, now)
	}
}

func (d *Daemon) stopSession(hoa netip.Addr, cause uint32, now time.Time) {
	g := d.rad
	s := g.sessions[hoa]
	if s == nil {
		return
	}
	delete(g.sessions, hoa)
	d.account(s, aaa.AcctStop, cause, now)
}

func (d *Daemon) account(s *acctSession, st aaa.AcctStatus, cause uint32, now time.Time) {
	g := d.rad
	var tr status.Traffic
	if d.fwd != nil {
		tr = d.fwd.RouterTraffic(s.hoa)
	}
	rec := aaa.AccountingRecord{Status: st, SessionID: s.id, NAI: s.nai, HoA: s.hoa, MNPs: s.mnps, CoA: s.coa,
		InputOctets: tr.RxBytes, OutputOctets: tr.TxBytes, InputPackets: tr.RxPackets, OutputPackets: tr.TxPackets,
		SessionTime: now.Sub(s.start), TerminateCause: cause, Class: s.class, Event: now}
	if err := g.client.Account(rec); err != nil {
		g.acctFailed++
		return
	}
	g.acctSent++
}

// radiusTick renews authorizations near their end, removes lapsed ones,
// sends the Interim-Updates due and forgets old answers.
func (d *Daemon) radiusTick(now time.Time) {
	g := d.rad
	if g == nil {
		return
	}
	for _, e := range d.cache.DynamicPeers() {
		_, until := e.Authorized()
		if !now.Before(until) {
			d.log.Info("authorization lapsed", "router", e.Peer.Name)
			d.deauthorize(e, aaa.TerminateSessionTimeout, now)
			continue
		}
		if l := g.cache.Lookup(e.Peer.NAI, now); l.State == aaa.Refresh || l.State == aaa.Miss {
			d.ask(&binding.AuthRequest{NAI: e.Peer.NAI, HoA: e.Peer.HoA}, now)
		}
	}
	for _, s := range g.sessions {
		if s.interim > 0 && !now.Before(s.nextInterim) {
			s.nextInterim = now.Add(s.interim)
			d.account(s, aaa.AcctInterim, 0, now)
		}
	}
	if now.Sub(g.lastExpire) > 5*time.Second {
		g.lastExpire = now
		g.cache.Expire(now)
	}
}

// disconnect serves a Disconnect-Request (RFC 5176): the router's
// bindings are revoked (RFC 5846), its authorization forgotten, its
// session stopped.
func (d *Daemon) disconnect(r *aaa.Revocation, now time.Time) {
	g := d.rad
	for _, e := range d.cache.DynamicPeers() {
		id := ""
		if s := g.sessions[e.Peer.HoA]; s != nil {
			id = s.id
		}
		if !r.Matches(e.Peer.NAI, id, e.Peer.HoA, netip.Addr{}) {
			continue
		}
		d.rev.disconnects++
		d.log.Info("disconnect request from RADIUS", "router", e.Peer.Name, "from", r.From)
		if e.Registered() {
			if _, err := d.revoke(e, nil, 1, now); err != nil {
				d.log.Warn("revoking", "router", e.Peer.Name, "err", err)
			}
		}
		g.cache.Forget(e.Peer.NAI)
		d.deauthorize(e, aaa.TerminateAdminReset, now)
		r.Ack()
		return
	}
	d.rev.notFound++
	r.Nak(aaa.CauseSessionNotFound)
}

func (d *Daemon) radiusStatus() *status.Radius {
	g := d.rad
	if g == nil {
		return nil
	}
	cs := g.client.Stats()
	s := &status.Radius{Servers: []status.RadiusServer{}, Authorized: len(d.cache.DynamicPeers()), Cached: g.cache.Len(),
		Accepts: g.accepts, Rejects: g.rejects, Failures: g.failures, Held: g.heldDropped, Refused: cs.Refused + g.queue,
		SendErrors: cs.SendErrors, AccountingSent: g.acctSent, AccountingAnswered: g.acctAnswered, AccountingFailed: g.acctFailed}
	for _, sv := range cs.Servers {
		s.Servers = append(s.Servers, status.RadiusServer{Addr: sv.Addr.String(), Kind: sv.Kind, Dead: sv.Dead,
			Requests: sv.Requests, Responses: sv.Responses, Timeouts: sv.Timeouts})
	}
	if g.das != nil {
		ds := g.das.Stats()
		s.DynAuth = &status.DynAuth{Received: ds.Received, Discarded: ds.Discarded, ACKs: ds.ACKs, NAKs: ds.NAKs}
	}
	return s
}
