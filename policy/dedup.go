package policy

import (
	"encoding/binary"
	"hash/maphash"
)

// Dedup lets the receiving end of a duplicate policy deliver each packet
// once: it remembers, per flow, the last few packets it delivered.
//
// A packet is known by a 64-bit hash of every octet of the inner packet
// but the hop limit (IPv6) or the time to live and header checksum (IPv4),
// which the two paths may leave different, and by its length. The hash is maphash rather than FNV-1a or a multiply-xorshift:
// it is keyed per process, so no one outside can compute it to craft a
// packet that collides with a genuine one still to come, and it is the
// runtime's hash, about 12 times faster than FNV-1a on 1280 octets here.
//
// Windows count packets, not time, because the package reads no clock. On a
// quiet flow a sender's own identical retransmission (a DNS query retried
// with the same ID and port) can fall inside the window and be dropped;
// callers that mind call Tick on a timer, and a packet is then a duplicate
// only of one seen since the Tick before last.
//
// A Dedup is not safe for concurrent use. Both copies of a packet must
// reach the same Dedup, so one per uplink reader would not do: hold a lock
// around Seen, Tick and Forget, or give each goroutine a share of the FIDs
// and a Dedup of its own.
type Dedup struct {
	window int
	mask   uint64 // of each flow's set
	seed   maphash.Seed
	gen    uint32
	flows  map[uint16]*flowWindow
}

// flowWindow holds one flow's recent packets: a ring in arrival order, for
// eviction, and an open-addressing set of ring positions, for lookup.
type flowWindow struct {
	ring []seenPacket
	next int // ring position the next packet takes
	full bool
	set  []uint32 // ring position + 1; 0 is empty. Linear probing.
}

type seenPacket struct {
	sum uint64
	n   uint32
	gen uint32
}

// MaxDedupWindow is the largest window NewDedup accepts.
const MaxDedupWindow = 1 << 16

// NewDedup returns a Dedup that remembers the last window packets of each
// flow; window is clamped to 1..MaxDedupWindow. Each flow costs 24 to 32
// octets per packet of window, allocated on its first packet.
func NewDedup(window int) *Dedup {
	window = max(1, min(window, MaxDedupWindow))
	size := 2 // a set at most half full keeps probe sequences short
	for size < 2*window {
		size *= 2
	}
	return &Dedup{window: window, mask: uint64(size - 1), seed: maphash.MakeSeed(), flows: make(map[uint16]*flowWindow)}
}

// Seen reports whether pkt, an inner IPv6 or IPv4 packet, was already seen recently
// in flow fid, and remembers it. Any FID will do, 0 included, as long as
// both copies of a packet are given the same one.
func (d *Dedup) Seen(fid uint16, pkt []byte) bool {
	sum, n := d.sum(pkt), uint32(len(pkt))
	w := d.flows[fid]
	if w == nil {
		w = &flowWindow{ring: make([]seenPacket, d.window), set: make([]uint32, d.mask+1)}
		d.flows[fid] = w
	}
	for i := sum & d.mask; w.set[i] != 0; i = (i + 1) & d.mask {
		e := &w.ring[w.set[i]-1]
		if e.sum != sum || e.n != n {
			continue
		}
		if d.gen-e.gen <= 1 {
			return true
		}
		// Seen too long ago to be the other copy: this is a new
		// packet. It keeps its old ring position, so it is forgotten a
		// little early, which only risks a late duplicate.
		e.gen = d.gen
		return false
	}
	if w.full {
		d.remove(w, w.next)
	}
	w.ring[w.next] = seenPacket{sum: sum, n: n, gen: d.gen}
	i := sum & d.mask
	for w.set[i] != 0 {
		i = (i + 1) & d.mask
	}
	w.set[i] = uint32(w.next) + 1
	if w.next++; w.next == len(w.ring) {
		w.next, w.full = 0, true
	}
	return false
}

// remove takes ring position pos out of the set, moving later members of
// its probe run back so that no lookup stops short at the hole.
func (d *Dedup) remove(w *flowWindow, pos int) {
	i := w.ring[pos].sum & d.mask
	for w.set[i] != uint32(pos)+1 {
		i = (i + 1) & d.mask
	}
	for j := i; ; {
		j = (j + 1) & d.mask
		s := w.set[j]
		if s == 0 {
			break
		}
		// The member at j may fill the hole at i unless its home slot
		// lies cyclically in (i, j].
		home := w.ring[s-1].sum & d.mask
		if (j-home)&d.mask >= (j-i)&d.mask {
			w.set[i] = s
			i = j
		}
	}
	w.set[i] = 0
}

func (d *Dedup) sum(pkt []byte) uint64 {
	if len(pkt) < 8 {
		return maphash.Bytes(d.seed, pkt)
	}
	if pkt[0]>>4 == 4 && len(pkt) >= 20 {
		// IPv4: the time to live, and the header checksum that follows
		// it, left out as IPv6's hop limit is; the protocol octet between
		// them goes through the mix with the first 8 octets.
		h := binary.BigEndian.Uint64(pkt)
		return maphash.Bytes(d.seed, pkt[12:]) ^ mix64(h) ^ mix64(uint64(pkt[9])|1<<63)
	}
	// The tail through the keyed hash; the first 8 octets, hop limit
	// cleared, through a bijective mix, so that packets differing only
	// there never collide.
	h := binary.BigEndian.Uint64(pkt) &^ 0xff
	return maphash.Bytes(d.seed, pkt[8:]) ^ mix64(h)
}

// mix64 is a bijection of 64-bit words that spreads each input bit over
// the whole output (the finaliser of SplitMix64).
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// Tick ends a period for every flow: from now on a packet is a duplicate
// only of one seen in this period or the one before. Call it at about the
// largest delay difference between the uplinks, a few hundred milliseconds.
func (d *Dedup) Tick() { d.gen++ }

// Forget drops a flow's window, when its flow binding is removed.
func (d *Dedup) Forget(fid uint16) { delete(d.flows, fid) }
