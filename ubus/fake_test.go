package ubus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"nemod/ubus/ubusvec"
)

// fakeUbusd plays the recorded ubusd side of one connection to a client on
// the other end of a net.Pipe: it writes each recorded s2c frame once every
// c2s frame recorded before it has arrived, and checks that each frame the
// client sends is the next recorded c2s frame, byte for byte. Every id the
// client uses comes from the replayed frames, so nothing is normalised.
//
// Answers the client makes by itself (the completion of an event, a
// subscriber's answer to a notification, an error for a call no handler
// takes) may come earlier or later relative to the client's own requests
// than in the recording: libubus holds back incoming messages while it
// waits for an answer and handles them later, this client handles them at
// once. Those frames ("auto") must still come, byte for byte, after what
// they answer and in the recorded order among themselves.
type fakeUbusd struct {
	t      testing.TB
	name   string
	frames []ubusvec.Frame
	plan   []step
	conn   net.Conn
	client net.Conn

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every step
	pos     int           // index of the next frame to play
	err     error
	extra   [][]byte // frames the client sent after the recording ended
	done    chan struct{}
	dialed  bool
}

func newFake(t testing.TB, name string, frames []ubusvec.Frame, plan []step) *fakeUbusd {
	a, b := net.Pipe()
	f := &fakeUbusd{t: t, name: name, frames: frames, plan: plan, conn: a, client: b,
		changed: make(chan struct{}), done: make(chan struct{})}
	go f.run()
	return f
}

// dial is the client's Options.Dial: one connection, then none.
func (f *fakeUbusd) dial(ctx context.Context) (io.ReadWriteCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dialed {
		return nil, errors.New("fake ubusd: only one connection")
	}
	f.dialed = true
	return f.client, nil
}

func (f *fakeUbusd) step(fn func()) {
	f.mu.Lock()
	fn()
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

func (f *fakeUbusd) run() {
	defer close(f.done)
	auto := f.nextAuto(0)
	// match takes one frame from the client: the explicit frame at pos,
	// or the next auto frame if what it answers has been sent.
	match := func(pos int, b []byte) bool {
		if pos < len(f.frames) && bytes.Equal(b, f.frames[pos].Bytes) {
			return true
		}
		if auto < len(f.frames) && f.plan[auto].cause < pos && bytes.Equal(b, f.frames[auto].Bytes) {
			auto = f.nextAuto(auto + 1)
			return false
		}
		got := "?"
		if m, err := ParseMessage(b); err == nil {
			got = fmt.Sprintf("%s seq=%d peer=%#08x %d attrs", m.Type, m.Seq, m.Peer, len(m.Attrs))
		}
		want := "nothing more"
		if pos < len(f.frames) {
			want = fmt.Sprintf("%x (%s)", f.frames[pos].Bytes, summarize(f.frames[pos].Note))
		}
		if auto < len(f.frames) {
			want += fmt.Sprintf(" or, answering frame %d, frame %d: %x", f.plan[auto].cause+1, auto+1, f.frames[auto].Bytes)
		}
		f.step(func() { f.err = fmt.Errorf("frame %d: client sent\n%x (%s)\nrecorded\n%s", pos+1, b, got, want) })
		return false
	}
	for {
		f.mu.Lock()
		pos, n, failed := f.pos, len(f.frames), f.err != nil
		f.mu.Unlock()
		if failed {
			return
		}
		if pos >= n {
			break
		}
		fr := f.frames[pos]
		switch {
		case !fr.C2S:
			if _, err := f.conn.Write(fr.Bytes); err != nil {
				f.step(func() { f.err = fmt.Errorf("frame %d: writing: %w", pos+1, err) })
				return
			}
			f.step(func() { f.pos++ })
			continue
		case f.plan[pos].kind == stepAuto:
			f.step(func() { f.pos++ })
			continue
		}
		f.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := ReadFrame(f.conn)
		if err != nil {
			f.step(func() { f.err = fmt.Errorf("frame %d: waiting for %s: %w", pos+1, summarize(fr.Note), err) })
			return
		}
		if match(pos, b) {
			f.step(func() { f.pos++ })
		}
	}
	// The recording's own frames are done; the auto ones still missing
	// must come, then nothing.
	for auto < len(f.frames) {
		f.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := ReadFrame(f.conn)
		if err != nil {
			f.step(func() {
				f.err = fmt.Errorf("frame %d (answering frame %d) never came: %w", auto+1, f.plan[auto].cause+1, err)
			})
			return
		}
		if match(len(f.frames), b) {
			return
		}
		f.mu.Lock()
		failed := f.err != nil
		f.mu.Unlock()
		if failed {
			return
		}
	}
	f.step(func() { f.pos = len(f.frames) + 1 })
	f.conn.SetReadDeadline(time.Time{})
	for {
		b, err := ReadFrame(f.conn)
		if err != nil {
			return
		}
		f.step(func() { f.extra = append(f.extra, b) })
	}
}

func (f *fakeUbusd) nextAuto(from int) int {
	for from < len(f.frames) && (!f.frames[from].C2S || f.plan[from].kind != stepAuto) {
		from++
	}
	return from
}

// waitPos blocks until the fake has played every frame before k (so it
// waits for frame k, or has ended); false if it failed first.
func (f *fakeUbusd) waitPos(k int) bool {
	deadline := time.After(5 * time.Second)
	for {
		f.mu.Lock()
		pos, err, ch := f.pos, f.err, f.changed
		f.mu.Unlock()
		if err != nil {
			return false
		}
		if pos >= k {
			return true
		}
		select {
		case <-ch:
		case <-deadline:
			f.step(func() {
				if f.err == nil {
					f.err = fmt.Errorf("timed out waiting to reach frame %d (at %d)", k+1, pos+1)
				}
			})
			return false
		}
	}
}

// finish closes the client side and reports what went wrong.
func (f *fakeUbusd) finish(c *Client) {
	f.t.Helper()
	ok := f.waitPos(len(f.frames) + 1)
	if c != nil {
		c.Close()
		<-c.Done()
	} else {
		f.client.Close()
	}
	f.conn.Close()
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	if !ok || f.err != nil {
		f.t.Errorf("%s: %v", f.name, f.err)
	}
	for _, b := range f.extra {
		f.t.Errorf("%s: client sent a frame after the recording ended: %x", f.name, b)
	}
}

func summarize(note string) string {
	if len(note) > 160 {
		return note[:160] + "..."
	}
	return note
}
