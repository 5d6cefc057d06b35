package main

import (
	"testing"
	"time"
)

// The datagrams the lab lost with a 0x0000 checksum (found in captures):
// their checksums really do compute to zero, and their neighbours' not.
func TestZeroChecksum(t *testing.T) {
	for _, c := range []struct {
		id   uint16
		up   bool
		port int
		seq  uint64
		want bool
	}{
		{2, true, dupPort, 60558, true},
		{3, false, dupPort, 60557, true},
		{0, true, streamPort, 60760, true},
		{1, false, streamPort, 60759, true},
		{2, true, dupPort, 60557, false},
		{0, true, streamPort, 60761, false},
	} {
		s := &stream{id: c.id, up: c.up, port: c.port}
		if got := s.zeroChecksum(c.seq); got != c.want {
			t.Errorf("stream %d seq %d: zero checksum %v, want %v", c.id, c.seq, got, c.want)
		}
	}
}

// A stream that stops for 100 ms at the fault, loses those datagrams and
// comes back: the gap, the losses and their spread; a late burst of the
// sender's shows as its pause.
func TestMeasureStream(t *testing.T) {
	ms := int64(time.Millisecond)
	s := &stream{}
	tr := trial{fault: 1000 * time.Millisecond, undo: 2000 * time.Millisecond, end: 3000 * time.Millisecond}
	for seq := int64(0); seq < 3000; seq++ {
		s.sent = append(s.sent, seq*ms)
		arrived := seq*ms + ms/2
		if seq >= 1000 && seq < 1100 {
			arrived = 0
		}
		s.recv = append(s.recv, arrived)
	}
	r := measureStream(s, arrivals(s), tr)
	if r.gap != 101*time.Millisecond || r.lost != 100 || r.spread != 100*time.Millisecond || r.retLost != 0 {
		t.Errorf("gap %v lost %d spread %v retLost %d", r.gap, r.lost, r.spread, r.retLost)
	}
	if r.base != time.Millisecond || r.senderPause != time.Millisecond {
		t.Errorf("steady gap %v, sender pause %v", r.base, r.senderPause)
	}
	if r.gapEnd != 1100*time.Millisecond+time.Millisecond/2 {
		t.Errorf("gap ends at %v", r.gapEnd)
	}
}
