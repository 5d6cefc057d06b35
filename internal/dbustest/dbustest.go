// Package dbustest runs a private dbus-daemon configured like Debian's
// system bus with nemod's policy file (packaging/dbus/org.nemod.conf) in
// its includedir, and the bus's own clients against it as root or as
// throwaway users: the tests of package dbusapi and of the daemons use
// it.
package dbustest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"nemod/internal/testenv"
)

// Bus is a private dbus-daemon configured like the system bus, with our
// policy file in its includedir.
type Bus struct {
	t      testing.TB
	dir    string
	config string
	// Address is the bus's address, for DBUS_SYSTEM_BUS_ADDRESS.
	Address string
	cmd     *exec.Cmd
}

// busConfig follows Debian's system.conf: the system bus type, EXTERNAL
// authentication, its default policy (connect, no ownership, no method
// calls, signals and replies allowed), root's monitoring, and an
// includedir, here a temp dir with packaging/dbus/org.nemod.conf.
const busConfig = `<busconfig>
  <type>system</type>
  %s
  <auth>EXTERNAL</auth>
  <listen>unix:path=%s</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus" send_member="UpdateActivationEnvironment"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Debug.Stats"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <includedir>%s</includedir>
</busconfig>
`

// Start starts the bus; it is stopped when the test ends. It needs root:
// the policy lets only root own our names. Its socket is reachable from
// every network namespace.
func Start(t testing.TB) *Bus {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "dbus-daemon", "busctl", "gdbus", "dbus-monitor", "setpriv", "useradd", "groupadd")
	dir := t.TempDir()
	// The bus drops to messagebus and the test's other users connect: they
	// must reach the socket through the temp dirs.
	for d := dir; d != filepath.Dir(os.TempDir()) && d != "/"; d = filepath.Dir(d) {
		if strings.HasPrefix(d, os.TempDir()+"/") {
			os.Chmod(d, 0o755)
		}
	}
	sysd := filepath.Join(dir, "system.d")
	if err := os.Mkdir(sysd, 0o755); err != nil {
		t.Fatal(err)
	}
	policy, err := os.ReadFile(filepath.Join(moduleRoot(t), "packaging/dbus/org.nemod.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sysd, "org.nemod.conf"), policy, 0o644); err != nil {
		t.Fatal(err)
	}
	userLine := ""
	if _, err := user.Lookup("messagebus"); err == nil {
		userLine = "<user>messagebus</user>"
	}
	b := &Bus{t: t, dir: dir, config: filepath.Join(dir, "bus.conf")}
	sock := filepath.Join(dir, "bus.socket")
	if err := os.WriteFile(b.config, fmt.Appendf(nil, busConfig, userLine, sock, sysd), 0o644); err != nil {
		t.Fatal(err)
	}
	b.Restart()
	t.Cleanup(b.Stop)
	return b
}

// Restart starts the bus again after Stop, at the same address.
func (b *Bus) Restart() {
	b.t.Helper()
	cmd := exec.Command("dbus-daemon", "--config-file="+b.config, "--nofork", "--print-address")
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		b.t.Fatalf("dbus-daemon printed no address: %v; %s", err, stderr.String())
	}
	b.Address = strings.TrimSpace(line)
	b.cmd = cmd
}

// Stop stops the bus (its clients lose their connections).
func (b *Bus) Stop() {
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		b.cmd.Process.Kill()
		<-done
	}
	b.cmd = nil
}

