package metrics

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"nemod/internal/promtest"
	"nemod/status"
)

func routerSnapshot() status.Router {
	return status.Router{
		Role: status.RoleRouter, HomeAddress: "2001:db8:1::10", HomeAgent: "2001:db8:1::1",
		MNP: []string{"2001:db8:100::/64"}, Uptime: 3600,
		Bindings: []status.Binding{
			{BID: 1, Uplink: "wifi", Device: "wlan0", CoA: "2001:db8:a::2", Encap: "ip6ip6", State: status.StateRegistered,
				Lifetime: 240, RTTms: 12.5, Loss: 0.1, Traffic: status.Traffic{TxPackets: 10, TxBytes: 15000, RxPackets: 20, RxBytes: 1 << 40}},
			{BID: 2, Uplink: `cell "lte"`, Device: "wwan0", CoA: "198.51.100.7", Encap: "udp", State: status.StateDown,
				Traffic: status.Traffic{TxPackets: 1, TxBytes: 100}},
		},
		Counters: status.Counters{Sent: 50, Received: 48, Accepted: 47, Deregistrations: 1, Retransmits: 2, Expired: 0,
			Probes: 900, DeadPaths: 3, Failovers: 3, QueueDropped: 4, RateLimited: 0,
			Rejected: map[string]uint64{"not_home_subnet": 1}, Ignored: map[string]uint64{"bad_checksum": 2, "unknown\nodd": 1}},
		DataPlane: status.DataPlane{Backend: "userspace", Kernel: "none", Device: "nemo0", MTU: 1400,
			Drops: map[string]uint64{"no_binding": 5, "too_big": 0, "queue_full": 7}, DropsV4: map[string]uint64{"no_binding": 2}},
		Runtime: status.Runtime{Goroutines: 12, FDs: 9},
		IPv4: &status.RouterIPv4{HomeAddress: "10.199.0.1", MNP: []string{"10.201.5.0/24"},
			DHCP: &status.DHCPv4Leases{Interface: "lan0", Range: "10.201.5.0/24", Active: 3}},
	}
}

func homeAgentSnapshot() status.HomeAgent {
	return status.HomeAgent{
		Role: status.RoleHomeAgent, Address: "2001:db8:1::1", AddressV4: "192.0.2.1", HomePrefix: "2001:db8:1::/64", Uptime: 7200,
		MobileRouters: []status.MobileRouter{
			{Name: "car1", HomeAddress: "2001:db8:1::10", Bindings: []status.Binding{
				{BID: 1, CoA: "2001:db8:a::2", State: status.StateRegistered, Traffic: status.Traffic{TxBytes: 1000, TxPackets: 10, RxBytes: 2000, RxPackets: 20}},
				{BID: 2, CoA: "198.51.100.7", State: status.StateRegistering, Traffic: status.Traffic{TxBytes: 5, TxPackets: 1, RxBytes: 7, RxPackets: 1}},
			}},
			{Name: "bus2", HomeAddress: "2001:db8:1::20", Bindings: []status.Binding{
				{BID: 1, CoA: "2001:db8:b::2", State: status.StateRegistering},
			}},
			{Name: "van3", HomeAddress: "2001:db8:1::30"},
		},
		Counters: status.Counters{Sent: 100, Received: 101, Accepted: 90,
			Rejected: map[string]uint64{"auth_failed": 4, "not_home_subnet": 6}},
		DataPlane: status.DataPlane{Backend: "userspace", Drops: map[string]uint64{"no_binding": 3}},
		PoolV4:    &status.PoolV4{Prefix: "10.200.0.0/16", Assigned: 2, Used: 514},
	}
}

