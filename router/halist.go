package router

import (
	"net/netip"
	"slices"
	"time"

	"nemod/binding"
	"nemod/config"
	"nemod/status"
)

// The router's home agents (list home_agent, option ha_timeout) and the
// Home Agent Switch: the binding update list decides (package binding's
// halist.go); the daemon points the data plane at the home agent in use
// and reports which one it is and why.

func homeAgents(r *config.Router) []binding.HomeAgentAddr {
	out := make([]binding.HomeAgentAddr, 0, len(r.HomeAgents))
	for _, h := range r.HomeAgents {
		out = append(out, binding.HomeAgentAddr{Address: h.Address, AddressV4: h.AddressV4})
	}
	return out
}

// homeAgentAddrs are every address of the list, for the data plane to
// take packets from.
func homeAgentAddrs(r *config.Router) []netip.Addr {
	var out []netip.Addr
	for _, h := range r.HomeAgents {
		for _, a := range []netip.Addr{h.Address, h.AddressV4} {
			if a.IsValid() {
				out = append(out, a)
			}
		}
	}
	return out
}

// fromHomeAgent reports whether a signalling packet's source is a home
// agent of the router's (the list, or one a switch named).
func (d *Daemon) fromHomeAgent(a netip.Addr) bool {
	return slices.ContainsFunc(d.has.Load().([]binding.HomeAgentAddr), func(h binding.HomeAgentAddr) bool { return h.Address == a })
}

// followHomeAgent points the data plane at the home agent the binding
// update list uses, when it changed.
func (d *Daemon) followHomeAgent() {
	h := d.br.HomeAgent()
	if h.Current == d.curHA {
		return
	}
	d.has.Store(d.br.HomeAgents())
	d.log.Info("home agent", "address", h.Current.Address, "address_v4", h.Current.AddressV4, "reason", h.Reason, "from", h.From)
	d.curHA = h.Current
	d.fwd.SetHomeAgent(h.Current.Address, h.Current.AddressV4)
}

func (d *Daemon) homeAgentStatus(now time.Time) status.RouterHomeAgent {
	h := d.br.HomeAgent()
	s := status.RouterHomeAgent{Index: h.Index, Reason: h.Reason, Failovers: h.Failovers, Switches: h.Switches, Returns: h.Returns}
	if h.Current.Address.IsValid() {
		s.Address = h.Current.Address.String()
	}
	if h.Current.AddressV4.IsValid() {
		s.AddressV4 = h.Current.AddressV4.String()
	}
	if h.From.IsValid() {
		s.From = h.From.String()
	}
	if !h.Since.IsZero() {
		s.Since = h.Since.UTC().Format(time.RFC3339Nano)
	}
	if !h.SilentSince.IsZero() {
		s.Silent = now.Sub(h.SilentSince).Seconds()
	}
	return s
}
