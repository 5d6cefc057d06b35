package setup

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"nemod/config"
	"nemod/policy"
	"nemod/status"
)

const (
	goodRouter = "../config/testdata/good/router.uci"
	goodHA     = "../config/testdata/good/homeagent.uci"
)

func TestPlans(t *testing.T) {
	rp, err := Router(goodRouter)
	if err != nil {
		t.Fatal(err)
	}
	want, err := policy.Compile(rp.Router)
	if err != nil {
		t.Fatal(err)
	}
	if rp.File.Router != rp.Router || !rp.Table.Equal(want) || len(rp.Table.Entries) != 5 {
		t.Errorf("router plan: %d entries, %+v", len(rp.Table.Entries), rp.Table)
	}
	hp, err := HomeAgent(goodHA)
	if err != nil {
		t.Fatal(err)
	}
	c := hp.Cache
	if len(c.Peers) != 1 || c.Peers[0].Name != "car1" || !bytes.Equal(c.Peers[0].Key, hp.HomeAgent.MobileRouters[0].Key) ||
		c.MaxLifetime != time.Hour || c.ReplayWindow != config.DefaultReplayWindow || c.HomePrefix != hp.HomeAgent.HomePrefix {
		t.Errorf("cache configuration %+v", c)
	}
	// Each role refuses the other's file, as LoadFor does.
	if _, err := Router(goodHA); err == nil || !strings.Contains(err.Error(), "no router section") {
		t.Errorf("router from a home agent file: %v", err)
	}
	if _, err := HomeAgent(goodRouter); err == nil || !strings.Contains(err.Error(), "no homeagent section") {
		t.Errorf("home agent from a router file: %v", err)
	}
	if _, err := RouterFrom(&config.File{Path: "x"}); err == nil {
		t.Error("RouterFrom without a router")
	}
	if _, err := HomeAgentFrom(&config.File{Path: "x"}); err == nil {
		t.Error("HomeAgentFrom without a home agent")
	}
}

// want reads NAME.want: the line of the error and a part of its text.
func want(t *testing.T, path string) (int, string) {
	t.Helper()
	data, err := os.ReadFile(strings.TrimSuffix(path, ".uci") + ".want")
	if err != nil {
		t.Fatal(err)
	}
	var line int
	var contains string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if v, ok := strings.CutPrefix(l, "line: "); ok {
			line, _ = strconv.Atoi(v)
		} else if v, ok := strings.CutPrefix(l, "contains: "); ok {
			contains = v
		}
	}
	if line == 0 || contains == "" {
		t.Fatalf("%s: no line or contains", path)
	}
	return line, contains
}

// tooManyRules writes a router file with one rule more than can be
// numbered into dir and returns its path and the line of that rule.
func tooManyRules(t testing.TB, dir string) (string, int) {
	var b strings.Builder
	b.WriteString("config router 'main'\n\toption home_agent '2001:db8:ffff::1'\n\toption home_address '2001:db8:ffff:1::100'\n" +
		"\toption spi '256'\n\toption key '00112233445566778899aabbccddeeff'\n" +
		"config uplink 'wifi'\n\toption device 'wlan0'\n\toption bid '1'\n" +
		"config policy 'p'\n\tlist use 'wifi'\n")
	line := 11
	for i := 0; i <= policy.MaxRules; i++ {
		if i == policy.MaxRules {
			line += 3 * i
		}
		fmt.Fprintf(&b, "config rule 'r%d'\n\toption dscp '%d'\n\toption policy 'p'\n", i, i%64)
	}
	path := filepath.Join(dir, "too_many_rules.uci")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, line
}

// Files config.Load accepts and the router's daemon refuses: each is
// refused by setup.Router (what the daemon and check-config run) with an
// error at the file and line of the section at fault.
func TestRefusedBeyondLoad(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.uci")
	if err != nil || len(files) < 5 {
		t.Fatalf("corpus: %d files, %v", len(files), err)
	}
	type bad struct {
		path     string
		line     int
		contains string
	}
	var cases []bad
	for _, f := range files {
		line, contains := want(t, f)
		cases = append(cases, bad{f, line, contains})
	}
	path, line := tooManyRules(t, t.TempDir())
	cases = append(cases, bad{path, line, "at most 4094 rules"})
	for _, c := range cases {
		t.Run(filepath.Base(c.path), func(t *testing.T) {
			if _, err := config.Load(c.path); err != nil {
				t.Fatalf("config.Load refuses it already: %v", err)
			}
			p, err := Router(c.path)
			var ce *config.Error
			prefix := c.path + ":" + strconv.Itoa(c.line) + ": "
			if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), c.contains) || !errors.As(err, &ce) {
				t.Fatalf("got %v, %v; want a *config.Error starting %q with %q", p, err, prefix, c.contains)
			}
		})
	}
}

