// Package freerad runs a real FreeRADIUS (Debian's freeradius package) for
// a test: its own configuration folder and users file, ports of its own on
// 127.0.0.1 and ::1 (and on other addresses a test names: a lab
// namespace's), unprivileged (as nobody when the tests run as root),
// killed when the test ends. The aaa package's tests and the home agent's
// use it.
package freerad

import (
	"bufio"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"nemod/internal/testenv"
)

// T is what a server needs of its caller: a test (testing.TB), or a
// benchmark's stand-in.
type T interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	Failed() bool
}

// Server is one FreeRADIUS.
type Server struct {
	t      T
	Dir    string
	Port   int // authentication; accounting on Port+1
	Secret []byte
	opts   Options
	cmd    *exec.Cmd
	done   chan struct{}
}

// Options adjust a server.
type Options struct {
	// Users is the users file.
	Users string
	// Secret is shared with every client (random when nil).
	Secret []byte
	// Listen are more addresses to listen on, beside the loopback ones,
	// and Clients more client addresses (with the same secret).
	Listen  []netip.Addr
	Clients []netip.Addr
	// Port is the authentication port (a free one when 0).
	Port int
	// Exec runs the server's command (in a network namespace, say, where
	// it runs as root); exec.Command when nil, as nobody under root.
	Exec func(name string, args ...string) *exec.Cmd
	// Dial reaches the server to see that it is up (net.DialUDP when
	// nil): from inside the namespace Exec runs it in.
	Dial func(a netip.AddrPort) (net.Conn, error)
}

// radiusdConf is a minimal radiusd.conf: the files module for
// authorization, the detail module for accounting, Message-Authenticator
// in every Access-Accept and Access-Reject (FreeRADIUS 3.2.1 adds it only
// when told to), Status-Server answered, and receive buffers of 1 MiB:
// the kernel's default of 208 KiB holds some 190 requests, fewer than a
// benchmark's burst.
const radiusdConf = `prefix = /usr
confdir = {{dir}}
logdir = {{dir}}
run_dir = {{dir}}
radacctdir = {{dir}}
libdir = /usr/lib/freeradius
pidfile = {{dir}}/radiusd.pid
name = radiusd
max_request_time = 5
cleanup_delay = 1
max_requests = 65536
hostname_lookups = no
log {
	destination = stdout
	colourise = no
	auth = no
}
security {
	allow_core_dumps = no
	status_server = yes
}
thread pool {
	start_servers = 4
	max_servers = 8
	min_spare_servers = 2
	max_spare_servers = 8
	max_requests_per_server = 0
}
client lo4 {
	ipaddr = 127.0.0.1
	secret = {{secret}}
}
client lo6 {
	ipv6addr = ::1
	secret = {{secret}}
}
{{clients}}
modules {
	files {
		filename = {{dir}}/users
	}
	detail {
		filename = {{dir}}/detail
		permissions = 0600
	}
}
server default {
{{listen}}	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = {{auth}}
		recv_buff = 1048576
	}
	listen {
		type = auth
		ipv6addr = ::1
		port = {{auth}}
		recv_buff = 1048576
	}
	listen {
		type = acct
		ipaddr = 127.0.0.1
		port = {{acct}}
		recv_buff = 1048576
	}
	listen {
		type = acct
		ipv6addr = ::1
		port = {{acct}}
		recv_buff = 1048576
	}
	authorize {
		files
	}
	authenticate {
	}
	preacct {
	}
	accounting {
		detail
	}
	post-auth {
		update reply {
			Message-Authenticator := 0x00
		}
		Post-Auth-Type REJECT {
			update reply {
				Message-Authenticator := 0x00
			}
		}
	}
}
`

// RandomSecret returns a fresh shared secret.
func RandomSecret(t T) []byte {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return []byte(hex.EncodeToString(b[:]))
}

// freePortPair finds a port free for UDP on 127.0.0.1 and ::1, with the
// next one free too (for accounting).
func freePortPair(t T) int {
	t.Helper()
	for range 50 {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		p := c.LocalAddr().(*net.UDPAddr).Port
		ok := p < 65535
		var held []*net.UDPConn
		for _, a := range []string{fmt.Sprintf("[::1]:%d", p), fmt.Sprintf("127.0.0.1:%d", p+1), fmt.Sprintf("[::1]:%d", p+1)} {
			if !ok {
				break
			}
			h, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(a)))
			if err != nil {
				ok = false
				break
			}
			held = append(held, h)
		}
		c.Close()
		for _, h := range held {
			h.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatal("no free port pair on loopback")
	return 0
}

