package nemo

import "testing"

func TestProbe(t *testing.T) {
	for _, p := range []Probe{{Seq: 7}, {Reply: true, Seq: 65535}} {
		b := p.Append(nil)
		if len(b) != ProbeLen || b[0]>>4 != 0 {
			t.Fatalf("% x", b)
		}
		f, err := ParseUDPPayload(b)
		if err != nil || f.Version != 0 {
			t.Fatalf("not told apart from IP: %+v %v", f, err)
		}
		got, err := ParseProbe(b)
		if err != nil || got != p {
			t.Fatalf("%+v %v", got, err)
		}
	}
	for _, b := range [][]byte{nil, {1, 0, 0}, {3, 0, 0, 0, 0, 0, 0, 0}} {
		if _, err := ParseProbe(b); err == nil {
			t.Errorf("accepted % x", b)
		}
	}
}
