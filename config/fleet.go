package config

import (
	"fmt"
	"time"
)

// Options of a home agent serving a fleet, and of its routers: binding
// revocation (RFC 5846) and the routes announced to the operator's
// network.
//
//	config router
//		option revoked_holdoff '60'	# seconds a revoked binding waits
//	config homeagent
//		option route_table '100'	# kernel table of the registered routes

// Defaults of the fleet options.
const (
	DefaultRevokedHoldoff = 60 * time.Second
	// MainRouteTable is the kernel's main table (RT_TABLE_MAIN), where the
	// routes of registered routers go unless route_table says otherwise.
	MainRouteTable = 254
)

// routerFleet reads the router's fleet options.
func (x *section) routerFleet(r *Router) {
	r.RevokedHoldoff = DefaultRevokedHoldoff
	if d, _, ok := parsed(x, "revoked_holdoff", func(v string) (time.Duration, string) {
		return interval(v, time.Second, 24*time.Hour)
	}); ok {
		r.RevokedHoldoff = d
	}
}

// homeAgentFleet reads the home agent's fleet options.
func (x *section) homeAgentFleet(h *HomeAgent) {
	h.RouteTable = MainRouteTable
	if n, _, ok := parsed(x, "route_table", func(v string) (int, string) {
		// 0 is RT_TABLE_UNSPEC and 253..255 are the kernel's own default,
		// main and local tables: main is the default, the others are not
		// meant for routes a routing daemon exports.
		t, ok := uintIn(v, 1, 1<<32-1)
		switch {
		case !ok:
			return 0, fmt.Sprintf("%s is not a routing table number (1..4294967295)", show(v))
		case t == 253 || t == 255:
			return 0, fmt.Sprintf("%d is a kernel table of its own (default or local)", t)
		}
		return int(t), ""
	}); ok {
		h.RouteTable = n
	}
}
