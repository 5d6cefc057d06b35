// Package twoends runs a real mobile router daemon and a real home agent
// daemon in one test process, over netsim's network: the lab's topology
// (a Wi-Fi uplink with IPv6 and IPv4, a cellular one behind a NAT, a home
// agent, a correspondent and a stranger), with the lab's configurations,
// without root. The daemons' own tests use it; the lab proves the same on
// the kernel.
package twoends

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"nemod/control"
	"nemod/dhcpv6pd/pdio"
	"nemod/homeagent"
	"nemod/internal/netsim"
	"nemod/lab"
	"nemod/nemo"
	"nemod/ra"
	"nemod/ra/ranet"
	"nemod/router"
	"nemod/status"
)

// Ends is the two daemons and their network.
type Ends struct {
	t        *testing.T
	Net      *netsim.Net
	MRHost   *netsim.Host
	HAHost   *netsim.Host
	Stranger *netsim.Host
	Wifi     *netsim.Link
	Cell     *netsim.Link
	NAT      *netsim.NAT
	MRSys    *netsim.RouterSystem
	HASys    *netsim.AgentSystem
	Dir      string
	MRConf   string
	HAConf   string
	MRSock   string
	HASock   string
	// MRSignals and HASignals stand in for the processes' signals.
	MRSignals     chan os.Signal
	HASignals     chan os.Signal
	mu            sync.Mutex
	monitorStarts int
	cancel        context.CancelFunc
	ctx           context.Context
	mrDone        chan error
	haDone        chan error
	monitors      []*stoppable
	MRLog         *syncBuffer
	HALog         *syncBuffer
	mrRunning     bool
	// Want is the router's states once both uplinks are registered, as
	// Registered waits for them (DefaultStates unless a test changes the
	// configuration).
	Want string
	// HAOffer, when set before Start, replaces what the home agent agrees
	// to of nemod's offers (homeagent.Options.Offer).
	HAOffer func() nemo.Caps
	// MRHTTP and HAHTTP are where each daemon's option metrics_listen
	// listens: on this machine's loopback, at a free port (the
	// configured address would clash between test processes).
	MRHTTP, HAHTTP string
	lans           map[string]*netsim.LANLink
	// WrapDHCPv6, when set, wraps the home agent's DHCPv6 socket (a test
	// puts an external server behind it).
	WrapDHCPv6 func(pdio.Conn) pdio.Conn
	// LAN4 stands for the router's LAN IPv4 host side (ipv4.go).
	LAN4 *LAN4
}

// DefaultStates is the lab's configuration registered between two nemod
// daemons: the Wi-Fi in UDP over IPv6, which encap 'auto' negotiates with
// a nemod home agent, the cellular uplink in UDP through the NAT.
const DefaultStates = "wifi=registered/udp6 cell=registered/udp4"

// NativeStates is the same with the Wi-Fi in IPv6-in-IPv6 (encap 'ipv6',
// or a home agent that does not negotiate).
const NativeStates = "wifi=registered/ipv6 cell=registered/udp4"

// UseNativeWifi configures the Wi-Fi uplink for IPv6-in-IPv6 (encap
// 'ipv6'), extra added as New does; call it before Start.
func (e *Ends) UseNativeWifi(extra string) {
	e.WriteRouterConfig(lab.RouterUCIEncap(e.MRSock, "ipv6", extra))
	e.Want = NativeStates
}

// New builds the network and writes the configurations; extra is added to
// the router's (policies, rules).
func New(t *testing.T, extra string) *Ends {
	t.Helper()
	n := netsim.New()
	e := &Ends{t: t, Net: n, MRHost: n.Host("mr"), HAHost: n.Host("ha"), Stranger: n.Host("cn"),
		MRSys: &netsim.RouterSystem{}, HASys: &netsim.AgentSystem{}, Dir: t.TempDir(),
		MRSignals: make(chan os.Signal, 4), HASignals: make(chan os.Signal, 4),
		MRLog: &syncBuffer{}, HALog: &syncBuffer{}, Want: DefaultStates, LAN4: &LAN4{}}
	e.Wifi = e.MRHost.Link(lab.MRWLANDev, lab.MRWLANStatic6.String(), lab.MRWLAN4.String())
	e.Cell = e.MRHost.Link(lab.MRWWANDev, lab.MRWWAN4.String())
	e.NAT = e.Cell.NAT44(lab.CellWAN4.String())
	e.HAHost.Link(lab.HADev, lab.HA6.String(), lab.HA4.String())
	e.Stranger.Link(lab.CNDev, lab.CN6.String())
	e.MRSock, e.HASock = filepath.Join(e.Dir, "mr.sock"), filepath.Join(e.Dir, "ha.sock")
	e.MRConf, e.HAConf = filepath.Join(e.Dir, "router.uci"), filepath.Join(e.Dir, "homeagent.uci")
	e.WriteRouterConfig(lab.RouterUCI(e.MRSock, extra))
	e.WriteHomeAgentConfig(lab.HomeAgentUCI(e.HASock))
	t.Cleanup(e.Stop)
	return e
}

