package lab

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// CleanupOnSignal is for commands: on SIGINT or SIGTERM it closes the lab
// and exits with status 130. The returned stop undoes it.
func CleanupOnSignal(l *Lab) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			l.logf("lab %s: %v: tearing down", l.prefix, sig)
			if err := l.Close(); err != nil {
				l.logf("lab %s: %v", l.prefix, err)
			}
			os.Exit(130)
		case <-done:
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
		})
	}
}
