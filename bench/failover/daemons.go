package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"nemod/control"
	"nemod/lab"
	"nemod/status"
)

// rig is one lab with a home agent and a mobile router running.
type rig struct {
	lab            *lab.Lab
	ha, mr         *lab.Proc
	haSock, mrSock string
	stopSignals    func()
}

// policies is the router's flow configuration for one fault: the measured
// stream (UDP 9000) on streamPolicy, the duplicated flow (UDP 9100) on
// dupPolicy, or on both uplinks when it is "", and the TCP transfer on
// tcpPolicy, or on plain BID order (Wi-Fi first) when tcpPolicy is "".
func policies(streamPolicy, tcpPolicy, dupPolicy string) string {
	var b strings.Builder
	used := map[string]bool{streamPolicy: true, tcpPolicy: true, dupPolicy: true}
	// Only the policies a rule uses: an unused one says nothing about the
	// measurement and a stricter config loader might refuse it.
	if used["wifi_first"] {
		b.WriteString("config policy 'wifi_first'\n\tlist use 'wifi'\n\tlist use 'cell'\n")
	}
	if used["cell_first"] {
		b.WriteString("config policy 'cell_first'\n\tlist use 'cell'\n\tlist use 'wifi'\n")
	}
	if dupPolicy == "" {
		dupPolicy = "both"
		b.WriteString("config policy 'both'\n\tlist use 'cell'\n\tlist use 'wifi'\n\toption mode 'duplicate'\n")
	}
	fmt.Fprintf(&b, "config rule 'stream'\n\toption proto 'udp'\n\toption dest_port '%d'\n\toption policy '%s'\n", streamPort, streamPolicy)
	fmt.Fprintf(&b, "config rule 'duplicated'\n\toption proto 'udp'\n\toption dest_port '%d'\n\toption policy '%s'\n", dupPort, dupPolicy)
	if tcpPolicy != "" {
		fmt.Fprintf(&b, "config rule 'transfer'\n\toption proto 'tcp'\n\toption dest_port '%d'\n\toption policy '%s'\n", tcpPort, tcpPolicy)
	}
	return b.String()
}

// newRig builds a lab and starts both daemons from bin, and waits until
// the router has both uplinks registered. On error everything it built is
// gone again, and the error carries the daemons' last log lines.
func newRig(bin, routerExtra string, keep bool, logf func(string, ...any), v4 bool) (r *rig, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := lab.New(ctx, lab.Options{KeepDir: keep, Logf: logf})
	if err != nil {
		return nil, err
	}
	r = &rig{lab: l, stopSignals: lab.CleanupOnSignal(l),
		haSock: filepath.Join(l.Dir(), "ha.sock"), mrSock: filepath.Join(l.Dir(), "mr.sock")}
	defer func() {
		if err != nil {
			err = r.withLogs(err)
			r.close()
			r = nil
		}
	}()
	haConf := filepath.Join(l.Dir(), "homeagent.uci")
	mrConf := filepath.Join(l.Dir(), "router.uci")
	haText, mrText := lab.HomeAgentUCI(r.haSock), lab.RouterUCI(r.mrSock, routerExtra)
	if v4 {
		haText, mrText = ipv4Configs(l.Dir(), r.haSock, r.mrSock, routerExtra)
	}
	if err := os.WriteFile(haConf, []byte(haText), 0o600); err != nil {
		return r, err
	}
	if err := os.WriteFile(mrConf, []byte(mrText), 0o600); err != nil {
		return r, err
	}
	if r.ha, err = l.Start(lab.HA, "homeagent", bin, "homeagent", "-c", haConf); err != nil {
		return r, err
	}
	if err := r.waitControl(r.ha, r.haSock); err != nil {
		return r, err
	}
	if r.mr, err = l.Start(lab.MR, "router", bin, "router", "-c", mrConf); err != nil {
		return r, err
	}
	if err := r.waitControl(r.mr, r.mrSock); err != nil {
		return r, err
	}
	if _, err := r.waitRegistered(10 * time.Second); err != nil {
		return r, err
	}
	if v4 {
		return r, r.lanIPv4()
	}
	return r, nil
}

