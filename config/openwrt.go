package config

import "strings"

// The options of an OpenWrt router, where ubus and netifd run the network:
//
//	config router 'main'
//		option ubus_socket '/var/run/ubus/ubus.sock'
//		option netifd_interface 'nemo'
//	config uplink 'cell'
//		option interface 'wwan'
//		option bid '2'
//
// load.go calls these before each section's finish(), so that their
// options count as known.

// Defaults of the OpenWrt options.
const (
	// DefaultUbusSocket is where OpenWrt's ubusd listens. The daemon
	// uses it when it exists at start, and works as on any Linux when it
	// does not.
	DefaultUbusSocket = "/var/run/ubus/ubus.sock"
	// DefaultNetifdInterface is the netifd interface (proto 'nemo') the
	// router reports its tunnel to.
	DefaultNetifdInterface = "nemo"
)

// OpenWrt is the router section's ubus and netifd options.
type OpenWrt struct {
	// UbusSocket is option ubus_socket: ubusd's socket; "" (option
	// 'off') never connects.
	UbusSocket string
	// NetifdInterface is option netifd_interface: the netifd interface
	// the tunnel is reported to; "" (option 'off') reports nothing.
	NetifdInterface string
	// LanRAUnset: the file has no option lan_ra, and the daemon decides:
	// off where netifd runs the LAN (odhcpd advertises the prefixes it
	// assigns), on elsewhere.
	LanRAUnset bool
}

// HasInterfaceUplinks reports whether an uplink follows a netifd
// interface (option interface), which needs ubus.
func (r *Router) HasInterfaceUplinks() bool {
	for _, u := range r.Uplinks {
		if u.Interface != "" {
			return true
		}
	}
	return false
}

func isOff(v string) bool {
	switch strings.ToLower(v) {
	case "0", "off", "no", "false", "disabled":
		return true
	}
	return false
}

// uciName reports what is wrong with s as a UCI section name, which is
// what netifd names its interfaces by ("" if nothing).
func uciName(s string) string {
	if s == "" {
		return "a netifd interface name cannot be empty"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return show(s) + " is not a netifd interface name (letters, digits and '_', as in /etc/config/network)"
		}
	}
	return ""
}

// openWrt reads the router section's OpenWrt options.
func (x *section) openWrt(r *Router) OpenWrt {
	o := OpenWrt{UbusSocket: DefaultUbusSocket, NetifdInterface: DefaultNetifdInterface,
		LanRAUnset: x.s.Option("lan_ra") == nil}
	if v, opt, ok := x.scalar("ubus_socket"); ok {
		switch {
		case isOff(v):
			o.UbusSocket = ""
		case socketPath(v) != "":
			x.errorf(opt, "%s, or 'off'", socketPath(v))
		default:
			o.UbusSocket = v
		}
	}
	if v, opt, ok := x.scalar("netifd_interface"); ok {
		switch {
		case isOff(v):
			o.NetifdInterface = ""
		case uciName(v) != "":
			x.errorf(opt, "%s, or 'off'", uciName(v))
		default:
			o.NetifdInterface = v
		}
	}
	return o
}

// uplinkInterface reads an uplink's option interface; it reports whether
// the option is there (then option device is not required).
func (x *section) uplinkInterface(u *Uplink) bool {
	v, opt, ok := x.scalar("interface")
	if opt == nil {
		return false
	}
	switch {
	case !ok:
	case x.s.Option("device") != nil:
		x.errorf(opt, "an uplink has option device or option interface, not both (option device is at line %d)",
			x.s.Option("device").Line)
	case uciName(v) != "":
		x.errorf(opt, "%s", uciName(v))
	default:
		u.Interface = v
	}
	return true
}

// checkUplinkInterface checks an uplink's netifd interface against the
// router section and the uplinks before it.
func (d *decoder) checkUplinkInterface(x *section, u *Uplink, r *Router) {
	if u.Interface == "" {
		return
	}
	opt := x.s.Option("interface")
	switch {
	case r.OpenWrt.UbusSocket == "":
		x.errorf(opt, "netifd is followed over ubus, and the router section's option ubus_socket is 'off'")
	case u.Interface == r.OpenWrt.NetifdInterface:
		x.errorf(opt, "%s is the tunnel's own netifd interface (option netifd_interface), not an uplink", show(u.Interface))
	default:
		for _, o := range r.Uplinks {
			if o.Interface == u.Interface {
				x.errorf(opt, "%s is already the interface of uplink %s (line %d)", show(u.Interface), quote(o.Name), o.Line)
				return
			}
		}
	}
}

// diffOpenWrt records the OpenWrt options of the router section that
// changed; none is reloadable (the ubus connection, the netifd follower
// and the router advertisements start with the daemon).
func diffOpenWrt(opt func(string, bool), o, n OpenWrt) {
	opt("ubus_socket", o.UbusSocket != n.UbusSocket)
	opt("netifd_interface", o.NetifdInterface != n.NetifdInterface)
	opt("lan_ra", o.LanRAUnset != n.LanRAUnset)
}
