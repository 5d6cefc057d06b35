package router_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"nemod/dbusapi"
	"nemod/internal/dbustest"
	"nemod/internal/promtest"
	"nemod/internal/twoends"
	"nemod/lab"
	"nemod/status"
)

// withOps is the lab's router configuration with options added to its
// router section.
func withOps(sock, opts string) string {
	const at = "option lifetime '600'"
	return strings.Replace(lab.RouterUCI(sock, ""), at, at+"\n\t"+opts, 1)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// registeredWithMetrics runs both ends, the router with its metrics
// listener (and no D-Bus), until it is registered, and returns the
// listener's address.
func registeredWithMetrics(t *testing.T) (*twoends.Ends, string) {
	t.Helper()
	e := twoends.New(t, "")
	e.WriteRouterConfig(withOps(e.MRSock, "option metrics_listen '[::1]:9110'\n\toption dbus '0'"))
	e.Start()
	e.Registered()
	addr := e.HTTP(&e.MRHTTP)
	if addr == "" {
		t.Fatal("no metrics listener")
	}
	return e, addr
}

// TestMetricsAgreeWithStatus: the running router's scrape passes promtool
// and says what `ctl status` says: the same bindings in the same states,
// counters no lower than the status before the scrape and no higher than
// the one after it, and a registration latency for each accepted Binding
// Update. With metrics_listen absent there is no listener.
func TestMetricsAgreeWithStatus(t *testing.T) {
	e, addr := registeredWithMetrics(t)
	before := e.MRStatus()
	code, text := get(t, "http://"+addr+"/metrics")
	after := e.MRStatus()
	if code != 200 {
		t.Fatalf("scrape: %d %s", code, text)
	}
	promtest.Check(t, text)
	got := promtest.Parse(t, text)
	want := map[string]float64{
		fmt.Sprintf("nemod_router_info{home_address=%s,home_agent=%s}", before.HomeAddress, before.HomeAgent): 1,
		"nemod_registrations_total{}": float64(before.Counters.Accepted),
	}
	for _, b := range before.Bindings {
		want[fmt.Sprintf("nemod_binding_info{bid=%d,coa=%s,device=%s,encap=%s,uplink=%s}", b.BID, b.CoA, b.Device, b.Encap, b.Uplink)] = 1
		want[fmt.Sprintf("nemod_binding_state{bid=%d,state=registered,uplink=%s}", b.BID, b.Uplink)] = 1
		want[fmt.Sprintf("nemod_binding_state{bid=%d,state=down,uplink=%s}", b.BID, b.Uplink)] = 0
	}
	promtest.Expect(t, got, want)
	for name, c := range map[string]func(status.Router) uint64{
		"nemod_binding_updates_sent_total{}":                      func(s status.Router) uint64 { return s.Counters.Sent },
		"nemod_binding_acks_received_total{}":                     func(s status.Router) uint64 { return s.Counters.Received },
		"nemod_probes_sent_total{}":                               func(s status.Router) uint64 { return s.Counters.Probes },
		"nemod_binding_transmit_packets_total{bid=1,uplink=wifi}": func(s status.Router) uint64 { return s.Bindings[0].TxPackets },
	} {
		if v, ok := got[name]; !ok || v < float64(c(before)) || v > float64(c(after)) {
			t.Errorf("%s = %v, status says %d before and %d after", name, v, c(before), c(after))
		}
	}
	if n := got["nemod_registration_duration_seconds_count{}"]; n < 2 || n > float64(after.Counters.Accepted) {
		t.Errorf("%v registration latencies for %d registrations", n, after.Counters.Accepted)
	}
	if got["nemod_registration_duration_seconds_sum{}"] <= 0 {
		t.Error("registrations took no time")
	}

	// The carrier goes: the next scrape says so.
	e.Wifi.SetUp(false)
	e.Eventually(2*time.Second, "the scrape shows Wi-Fi down", func() bool {
		_, text := get(t, "http://"+addr+"/metrics")
		return strings.Contains(text, `nemod_binding_state{uplink="wifi",bid="1",state="down"} 1`)
	})

	e2 := twoends.New(t, "")
	e2.Start()
	if a := e2.HTTP(&e2.MRHTTP); a != "" {
		t.Errorf("the router listens at %s without metrics_listen", a)
	}
}

// TestDBus: the router on a real bus (a private dbus-daemon configured
// like the system bus with our policy): busctl reads its uplinks, a
// carrier loss is signalled at once, root's Reload is the daemon's reload
// and nobody's is refused before it reaches the daemon.
func TestDBus(t *testing.T) {
	b := dbustest.Start(t)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", b.Address)
	e := twoends.New(t, "")
	e.Start() // option dbus absent: on, since the bus answers
	e.Registered()
	wifi := string(dbusapi.RouterPath) + "/Uplink/wifi"
	state := func() string {
		var v struct{ Data string }
		b.BusctlJSON(&v, "get-property", dbusapi.RouterName, wifi, dbusapi.UplinkInterface, "State")
		return v.Data
	}
	dbustest.WaitFor(t, 5*time.Second, "the router's Wi-Fi on the bus", func() bool {
		_, _, ok := b.Run(nil, "busctl", "--address="+b.Address, "get-property", dbusapi.RouterName, wifi, dbusapi.UplinkInterface, "State")
		return ok && state() == status.StateRegistered
	})
	var coa struct{ Data string }
	b.BusctlJSON(&coa, "get-property", dbusapi.RouterName, wifi, dbusapi.UplinkInterface, "CareOfAddress")
	if want := e.MRStatus().Bindings[0].CoA; coa.Data != want {
		t.Errorf("CareOfAddress %q, status says %q", coa.Data, want)
	}

	m := b.StartMonitor(dbusapi.RouterName)
	start := time.Now()
	e.Wifi.SetUp(false)
	dbustest.WaitFor(t, 2*time.Second, "PropertiesChanged of the Wi-Fi uplink", func() bool {
		for _, s := range m.Signals("PropertiesChanged") {
			if strings.Contains(s.Header, "path="+wifi+";") && strings.Contains(s.Body, `string "down"`) {
				return true
			}
		}
		return false
	})
	took := time.Since(start)
	t.Logf("PropertiesChanged %v after the carrier loss", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("PropertiesChanged %v after the carrier loss", took)
	}

	// Root's Reload reloads: the new lifetime is applied.
	e.WriteRouterConfig(strings.Replace(lab.RouterUCI(e.MRSock, ""), "option lifetime '600'", "option lifetime '300'", 1))
	var reply struct {
		Data []json.RawMessage `json:"data"`
	}
	b.BusctlJSON(&reply, "call", dbusapi.RouterName, string(dbusapi.RouterPath), dbusapi.RouterName, "Reload")
	var applied []string
	if len(reply.Data) != 3 || string(reply.Data[0]) != "true" || json.Unmarshal(reply.Data[1], &applied) != nil ||
		strings.Join(applied, ",") != "router.lifetime" {
		t.Errorf("Reload answered %s", reply.Data)
	}
	_, errs, ok := b.Run(dbustest.Nobody(t), "busctl", "--address="+b.Address, "call", dbusapi.RouterName, string(dbusapi.RouterPath), dbusapi.RouterName, "Reload")
	if ok || !strings.Contains(errs, "denied") {
		t.Errorf("nobody's Reload: ok %v, %s", ok, errs)
	}
}
