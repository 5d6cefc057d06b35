package ubusd

import (
	"encoding/binary"
	"testing"

	"nemod/ubus"
	"nemod/ubus/ubusvec"
)

// FuzzBroker feeds two clients' worth of arbitrary messages to a broker:
// it never panics, and everything it sends is a well-formed message. The
// input is a list of frames, each preceded by a byte naming the client
// (even: the first, odd: the second).
func FuzzBroker(f *testing.F) {
	for _, dir := range []string{"ubus", "netifd"} {
		scs, err := ubusvec.Load("../testdata/" + dir)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range ubusvec.Files(scs) {
			var in []byte
			for _, fr := range file.Frames {
				if fr.C2S {
					in = append(append(in, 0), fr.Bytes...)
				}
			}
			f.Add(in)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		b := New(nil)
		var ids [2]uint32
		for i := range ids {
			var out []Output
			ids[i], out = b.Connect(Root)
			checkOutputs(t, out)
		}
		for len(in) >= 13 {
			who := ids[in[0]&1]
			n, err := ubus.FrameLen(in[1:])
			if err != nil || n > len(in)-1 {
				// What ubusd would hang up on: a bad length.
				checkOutputs(t, b.Disconnect(who))
				return
			}
			checkOutputs(t, b.Handle(who, in[1:1+n]))
			in = in[1+n:]
		}
		for _, id := range ids {
			checkOutputs(t, b.Disconnect(id))
		}
		if st := b.Stats(); st.Clients != 0 || st.Objects != 0 {
			t.Fatalf("after every client left: %+v", st)
		}
	})
}

func checkOutputs(t *testing.T, out []Output) {
	t.Helper()
	for _, o := range out {
		if _, err := ubus.ParseMessage(o.Frame); err != nil {
			t.Fatalf("broker sent a malformed message %x: %v", o.Frame, err)
		}
		if binary.BigEndian.Uint32(o.Frame[8:])&0xffffff > ubus.MaxMessageLen {
			t.Fatalf("broker sent an oversized message")
		}
	}
}
