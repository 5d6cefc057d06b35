package router

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"nemod/binding"
	"nemod/config"
	"nemod/dhcp4"
	"nemod/hostnet"
	"nemod/status"
)

// The mobile router's IPv4 for its mobile network (RFC 5555): the binding
// update list asks the home agent for it, and whatever is granted goes to
// the data plane and to the LAN (its address on the first lan interface
// and DHCPv4 there, or, on OpenWrt, whoever LAN4 hands it to).

// LANv4 is the IPv4 the mobile network's LAN has now.
type LANv4 struct {
	Interface string       // the first `list lan` interface ("" if none)
	Address   netip.Prefix // the router's address there: the first of the first prefix (invalid: none granted yet)
	HoA       netip.Addr   // the IPv4 home address (invalid if none)
	Prefixes  []netip.Prefix
	DNS       []netip.Addr // what DHCPv4 hands out: dns_v4, else the router's address
	DHCP      bool         // serve DHCPv4 on Interface
	LeaseFile string       // where the DHCPv4 leases are kept
}

// LANAssignment is the LAN's IPv4 for a router configured as r, given what
// the home agent granted (hoa, prefixes): the hook an OpenWrt integration
// reads to hand the prefix to netifd and dnsmasq. On OpenWrt (openwrt)
// DHCPv4 is off unless lan_dhcp4 says otherwise.
func LANAssignment(r *config.Router, hoa netip.Addr, prefixes []netip.Prefix, openwrt bool) LANv4 {
	a := LANv4{HoA: hoa, Prefixes: slices.Clone(prefixes), DHCP: !openwrt}
	if r.LANDHCP4 != nil {
		a.DHCP = *r.LANDHCP4
	}
	if len(r.LAN) > 0 {
		a.Interface = r.LAN[0]
		a.LeaseFile = filepath.Join(r.StateDir, "dhcp4-"+a.Interface+".leases")
	}
	if len(prefixes) > 0 {
		p := prefixes[0].Masked()
		a.Address = netip.PrefixFrom(p.Addr().Next(), p.Bits())
	}
	a.DNS = slices.Clone(r.DNSv4)
	if len(a.DNS) == 0 && a.Address.IsValid() {
		a.DNS = []netip.Addr{a.Address.Addr()}
	}
	if a.Interface == "" {
		a.DHCP = false
	}
	return a
}

// LAN4 is what the router asks of its host for the LAN's IPv4: Apply is
// called with every new assignment (Address invalid: none). The default
// (HostLAN4) puts the address on the interface and serves DHCPv4 there.
type LAN4 interface {
	Apply(a LANv4) error
	// Status is the LAN's address and DHCPv4 leases (nil without a
	// server).
	Status() (addr string, dhcp *status.DHCPv4Leases)
	Close() error
}

// isOpenWrt reports whether the host is OpenWrt, whose netifd and dnsmasq
// own the LAN.
func isOpenWrt() bool {
	_, err := os.Stat("/etc/openwrt_release")
	return err == nil
}

// withIPv4 adds the IPv4 requests to the binding update list's
// configuration, and the home agent's signalling address.
func withIPv4(rc *binding.UpdateListConfig, r *config.Router) {
	rc.HoAv4, rc.MNPsV4, rc.MNPv4Length = r.HomeAddressV4, r.MNPsV4, r.MNPv4Length
	rc.HASignal = r.SignallingHomeAgent()
}

// followIPv4 applies a change in what the home agent granted: data plane,
// then LAN.
func (d *Daemon) followIPv4() {
	if !d.cfg.HasIPv4() {
		return
	}
	hoa, prefixes := d.br.IPv4()
	if hoa == d.v4HoA && slices.Equal(prefixes, d.v4Prefixes) && d.v4Applied {
		return
	}
	d.v4HoA, d.v4Prefixes, d.v4Applied = hoa, prefixes, true
	if err := d.fwd.SetIPv4(hoa, prefixes); err != nil {
		d.log.Error("IPv4 for the mobile network", "err", err)
	}
	a := LANAssignment(d.cfg, hoa, prefixes, isOpenWrt())
	d.log.Info("IPv4 for the mobile network", "home_address", addrOrNone(hoa), "prefixes", prefixes,
		"lan", a.Interface, "lan_address", a.Address, "dhcp", a.DHCP)
	if err := d.lan4.Apply(a); err != nil {
		d.log.Error("IPv4 on the LAN", "interface", a.Interface, "err", err)
	}
}

// statusIPv4 is the router's IPv4 in its status (nil when it asks for
// none).
func (d *Daemon) statusIPv4() *status.RouterIPv4 {
	if !d.cfg.HasIPv4() {
		return nil
	}
	s := &status.RouterIPv4{MNP: []string{}, Requests: []status.IPv4Request{}}
	hoa, prefixes := d.br.IPv4()
	if hoa.IsValid() {
		s.HomeAddress = hoa.String()
	}
	for _, p := range prefixes {
		s.MNP = append(s.MNP, p.String())
	}
	for _, r := range d.br.IPv4Status() {
		q := status.IPv4Request{Requested: r.Requested.String(), Prefix: r.Prefix, Status: r.Status}
		if r.Granted.IsValid() {
			q.Granted = r.Granted.String()
		}
		s.Requests = append(s.Requests, q)
	}
	s.LANAddress, s.DHCP = d.lan4.Status()
	return s
}

// HostLAN4 is LAN4 on the kernel: the address on the interface (netlink)
// and a DHCPv4 server (package dhcp4).
type HostLAN4 struct {
	Log *slog.Logger
	mu  sync.Mutex
	cur LANv4
	srv *dhcp4.Server
}

// Apply implements LAN4.
func (h *HostLAN4) Apply(a LANv4) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if a.Interface == "" {
		return nil
	}
	if err := hostnet.SetLANAddress4(a.Interface, a.Address, h.cur.Address); err != nil {
		return err
	}
	h.cur = a
	if !a.DHCP || !a.Address.IsValid() {
		h.stopDHCP()
		return nil
	}
	cfg := dhcp4.Config{Prefix: a.Address.Masked(), Router: a.Address.Addr(), DNS: a.DNS}
	if h.srv != nil {
		h.srv.SetConfig(cfg)
		return nil
	}
	srv, err := dhcp4.Listen(a.Interface, cfg, a.LeaseFile, nil, h.Log)
	if err != nil {
		return err
	}
	h.srv = srv
	go srv.Serve()
	return nil
}

func (h *HostLAN4) stopDHCP() {
	if h.srv != nil {
		h.srv.Close()
		h.srv = nil
	}
}

// Status implements LAN4.
func (h *HostLAN4) Status() (string, *status.DHCPv4Leases) {
	h.mu.Lock()
	defer h.mu.Unlock()
	addr := ""
	if h.cur.Address.IsValid() {
		addr = h.cur.Address.String()
	}
	if h.srv == nil {
		return addr, nil
	}
	return addr, &status.DHCPv4Leases{Interface: h.cur.Interface, Range: h.cur.Address.Masked().String(), Active: h.srv.Leases().Active(time.Now())}
}

// Close implements LAN4: the server stops and the address goes.
func (h *HostLAN4) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopDHCP()
	if h.cur.Interface != "" && h.cur.Address.IsValid() {
		hostnet.SetLANAddress4(h.cur.Interface, netip.Prefix{}, h.cur.Address)
	}
	h.cur = LANv4{}
	return nil
}
