package homeagent

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"nemod/config"
	"nemod/dhcpv6pd"
	"nemod/dhcpv6pd/pdio"
	"nemod/internal/logsum"
	"nemod/status"
)

// The home agent as delegating router (RFC 6276 §3): built in, from the
// pd_pool sections, or relaying to an external DHCPv6 server (option
// dhcpv6_server) and learning the delegations from the Replies it passes
// back. The mobile routers' co-located relays reach [HA]:547 through their
// tunnels: the data plane writes the decapsulated packets into the TUN
// device, whose kernel delivers them to the socket bound there; answers to
// a home address are routed back into the TUN device (the home prefix is
// routed there) and so through the router's tunnel. The data plane's
// ingress filter has let through only packets from a router's home address
// arriving from one of its registered care-of addresses, which is what the
// delegating router relies on when it takes the link-address of a
// Relay-forward as the router's identity.
//
// The state machine runs on the event loop (no shared state with the
// binding cache it consults); one goroutine reads the socket. Delegated
// prefixes join the router's binding cache entry (routes, ingress
// filtering, flow bindings) while their leases are valid.

// DHCPv6Listener opens the home agent's DHCPv6 socket (pdio.ListenUDP on
// the kernel).
type DHCPv6Listener func(addr netip.AddrPort) (pdio.Conn, error)

type haPD struct {
	conn   pdio.Conn
	server *dhcpv6pd.Server  // built in, or
	relay  *dhcpv6pd.HARelay // relaying
	store  *pdio.FileStore   // the server's leases; nil for the relay
	in     chan pdDatagram   // from the reader goroutine
	rerr   chan error        // the reader's end
	held   map[netip.Addr][]netip.Prefix
	// pools and routers are the maps the server and the relay were made
	// with (their Routers), which pdReload changes in place.
	pools   map[netip.Addr]string
	routers map[netip.Addr]bool
	leases  map[netip.Prefix]dhcpv6pd.Event // the Delegated event of each held prefix
	drops   *logsum.Summarizer
	c       struct{ received, dropped, sent, sendErrors, storeErrors uint64 }
}

type pdDatagram struct {
	b    []byte
	from netip.AddrPort
}

func (p *haPD) machine() pdio.Machine {
	if p.server != nil {
		return p.server
	}
	return p.relay
}

// startPD opens the socket and makes the delegating router (its leases read
// back) or the relay, and applies the active delegations to the binding
// cache.
func (d *Daemon) startPD() error {
	pc := d.cfg.PD
	if pc == nil {
		return nil
	}
	listen := d.opts.DHCPv6
	if listen == nil {
		listen = func(a netip.AddrPort) (pdio.Conn, error) { return pdio.ListenUDP(a) }
	}
	p := &haPD{in: make(chan pdDatagram, 256), rerr: make(chan error, 1), held: map[netip.Addr][]netip.Prefix{},
		leases: map[netip.Prefix]dhcpv6pd.Event{}, drops: logsum.New("DHCPv6 messages dropped", 5, 10*time.Second)}
	registered := func(hoa netip.Addr) bool {
		e := d.cache.Entry(hoa)
		return e != nil && e.Registered()
	}
	var active []dhcpv6pd.Event
	if pc.Server.IsValid() {
		p.routers = map[netip.Addr]bool{}
		for hoa := range d.cfg.PDRouters() {
			p.routers[hoa] = true
		}
		r, err := dhcpv6pd.NewHARelay(dhcpv6pd.RelayConfig{Server: netip.AddrPortFrom(pc.Server, dhcpv6pd.ServerPort),
			LinkAddr: d.cfg.Address, Routers: p.routers, Registered: registered})
		if err != nil {
			return err
		}
		p.relay = r
	} else {
		p.store = &pdio.FileStore{Path: pc.LeaseFile}
		b, err := p.store.Load()
		if err != nil {
			return fmt.Errorf("prefix delegation leases: %w", err)
		}
		var st *dhcpv6pd.ServerState
		if b != nil {
			if st, err = dhcpv6pd.DecodeServerState(b); err != nil {
				return fmt.Errorf("prefix delegation leases %s: %w", pc.LeaseFile, err)
			}
		}
		cfg := serverConfig(d.cfg, registered, st)
		srv, err := dhcpv6pd.NewServer(cfg, st)
		if err != nil {
			return err
		}
		p.server, p.pools = srv, cfg.Routers
		// A new server's DUID is kept from the first start on.
		p.save(d)
		active = srv.Active()
	}
	conn, err := listen(netip.AddrPortFrom(d.cfg.Address, dhcpv6pd.ServerPort))
	if err != nil {
		return fmt.Errorf("DHCPv6 port %d: %w", dhcpv6pd.ServerPort, err)
	}
	p.conn = conn
	d.pd = p
	go p.read()
	d.pdOutput(dhcpv6pd.Output{Events: active}, time.Now())
	return nil
}

