// Command haload measures the home agent's registration capacity: it
// starts a real `nemod homeagent` in a network namespace of its own,
// configured for many mobile routers, and registers two bindings for each
// over loopback, every Binding Update authenticated (RFC 4285) and sent in
// UDP (RFC 5555) from a source of its own, as each uplink of a real router
// would. It prints registrations per second and the memory the home agent
// keeps per binding.
//
//	haload -nemod bin/nemod -routers 10000
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"nemod/control"
	"nemod/lab"
	"nemod/nemo"
	"nemod/status"
)

var (
	haAddr  = netip.MustParseAddr("2001:db8:ffff::1")
	homePfx = "2001:db8:ffff:1::/64"
)

func hoa(i int) netip.Addr {
	var b [16]byte
	copy(b[:], netip.MustParseAddr("2001:db8:ffff:1::").AsSlice())
	binary.BigEndian.PutUint32(b[12:], uint32(i+1))
	return netip.AddrFrom16(b)
}

// mnp gives router i its own /56 in 2001:db8:8000::/33.
func mnp(i int) netip.Prefix {
	var b [16]byte
	binary.BigEndian.PutUint32(b[:], 0x20010db8)
	binary.BigEndian.PutUint32(b[4:], 0x80000000|uint32(i)<<8)
	return netip.PrefixFrom(netip.AddrFrom16(b), 56)
}

func key(i int) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(i)*0x9e3779b97f4a7c15)
	binary.BigEndian.PutUint64(k[8:], uint64(i)+1)
	return k
}

func writeConfig(path, sock string, n int, radius string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "config homeagent 'main'\n\toption address '%s'\n\toption home_prefix '%s'\n\toption control_socket '%s'\n", haAddr, homePfx, sock)
	if radius != "" {
		// Every router is known to RADIUS only.
		b.WriteString(radius)
		n = 0
	}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "config mobile_router 'r%d'\n\toption home_address '%s'\n\toption spi '%d'\n\toption key '%x'\n\tlist mnp '%s'\n",
			i, hoa(i), 1000+i, key(i), mnp(i))
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// registration builds router i's Binding Update for one BID, sent from the
// loopback address: the care-of address is the packet's source, so the
// home agent ties the binding to the socket's port.
func registration(i int, bid uint16, seq uint16, now time.Time) ([]byte, error) {
	bu := &nemo.BindingUpdate{
		Seq: seq, Flags: nemo.BUFlagA | nemo.BUFlagH | nemo.BUFlagR, Lifetime: nemo.Lifetime(time.Hour),
		Options: nemo.Options{
			MNPs:    []netip.Prefix{mnp(i)},
			BIDs:    []nemo.BID{{ID: bid, CoA: netip.IPv6Loopback()}},
			HasMNID: true, MNIDSubtype: nemo.MNIDSubtypeNAI, MNID: []byte(fmt.Sprintf("r%d@bench", i)),
			HasTimestamp: true, Timestamp: nemo.NTPTime(now),
			Auth: []nemo.Auth{{Subtype: nemo.AuthMNHA, SPI: uint32(1000 + i)}},
		},
	}
	mh, err := nemo.Marshal(bu)
	if err != nil {
		return nil, err
	}
	h := hoa(i)
	if err := nemo.NewAuthenticator(key(i)).Sign(mh, h, h); err != nil {
		return nil, err
	}
	return nemo.AppendPacket(nil, h, haAddr, netip.Addr{}, netip.Addr{}, 64, mh)
}

func main() {
	log.SetFlags(0)
	bin := flag.String("nemod", "bin/nemod", "nemod binary")
	profile := flag.String("cpuprofile", "", "have the home agent write a CPU profile here (in the cluster case, each member to this path with .haN added)")
	routers := flag.Int("routers", 10000, "mobile routers (two bindings each)")
	senders := flag.Int("senders", 2, "sending sockets per BID (each a care-of address and port)")
	window := flag.Int("window", 512, "unanswered Binding Updates allowed per socket")
	radius := flag.Bool("radius", false, "routers known only to RADIUS (a FreeRADIUS beside the home agent)")
	clusterCase := flag.Bool("cluster", false, "three home agents sharing their binding cache in a three-member etcd (cluster.go)")
	flag.Parse()
	if *clusterCase {
		if err := runCluster(*bin, *routers, *senders, *window, *profile); err != nil {
			log.Fatalf("haload: %v", err)
		}
		return
	}
	bt := &benchT{}
	err := run(bt, *bin, *routers, *senders, *window, *profile, *radius)
	bt.done()
	if err != nil {
		log.Fatalf("haload: %v", err)
	}
}

