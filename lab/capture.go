package lab

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Capture is a running dumpcap.
type Capture struct {
	proc    *Proc
	path    string
	started chan struct{} // closed when dumpcap has its socket ready
	logDone chan struct{} // closed when its stderr reached EOF
}

// Capture starts dumpcap on a device of a role's namespace, writing
// Dir()/<role>-<dev>-N.pcapng, with a capture (BPF) filter, "" for none.
// It returns once dumpcap has its socket open and filtered, so that no
// later packet is missed: dumpcap prints "Capturing on" before it opens the
// device and "File: ..." after it attached the filter, so it waits for the
// latter.
func (l *Lab) Capture(role, dev, filter string) (*Capture, error) {
	l.mu.Lock()
	l.captures++
	n := l.captures
	l.mu.Unlock()
	base := fmt.Sprintf("%s-%s-%d", role, dev, n)
	path := filepath.Join(l.dir, base+".pcapng")

	args := []string{"dumpcap", "-q", "-i", dev, "-w", path}
	if filter != "" {
		args = append(args, "-f", filter)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	p, err := l.start(role, base, w, args...)
	w.Close()
	if err != nil {
		r.Close()
		return nil, err
	}
	c := &Capture{proc: p, path: path, started: make(chan struct{}), logDone: make(chan struct{})}
	go c.readStderr(r)

	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-c.started:
		return c, nil
	case <-p.Exited():
		<-c.logDone
		return nil, fmt.Errorf("lab: dumpcap on %s %s exited: %v: %s", role, dev, p.err, tail(p.log))
	case <-t.C:
		p.terminate(time.Second)
		<-c.logDone
		return nil, fmt.Errorf("lab: dumpcap on %s %s did not start: %s", role, dev, tail(p.log))
	}
}

// readStderr copies dumpcap's stderr to its log and spots the line that
// tells the capture runs.
func (c *Capture) readStderr(r *os.File) {
	defer close(c.logDone)
	defer r.Close()
	logf, err := os.OpenFile(c.proc.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err == nil {
		defer logf.Close()
	}
	sc := bufio.NewScanner(r)
	seen := false
	for sc.Scan() {
		line := sc.Text()
		if logf != nil {
			fmt.Fprintln(logf, line)
		}
		if !seen && strings.HasPrefix(line, "File: ") {
			seen = true
			close(c.started)
		}
	}
}

// Path returns the capture file.
func (c *Capture) Path() string { return c.path }

// captureDrain is how long Stop lets dumpcap read what it has received.
// libpcap gets packets from a TPACKET_V3 ring whose blocks reach user space
// only when full or after dumpcap's 250 ms read timeout, and dumpcap exits
// on SIGTERM without reading a block still open: packets of the last
// quarter second before the signal would be lost.
const captureDrain = 500 * time.Millisecond

// Stop makes dumpcap write what it received and exit (SIGTERM; SIGKILL 5 s
// later), waits for it and returns the capture file. Every packet that
// reached the device before Stop is in the file: it first waits
// captureDrain, for the ring's last block to be handed over, and then until
// dumpcap sleeps, that is until it has read that block, which on a loaded
// machine can take a while longer.
func (c *Capture) Stop() (string, error) {
	select {
	case <-c.proc.Exited():
	case <-time.After(captureDrain):
		waitIdle(c.proc, 5*time.Second)
	}
	err := c.proc.Stop()
	<-c.logDone
	if err != nil {
		return c.path, fmt.Errorf("lab: dumpcap: %w: %s", err, tail(c.proc.log))
	}
	return c.path, nil
}

// waitIdle waits until every thread of p sleeps, twice in a row, or until
// timeout. A thread woken by readable data is runnable until it has read it.
func waitIdle(p *Proc, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	idle := 0
	for idle < 2 && time.Now().Before(deadline) {
		if sleeping(p.Pid()) {
			idle++
		} else {
			idle = 0
		}
		select {
		case <-p.Exited():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// sleeping reports whether every thread of pid is in interruptible sleep.
func sleeping(pid int) bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			return false
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || b[i+2] != 'S' {
			return false
		}
	}
	return true
}

// PcapFields reads a capture file with tshark and returns, for every packet
// matching displayFilter ("" for all), the values of fields (tshark field
// names such as "ip.src"); a field with several values has them joined by
// commas. UDP port 4191 is decoded as IPv6 (RFC 5555), which tshark does
// not do by itself.
func PcapFields(ctx context.Context, path, displayFilter string, fields ...string) ([][]string, error) {
	return pcapFields(ctx, path, "ipv6", displayFilter, fields...)
}

// PcapFieldsIP is PcapFields with UDP port 4191 decoded by tshark's "ip"
// dissector, which reads the version nibble (RFC 5555 §4.1) and takes IPv4
// and IPv6 payloads alike, as the mobile network's IPv4 needs.
func PcapFieldsIP(ctx context.Context, path, displayFilter string, fields ...string) ([][]string, error) {
	return pcapFields(ctx, path, "ip", displayFilter, fields...)
}

func pcapFields(ctx context.Context, path, decode, displayFilter string, fields ...string) ([][]string, error) {
	args := []string{"-n", "-r", path, "-d", "udp.port==4191," + decode, "-T", "fields",
		"-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"}
	if displayFilter != "" {
		args = append(args, "-Y", displayFilter)
	}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, err := runOut(ctx, "tshark", args...)
	if err != nil {
		return nil, err
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		rows = append(rows, strings.Split(line, "\t"))
	}
	return rows, nil
}

// runOut runs a command in the root namespace and returns its stdout; the
// error carries its stderr.
func runOut(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// tail returns the end of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	b = bytes.TrimSpace(b)
	if len(b) > 500 {
		b = b[len(b)-500:]
	}
	return string(b)
}
