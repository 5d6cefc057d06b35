package twoends

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"nemod/cluster"
	"nemod/config"
	"nemod/homeagent"
	"nemod/internal/netsim"
	"nemod/lab"
	"nemod/status"
)

// More home agents beside the first: the members of a cluster sharing a
// store (cluster.Memory), or a second home agent of the router's list.

// Agent is one more home agent daemon on a host of its own.
type Agent struct {
	e       *Ends
	Name    string
	Host    *netsim.Host
	Link    *netsim.Link
	Sys     *netsim.AgentSystem
	Conf    string
	Sock    string
	Log     *syncBuffer
	Signals chan os.Signal
	// Store is what the member reaches the cluster's store through; a
	// test cuts it (Cut) to partition the member.
	Store  *CutStore
	done   chan error
	cancel context.CancelFunc
}

// AddAgent adds a host with its own addresses on one link; conf is its
// configuration, with %s for its control socket.
func (e *Ends) AddAgent(name string, conf string, addrs ...string) *Agent {
	h := e.Net.Host(name)
	a := &Agent{e: e, Name: name, Host: h, Link: h.Link(lab.HADev, addrs...), Sys: &netsim.AgentSystem{}, Log: &syncBuffer{},
		Signals: make(chan os.Signal, 4)}
	a.Sys.Link = a.Link
	a.Sock = filepath.Join(e.Dir, name+".sock")
	a.Conf = filepath.Join(e.Dir, name+".uci")
	e.write(a.Conf, fmt.Sprintf(conf, a.Sock))
	return a
}

// Start runs the agent's daemon, a member of the cluster of store when
// its configuration has one.
func (a *Agent) Start(store cluster.Store) {
	a.e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel, a.done = cancel, make(chan error, 1)
	a.Store = &CutStore{Store: store}
	go func() {
		a.done <- homeagent.Run(ctx, a.Conf, homeagent.Options{
			Logger: slog.New(slog.NewTextHandler(a.Log, nil)), Stack: a.Host.Stack(), System: a.Sys,
			KernelMIP6: func() bool { return false }, Signals: a.Signals, ListenHTTP: a.e.listenHTTP(new(string)),
			Cluster: func(*config.Cluster) (cluster.Store, error) { return a.Store, nil },
		})
	}()
	a.e.waitSocket(a.Sock, a.done, a.Name)
	a.e.t.Cleanup(a.Stop)
}

// Stop ends the daemon (SIGTERM) and waits for it.
func (a *Agent) Stop() {
	if a.done == nil {
		return
	}
	a.Signals <- syscall.SIGTERM
	select {
	case <-a.done:
	case <-time.After(5 * time.Second):
		a.e.t.Errorf("%s did not stop\n%s", a.Name, a.Log.String())
	}
	a.cancel()
	a.done = nil
	if a.e.t.Failed() {
		a.e.t.Logf("--- %s ---\n%s", a.Name, a.Log.String())
	}
}

// Status is the agent's `ctl status`.
func (a *Agent) Status() status.HomeAgent {
	a.e.t.Helper()
	var s status.HomeAgent
	if err := Ctl(a.Sock, "status", &s); err != nil {
		a.e.t.Fatalf("%s status: %v", a.Name, err)
	}
	return s
}

// Owned is the instances the agent owns, as its status says.
func (a *Agent) Owned() string {
	s := a.Status()
	if s.Cluster == nil {
		return ""
	}
	return strings.Join(s.Cluster.Owned, " ")
}

// TUN is the agent's data plane device.
func (a *Agent) TUN() *netsim.TUN { return a.Sys.TUN("nemoha0") }

// CutStore is a member's way to the store, which a test can cut.
type CutStore struct {
	cluster.Store
	off atomic.Bool
}

// Cut partitions the member from the store (on) or heals it.
func (c *CutStore) Cut(on bool) { c.off.Store(on) }

func (c *CutStore) err() error {
	if c.off.Load() {
		return fmt.Errorf("store unreachable: %w", context.DeadlineExceeded)
	}
	return nil
}

// The calls fail while cut.
func (c *CutStore) Grant(ctx context.Context, ttl time.Duration) (int64, error) {
	if err := c.err(); err != nil {
		return 0, err
	}
	return c.Store.Grant(ctx, ttl)
}

func (c *CutStore) KeepAlive(ctx context.Context, l int64) (time.Duration, error) {
	if err := c.err(); err != nil {
		return 0, err
	}
	return c.Store.KeepAlive(ctx, l)
}

func (c *CutStore) Commit(ctx context.Context, ops []cluster.Op) (int64, bool, error) {
	if err := c.err(); err != nil {
		return 0, false, err
	}
	return c.Store.Commit(ctx, ops)
}

func (c *CutStore) Get(ctx context.Context, prefix string) ([]cluster.KV, int64, error) {
	if err := c.err(); err != nil {
		return nil, 0, err
	}
	return c.Store.Get(ctx, prefix)
}

// Close leaves the shared store open: the other members use it.
func (c *CutStore) Close() error { return nil }

// ClusterUCI is the configuration of a member of the lab's cluster: the
// lab's home agent (car1, car2) at instance 2001:db8:ffff::1 /
// 198.51.100.1, and a second instance, 2001:db8:fffe::1 / 198.51.100.129;
// %s is the control socket. node names the member.
func ClusterUCI(node string) string {
	return lab.HomeAgentUCI("%s") + fmt.Sprintf(`config cluster 'lab'
	list etcd_endpoint 'http://[::1]:2379'
	option node '%s'
	option lease_ttl '1'
	option switch_rate '100'
	list instance '2001:db8:fffe::1 198.51.100.129'
`, node)
}

// StartRouterOnly runs the router without the default home agent, whose
// addresses go to whichever agent takes them (the cluster's instances).
func (e *Ends) StartRouterOnly() {
	e.t.Helper()
	e.HAHost.RemoveAddr(lab.HA6)
	e.HAHost.RemoveAddr(lab.HA4)
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.ctx = cancel, ctx
	e.StartMR(ctx)
}