// serverConfig is the built-in delegating router's configuration.
func serverConfig(ha *config.HomeAgent, registered func(netip.Addr) bool, st *dhcpv6pd.ServerState) dhcpv6pd.ServerConfig {
	pc := ha.PD
	cfg := dhcpv6pd.ServerConfig{Routers: ha.PDRouters(), Registered: registered, Preferred: pc.Preferred, Valid: pc.Valid}
	for _, p := range pc.Pools {
		cfg.Pools = append(cfg.Pools, dhcpv6pd.Pool{Name: p.Name, Prefix: p.Prefix, Length: p.Length})
	}
	if st == nil || st.DUID == nil {
		var u [16]byte
		rand.Read(u[:])
		cfg.DUID = dhcpv6pd.NewDUIDUUID(u)
	}
	return cfg
}

func (p *haPD) read() {
	buf := make([]byte, 65536)
	for {
		n, from, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			p.rerr <- err
			return
		}
		// A zone on a link-local source would never match a home address.
		from = netip.AddrPortFrom(from.Addr().WithZone(""), from.Port())
		select {
		case p.in <- pdDatagram{append([]byte(nil), buf[:n]...), from}:
		default: // the event loop is behind: dropped, as a full socket buffer would
		}
	}
}

// pdIn is the event loop's channel of DHCPv6 datagrams (nil, which never
// fires, without prefix delegation).
func (d *Daemon) pdIn() <-chan pdDatagram {
	if d.pd == nil {
		return nil
	}
	return d.pd.in
}

// pdHandle runs one datagram through the state machine.
func (d *Daemon) pdHandle(dg pdDatagram) {
	now := time.Now()
	p := d.pd
	p.c.received++
	out, err := p.machine().Handle(dg.b, dg.from, now)
	if err != nil {
		p.c.dropped++
		if p.drops.Admit(pdReason(err), now) {
			d.log.Warn("DHCPv6 message dropped", "from", dg.from, "err", err)
		}
	}
	d.pdOutput(out, now)
}

// pdReason names a dropped message's reason for the log's summaries.
func pdReason(err error) string {
	switch {
	case errors.Is(err, dhcpv6pd.ErrNotAllowed):
		return "not allowed"
	case errors.Is(err, dhcpv6pd.ErrMalformed):
		return "malformed"
	}
	return "unexpected"
}

// pdTick runs the state machine's timers (the event loop's second
// ticker: leases last whole seconds).
func (d *Daemon) pdTick(now time.Time) {
	if d.pd == nil {
		return
	}
	for _, r := range d.pd.drops.Flush(now) {
		d.log.Warn(r.String())
	}
	m := d.pd.machine()
	if next := m.Next(); !next.IsZero() && !now.Before(next) {
		d.pdOutput(m.Tick(now), now)
	}
}

// pdOutput sends, persists and applies the events: each router's held
// prefixes into its binding cache entry and the data plane.
func (d *Daemon) pdOutput(out dhcpv6pd.Output, now time.Time) {
	p := d.pd
	for _, dg := range out.Send {
		if _, err := p.conn.WriteToUDPAddrPort(dg.Data, dg.To); err != nil {
			p.c.sendErrors++
		} else {
			p.c.sent++
		}
	}
	if out.StateChanged {
		p.save(d)
	}
	changed := map[netip.Addr]bool{}
	for _, e := range out.Events {
		held := p.held[e.Router]
		switch e.Kind {
		case dhcpv6pd.Delegated:
			p.leases[e.Prefix] = e
			if !slices.Contains(held, e.Prefix) {
				d.log.Info("prefix delegated", "home_address", e.Router, "prefix", e.Prefix, "valid_until", e.ValidUntil.UTC().Format(time.RFC3339))
				p.held[e.Router] = append(held, e.Prefix)
				changed[e.Router] = true
			}
		case dhcpv6pd.Released, dhcpv6pd.Expired:
			delete(p.leases, e.Prefix)
			if i := slices.Index(held, e.Prefix); i >= 0 {
				d.log.Info("prefix "+e.Kind.String(), "home_address", e.Router, "prefix", e.Prefix)
				p.held[e.Router] = slices.Delete(held, i, i+1)
				changed[e.Router] = true
			}
		}
	}
	if len(changed) == 0 {
		return
	}
	// Routes and the prefix table first, so that the entries' prefixes
	// find their router.
	if err := d.fwd.SetRouters(d.haRouters(d.cfg, p.held)); err != nil {
		d.log.Warn("routes of delegated prefixes", "err", err)
	}
	for hoa := range changed {
		if e := d.cache.SetDelegated(hoa, p.held[hoa]); e != nil {
			d.forward(e)
		}
	}
}

func (p *haPD) save(d *Daemon) {
	if p.store == nil || p.server == nil {
		return
	}
	if _, err := p.store.Save(dhcpv6pd.EncodeServerState(p.server.State())); err != nil {
		p.c.storeErrors++
		d.log.Error("saving the prefix delegation leases", "file", p.store.Path, "err", err)
	}
}