func run(bt *benchT, bin string, n, senders, window int, profile string, radius bool) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (a network namespace of its own)")
	}
	dir, err := os.MkdirTemp("", "haload-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ns := fmt.Sprintf("haload-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add: %v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("lo up: %v: %s", err, out)
	}
	exec.Command("ip", "-n", ns, "addr", "add", haAddr.String()+"/128", "dev", "lo").Run()

	cfg, sock := filepath.Join(dir, "ha.uci"), filepath.Join(dir, "ha.sock")
	t := time.Now()
	radiusSection := ""
	if radius {
		radiusSection = startRadius(bt, ns, n)
		log.Printf("FreeRADIUS up with %d users in %v", n, time.Since(t).Round(time.Millisecond))
		t = time.Now()
	}
	if err := writeConfig(cfg, sock, n, radiusSection); err != nil {
		return err
	}
	haArgs := []string{"netns", "exec", ns, bin, "homeagent", "-c", cfg}
	if profile != "" {
		haArgs = append(haArgs, "-cpuprofile", profile)
	}
	ha := exec.Command("ip", haArgs...)
	logf, _ := os.Create(filepath.Join(dir, "ha.log"))
	ha.Stdout, ha.Stderr = logf, logf
	if err := ha.Start(); err != nil {
		return err
	}
	defer func() { ha.Process.Signal(os.Interrupt); ha.Wait() }()
	ctx := context.Background()
	for control.Do(ctx, sock, "status", nil, nil) != nil {
		if time.Since(t) > 60*time.Second {
			b, _ := os.ReadFile(filepath.Join(dir, "ha.log"))
			return fmt.Errorf("home agent did not start: %s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if radius {
		log.Printf("home agent up, its mobile routers known to RADIUS only, in %v", time.Since(t).Round(time.Millisecond))
	} else {
		log.Printf("home agent up with %d mobile routers configured in %v", n, time.Since(t).Round(time.Millisecond))
	}
	var before status.Memory
	if err := control.Do(ctx, sock, "memstats", nil, &before); err != nil {
		return err
	}

	// Build every Binding Update first, so that only the home agent's
	// work is timed.
	now := time.Now()
	seq := uint16(rand.Uint32())
	bus := make([][2][]byte, n)
	for i := range bus {
		for b := 0; b < 2; b++ {
			// The second uplink registers after the first, with a newer
			// sequence number and timestamp (RFC 4285 §6: a timestamp equal
			// to the last accepted one is a replay).
			if bus[i][b], err = registration(i, uint16(b+1), seq+uint16(b), now.Add(time.Duration(b)*time.Millisecond)); err != nil {
				return err
			}
		}
	}
	conns, err := openSenders(ns, 2*senders)
	if err != nil {
		return err
	}
	var answers tally
	round := func(bus [][2][]byte, bid int) time.Duration { return answers.round(conns, senders, window, bus, bid) }
	// Every router's first uplink, then every router's second.
	cpu0 := cpuTime(ha.Process.Pid)
	first := round(bus, 0)
	firstAccepted := answers.accepted.Load()
	second := round(bus, 1)
	elapsed := first + second
	cpu1 := cpuTime(ha.Process.Pid)
	if radius {
		// The first round asked RADIUS for every router (the cache cold);
		// the second found each installed. Then every router registers
		// both bindings again, its authorization cached: the warm case.
		fmt.Printf("cold cache, first uplink: %.0f registrations/s (%d in %v, each authorized by an Access-Request)\n",
			float64(firstAccepted)/first.Seconds(), firstAccepted, first.Round(time.Millisecond))
		fmt.Printf("cold cache, both uplinks: %.0f registrations/s (%d in %v)\n",
			float64(answers.accepted.Load())/elapsed.Seconds(), answers.accepted.Load(), elapsed.Round(time.Millisecond))
		again := time.Now().Add(2 * time.Second)
		for i := range bus {
			for b := 0; b < 2; b++ {
				if bus[i][b], err = registration(i, uint16(b+1), seq+2+uint16(b), again.Add(time.Duration(b)*time.Millisecond)); err != nil {
					return err
				}
			}
		}
		time.Sleep(time.Until(again))
		before := answers.accepted.Load()
		warm := round(bus, 0) + round(bus, 1)
		fmt.Printf("warm cache, both uplinks: %.0f registrations/s (%d in %v, no RADIUS request)\n",
			float64(answers.accepted.Load()-before)/warm.Seconds(), answers.accepted.Load()-before, warm.Round(time.Millisecond))
		answers.accepted.Add(-(answers.accepted.Load() - before))
	}
	var after status.Memory
	if err := control.Do(ctx, sock, "memstats", nil, &after); err != nil {
		return err
	}
	var st status.HomeAgent
	if err := control.Do(ctx, sock, "status", nil, &st); err != nil {
		return err
	}
	bindings := 0
	for _, r := range st.MobileRouters {
		bindings += len(r.Bindings)
	}
	if radius {
		fmt.Printf("mobile routers:          %d (known to RADIUS only)\n", n)
		if st.Radius != nil {
			fmt.Printf("radius:                  %d accepts, %d rejects, %d failures, %d held dropped, %d refused\n",
				st.Radius.Accepts, st.Radius.Rejects, st.Radius.Failures, st.Radius.Held, st.Radius.Refused)
		}
	} else {
		fmt.Printf("mobile routers:          %d (configured)\n", n)
	}
	fmt.Printf("binding updates:         %d sent, %d accepted, %d refused, %d unanswered (the last round)\n", 2*n, answers.accepted.Load(), answers.rejected.Load(), answers.timeouts.Load())
	fmt.Printf("bindings at the HA:      %d\n", bindings)
	cs := []string{fmt.Sprintf("received=%d accepted=%d sent=%d queue_dropped=%d", st.Counters.Received, st.Counters.Accepted, st.Counters.Sent, st.Counters.QueueDropped)}
	for k, v := range st.Counters.Rejected {
		if v != 0 {
			cs = append(cs, fmt.Sprintf("rejected.%s=%d", k, v))
		}
	}
	slices.Sort(cs[1:])
	fmt.Printf("home agent counters:     %s\n", strings.Join(cs, " "))
	fmt.Printf("registrations/s:         %.0f (%d in %v, %d sockets, window %d, %d CPUs)\n",
		float64(answers.accepted.Load())/elapsed.Seconds(), answers.accepted.Load(), elapsed.Round(time.Millisecond), len(conns), window, runtime.NumCPU())
	if !radius {
		fmt.Printf("CPU per registration:    %s (the home agent's)\n", perReg(cpu1-cpu0, int64(2*n)))
	}
	if bindings > 0 {
		fmt.Printf("heap per binding:        %.0f B (heap in use %.1f -> %.1f MiB)\n",
			float64(after.HeapInuse-before.HeapInuse)/float64(bindings), mib(before.HeapInuse), mib(after.HeapInuse))
		fmt.Printf("resident per binding:    %.0f B (RSS %.1f -> %.1f MiB)\n",
			float64(int64(after.RSS)-int64(before.RSS))/float64(bindings), mib(before.RSS), mib(after.RSS))
		fmt.Printf("resident, all included:  %.0f B per binding (whole process, configuration included)\n", float64(after.RSS)/float64(bindings))
	}
	if int(answers.accepted.Load()) != 2*n || bindings != 2*n {
		return fmt.Errorf("not every registration was accepted")
	}
	return nil
}

func mib(v uint64) float64 { return float64(v) / (1 << 20) }

// openSenders opens UDP sockets inside the namespace.
func openSenders(ns string, count int) (out []*net.UDPConn, err error) {
	err = lab.InNamespace(ns, func() error {
		for i := 0; i < count; i++ {
			c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
			if err != nil {
				return err
			}
			c.SetReadBuffer(4 << 20)
			c.SetWriteBuffer(4 << 20)
			out = append(out, c)
		}
		return nil
	})
	return out, err
}

// exchange sends the Binding Updates keeping at most window unanswered,
// and counts the answers.
// tally counts the answers of the rounds.
type tally struct{ accepted, rejected, timeouts atomic.Int64 }

// round sends one BID's Binding Update of every router, each binding from
// a socket (care-of address and port) of its own uplink, senders sockets
// per BID, and returns how long the answers took.
func (t *tally) round(conns []*net.UDPConn, senders, window int, bus [][2][]byte, bid int) time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		c := conns[bid*senders+s]
		var mine [][]byte
		for i := s; i < len(bus); i += senders {
			mine = append(mine, bus[i][bid])
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, r, to := exchange(c, mine, window)
			t.accepted.Add(a)
			t.rejected.Add(r)
			t.timeouts.Add(to)
		}()
	}
	wg.Wait()
	return time.Since(start)
}

func exchange(c *net.UDPConn, bus [][]byte, window int) (accepted, rejected, timeouts int64) {
	to := netip.AddrPortFrom(haAddr, nemo.UDPPort)
	credit := make(chan struct{}, window)
	done := make(chan struct{})
	var got atomic.Int64
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for int(got.Load()) < len(bus) {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			p, err := nemo.ParsePacket(buf[:n])
			if err != nil || len(p.MH) < 7 {
				continue
			}
			if p.MH[6] < 128 {
				accepted++
			} else {
				rejected++
			}
			got.Add(1)
			<-credit
		}
	}()
	for _, b := range bus {
		select {
		case credit <- struct{}{}:
		case <-done:
		}
		c.WriteToUDPAddrPort(b, to)
	}
	<-done
	timeouts = int64(len(bus)) - got.Load()
	return
}
