package hostnet

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/tun"
)

// TUN is the kernel's TUN device, with TCP/UDP segmentation offloads when
// the kernel has them (wireguard's implementation splits a 64 KB burst
// into packets on read and coalesces them again on write). It is the data
// plane's tunnel.Device.
type TUN struct {
	dev  tun.Device
	name string
}

// OpenTUN creates the TUN device (or takes over an existing one of that
// name) with the given MTU.
func OpenTUN(name string, mtu int) (*TUN, error) {
	dev, err := tun.CreateTUN(name, mtu)
	if err != nil {
		return nil, fmt.Errorf("TUN device %s: %w", name, err)
	}
	real, err := dev.Name()
	if err != nil {
		dev.Close()
		return nil, err
	}
	t := &TUN{dev: dev, name: real}
	// The device reports its own state changes; nobody needs them, but the
	// channel must be drained or the goroutine sending them blocks.
	go func() {
		for range dev.Events() {
		}
	}()
	return t, nil
}

// Name is the device's name.
func (t *TUN) Name() string { return t.name }

// BatchSize is how many packets one read can return.
func (t *TUN) BatchSize() int { return t.dev.BatchSize() }

// Read reads a batch of packets (see tun.Device).
func (t *TUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	return t.dev.Read(bufs, sizes, offset)
}

// Write writes a batch of packets (see tun.Device).
func (t *TUN) Write(bufs [][]byte, offset int) (int, error) { return t.dev.Write(bufs, offset) }

// SetMTU changes the device's MTU.
func (t *TUN) SetMTU(mtu int) error {
	if cur, err := t.dev.MTU(); err == nil && cur == mtu {
		return nil
	}
	return setLinkMTU(t.name, mtu)
}

// Close removes the device.
func (t *TUN) Close() error { return t.dev.Close() }

func setLinkMTU(name string, mtu int) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return netlink.LinkSetMTU(l, mtu)
}
