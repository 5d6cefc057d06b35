package lab

import (
	"io"
	"net"
	"sync"
)

// Forward makes a TCP service inside a role's namespace (target, such as
// the home agent's "[::1]:9110") reachable from the caller's namespace: it
// returns a loopback address here whose connections are relayed to target,
// dialled from inside the namespace. A browser or a scraper outside the
// lab reaches the daemon this way, and the daemon sees a loopback peer.
// Stop ends the relay and its connections; Close stops it too.
func (l *Lab) Forward(role, target string) (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	var (
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		once  sync.Once
	)
	track := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if conns == nil {
			c.Close()
			return false
		}
		conns[c] = struct{}{}
		return true
	}
	stop = func() {
		once.Do(func() {
			ln.Close()
			mu.Lock()
			for c := range conns {
				c.Close()
			}
			conns = nil
			mu.Unlock()
		})
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				var up net.Conn
				if err := l.InNS(role, func() (err error) { up, err = net.Dial("tcp", target); return err }); err != nil {
					c.Close()
					return
				}
				if !track(c) || !track(up) {
					c.Close()
					up.Close()
					return
				}
				go func() { io.Copy(up, c); up.Close() }()
				io.Copy(c, up)
				c.Close()
			}()
		}
	}()
	l.mu.Lock()
	l.forwards = append(l.forwards, stop)
	l.mu.Unlock()
	return ln.Addr().String(), stop, nil
}
