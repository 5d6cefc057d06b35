package dbusapi

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// DefaultSystemBusAddress is where the system bus listens when
// DBUS_SYSTEM_BUS_ADDRESS does not say otherwise (the D-Bus
// specification's default).
const DefaultSystemBusAddress = "unix:path=/var/run/dbus/system_bus_socket"

// SystemBusAddress is the system bus's address: DBUS_SYSTEM_BUS_ADDRESS
// when set, else the default.
func SystemBusAddress() string {
	if a := os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"); a != "" {
		return a
	}
	return DefaultSystemBusAddress
}

// SystemBusAvailable reports whether something accepts connections at the
// system bus's address now. It is what `option dbus` defaults to: on a
// server with a system bus the API is there, on an OpenWrt router (ubus,
// no D-Bus) it stays off without a word.
func SystemBusAvailable() bool {
	targets, err := dialTargets(SystemBusAddress())
	if err != nil {
		return false
	}
	for _, t := range targets {
		c, err := net.DialTimeout(t.network, t.address, time.Second)
		if err == nil {
			c.Close()
			return true
		}
	}
	return false
}

type dialTarget struct{ network, address string }

// dialTargets lists the sockets a D-Bus server address names: unix (path
// or abstract) and tcp ones; other transports are skipped, and an address
// with none that can be dialled is an error.
func dialTargets(addr string) ([]dialTarget, error) {
	var out []dialTarget
	for _, one := range strings.Split(addr, ";") {
		if one == "" {
			continue
		}
		transport, rest, ok := strings.Cut(one, ":")
		if !ok {
			return nil, fmt.Errorf("dbus address %q has no transport", one)
		}
		kv := map[string]string{}
		for _, pair := range strings.Split(rest, ",") {
			if pair == "" {
				continue
			}
			k, v, ok := strings.Cut(pair, "=")
			if !ok {
				return nil, fmt.Errorf("dbus address %q: %q is not key=value", one, pair)
			}
			uv, err := url.PathUnescape(v)
			if err != nil {
				return nil, fmt.Errorf("dbus address %q: %v", one, err)
			}
			kv[k] = uv
		}
		switch transport {
		case "unix":
			if p := kv["path"]; p != "" {
				out = append(out, dialTarget{"unix", p})
			} else if a := kv["abstract"]; a != "" {
				out = append(out, dialTarget{"unix", "@" + a})
			}
		case "tcp":
			if kv["host"] != "" && kv["port"] != "" {
				out = append(out, dialTarget{"tcp", net.JoinHostPort(kv["host"], kv["port"])})
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("dbus address %q names no unix or tcp socket", addr)
	}
	return out, nil
}
