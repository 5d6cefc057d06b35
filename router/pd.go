package router

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"time"

	"nemod/binding"
	"nemod/dhcpv6pd"
	"nemod/dhcpv6pd/pdio"
	"nemod/internal/logsum"
	"nemod/ra"
	"nemod/ra/ranet"
	"nemod/status"
)

// Prefix delegation (RFC 6276 §3.1) and the LANs' router advertisements.
//
// With option reqprefix the router registers in implicit mode (no prefix
// options, RFC 3963 §5.2) and, once a binding is registered, asks its home
// agent for prefixes as requesting router with a co-located relay. Every
// message goes from [HoA]:547 to [HA]:547 through the reverse tunnel, where
// RFC 6276 §3 protects it with the Home Address option and IPsec: the home
// agent's data plane admits a packet from the home address only from a
// care-of address this router registered with an authenticated Binding
// Update, so the tunnel authenticates the relay's messages as the binding
// does. The prefixes it holds join the configured ones in the data plane
// (sources it forwards, destinations it delivers, the host's rules) and
// in each LAN's router advertisements.

// LANOpener opens a LAN's router advertisements (ranet.Open with the
// kernel's addresses by default).
type LANOpener func(ifname string, adv *ra.Advertiser) (*ranet.LAN, error)

// pdState is the router's prefix delegation and LANs; event loop only,
// but for what the goroutines it starts own.
type pdState struct {
	runner  *pdio.ClientRunner // nil: no prefix delegation
	running bool
	events  chan []dhcpv6pd.Event
	held    map[netip.Prefix]dhcpv6pd.Held
	lans    []*pdLAN
	plan    []ra.LAN
	reg     bool
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{} // one for each goroutine that ended
	drops   *logsum.Summarizer
}

type pdLAN struct {
	lan     *ranet.LAN
	subnets []ra.Subnet
}

// pdTunnel is the relay's way into the reverse tunnel.
type pdTunnel struct{ d *Daemon }

func (t pdTunnel) Send(pkt []byte) error { return t.d.fwd.SendLocal(pkt) }

// startPD makes the client (its lease read back) and opens the LANs; the
// client starts at the first registered binding.
func (d *Daemon) startPD(ctx context.Context) error {
	pc := d.cfg.PD
	p := &pdState{held: map[netip.Prefix]dhcpv6pd.Held{}, done: make(chan struct{}, len(d.cfg.LAN)+1),
		drops: logsum.New("router advertisement errors", 3, time.Minute)}
	d.pd = p
	p.ctx, p.cancel = context.WithCancel(ctx)
	if pc.Enabled {
		p.events = make(chan []dhcpv6pd.Event, 16)
		r, err := pdio.NewClientRunner(dhcpv6pd.ClientConfig{
			HoA: d.cfg.HomeAddress, Server: netip.AddrPortFrom(d.cfg.HomeAgent, dhcpv6pd.ServerPort),
			PrefixLen: pc.ReqPrefix, RapidCommit: true,
		}, pdio.ClientOptions{
			Tunnel: pdTunnel{d}, Store: &pdio.FileStore{Path: pc.LeaseFile},
			OnEvents: func(ev []dhcpv6pd.Event) { p.events <- ev },
		})
		if err != nil {
			return fmt.Errorf("prefix delegation: lease %s: %w", pc.LeaseFile, err)
		}
		p.runner = r
		hoa := d.cfg.HomeAddress.As16()
		d.fwd.SetLocal(func(pkt []byte) bool {
			// Every packet from the home agent passes here: only UDP to
			// [HoA]:547 (no extension headers: the home agent sends none)
			// goes further.
			if len(pkt) < 48 || pkt[6] != 17 || binary.BigEndian.Uint16(pkt[42:]) != dhcpv6pd.ServerPort || [16]byte(pkt[24:40]) != hoa {
				return false
			}
			return r.Deliver(pkt)
		})
	}
	if d.lanRA() && len(d.cfg.LAN) > 0 {
		open := d.opts.LAN
		if open == nil {
			open = func(ifname string, adv *ra.Advertiser) (*ranet.LAN, error) {
				return ranet.Open(ifname, adv, &ranet.Netlink{})
			}
		}
		rc := ra.Config{MTU: uint32(d.fwd.Status().MTU), DNS: pc.DNS}
		for _, name := range d.cfg.LAN {
			adv, err := ra.NewAdvertiser(rc, rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())))
			if err != nil {
				return err
			}
			l, err := open(name, adv)
			if err != nil {
				return fmt.Errorf("router advertisements on %s: %w", name, err)
			}
			l.OnErr = func(err error) {
				if p.drops.Admit(name, time.Now()) {
					d.log.Warn("router advertisement", "lan", name, "err", err)
				}
			}
			p.lans = append(p.lans, &pdLAN{lan: l})
			p.plan = append(p.plan, ra.LAN{Name: name, Assign: pc.IP6Assign})
		}
	}
	for _, l := range p.lans {
		go func(l *ranet.LAN) {
			if err := l.Run(p.ctx); err != nil {
				d.log.Warn("router advertisements stopped", "lan", l.Ifname, "err", err)
			}
			p.done <- struct{}{}
		}(l.lan)
	}
	d.pdApply(time.Now())
	return nil
}