// edited writes the file at path, each old string of pairs replaced by the
// new one after it, to a temporary folder, and returns its path.
func edited(t *testing.T, path string, pairs ...string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("no %q in %s", pairs[i], path)
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(out, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustRouter(t *testing.T, path string) *RouterPlan {
	t.Helper()
	p, err := Router(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRouterReload(t *testing.T) {
	running := mustRouter(t, goodRouter).Router
	const lines = "option lifetime '600'"
	for _, tc := range []struct {
		name  string
		pairs []string
		reply status.Reload
		check func(t *testing.T, rl *RouterReload)
	}{
		{"nothing", nil, status.Reload{Reloaded: true, Applied: []string{}, NeedsRestart: []string{}},
			func(t *testing.T, rl *RouterReload) {
				if rl.Table != nil || !reflect.DeepEqual(rl.Router, running) {
					t.Errorf("an unchanged file changed the configuration: %+v", rl.Router)
				}
			}},
		{"timing and lifetime",
			[]string{lines, "option lifetime '120'", "option bid '1'", "option bid '1'\n\toption probe_interval '200ms'\n\toption probe_failures '5'"},
			status.Reload{Reloaded: true, Applied: []string{"router.lifetime", "uplink wifi.probe_interval", "uplink wifi.probe_failures"}, NeedsRestart: []string{}},
			func(t *testing.T, rl *RouterReload) {
				u := rl.Router.Uplinks[0]
				if rl.Router.Lifetime != 120*time.Second || u.ProbeInterval != 200*time.Millisecond || u.ProbeFailures != 5 || rl.Table != nil {
					t.Errorf("merged %+v", rl.Router)
				}
				if running.Uplinks[0].ProbeInterval != config.DefaultProbeInterval || running.Lifetime != 600*time.Second {
					t.Error("the running configuration was modified")
				}
			}},
		{"addresses wait",
			[]string{"option home_address '2001:db8:ffff:1::100'", "option home_address '2001:db8:ffff:1::200'",
				"option device 'wlan0'", "option device 'wlan1'\n\toption priority '3'", lines, "option lifetime '300'"},
			status.Reload{Reloaded: true, Applied: []string{"router.lifetime"},
				NeedsRestart: []string{"router.home_address", "uplink wifi.device", "uplink wifi.priority"}},
			func(t *testing.T, rl *RouterReload) {
				r := rl.Router
				if r.HomeAddress != running.HomeAddress || r.Uplinks[0].Device != "wlan0" || r.Uplinks[0].Priority != 0 || r.Lifetime != 300*time.Second {
					t.Errorf("merged %+v", r)
				}
			}},
		{"policies",
			[]string{"option dest_port '5060-5061'\n\toption policy 'voice'", "option dest_port '5060-5061'\n\toption policy 'wifi_first'"},
			status.Reload{Reloaded: true, Applied: []string{"rule sip.policy"}, NeedsRestart: []string{}},
			func(t *testing.T, rl *RouterReload) {
				if rl.Table == nil || rl.Router.Rules[0].Policy != "wifi_first" || rl.Table.Entries[0].BIDs[0] != 1 {
					t.Errorf("table %+v", rl.Table)
				}
			}},
		// A policy naming a new uplink cannot be compiled with the running
		// uplinks: it waits for the restart the uplink needs, with the
		// reason.
		{"policy on a new uplink",
			[]string{"config policy 'voice'", "config uplink 'sat'\n\toption device 'sat0'\n\toption bid '3'\nconfig policy 'voice'",
				"list use 'cell'\n\tlist use 'wifi'\nconfig policy 'wifi_first'", "list use 'sat'\nconfig policy 'wifi_first'",
				lines, "option lifetime '60'"},
			status.Reload{Reloaded: true, Applied: []string{"router.lifetime"}, NeedsRestart: []string{"uplink sat", "policy voice.use"}},
			func(t *testing.T, rl *RouterReload) {
				if rl.Table != nil || !reflect.DeepEqual(rl.Router.Policies, running.Policies) || rl.Router.Lifetime != time.Minute {
					t.Errorf("merged %+v, table %v", rl.Router, rl.Table)
				}
				if rl.Held == nil || !strings.Contains(rl.Held.Error(), `policy "voice" uses "sat", which is not an uplink`) {
					t.Errorf("held: %v", rl.Held)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rl := mustRouter(t, edited(t, goodRouter, tc.pairs...)).Reload(running)
			if !reflect.DeepEqual(rl.Reply, tc.reply) {
				t.Errorf("reply\n got %+v\nwant %+v", rl.Reply, tc.reply)
			}
			tc.check(t, rl)
			// ApplyTo takes the merged options and leaves the others,
			// which readers may be reading, alone.
			cfg := *running
			rl.ApplyTo(&cfg)
			cfg.HomeAgent, cfg.HomeAgentV4, cfg.HomeAddress = rl.Router.HomeAgent, rl.Router.HomeAgentV4, rl.Router.HomeAddress
			if !reflect.DeepEqual(&cfg, rl.Router) {
				t.Errorf("ApplyTo\n got %+v\nwant %+v", cfg, rl.Router)
			}
		})
	}
}

func TestHomeAgentReload(t *testing.T) {
	p, err := HomeAgent(goodHA)
	if err != nil {
		t.Fatal(err)
	}
	running := p.HomeAgent
	const car2 = "config mobile_router 'car2'\n\toption home_address '2001:db8:ffff:1::200'\n\toption spi '257'\n\toption key '00112233445566778899aabbccddeeff'\n"
	for _, tc := range []struct {
		name  string
		pairs []string
		reply status.Reload
		check func(t *testing.T, rl *HomeAgentReload)
	}{
		{"limits and routers",
			[]string{"option max_lifetime '3600'", "option max_lifetime '600'\n\toption replay_window '5'\n\toption liveness_timeout '2s'",
				"list mnp '2001:db8:100::/56'", "list mnp '2001:db8:100::/56'\n" + car2},
			status.Reload{Reloaded: true, Applied: []string{"homeagent.max_lifetime", "homeagent.replay_window", "homeagent.liveness_timeout", "mobile_router car2"}, NeedsRestart: []string{}},
			func(t *testing.T, rl *HomeAgentReload) {
				c := rl.Cache
				if c.MaxLifetime != 10*time.Minute || c.ReplayWindow != 5*time.Second || rl.HomeAgent.LivenessTimeout != 2*time.Second ||
					len(c.Peers) != 2 || c.Peers[1].SPI != 257 {
					t.Errorf("cache %+v", c)
				}
			}},
		{"address waits",
			[]string{"option address_v4 '198.51.100.1'", "option address_v4 '198.51.100.9'", "option spi '256'", "option spi '300'"},
			status.Reload{Reloaded: true, Applied: []string{"mobile_router car1.spi"}, NeedsRestart: []string{"homeagent.address_v4"}},
			func(t *testing.T, rl *HomeAgentReload) {
				if rl.Cache.AddressV4 != running.AddressV4 || rl.Cache.Peers[0].SPI != 300 {
					t.Errorf("cache %+v", rl.Cache)
				}
			}},
		// Routers of a new home prefix do not fit the running one: they
		// wait with it.
		{"new home prefix",
			[]string{"2001:db8:ffff:1::/64", "2001:db8:eeee:1::/64", "2001:db8:ffff:1::100", "2001:db8:eeee:1::100"},
			status.Reload{Reloaded: true, Applied: []string{}, NeedsRestart: []string{"homeagent.home_prefix", "mobile_router car1.home_address"}},
			func(t *testing.T, rl *HomeAgentReload) {
				if rl.Cache.Peers[0].HoA != running.MobileRouters[0].HomeAddress || rl.Held == nil || !strings.Contains(rl.Held.Error(), ":7: mobile_router \"car1\" does not fit") {
					t.Errorf("cache %+v, held %v", rl.Cache, rl.Held)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := HomeAgent(edited(t, goodHA, tc.pairs...))
			if err != nil {
				t.Fatal(err)
			}
			rl := p.Reload(running)
			if !reflect.DeepEqual(rl.Reply, tc.reply) {
				t.Errorf("reply\n got %+v\nwant %+v", rl.Reply, tc.reply)
			}
			tc.check(t, rl)
			cfg := *running
			rl.ApplyTo(&cfg)
			if !reflect.DeepEqual(&cfg, rl.HomeAgent) {
				t.Errorf("ApplyTo\n got %+v\nwant %+v", cfg, rl.HomeAgent)
			}
		})
	}
}
