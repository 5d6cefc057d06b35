package main

import (
	"context"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"nemod/control"
	"nemod/lab"
	"nemod/status"
)

// The cluster case: three home agents in the lab's cluster topology,
// sharing their binding cache in a three-member etcd (Debian's, its data
// in memory) on the same machine. The routers register with the owner of
// the instance, which writes every registration to etcd before it
// answers; the two others take every record in, standing by. Measured:
// registrations per second at the owner, and memory per binding at the
// owner and at a standby.

func runCluster(bin string, n, senders, window int, profile string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (network namespaces)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	l, err := lab.New(ctx, lab.Options{NoRadvd: true, Cluster: lab.ClusterOptions{Members: 3}})
	cancel()
	if err != nil {
		return err
	}
	defer l.Close()
	socks := make([]string, 3)
	procs := make([]*lab.Proc, 3)
	t := time.Now()
	for i := range 3 {
		socks[i] = filepath.Join(l.Dir(), fmt.Sprintf("ha%d.sock", i+1))
		cfg := filepath.Join(l.Dir(), fmt.Sprintf("ha%d.uci", i+1))
		if err := writeConfig(cfg, socks[i], n, ""); err != nil {
			return err
		}
		f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		fmt.Fprintf(f, "config cluster 'bench'\n\tlist etcd_endpoint '%s'\n\tlist etcd_endpoint '%s'\n\tlist etcd_endpoint '%s'\n\toption node 'ha%d'\n\toption lease_ttl '2'\n\toption max_txn_ops '1024'\n",
			lab.EtcdEndpoints()[0], lab.EtcdEndpoints()[1], lab.EtcdEndpoints()[2], i+1)
		f.Close()
		args := []string{bin, "homeagent", "-c", cfg}
		if profile != "" {
			// Which member will own the instance is not known yet: each
			// writes its own.
			args = append(args, "-cpuprofile", fmt.Sprintf("%s.ha%d", profile, i+1))
		}
		if procs[i], err = l.Start(lab.HARoles[i], fmt.Sprintf("homeagent-ha%d", i+1), args...); err != nil {
			return err
		}
	}
	owner := -1
	for owner < 0 {
		if time.Since(t) > 60*time.Second {
			return fmt.Errorf("no member owns the instance")
		}
		for i, s := range socks {
			var st status.HomeAgent
			if control.Do(context.Background(), s, "status", nil, &st) == nil && st.Cluster != nil && slices.Contains(st.Cluster.Owned, haAddr.String()) {
				owner = i
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	standby := (owner + 1) % 3
	log.Printf("three members up with %d mobile routers configured, ha%d owning the instance, in %v", n, owner+1, time.Since(t).Round(time.Millisecond))
	var before [3]status.Memory
	for i, s := range socks {
		if err := control.Do(context.Background(), s, "memstats", nil, &before[i]); err != nil {
			return err
		}
	}
	now := time.Now()
	seq := uint16(rand.Uint32())
	bus := make([][2][]byte, n)
	for i := range bus {
		for b := 0; b < 2; b++ {
			if bus[i][b], err = registration(i, uint16(b+1), seq+uint16(b), now.Add(time.Duration(b)*time.Millisecond)); err != nil {
				return err
			}
		}
	}
	// Loopback of the owner's namespace: the instance's address is on its
	// TUN device.
	conns, err := openClusterSenders(l.NS(lab.HARoles[owner]), 2*senders)
	if err != nil {
		return err
	}
	var answers tally
	round := func(bid int) time.Duration { return answers.round(conns, senders, window, bus, bid) }
	cpu0 := [4]time.Duration{cpuTime(procs[owner].Pid()), cpuTime(procs[standby].Pid())}
	for i := range lab.EtcdRoles {
		cpu0[2] += cpuTime(l.Etcd(i).Pid())
	}
	elapsed := round(0) + round(1)
	cpu1 := [4]time.Duration{cpuTime(procs[owner].Pid()), cpuTime(procs[standby].Pid())}
	for i := range lab.EtcdRoles {
		cpu1[2] += cpuTime(l.Etcd(i).Pid())
	}
	// The standbys take the records in as they are written; wait until
	// one has them all.
	bindingsAt := func(i int) (int, status.HomeAgent) {
		var st status.HomeAgent
		control.Do(context.Background(), socks[i], "status", nil, &st)
		b := 0
		for _, r := range st.MobileRouters {
			b += len(r.Bindings)
		}
		return b, st
	}
	t = time.Now()
	for {
		if b, _ := bindingsAt(standby); b == 2*n || time.Since(t) > 60*time.Second {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	caught := time.Since(t)
	var after [3]status.Memory
	for i, s := range socks {
		if err := control.Do(context.Background(), s, "memstats", nil, &after[i]); err != nil {
			return err
		}
	}
	bo, st := bindingsAt(owner)
	bs, _ := bindingsAt(standby)
	fmt.Printf("mobile routers:          %d (configured), three members, etcd of three on this machine\n", n)
	fmt.Printf("binding updates:         %d sent, %d accepted, %d refused, %d unanswered (the last round)\n", 2*n, answers.accepted.Load(), answers.rejected.Load(), answers.timeouts.Load())
	fmt.Printf("bindings:                owner ha%d %d, standby ha%d %d (caught up %v after the last answer)\n", owner+1, bo, standby+1, bs, caught.Round(time.Millisecond))
	if c := st.Cluster; c != nil {
		fmt.Printf("owner's store writes:    %d transactions, %d records, %d conflicts (%.0f records a transaction)\n",
			c.Counters["commits"], c.Counters["written"], c.Counters["conflicts"], float64(c.Counters["written"])/max(1, float64(c.Counters["commits"])))
	}
	fmt.Printf("registrations/s:         %.0f (%d in %v, %d sockets, window %d, %d CPUs)\n",
		float64(answers.accepted.Load())/elapsed.Seconds(), answers.accepted.Load(), elapsed.Round(time.Millisecond), len(conns), window, runtime.NumCPU())
	fmt.Printf("CPU per registration:    owner %s, standby %s, etcd (three members) %s\n",
		perReg(cpu1[0]-cpu0[0], answers.accepted.Load()), perReg(cpu1[1]-cpu0[1], answers.accepted.Load()), perReg(cpu1[2]-cpu0[2], answers.accepted.Load()))
	for _, m := range []struct {
		name string
		i, b int
	}{{"owner", owner, bo}, {"standby", standby, bs}} {
		if m.b > 0 {
			fmt.Printf("heap per binding (%s): %.0f B (heap in use %.1f -> %.1f MiB); resident %.0f B\n", m.name,
				float64(after[m.i].HeapInuse-before[m.i].HeapInuse)/float64(m.b), mib(before[m.i].HeapInuse), mib(after[m.i].HeapInuse),
				float64(int64(after[m.i].RSS)-int64(before[m.i].RSS))/float64(m.b))
		}
	}
	for _, p := range procs {
		p.Stop()
	}
	if int(answers.accepted.Load()) != 2*n || bo != 2*n || bs != 2*n {
		return fmt.Errorf("not every registration was accepted and replicated")
	}
	return nil
}

// openClusterSenders opens UDP sockets on the owner's loopback.
func openClusterSenders(ns string, count int) (out []*net.UDPConn, err error) {
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

// cpuTime is the CPU a process has used (user and system), from
// /proc/PID/stat; 0 when it cannot be read.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	// USER_HZ is 100 on Linux.
	return time.Duration(u+k) * 10 * time.Millisecond
}

func perReg(d time.Duration, n int64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f µs", float64(d.Microseconds())/float64(n))
}
