package aaa

import (
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkFreeRADIUS measures Access-Request/Access-Accept round trips
// per second against a local FreeRADIUS (the same machine: both share its
// cores), with a given number of requests in flight, through the whole
// client: queue, engine, sockets, checks and decoding. It reports the rate
// and the CPU each side spends per thousand authorizations.
func BenchmarkFreeRADIUS(b *testing.B) {
	srv := startFreeRADIUS(b)
	for _, inflight := range []int{1, 16, 64, 256} {
		b.Run("inflight="+strconv.Itoa(inflight), func(b *testing.B) {
			c, err := NewClient(Config{Servers: []netip.AddrPort{srv.auth6()}, Secret: srv.secret, NAS: testNAS, Timeout: 2 * time.Second, Retries: 2, MaxPending: inflight})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := AccessRequest{NAI: "car9@fleet.example"}
			srvCPU0, selfCPU0 := procCPU(srv.pid()), selfCPU()
			b.ResetTimer()
			sent, done := 0, 0
			for sent < min(inflight, b.N) {
				if err := c.Submit(req); err != nil {
					b.Fatal(err)
				}
				sent++
			}
			for done < b.N {
				r := <-c.Results()
				done++
				if r.Err != nil || r.Auth == nil {
					b.Fatalf("result %d: %v", done, r.Err)
				}
				if sent < b.N {
					if err := c.Submit(req); err != nil {
						b.Fatal(err)
					}
					sent++
				}
			}
			b.StopTimer()
			el := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N)/el, "auths/s")
			b.ReportMetric((procCPU(srv.pid())-srvCPU0).Seconds()*1e6/float64(b.N), "radiusd-cpu-µs/auth")
			b.ReportMetric((selfCPU()-selfCPU0).Seconds()*1e6/float64(b.N), "client-cpu-µs/auth")
			if s := c.Stats(); s.Servers[0].Retransmissions != 0 {
				b.Logf("%d retransmissions", s.Servers[0].Retransmissions)
			}
		})
	}
}

// procCPU reads the user and system time of a process from /proc.
func procCPU(pid int) time.Duration {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// Fields after the command (which may hold spaces) in parentheses.
	rest := string(data[strings.LastIndexByte(string(data), ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clkTck
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkParseAccessResponse is the client's CPU per Access-Accept:
// framing, both authenticators, decryption and decoding.
func BenchmarkParseAccessResponse(b *testing.B) {
	req := testRequest(b, 7)
	resp := response(b, req, 2, testSecret, true, fullAccept(b))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseAccessResponse(resp, req, testSecret, false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeAccessRequest(b *testing.B) {
	var auth [16]byte
	r := AccessRequest{NAI: "car9@fleet.example"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeAccessRequest(&r, &testNAS, 1, &auth, testSecret); err != nil {
			b.Fatal(err)
		}
	}
}
