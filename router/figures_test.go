package router_test

import (
	"testing"
	"time"

	"nemod/internal/promtest"
)

// TestProbeFiguresReachMetrics: the figures the liveness probes give (each
// binding's RTT and loss, the failovers) move in the status and reach the
// Prometheus scrape, which reads the same status: a black-holed Wi-Fi
// shows loss and then a failover, none of them before.
func TestProbeFiguresReachMetrics(t *testing.T) {
	e, addr := registeredWithMetrics(t)
	scrape := func() map[string]float64 {
		code, text := get(t, "http://"+addr+"/metrics")
		if code != 200 {
			t.Fatalf("scrape: %d %s", code, text)
		}
		promtest.Check(t, text)
		return promtest.Parse(t, text)
	}
	const (
		rtt      = "nemod_binding_rtt_seconds{bid=1,uplink=wifi}"
		loss     = "nemod_binding_probe_loss_ratio{bid=1,uplink=wifi}"
		failover = "nemod_failovers_total{}"
	)
	e.Eventually(3*time.Second, "the Wi-Fi's RTT in the scrape", func() bool {
		m := scrape()
		return m[rtt] > 0 && m[rtt] < 1
	})
	s := e.MRStatus()
	if m := scrape(); s.Bindings[0].RTTms <= 0 || s.Bindings[0].Loss != 0 || s.Counters.Failovers != 0 || m[loss] != 0 || m[failover] != 0 {
		t.Fatalf("a healthy Wi-Fi: status %+v %+v, scrape loss %v failovers %v", s.Bindings[0], s.Counters, m[loss], m[failover])
	}
	e.Wifi.SetBlackhole(true)
	e.Eventually(5*time.Second, "loss and a failover in the status and the scrape", func() bool {
		s := e.MRStatus()
		m := scrape()
		return s.Bindings[0].Loss > 0 && s.Counters.Failovers == 1 && m[loss] > 0 && m[failover] == 1
	})
}
