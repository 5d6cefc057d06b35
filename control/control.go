// Package control is the daemons' local control channel: a Unix socket,
// root only, speaking one JSON request and one JSON answer per line. The
// daemon's event loop answers, so handlers see consistent state.
package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"nemod/internal/sock"
)

// Request is one command.
type Request struct {
	Cmd  string          `json:"cmd"`
	Args json.RawMessage `json:"args,omitempty"`
}

// Response answers a request.
type Response struct {
	OK     bool            `json:"ok"`
	Error  string          `json:"error,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// Call is a request waiting for the event loop: it must call Reply once.
type Call struct {
	Request
	reply chan Response
}

// Reply answers the call with a result or an error.
func (c *Call) Reply(result any, err error) {
	if err != nil {
		c.reply <- Response{Error: err.Error()}
		return
	}
	b, merr := json.Marshal(result)
	if merr != nil {
		c.reply <- Response{Error: merr.Error()}
		return
	}
	c.reply <- Response{OK: true, Result: b}
}

// Server accepts control connections and hands each request to Calls.
type Server struct {
	ln    *net.UnixListener
	path  string
	calls chan *Call
	done  chan struct{}
}

// Listen creates the socket at path, mode 0600, replacing a stale one left
// by a crashed daemon (but not a live one).
func Listen(path string) (*Server, error) {
	if c, err := sock.DialUnix(path); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another daemon is listening on it", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	os.Remove(path)
	// Create the socket with no access for group and others from the
	// start, so that no one can connect before the chmod.
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	ln.SetUnlinkOnClose(true)
	s := &Server{ln: ln, path: path, calls: make(chan *Call), done: make(chan struct{})}
	go s.accept()
	return s, nil
}

// Calls delivers the requests to the event loop.
func (s *Server) Calls() <-chan *Call { return s.calls }

// Close stops accepting and removes the socket.
func (s *Server) Close() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	close(s.done)
	return s.ln.Close()
}

func (s *Server) accept() {
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			return
		}
		go s.serve(c)
	}
}

// peerAllowed admits root and the daemon's own user only: the file mode
// already says so, but a socket passed to another process would not.
func peerAllowed(c *net.UnixConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var cred *syscall.Ucred
	var cerr error
	raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	return cerr == nil && (cred.Uid == 0 || int(cred.Uid) == os.Geteuid())
}

func (s *Server) serve(c *net.UnixConn) {
	defer c.Close()
	enc := json.NewEncoder(c)
	if !peerAllowed(c) {
		enc.Encode(Response{Error: "permission denied"})
		return
	}
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var req Request
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			enc.Encode(Response{Error: "bad request: " + err.Error()})
			continue
		}
		call := &Call{Request: req, reply: make(chan Response, 1)}
		select {
		case s.calls <- call:
		case <-s.done:
			return
		}
		var resp Response
		select {
		case resp = <-call.reply:
		case <-s.done:
			return
		}
		if err := enc.Encode(resp); err != nil {
			return
		}
	}
}

// Do sends one request to the daemon listening at path and decodes its
// result into out (if not nil).
func Do(ctx context.Context, path, cmd string, args any, out any) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cannot reach the daemon: %w", err)
	}
	c, err := sock.DialUnix(path)
	if err != nil {
		return fmt.Errorf("cannot reach the daemon: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	req := Request{Cmd: cmd}
	if args != nil {
		if req.Args, err = json.Marshal(args); err != nil {
			return err
		}
	}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return err
	}
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if !resp.OK {
		return errors.New(resp.Error)
	}
	if out != nil {
		return json.Unmarshal(resp.Result, out)
	}
	return nil
}
