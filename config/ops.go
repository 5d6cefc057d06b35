package config

import (
	"net/netip"
	"strings"
)

// Ops are the operations options both roles' sections take: the D-Bus
// service, the Prometheus listener and, on the home agent, the fleet
// page's token.
//
//	config homeagent 'main'
//		option dbus '1'
//		option metrics_listen '[::1]:9110'
//		option web_token 'a long random string'
type Ops struct {
	// DBus is option dbus: DBusAuto (absent) publishes on the system bus
	// when one answers at start, which a Debian server has and an OpenWrt
	// router (ubus) does not.
	DBus Toggle
	// DBusLine is option dbus's line (0 when absent).
	DBusLine int
	// MetricsListen is option metrics_listen: where /metrics (and the home
	// agent's fleet page) are served; invalid when off. The router has it
	// off unless set; the home agent has it on at DefaultMetricsListen
	// unless set to 'off'.
	MetricsListen netip.AddrPort
	// WebToken is option web_token (home agent): the fleet page wants it
	// from every client; empty: it answers loopback clients only.
	WebToken string
}

// Toggle is an on/off option whose absence leaves the choice to the
// daemon.
type Toggle uint8

const (
	Auto Toggle = iota
	On
	Off
)

func (t Toggle) String() string {
	switch t {
	case On:
		return "1"
	case Off:
		return "0"
	}
	return "auto"
}

// Defaults of the operations options.
const (
	DefaultMetricsPort = 9110
	// Web tokens travel in URLs and headers: printable, no spaces, and
	// long enough not to be guessed.
	minWebToken = 16
	maxWebToken = 256
)

// DefaultMetricsListen is where the home agent serves /metrics and the
// fleet page unless option metrics_listen says otherwise: loopback, so
// that nothing is exposed until an administrator chooses.
var DefaultMetricsListen = netip.AddrPortFrom(netip.IPv6Loopback(), DefaultMetricsPort)

// ops reads the operations options of a router or homeagent section.
func (x *section) ops(role Role) Ops {
	o := Ops{}
	if v, opt, ok := parsed(x, "dbus", boolean); ok {
		o.DBus, o.DBusLine = Off, opt.Line
		if v {
			o.DBus = On
		}
	}
	if role == RoleHomeAgent {
		o.MetricsListen = DefaultMetricsListen
	}
	if v, opt, ok := x.scalar("metrics_listen"); ok {
		switch strings.ToLower(v) {
		case "0", "off", "no", "false", "disabled":
			o.MetricsListen = netip.AddrPort{}
		default:
			if ap, msg := listenPort(v, DefaultMetricsPort); msg != "" {
				x.errorf(opt, "%s, or 'off'", msg)
			} else {
				o.MetricsListen = ap
			}
		}
	}
	if role == RoleHomeAgent {
		if v, opt, ok := x.scalar("web_token"); ok {
			switch {
			case len(v) < minWebToken || len(v) > maxWebToken:
				x.errorf(opt, "a token of %d characters; it needs %d to %d (make one with: od -An -tx1 -N16 /dev/urandom | tr -d ' \\n')",
					len(v), minWebToken, maxWebToken)
			case strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r > '~' }):
				x.errorf(opt, "the token has a space or a character that is not printable ASCII")
			default:
				o.WebToken = v
			}
		}
	}
	return o
}

// diffOps records the operations options of a section that changed; none
// is reloadable (the bus connection and the listener are made at start).
func (d *differ) diffOps(typ string, line int, old, new Ops) {
	d.option(typ, "", line, "dbus", old.DBus != new.DBus)
	d.option(typ, "", line, "metrics_listen", old.MetricsListen != new.MetricsListen)
	if typ == "homeagent" {
		d.option(typ, "", line, "web_token", old.WebToken != new.WebToken)
	}
}
