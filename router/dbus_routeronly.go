//go:build routeronly

package router

import "nemod/status"

// The router-only build (OpenWrt) leaves D-Bus out: OpenWrt has ubus, and
// godbus would cost the binary half a megabyte.
func busAvailable() bool { return false }

func startBus(func() (status.Reload, error), func(string, ...any)) routerBus { return nil }