func (r *rig) waitControl(p *lab.Proc, sock string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-p.Exited():
			return fmt.Errorf("%s exited at start: %v", filepath.Base(p.LogPath()), p.Wait())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := control.Do(ctx, sock, "status", nil, nil)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer on %s: %w", sock, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// close stops the daemons and removes the lab. Stopping the daemons first
// and checking how they ended catches a crash that a torn-down lab would
// hide.
func (r *rig) close() error {
	var errs []error
	for _, p := range []*lab.Proc{r.mr, r.ha} {
		if p != nil {
			if err := p.Stop(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	errs = append(errs, r.lab.Close())
	r.stopSignals()
	return errors.Join(errs...)
}

// withLogs adds the daemons' last log lines to err: a failed run must say
// why without a second one.
func (r *rig) withLogs(err error) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%v", err)
	for _, p := range []*lab.Proc{r.ha, r.mr} {
		if p == nil {
			continue
		}
		data, rerr := os.ReadFile(p.LogPath())
		if rerr != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		fmt.Fprintf(&b, "\n--- last lines of %s ---\n%s", filepath.Base(p.LogPath()), strings.Join(lines[max(0, len(lines)-40):], "\n"))
	}
	return errors.New(b.String())
}

// statusOf asks a daemon for its status straight through its control
// socket, which is reachable from any namespace.
func statusOf(sock string, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return control.Do(ctx, sock, "status", nil, out)
}

// uplinkState is the router's view of one uplink's binding.
type uplinkState struct{ state, encap string }

func (r *rig) routerStates() (map[string]uplinkState, error) {
	var s status.Router
	if err := statusOf(r.mrSock, &s); err != nil {
		return nil, err
	}
	m := map[string]uplinkState{}
	for _, b := range s.Bindings {
		m[b.Uplink] = uplinkState{b.State, b.Encap}
	}
	return m, nil
}

func (r *rig) agentBindings() (map[uint16]string, error) {
	var s status.HomeAgent
	if err := statusOf(r.haSock, &s); err != nil {
		return nil, err
	}
	m := map[uint16]string{}
	for _, mr := range s.MobileRouters {
		if mr.Name == "car1" {
			for _, b := range mr.Bindings {
				m[b.BID] = b.Outer
			}
		}
	}
	return m, nil
}

func bothRegistered(m map[string]uplinkState) bool {
	return m[lab.Wifi].state == "registered" && m[lab.Cell].state == "registered"
}

// waitRegistered polls the router until both uplinks are registered and
// returns what it then says of them.
func (r *rig) waitRegistered(within time.Duration) (map[string]uplinkState, error) {
	start := time.Now()
	var last map[string]uplinkState
	for {
		select {
		case <-r.mr.Exited():
			return nil, fmt.Errorf("the router exited: %v", r.mr.Wait())
		case <-r.ha.Exited():
			return nil, fmt.Errorf("the home agent exited: %v", r.ha.Wait())
		default:
		}
		m, err := r.routerStates()
		if err == nil && bothRegistered(m) {
			return m, nil
		}
		if err == nil {
			last = m
		}
		if time.Since(start) > within {
			return nil, fmt.Errorf("both uplinks not registered within %v (router says %v, last error %v)", within, last, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var (
	levelRE  = regexp.MustCompile(`\blevel=(\w+)`)
	digitsRE = regexp.MustCompile(`\b[0-9]+`)
)

// logDigest groups a daemon's log lines by level and message, in order of
// first appearance, each with a count and its first line's message: what
// the daemon did during the trials, in a few lines. Numbers standing alone
// (BIDs, durations, ports) do not split a group; "udp4" and "udp6" do.
func logDigest(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return []string{err.Error()}
	}
	type group struct {
		example string
		n       int
	}
	var order []string
	groups := map[string]*group{}
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		level := "?"
		if m := levelRE.FindStringSubmatch(line); m != nil {
			level = m[1]
		}
		msg := line
		if i := strings.Index(line, " msg="); i >= 0 {
			rest := line[i+len(" msg="):]
			if q, err := strconv.QuotedPrefix(rest); err == nil {
				msg, _ = strconv.Unquote(q)
			} else if f := strings.Fields(rest); len(f) > 0 {
				msg = f[0]
			}
		}
		key := level + " " + digitsRE.ReplaceAllString(msg, "N")
		g := groups[key]
		if g == nil {
			g = &group{example: level + " " + msg}
			groups[key] = g
			order = append(order, key)
		}
		g.n++
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, fmt.Sprintf("%3dx %s", groups[k].n, groups[k].example))
	}
	return out
}

// counters returns a daemon's signalling counters and its data plane's
// non-zero drop counters, one "name=value" list each: where a loss the
// streams saw was counted, if anywhere.
func counters(sock string) (signalling, drops string) {
	var s struct {
		Counters  status.Counters  `json:"counters"`
		DataPlane status.DataPlane `json:"dataplane"`
	}
	if err := statusOf(sock, &s); err != nil {
		return err.Error(), ""
	}
	list := func(m map[string]uint64, zeros bool) string {
		keys := make([]string, 0, len(m))
		for k, v := range m {
			if v != 0 || zeros {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s=%d", k, m[k])
		}
		if len(parts) == 0 {
			return "none"
		}
		return strings.Join(parts, " ")
	}
	c := map[string]uint64{"sent": s.Counters.Sent, "received": s.Counters.Received, "accepted": s.Counters.Accepted,
		"retransmits": s.Counters.Retransmits, "probes": s.Counters.Probes, "dead_paths": s.Counters.DeadPaths,
		"queue_dropped": s.Counters.QueueDropped}
	for k, v := range s.Counters.Rejected {
		c["rejected."+k] = v
	}
	return list(c, true), list(s.DataPlane.Drops, false)
}
