package netio

import (
	"sync"

	"golang.org/x/sys/unix"
)

// UDPSegmentation reports whether the running kernel segments UDP sends
// (UDP_SEGMENT, Linux 4.18 and later), which the fast encapsulation
// needs: a router or home agent offers it to its peer only then. The
// answer does not change while the kernel runs.
var UDPSegmentation = sync.OnceValue(func() bool {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
		if err != nil {
			return false
		}
	}
	defer unix.Close(fd)
	_, err = unix.GetsockoptInt(fd, unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	return err == nil
})
