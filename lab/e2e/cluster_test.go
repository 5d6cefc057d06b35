package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"nemod/internal/testenv"
	"nemod/lab"
	"nemod/status"
)

// A cluster of three home agents sharing their binding cache in a
// three-member etcd, with bird 2 (OSPFv3, OSPFv2) between them and core:
// the owner of the router's instance killed, an etcd member killed, the
// owner partitioned from etcd, the Home Agent Switch and drain; and the
// router's home agent list without a cluster.

type clusterEnv struct {
	*env
	members int
	confs   []string
	socks   []string
	procs   []*lab.Proc
}

func newClusterEnv(t *testing.T, opts lab.ClusterOptions, fleet lab.FleetOptions) *clusterEnv {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "ip", "nft", "dumpcap", "tshark", "conntrack", "ping", "bird", "birdc", "etcd", "etcdctl")
	bin := nemodBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	l, err := lab.New(ctx, lab.Options{Logf: t.Logf, NoRadvd: true, Cluster: opts, Fleet: fleet})
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	c := &clusterEnv{env: &env{t: t, lab: l, bin: bin}, members: opts.Members}
	c.procs = make([]*lab.Proc, opts.Members)
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range append(slices.Clone(c.procs), c.mr) {
				if p != nil {
					if b, err := os.ReadFile(p.LogPath()); err == nil {
						t.Logf("--- %s ---\n%s", filepath.Base(p.LogPath()), tailLines(string(b), 40))
					}
				}
			}
			t.Logf("core's routes:\n%s", c.coreRoutes())
		}
		l.Close()
	})
	c.mrSock = filepath.Join(l.Dir(), "mr.sock")
	c.mrConf = c.write("mr.uci", lab.RouterUCI(c.mrSock, ""))
	for i := range opts.Members {
		sock := filepath.Join(l.Dir(), fmt.Sprintf("ha%d.sock", i+1))
		c.socks = append(c.socks, sock)
		c.confs = append(c.confs, c.write(fmt.Sprintf("ha%d.uci", i+1), lab.ClusterUCI(sock, i, 2)))
	}
	return c
}

// start runs member i's home agent.
func (c *clusterEnv) start(i int) {
	c.t.Helper()
	p, err := c.lab.Start(lab.HARoles[i], fmt.Sprintf("homeagent-ha%d", i+1), c.bin, "homeagent", "-c", c.confs[i])
	if err != nil {
		c.t.Fatal(err)
	}
	c.procs[i] = p
}

// startAll runs every member at once, so that they share the instances,
// and waits for their control sockets.
func (c *clusterEnv) startAll() {
	c.t.Helper()
	for i := range c.members {
		c.start(i)
	}
	for i := range c.members {
		c.waitSocket(c.socks[i])
	}
}

func (c *clusterEnv) member(i int) status.HomeAgent {
	c.t.Helper()
	var s status.HomeAgent
	if err := ctlStatus(c.socks[i], &s); err != nil {
		c.t.Fatalf("ha%d status: %v", i+1, err)
	}
	return s
}

// owner returns the member that owns inst by its own account, -1 if none.
func (c *clusterEnv) owner(inst netip.Addr) int {
	for i := range c.members {
		if c.procs[i] == nil {
			continue
		}
		var s status.HomeAgent
		if ctlStatus(c.socks[i], &s) != nil || s.Cluster == nil {
			continue
		}
		if slices.Contains(s.Cluster.Owned, inst.String()) {
			return i
		}
	}
	return -1
}

// routed waits until a member owns inst and core routes its addresses to
// it (bird's OSPF takes a few seconds to start), and returns the member.
func (c *clusterEnv) routed(inst netip.Addr) int {
	c.t.Helper()
	owner := -1
	eventually(c.t, 30*time.Second, "an owner of "+inst.String()+", routed by core", func() bool {
		owner = c.owner(inst)
		return owner >= 0 && c.coreVia(netip.PrefixFrom(inst, 128)) == lab.HARoles[owner]
	})
	return owner
}

func (c *clusterEnv) coreRoutes() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out6, _ := c.lab.Run(ctx, lab.Core, "ip", "-6", "route")
	out4, _ := c.lab.Run(ctx, lab.Core, "ip", "-4", "route")
	return out6 + out4
}

// coreVia returns the device core routes p through, "" if none.
func (c *clusterEnv) coreVia(p netip.Prefix) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fam := "-6"
	if p.Addr().Is4() {
		fam = "-4"
	}
	out, err := c.lab.Run(ctx, lab.Core, "ip", fam, "route", "show", "exact", p.String())
	if err != nil {
		return ""
	}
	f := strings.Fields(out)
	if i := slices.Index(f, "dev"); i >= 0 && i+1 < len(f) {
		return f[i+1]
	}
	return ""
}

