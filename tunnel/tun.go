package tunnel

import (
	"os"

	"nemod/header"
	"nemod/netio"
)

// tunOffset is the headroom before each packet in TUN buffers: the kernel's
// TUN device writes its virtio-net header there (10 octets).
const tunOffset = 16

// maxPacket is the largest packet a buffer holds: a 64 KB offload burst.
const maxPacket = 65535

// tunReader reads packets in batches; one goroutine owns it.
type tunReader struct {
	dev   Device
	bufs  [][]byte
	sizes []int
}

func newTunReader(dev Device) *tunReader {
	n := dev.BatchSize()
	r := &tunReader{dev: dev, bufs: make([][]byte, n), sizes: make([]int, n)}
	for i := range r.bufs {
		r.bufs[i] = make([]byte, tunOffset+maxPacket)
	}
	return r
}

// read returns the next batch of packets (each a slice of a buffer that
// the next read overwrites).
func (r *tunReader) read(out [][]byte) ([][]byte, error) {
	n, err := r.dev.Read(r.bufs, r.sizes, tunOffset)
	out = out[:0]
	for i := 0; i < n; i++ {
		p := r.bufs[i][tunOffset : tunOffset+r.sizes[i]]
		// The device completed the checksums of an offloaded burst when it
		// split it, writing a zero sum as 0x0000.
		header.FixZeroUDPChecksum(p)
		out = append(out, p)
	}
	if err != nil && n == 0 {
		if isClosed(err) {
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
	dev   Device
	full  [][]byte // the buffers at full capacity
	bufs  [][]byte
	n     int
	drops *Drops
}

func newTunWriter(dev Device, n int, drops *Drops) *tunWriter {
	w := &tunWriter{dev: dev, full: make([][]byte, n), bufs: make([][]byte, n), drops: drops}
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
	if _, err := w.dev.Write(w.bufs[:w.n], tunOffset); err != nil && !isClosed(err) {
		w.drops.Add(DropTunError)
	}
	w.n = 0
}

func isClosed(err error) bool { return netio.IsClosed(err) }
