package policy

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestDedup(t *testing.T) {
	d := NewDedup(4)
	a := udp(lanHost, remote, 1, 2).build()
	if d.Seen(1, a) {
		t.Error("first copy seen")
	}
	if !d.Seen(1, a) {
		t.Error("second copy not seen")
	}
	// The copy that came the other way may have crossed another number
	// of routers.
	b := slices.Clone(a)
	b[7] = 3
	if !d.Seen(1, b) {
		t.Error("copy with another hop limit not seen")
	}
	if d.Seen(2, a) {
		t.Error("flows are not independent")
	}
	c := slices.Clone(a)
	c[len(c)-1]++
	if d.Seen(1, c) {
		t.Error("a different packet was seen")
	}
	// The same octets and one more (link-layer padding a caller did not
	// strip) are another packet.
	if d.Seen(1, append(slices.Clone(a), 0)) {
		t.Error("a longer packet was seen")
	}
	for _, tc := range []uint8{0x10, 0x20} { // header octets count too
		e := slices.Clone(a)
		e[1] ^= tc
		if d.Seen(1, e) {
			t.Errorf("packet differing in octet 1 (%#x) was seen", tc)
		}
	}
	// The window of 4 holds c, a+0 and the two variants: a is gone, and
	// comes back in c's place.
	if d.Seen(1, a) {
		t.Error("a survived 4 newer packets")
	}
	if !d.Seen(1, a) {
		t.Error("a not remembered again")
	}
	if d.Seen(1, c) {
		t.Error("c survived 4 newer packets")
	}
	// Short inputs are hashed whole.
	if d.Seen(3, []byte{1, 2, 3}) || !d.Seen(3, []byte{1, 2, 3}) || d.Seen(3, []byte{1, 2, 4}) || d.Seen(3, nil) || !d.Seen(3, nil) {
		t.Error("short packets")
	}
}

func TestDedupForget(t *testing.T) {
	d := NewDedup(8)
	a := udp(lanHost, remote, 1, 2).build()
	d.Seen(5, a)
	d.Forget(5)
	if d.Seen(5, a) {
		t.Error("forgotten flow remembered")
	}
}

// With Tick, a packet is a duplicate only of one seen in this period or
// the one before: a retransmission a while later goes through.
func TestDedupTick(t *testing.T) {
	d := NewDedup(64)
	a := udp(lanHost, remote, 1, 2).build()
	d.Seen(1, a)
	d.Tick()
	if !d.Seen(1, a) {
		t.Error("copy in the next period not seen")
	}
	d.Tick()
	d.Tick()
	if d.Seen(1, a) {
		t.Error("packet two periods old taken for a duplicate")
	}
	if !d.Seen(1, a) {
		t.Error("the retransmission itself was not remembered")
	}
}

// Against a plain model: the window holds the last `window` packets that
// were not duplicates. A small window and a pool of three times as many
// packets make the set's probe runs collide and wrap, which exercises
// removal.
func TestDedupModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, window := range []int{1, 2, 3, 7, 16} {
		d := NewDedup(window)
		pool := make([][]byte, 3*window+1)
		for i := range pool {
			p := udp(lanHost, remote, uint16(i), 2)
			p.payload = []byte{byte(i)}
			pool[i] = p.build()
		}
		var model [][]byte
		for step := range 5000 {
			p := pool[rng.IntN(len(pool))]
			want := slices.ContainsFunc(model, func(q []byte) bool { return string(q) == string(p) })
			if !want {
				model = append(model, p)
				if len(model) > window {
					model = model[1:]
				}
			}
			if got := d.Seen(9, p); got != want {
				t.Fatalf("window %d, step %d: Seen %v, want %v", window, step, got, want)
			}
		}
	}
}

func TestDedupWindowBounds(t *testing.T) {
	if d := NewDedup(0); d.window != 1 {
		t.Errorf("window 0 became %d", d.window)
	}
	if d := NewDedup(1 << 30); d.window != MaxDedupWindow || int(d.mask)+1 < 2*MaxDedupWindow {
		t.Errorf("huge window became %d, set %d", d.window, d.mask+1)
	}
}
