package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"nemod/control"
	"nemod/lab"
)

// demo tells the story of nemod in the lab, with figures measured live:
// a mobile router with a Wi-Fi and a cellular uplink registers both with
// its home agent, loses its Wi-Fi and gets it back.
func demo(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	bin := fs.String("nemod", "bin/nemod", "the nemod binary to run")
	keep := fs.Bool("keep", false, "keep the lab's directory (configs, logs) afterwards")
	_ = fs.Parse(args)
	nemod, err := filepath.Abs(*bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(nemod); err != nil {
		return fmt.Errorf("%s: build it first (make build)", nemod)
	}

	step("Building the lab: seven network namespaces joined by veth links")
	say("  lan host -- mobile router ==wlan0== Wi-Fi access router (IPv6 + IPv4 NAT) --\\")
	say("                             \\=wwan0== cellular access router (IPv4 only, carrier NAT) -- core -- home agent")
	say("                                                                                    \\-- correspondent")
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := lab.New(ctx, lab.Options{KeepDir: *keep})
	if err != nil {
		return err
	}
	defer l.Close()
	defer lab.CleanupOnSignal(l)()
	slaac, _ := l.Addr(lab.MR, lab.MRWLANDev, 6)
	say("  ready in %v; the router's Wi-Fi got %s by SLAAC, its cellular uplink 100.64.0.2 behind the NAT",
		since(start), slaac)

	d := &demoRun{lab: l, bin: nemod, haSock: filepath.Join(l.Dir(), "ha.sock"), mrSock: filepath.Join(l.Dir(), "mr.sock")}
	if err := d.startDaemons(); err != nil {
		return d.fail(err)
	}
	if err := d.story(); err != nil {
		return d.fail(err)
	}
	step("Done: everything is torn down")
	return nil
}

type demoRun struct {
	lab            *lab.Lab
	bin            string
	haSock, mrSock string
	ha, mr         *lab.Proc
}

func step(format string, args ...any) { fmt.Printf("\n== "+format+"\n", args...) }
func say(format string, args ...any)  { fmt.Printf(format+"\n", args...) }
func since(t time.Time) string        { return time.Since(t).Round(time.Millisecond).String() }

// fail shows the daemons' logs, so that a failed demo says why.
func (d *demoRun) fail(err error) error {
	for _, p := range []*lab.Proc{d.ha, d.mr} {
		if p == nil {
			continue
		}
		if b, rerr := os.ReadFile(p.LogPath()); rerr == nil {
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			fmt.Fprintf(os.Stderr, "--- last lines of %s ---\n%s\n", filepath.Base(p.LogPath()), strings.Join(lines[max(0, len(lines)-15):], "\n"))
		}
	}
	return err
}

func (d *demoRun) startDaemons() error {
	haConf := filepath.Join(d.lab.Dir(), "homeagent.uci")
	mrConf := filepath.Join(d.lab.Dir(), "router.uci")
	if err := os.WriteFile(haConf, []byte(lab.HomeAgentUCI(d.haSock)), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(mrConf, []byte(lab.RouterUCI(d.mrSock, "")), 0o600); err != nil {
		return err
	}
	step("Starting the home agent (2001:db8:ffff::1, 198.51.100.1) and the mobile router")
	var err error
	if d.ha, err = d.lab.Start(lab.HA, "homeagent", d.bin, "homeagent", "-c", haConf); err != nil {
		return err
	}
	if err := waitFor(5*time.Second, func() bool { return control.Do(context.Background(), d.haSock, "status", nil, nil) == nil }); err != nil {
		return errors.New("the home agent did not start")
	}
	return nil
}

type routerState struct {
	Bindings []struct {
		BID    uint16 `json:"bid"`
		Uplink string `json:"uplink"`
		Device string `json:"device"`
		CoA    string `json:"coa"`
		Encap  string `json:"encap"`
		State  string `json:"state"`
		NAT    bool   `json:"nat"`
	} `json:"bindings"`
}

type agentState struct {
	MobileRouters []struct {
		Name     string `json:"name"`
		Bindings []struct {
			BID   uint16 `json:"bid"`
			CoA   string `json:"coa"`
			Encap string `json:"encap"`
			Outer string `json:"outer"`
			NAT   bool   `json:"nat"`
		} `json:"bindings"`
	} `json:"mobile_routers"`
}

func (d *demoRun) router() (s routerState) {
	control.Do(context.Background(), d.mrSock, "status", nil, &s)
	return s
}

// agentBindings returns car1's bindings at the home agent by BID.
func (d *demoRun) agentBindings() map[uint16]string {
	var s agentState
	control.Do(context.Background(), d.haSock, "status", nil, &s)
	m := map[uint16]string{}
	for _, r := range s.MobileRouters {
		if r.Name == "car1" {
			for _, b := range r.Bindings {
				m[b.BID] = fmt.Sprintf("%s %s via %s", b.Encap, b.CoA, b.Outer)
			}
		}
	}
	return m
}

func registered(s routerState, uplink string) bool {
	for _, b := range s.Bindings {
		if b.Uplink == uplink {
			return b.State == "registered"
		}
	}
	return false
}

func waitFor(within time.Duration, cond func() bool) error {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", within)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

func (d *demoRun) ctlTable(role, sock string) {
	out, err := d.lab.Command(context.Background(), role, d.bin, "ctl", "-s", sock, "status").CombinedOutput()
	if err != nil {
		say("  (nemod ctl failed: %v)", err)
	}
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		say("    %s", line)
	}
}

func (d *demoRun) story() error {
	t0 := time.Now()
	var err error
	if d.mr, err = d.lab.Start(lab.MR, "router", d.bin, "router", "-c", filepath.Join(d.lab.Dir(), "router.uci")); err != nil {
		return err
	}
	if err := waitFor(10*time.Second, func() bool {
		s := d.router()
		return registered(s, "wifi") && registered(s, "cell")
	}); err != nil {
		return fmt.Errorf("registration: %w", err)
	}
	took := since(t0)
	step("Both uplinks are registered with the home agent, %s after the router started", took)
	for _, b := range d.router().Bindings {
		switch b.Uplink {
		case "wifi":
			say("  Wi-Fi (BID %d, %s): care-of address %s, native IPv6 signalling and IPv6-in-IPv6", b.BID, b.Device, b.CoA)
		case "cell":
			say("  cellular (BID %d, %s): care-of address %s, IPv4 only: Mobile IPv6 in UDP port 4191 (RFC 5555)", b.BID, b.Device, b.CoA)
		}
	}
	ab := d.agentBindings()
	say("  the home agent sees BID 1 as %s", ab[1])
	say("  and BID 2 as %s: the carrier's NAT was detected and is kept open", ab[2])
	say("  every Binding Update is authenticated (RFC 4285 HMAC-SHA1) and timestamped against replays")
	say("\n  nemod ctl status, on the router:")
	d.ctlTable(lab.MR, d.mrSock)
	say("\n  and on the home agent:")
	d.ctlTable(lab.HA, d.haSock)

	for round := 1; round <= 2; round++ {
		step("The Wi-Fi access point disappears (carrier lost on wlan0), take %d", round)
		down := time.Now()
		if err := d.lab.CarrierDown(lab.Wifi); err != nil {
			return err
		}
		if err := waitFor(2*time.Second, func() bool { _, ok := d.agentBindings()[1]; return !ok }); err != nil {
			return fmt.Errorf("de-registration: %w", err)
		}
		say("  the Wi-Fi binding is gone at the home agent %s later: the router de-registered it through the cellular uplink", since(down))
		left := d.agentBindings()
		say("  the home agent now keeps only: BID 2 %s", left[2])
		time.Sleep(time.Second)

		step("The Wi-Fi comes back")
		up := time.Now()
		if err := d.lab.CarrierUp(lab.Wifi); err != nil {
			return err
		}
		if err := waitFor(3*time.Second, func() bool { _, ok := d.agentBindings()[1]; return ok && registered(d.router(), "wifi") }); err != nil {
			return fmt.Errorf("re-registration: %w", err)
		}
		say("  registered again %s after the carrier returned (50 ms of that is the guard against flapping links)", since(up))
	}

	step("Stopping the router: it de-registers every binding before it exits")
	stop := time.Now()
	if err := d.mr.Stop(); err != nil && !isExit(err) {
		return err
	}
	if err := waitFor(2*time.Second, func() bool { return len(d.agentBindings()) == 0 }); err != nil {
		return fmt.Errorf("de-registration on stop: %w", err)
	}
	say("  the home agent holds no binding for car1 any more, %s after SIGTERM", since(stop))
	return nil
}

func isExit(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee)
}