// Run runs a client as root (as nil) or as the given user; it returns
// stdout, stderr and whether it succeeded.
func (b *Bus) Run(as *User, name string, args ...string) (string, string, bool) {
	b.t.Helper()
	cmd := ExecAs(as, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err == nil
}

// ExecAs is the command to run name as the user (nil: root) with that
// user's groups, as the bus sees them on the connection.
func ExecAs(as *User, name string, args ...string) *exec.Cmd {
	if as == nil {
		return exec.Command(name, args...)
	}
	return exec.Command("setpriv", append([]string{"--reuid=" + as.UID, "--regid=" + as.GID, "--init-groups", "--", name}, args...)...)
}

// BusctlJSON runs busctl --json=short against the bus as root and decodes
// its answer into v; it fails the test on an error.
func (b *Bus) BusctlJSON(v any, args ...string) {
	b.t.Helper()
	out, errs, ok := b.Run(nil, "busctl", append([]string{"--address=" + b.Address, "--json=short"}, args...)...)
	if !ok {
		b.t.Fatalf("busctl %v: %s", args, errs)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		b.t.Fatalf("busctl %v: %v in %q", args, err, out)
	}
}

// User is a user the clients run as.
type User struct {
	Name, UID, GID string
}

var groupOnce sync.Mutex

// MakeUser creates a throwaway system user, in group nemod when inNemod
// (creating the group when the machine has none); the user goes when the
// test ends. The group stays: test packages run in parallel processes, and
// one removing it would take it from under another's bus policy (the
// packages create the same group on a real system).
func MakeUser(t testing.TB, inNemod bool) *User {
	t.Helper()
	groupOnce.Lock()
	defer groupOnce.Unlock()
	var suffix [4]byte
	rand.Read(suffix[:])
	name := "nemodt" + hex.EncodeToString(suffix[:])
	args := []string{"--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group"}
	if inNemod {
		if _, err := user.LookupGroup("nemod"); err != nil {
			if out, err := exec.Command("groupadd", "--system", "nemod").CombinedOutput(); err != nil {
				t.Fatalf("groupadd nemod: %v %s", err, out)
			}
		}
		args = append(args, "--groups", "nemod")
	}
	if out, err := exec.Command("useradd", append(args, name)...).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v %s", name, err, out)
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return &User{Name: name, UID: u.Uid, GID: u.Gid}
}

// Nobody is the user nobody.
func Nobody(t testing.TB) *User {
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("no user nobody: %v", err)
	}
	return &User{Name: "nobody", UID: u.Uid, GID: u.Gid}
}

// Monitor is a client that keeps running (dbus-monitor, gdbus monitor):
// what it printed so far.
type Monitor struct {
	mu  sync.Mutex
	out bytes.Buffer
	cmd *exec.Cmd
}

func (m *Monitor) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.out.Write(p)
}

// Text is what the client printed so far.
func (m *Monitor) Text() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.out.String()
}

// StartMonitor starts dbus-monitor (as root) for the signals of sender,
// and waits until it monitors (it prints the loss of its own name when it
// does).
func (b *Bus) StartMonitor(sender string) *Monitor {
	b.t.Helper()
	return b.StartClient(nil, "dbus-monitor to start", func(text string) bool {
		return strings.Contains(text, "member=NameLost")
	}, "dbus-monitor", "--address", b.Address, "type='signal',sender='"+sender+"'")
}

// StartClient starts a client that keeps running, as root (as nil) or as
// the user, and waits until what it printed satisfies ready; it is killed
// when the test ends.
func (b *Bus) StartClient(as *User, what string, ready func(text string) bool, name string, args ...string) *Monitor {
	b.t.Helper()
	m := &Monitor{cmd: ExecAs(as, name, args...)}
	m.cmd.Stdout = m
	m.cmd.Stderr = m
	if err := m.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { m.cmd.Process.Kill(); m.cmd.Wait() })
	WaitFor(b.t, 5*time.Second, what, func() bool { return ready(m.Text()) })
	return m
}

// SignalBlock is one signal as dbus-monitor prints it: its header line and
// the argument lines below it.
type SignalBlock struct {
	Header string
	Body   string
}

// Signals are the signals of that member dbus-monitor printed so far.
func (m *Monitor) Signals(member string) []SignalBlock {
	var out []SignalBlock
	text := m.Text()
	for _, blk := range strings.Split(text, "\nsignal ")[1:] {
		header, body, _ := strings.Cut(blk, "\n")
		if strings.Contains(header, "member="+member) {
			out = append(out, SignalBlock{header, body})
		}
	}
	return out
}

// WaitFor polls cond every 10 ms until it holds, failing the test after d.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// moduleRoot is the repository's root: the first folder up from the test's
// own with a go.mod.
func moduleRoot(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = up
	}
}
