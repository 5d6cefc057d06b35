// Package procstat reports what a daemon holds, for its status output:
// goroutines and open file descriptors, so that leaks after many
// handovers show up in `nemod ctl status` (UMIP's users met exactly that).
package procstat

import (
	"os"
	"runtime"
)

// Stats are the daemon's own resource counts.
type Stats struct {
	Goroutines int `json:"goroutines"`
	FDs        int `json:"fds"`
}

// Read returns the current counts.
func Read() Stats {
	s := Stats{Goroutines: runtime.NumGoroutine()}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		s.FDs = len(ents)
	}
	return s
}
