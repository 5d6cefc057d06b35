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
	c := &clusterEnv{env: &env{t: t, lab: l, bin: bin, wifiEncap: "auto", want: defaultStates}, members: opts.Members}
	c.procs = make([]*lab.Proc, opts.Members)
	t.Cleanup(func() {
		if t.Failed() {
			// The daemons' logs: the members' and every router's.
			logs, _ := filepath.Glob(filepath.Join(l.Dir(), "homeagent-*.log"))
			routers, _ := filepath.Glob(filepath.Join(l.Dir(), "router*.log"))
			for _, p := range append(logs, routers...) {
				if b, err := os.ReadFile(p); err == nil {
					t.Logf("--- %s ---\n%s", filepath.Base(p), tailLines(string(b), 40))
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
	if c.mrStates() != defaultStates {
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

// forwardedBy captures, on core's link to each member, what the members
// send from an instance's addresses: the tunnelled packets they forward
// to the router (and their signalling).
func (c *clusterEnv) captureForwarding() []*lab.Capture {
	c.t.Helper()
	var caps []*lab.Capture
	for i := range c.members {
		cp, err := c.lab.Capture(lab.Core, lab.HARoles[i], "src host "+lab.HA6.String()+" or src host "+lab.HA4.String())
		if err != nil {
			c.t.Fatal(err)
		}
		caps = append(caps, cp)
	}
	return caps
}

// firstLast are the times of the first and last packet of each capture
// (zero when it has none).
func firstLast(t *testing.T, caps []*lab.Capture) (first, last []time.Time, n []int) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, cp := range caps {
		path, err := cp.Stop()
		if err != nil {
			t.Fatal(err)
		}
		rows, err := lab.PcapFields(ctx, path, "", "frame.time_epoch")
		if err != nil {
			t.Fatal(err)
		}
		var f, l time.Time
		for _, r := range rows {
			ts := time.Unix(0, int64(parseEpoch(r[0])*1e9))
			if f.IsZero() {
				f = ts
			}
			l = ts
		}
		first, last, n = append(first, f), append(last, l), append(n, len(rows))
	}
	return first, last, n
}

// TestClusterPartition: an etcd member killed changes nothing (two of
// three keep the quorum: the owner keeps its instance, the router's
// changes still reach every member). Then the owner is cut off from etcd
// (nft on its management link): it stops forwarding within its lease,
// and only after its last forwarded packet does another member forward
// for the instance (captures on core's links to the three); healed, it
// stands by.
func TestClusterPartition(t *testing.T) {
	t.Parallel()
	c := newClusterEnv(t, lab.ClusterOptions{Members: 3}, lab.FleetOptions{})
	c.startAll()
	owner := c.routed(lab.HA6)
	c.startMR()
	c.registered()
	if err := c.lab.Etcd(2).Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.lab.Etcd(2).Wait()
	// A change of the router's (the Wi-Fi carrier lost and back) reaches
	// every member through the two etcd members left.
	if err := c.lab.CarrierDown("wifi"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "every member sees car1 with the cellular binding only", func() bool {
		for i := range c.members {
			if o := outersOf(c.member(i), "car1"); !strings.HasPrefix(o, "2 ") || strings.Contains(o, ", ") {
				return false
			}
		}
		return true
	})
	if err := c.lab.CarrierUp("wifi"); err != nil {
		t.Fatal(err)
	}
	c.registered()
	eventually(t, 10*time.Second, "every member sees both bindings again", func() bool {
		for i := range c.members {
			if strings.Count(outersOf(c.member(i), "car1"), ",") != 1 {
				return false
			}
		}
		return true
	})
	if got := c.owner(lab.HA6); got != owner {
		t.Fatalf("the instance moved from ha%d to ha%d with an etcd member killed", owner+1, got+1)
	}
	udp := c.udpStream(time.Millisecond)
	time.Sleep(time.Second)
	caps := c.captureForwarding()
	cut := time.Now()
	if err := c.lab.Partition(lab.HARoles[owner], true); err != nil {
		t.Fatal(err)
	}
	next := -1
	eventually(t, 15*time.Second, "another member owns and routes the instance", func() bool {
		next = c.owner(lab.HA6)
		return next >= 0 && next != owner && c.coreVia(instA) == lab.HARoles[next]
	})
	time.Sleep(2 * time.Second)
	udp.close()
	first, last, n := firstLast(t, caps)
	t.Logf("partitioned ha%d at 0: its last forwarded packet at %v, ha%d's first at %v (%d and %d packets captured)",
		owner+1, last[owner].Sub(cut).Round(time.Millisecond), next+1, first[next].Sub(cut).Round(time.Millisecond), n[owner], n[next])
	if n[owner] == 0 || n[next] == 0 {
		t.Fatalf("captured %v packets by member", n)
	}
	if !last[owner].Before(first[next]) {
		t.Errorf("ha%d forwarded for the instance until %v, ha%d from %v: both at once", owner+1, last[owner], next+1, first[next])
	}
	if d := last[owner].Sub(cut); d > 2*time.Second {
		t.Errorf("the isolated member forwarded %v after the partition, beyond its 2 s lease", d)
	}
	for i := range c.members {
		if i != owner && i != next && n[i] != 0 {
			t.Errorf("ha%d, no owner, forwarded %d packets", i+1, n[i])
		}
	}
	gu, _, _, _ := udp.up.gap(cut.Add(-time.Second))
	gd, _, _, _ := udp.dn.gap(cut.Add(-time.Second))
	t.Logf("UDP gap up %v, down %v", gu.Round(time.Millisecond), gd.Round(time.Millisecond))
	// Healed: the member comes back as a standby.
	if err := c.lab.Partition(lab.HARoles[owner], false); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the healed member stands by", func() bool {
		s := c.member(owner)
		return s.Cluster != nil && s.Cluster.Connected && len(s.Cluster.Owned) == 0 && slices.Contains(c.member(next).Cluster.Owned, lab.HA6.String())
	})
}

// tcpSession is a TCP connection from a role to the correspondent's echo
// server, exchanging a kilobyte every 50 ms until stopped.
type tcpSession struct {
	stop      chan struct{}
	done      chan error
	exchanges int
}

func (e *env) tcpSession(role string, dst netip.AddrPort) *tcpSession {
	e.t.Helper()
	var c net.Conn
	var err error
	e.inNS(role, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err = (&net.Dialer{}).DialContext(ctx, "tcp6", dst.String())
		return nil
	})
	if err != nil {
		e.t.Fatalf("TCP from %s: %v", role, err)
	}
	s := &tcpSession{stop: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		defer c.Close()
		buf := make([]byte, 1024)
		for {
			select {
			case <-s.stop:
				s.done <- nil
				return
			case <-time.After(50 * time.Millisecond):
			}
			// A session is lost when an exchange takes longer than TCP
			// would keep trying through a gap of a few seconds.
			c.SetDeadline(time.Now().Add(15 * time.Second))
			if _, err := c.Write(buf); err != nil {
				s.done <- err
				return
			}
			for got := 0; got < len(buf); {
				n, err := c.Read(buf[got:])
				if err != nil {
					s.done <- err
					return
				}
				got += n
			}
			s.exchanges++
		}
	}()
	return s
}

func (s *tcpSession) end() (int, error) {
	close(s.stop)
	err := <-s.done
	return s.exchanges, err
}

// listUCI gives a router configuration both instances, in order.
func listUCI(r string, v4 bool) string {
	r = strings.Replace(r, "option home_agent '2001:db8:ffff::1'\n", "list home_agent '2001:db8:ffff::1'\n\tlist home_agent '2001:db8:fffe::1'\n", 1)
	if v4 {
		r = strings.Replace(r, "option home_agent_v4 '198.51.100.1'\n", "list home_agent_v4 '198.51.100.1'\n\tlist home_agent_v4 '198.51.100.129'\n", 1)
	}
	return r
}

// TestClusterSwitchAndDrain: two routers on instance A; `ctl switch all`
// at its owner moves both to instance B, on every uplink; `ctl drain` at
// B's owner moves them back to A and hands B over to another member.
// Throughout, a TCP session from each mobile network to the
// correspondent keeps going: no session is lost.
func TestClusterSwitchAndDrain(t *testing.T) {
	t.Parallel()
	c := newClusterEnv(t, lab.ClusterOptions{Members: 3}, lab.FleetOptions{SecondRouter: true})
	c.mrConf = c.write("mr.uci", listUCI(lab.RouterUCI(c.mrSock, ""), true))
	mr2Sock := filepath.Join(c.lab.Dir(), "mr2.sock")
	mr2Conf := c.write("mr2.uci", listUCI(lab.Router2UCI(mr2Sock), false))
	c.startAll()
	ownerA, ownerB := c.routed(lab.HA6), c.routed(lab.InstanceB6)
	c.startMR()
	if _, err := c.lab.Start(lab.MR2, "router2", c.bin, "router", "-c", mr2Conf); err != nil {
		t.Fatal(err)
	}
	c.waitSocket(mr2Sock)
	c.registered()
	mr2 := func() status.Router {
		var s status.Router
		ctlStatus(mr2Sock, &s)
		return s
	}
	eventually(t, 10*time.Second, "car2 registered", func() bool {
		s := mr2()
		return len(s.Bindings) == 1 && s.Bindings[0].State == "registered"
	})
	eventually(t, 10*time.Second, "both mobile networks routed to A's owner", func() bool {
		return c.coreVia(lab.MNP) == lab.HARoles[ownerA] && c.coreVia(lab.MNP2) == lab.HARoles[ownerA]
	})
	c.tcpEcho(lab.CN, netip.AddrPortFrom(lab.CN6, 7000))
	s1 := c.tcpSession(lab.LAN, netip.AddrPortFrom(lab.CN6, 7000))
	s2 := c.tcpSession(lab.LAN2, netip.AddrPortFrom(lab.CN6, 7000))
	at := func(inst netip.Addr) bool {
		a, b := c.mrStatus(), mr2()
		return a.HomeAgentInUse.Address == inst.String() && b.HomeAgentInUse.Address == inst.String() &&
			c.mrStates() == defaultStates && b.Bindings[0].State == "registered" &&
			c.coreVia(lab.MNP) == lab.HARoles[c.owner(inst)] && c.coreVia(lab.MNP2) == lab.HARoles[c.owner(inst)]
	}
	time.Sleep(time.Second)
	var out string
	if err := c.runCtl(lab.HARoles[ownerA], c.socks[ownerA], &out, "switch", "all", "--to", lab.InstanceB6.String()); err != nil {
		t.Fatalf("ctl switch: %v\n%s", err, out)
	}
	if !strings.Contains(out, "car1") || !strings.Contains(out, "car2") {
		t.Fatalf("ctl switch said %q", out)
	}
	moved := eventually(t, 10*time.Second, "both routers at instance B, routed there", func() bool { return at(lab.InstanceB6) })
	t.Logf("ctl switch all: both routers moved and routed within %v", moved.Round(time.Millisecond))
	if r := c.mrStatus().HomeAgentInUse; r.Reason != "home_agent_switch" || r.Switches != 1 {
		t.Fatalf("car1's home agent: %+v", r)
	}
	time.Sleep(time.Second)
	start := time.Now()
	if err := c.runCtl(lab.HARoles[ownerB], c.socks[ownerB], &out, "drain"); err != nil {
		t.Fatalf("ctl drain: %v\n%s", err, out)
	}
	t.Logf("ctl drain answered in %v:\n%s", time.Since(start).Round(time.Millisecond), out)
	if !strings.Contains(out, "moved: car1 car2") && !strings.Contains(out, "moved: car2 car1") || strings.Contains(out, "instances handed over: none") {
		t.Fatalf("ctl drain said %q", out)
	}
	eventually(t, 10*time.Second, "both routers back at A, B owned elsewhere", func() bool {
		o := c.owner(lab.InstanceB6)
		return at(lab.HA6) && o >= 0 && o != ownerB
	})
	time.Sleep(time.Second)
	for i, s := range []*tcpSession{s1, s2} {
		n, err := s.end()
		if err != nil {
			t.Errorf("TCP session from mobile network %d lost after %d exchanges: %v", i+1, n, err)
		}
		t.Logf("TCP session from mobile network %d: %d exchanges", i+1, n)
	}
}

// TestHomeAgentListFailover: two home agents of their own (no cluster),
// the router's list naming both; the first is stopped, and the router
// registers with the second within ha_timeout of its first unanswered
// Binding Update plus one registration.
func TestHomeAgentListFailover(t *testing.T) {
	t.Parallel()
	c := newClusterEnv(t, lab.ClusterOptions{Members: 2, NoEtcd: true}, lab.FleetOptions{})
	c.mrConf = c.write("mr.uci", listUCI(lab.RouterUCI(c.mrSock, "")+"", true))
	// Each home agent at its own addresses, on its loopback, with a route
	// of protocol 135 that its bird announces.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addrs := [][2]netip.Addr{{lab.HA6, lab.HA4}, {lab.InstanceB6, lab.InstanceB4}}
	for i, a := range addrs {
		ha := lab.HomeAgentUCI(c.socks[i])
		ha = strings.Replace(ha, "option address '2001:db8:ffff::1'", "option address '"+a[0].String()+"'", 1)
		ha = strings.Replace(ha, "option address_v4 '198.51.100.1'", "option address_v4 '"+a[1].String()+"'", 1)
		c.confs[i] = c.write(fmt.Sprintf("ha%d.uci", i+1), ha)
		for _, cmd := range [][]string{
			{"ip", "addr", "add", a[0].String() + "/128", "dev", "lo", "nodad"},
			{"ip", "route", "add", a[0].String() + "/128", "dev", "lo", "proto", "135"},
			{"ip", "addr", "add", a[1].String() + "/32", "dev", "lo"},
			{"ip", "route", "add", a[1].String() + "/32", "dev", "lo", "proto", "135"},
		} {
			if _, err := c.lab.Run(ctx, lab.HARoles[i], cmd...); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.mrConf = c.write("mr.uci", strings.Replace(listUCI(lab.RouterUCI(c.mrSock, ""), true), "option lifetime '600'", "option lifetime '600'\n\toption ha_timeout '3'", 1))
	c.startAll()
	eventually(t, 30*time.Second, "core routes both home agents", func() bool {
		return c.coreVia(instA) == lab.HA1 && c.coreVia(netip.PrefixFrom(lab.InstanceB6, 128)) == lab.HA2 &&
			c.coreVia(instA4) == lab.HA1 && c.coreVia(netip.PrefixFrom(lab.InstanceB4, 32)) == lab.HA2
	})
	c.startMR()
	c.registered()
	if r := c.mrStatus().HomeAgentInUse; r.Address != lab.HA6.String() || r.Reason != "configured" {
		t.Fatalf("first home agent: %+v", r)
	}
	stopped := time.Now()
	if err := c.procs[0].Stop(); err != nil {
		t.Fatal(err)
	}
	var silent float64
	eventually(t, 15*time.Second, "the router registered with the second home agent", func() bool {
		r := c.mrStatus()
		if r.HomeAgentInUse.Silent > silent {
			silent = r.HomeAgentInUse.Silent
		}
		return r.HomeAgentInUse.Address == lab.InstanceB6.String() && c.mrStates() == defaultStates
	})
	moved := time.Since(stopped)
	r := c.mrStatus().HomeAgentInUse
	since, _ := time.Parse(time.RFC3339Nano, r.Since)
	t.Logf("first home agent stopped at 0: the router moved at %v and was registered with the second by %v; its first unanswered Binding Update was %.2fs before the move",
		since.Sub(stopped).Round(time.Millisecond), moved.Round(time.Millisecond), silent)
	// Probes find the silence within 0.9 s; ha_timeout 3 s; one
	// registration on top.
	if r.Reason != "ha_timeout" || since.Sub(stopped) > 900*time.Millisecond+3*time.Second+100*time.Millisecond || moved > since.Sub(stopped)+time.Second {
		t.Fatalf("moved after %v: %+v", moved, r)
	}
	eventually(t, 10*time.Second, "core routes the mobile network to the second", func() bool { return c.coreVia(lab.MNP) == lab.HA2 })
	if out, err := c.ping6(lab.LAN, lab.CN6.String(), 3); err != nil {
		t.Fatalf("LAN to the correspondent through the second home agent: %v\n%s", err, out)
	}
}
