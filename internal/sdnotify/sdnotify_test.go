package sdnotify

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listen plays systemd: a unixgram socket at addr, and NOTIFY_SOCKET
// pointing at it.
func listen(t *testing.T, addr string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", addr)
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := c.ReadFromUnix(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestStatesReachThePathSocket(t *testing.T) {
	c := listen(t, filepath.Join(t.TempDir(), "notify"))
	for _, tc := range []struct {
		send func() error
		want string
	}{
		{Ready, "READY=1"},
		{Stopping, "STOPPING=1"},
		{Watchdog, "WATCHDOG=1"},
		{func() error { return Send("STATUS=2 bindings\nREADY=1") }, "STATUS=2 bindings\nREADY=1"},
	} {
		if err := tc.send(); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, c); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@nemod-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	c := listen(t, name)
	if err := Ready(); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, c); got != "READY=1" {
		t.Errorf("got %q", got)
	}
	// The name really is abstract: no file of that name appeared.
	if _, err := os.Stat(name); err == nil {
		t.Errorf("a file %q exists: the socket was not abstract", name)
	}
}

func TestReloadingCarriesTheMonotonicClock(t *testing.T) {
	c := listen(t, filepath.Join(t.TempDir(), "notify"))
	before := monotonicUsec()
	if err := Reloading(); err != nil {
		t.Fatal(err)
	}
	after := monotonicUsec()
	got := recv(t, c)
	lines := strings.Split(got, "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("got %q, want RELOADING=1 and MONOTONIC_USEC=", got)
	}
	usec, err := strconv.ParseUint(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if usec < before || usec > after || before == 0 {
		t.Errorf("MONOTONIC_USEC=%d, not within [%d, %d]", usec, before, after)
	}
}

func TestNoSocketSendsNothing(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := Ready(); err != nil {
		t.Errorf("Ready without NOTIFY_SOCKET: %v", err)
	}
}

func TestBadSocket(t *testing.T) {
	for _, s := range []string{"relative/path", "@"} {
		if err := send(s, "READY=1"); err == nil {
			t.Errorf("NOTIFY_SOCKET=%q accepted", s)
		}
	}
	// A path nobody listens on is an error the caller sees.
	if err := send(filepath.Join(t.TempDir(), "absent"), "READY=1"); err == nil {
		t.Error("sending to an absent socket succeeded")
	}
}

func TestWatchdogInterval(t *testing.T) {
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		err       bool
	}{
		{"", "", 0, false},
		{"10000000", "", 10 * time.Second, false},
		{"10000000", "42", 10 * time.Second, false},
		{"10000000", "43", 0, false}, // another process's watchdog
		{"abc", "", 0, true},
		{"0", "", 0, true},
		{"-5", "", 0, true},
		{"10000000", "x", 0, true},
		{"99999999999999999999", "", 0, true},
	} {
		got, err := watchdogInterval(tc.usec, tc.pid, 42)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("watchdogInterval(%q, %q) = %v, %v; want %v, error %v", tc.usec, tc.pid, got, err, tc.want, tc.err)
		}
	}
	t.Setenv("WATCHDOG_USEC", "2500000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	if d, err := WatchdogInterval(); err != nil || d != 2500*time.Millisecond {
		t.Errorf("WatchdogInterval() = %v, %v from the environment", d, err)
	}
}
