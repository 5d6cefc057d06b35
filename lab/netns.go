package lab

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// InNamespace runs f on an OS thread switched into the named network
// namespace (as `ip netns add` names it), so that the sockets and netlink
// handles f opens live there while the rest of the process stays where
// it is. A socket keeps its namespace after the thread leaves.
func InNamespace(name string, f func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	h, err := netns.GetFromName(name)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("into namespace %s: %w", name, err)
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		// The thread stays locked: the runtime then retires it with the
		// goroutine instead of running other goroutines in the namespace.
		return fmt.Errorf("back from namespace %s: %w", name, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// InNS is InNamespace for one of the lab's roles.
func (l *Lab) InNS(role string, f func() error) error {
	return InNamespace(l.NS(role), f)
}
