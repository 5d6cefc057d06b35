package main

import (
	"flag"
	"fmt"
	"os"

	"nemod/homeagent"
	"nemod/router"
)

func runDaemon(role string, args []string) int {
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	path := fs.String("c", "/etc/config/nemod", "configuration file (UCI)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx := signalContext()
	var err error
	switch role {
	case "router":
		err = router.Run(ctx, *path, router.Options{NewForwarder: newRouterForwarder})
	default:
		err = homeagent.Run(ctx, *path, homeagent.Options{NewForwarder: newHAForwarder})
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "nemod %s: %v\n", role, err)
		return 1
	}
	return 0
}