// pdEvents is the event loop's channel of the client's events (nil, which
// never fires, without prefix delegation).
func (d *Daemon) pdEvents() <-chan []dhcpv6pd.Event {
	if d.pd == nil {
		return nil
	}
	return d.pd.events
}

// pdHandle applies the client's events: the prefixes held change.
func (d *Daemon) pdHandle(ev []dhcpv6pd.Event) {
	for _, e := range ev {
		switch e.Kind {
		case dhcpv6pd.Delegated:
			if _, had := d.pd.held[e.Prefix]; !had {
				d.log.Info("prefix delegated", "prefix", e.Prefix, "valid_until", e.ValidUntil.UTC().Format(time.RFC3339))
			}
			d.pd.held[e.Prefix] = dhcpv6pd.Held{Prefix: e.Prefix, PreferredUntil: e.PreferredUntil, ValidUntil: e.ValidUntil}
		case dhcpv6pd.Released, dhcpv6pd.Expired:
			d.log.Info("prefix "+e.Kind.String(), "prefix", e.Prefix)
			delete(d.pd.held, e.Prefix)
		}
	}
	d.pdApply(time.Now())
}

// mnps are the mobile network prefixes now: the configured ones and the
// delegated ones, in address order.
func (d *Daemon) mnps() []ra.MNP {
	var out []ra.MNP
	for _, p := range d.cfg.MNPs {
		out = append(out, ra.MNP{Prefix: p, PreferredUntil: ra.Forever, ValidUntil: ra.Forever})
	}
	if d.pd != nil {
		for _, h := range d.pd.held {
			if slices.Contains(d.cfg.MNPs, h.Prefix) {
				continue
			}
			out = append(out, ra.MNP{Prefix: h.Prefix, PreferredUntil: h.PreferredUntil, ValidUntil: h.ValidUntil})
		}
	}
	// sort.SliceStable: already in the router's binary, where
	// slices.SortFunc would add 12 KB for this element type.
	sort.SliceStable(out, func(i, j int) bool { return out[i].Prefix.Addr().Less(out[j].Prefix.Addr()) })
	return out
}

// pdApply follows the prefixes and the registration state into the data
// plane and the LANs.
func (d *Daemon) pdApply(now time.Time) {
	if d.pd == nil {
		return
	}
	mnps := d.mnps()
	prefixes := make([]netip.Prefix, len(mnps))
	for i, m := range mnps {
		prefixes[i] = m.Prefix
	}
	if err := d.fwd.SetMNPs(prefixes); err != nil {
		d.log.Error("mobile network prefixes into the data plane", "err", err)
	}
	if len(d.pd.lans) == 0 {
		return
	}
	subnets, err := ra.Plan(mnps, d.pd.plan)
	if err != nil {
		d.log.Warn("LAN prefixes", "err", err)
	}
	for i, l := range d.pd.lans {
		l.subnets = ra.ForLAN(subnets, d.pd.plan[i].Name)
		l.lan.Update(l.subnets, d.pd.reg)
	}
}

// pdBindings follows the bindings: the client starts with the first
// registered one, and the LANs advertise a router lifetime only while one
// is registered.
func (d *Daemon) pdBindings() {
	if d.pd == nil {
		return
	}
	reg := slices.ContainsFunc(d.br.Bindings(), func(b binding.BindingStatus) bool { return b.State == binding.StateRegistered })
	if reg && d.pd.runner != nil && !d.pd.running {
		d.pd.running = true
		p := d.pd
		go func() {
			p.runner.Run(p.ctx)
			p.done <- struct{}{}
		}()
	}
	if reg != d.pd.reg {
		d.pd.reg = reg
		d.pdApply(time.Now())
	}
}

