// Package setup turns a configuration file into what a daemon runs from,
// one way for every caller: the daemon at start and on reload, and `nemod
// check-config`, so that a file check-config accepts is one the daemon
// starts with and the other way round.
//
// For the router that is the file as config.Load reads it and the flow
// binding list policy.Compile builds from it; for the home agent, the
// file and the binding cache's configuration. Every error names the file
// and, for a mistake in its content, the line (PATH:LINE: message).
//
// On reload, a plan is merged into the running configuration: a daemon
// takes what it can while running (config.Diff's table says what) and
// keeps the rest until restarted; the answer to `nemod ctl reload` names
// both. The package does no I/O but config.Load's reading of the file.
package setup

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"nemod/binding"
	"nemod/config"
	"nemod/policy"
	"nemod/status"
)

// RouterPlan is what the mobile router runs from.
type RouterPlan struct {
	File   *config.File // the file, with its warnings
	Router *config.Router
	Table  *policy.Table // the flow binding list compiled from Router
}

// Router loads path for the mobile router: what its daemon runs at start
// and on reload.
func Router(path string) (*RouterPlan, error) {
	f, err := config.LoadFor(path, config.RoleRouter)
	if err != nil {
		return nil, err
	}
	return RouterFrom(f)
}

// RouterFrom is Router for a file already loaded (check-config loads once
// for both roles).
func RouterFrom(f *config.File) (*RouterPlan, error) {
	if f.Router == nil {
		return nil, fmt.Errorf("%s: no router section", f.Path)
	}
	if err := buildFits(f.Router); err != nil {
		return nil, err
	}
	t, err := policy.Compile(f.Router)
	if err != nil {
		return nil, err
	}
	return &RouterPlan{File: f, Router: f.Router, Table: t}, nil
}

// HomeAgentPlan is what the home agent runs from.
type HomeAgentPlan struct {
	File      *config.File // the file, with its warnings
	HomeAgent *config.HomeAgent
	Cache     binding.HAConfig // what binding.NewCache is given
}

// HomeAgent loads path for the home agent: what its daemon runs at start
// and on reload.
func HomeAgent(path string) (*HomeAgentPlan, error) {
	f, err := config.LoadFor(path, config.RoleHomeAgent)
	if err != nil {
		return nil, err
	}
	return HomeAgentFrom(f)
}

// HomeAgentFrom is HomeAgent for a file already loaded.
func HomeAgentFrom(f *config.File) (*HomeAgentPlan, error) {
	if f.HomeAgent == nil {
		return nil, fmt.Errorf("%s: no homeagent section", f.Path)
	}
	return &HomeAgentPlan{File: f, HomeAgent: f.HomeAgent, Cache: cacheConfig(f.HomeAgent)}, nil
}

// Peers are the mobile routers of a home agent's configuration as the
// binding cache takes them.
func Peers(ha *config.HomeAgent) []binding.Peer {
	out := make([]binding.Peer, 0, len(ha.MobileRouters))
	for _, m := range ha.MobileRouters {
		out = append(out, binding.Peer{Name: m.Name, HoA: m.HomeAddress, SPI: m.SPI, Key: m.Key, NAI: m.NAI, MNPs: m.MNPs, PD: m.PD,
			HoAv4: m.HomeAddressV4, MNPsV4: m.MNPsV4})
	}
	return out
}

func cacheConfig(ha *config.HomeAgent) binding.HAConfig {
	return binding.HAConfig{
		Address: ha.Address, AddressV4: ha.AddressV4, HomePrefix: ha.HomePrefix,
		MaxLifetime: ha.MaxLifetime, ReplayWindow: ha.ReplayWindow, Peers: Peers(ha), LeaseV4: ha.LeaseV4,
	}
}

// RouterReload is what a running router takes from a new configuration.
type RouterReload struct {
	// Router is the running configuration with every option of the new
	// one a running router takes on; the rest keeps its running value.
	Router *config.Router
	// Table is the flow binding list compiled for Router, nil when the
	// policies and rules did not change (or wait for a restart).
	Table   *policy.Table
	Changes []config.Change
	Reply   status.Reload
	// Held says why changed policies and rules wait for a restart: they
	// do not compile with the running uplinks (they name a new one). Nil
	// otherwise.
	Held error
}

