// Package procstat reports what a daemon holds, for its status output:
// goroutines and open file descriptors, so that leaks after many
// handovers show up in `nemod ctl status` (UMIP's users met exactly that).
package procstat

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"nemod/status"
)

// Read returns the daemon's own resource counts.
func Read() status.Runtime {
	s := status.Runtime{Goroutines: runtime.NumGoroutine()}
	// The names only, unsorted: os.ReadDir's sort and file information
	// would cost the router's binary 10 KB to count.
	if d, err := os.Open("/proc/self/fd"); err == nil {
		names, err := d.Readdirnames(-1)
		d.Close()
		if err == nil {
			s.FDs = len(names) // the one reading them included, as before
		}
	}
	return s
}

// ReadMemory collects garbage and reports the memory in use: `nemod ctl
// memstats`, after a collection that returns freed memory to the system,
// so that figures per binding measure what is kept, not what waits to be
// collected.
func ReadMemory() status.Memory {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return status.Memory{HeapInuse: ms.HeapInuse, Sys: ms.Sys, RSS: rss()}
}

// rss reads the resident set size from /proc/self/status.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
