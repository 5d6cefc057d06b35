package aaa

import (
	"bufio"
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

// radiusServer is a real FreeRADIUS (Debian's freeradius package) run for
// one test: its own configuration folder, ports of its own on 127.0.0.1
// and ::1 (authentication on port, accounting on port+1), unprivileged
// (as nobody when the tests run as root), killed when the test ends.
type radiusServer struct {
	t      testing.TB
	dir    string
	port   int
	secret []byte
	cmd    *exec.Cmd
	done   chan struct{}
}

// The users file: one known mobile router, everything else rejected.
const usersFile = `car9@fleet.example Auth-Type := Accept
	Framed-IPv6-Address = 2001:db8:ffff:1::9,
	Delegated-IPv6-Prefix = 2001:db8:900::/56,
	Delegated-IPv6-Prefix += 2001:db8:901::/56,
	Framed-IP-Address = 198.51.100.9,
	Session-Timeout = 3600,
	Tunnel-Password:1 = "` + testKeyHex + `",
	Tunnel-Client-Auth-ID:1 = "4097"

DEFAULT Auth-Type := Reject
	Reply-Message = "unknown router"
`

// radiusdConf is a minimal radiusd.conf: the files module for
// authorization, the detail module for accounting, Message-Authenticator
// in every Access-Accept and Access-Reject (FreeRADIUS 3.2.1 adds it only
// when told to), Status-Server answered, and receive buffers of 1 MiB:
// the kernel's default of 208 KiB holds some 190 requests, fewer than the
// benchmark's 256 sent at once.
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
	listen {
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

func randomSecret(t testing.TB) []byte {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return []byte(hex.EncodeToString(b[:]))
}

// freePortPair finds a port free for UDP on 127.0.0.1 and ::1, with the
// next one free too (for accounting).
func freePortPair(t testing.TB) int {
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

func startFreeRADIUS(t testing.TB) *radiusServer {
	t.Helper()
	return startFreeRADIUSWith(t, randomSecret(t))
}

// startFreeRADIUSWith starts one with the given shared secret.
func startFreeRADIUSWith(t testing.TB, secret []byte) *radiusServer {
	t.Helper()
	testenv.NeedTool(t, "freeradius")
	// Not t.TempDir: its parent is private to root, and FreeRADIUS runs as
	// nobody.
	dir, err := os.MkdirTemp("", "nemod-radius-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &radiusServer{t: t, dir: dir, port: freePortPair(t), secret: secret}
	conf := strings.NewReplacer("{{dir}}", dir, "{{secret}}", string(s.secret),
		"{{auth}}", strconv.Itoa(s.port), "{{acct}}", strconv.Itoa(s.port+1)).Replace(radiusdConf)
	for name, content := range map[string]string{"radiusd.conf": conf, "users": usersFile} {
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
		s.kill()
		if t.Failed() {
			if log, err := os.ReadFile(filepath.Join(dir, "radiusd.out")); err == nil {
				t.Logf("FreeRADIUS output:\n%s", log)
			}
		}
	})
	s.start()
	return s
}

func nobody(t testing.TB) (int, int) {
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}

// start runs FreeRADIUS (again, after kill: same folder, same ports) and
// waits until it answers Status-Server on both ports.
func (s *radiusServer) start() {
	t := s.t
	t.Helper()
	out, err := os.OpenFile(filepath.Join(s.dir, "radiusd.out"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	// -f: stay in the foreground; -l stdout: log there. Not -X: that is
	// single-threaded and logs every packet, which the benchmark would
	// measure instead of the server.
	cmd := exec.Command("freeradius", "-f", "-l", "stdout", "-d", s.dir, "-n", "radiusd")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
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
	for _, a := range []netip.AddrPort{s.auth4(), s.acct6()} {
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

func (s *radiusServer) answersStatus(a netip.AddrPort) bool {
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(a))
	if err != nil {
		return false
	}
	defer conn.Close()
	var auth [16]byte
	rand.Read(auth[:])
	req, err := encodeStatusServer(&testNAS, 1, &auth, s.secret)
	if err != nil {
		s.t.Fatal(err)
	}
	conn.Write(req)
	conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	return err == nil && checkPlainResponse(buf[:n], req, s.secret, 0) == nil
}

// kill stops the server and waits until it is gone, ports and all.
func (s *radiusServer) kill() {
	if s.cmd == nil {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

func (s *radiusServer) auth4() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(s.port))
}

func (s *radiusServer) auth6() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("::1"), uint16(s.port))
}

func (s *radiusServer) acct6() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("::1"), uint16(s.port+1))
}

// details reads the detail file: one map of attribute to value (quotes
// removed) per accounting record, in order.
func (s *radiusServer) details() []map[string]string {
	f, err := os.Open(filepath.Join(s.dir, "detail"))
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