// stopPD gives the prefixes back when option pd_release says so (while the
// bindings still carry the Release), then stops the client and the LANs,
// which send their final advertisements.
func (d *Daemon) stopPD() {
	p := d.pd
	if p == nil {
		return
	}
	if p.runner != nil && p.running && d.cfg.PD.Release {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		p.runner.Release(ctx)
		cancel()
		// The Release's events (the prefixes gone) before the LANs stop.
		select {
		case ev := <-p.events:
			d.pdHandle(ev)
		case <-time.After(100 * time.Millisecond):
		}
	}
	p.cancel()
	left := len(p.lans)
	if p.running {
		left++
	}
	timeout := time.After(2 * time.Second)
	for left > 0 {
		select {
		case <-p.done:
			left--
		case <-p.events:
			// The client may be handing over events as it stops; they
			// change nothing now.
		case <-timeout:
			d.log.Warn("prefix delegation or router advertisements did not stop")
			return
		}
	}
}

func hexDUID(b []byte) string { return hex.EncodeToString(b) }

func leaseStatus(h dhcpv6pd.Held, now time.Time) status.Lease {
	secs := func(t time.Time) int64 {
		if !t.Before(dhcpv6pd.Forever) {
			return int64(dhcpv6pd.Infinity)
		}
		return max(int64(t.Sub(now)/time.Second), 0)
	}
	return status.Lease{Prefix: h.Prefix.String(), Preferred: secs(h.PreferredUntil), Valid: secs(h.ValidUntil),
		PreferredUntil: h.PreferredUntil.UTC().Format(time.RFC3339), ValidUntil: h.ValidUntil.UTC().Format(time.RFC3339)}
}

// pdStatus is the status of prefix delegation and the LANs.
func (d *Daemon) pdStatus(now time.Time) (*status.RouterPD, []status.LAN) {
	p := d.pd
	if p == nil {
		return nil, nil
	}
	var lans []status.LAN
	for _, l := range p.lans {
		ls := status.LAN{Interface: l.lan.Ifname, Prefixes: []string{}, Address: []string{}}
		for _, s := range l.subnets {
			ls.Prefixes = append(ls.Prefixes, s.Prefix.String())
			ls.Address = append(ls.Address, s.Router.String())
		}
		c := l.lan.Counters()
		ls.Counters = map[string]uint64{"sent": c.Sent, "send_errors": c.SendErrors, "addr_errors": c.AddrErrors, "dropped": c.Dropped}
		lans = append(lans, ls)
	}
	if p.runner == nil {
		return nil, lans
	}
	st := p.runner.Status()
	rc := p.runner.Counters()
	ps := &status.RouterPD{State: st.State.String(), Server: netip.AddrPortFrom(d.cfg.HomeAgent, dhcpv6pd.ServerPort).String(),
		ReqPrefix: d.cfg.PD.ReqPrefix, Prefixes: []status.Lease{}, LeaseFile: d.cfg.PD.LeaseFile,
		Counters: map[string]uint64{
			"sent": st.Counters.Sent, "retransmits": st.Counters.Retransmits, "received": st.Counters.Received,
			"malformed": st.Counters.Malformed, "unexpected": st.Counters.Unexpected, "failures": st.Counters.Failures,
			"delivered": rc.Delivered, "dropped": rc.Dropped, "queue_full": rc.QueueFull,
			"send_errors": rc.SendErrors, "store_errors": rc.StoreErrors,
		}}
	if l := st.Lease; l != nil {
		ps.DUID, ps.ServerID = hexDUID(l.DUID), hexDUID(l.ServerID)
		for _, h := range l.Valid(now) {
			ps.Prefixes = append(ps.Prefixes, leaseStatus(h, now))
		}
		if !l.T1.IsZero() {
			ps.T1 = max(int64(l.T1.Sub(now)/time.Second), 0)
		}
		if !l.T2.IsZero() {
			ps.T2 = max(int64(l.T2.Sub(now)/time.Second), 0)
		}
	}
	return ps, lans
}
