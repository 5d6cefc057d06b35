package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"nemod/control"
	"nemod/lab"
	"nemod/status"
)

const (
	casePlain     = "plain"
	caseWireguard = "wireguard"
	caseNemodIPv6 = "nemod-ipv6"
	caseNemodUDP4 = "nemod-udp4"
	// The Wi-Fi uplink set to `option encap 'udp'`: IPv6 in UDP over IPv6,
	// the firewall fallback, chosen by configuration.
	caseNemodUDP6 = "nemod-udp6"
	// The lab's configuration as shipped (`encap 'auto'`): what a nemod
	// router and home agent negotiate on the Wi-Fi.
	caseNemodDefault = "nemod-default"
)

// daemon is a process whose CPU time a case reports, on mr or on ha.
type daemon struct {
	role string // lab.MR or lab.HA
	name string
	pid  int
}

// caseRun is one case in its own lab.
type caseRun struct {
	o       options
	l       *lab.Lab
	name    string
	path    string
	v4      bool // the case carries IPv4 (cases4.go)
	daemons []daemon
	labNS   map[nsID]bool
	socks   [2]string // nemod's control sockets, mr's and ha's
	after   []func()  // run once the lab is closed
}

// caseOutput is what one run of a case measured: both directions.
type caseOutput struct {
	path string
	dirs [2]sample
}

func runCase(ctx context.Context, o options, name string) (out caseOutput, err error) {
	logf := func(string, ...any) {}
	if o.verbose {
		logf = log.Printf
	}
	// lab.CleanupOnSignal needs the lab; until New returns, a Ctrl-C
	// cancels New, which tears down what it built.
	lctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	var interrupted atomic.Bool
	built, watcherDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case <-sigs:
			interrupted.Store(true)
			cancel()
		case <-built:
		}
	}()
	l, err := lab.New(lctx, lab.Options{Logf: logf, KeepDir: o.keep})
	var stop func()
	if err == nil {
		stop = lab.CleanupOnSignal(l)
	}
	// From here on CleanupOnSignal has every signal; one that came before
	// it did is ours to act on.
	signal.Stop(sigs)
	close(built)
	<-watcherDone
	select {
	case <-sigs:
		interrupted.Store(true)
	default:
	}
	cancel()
	if interrupted.Load() {
		if l != nil {
			l.Close()
		}
		fmt.Println("   interrupted")
		os.Exit(130)
	}
	if err != nil {
		return out, err
	}
	c := &caseRun{o: o, l: l, name: name, labNS: labNamespaces(l), v4: isIPv4(name)}
	defer func() {
		if cerr := l.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("closing the lab: %w", cerr))
		}
		stop()
		for _, f := range c.after {
			f()
		}
		if o.keep {
			fmt.Printf("   lab directory kept: %s\n", l.Dir())
		}
	}()

	if o.features != "" {
		if err := setVethFeatures(ctx, l, strings.Fields(o.features)); err != nil {
			return out, err
		}
	}
	if firstLab {
		firstLab = false
		fmt.Printf("   veth offloads (mr lan0): %s\n", offloads(ctx, l, lab.MR, lab.MRLANDev))
	}

	switch name {
	case casePlain:
		err = c.plain(ctx)
	case caseWireguard:
		err = c.wireguard(ctx)
	case caseNemodDefault:
		err = c.nemod(ctx, "wifi", "cell", "auto")
	case caseNemodIPv6:
		err = c.nemod(ctx, "wifi", "cell", "ipv6")
	case caseNemodUDP4:
		err = c.nemod(ctx, "cell", "wifi", "udp4")
	case caseNemodUDP6:
		err = c.nemod(ctx, "wifi", "cell", "udp6")
	case casePlain4:
		err = c.plain4(ctx)
	case caseWireguard4:
		err = c.wireguard4(ctx)
	case caseNemod4IPv6:
		err = c.nemod(ctx, "wifi", "cell", "ipv6")
	case caseNemod4UDP4:
		err = c.nemod(ctx, "cell", "wifi", "udp4")
	case caseNemod4UDP6:
		err = c.nemod(ctx, "wifi", "cell", "udp6")
	default:
		err = fmt.Errorf("unknown case %q", name)
	}
	if err != nil {
		return out, err
	}
	out.path = c.path
	if err := c.startIperfServer(ctx); err != nil {
		return out, err
	}
	for i, reverse := range []bool{false, true} {
		s, err := c.iperf(ctx, reverse)
		if err != nil {
			// Whether the path itself is gone or only the stream stalled.
			reach := "LAN still reaches CN (ping)"
			if _, perr := c.l.Run(ctx, lab.LAN, "ping", c.family(), "-n", "-c", "2", "-W", "1", c.cnAddr()); perr != nil {
				reach = "LAN no longer reaches CN (ping)"
			}
			if c.socks[0] != "" {
				c.printDataplane(ctx, "after the failure")
			}
			return out, fmt.Errorf("%s: %w; %s", direction(reverse), err, reach)
		}
		fmt.Printf("   %-10s %6.2f Gbit/s  %s\n", direction(reverse), s.bps/1e9, s.cpuSummary())
		out.dirs[i] = s
	}
	if c.socks[0] != "" {
		// The data plane's drop counters say what went wrong in a slow run.
		c.printDataplane(ctx, "after the runs")
	}
	if o.hold {
		hold(l)
	}
	return out, nil
}

