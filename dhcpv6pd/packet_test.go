package dhcpv6pd

import (
	"bytes"
	"testing"
)

func TestIPv6UDPRoundTrip(t *testing.T) {
	for _, payload := range [][]byte{{}, {1}, {1, 2, 3}, bytes.Repeat([]byte{0xff}, 301)} {
		p := IPv6UDP(mrPort, haPort, 64, payload)
		src, dst, got, err := ParseIPv6UDP(p)
		if err != nil || src != mrPort || dst != haPort || !bytes.Equal(got, payload) || p[7] != 64 {
			t.Fatalf("%x: %v %v %x %v", payload, src, dst, got, err)
		}
		p[len(p)-1] ^= 1
		if len(payload) > 0 {
			if _, _, _, err := ParseIPv6UDP(p); err == nil {
				t.Fatal("bad checksum accepted")
			}
		}
	}
}

func FuzzParseIPv6UDP(f *testing.F) {
	f.Add(IPv6UDP(mrPort, haPort, 64, []byte{1, 2, 3}))
	f.Fuzz(func(t *testing.T, p []byte) {
		src, dst, payload, err := ParseIPv6UDP(p)
		if err != nil {
			return
		}
		if again := IPv6UDP(src, dst, p[7], payload); !bytes.Equal(again[4:], p[4:len(again)]) {
			t.Fatalf("round trip\n% x\n% x", p, again)
		}
	})
}
