package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"
)

// watcher notes the other benchmarks this machine runs (the throughput
// one and its iperf3): they share the two cores and the timing of the
// traffic, so figures taken while they ran are marked disturbed.
type watcher struct {
	quit chan struct{}
	done chan struct{}

	mu   sync.Mutex
	seen []sighting
}

type sighting struct {
	at   time.Time
	what string
}

func startWatcher() *watcher {
	w := &watcher{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			for _, what := range otherBenchmarks() {
				w.mu.Lock()
				w.seen = append(w.seen, sighting{time.Now(), what})
				w.mu.Unlock()
			}
			select {
			case <-w.quit:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

func (w *watcher) stop() {
	close(w.quit)
	<-w.done
}

// during returns what was seen between from and to, each name once.
func (w *watcher) during(from, to time.Time) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, s := range w.seen {
		if !s.at.Before(from) && !s.at.After(to) && !slices.Contains(out, s.what) {
			out = append(out, s.what)
		}
	}
	return out
}

// otherBenchmarks scans /proc for iperf3, the throughput benchmark and
// another run of this one (not this process or the `go run` that started
// it).
func otherBenchmarks() []string {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self, parent := os.Getpid(), os.Getppid()
	var out []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || pid == parent {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		args := bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0})
		switch {
		case filepath.Base(string(args[0])) == "iperf3":
			out = append(out, "iperf3")
		case slices.ContainsFunc(args, func(a []byte) bool { return bytes.Contains(a, []byte("bench/throughput")) }):
			out = append(out, "bench/throughput")
		case slices.ContainsFunc(args, func(a []byte) bool { return bytes.Contains(a, []byte("bench/failover")) }),
			filepath.Base(string(args[0])) == "failover":
			out = append(out, "another bench/failover")
		}
	}
	return out
}