// firstLab makes the offload settings print once a run: every lab's veths
// are made alike.
var firstLab = true

func direction(reverse bool) string {
	if reverse {
		return "CN -> LAN"
	}
	return "LAN -> CN"
}

// ip runs `ip -6 -batch -` in a role's namespace.
func (c *caseRun) ip(ctx context.Context, role string, lines ...string) error {
	cmd := c.l.Command(ctx, role, "ip", "-6", "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: ip -6 -batch: %w: %s\n%s", role, err, strings.TrimSpace(string(out)), strings.Join(lines, "\n"))
	}
	return nil
}

// plain routes the mobile network over the Wi-Fi path with no tunnel: core
// sends the MNP to the Wi-Fi access router instead of the home agent, and
// that router to mr's SLAAC address. mr already has the RA's default route
// through wlan0 for what the LAN sends.
func (c *caseRun) plain(ctx context.Context) error {
	slaac, err := c.l.Addr(lab.MR, lab.MRWLANDev, lab.IPv6)
	if err != nil {
		return err
	}
	if err := c.ip(ctx, lab.Core, fmt.Sprintf("route replace %s via %s dev wifi", lab.MNP, lab.WifiWAN6)); err != nil {
		return err
	}
	if err := c.ip(ctx, lab.Wifi, fmt.Sprintf("route add %s via %s", lab.MNP, slaac)); err != nil {
		return err
	}
	c.setPath("lan -> mr -> wifi -> core -> cn, plain kernel routing (skips the home agent hop the tunnels take)")
	return c.waitReachable(ctx)
}

func (c *caseRun) setPath(p string) {
	c.path = p
	fmt.Printf("   path: %s\n", p)
}

// wgPort is wireguard's usual port, on both ends.
const wgPort = "51820"

// wireguard runs wireguard-go on mr and ha, the tunnel over the Wi-Fi
// path's IPv6, with the same routing nemod's tunnel has: everything the
// mobile network sends goes to the home agent and out from there.
func (c *caseRun) wireguard(ctx context.Context) error {
	return c.wireguardFor(ctx, "::/0", lab.MNP.String(), func(mrIf, haIf string) error {
		// The rule for the MNP as destination comes first so that traffic
		// between the mobile network's own links stays local; wireguard-go's
		// own packets come from wlan0's address and take the main table.
		if err := c.ip(ctx, lab.MR,
			fmt.Sprintf("rule add to %s lookup main priority 100", lab.MNP),
			fmt.Sprintf("rule add from %s lookup 100 priority 101", lab.MNP),
			fmt.Sprintf("route add ::/0 dev %s table 100", mrIf),
		); err != nil {
			return err
		}
		// core already routes the MNP to the home agent.
		return c.ip(ctx, lab.HA, fmt.Sprintf("route add %s dev %s", lab.MNP, haIf))
	}, "lan -> mr (wireguard-go) -> wifi -> core -> ha (wireguard-go) -> core -> cn, IPv6 over UDP/IPv6, MTU 1420")
}

