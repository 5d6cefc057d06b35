package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options tune New. The zero value is what tests want.
type Options struct {
	// Prefix of the namespace names ("<prefix>-mr"). By default "nl" and a
	// random run id, which Sweep recognises. It must not be in use.
	Prefix string
	// Logf, if set, receives progress messages.
	Logf func(format string, args ...any)
	// NoRadvd leaves radvd out for tests that do not need RAs: mr wlan0
	// then gets 2001:db8:a::2/64 and a default route via 2001:db8:a::1,
	// both static, and New does not wait for DAD.
	NoRadvd bool
	// KeepDir keeps Dir() on Close, for a post-mortem.
	KeepDir bool
	// Fleet: a second mobile router, dynamic routing (fleet.go).
	Fleet FleetOptions
	// Cluster: home agents sharing an etcd (cluster.go).
	Cluster ClusterOptions
}

// ErrClosed is returned by what a closed lab can no longer do.
var ErrClosed = errors.New("lab: closed")

// Lab is a running topology. Its methods are safe for concurrent use.
type Lab struct {
	prefix  string
	dir     string
	pidFile string
	logf    func(string, ...any)
	noRadvd bool
	fleet   FleetOptions
	cluster ClusterOptions
	etcd    map[int]*Proc // cluster.go

	mu       sync.Mutex
	closed   bool
	keepDir  bool
	created  []string // namespaces this lab created, in order
	procs    map[*Proc]struct{}
	captures int
	radvd    *Proc
	forwards []func() // forward.go

	closeOnce sync.Once
	closeErr  error
}

// New builds the topology and waits until it is usable: every address is
// configured, mr's wlan0 has a non-tentative SLAAC address in WifiPrefix and
// an IPv6 default route learnt from the RA, and wifi reaches core over IPv6
// and cell reaches ha over IPv4. Without a deadline on ctx it gives up after
// 30 s. On any error, or a panic, it tears down what it built.
func New(ctx context.Context, opts Options) (*Lab, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	start := time.Now()
	// Best effort: a run killed before its Close must not leave namespaces
	// and processes piling up.
	if err := Sweep(); err != nil && opts.Logf != nil {
		opts.Logf("lab: sweep: %v", err)
	}

	l := &Lab{
		prefix:  opts.Prefix,
		logf:    opts.Logf,
		noRadvd: opts.NoRadvd,
		fleet:   opts.Fleet,
		cluster: opts.Cluster,
		keepDir: opts.KeepDir,
		procs:   map[*Proc]struct{}{},
	}
	if l.logf == nil {
		l.logf = func(string, ...any) {}
	}
	if l.prefix == "" {
		var b [3]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		l.prefix = "nl" + hex.EncodeToString(b[:])
	}
	if strings.ContainsAny(l.prefix, "/ \t\n") {
		return nil, fmt.Errorf("lab: bad prefix %q", l.prefix)
	}
	dir, err := os.MkdirTemp("", "nemolab-"+l.prefix+"-")
	if err != nil {
		return nil, err
	}
	l.dir = dir
	ok := false
	defer func() {
		// Runs on a panic too, while it unwinds.
		if !ok {
			if cerr := l.Close(); cerr != nil {
				l.logf("lab: teardown after failed New: %v", cerr)
			}
		}
	}()
	if err := l.writePidFile(); err != nil {
		return nil, err
	}
	if err := l.build(ctx); err != nil {
		if ctx.Err() != nil {
			// Put first what stopped it; the commands it killed only echo it.
			return nil, fmt.Errorf("lab %s: %w: %v", l.prefix, ctx.Err(), err)
		}
		return nil, fmt.Errorf("lab %s: %w", l.prefix, err)
	}
	ok = true
	l.logf("lab %s: ready in %v (dir %s)", l.prefix, time.Since(start).Round(time.Millisecond), l.dir)
	return l, nil
}

