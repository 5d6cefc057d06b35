// Package sdnotify tells systemd about a service's state through the
// notification socket systemd passes in $NOTIFY_SOCKET (sd_notify(3)):
// ready, reloading, stopping, and watchdog keep-alives.
//
// Every function is a no-op returning nil when $NOTIFY_SOCKET is unset, so
// a daemon can call them unconditionally: outside systemd (procd on
// OpenWrt, a shell, a test) nothing is sent.
package sdnotify

import (
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The states, as sd_notify(3) spells them.
const (
	stateReady     = "READY=1"
	stateReloading = "RELOADING=1"
	stateStopping  = "STOPPING=1"
	stateWatchdog  = "WATCHDOG=1"
)

// Ready says the service finished starting (Type=notify), or finished
// reloading after Reloading.
func Ready() error { return Send(stateReady) }

// Reloading says the service started re-reading its configuration; send
// Ready when done. MONOTONIC_USEC goes with it because systemd 253 and
// later require it for Type=notify-reload; older ones ignore it.
func Reloading() error {
	return Send(stateReloading + "\nMONOTONIC_USEC=" + strconv.FormatUint(monotonicUsec(), 10))
}

// Stopping says the service began shutting down (before de-registering,
// which may take a while).
func Stopping() error { return Send(stateStopping) }

// Watchdog is the keep-alive systemd expects at least every
// WatchdogInterval when the unit sets WatchdogSec.
func Watchdog() error { return Send(stateWatchdog) }

// WatchdogInterval is the watchdog timeout systemd set for this process
// (WatchdogSec), or 0 when there is none. Send Watchdog at half of it, as
// sd_watchdog_enabled(3) advises. A WATCHDOG_PID naming another process
// means the timeout is not ours (the variable was inherited).
func WatchdogInterval() (time.Duration, error) {
	return watchdogInterval(os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID"), os.Getpid())
}

func watchdogInterval(usec, pid string, self int) (time.Duration, error) {
	if usec == "" {
		return 0, nil
	}
	if pid != "" {
		p, err := strconv.Atoi(pid)
		if err != nil || p <= 0 {
			return 0, errors.New("sdnotify: WATCHDOG_PID is not a process id: " + strconv.Quote(pid))
		}
		if p != self {
			return 0, nil
		}
	}
	n, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || n == 0 {
		return 0, errors.New("sdnotify: WATCHDOG_USEC is not a positive number of microseconds: " + strconv.Quote(usec))
	}
	if n > uint64(1<<63-1)/uint64(time.Microsecond) {
		return 0, errors.New("sdnotify: WATCHDOG_USEC is out of range: " + usec)
	}
	return time.Duration(n) * time.Microsecond, nil
}

// Send sends one notification (newline-separated VAR=VALUE assignments)
// to $NOTIFY_SOCKET. It returns nil without sending when the variable is
// unset.
func Send(state string) error {
	return send(os.Getenv("NOTIFY_SOCKET"), state)
}

func send(socket, state string) error {
	if socket == "" {
		return nil
	}
	addr, err := socketAddr(socket)
	if err != nil {
		return err
	}
	c, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	// One datagram: systemd reads each message whole.
	_, err = c.Write([]byte(state))
	return err
}

// socketAddr accepts what systemd puts in $NOTIFY_SOCKET: an absolute path
// or an abstract socket name written with a leading '@'. (The Go runtime
// turns a leading '@' into the NUL byte of an abstract address.)
func socketAddr(s string) (*net.UnixAddr, error) {
	switch {
	case strings.HasPrefix(s, "/"), strings.HasPrefix(s, "@") && len(s) > 1:
		return &net.UnixAddr{Name: s, Net: "unixgram"}, nil
	}
	return nil, errors.New("sdnotify: NOTIFY_SOCKET is neither an absolute path nor an @abstract name: " + strconv.Quote(s))
}

func monotonicUsec() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return uint64(ts.Sec)*1e6 + uint64(ts.Nsec)/1e3
}
