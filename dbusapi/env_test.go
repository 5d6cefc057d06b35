package dbusapi

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

// bus is a private dbus-daemon configured like the system bus, with our
// policy file in its includedir.
type bus struct {
	t       *testing.T
	dir     string
	config  string
	address string
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

// startBus starts the bus; it is stopped when the test ends. It needs root:
// the policy lets only root own our names.
func startBus(t *testing.T) *bus {
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
	policy, err := os.ReadFile("../packaging/dbus/org.nemod.conf")
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
	b := &bus{t: t, dir: dir, config: filepath.Join(dir, "bus.conf")}
	sock := filepath.Join(dir, "bus.socket")
	if err := os.WriteFile(b.config, fmt.Appendf(nil, busConfig, userLine, sock, sysd), 0o644); err != nil {
		t.Fatal(err)
	}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func (b *bus) start() {
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
	b.address = strings.TrimSpace(line)
	b.cmd = cmd
}

func (b *bus) stop() {
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

// run runs a client as root (uid nil) or as the given user; it returns
// stdout, stderr and whether it succeeded.
func (b *bus) run(as *testUser, name string, args ...string) (string, string, bool) {
	b.t.Helper()
	cmd := execAs(as, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err == nil
}

// execAs is the command to run name as the user (nil: root) with that
// user's groups, as the bus sees them on the connection.
func execAs(as *testUser, name string, args ...string) *exec.Cmd {
	if as == nil {
		return exec.Command(name, args...)
	}
	return exec.Command("setpriv", append([]string{"--reuid=" + as.uid, "--regid=" + as.gid, "--init-groups", "--", name}, args...)...)
}

// busctl runs busctl --json=short against the bus and decodes its answer
// into v; it fails the test on an error.
func (b *bus) busctlJSON(v any, args ...string) {
	b.t.Helper()
	out, errs, ok := b.run(nil, "busctl", append([]string{"--address=" + b.address, "--json=short"}, args...)...)
	if !ok {
		b.t.Fatalf("busctl %v: %s", args, errs)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		b.t.Fatalf("busctl %v: %v in %q", args, err, out)
	}
}

type testUser struct {
	name, uid, gid string
}

var groupOnce sync.Mutex

// makeUser creates a throwaway system user, in group nemod when inNemod
// (creating the group when the machine has none); both go when the test
// ends.
func makeUser(t *testing.T, inNemod bool) *testUser {
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
			t.Cleanup(func() { exec.Command("groupdel", "nemod").Run() })
		}
		args = append(args, "--groups", "nemod")
	}
	if out, err := exec.Command("useradd", append(args, name)...).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v %s", err, out)
	}
	// Registered after the group's: cleanups run last-first, and the
	// group can only go once its member has.
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v %s", name, err, out)
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return &testUser{name: name, uid: u.Uid, gid: u.Gid}
}

func nobody(t *testing.T) *testUser {
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("no user nobody: %v", err)
	}
	return &testUser{name: "nobody", uid: u.Uid, gid: u.Gid}
}

// monitor is dbus-monitor on the bus, as root: what it printed so far.
type monitor struct {
	mu  sync.Mutex
	out bytes.Buffer
	cmd *exec.Cmd
}

func (m *monitor) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.out.Write(p)
}

func (m *monitor) text() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.out.String()
}

// startMonitor starts dbus-monitor for the signals of sender, and waits
// until it monitors (it prints the loss of its own name when it does).
func (b *bus) startMonitor(sender string) *monitor {
	b.t.Helper()
	m := &monitor{}
	m.cmd = exec.Command("dbus-monitor", "--address", b.address, "type='signal',sender='"+sender+"'")
	m.cmd.Stdout = m
	m.cmd.Stderr = m
	if err := m.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { m.cmd.Process.Kill(); m.cmd.Wait() })
	waitFor(b.t, 5*time.Second, "dbus-monitor to start", func() bool {
		return strings.Contains(m.text(), "member=NameLost")
	})
	return m
}

// signalBlock is one signal as dbus-monitor prints it: its header line and
// the argument lines below it.
type signalBlock struct {
	header string
	body   string
}

func (m *monitor) signals(member string) []signalBlock {
	var out []signalBlock
	text := m.text()
	for _, blk := range strings.Split(text, "\nsignal ")[1:] {
		header, body, _ := strings.Cut(blk, "\n")
		if strings.Contains(header, "member="+member) {
			out = append(out, signalBlock{header, body})
		}
	}
	return out
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
