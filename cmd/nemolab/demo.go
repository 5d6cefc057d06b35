package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"nemod/control"
	"nemod/lab"
	"nemod/status"
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

// out is where the demo tells its story; its test reads it.
var out io.Writer = os.Stdout

func step(format string, args ...any) { fmt.Fprintf(out, "\n== "+format+"\n", args...) }
func say(format string, args ...any)  { fmt.Fprintf(out, format+"\n", args...) }
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
	if err := os.WriteFile(mrConf, []byte(lab.RouterUCI(d.mrSock, demoPolicies)), 0o600); err != nil {
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

// router reads the mobile router's status, as `nemod ctl status --json` prints it,
// into the daemon's own type.
func (d *demoRun) router() (s status.Router) {
	control.Do(context.Background(), d.mrSock, "status", nil, &s)
	return s
}

// agentBindings returns car1's bindings at the home agent by BID.
func (d *demoRun) agentBindings() map[uint16]string {
	var s status.HomeAgent
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

func registered(s status.Router, uplink string) bool {
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

func (d *demoRun) ctlTable(role, sock string, cmd ...string) {
	if len(cmd) == 0 {
		cmd = []string{"status"}
	}
	out, err := d.lab.Command(context.Background(), role, append([]string{d.bin, "ctl", "-s", sock}, cmd...)...).CombinedOutput()
	if err != nil {
		say("  (nemod ctl failed: %v)", err)
	}
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		say("    %s", line)
	}
}

// demoPolicies steer voice over the cellular uplink first and duplicate
// control traffic on both; everything else takes the default, Wi-Fi first.
const demoPolicies = `config policy 'cell_first'
	list use 'cell'
	list use 'wifi'
config policy 'both'
	list use 'wifi'
	list use 'cell'
	option mode 'duplicate'
config rule 'voice'
	option proto 'udp'
	option dest_port '5060'
	option policy 'cell_first'
config rule 'control'
	option proto 'udp'
	option dest_port '7001'
	option policy 'both'
`

// The LAN's traffic during the demo.
const (
	appPort     = 7000 // default policy: Wi-Fi, then cellular
	voicePort   = 5060 // rule voice: cellular, then Wi-Fi
	controlPort = 7001 // rule control: duplicated on both
	tcpPort     = 7100
)

type lanTraffic struct {
	app, voice, control *stream
	tcp                 *bulk
}

func (t *lanTraffic) marks() [3]mark {
	return [3]mark{t.app.mark(), t.voice.mark(), t.control.mark()}
}

// report says what each stream noticed between two sets of marks.
func (t *lanTraffic) report(a, b [3]mark) {
	time.Sleep(300 * time.Millisecond) // the last answers arrive
	for i, s := range []struct {
		st   *stream
		what string
	}{{t.app, "application, every 2 ms"}, {t.voice, "voice, every 20 ms"}, {t.control, "control, every 10 ms"}} {
		gap, lost := s.st.between(a[i], b[i])
		say("    %-24s longest silence %4d ms, %3d datagrams lost", s.what+":", gap.Milliseconds(), lost)
	}
	if err := t.tcp.err(); err != nil {
		say("    TCP transfer: broken: %v", err)
		return
	}
	say("    TCP transfer: still open, %.1f MB carried so far", float64(t.tcp.carried.Load())/1e6)
}

func (t *lanTraffic) close() {
	for _, s := range []*stream{t.app, t.voice, t.control} {
		if s != nil {
			s.close()
		}
	}
	if t.tcp != nil {
		t.tcp.close()
	}
	*t = lanTraffic{} // closed once, whoever calls again
}

func (d *demoRun) story() error {
	if err := d.register(); err != nil {
		return err
	}
	t := &lanTraffic{}
	defer t.close()
	if err := d.startTraffic(t); err != nil {
		return err
	}
	if err := d.carrierLoss(t); err != nil {
		return err
	}
	if err := d.silentFailure(t); err != nil {
		return err
	}
	if err := t.tcp.err(); err != nil {
		return fmt.Errorf("the TCP transfer broke: %w", err)
	}
	step("The TCP transfer opened before the first failure is still open")
	say("  %.1f MB carried, no reset: the LAN host kept its address through every change of uplink",
		float64(t.tcp.carried.Load())/1e6)
	if err := d.stopRouter(); err != nil {
		return err
	}
	t.close()
	return d.prefixDelegation()
}

func (d *demoRun) register() error {
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
	return nil
}

func (d *demoRun) startTraffic(t *lanTraffic) error {
	var err error
	if t.app, err = startStream(d.lab, appPort, 2*time.Millisecond); err != nil {
		return err
	}
	if t.voice, err = startStream(d.lab, voicePort, 20*time.Millisecond); err != nil {
		return err
	}
	if t.control, err = startStream(d.lab, controlPort, 10*time.Millisecond); err != nil {
		return err
	}
	if t.tcp, err = startBulk(d.lab, tcpPort); err != nil {
		return fmt.Errorf("TCP to the correspondent: %w", err)
	}
	before := d.router()
	time.Sleep(time.Second)
	after := d.router()
	if from := t.app.seenFrom(); len(from) != 1 || from[0] != lab.LANHost {
		return fmt.Errorf("the correspondent saw the LAN host as %v", from)
	}
	step("The LAN behind the router talks to the Internet through the home agent")
	say("  the LAN host %s sends to the correspondent %s, which sees it as %v:", lab.LANHost, lab.CN6, t.app.seenFrom())
	say("  an address of the mobile network's own prefix, whichever uplink carries it")
	say("    UDP %d, an application, 500 datagrams/s echoed back (round trip %v): default policy, Wi-Fi first", appPort, t.app.medianRTT().Round(10*time.Microsecond))
	say("    UDP %d, voice, 50/s: rule 'voice', cellular first", voicePort)
	say("    UDP %d, control, 100/s: rule 'control', duplicated on both uplinks", controlPort)
	say("    TCP %d, a transfer at about 13 Mbit/s: default policy", tcpPort)
	for i, b := range after.Bindings {
		if i < len(before.Bindings) {
			say("  over the last second the %s tunnel carried %d packets out and %d in", b.Uplink,
				b.TxPackets-before.Bindings[i].TxPackets, b.RxPackets-before.Bindings[i].RxPackets)
		}
	}
	say("\n  nemod ctl flows, on the router; the home agent steers the way back by the same table,")
	say("  registered in the Binding Updates as RFC 6089 flow bindings:")
	d.ctlTable(lab.MR, d.mrSock, "flows")
	return nil
}

func (d *demoRun) carrierLoss(t *lanTraffic) error {
	step("The Wi-Fi access point disappears (carrier lost on wlan0)")
	m := t.marks()
	down := time.Now()
	if err := d.lab.CarrierDown(lab.Wifi); err != nil {
		return err
	}
	if err := waitFor(2*time.Second, func() bool { _, ok := d.agentBindings()[1]; return !ok }); err != nil {
		return fmt.Errorf("de-registration: %w", err)
	}
	say("  the Wi-Fi binding is gone at the home agent %s later: the router de-registered it through the cellular uplink,", since(down))
	say("  and both ends moved the Wi-Fi flows to cellular. What the LAN's traffic noticed:")
	time.Sleep(time.Second)
	t.report(m, t.marks())

	step("The Wi-Fi comes back")
	m = t.marks()
	up := time.Now()
	if err := d.lab.CarrierUp(lab.Wifi); err != nil {
		return err
	}
	if err := waitFor(3*time.Second, func() bool { _, ok := d.agentBindings()[1]; return ok && registered(d.router(), "wifi") }); err != nil {
		return fmt.Errorf("re-registration: %w", err)
	}
	say("  registered again %s after the carrier returned (50 ms of that is the guard against flapping links);", since(up))
	say("  the flows are back on Wi-Fi:")
	time.Sleep(time.Second)
	t.report(m, t.marks())
	return nil
}

func (d *demoRun) silentFailure(t *lanTraffic) error {
	step("The Wi-Fi fails silently: its access router drops everything, the carrier stays up")
	m := t.marks()
	down := time.Now()
	if err := d.lab.Blackhole(lab.Wifi, true); err != nil {
		return err
	}
	if err := waitFor(3*time.Second, func() bool { _, ok := d.agentBindings()[1]; return !ok }); err != nil {
		return fmt.Errorf("dead path detection: %w", err)
	}
	say("  the router's probes (every 450 ms; two missed make a path dead) found it: the Wi-Fi binding")
	say("  was gone at the home agent %s later. mwan3 with its shipped defaults needs 60 to 130 s,", since(down))
	say("  and then breaks the open sessions. What the LAN's traffic noticed:")
	time.Sleep(time.Second)
	t.report(m, t.marks())

	step("The Wi-Fi path works again")
	m = t.marks()
	up := time.Now()
	if err := d.lab.Blackhole(lab.Wifi, false); err != nil {
		return err
	}
	if err := waitFor(5*time.Second, func() bool { _, ok := d.agentBindings()[1]; return ok && registered(d.router(), "wifi") }); err != nil {
		return fmt.Errorf("re-registration: %w", err)
	}
	say("  registered again %s later, at the router's next attempt; the flows are back on Wi-Fi:", since(up))
	time.Sleep(time.Second)
	t.report(m, t.marks())
	return nil
}

func (d *demoRun) stopRouter() error {
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