func scrape(t *testing.T, source func() []Family) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, done := Serve(ln, source)
	defer func() {
		srv.Close()
		<-done
	}()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ContentType {
		t.Fatalf("scrape: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return string(body)
}

func TestRouterScrape(t *testing.T) {
	snap := routerSnapshot()
	reg, _ := NewHistogram(RegistrationBuckets)
	for _, v := range []float64{0.02, 0.03, 0.7, 40} {
		reg.Observe(v)
	}
	m := &Router{Registration: reg}
	if got := scrape(t, m.Families); got != "" {
		t.Fatalf("before the first Update: %q", got)
	}
	m.Update(snap)
	text := scrape(t, m.Families)
	promtest.Check(t, text)
	got := promtest.Parse(t, text)

	want := map[string]float64{
		"nemod_router_info{home_address=2001:db8:1::10,home_agent=2001:db8:1::1}": 1,
		"nemod_uptime_seconds{}":                                            3600,
		"nemod_failovers_total{}":                                           3,
		"nemod_binding_updates_sent_total{}":                                50,
		"nemod_binding_acks_received_total{}":                               48,
		"nemod_registrations_total{}":                                       47,
		"nemod_registration_rejections_total{reason=not_home_subnet}":       1,
		"nemod_retransmissions_total{}":                                     2,
		"nemod_probes_sent_total{}":                                         900,
		"nemod_dead_paths_total{}":                                          3,
		"nemod_deregistrations_total{}":                                     1,
		"nemod_signalling_queue_dropped_total{}":                            4,
		"nemod_signalling_ignored_total{reason=bad_checksum}":               2,
		"nemod_signalling_ignored_total{reason=unknown\nodd}":               1,
		"nemod_dataplane_drops_total{reason=no_binding}":                    5,
		"nemod_dataplane_drops_total{reason=too_big}":                       0,
		"nemod_dataplane_drops_total{reason=queue_full}":                    7,
		"nemod_dataplane_drops_ipv4_total{reason=no_binding}":               2,
		"nemod_router_ipv4_info{home_address=10.199.0.1,mnp=10.201.5.0/24}": 1,
		"nemod_dhcp4_leases{}":                                              3,
		"nemod_dataplane_mtu_bytes{}":                                       1400,
		"nemod_goroutines{}":                                                12,
		"nemod_open_fds{}":                                                  9,
		"nemod_registration_duration_seconds_bucket{le=0.025}":              1,
		"nemod_registration_duration_seconds_bucket{le=0.05}":               2,
		"nemod_registration_duration_seconds_bucket{le=1}":                  3,
		"nemod_registration_duration_seconds_bucket{le=30}":                 3,
		"nemod_registration_duration_seconds_bucket{le=+Inf}":               4,
		"nemod_registration_duration_seconds_count{}":                       4,
		"nemod_registration_duration_seconds_sum{}":                         0.02 + 0.03 + 0.7 + 40,
	}
	for _, b := range snap.Bindings {
		id := fmt.Sprintf("bid=%d,uplink=%s", b.BID, b.Uplink)
		want["nemod_binding_transmit_bytes_total{"+id+"}"] = float64(b.TxBytes)
		want["nemod_binding_transmit_packets_total{"+id+"}"] = float64(b.TxPackets)
		want["nemod_binding_receive_bytes_total{"+id+"}"] = float64(b.RxBytes)
		want["nemod_binding_receive_packets_total{"+id+"}"] = float64(b.RxPackets)
		want["nemod_binding_probe_loss_ratio{"+id+"}"] = b.Loss
		want["nemod_binding_lifetime_seconds{"+id+"}"] = float64(b.Lifetime)
		want[fmt.Sprintf("nemod_binding_info{bid=%d,coa=%s,device=%s,encap=%s,uplink=%s}", b.BID, b.CoA, b.Device, b.Encap, b.Uplink)] = 1
		for _, st := range States {
			want[fmt.Sprintf("nemod_binding_state{bid=%d,state=%s,uplink=%s}", b.BID, st, b.Uplink)] = b2f(st == b.State)
		}
	}
	want["nemod_binding_rtt_seconds{bid=1,uplink=wifi}"] = 0.0125
	promtest.Expect(t, got, want)
	// The binding with no answered probe has no RTT sample at all.
	if _, ok := got[`nemod_binding_rtt_seconds{bid=2,uplink=cell "lte"}`]; ok {
		t.Error("an RTT published for a binding whose probes never came back")
	}
	if got["nemod_binding_receive_bytes_total{bid=1,uplink=wifi}"] != 1<<40 {
		t.Error("a large counter lost precision")
	}

	// The next scrape shows the next snapshot.
	snap = routerSnapshot()
	snap.Bindings[0].State = status.StateDown
	snap.Bindings[0].TxBytes = 16000
	m.Update(snap)
	got = promtest.Parse(t, scrape(t, m.Families))
	promtest.Expect(t, got, map[string]float64{
		"nemod_binding_state{bid=1,state=down,uplink=wifi}":       1,
		"nemod_binding_state{bid=1,state=registered,uplink=wifi}": 0,
		"nemod_binding_transmit_bytes_total{bid=1,uplink=wifi}":   16000,
	})
}

func TestHomeAgentScrape(t *testing.T) {
	m := &HomeAgent{}
	m.Update(homeAgentSnapshot())
	text := scrape(t, m.Families)
	promtest.Check(t, text)
	got := promtest.Parse(t, text)
	promtest.Expect(t, got, map[string]float64{
		"nemod_mobile_routers{state=registered}":                      1, // car1
		"nemod_mobile_routers{state=registering}":                     1, // bus2
		"nemod_mobile_routers{state=down}":                            1, // van3, no binding
		"nemod_bindings{state=registered}":                            1,
		"nemod_bindings{state=registering}":                           2,
		"nemod_bindings{state=down}":                                  0,
		"nemod_mobile_router_bindings{router=car1}":                   2,
		"nemod_mobile_router_bindings{router=van3}":                   0,
		"nemod_mobile_router_transmit_bytes_total{router=car1}":       1005,
		"nemod_mobile_router_transmit_packets_total{router=car1}":     11,
		"nemod_mobile_router_receive_bytes_total{router=car1}":        2007,
		"nemod_mobile_router_receive_packets_total{router=car1}":      21,
		"nemod_mobile_router_receive_bytes_total{router=bus2}":        0,
		"nemod_binding_updates_received_total{}":                      101,
		"nemod_binding_acks_sent_total{}":                             100,
		"nemod_registrations_total{}":                                 90,
		"nemod_registration_rejections_total{reason=auth_failed}":     4,
		"nemod_registration_rejections_total{reason=not_home_subnet}": 6,
		"nemod_dataplane_drops_total{reason=no_binding}":              3,
		"nemod_uptime_seconds{}":                                      7200,
		"nemod_ipv4_pool_routers{}":                                   2,
		"nemod_ipv4_pool_used_addresses{}":                            514,
	})
	if _, ok := got["nemod_registration_duration_seconds_count{}"]; ok {
		t.Error("a histogram published that the daemon gave none of")
	}
}

// A request for another path is answered 404 and changes nothing.
func TestScrapeOtherPath(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, done := Serve(ln, func() []Family { return nil })
	defer func() { srv.Close(); <-done }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("GET / answered %d", resp.StatusCode)
	}
}

// A family the writer refuses makes the scrape a 500, not a partial body.
func TestScrapeRefusedFamilies(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, done := Serve(ln, func() []Family { return []Family{{Name: "x", Type: TypeCounter}} })
	defer func() { srv.Close(); <-done }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || !strings.Contains(string(body), "does not end in _total") {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}
