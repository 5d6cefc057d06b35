package twoends

import (
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"nemod/lab"
	"nemod/ubus/ubusd"
)

// Ubusd is a ubus broker (package ubusd) on a socket of the test's, for a
// router whose option ubus_socket names it.
type Ubusd struct {
	Path string
	t    testing.TB
	srv  *ubusd.Server
	// nobody: the next client to connect is taken for a user that is not
	// root (as ubusd would see a non-root process).
	nobody atomic.Bool
}

// Nobody is the identity NextIsNobody gives.
var Nobody = ubusd.Identity{User: "nobody", Group: "nemod", UID: 65534, GID: 65534}

// StartUbusd runs a broker on a socket in the test's directory; the test's
// cleanup closes it.
func (e *Ends) StartUbusd() *Ubusd {
	e.t.Helper()
	u := &Ubusd{Path: filepath.Join(e.Dir, "ubus.sock"), t: e.t}
	u.start()
	e.t.Cleanup(func() { u.srv.Close() })
	return u
}

func (u *Ubusd) start() {
	u.t.Helper()
	srv := ubusd.NewServer(nil)
	srv.Identify = func(net.Conn) (ubusd.Identity, error) {
		if u.nobody.Swap(false) {
			return Nobody, nil
		}
		return ubusd.Root, nil
	}
	l, err := ubusd.Listen(u.Path)
	if err != nil {
		u.t.Fatal(err)
	}
	u.srv = srv
	go srv.Serve(l)
}

// Restart stops the broker and starts a new one on the same socket, as
// ubusd restarted by procd: every client is disconnected, and the objects
// are gone until their owners add them again.
func (u *Ubusd) Restart() {
	u.t.Helper()
	u.srv.Close()
	u.start()
}

// NextIsNobody makes the next client that connects a user other than
// root.
func (u *Ubusd) NextIsNobody() { u.nobody.Store(true) }

// Close stops the broker (ubusd going away).
func (u *Ubusd) Close() error { return u.srv.Close() }

// RouterUCIWith is the lab's router configuration with router options
// added to the router section and uplink sections replaced, when given,
// by uplinks.
func RouterUCIWith(sock, routerOpts, uplinks string) string {
	c := lab.RouterUCI(sock, "")
	head, tail, _ := strings.Cut(c, "config uplink 'wifi'")
	if uplinks == "" {
		uplinks = "config uplink 'wifi'" + tail
	}
	return head + routerOpts + uplinks
}
