package main

import (
	"fmt"
	"log"
	"net"
	"net/netip"
	"os/exec"
	"strings"

	"nemod/internal/freerad"
	"nemod/lab"
)

// The RADIUS case: no mobile_router section; FreeRADIUS, in the home
// agent's namespace on the same cores, knows every router, and the home
// agent authorizes each on its first Binding Update (the authorization
// cache cold), then takes the second uplink's with the router installed.

const radiusPort = 18120

// benchT stands in for a test for package freerad: a failure ends the
// benchmark, cleanups run at the end.
type benchT struct {
	cleanups []func()
	failed   bool
}

func (b *benchT) Helper()                   {}
func (b *benchT) Fatal(args ...any)         { b.failed = true; b.done(); log.Fatal(args...) }
func (b *benchT) Fatalf(f string, a ...any) { b.failed = true; b.done(); log.Fatalf(f, a...) }
func (b *benchT) Logf(f string, a ...any)   { log.Printf(f, a...) }
func (b *benchT) Cleanup(f func())          { b.cleanups = append(b.cleanups, f) }
func (b *benchT) Failed() bool              { return b.failed }

func (b *benchT) done() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
	b.cleanups = nil
}

// radiusUsers is a users file with every router: its home address,
// prefix, key and SPI.
func radiusUsers(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "r%d@bench Auth-Type := Accept\n\tFramed-IPv6-Address = %s,\n\tDelegated-IPv6-Prefix = %s,\n\tSession-Timeout = 3600,\n\tTunnel-Password:1 = \"%x\",\n\tTunnel-Client-Auth-ID:1 = \"%d\"\n\n",
			i, hoa(i), mnp(i), key(i), 1000+i)
	}
	b.WriteString("DEFAULT Auth-Type := Reject\n")
	return b.String()
}

// startRadius runs FreeRADIUS in the namespace and returns the radius
// section for the home agent.
func startRadius(bt *benchT, ns string, n int) string {
	srv := freerad.Start(bt, freerad.Options{
		Users: radiusUsers(n), Port: radiusPort,
		Exec: func(name string, args ...string) *exec.Cmd {
			return exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
		},
		Dial: func(a netip.AddrPort) (c net.Conn, err error) {
			err = lab.InNamespace(ns, func() error {
				c, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(a))
				return err
			})
			return c, err
		},
	})
	return fmt.Sprintf("config radius 'aaa'\n\toption server '%s'\n\toption secret '%s'\n\toption timeout '2s'\n", srv.Auth6(), srv.Secret)
}