// delegated is the held prefixes by router, for haRouters (nil without
// prefix delegation).
func (d *Daemon) delegated() map[netip.Addr][]netip.Prefix {
	if d.pd == nil {
		return nil
	}
	return d.pd.held
}

// pdReload follows mobile routers whose option pd or pd_pool changed: the
// delegating router or relay serves the new set of routers (the maps it was
// made with are these, changed in place on the event loop that alone runs
// it), and those that lost option pd or moved to another pool have their
// prefixes revoked (a moved one gets a prefix of its new pool when it asks
// next; an external server's lease of one that lost option pd runs out
// there).
func (d *Daemon) pdReload() {
	p := d.pd
	if p == nil {
		return
	}
	want := d.cfg.PDRouters()
	var revoke []netip.Addr
	var out dhcpv6pd.Output
	if p.server != nil {
		for hoa, pool := range p.pools {
			if np, ok := want[hoa]; !ok || np != pool {
				revoke = append(revoke, hoa)
				delete(p.pools, hoa)
			}
		}
		for hoa, pool := range want {
			if pool != "" && !slices.ContainsFunc(d.cfg.PD.Pools, func(q config.PDPool) bool { return q.Name == pool }) {
				d.log.Warn("pd_pool waits for a restart", "home_address", hoa, "pd_pool", pool)
				continue
			}
			p.pools[hoa] = pool
		}
		slices.SortFunc(revoke, func(a, b netip.Addr) int { return a.Compare(b) })
		for _, hoa := range revoke {
			o := p.server.Revoke(hoa)
			out.Events, out.StateChanged = append(out.Events, o.Events...), out.StateChanged || o.StateChanged
		}
	} else {
		for hoa := range p.routers {
			if _, ok := want[hoa]; !ok {
				delete(p.routers, hoa)
				for _, q := range p.held[hoa] {
					out.Events = append(out.Events, dhcpv6pd.Event{Kind: dhcpv6pd.Released, Router: hoa, Prefix: q})
				}
			}
		}
		for hoa := range want {
			p.routers[hoa] = true
		}
	}
	d.pdOutput(out, time.Now())
}

func (d *Daemon) closePD() {
	if d.pd != nil {
		d.pd.conn.Close()
	}
}

// pdStatus is the delegating router's status and each router's leases.
func (d *Daemon) pdStatus(now time.Time) (*status.HomeAgentPD, func(hoa netip.Addr) []status.Lease) {
	p := d.pd
	if p == nil {
		return nil, func(netip.Addr) []status.Lease { return nil }
	}
	s := &status.HomeAgentPD{Mode: "pool", Listen: netip.AddrPortFrom(d.cfg.Address, dhcpv6pd.ServerPort).String(),
		Counters: map[string]uint64{"received": p.c.received, "dropped": p.c.dropped, "sent": p.c.sent,
			"send_errors": p.c.sendErrors, "store_errors": p.c.storeErrors}}
	if p.relay != nil {
		s.Mode, s.Server = "relay", netip.AddrPortFrom(d.cfg.PD.Server, dhcpv6pd.ServerPort).String()
		rc := p.relay.RelayCounters
		for k, v := range map[string]uint64{"from_routers": rc.FromRouters, "from_server": rc.FromServer, "malformed": rc.Malformed,
			"not_allowed": rc.NotAllowed, "unmatched": rc.Unmatched, "learned": rc.Learned} {
			s.Counters[k] = v
		}
	} else {
		s.LeaseFile = p.store.Path
		sc := p.server.ServerCounters
		for k, v := range map[string]uint64{"malformed": sc.Malformed, "not_allowed": sc.NotAllowed, "wrong_server": sc.WrongServer,
			"unsupported": sc.Unsupported, "pool_exhausted": sc.PoolExhaust, "delegations": sc.Delegations, "renewals": sc.Renewals,
			"releases": sc.Releases, "expirations": sc.Expirations, "rebinds_taken": sc.RebindsTaken} {
			s.Counters[k] = v
		}
	}
	leases := func(hoa netip.Addr) []status.Lease {
		var out []status.Lease
		for _, q := range p.held[hoa] {
			e := p.leases[q]
			out = append(out, leaseStatus(e.Prefix, e.PreferredUntil, e.ValidUntil, now))
		}
		return out
	}
	return s, leases
}

func leaseStatus(q netip.Prefix, pref, valid time.Time, now time.Time) status.Lease {
	secs := func(t time.Time) int64 {
		if !t.Before(dhcpv6pd.Forever) {
			return int64(dhcpv6pd.Infinity)
		}
		return max(int64(t.Sub(now)/time.Second), 0)
	}
	return status.Lease{Prefix: q.String(), Preferred: secs(pref), Valid: secs(valid),
		PreferredUntil: pref.UTC().Format(time.RFC3339), ValidUntil: valid.UTC().Format(time.RFC3339)}
}
