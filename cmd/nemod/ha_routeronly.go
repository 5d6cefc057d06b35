//go:build routeronly

package main

// A routeronly build (the OpenWrt package: a router is never a home agent)
// has no home agent; it says so instead of starting one.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
)

// errNoHomeAgent is what the home agent's commands answer in this build.
var errNoHomeAgent = errors.New("this nemod is the router-only build; the home agent is in the full build (the Debian package, or make build)")

func runHomeAgent(context.Context, string) error { return errNoHomeAgent }

// printHomeAgentStatus cannot render a home agent's answer here; --json
// prints it raw.
func printHomeAgentStatus(io.Writer, json.RawMessage) error {
	return errors.New("a home agent's status needs the full build to render; add --json")
}