// wireguardFor sets up wireguard-go between mr and ha over the Wi-Fi
// path's IPv6, the router's peer allowing mrAllowed and the home agent's
// haAllowed, and routes adds the routing into the interfaces.
func (c *caseRun) wireguardFor(ctx context.Context, mrAllowed, haAllowed string, routes func(mrIf, haIf string) error, path string) error {
	// The interfaces are named per lab and per end, not wg0: wireguard-go's
	// control socket is /var/run/wireguard/NAME.sock, in the file system
	// every namespace shares.
	ifs := map[string]string{lab.MR: wgIfName(c.l, "m"), lab.HA: wgIfName(c.l, "h")}
	keys := map[string][2]string{} // role: private key file, public key
	for _, role := range []string{lab.MR, lab.HA} {
		priv, pub, err := wgKeys(ctx, c.l.Dir(), role)
		if err != nil {
			return err
		}
		keys[role] = [2]string{priv, pub}
	}
	for _, role := range []string{lab.MR, lab.HA} {
		ifname := ifs[role]
		sock := filepath.Join(wgSocketDir, ifname+".sock")
		c.after = append(c.after, func() { os.Remove(sock) })
		p, err := c.l.Start(role, "wireguard-go-"+role, c.o.wgBin, "-f", ifname)
		if err != nil {
			return err
		}
		if err := waitProc(p, 10*time.Second, func() bool { _, err := os.Stat(sock); return err == nil }); err != nil {
			return fmt.Errorf("wireguard-go in %s made no control socket %s: %w; %s", role, sock, err, logTail(p.LogPath()))
		}
		pid, err := findPid(c.l, role, p.Pid(), func(args []string) bool {
			return len(args) >= 2 && filepath.Base(args[0]) == filepath.Base(c.o.wgBin) && args[len(args)-1] == ifname
		})
		if err != nil {
			return err
		}
		c.daemons = append(c.daemons, daemon{role: role, name: "wireguard-go", pid: pid})
	}
	if _, err := c.l.Run(ctx, lab.MR, "wg", "set", ifs[lab.MR],
		"private-key", keys[lab.MR][0], "listen-port", wgPort,
		"peer", keys[lab.HA][1], "endpoint", fmt.Sprintf("[%s]:%s", lab.HA6, wgPort), "allowed-ips", mrAllowed); err != nil {
		return err
	}
	if _, err := c.l.Run(ctx, lab.HA, "wg", "set", ifs[lab.HA],
		"private-key", keys[lab.HA][0], "listen-port", wgPort,
		"peer", keys[lab.MR][1], "allowed-ips", haAllowed); err != nil {
		return err
	}
	for _, role := range []string{lab.MR, lab.HA} {
		if _, err := c.l.Run(ctx, role, "ip", "link", "set", ifs[role], "mtu", "1420", "up"); err != nil {
			return err
		}
	}
	if err := routes(ifs[lab.MR], ifs[lab.HA]); err != nil {
		return err
	}
	c.setPath(path)
	return c.waitReachable(ctx)
}

const wgSocketDir = "/var/run/wireguard"

// wgIfName names a lab's wireguard-go interface after the lab's id, so
// that sweepWireguardSockets can tell whose a socket was.
func wgIfName(l *lab.Lab, end string) string {
	return "wg" + strings.TrimPrefix(l.Prefix(), "nl") + end
}

var wgSocketRE = regexp.MustCompile(`^wg([0-9a-f]{6})[mh]\.sock$`)

// sweepWireguardSockets removes the control sockets of wireguard-go
// processes of earlier runs that died without cleaning up (killed with
// this harness, by the lab's Pdeathsig): their lab's namespaces are gone.
func sweepWireguardSockets() {
	ents, _ := os.ReadDir(wgSocketDir)
	for _, e := range ents {
		m := wgSocketRE.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		if _, err := os.Stat(filepath.Join("/var/run/netns", "nl"+m[1]+"-"+lab.MR)); errors.Is(err, os.ErrNotExist) {
			os.Remove(filepath.Join(wgSocketDir, e.Name()))
		}
	}
}