// WriteRouterConfig replaces the router's configuration file.
func (e *Ends) WriteRouterConfig(text string) { e.write(e.MRConf, text) }

// WriteHomeAgentConfig replaces the home agent's configuration file.
func (e *Ends) WriteHomeAgentConfig(text string) { e.write(e.HAConf, text) }

func (e *Ends) write(path, text string) {
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// Start runs both daemons.
func (e *Ends) Start() {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.ctx = cancel, ctx
	e.StartHA(ctx)
	e.StartMR(ctx)
}

// StartHA runs the home agent and waits for its control socket.
func (e *Ends) StartHA(ctx context.Context) {
	e.t.Helper()
	e.haDone = make(chan error, 1)
	go func() {
		e.haDone <- homeagent.Run(ctx, e.HAConf, homeagent.Options{
			Logger: slog.New(slog.NewTextHandler(e.HALog, nil)), Stack: e.HAHost.Stack(), System: e.HASys,
			KernelMIP6: func() bool { return false }, Signals: e.HASignals, ListenHTTP: e.listenHTTP(&e.HAHTTP),
			DHCPv6: e.dhcpv6, Offer: e.HAOffer,
		})
	}()
	e.waitSocket(e.HASock, e.haDone, "home agent")
}

// StartMR runs the mobile router and waits for its control socket.
func (e *Ends) StartMR(ctx context.Context) {
	e.t.Helper()
	e.mrDone = make(chan error, 1)
	e.mrRunning = true
	go func() {
		e.mrDone <- router.Run(ctx, e.MRConf, router.Options{
			Logger: slog.New(slog.NewTextHandler(e.MRLog, nil)), Stack: e.MRHost.Stack(), System: e.MRSys,
			Monitor: e.monitor, Signals: e.MRSignals, LAN4: e.LAN4, ListenHTTP: e.listenHTTP(&e.MRHTTP),
			LAN: e.openLAN,
		})
	}()
	e.waitSocket(e.MRSock, e.mrDone, "mobile router")
}

// listenHTTP listens on a free loopback port whatever the address asked
// for, and records it (host:port) in *at for the test.
func (e *Ends) listenHTTP(at *string) func(netip.AddrPort) (net.Listener, error) {
	return func(netip.AddrPort) (net.Listener, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			e.mu.Lock()
			*at = ln.Addr().String()
			e.mu.Unlock()
		}
		return ln, err
	}
}

// HTTP is the address a daemon's metrics listener is at ("" when off):
// e.HTTP(&e.HAHTTP).
func (e *Ends) HTTP(at *string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return *at
}

// dhcpv6 is the home agent's DHCPv6 socket: on the far side of its TUN
// device, where the kernel would deliver what its routers' relays send
// through their tunnels.
func (e *Ends) dhcpv6(addr netip.AddrPort) (pdio.Conn, error) {
	t := e.HATUN()
	if t == nil {
		return nil, errors.New("no TUN device yet")
	}
	if e.WrapDHCPv6 != nil {
		return e.WrapDHCPv6(t.ListenUDP(addr)), nil
	}
	return t.ListenUDP(addr), nil
}

// openLAN runs a LAN's router advertisements on a netsim link.
func (e *Ends) openLAN(ifname string, adv *ra.Advertiser) (*ranet.LAN, error) {
	l := netsim.NewLANLink()
	e.mu.Lock()
	if e.lans == nil {
		e.lans = map[string]*netsim.LANLink{}
	}
	e.lans[ifname] = l
	e.mu.Unlock()
	return ranet.NewLAN(ifname, l, adv, l), nil
}

// LAN is the router's current link of that name (nil before it opened).
func (e *Ends) LAN(ifname string) *netsim.LANLink {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lans[ifname]
}

// monitor starts netsim's monitor of the router's host, wrapped so that a
// test can make it stop by itself.
func (e *Ends) monitor(_ context.Context, devices []string) (router.Monitor, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.monitorStarts++
	m := &stoppable{Monitor: e.MRHost.Monitor(devices), done: make(chan struct{})}
	e.monitors = append(e.monitors, m)
	return m, nil
}

// MonitorStarts counts the router's interface monitor starts.
func (e *Ends) MonitorStarts() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.monitorStarts
}

// StopMonitor makes the router's current interface monitor give up, as
// ifmon's does when it cannot resynchronise with the kernel.
func (e *Ends) StopMonitor() {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.monitors[len(e.monitors)-1]
	m.once.Do(func() { close(m.done) })
}

type stoppable struct {
	*netsim.Monitor
	done chan struct{}
	once sync.Once
}

func (s *stoppable) Done() <-chan struct{} { return s.done }
func (s *stoppable) Err() error {
	select {
	case <-s.done:
		return fmt.Errorf("monitor stopped by the test")
	default:
		return nil
	}
}