func (l *Lab) build(ctx context.Context) error {
	// Namespaces one by one, so that l.created only ever lists ours: a
	// name someone else already took is never deleted by our Close, while
	// one that `ip netns add` made before ctx killed it still is.
	for _, role := range l.roles() {
		ns := l.NS(role)
		path := filepath.Join(netnsDir, ns)
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("namespace %s exists already", ns)
		}
		out, err := exec.CommandContext(ctx, "ip", "netns", "add", ns).CombinedOutput()
		if _, serr := os.Stat(path); serr == nil {
			l.mu.Lock()
			l.created = append(l.created, ns)
			l.mu.Unlock()
		}
		if err != nil {
			return fmt.Errorf("ip netns add %s: %w: %s", ns, err, bytes.TrimSpace(out))
		}
	}
	l.logf("lab %s: namespaces created", l.prefix)

	err := parallel(l.roles(), func(role string) error {
		if _, err := l.Run(ctx, role, append([]string{"sysctl", "-q", "-w"}, baseSysctls(role)...)...); err != nil {
			return err
		}
		if rs := nftRuleset(role); rs != "" {
			return l.nft(ctx, role, rs)
		}
		return nil
	})
	if err != nil {
		return err
	}

	byCreator := map[string][]string{}
	for k, v := range l.topology() {
		ai, bi := vethIndexes(k)
		byCreator[v.a] = append(byCreator[v.a], fmt.Sprintf(
			"link add %s index %d mtu 1500 type veth peer name %s index %d mtu 1500 netns %s", v.aDev, ai, v.bDev, bi, l.NS(v.b)))
	}
	err = parallel(slices.Sorted(maps.Keys(byCreator)), func(role string) error {
		return l.ipBatch(ctx, role, byCreator[role])
	})
	if err != nil {
		return err
	}

	err = parallel(l.roles(), func(role string) error {
		if s := deviceSysctls(role, l.noRadvd); len(s) > 0 {
			if _, err := l.Run(ctx, role, append([]string{"sysctl", "-q", "-w"}, s...)...); err != nil {
				return err
			}
		}
		if err := l.ipBatch(ctx, role, l.clusterBatch(role, l.fleetBatch(role, append(ipBatch(role, l.noRadvd), ipBatch4(role)...)))); err != nil {
			return err
		}
		if role == Wifi || role == Cell {
			if _, err := l.Run(ctx, role, "sysctl", "-q", "-w", "net.ipv6.conf.eth0.disable_ipv6=1", "net.ipv6.conf.ap0.disable_ipv6=1"); err != nil {
				return err
			}
			return l.runInput(ctx, role, strings.Join(accessWireTC(), "\n")+"\n", "tc", "-batch", "-")
		}
		return nil
	})
	if err != nil {
		return err
	}
	l.logf("lab %s: links and addresses configured", l.prefix)

	if !l.noRadvd {
		// Started only now that mr's wlan0 is up: radvd's first RA goes out
		// at once and reaches mr while its link-local address is still in
		// DAD, so SLAAC's DAD runs alongside instead of after it.
		conf := filepath.Join(l.dir, "radvd.conf")
		if err := os.WriteFile(conf, []byte(radvdConf()), 0o644); err != nil {
			return err
		}
		p, err := l.Start(Wifi, "radvd", "radvd", "-n", "-m", "stderr", "-d", "1",
			"-C", conf, "-p", filepath.Join(l.dir, "radvd.pid"))
		if err != nil {
			return err
		}
		l.mu.Lock()
		l.radvd = p
		l.mu.Unlock()
	}

	checks := []func() error{
		func() error { return l.waitPing(ctx, Wifi, CoreWifi6.String()) },
		func() error { return l.waitPing(ctx, Cell, HA4.String()) },
	}
	if l.clusterOn() {
		// The home agents' addresses are routed once a member owns them.
		checks[1] = func() error { return l.waitPing(ctx, Cell, CoreCell4.String()) }
	}
	if l.fleet.SecondRouter && !l.clusterOn() {
		checks = append(checks, func() error { return l.waitPing(ctx, MR2, HA6.String()) })
	} else if l.fleet.SecondRouter {
		checks = append(checks, func() error { return l.waitPing(ctx, MR2, CoreMR2_6.String()) })
	}
	if l.fleet.DynamicRouting {
		if err := l.startBird(ctx); err != nil {
			return err
		}
	}
	if err := l.startCluster(ctx); err != nil {
		return err
	}
	if !l.noRadvd {
		checks = append(checks, func() error { _, err := l.WaitSLAAC(ctx); return err })
	}
	return parallel(checks, func(f func() error) error { return f() })
}