// udpStream is numbered datagrams every interval, both ways, between the
// LAN host's port 9001 and the correspondent's port 9000: the voice rule
// matches them both ways (to port 9000 up, from it down).
type udpStream struct {
	lan, cn *net.UDPConn
	stop    chan struct{}
	done    sync.WaitGroup
	up, dn  *arrivals
}

type arrivals struct {
	mu    sync.Mutex
	times []time.Time
	seqs  map[uint32]bool
	sent  int
}

func (e *env) udpStream(every time.Duration) *udpStream {
	s := &udpStream{stop: make(chan struct{}), up: &arrivals{seqs: map[uint32]bool{}}, dn: &arrivals{seqs: map[uint32]bool{}}}
	e.inNS(lab.LAN, func() (err error) {
		s.lan, err = net.ListenUDP("udp6", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lab.LANHost, 9001)))
		return err
	})
	e.inNS(lab.CN, func() (err error) {
		s.cn, err = net.ListenUDP("udp6", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lab.CN6, 9000)))
		return err
	})
	recv := func(c *net.UDPConn, a *arrivals) {
		defer s.done.Done()
		buf := make([]byte, 2048)
		for {
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if n >= 4 {
				a.mu.Lock()
				a.times = append(a.times, time.Now())
				a.seqs[binary.BigEndian.Uint32(buf)] = true
				a.mu.Unlock()
			}
		}
	}
	s.done.Add(3)
	go recv(s.cn, s.up)
	go recv(s.lan, s.dn)
	go func() {
		defer s.done.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		payload := make([]byte, 160)
		for seq := uint32(0); ; seq++ {
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
			binary.BigEndian.PutUint32(payload, seq)
			s.lan.WriteToUDPAddrPort(payload, netip.AddrPortFrom(lab.CN6, 9000))
			s.cn.WriteToUDPAddrPort(payload, netip.AddrPortFrom(lab.LANHost, 9001))
			for _, a := range []*arrivals{s.up, s.dn} {
				a.mu.Lock()
				a.sent++
				a.mu.Unlock()
			}
		}
	}()
	e.t.Cleanup(s.close)
	return s
}

func (s *udpStream) close() {
	select {
	case <-s.stop:
		return
	default:
	}
	close(s.stop)
	time.Sleep(300 * time.Millisecond)
	s.lan.Close()
	s.cn.Close()
	s.done.Wait()
}

// gap is the longest silence between arrivals after a moment, when it
// began, and how many datagrams arrived of how many sent.
func (a *arrivals) gap(after time.Time) (longest time.Duration, at time.Time, got, sent int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	as := slices.Clone(a.times)
	sort.Slice(as, func(i, j int) bool { return as[i].Before(as[j]) })
	prev := after
	for _, t := range as {
		if t.Before(after) {
			continue
		}
		if d := t.Sub(prev); d > longest {
			longest, at = d, prev
		}
		prev = t
	}
	return longest, at, len(a.seqs), a.sent
}

// lastBefore is the last arrival before t.
func (a *arrivals) between(from, to time.Time) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, x := range a.times {
		if !x.Before(from) && x.Before(to) {
			n++
		}
	}
	return n
}

// iperf runs a TCP transfer from the LAN host to the correspondent for
// secs seconds and returns a function that waits for it and reports.
func (e *env) iperf(secs int, rate string) func() (mb float64, err error) {
	e.t.Helper()
	testenv.NeedTool(e.t, "iperf3")
	if _, err := e.lab.Start(lab.CN, "iperf3-server", "iperf3", "-s", "-1", "-B", lab.CN6.String()); err != nil {
		e.t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	client := e.lab.Command(context.Background(), lab.LAN, "iperf3", "-c", lab.CN6.String(), "-t", fmt.Sprint(secs), "-b", rate, "-J")
	var out strings.Builder
	client.Stdout = &out
	if err := client.Start(); err != nil {
		e.t.Fatal(err)
	}
	return func() (float64, error) {
		if err := client.Wait(); err != nil {
			return 0, fmt.Errorf("iperf3: %v\n%s", err, out.String())
		}
		var res struct {
			Error string `json:"error"`
			End   struct {
				SumReceived struct {
					Bytes float64 `json:"bytes"`
				} `json:"sum_received"`
			} `json:"end"`
		}
		if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
			return 0, err
		}
		if res.Error != "" || res.End.SumReceived.Bytes == 0 {
			return 0, fmt.Errorf("iperf3: %q, %v bytes", res.Error, res.End.SumReceived.Bytes)
		}
		return res.End.SumReceived.Bytes / 1e6, nil
	}
}

var (
	instA    = netip.PrefixFrom(lab.HA6, 128)
	instA4   = netip.PrefixFrom(lab.HA4, 32)
	mnpRoute = lab.MNP
)

