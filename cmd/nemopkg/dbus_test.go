package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nemod/internal/pkg"
	"nemod/internal/testenv"
)

// The D-Bus policy the .deb ships, in a real dbus-daemon: root owns the
// names and calls anything; a member of the policy's group reads
// properties but calls no method; anyone else gets nothing. The bus runs
// on a socket of its own, not the system bus. The only change to the
// policy is its group, "nemod" made "nogroup" (so that the test needs no
// new group on this machine): nobody (65534) is in it, daemon (1) not.
func TestDBusPolicy(t *testing.T) {
	b := packages(t)
	testenv.NeedRoot(t)
	daemonBin := testenv.NeedTool(t, "dbus-daemon", "dbus-send", "dbus-test-tool", "setpriv")
	for _, u := range []string{"nobody", "daemon"} {
		if _, err := user.Lookup(u); err != nil {
			t.Fatalf("user %s: %v", u, err)
		}
	}
	if _, err := user.LookupGroup("nogroup"); err != nil {
		t.Fatal(err)
	}
	members, err := pkg.ReadAr(readFile(t, debPath(b, b.dir)))
	if err != nil {
		t.Fatal(err)
	}
	_, data := untar(t, members[2].Data)
	policy := data["./usr/share/dbus-1/system.d/org.nemod.conf"].data
	if !bytes.Contains(policy, []byte(`group="nemod"`)) {
		t.Fatal(`the policy has no group="nemod"`)
	}

	// Readable by the unprivileged callers: the socket's folder.
	dir, err := os.MkdirTemp("", "nemod-dbus")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	os.MkdirAll(filepath.Join(dir, "system.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "system.d", "org.nemod.conf"), bytes.ReplaceAll(policy, []byte(`group="nemod"`), []byte(`group="nogroup"`)), 0o644)
	sock := filepath.Join(dir, "bus")
	conf := `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=` + sock + `</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <!-- Everything, as a session bus allows it; the policy under test
         comes after and takes its names back. -->
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
  <includedir>` + filepath.Join(dir, "system.d") + `</includedir>
</busconfig>
`
	os.WriteFile(filepath.Join(dir, "bus.conf"), []byte(conf), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	bus := exec.CommandContext(ctx, daemonBin, "--config-file="+filepath.Join(dir, "bus.conf"), "--nofork", "--nopidfile")
	if err := bus.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); bus.Wait() })
	addr := "unix:path=" + sock
	env := append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+addr)

	as := func(who string, args ...string) *exec.Cmd {
		var c *exec.Cmd
		switch who {
		case "root":
			c = exec.Command(args[0], args[1:]...)
		case "nobody":
			c = exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--init-groups"}, args...)...)
		case "daemon":
			c = exec.Command("setpriv", append([]string{"--reuid=1", "--regid=1", "--init-groups"}, args...)...)
		}
		c.Env = env
		return c
	}
	call := func(who, dest, method string, args ...string) error {
		cmd := as(who, append([]string{"dbus-send", "--bus=" + addr, "--print-reply", "--reply-timeout=3000",
			"--dest=" + dest, "/" + strings.ReplaceAll(dest, ".", "/"), method}, args...)...)
		return cmd.Run()
	}

	// The names are root's to own.
	for _, name := range []string{"org.nemod.Router1", "org.nemod.HomeAgent1"} {
		for _, who := range []string{"nobody", "daemon"} {
			c := as(who, "dbus-test-tool", "echo", "--system", "--name="+name)
			done := make(chan error, 1)
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- c.Wait() }()
			select {
			case err := <-done:
				if err == nil {
					t.Errorf("%s: owning %s did not fail", who, name)
				}
			case <-time.After(3 * time.Second):
				c.Process.Kill()
				<-done
				t.Errorf("%s owns %s", who, name)
			}
		}
		echo := as("root", "dbus-test-tool", "echo", "--system", "--name="+name)
		if err := echo.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { echo.Process.Kill(); echo.Wait() })
		deadline := time.Now().Add(5 * time.Second)
		for call("root", name, "org.freedesktop.DBus.Peer.Ping") != nil {
			if time.Now().After(deadline) {
				t.Fatalf("root's %s never answered", name)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	iface := map[string]string{"org.nemod.Router1": "org.nemod.Router1", "org.nemod.HomeAgent1": "org.nemod.HomeAgent1"}
	for name := range iface {
		for _, tc := range []struct {
			who, method string
			args        []string
			allowed     bool
		}{
			{"root", name + ".Reload", nil, true},
			{"root", "org.freedesktop.DBus.Properties.Get", []string{"string:" + name, "string:State"}, true},
			{"nobody", "org.freedesktop.DBus.Properties.Get", []string{"string:" + name, "string:State"}, true},
			{"nobody", "org.freedesktop.DBus.Properties.GetAll", []string{"string:" + name}, true},
			{"nobody", "org.freedesktop.DBus.ObjectManager.GetManagedObjects", nil, true},
			{"nobody", "org.freedesktop.DBus.Introspectable.Introspect", nil, true},
			{"nobody", name + ".Reload", nil, false},
			{"nobody", "org.freedesktop.DBus.Properties.Set", []string{"string:" + name, "string:State", "variant:string:x"}, false},
			{"daemon", "org.freedesktop.DBus.Properties.Get", []string{"string:" + name, "string:State"}, false},
			{"daemon", "org.freedesktop.DBus.Introspectable.Introspect", nil, false},
		} {
			err := call(tc.who, name, tc.method, tc.args...)
			if (err == nil) != tc.allowed {
				t.Errorf("%s calling %s on %s: %v, want allowed=%v", tc.who, tc.method, name, err, tc.allowed)
			}
		}
	}
}