func (e *Ends) waitSocket(sock string, done chan error, what string) {
	e.t.Helper()
	for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
		var s struct{}
		if err := control.Do(context.Background(), sock, "status", nil, &s); err == nil {
			return
		}
		select {
		case err := <-done:
			done <- err
			e.t.Fatalf("%s exited at start: %v\n%s", what, err, e.logs())
		default:
		}
		if time.Since(start) > 5*time.Second {
			e.t.Fatalf("%s did not start\n%s", what, e.logs())
		}
	}
}

func (e *Ends) logs() string {
	return "--- router ---\n" + e.MRLog.String() + "\n--- home agent ---\n" + e.HALog.String()
}

// MRRunning reports whether the router runs.
func (e *Ends) MRRunning() bool { return e.mrRunning }

// StopMR sends the router SIGTERM and waits for it to de-register and
// exit, returning Run's result.
func (e *Ends) StopMR() error {
	e.MRSignals <- syscall.SIGTERM
	e.mrRunning = false
	select {
	case err := <-e.mrDone:
		e.mrDone = nil
		return err
	case <-time.After(5 * time.Second):
		e.t.Fatalf("router did not stop\n%s", e.logs())
		return nil
	}
}

// StopHA sends the home agent SIGTERM and waits for it to exit.
func (e *Ends) StopHA() error {
	e.HASignals <- syscall.SIGTERM
	select {
	case err := <-e.haDone:
		e.haDone = nil
		return err
	case <-time.After(5 * time.Second):
		e.t.Fatalf("home agent did not stop\n%s", e.logs())
		return nil
	}
}

// RestartHA stops the home agent and starts it again, calling while in
// between (a test changes the home agent's files then).
func (e *Ends) RestartHA(while ...func()) {
	e.t.Helper()
	if err := e.StopHA(); err != nil {
		e.t.Fatalf("home agent: %v", err)
	}
	for _, f := range while {
		f()
	}
	e.StartHA(e.ctx)
}

// RestartMR stops the router (SIGTERM) and starts it again.
func (e *Ends) RestartMR() {
	e.t.Helper()
	if err := e.StopMR(); err != nil {
		e.t.Fatalf("router: %v", err)
	}
	e.StartMR(e.ctx)
}

// Stop ends both daemons (the test's cleanup does it too).
func (e *Ends) Stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	e.cancel = nil
	for _, d := range []chan error{e.mrDone, e.haDone} {
		if d == nil {
			continue
		}
		select {
		case <-d:
		case <-time.After(5 * time.Second):
			e.t.Errorf("a daemon did not stop\n%s", e.logs())
		}
	}
	if e.t.Failed() {
		e.t.Log(e.logs())
	}
}

// Ctl sends a control command to a socket and decodes the answer.
func Ctl(sock, cmd string, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return control.Do(ctx, sock, cmd, nil, out)
}

// MRStatus is the router's `ctl status`.
func (e *Ends) MRStatus() status.Router {
	e.t.Helper()
	var s status.Router
	if err := Ctl(e.MRSock, "status", &s); err != nil {
		e.t.Fatalf("router status: %v", err)
	}
	return s
}

// HAStatus is the home agent's `ctl status`.
func (e *Ends) HAStatus() status.HomeAgent {
	e.t.Helper()
	var s status.HomeAgent
	if err := Ctl(e.HASock, "status", &s); err != nil {
		e.t.Fatalf("home agent status: %v", err)
	}
	return s
}

// States is the router's bindings as "uplink=state/encap ...".
func (e *Ends) States() string {
	s := ""
	for i, b := range e.MRStatus().Bindings {
		if i > 0 {
			s += " "
		}
		s += b.Uplink + "=" + b.State + "/" + b.Encap
	}
	return s
}

// HABindings is car1's bindings at the home agent, "bid encap" each.
func (e *Ends) HABindings() []string {
	var out []string
	for _, r := range e.HAStatus().MobileRouters {
		if r.Name == "car1" {
			for _, b := range r.Bindings {
				out = append(out, fmt.Sprintf("%d %s", b.BID, b.Encap))
			}
		}
	}
	return out
}

// Eventually polls cond until it holds or within passes.
func (e *Ends) Eventually(within time.Duration, what string, cond func() bool) time.Duration {
	e.t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			e.t.Fatalf("%s: not within %v\n%s", what, within, e.logs())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// Registered waits for both uplinks to register as Want says.
func (e *Ends) Registered() {
	e.t.Helper()
	e.Eventually(5*time.Second, "both uplinks registered ("+e.Want+")", func() bool {
		return e.States() == e.Want
	})
}

// MRTUN and HATUN are the daemons' devices.
func (e *Ends) MRTUN() *netsim.TUN { return e.MRSys.TUN("nemo0") }
func (e *Ends) HATUN() *netsim.TUN { return e.HASys.TUN("nemoha0") }

// LANHost and CN are the lab's end hosts' addresses.
var (
	LANHost = lab.LANHost
	CN      = lab.CN6
	HoA     = netip.MustParseAddr("2001:db8:ffff:1::100")
)

// syncBuffer is a log sink the daemons and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

var _ io.Writer = (*syncBuffer)(nil)
