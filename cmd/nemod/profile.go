//go:build !routeronly

package main

import (
	"flag"
	"os"
	"runtime/pprof"
)

// profileFlag adds -cpuprofile, for developers measuring the daemons (the
// benchmarks pass it). The router-only build leaves it out: the profiler
// and its compressor cost a router's flash about 100 KB.
func profileFlag(fs *flag.FlagSet) func() (stop func(), err error) {
	path := fs.String("cpuprofile", "", "write a CPU profile to this file (for developers)")
	return func() (func(), error) {
		if *path == "" {
			return func() {}, nil
		}
		f, err := os.Create(*path)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, err
		}
		return func() { pprof.StopCPUProfile(); f.Close() }, nil
	}
}