// waitPing pings until one answer comes back or ctx ends.
func (l *Lab) waitPing(ctx context.Context, role, dst string) error {
	for {
		_, err := l.Run(ctx, role, "ping", "-n", "-c", "1", "-W", "1", dst)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s cannot reach %s: %w", role, dst, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// parallel calls f on every item at once and joins the errors.
func parallel[T any](items []T, f func(T) error) error {
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(it)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// NS returns the namespace name of a role, or "" for an unknown role.
func (l *Lab) NS(role string) string {
	if _, ok := forwarding[role]; !ok {
		return ""
	}
	return l.prefix + "-" + role
}

// Prefix returns the prefix of the lab's namespace names.
func (l *Lab) Prefix() string { return l.prefix }

// Dir returns the lab's temporary directory: configs, logs, captures.
func (l *Lab) Dir() string { return l.dir }

// Radvd returns wifi's radvd, to stop or signal it (on SIGTERM it sends a
// last RA with router lifetime 0), or nil with Options.NoRadvd.
func (l *Lab) Radvd() *Proc {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.radvd
}

// KeepDir makes Close leave Dir() in place, e.g. when a test failed.
func (l *Lab) KeepDir() {
	l.mu.Lock()
	l.keepDir = true
	l.mu.Unlock()
}

func (l *Lab) ns(role string) (string, error) {
	ns := l.NS(role)
	if ns == "" {
		return "", fmt.Errorf("lab: unknown role %q", role)
	}
	return ns, nil
}

// Command returns a command that runs args in the role's namespace. An
// unknown role yields a command that fails. The caller owns the process:
// Close kills it only as one left in the namespace.
func (l *Lab) Command(ctx context.Context, role string, args ...string) *exec.Cmd {
	ns := l.NS(role)
	if ns == "" {
		ns = "unknown-role-" + role
	}
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
	// A grandchild holding the output pipe open must not make Wait hang
	// after ctx ended.
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// Run runs args in the role's namespace and returns the combined output.
// The error quotes the command and its output.
func (l *Lab) Run(ctx context.Context, role string, args ...string) (string, error) {
	if _, err := l.ns(role); err != nil {
		return "", err
	}
	out, err := l.Command(ctx, role, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %s: %w: %s", role, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// runInput is Run with stdin.
func (l *Lab) runInput(ctx context.Context, role, stdin string, args ...string) error {
	cmd := l.Command(ctx, role, args...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %s: %w: %s", role, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func (l *Lab) nft(ctx context.Context, role, script string) error {
	return l.runInput(ctx, role, script, "nft", "-f", "-")
}

func (l *Lab) ipBatch(ctx context.Context, role string, lines []string) error {
	if len(lines) == 0 {
		return nil
	}
	ns, err := l.ns(role)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "ip", "-n", ns, "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: ip -batch: %w: %s", role, err, bytes.TrimSpace(out))
	}
	return nil
}

// Close stops every process the lab started (SIGTERM, SIGKILL after 3 s),
// kills whatever else is left in its namespaces, deletes the namespaces,
// its temporary directory (unless kept) and its pid file. It is
// idempotent, safe to call from any goroutine, a signal handler's included,
// and later calls return the first one's result.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.teardown() })
	return l.closeErr
}

func (l *Lab) teardown() error {
	start := time.Now()
	l.mu.Lock()
	l.closed = true
	procs := make([]*Proc, 0, len(l.procs))
	for p := range l.procs {
		procs = append(procs, p)
	}
	created := l.created
	keep := l.keepDir
	forwards := l.forwards
	l.mu.Unlock()
	for _, stop := range forwards {
		stop()
	}

	var errs []error
	_ = parallel(procs, func(p *Proc) error {
		p.terminate(3 * time.Second)
		return nil
	})
	if err := killNamespaces(created); err != nil {
		errs = append(errs, err)
	}
	l.clusterTeardown()
	if keep {
		l.logf("lab %s: kept %s", l.prefix, l.dir)
	} else if l.dir != "" {
		if err := os.RemoveAll(l.dir); err != nil {
			errs = append(errs, err)
		}
	}
	// Last, so that Sweep never finds our namespaces without their record.
	if l.pidFile != "" {
		if err := os.Remove(l.pidFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	l.logf("lab %s: closed in %v", l.prefix, time.Since(start).Round(time.Millisecond))
	return errors.Join(errs...)
}
