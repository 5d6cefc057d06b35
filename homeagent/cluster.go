package homeagent

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"nemod/binding"
	"nemod/cluster"
	"nemod/config"
	"nemod/nemo"
	"nemod/status"
	"nemod/tunnel"
)

// A member of a cluster of home agents (package cluster, `config
// cluster`): the binding cache shared through the store, the instances
// this member owns switched on in the data plane and on the host, the
// Binding Acknowledgements of a batch sent once the batch's records are
// in the store.

// StoreOpener opens a cluster's store (the etcd client by default,
// cluster_etcd.go).
type StoreOpener func(c *config.Cluster) (cluster.Store, error)

type haCluster struct {
	cfg   *config.Cluster
	store cluster.Store
	m     *cluster.Member
	cp    tunnel.ClusterPlane
	ha    *tunnel.HA // for the instances' addresses; nil with another plane
	insts map[netip.Addr]config.Instance
	v4    map[netip.Addr]netip.Addr // IPv4 address to IPv6, of the instances
	owned map[netip.Addr]bool
	// dirty are the routers whose records to publish with the next
	// flush; held the answers waiting for their records, by token.
	dirty map[netip.Addr]bool
	held  map[uint64][]binding.Result
	hold  []binding.Result
	token uint64
	// imported counts the records taken from other members; takeovers and
	// handovers the instances gained and given up.
	imported, takeovers, handovers uint64
	ownedSince                     map[netip.Addr]time.Time
}

// clusterInstances are the data plane's instances (nil without a
// cluster).
func clusterInstances(ha *config.HomeAgent) []tunnel.Instance {
	if ha.Cluster == nil {
		return nil
	}
	var out []tunnel.Instance
	for _, i := range ha.Cluster.Instances {
		out = append(out, tunnel.Instance{Address: i.Address, AddressV4: i.AddressV4})
	}
	return out
}

// startCluster joins the cluster, when the configuration has one.
func (d *Daemon) startCluster(ctx context.Context) error {
	c := d.cfg.Cluster
	if c == nil {
		return nil
	}
	open := d.opts.Cluster
	if open == nil {
		open = openEtcd
	}
	st, err := open(c)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	cp, ok := d.fwd.(tunnel.ClusterPlane)
	if !ok {
		st.Close()
		return fmt.Errorf("cluster: the data plane cannot stand by")
	}
	g := &haCluster{cfg: c, store: st, cp: cp, insts: map[netip.Addr]config.Instance{}, v4: map[netip.Addr]netip.Addr{},
		owned: map[netip.Addr]bool{}, dirty: map[netip.Addr]bool{}, held: map[uint64][]binding.Result{}, ownedSince: map[netip.Addr]time.Time{}}
	g.ha, _ = d.fwd.(*tunnel.HA)
	var insts []netip.Addr
	for _, i := range c.Instances {
		g.insts[i.Address] = i
		if i.AddressV4.IsValid() {
			g.v4[i.AddressV4] = i.Address
		}
		insts = append(insts, i.Address)
	}
	g.m, err = cluster.Start(ctx, cluster.Config{Store: st, Node: c.Node, Prefix: c.Prefix, Instances: insts, LeaseTTL: c.LeaseTTL, Logger: d.log,
		MaxTxnOps: c.MaxTxnOps})
	if err != nil {
		st.Close()
		return fmt.Errorf("cluster: %w", err)
	}
	d.cl = g
	d.log.Info("cluster member", "node", c.Node, "instances", len(insts), "lease_ttl", c.LeaseTTL, "endpoints", c.Endpoints)
	return nil
}

func (d *Daemon) closeCluster() {
	g := d.cl
	if g == nil {
		return
	}
	for inst := range g.owned {
		d.setOwned(inst, false)
	}
	g.m.Close()
	g.store.Close()
}

// clusterUpdates is the member's channel, nil without a cluster.
func (d *Daemon) clusterUpdates() <-chan cluster.Update {
	if d.cl == nil {
		return nil
	}
	return d.cl.m.Updates()
}

