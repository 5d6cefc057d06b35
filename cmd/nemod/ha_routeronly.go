//go:build routeronly

package main

// A routeronly build (the OpenWrt package: a router is never a home agent)
// has no home agent; it says so instead of starting one.

import (
	"context"
	"errors"
)

// errNoHomeAgent is what the home agent's commands answer in this build.
var errNoHomeAgent = errors.New("this nemod is the router-only build; the home agent is in the full build (the Debian package, or make build)")

func runHomeAgent(context.Context, string) error { return errNoHomeAgent }