// Start starts a server with opts.
func Start(t T, opts Options) *Server {
	t.Helper()
	if tb, ok := t.(testing.TB); ok {
		testenv.NeedTool(tb, "freeradius")
	}
	if opts.Secret == nil {
		opts.Secret = RandomSecret(t)
	}
	// Not t.TempDir: its parent is private to root, and FreeRADIUS runs as
	// nobody.
	dir, err := os.MkdirTemp("", "nemod-radius-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	port := opts.Port
	if port == 0 {
		port = freePortPair(t)
	}
	s := &Server{t: t, Dir: dir, Port: port, Secret: opts.Secret, opts: opts}
	var clients, listen strings.Builder
	for i, a := range opts.Clients {
		kw := "ipaddr"
		if a.Is6() {
			kw = "ipv6addr"
		}
		fmt.Fprintf(&clients, "client extra%d {\n\t%s = %s\n\tsecret = %s\n}\n", i, kw, a, s.Secret)
	}
	for _, a := range opts.Listen {
		kw := "ipaddr"
		if a.Is6() {
			kw = "ipv6addr"
		}
		for _, typ := range []string{"auth", "acct"} {
			p := port
			if typ == "acct" {
				p++
			}
			fmt.Fprintf(&listen, "\tlisten {\n\t\ttype = %s\n\t\t%s = %s\n\t\tport = %d\n\t\trecv_buff = 1048576\n\t}\n", typ, kw, a, p)
		}
	}
	conf := strings.NewReplacer("{{dir}}", dir, "{{secret}}", string(s.Secret), "{{clients}}", clients.String(),
		"{{listen}}", listen.String(), "{{auth}}", strconv.Itoa(port), "{{acct}}", strconv.Itoa(port+1)).Replace(radiusdConf)
	for name, content := range map[string]string{"radiusd.conf": conf, "users": opts.Users} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		uid, gid := nobody(t)
		for _, p := range []string{dir, filepath.Join(dir, "radiusd.conf"), filepath.Join(dir, "users")} {
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			if log, err := os.ReadFile(filepath.Join(dir, "radiusd.out")); err == nil {
				t.Logf("FreeRADIUS output:\n%s", log)
			}
		}
	})
	s.Start()
	return s
}

func nobody(t T) (int, int) {
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}

// Start runs FreeRADIUS (again, after kill: same folder, same ports) and
// waits until it answers Status-Server on both ports.
func (s *Server) Start() {
	t := s.t
	t.Helper()
	out, err := os.OpenFile(filepath.Join(s.Dir, "radiusd.out"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	// -f: stay in the foreground; -l stdout: log there. Not -X: that is
	// single-threaded and logs every packet, which the benchmark would
	// measure instead of the server.
	run := s.opts.Exec
	if run == nil {
		run = exec.Command
	}
	cmd := run("freeradius", "-f", "-l", "stdout", "-d", s.Dir, "-n", "radiusd")
	cmd.Stdout, cmd.Stderr = out, out
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid, cmd.SysProcAttr.Pdeathsig = true, syscall.SIGKILL
	if os.Geteuid() == 0 && s.opts.Exec == nil {
		// Unprivileged from the start; Go sets the parent-death signal
		// after the credentials, so a crashed test leaves no server.
		uid, gid := nobody(t)
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	}
	if err := spawnLocked(cmd); err != nil {
		t.Fatal(err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(s.done)
	deadline := time.Now().Add(15 * time.Second)
	for _, a := range []netip.AddrPort{s.Auth4(), s.Acct6()} {
		for !s.answersStatus(a) {
			select {
			case <-s.done:
				t.Fatalf("freeradius exited: %v", cmd.ProcessState)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatal("freeradius does not answer Status-Server")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

var (
	spawnOnce sync.Once
	spawnCh   = make(chan func())
)

// spawnLocked starts cmd from one OS thread that never exits: the kernel
// sends the parent-death signal when the forking thread exits, and the Go
// runtime may retire any other thread.
func spawnLocked(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		go func() {
			runtime.LockOSThread()
			for f := range spawnCh {
				f()
			}
		}()
	})
	errc := make(chan error, 1)
	spawnCh <- func() { errc <- cmd.Start() }
	return <-errc
}

// answersStatus reports whether the server answers a Status-Server
// (RFC 5997, with the Message-Authenticator it requires) at a.
func (s *Server) answersStatus(a netip.AddrPort) bool {
	var conn net.Conn
	var err error
	if s.opts.Dial != nil {
		conn, err = s.opts.Dial(a)
	} else {
		conn, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(a))
	}
	if err != nil {
		return false
	}
	defer conn.Close()
	// Code 12, identifier 1, length 38, a random authenticator, then
	// Message-Authenticator (type 80) over the whole packet.
	req := make([]byte, 38)
	req[0], req[1], req[3] = 12, 1, 38
	rand.Read(req[4:20])
	req[20], req[21] = 80, 18
	mac := hmac.New(md5.New, s.Secret)
	mac.Write(req)
	copy(req[22:], mac.Sum(nil))
	conn.Write(req)
	conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil || n < 20 || buf[1] != 1 {
		return false
	}
	// The Response Authenticator: MD5(code, id, length, request
	// authenticator, attributes, secret).
	h := md5.New()
	h.Write(buf[:4])
	h.Write(req[4:20])
	h.Write(buf[20:n])
	h.Write(s.Secret)
	return hmac.Equal(h.Sum(nil), buf[4:20])
}

// Kill stops the server and waits until it is gone, ports and all.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

// PID is the server's process, 0 when it is not running.
func (s *Server) PID() int {
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Auth4, Auth6, Acct4 and Acct6 are its loopback ports.
func (s *Server) Auth4() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(s.Port))
}

func (s *Server) Auth6() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("::1"), uint16(s.Port))
}

func (s *Server) Acct4() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(s.Port+1))
}

func (s *Server) Acct6() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("::1"), uint16(s.Port+1))
}

// Details reads the detail file: one map of attribute to value (quotes
// removed) per accounting record, in order.
func (s *Server) Details() []map[string]string {
	f, err := os.Open(filepath.Join(s.Dir, "detail"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var recs []map[string]string
	var cur map[string]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case l == "":
			cur = nil
		case !strings.HasPrefix(l, "\t"):
			cur = map[string]string{}
			recs = append(recs, cur)
		case cur != nil:
			k, v, _ := strings.Cut(strings.TrimSpace(l), " = ")
			cur[k] = strings.Trim(v, `"`)
		}
	}
	return recs
}