// clusterUpdate follows what the member reports.
func (d *Daemon) clusterUpdate(u cluster.Update) {
	g := d.cl
	for _, r := range u.Records {
		e, err := d.cache.Import(r)
		if err != nil {
			d.log.Warn("cluster: a replicated binding not taken", "home_address", r.HoA, "err", err)
			continue
		}
		g.imported++
		d.standby(e)
	}
	for _, hoa := range u.Removed {
		if g.dirty[hoa] {
			continue // this member is writing it again
		}
		if e := d.cache.Forget(hoa); e != nil {
			d.standby(e)
		}
	}
	if u.OwnedChanged {
		next := map[netip.Addr]bool{}
		for _, i := range u.Owned {
			next[i] = true
		}
		for inst := range g.owned {
			if !next[inst] {
				d.setOwned(inst, false)
			}
		}
		for inst := range next {
			if !g.owned[inst] {
				d.setOwned(inst, true)
			}
		}
	}
	if len(u.Records) > 0 || len(u.Removed) > 0 {
		d.fwd.Commit()
	}
	if len(u.Committed) > 0 {
		queued := 0
		for _, t := range u.Committed {
			for _, res := range g.held[t] {
				d.send(res, &queued)
			}
			delete(g.held, t)
		}
		d.flush(&queued)
	}
}

// standby installs a router's entry taken from another member in the data
// plane, forwarding only if this member owns its instance.
func (d *Daemon) standby(e *binding.Entry) {
	if dyn, _ := e.Authorized(); dyn {
		d.fwd.AddRouter(tunnel.HARouter{HoA: e.Peer.HoA, Prefixes: e.Peer.MNPs})
		d.fwd.Commit()
	}
	d.cl.cp.SetRouterInstance(e.Peer.HoA, d.instanceOf(e))
	d.fwd.Update(e.Peer.HoA, e.MNPs, e.Bindings, e.Flows)
}

// instanceOf is the instance a router registered with: the address its
// Binding Updates went to.
func (d *Daemon) instanceOf(e *binding.Entry) netip.Addr {
	if e.HA.IsValid() {
		return e.HA
	}
	return d.cfg.Address
}

// setOwned switches an instance on or off: addresses, then forwarding
// and routes on; the reverse off.
func (d *Daemon) setOwned(inst netip.Addr, on bool) {
	g := d.cl
	i := g.insts[inst]
	ti := tunnel.Instance{Address: i.Address, AddressV4: i.AddressV4}
	if on {
		if g.ha != nil {
			if err := g.ha.SetInstanceAddresses(ti, true); err != nil {
				d.log.Error("cluster: the instance's addresses", "instance", inst, "err", err)
			}
		}
		g.cp.SetActive(inst, true)
		g.owned[inst], g.ownedSince[inst] = true, time.Now()
		g.takeovers++
		d.log.Info("cluster: instance owned", "instance", i.String(), "routers", d.routersOf(inst))
		return
	}
	g.cp.SetActive(inst, false)
	if g.ha != nil {
		if err := g.ha.SetInstanceAddresses(ti, false); err != nil {
			d.log.Warn("cluster: the instance's addresses", "instance", inst, "err", err)
		}
	}
	delete(g.owned, inst)
	delete(g.ownedSince, inst)
	g.handovers++
	d.log.Info("cluster: instance given up", "instance", i.String())
}

// routersOf counts the registered routers of an instance.
func (d *Daemon) routersOf(inst netip.Addr) int {
	n := 0
	for _, e := range d.cache.Entries() {
		if e.Registered() && d.instanceOf(e) == inst {
			n++
		}
	}
	return n
}

// clusterForward follows a change of this member's into the data plane's
// instance and marks the record to publish, when this member answers for
// the router: it owns the router's instance, or it handled the router's
// signalling (which only comes to an instance's owner).
func (d *Daemon) clusterForward(e *binding.Entry) {
	g := d.cl
	if g == nil {
		return
	}
	inst := d.instanceOf(e)
	g.cp.SetRouterInstance(e.Peer.HoA, inst)
	if g.owned[inst] {
		g.dirty[e.Peer.HoA] = true
	}
}

// sendOrHold sends an answer, or in a cluster holds the answer to a
// signalling message that changed a router until its record is stored.
func (d *Daemon) sendOrHold(res binding.Result, queued *int) {
	g := d.cl
	if g == nil || res.Changed == nil || res.Reply == nil {
		d.send(res, queued)
		return
	}
	g.dirty[res.Changed.Peer.HoA] = true
	g.hold = append(g.hold, res)
}

// clusterFlush publishes what changed since the last flush, with the
// answers held for it.
func (d *Daemon) clusterFlush() {
	g := d.cl
	if g == nil || len(g.dirty) == 0 {
		return
	}
	recs := make([]*binding.Record, 0, len(g.dirty))
	for hoa := range g.dirty {
		if r := d.cache.Export(hoa); r != nil {
			recs = append(recs, r)
		}
	}
	clear(g.dirty)
	g.token++
	if len(g.hold) > 0 {
		g.held[g.token] = g.hold
		g.hold = nil
	}
	g.m.Publish(recs, g.token)
}

