package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nemod/internal/testenv"
	"nemod/lab"
	"nemod/status"
)

// dpkgRoot is an empty root for dpkg --root (its scripts run without
// chroot, with DPKG_ROOT set), which leaves this machine's own dpkg
// database and /etc alone; do runs dpkg on it and fails the test on an
// error.
func dpkgRoot(t *testing.T) (root string, do func(args ...string)) {
	t.Helper()
	testenv.NeedRoot(t)
	dpkg := testenv.NeedTool(t, "dpkg", "systemd-sysusers")
	root = t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		os.WriteFile(filepath.Join(root, f), nil, 0o644)
	}
	return root, func(args ...string) {
		t.Helper()
		// Depends (adduser, nftables) are not in the empty root.
		cmd := exec.Command(dpkg, append([]string{"--root=" + root, "--force-script-chrootless", "--force-depends", "--log=/dev/null"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("dpkg %v: %v\n%s", args, err, out)
		}
	}
}

// TestDebDaemonsStartFromInstalledFiles: the .deb installed, its binary
// runs the home agent from the installed /etc/nemod/homeagent.conf
// unchanged, in the lab's home agent namespace (whose addresses the
// example uses), and the mobile router from the installed router.conf with
// only its LAN device changed to the lab's; each has its control socket
// where the configuration says, /run/nemod (the units' RuntimeDirectory,
// here a private /run of its own); `nemod ctl status` answers on both, the
// router registers both uplinks with the home agent, the home agent's
// default metrics listener answers; then dpkg removes the package.
func TestDebDaemonsStartFromInstalledFiles(t *testing.T) {
	b := packages(t)
	testenv.NeedTool(t, "unshare", "ip", "nft", "radvd", "conntrack", "ping")
	root, do := dpkgRoot(t)
	do("-i", debPath(b, b.dir))
	bin := filepath.Join(root, "usr/sbin/nemod")
	haConf := filepath.Join(root, "etc/nemod/homeagent.conf")
	mrConf := filepath.Join(t.TempDir(), "router.conf")
	installed := string(readFile(t, filepath.Join(root, "etc/nemod/router.conf")))
	if !strings.Contains(installed, "list lan 'eth1'") {
		t.Fatalf("the example router.conf has no list lan 'eth1':\n%s", installed)
	}
	os.WriteFile(mrConf, []byte(strings.Replace(installed, "list lan 'eth1'", "list lan '"+lab.MRLANDev+"'", 1)), 0o600)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := lab.New(ctx, lab.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// A private /run with /run/nemod in it, as systemd makes the units'
	// RuntimeDirectory; unshare and sh exec the daemon, so the pid is its.
	start := func(role, name, conf string) *lab.Proc {
		t.Helper()
		script := fmt.Sprintf("mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -m 0750 /run/nemod && exec %s %s -c %s", bin, name, conf)
		p, err := l.Start(role, name, "unshare", "--mount", "sh", "-c", script)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				log, _ := os.ReadFile(p.LogPath())
				t.Logf("--- %s ---\n%s", name, log)
			}
		})
		return p
	}
	// The socket in the daemon's own /run, reached through its root.
	ctl := func(p *lab.Proc, sock string, out any) error {
		cmd := exec.Command(bin, "ctl", "-s", fmt.Sprintf("/proc/%d/root%s", p.Pid(), sock), "status", "--json")
		o, err := cmd.Output()
		if err != nil {
			return err
		}
		return json.Unmarshal(o, out)
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 15 s", what)
			}
		}
	}
	ha := start(lab.HA, "homeagent", haConf)
	var hs status.HomeAgent
	wait("the installed home agent's ctl status", func() bool { return ctl(ha, "/run/nemod/homeagent.sock", &hs) == nil })
	if hs.Role != status.RoleHomeAgent || hs.Address != lab.HA6.String() {
		t.Fatalf("home agent status: %+v", hs)
	}
	mr := start(lab.MR, "router", mrConf)
	var ms status.Router
	wait("the installed router registered on both uplinks", func() bool {
		if ctl(mr, "/run/nemod/router.sock", &ms) != nil || len(ms.Bindings) != 2 {
			return false
		}
		return ms.Bindings[0].State == status.StateRegistered && ms.Bindings[1].State == status.StateRegistered
	})
	wait("car1's two bindings at the home agent", func() bool {
		return ctl(ha, "/run/nemod/homeagent.sock", &hs) == nil && len(hs.MobileRouters) == 1 && len(hs.MobileRouters[0].Bindings) == 2
	})
	addr, _, err := l.Forward(lab.HA, "[::1]:9110")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `nemod_bindings{state="registered"} 2`) {
		t.Errorf("the home agent's default listener: %d\n%s", resp.StatusCode, body)
	}
	for _, p := range []*lab.Proc{mr, ha} {
		if err := p.Stop(); err != nil {
			t.Errorf("stopping: %v", err)
		}
	}
	do("-r", "nemod")
	if _, err := os.Stat(bin); err == nil {
		t.Error("dpkg -r left the binary")
	}
}
