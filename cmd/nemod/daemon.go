package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/pprof"

	"nemod/router"
)

func runDaemon(role string, args []string) int {
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	path := fs.String("c", "/etc/config/nemod", "configuration file (UCI)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile to this file (for developers)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "nemod %s: %v\n", role, err)
			return 1
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	ctx := signalContext()
	var err error
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