// Reload merges p, loaded for a reload, into running, the configuration
// the router runs with, which it leaves alone.
func (p *RouterPlan) Reload(running *config.Router) *RouterReload {
	changes := config.DiffRouter(running, p.Router)
	next := *running
	next.Uplinks = slices.Clone(running.Uplinks)
	next.Lifetime, next.ReplayWindow, next.RevokedHoldoff = p.Router.Lifetime, p.Router.ReplayWindow, p.Router.RevokedHoldoff
	next.HATimeout = p.Router.HATimeout
	for i := range next.Uplinks {
		u := &next.Uplinks[i]
		if j := slices.IndexFunc(p.Router.Uplinks, func(n config.Uplink) bool { return n.Name == u.Name }); j >= 0 {
			u.ProbeInterval, u.ProbeFailures = p.Router.Uplinks[j].ProbeInterval, p.Router.Uplinks[j].ProbeFailures
		}
	}
	rl := &RouterReload{Router: &next, Changes: changes}
	flows := func(c config.Change) bool {
		return strings.HasPrefix(c.Section, "policy ") || strings.HasPrefix(c.Section, "rule ") || c.String() == "router.default_policy"
	}
	if slices.ContainsFunc(changes, flows) {
		// Compiled with the running uplinks: their BIDs are the ones
		// registered.
		cand := next
		cand.Policies, cand.Rules, cand.DefaultPolicy, cand.Path = p.Router.Policies, p.Router.Rules, p.Router.DefaultPolicy, p.Router.Path
		if t, err := policy.Compile(&cand); err != nil {
			rl.Held = err
			hold(changes, flows)
		} else {
			next, rl.Table = cand, t
		}
	}
	rl.Reply = reply(changes)
	return rl
}

// ApplyTo copies into cfg, the running configuration, the fields a reload
// may change, and no other: a daemon's packet readers may be reading the
// addresses meanwhile.
func (rl *RouterReload) ApplyTo(cfg *config.Router) {
	n := rl.Router
	cfg.Lifetime, cfg.ReplayWindow, cfg.DefaultPolicy, cfg.RevokedHoldoff = n.Lifetime, n.ReplayWindow, n.DefaultPolicy, n.RevokedHoldoff
	cfg.HATimeout = n.HATimeout
	cfg.Uplinks, cfg.Policies, cfg.Rules, cfg.Path = n.Uplinks, n.Policies, n.Rules, n.Path
}

// HomeAgentReload is what a running home agent takes from a new
// configuration.
type HomeAgentReload struct {
	// HomeAgent is the running configuration with every option of the new
	// one a running home agent takes on.
	HomeAgent *config.HomeAgent
	// Peers and the limits of Cache are what the binding cache is to
	// take (SetPeers, SetLimits).
	Cache   binding.HAConfig
	Changes []config.Change
	Reply   status.Reload
	// Held says why changed mobile routers wait for a restart: one does
	// not fit the running home agent's address and home prefix (which
	// changed too). Nil otherwise.
	Held error
}

// Reload merges p, loaded for a reload, into running, the configuration
// the home agent runs with, which it leaves alone.
func (p *HomeAgentPlan) Reload(running *config.HomeAgent) *HomeAgentReload {
	n := p.HomeAgent
	changes := config.DiffHomeAgent(running, n)
	next := *running
	next.MaxLifetime, next.ReplayWindow, next.LivenessTimeout = n.MaxLifetime, n.ReplayWindow, n.LivenessTimeout
	next.MasqueradeV4 = n.MasqueradeV4
	rl := &HomeAgentReload{HomeAgent: &next, Changes: changes}
	if err := fits(running, n, p.File.Path); err != nil {
		rl.Held = err
		hold(changes, func(c config.Change) bool { return strings.HasPrefix(c.Section, "mobile_router ") })
	} else {
		next.MobileRouters = n.MobileRouters
	}
	rl.Cache = cacheConfig(&next)
	rl.Reply = reply(changes)
	return rl
}

// ApplyTo copies into cfg, the running configuration, the fields a reload
// may change, and no other (see RouterReload.ApplyTo).
func (rl *HomeAgentReload) ApplyTo(cfg *config.HomeAgent) {
	n := rl.HomeAgent
	cfg.MaxLifetime, cfg.ReplayWindow, cfg.LivenessTimeout, cfg.MobileRouters = n.MaxLifetime, n.ReplayWindow, n.LivenessTimeout, n.MobileRouters
	cfg.MasqueradeV4 = n.MasqueradeV4
}

// fits checks the new mobile routers against what the running home agent
// keeps, as config.Load checked them against the new file's.
func fits(running, n *config.HomeAgent, path string) error {
	if running.HomePrefix == n.HomePrefix && running.Address == n.Address {
		return nil
	}
	for _, m := range n.MobileRouters {
		bad := !running.HomePrefix.Contains(m.HomeAddress) || m.HomeAddress == running.Address ||
			slices.ContainsFunc(m.MNPs, func(q netip.Prefix) bool {
				return q.Overlaps(running.HomePrefix) || q.Contains(running.Address)
			})
		if bad {
			return &config.Error{Path: path, Line: m.Line, Msg: fmt.Sprintf(
				"mobile_router %q does not fit the running home agent (address %s, home_prefix %s) until it is restarted",
				m.Name, running.Address, running.HomePrefix)}
		}
	}
	return nil
}

// hold marks the changes that match as needing a restart.
func hold(changes []config.Change, match func(config.Change) bool) {
	for i := range changes {
		if match(changes[i]) {
			changes[i].Reloadable = false
		}
	}
}

func reply(changes []config.Change) status.Reload {
	r := status.Reload{Reloaded: true, Applied: []string{}, NeedsRestart: []string{}}
	for _, c := range changes {
		if c.Reloadable {
			r.Applied = append(r.Applied, c.String())
		} else {
			r.NeedsRestart = append(r.NeedsRestart, c.String())
		}
	}
	return r
}
