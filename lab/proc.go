package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// Proc is a long-running process in one of the lab's namespaces.
type Proc struct {
	lab  *Lab
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // Wait's result, set before done is closed

	mu       sync.Mutex
	signaled bool // we sent SIGTERM or SIGKILL: dying of it is not an error
}

// Start runs args in the role's namespace as a long-running process, with
// stdout and stderr appended to Dir()/name.log. Close stops it if it is
// still running.
func (l *Lab) Start(role, name string, args ...string) (*Proc, error) {
	return l.start(role, name, nil, args...)
}

// start is Start with stderr optionally sent elsewhere (dumpcap's, which
// Capture reads).
func (l *Lab) start(role, name string, stderr *os.File, args ...string) (*Proc, error) {
	ns, err := l.ns(role)
	if err != nil {
		return nil, err
	}
	if len(args) == 0 {
		return nil, errors.New("lab: Start: no command")
	}
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	logPath := filepath.Join(l.dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()

	// ip netns exec execs the command itself, so the pid is the command's.
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	if stderr != nil {
		cmd.Stderr = stderr
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group: a terminal's Ctrl-C reaches only us, and
		// Close then stops the daemons in order.
		Setpgid: true,
		// If this process dies without Close, so do the daemons; Sweep
		// removes the namespaces later.
		Pdeathsig: syscall.SIGKILL,
	}
	p := &Proc{lab: l, name: name, cmd: cmd, log: logPath, done: make(chan struct{})}

	// Held across the spawn so that Close either sees this process or has
	// already refused it.
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	if err := spawn(cmd); err != nil {
		return nil, fmt.Errorf("lab: start %s in %s: %w", name, role, err)
	}
	l.procs[p] = struct{}{}
	go func() {
		p.err = cmd.Wait()
		l.mu.Lock()
		delete(l.procs, p)
		l.mu.Unlock()
		close(p.done)
	}()
	l.logf("lab %s: started %s (pid %d) in %s", l.prefix, name, cmd.Process.Pid, role)
	return p, nil
}

type spawnReq struct {
	cmd *exec.Cmd
	err chan error
}

var (
	spawnOnce sync.Once
	spawnCh   = make(chan spawnReq)
)

// spawn starts cmd from one OS thread that never exits. The kernel sends
// Pdeathsig when the forking thread exits, not the process, and the Go
// runtime may retire any other thread, which would kill a healthy daemon.
func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		go func() {
			runtime.LockOSThread()
			for r := range spawnCh {
				r.err <- r.cmd.Start()
			}
		}()
	})
	r := spawnReq{cmd: cmd, err: make(chan error, 1)}
	spawnCh <- r
	return <-r.err
}

// Pid returns the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// LogPath returns the file with the process's stdout and stderr.
func (p *Proc) LogPath() string { return p.log }

// Exited is closed once the process has exited and been reaped.
func (p *Proc) Exited() <-chan struct{} { return p.done }

// Wait waits for the process to exit and returns how it ended, as
// exec.Cmd.Wait does.
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Signal sends sig to the process; after it exited it returns
// os.ErrProcessDone.
func (p *Proc) Signal(sig os.Signal) error {
	select {
	case <-p.done:
		return os.ErrProcessDone
	default:
	}
	return p.cmd.Process.Signal(sig)
}

// Stop sends SIGTERM, waits up to 5 s, then sends SIGKILL. It returns nil
// if the process exited cleanly or of the SIGTERM; an error if it had
// already died, exited non-zero, or needed the SIGKILL.
func (p *Proc) Stop() error {
	killed := p.terminate(5 * time.Second)
	p.mu.Lock()
	signaled := p.signaled
	p.mu.Unlock()
	if killed {
		return fmt.Errorf("%s did not exit within 5s of SIGTERM and was killed", p.name)
	}
	if p.err == nil {
		return nil
	}
	var ee *exec.ExitError
	if signaled && errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	return fmt.Errorf("%s: %w (log: %s)", p.name, p.err, p.log)
}

// terminate sends SIGTERM, then SIGKILL after grace, and waits for the
// exit. It reports whether SIGKILL was needed.
func (p *Proc) terminate(grace time.Duration) (killed bool) {
	select {
	case <-p.done:
		return false
	default:
	}
	p.mu.Lock()
	p.signaled = true
	p.mu.Unlock()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return false
	case <-t.C:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return true
}
