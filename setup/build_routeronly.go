//go:build routeronly

package setup

import "nemod/config"

// buildFits checks the router's configuration against what this build
// has: the router-only build (OpenWrt, which has ubus) has no D-Bus.
func buildFits(r *config.Router) error {
	if r.Ops.DBus == config.On {
		return &config.Error{Path: r.Path, Line: r.Ops.DBusLine,
			Msg: "option dbus: this is the router-only build (OpenWrt), which has no D-Bus; OpenWrt's bus is ubus"}
	}
	return nil
}