// replySource is where a UDP answer leaves from: the home agent address
// it came to, or in a cluster the
// instance's address the message came to (its IPv4 address for UDP over
// IPv4), so that the router and its NAT see the source they sent to.
func (d *Daemon) replySource(res binding.Result) netip.Addr {
	if len(res.Reply) < 40 {
		return netip.Addr{}
	}
	src := netip.AddrFrom16([16]byte(res.Reply[8:24]))
	if res.Encap != nemo.EncapUDP4 {
		return src
	}
	if d.cl == nil {
		// The home agent's own IPv4 address, wherever it is on the host.
		return d.cfg.AddressV4
	}
	if i, ok := d.cl.insts[src]; ok {
		return i.AddressV4
	}
	return netip.Addr{}
}

// localAddr reports whether a is one of the home agent's addresses: its
// own, or a cluster instance's.
func (d *Daemon) localAddr(a netip.Addr) bool {
	if a == d.cfg.Address {
		return true
	}
	if d.cl != nil {
		_, ok := d.cl.insts[a]
		return ok
	}
	return false
}

// drainInstances gives up every instance for good: the other members take
// them, with the shared cache.
func (d *Daemon) drainInstances() []netip.Addr {
	var given []netip.Addr
	for inst := range d.cl.owned {
		given = append(given, inst)
	}
	slices.SortFunc(given, func(a, b netip.Addr) int { return a.Compare(b) })
	// Drain blocks until the candidacies are withdrawn: the member's
	// report of the instances gone follows on the updates channel.
	done := make(chan struct{})
	go func() { d.cl.m.Drain(); close(done) }()
	for {
		select {
		case <-done:
			return given
		case u := <-d.cl.m.Updates():
			d.clusterUpdate(u)
		}
	}
}

// otherInstances are instances owned by other members alive, in order.
func (d *Daemon) otherInstances() []netip.Addr {
	st := d.cl.m.Status()
	var out []netip.Addr
	for _, i := range d.cfg.Cluster.Instances {
		if d.cl.owned[i.Address] {
			continue
		}
		if c := st.Leaders[i.Address]; len(c) > 0 && c[0] != d.cfg.Cluster.Node {
			out = append(out, i.Address)
		}
	}
	return out
}

func (d *Daemon) clusterStatus(now time.Time) *status.Cluster {
	g := d.cl
	if g == nil {
		return nil
	}
	st := g.m.Status()
	s := &status.Cluster{Node: st.Node, Owned: []string{}, Instances: []status.ClusterInstance{}, Members: []status.ClusterMember{},
		Connected: st.Connected, Draining: st.Draining, LeaseTTL: st.LeaseTTL.Seconds(),
		Counters: map[string]uint64{"commits": st.Commits, "written": st.Written, "conflicts": st.Conflicts, "imported": g.imported,
			"leases_lost": st.LeasesLost, "takeovers": g.takeovers, "handovers": g.handovers}}
	if !st.Deadline.IsZero() && st.Deadline.After(now) {
		s.LeaseLeft = st.Deadline.Sub(now).Seconds()
	}
	for _, i := range d.cfg.Cluster.Instances {
		ci := status.ClusterInstance{Address: i.Address.String(), Candidates: st.Leaders[i.Address], Routers: d.routersOf(i.Address)}
		if ci.Candidates == nil {
			ci.Candidates = []string{}
		}
		if i.AddressV4.IsValid() {
			ci.AddressV4 = i.AddressV4.String()
		}
		if len(ci.Candidates) > 0 {
			ci.Owner = ci.Candidates[0]
		}
		if g.owned[i.Address] {
			s.Owned = append(s.Owned, i.Address.String())
			ci.OwnedSince = g.ownedSince[i.Address].UTC().Format(time.RFC3339Nano)
		}
		s.Instances = append(s.Instances, ci)
	}
	for _, m := range st.Members {
		cm := status.ClusterMember{Node: m.Node, Alive: m.Alive, Draining: m.Draining, Owns: []string{}, Since: m.Since.UTC().Format(time.RFC3339)}
		for _, o := range m.Owns {
			cm.Owns = append(cm.Owns, o.String())
		}
		s.Members = append(s.Members, cm)
	}
	return s
}