// TestClusterKillOwner: kill -9 of the home agent owning the router's
// instance, while a TCP transfer and a 1000 packet/s UDP stream each way
// run: core loses the dead member's routes within seconds (its TUN device
// and with it the addresses and routes went with the process), another
// member takes the instance over from the shared cache, and the traffic
// goes on: the TCP transfer survives, the UDP gap stays within 3 s, and
// the new owner forwards by the router's flow bindings with its NAT
// mapping unchanged.
func TestClusterKillOwner(t *testing.T) {
	t.Parallel()
	c := newClusterEnv(t, lab.ClusterOptions{Members: 3}, lab.FleetOptions{})
	// The voice rule: UDP to port 9000 goes over the cellular uplink (in
	// UDP through the carrier's NAT), both ways.
	c.mrConf = c.write("mr.uci", lab.RouterUCI(c.mrSock, `config policy 'voice'
	list use 'cell'
	list use 'wifi'
config rule 'rtp'
	option proto 'udp'
	option dest_port '9000'
	option policy 'voice'
`))
	c.startAll()
	owner := c.routed(lab.HA6)
	ownerDev := lab.HARoles[owner]
	c.startMR()
	c.registered()
	eventually(t, 10*time.Second, "core routes the mobile network to the owner", func() bool { return c.coreVia(mnpRoute) == ownerDev })
	var want string
	for i := range c.members {
		got := outersOf(c.member(i), "car1")
		if i == owner {
			want = got
		}
		eventually(t, 5*time.Second, fmt.Sprintf("ha%d has car1's bindings", i+1), func() bool {
			return outersOf(c.member(i), "car1") == outersOf(c.member(owner), "car1")
		})
	}
	if !strings.Contains(want, "udp4 192.0.2.2:") {
		t.Fatalf("car1's bindings at the owner: %s", want)
	}
	udp := c.udpStream(time.Millisecond)
	tcp := c.iperf(12, "20M")
	time.Sleep(3 * time.Second)
	killed := time.Now()
	if err := c.procs[owner].Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.procs[owner].Wait()
	c.procs[owner] = nil
	lost := eventually(t, 5*time.Second, "core loses the dead member's route", func() bool { return c.coreVia(instA) != ownerDev })
	var next int
	took := eventually(t, 10*time.Second, "another member owns the instance", func() bool { next = c.owner(lab.HA6); return next >= 0 })
	routed := eventually(t, 10*time.Second, "core routes the instance to the new owner", func() bool {
		return c.coreVia(instA) == lab.HARoles[next] && c.coreVia(mnpRoute) == lab.HARoles[next]
	})
	mb, err := tcp()
	if err != nil {
		t.Fatalf("the TCP transfer did not survive: %v", err)
	}
	time.Sleep(time.Second)
	udp.close()
	gu, atU, gotU, sentU := udp.up.gap(killed.Add(-time.Second))
	gd, atD, gotD, sentD := udp.dn.gap(killed.Add(-time.Second))
	t.Logf("kill -9 of ha%d at 0: core lost its route after %v, ha%d owned the instance after %v, core routed to it after %v",
		owner+1, lost.Round(time.Millisecond), next+1, (lost + took).Round(time.Millisecond), (lost + took + routed).Round(time.Millisecond))
	t.Logf("UDP gap up %v (from %v after the kill), down %v (from %v); %d/%d and %d/%d datagrams arrived; TCP %.1f MB in 12 s",
		gu.Round(time.Millisecond), atU.Sub(killed).Round(time.Millisecond), gd.Round(time.Millisecond), atD.Sub(killed).Round(time.Millisecond),
		gotU, sentU, gotD, sentD, mb)
	if gu > 3*time.Second || gd > 3*time.Second {
		t.Errorf("UDP gap up %v down %v: more than 3 s", gu, gd)
	}
	// The new owner forwards from the shared cache, by car1's flow
	// bindings: the voice stream downlink on the cellular binding, through
	// the same NAT mapping.
	ns := c.member(next)
	if got := outersOf(ns, "car1"); got != want {
		t.Errorf("car1's bindings at the new owner %q, at the old %q", got, want)
	}
	var fl status.HomeAgentFlows
	if err := c.ctlJSON(c.socks[next], "flows", &fl); err != nil {
		t.Fatal(err)
	}
	voice := false
	for _, r := range fl.MobileRouters {
		for _, f := range r.Flows.Flows {
			if len(f.BIDs) > 0 && f.BIDs[0] == 2 && f.Packets > 0 {
				voice = true
			}
		}
	}
	if !voice {
		t.Errorf("the new owner's flow bindings carried nothing by the cellular binding: %+v", fl)
	}
	if c.mrStates() != "wifi=registered/ipv6 cell=registered/udp4" {
		t.Errorf("router: %s", c.mrStates())
	}
}

func outersOf(s status.HomeAgent, name string) string {
	var out []string
	for _, r := range s.MobileRouters {
		if r.Name == name {
			for _, b := range r.Bindings {
				out = append(out, fmt.Sprintf("%d %s %s", b.BID, b.Encap, b.Outer))
			}
		}
	}
	return strings.Join(out, ", ")
}
