//go:build !routeronly

package main

// The home agent's parts of the command. A routeronly build (the OpenWrt
// package) leaves them out, and with them the homeagent package.

import (
	"context"

	"nemod/homeagent"
)

func runHomeAgent(ctx context.Context, path string) error {
	return homeagent.Run(ctx, path, homeagent.Options{})
}
