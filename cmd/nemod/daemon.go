package main

import (
	"flag"
	"fmt"
	"os"

	"nemod/router"
)

func runDaemon(role string, args []string) int {
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	path := fs.String("c", "/etc/config/nemod", "configuration file (UCI)")
	profile := profileFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	stop, err := profile()
	if err != nil {
		fmt.Fprintf(os.Stderr, "nemod %s: %v\n", role, err)
		return 1
	}
	defer stop()
	ctx := signalContext()
	switch role {
	case "router":
		err = router.Run(ctx, *path, router.Options{})
	default:
		err = runHomeAgent(ctx, *path)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "nemod %s: %v\n", role, err)
		return 1
	}
	return 0
}
