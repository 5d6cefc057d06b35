package tunnel

import (
	"errors"
	"fmt"
	"os"

	"golang.zx2c4.com/wireguard/tun"
)

// tunOffset is the headroom before each packet in TUN buffers: the TUN
// device writes its virtio-net header there (10 octets).
const tunOffset = 16

// maxPacket is the largest packet a buffer holds: a 64 KB offload burst.
const maxPacket = 65535

// TUN is the data plane's TUN device, with TCP/UDP segmentation offloads
// when the kernel has them.
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

// SetMTU changes the device's MTU.
func (t *TUN) SetMTU(mtu int) error {
	if cur, err := t.dev.MTU(); err == nil && cur == mtu {
		return nil
	}
	return setLinkMTU(t.name, mtu)
}

// Close removes the device.
func (t *TUN) Close() error { return t.dev.Close() }

// tunReader reads packets in batches; one goroutine owns it.
type tunReader struct {
	t     *TUN
	bufs  [][]byte
	sizes []int
}

func newTunReader(t *TUN) *tunReader {
	n := t.BatchSize()
	r := &tunReader{t: t, bufs: make([][]byte, n), sizes: make([]int, n)}
	for i := range r.bufs {
		r.bufs[i] = make([]byte, tunOffset+maxPacket)
	}
	return r
}

// read returns the next batch of packets (each a slice of a buffer that
// the next read overwrites).
func (r *tunReader) read(out [][]byte) ([][]byte, error) {
	n, err := r.t.dev.Read(r.bufs, r.sizes, tunOffset)
	out = out[:0]
	for i := 0; i < n; i++ {
		p := r.bufs[i][tunOffset : tunOffset+r.sizes[i]]
		fixZeroUDPChecksum(p)
		out = append(out, p)
	}
	if err != nil && n == 0 {
		if errors.Is(err, os.ErrClosed) {
			return out, os.ErrClosed
		}
		// A burst the reader could not split (e.g. more segments than
		// buffers) is lost; the next read goes on.
		return out, err
	}
	return out, nil
}

// tunWriter collects packets and writes them in one batch, letting the TUN
// device coalesce TCP segments again (GRO); one goroutine owns it.
type tunWriter struct {
	t     *TUN
	full  [][]byte // the buffers at full capacity
	bufs  [][]byte
	n     int
	drops *Drops
}

func newTunWriter(t *TUN, n int, drops *Drops) *tunWriter {
	w := &tunWriter{t: t, full: make([][]byte, n), bufs: make([][]byte, n), drops: drops}
	for i := range w.full {
		// Room to coalesce up to a 64 KB burst into the first of a run.
		w.full[i] = make([]byte, tunOffset+maxPacket)
	}
	return w
}

// add queues a copy of pkt.
func (w *tunWriter) add(pkt []byte) {
	if w.n == len(w.bufs) {
		w.flush()
	}
	b := w.full[w.n]
	w.bufs[w.n] = b[:tunOffset+copy(b[tunOffset:], pkt)]
	w.n++
}

// flush writes what was queued.
func (w *tunWriter) flush() {
	if w.n == 0 {
		return
	}
	if _, err := w.t.dev.Write(w.bufs[:w.n], tunOffset); err != nil && !errors.Is(err, os.ErrClosed) {
		w.drops.TunErrors.Add(1)
	}
	w.n = 0
}

// fixZeroUDPChecksum corrects a UDP checksum the TUN reader completed for
// an offloaded packet: when the sum comes to zero it writes 0x0000, but
// over IPv6 a zero checksum is not allowed and receivers drop the datagram
// (RFC 8200 §8.1); the same sum is sent as 0xffff. About one datagram in
// 65,536 sums to zero, deterministically by content.
func fixZeroUDPChecksum(p []byte) {
	if len(p) >= 48 && p[0]>>4 == 6 && p[6] == 17 && p[46] == 0 && p[47] == 0 {
		p[46], p[47] = 0xff, 0xff
	}
}