// wgKeys makes a key pair with wg; the private key goes to a file, as
// `wg set` wants it.
func wgKeys(ctx context.Context, dir, role string) (privFile, pub string, err error) {
	priv, err := runIn(ctx, "", "wg", "genkey")
	if err != nil {
		return "", "", err
	}
	pub, err = runIn(ctx, priv, "wg", "pubkey")
	if err != nil {
		return "", "", err
	}
	privFile = filepath.Join(dir, "wg-"+role+".key")
	if err := os.WriteFile(privFile, []byte(priv+"\n"), 0o600); err != nil {
		return "", "", err
	}
	return privFile, pub, nil
}

// nemod starts the home agent and the router with the lab's configuration,
// waits for both bindings, then drops the carrier of the uplink not
// measured so that only `use` carries the traffic, in encapsulation encap
// ("auto": the shipped configuration, whatever it negotiates, which the
// path then names).
func (c *caseRun) nemod(ctx context.Context, use, drop, encap string) error {
	dir := c.l.Dir()
	haSock, mrSock := filepath.Join(dir, "ha.sock"), filepath.Join(dir, "mr.sock")
	haConf, mrConf := filepath.Join(dir, "homeagent.uci"), filepath.Join(dir, "router.uci")
	wifiEncap := map[string]string{"auto": "auto", "ipv6": "ipv6", "udp6": "udp", "udp4": "auto"}[encap]
	if c.v4 {
		if err := c.nemodIPv4Config(haConf, haSock, mrConf, mrSock, wifiEncap); err != nil {
			return err
		}
	} else {
		if err := os.WriteFile(haConf, []byte(lab.HomeAgentUCI(haSock)), 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(mrConf, []byte(lab.RouterUCIEncap(mrSock, wifiEncap, "")), 0o600); err != nil {
			return err
		}
	}
	ha, err := c.l.Start(lab.HA, "homeagent", c.o.nemod, "homeagent", "-c", haConf)
	if err != nil {
		return err
	}
	if err := waitProc(ha, 10*time.Second, func() bool { return control.Do(ctx, haSock, "status", nil, nil) == nil }); err != nil {
		return fmt.Errorf("the home agent did not answer on its control socket: %w; %s", err, logTail(ha.LogPath()))
	}
	mr, err := c.l.Start(lab.MR, "router", c.o.nemod, "router", "-c", mrConf)
	if err != nil {
		return err
	}
	for _, d := range []struct {
		role, sub string
		p         *lab.Proc
	}{{lab.MR, "router", mr}, {lab.HA, "homeagent", ha}} {
		pid, err := findPid(c.l, d.role, d.p.Pid(), func(args []string) bool {
			return len(args) >= 2 && filepath.Base(args[0]) == filepath.Base(c.o.nemod) && args[1] == d.sub
		})
		if err != nil {
			return err
		}
		c.daemons = append(c.daemons, daemon{role: d.role, name: "nemod " + d.sub, pid: pid})
	}

	var st routerStatus
	if err := waitProc(mr, 15*time.Second, func() bool {
		st = routerStatus{}
		return control.Do(ctx, mrSock, "status", nil, &st) == nil && st.state("wifi") == "registered" && st.state("cell") == "registered"
	}); err != nil {
		return fmt.Errorf("both uplinks not registered: %w (%s); %s", err, st.summary(), logTail(mr.LogPath()))
	}
	if err := c.l.CarrierDown(drop); err != nil {
		return err
	}
	// Only so that the path is what the case says; a router that keeps
	// the dead binding a while would still send over `use`.
	_ = waitFor(3*time.Second, func() bool {
		st = routerStatus{}
		return control.Do(ctx, mrSock, "status", nil, &st) == nil && st.state(drop) != "registered"
	})
	got := st.encap(use)
	if encap != "auto" && got != encap {
		return fmt.Errorf("the %s binding uses encapsulation %q, not %q (%s)", use, got, encap, st.summary())
	}
	path := map[string]string{
		"ipv6": "lan -> mr (nemod) -> wifi -> core -> ha (nemod) -> core -> cn, IPv6-in-IPv6 over the Wi-Fi uplink, encap 'ipv6' (cellular carrier down)",
		"udp4": "lan -> mr (nemod) -> cell (CGN) -> core -> ha (nemod) -> core -> cn, IPv6 in UDP/IPv4 over the cellular uplink (Wi-Fi carrier down)",
		"udp6": "lan -> mr (nemod) -> wifi -> core -> ha (nemod) -> core -> cn, IPv6 in UDP/IPv6 over the Wi-Fi uplink, encap 'udp' (cellular carrier down)",
	}[encap]
	switch {
	case c.v4:
		if err := c.afterNemodIPv4(ctx, mrSock); err != nil {
			return err
		}
		path = nemodIPv4Path(encap)
	case encap == "auto":
		path = fmt.Sprintf("lan -> mr (nemod) -> wifi -> core -> ha (nemod) -> core -> cn, the shipped configuration (encap 'auto'): negotiated %s over the Wi-Fi uplink (cellular carrier down)", got)
	}
	c.setPath(path)

	c.socks = [2]string{mrSock, haSock}
	dpMR, dpHA := dataplane(ctx, mrSock), dataplane(ctx, haSock)
	err = c.waitReachable(ctx)
	if dpMR != "" || dpHA != "" {
		c.printDataplane(ctx, "before the runs")
	}
	if err != nil && dpMR == "" && dpHA == "" {
		return &skipError{reason: "no data plane yet", detail: "both uplinks registered, but LAN cannot reach CN and neither daemon reports a dataplane section"}
	}
	return err
}

type routerStatus struct{ status.Router }

func (s routerStatus) state(uplink string) string {
	for _, b := range s.Bindings {
		if b.Uplink == uplink {
			return b.State
		}
	}
	return ""
}

func (s routerStatus) encap(uplink string) string {
	for _, b := range s.Bindings {
		if b.Uplink == uplink {
			return b.Encap
		}
	}
	return ""
}

func (s routerStatus) summary() string {
	var parts []string
	for _, b := range s.Bindings {
		parts = append(parts, fmt.Sprintf("%s %s %s", b.Uplink, b.State, b.Encap))
	}
	if len(parts) == 0 {
		return "no bindings"
	}
	return strings.Join(parts, ", ")
}

// dataplane returns a daemon's "dataplane" status section as compact JSON,
// "" if it has none.
func dataplane(ctx context.Context, sock string) string {
	var st map[string]json.RawMessage
	if control.Do(ctx, sock, "status", nil, &st) != nil {
		return ""
	}
	dp, ok := st["dataplane"]
	if !ok || string(dp) == "null" {
		return ""
	}
	return string(dp)
}

func (c *caseRun) printDataplane(ctx context.Context, when string) {
	fmt.Printf("   router dataplane %s: %s\n", when, orNone(dataplane(ctx, c.socks[0])))
	fmt.Printf("   home agent dataplane %s: %s\n", when, orNone(dataplane(ctx, c.socks[1])))
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// waitReachable pings CN from the LAN host until it answers, so that a
// path that does not work is reported at once instead of as an iperf3
// that hangs; it also gets neighbour discovery and the tunnels' handshakes
// out of the way before anything is timed.
func (c *caseRun) waitReachable(ctx context.Context) error {
	deadline := time.Now().Add(c.o.reach)
	var err error
	for time.Now().Before(deadline) {
		if _, err = c.l.Run(ctx, lab.LAN, "ping", c.family(), "-n", "-c", "1", "-W", "1", c.cnAddr()); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("LAN cannot reach CN %s within %v: %w", c.cnAddr(), c.o.reach, err)
}

func waitFor(within time.Duration, cond func() bool) error {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// waitProc is waitFor that gives up as soon as p exits.
func waitProc(p *lab.Proc, within time.Duration, cond func() bool) error {
	var exited error
	err := waitFor(within, func() bool {
		select {
		case <-p.Exited():
			exited = errors.New("it exited with status 0")
			if err := p.Wait(); err != nil {
				exited = fmt.Errorf("it exited: %w", err)
			}
			return true
		default:
		}
		return cond()
	})
	if exited != nil {
		return exited
	}
	return err
}

func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "no log"
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "its log is empty"
	}
	lines := strings.Split(string(b), "\n")
	return "last lines of " + filepath.Base(path) + ":\n" + strings.Join(lines[max(0, len(lines)-10):], "\n")
}

// hold waits for Enter with the lab up; Ctrl-C still tears it down.
func hold(l *lab.Lab) {
	fmt.Printf("   lab up: namespaces %s-{%s}, directory %s; Enter to go on\n", l.Prefix(), strings.Join(lab.Roles, ","), l.Dir())
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
}
