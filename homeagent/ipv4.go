package homeagent

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"nemod/binding"
	"nemod/config"
	"nemod/internal/atomicfile"
	"nemod/setup"
	"nemod/status"
	"nemod/tunnel"
)

// The home agent's IPv4 for the mobile networks (RFC 5555): the pool's
// assignments kept in a file under state_dir, the routes into the tunnel
// for every router's IPv4, and masquerade_v4.

// PoolFile is the name of the pool's assignments in state_dir.
const PoolFile = "ipv4-pool.json"

// openPool gives the cache the IPv4 pool, with the assignments an earlier
// run saved (a file it cannot read is reported and set aside: the routers
// then get new assignments).
func (d *Daemon) openPool(cc *binding.HAConfig) {
	if !d.cfg.PoolV4.IsValid() {
		return
	}
	var saved []binding.Assignment4
	path := d.poolPath()
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &saved); err != nil {
			d.log.Error("IPv4 pool assignments unreadable: starting afresh", "file", path, "err", err)
			saved = nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		d.log.Error("IPv4 pool assignments", "file", path, "err", err)
	}
	cc.Pool4 = binding.NewPool4(d.cfg.PoolV4, d.reservedV4(cc.Peers), saved)
	d.pool = cc.Pool4
	d.savePool()
	d.log.Info("IPv4 pool", "prefix", d.cfg.PoolV4, "assignments", len(saved), "file", path)
}

func (d *Daemon) poolPath() string { return filepath.Join(d.cfg.StateDir, PoolFile) }

// reservedV4 is what the pool must not assign: static claims and the
// home agent's own address.
func (d *Daemon) reservedV4(peers []binding.Peer) []netip.Prefix {
	r := binding.IPv4Claims(peers)
	if d.cfg.AddressV4.IsValid() {
		r = append(r, netip.PrefixFrom(d.cfg.AddressV4, 32))
	}
	return r
}

// savePool writes the pool's assignments when they changed (force: when
// only leases did too).
func (d *Daemon) savePool() {
	if d.pool == nil || !d.pool.Changed() && !d.pool.Renewed() {
		return
	}
	b, err := json.MarshalIndent(d.pool.Assignments(), "", "\t")
	if err == nil {
		err = atomicfile.Write(d.poolPath(), append(b, '\n'))
	}
	if err != nil {
		d.log.Error("saving the IPv4 pool's assignments", "file", d.poolPath(), "err", err)
		return
	}
	d.pool.Saved()
}

// commit follows what a batch of signalling (or of RADIUS answers) did:
// a new pool assignment is saved before anything else (it must survive a
// restart) and joins its router's prefixes in the data plane's lookup
// table, configured routers and those RADIUS authorized alike; then the
// routers added or removed are committed.
func (d *Daemon) commit() {
	if d.pool != nil && d.pool.Changed() {
		d.savePool()
		if err := d.fwd.SetRouters(d.haRouters(d.cfg, d.delegated())); err != nil {
			d.log.Warn("routes for the IPv4 assignments", "err", err)
		}
		for _, e := range d.cache.DynamicPeers() {
			d.fwd.AddRouter(d.dynamicRouter(e.Peer))
		}
	}
	d.fwd.Commit()
}

// dynamicRouter is the data plane's router for a peer RADIUS authorized:
// the prefixes it may claim and what the IPv4 pool gave it.
func (d *Daemon) dynamicRouter(p *binding.Peer) tunnel.HARouter {
	return tunnel.HARouter{HoA: p.HoA, Prefixes: slices.Concat(p.MNPs, d.prefixesV4(p.HoA, p.HoAv4, p.MNPsV4))}
}

// prefixesV4 is a router's IPv4 for the data plane's lookup table: its
// static claims (home address as a /32) and what the pool assigned it.
func (d *Daemon) prefixesV4(hoa, hoa4 netip.Addr, mnps4 []netip.Prefix) []netip.Prefix {
	var ps []netip.Prefix
	if hoa4.IsValid() {
		ps = append(ps, netip.PrefixFrom(hoa4, 32))
	}
	ps = append(ps, mnps4...)
	if d.pool != nil {
		if a, ok := d.pool.Of(hoa); ok {
			if a.Address.IsValid() {
				ps = append(ps, netip.PrefixFrom(a.Address, 32))
			}
			ps = append(ps, a.Prefixes...)
		}
	}
	return ps
}

// forwarded is what the data plane forwards to a router: its IPv6 and
// IPv4 prefixes.
func forwarded(e *binding.Entry) []netip.Prefix {
	return append(slices.Clip(e.MNPs), e.PrefixesV4()...)
}

// startIPv4 sets up what the IPv4 service needs of the host once the data
// plane runs: masquerading, and a warning if the host does not forward.
func (d *Daemon) startIPv4() error {
	if !d.servesIPv4(d.cfg) {
		return nil
	}
	if !d.opts.System.Forwarding4() {
		d.log.Warn("IPv4 forwarding is off: the mobile networks' IPv4 will not reach the Internet (sysctl net.ipv4.ip_forward=1)")
	}
	return d.masquerade(d.cfg)
}

func (d *Daemon) servesIPv4(ha *config.HomeAgent) bool {
	if ha.PoolV4.IsValid() {
		return true
	}
	for _, m := range ha.MobileRouters {
		if m.HomeAddressV4.IsValid() || len(m.MNPsV4) > 0 {
			return true
		}
	}
	return false
}

// masquerade installs masquerade_v4: the pool and every static claim,
// NATed to address_v4 (or nothing when off).
func (d *Daemon) masquerade(ha *config.HomeAgent) error {
	var ps []netip.Prefix
	if ha.MasqueradeV4 {
		if ha.PoolV4.IsValid() {
			ps = append(ps, ha.PoolV4)
		}
		ps = append(ps, binding.IPv4Claims(setup.Peers(ha))...)
	}
	return d.opts.System.Masquerade4(d.fwd.Status().Device, ps, ha.AddressV4)
}

// reloadIPv4 applies a reload's IPv4 changes: new static claims reserve
// their addresses in the pool, routes and masquerading follow.
func (d *Daemon) reloadIPv4(ha *config.HomeAgent) {
	if d.pool != nil {
		d.pool.SetReserved(d.reservedV4(setup.Peers(ha)))
		d.savePool()
	}
	if err := d.masquerade(ha); err != nil {
		d.log.Warn("masquerade_v4 after reload", "err", err)
	}
}

// statusIPv4 adds each router's IPv4 and the pool to the status.
func (d *Daemon) statusIPv4(s *status.HomeAgent, entries []*binding.Entry) {
	for i, e := range entries {
		if i >= len(s.MobileRouters) {
			break
		}
		for _, p := range e.PrefixesV4() {
			if p.Bits() == 32 && p.Addr() == e.V4.HoA {
				s.MobileRouters[i].HomeAddressV4 = p.Addr().String()
				continue
			}
			s.MobileRouters[i].MNPv4 = append(s.MobileRouters[i].MNPv4, p.String())
		}
	}
	if d.pool != nil {
		s.PoolV4 = &status.PoolV4{Prefix: d.pool.Range().String(), Assigned: len(d.pool.Assignments()), Used: d.pool.Used()}
	}
}
