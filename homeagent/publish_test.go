package homeagent_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"nemod/dbusapi"
	"nemod/fleetweb"
	"nemod/internal/dbustest"
	"nemod/internal/promtest"
	"nemod/internal/twoends"
	"nemod/lab"
	"nemod/status"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// haWithOps is the lab's home agent configuration with options added to
// its homeagent section.
func haWithOps(sock, opts string) string {
	const at = "option max_lifetime '3600'"
	return strings.Replace(lab.HomeAgentUCI(sock), at, at+"\n\t"+opts, 1)
}

// TestMetricsAndFleetPage: the home agent serves /metrics and the fleet
// page on one listener by default; the scrape passes promtool and agrees
// with `ctl status` (routers and bindings by state, registrations,
// rejections by reason, bytes per router); the page's data is the status;
// with a web_token the page wants it and the metrics do not.
func TestMetricsAndFleetPage(t *testing.T) {
	e := twoends.New(t, "")
	e.WriteHomeAgentConfig(haWithOps(e.HASock, "option dbus '0'"))
	e.Start()
	e.Registered()
	base := "http://" + e.HTTP(&e.HAHTTP)
	if base == "http://" {
		t.Fatal("no listener by default")
	}
	before := e.HAStatus()
	code, text := httpGet(t, base+"/metrics")
	after := e.HAStatus()
	if code != 200 {
		t.Fatalf("scrape %d: %s", code, text)
	}
	promtest.Check(t, text)
	got := promtest.Parse(t, text)
	promtest.Expect(t, got, map[string]float64{
		"nemod_mobile_routers{state=registered}":                        1,
		"nemod_mobile_routers{state=down}":                              float64(len(before.MobileRouters) - 1),
		"nemod_bindings{state=registered}":                              2,
		"nemod_mobile_router_bindings{router=car1}":                     2,
		"nemod_registrations_total{}":                                   float64(before.Counters.Accepted),
		"nemod_registration_rejections_total{reason=seq_out_of_window}": float64(before.Counters.Rejected["seq_out_of_window"]),
		"nemod_dataplane_drops_total{reason=no_binding}":                float64(before.DataPlane.Drops["no_binding"]),
	})
	for _, r := range before.MobileRouters {
		var tx uint64
		for _, b := range r.Bindings {
			tx += b.TxBytes
		}
		if v := got["nemod_mobile_router_transmit_bytes_total{router="+r.Name+"}"]; v != float64(tx) {
			t.Errorf("%s: %v bytes sent, status says %d", r.Name, v, tx)
		}
	}
	if v := got["nemod_binding_updates_received_total{}"]; v < float64(before.Counters.Received) || v > float64(after.Counters.Received) {
		t.Errorf("%v binding updates received, status says %d then %d", v, before.Counters.Received, after.Counters.Received)
	}

	// The page's data: the status, and the flows, from loopback without a
	// token.
	code, body := httpGet(t, base+"/status.json")
	var snap fleetweb.Snapshot
	if code != 200 || json.Unmarshal([]byte(body), &snap) != nil {
		t.Fatalf("/status.json: %d %s", code, body)
	}
	if len(snap.Status.MobileRouters) == 0 || snap.Status.MobileRouters[0].Name != "car1" || len(snap.Status.MobileRouters[0].Bindings) != 2 ||
		snap.Flows.Role != status.RoleHomeAgent {
		t.Errorf("the page's snapshot: %+v", snap)
	}
	e.Cell.SetUp(false)
	e.Eventually(2*time.Second, "the page's data loses the cellular binding", func() bool {
		_, body := httpGet(t, base+"/status.json")
		var s fleetweb.Snapshot
		return json.Unmarshal([]byte(body), &s) == nil && len(s.Status.MobileRouters) > 0 && len(s.Status.MobileRouters[0].Bindings) == 1
	})

	// A token: the page wants it, /metrics does not; metrics_listen 'off'
	// leaves no listener.
	e2 := twoends.New(t, "")
	e2.WriteHomeAgentConfig(haWithOps(e2.HASock, "option web_token 'a-long-enough-token'\n\toption dbus '0'"))
	e2.StartHA(t.Context())
	base = "http://" + e2.HTTP(&e2.HAHTTP)
	if code, _ := httpGet(t, base+"/"); code != 401 {
		t.Errorf("the page without its token: %d", code)
	}
	if code, body := httpGet(t, base+"/?token=a-long-enough-token"); code != 200 || !strings.Contains(body, "<main id=\"fleet\"") {
		t.Errorf("the page with its token: %d", code)
	}
	if code, _ := httpGet(t, base+"/metrics"); code != 200 {
		t.Errorf("/metrics with a token set: %d", code)
	}
	e3 := twoends.New(t, "")
	e3.WriteHomeAgentConfig(haWithOps(e3.HASock, "option metrics_listen 'off'\n\toption dbus '0'"))
	e3.StartHA(t.Context())
	if a := e3.HTTP(&e3.HAHTTP); a != "" {
		t.Errorf("listening at %s with metrics_listen 'off'", a)
	}
}

// TestDBus: the home agent on a real bus: a child object per mobile router
// whose Bindings busctl reads, a PropertiesChanged when a binding goes,
// Reload, and Revoke answering NotSupported until the home agent revokes
// bindings.
func TestDBus(t *testing.T) {
	b := dbustest.Start(t)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", b.Address)
	e := twoends.New(t, "")
	e.Start()
	e.Registered()
	car1 := string(dbusapi.HomeAgentPath) + "/MobileRouter/car1"
	bindings := func() int {
		var v struct {
			Data []json.RawMessage `json:"data"`
		}
		b.BusctlJSON(&v, "get-property", dbusapi.HomeAgentName, car1, dbusapi.MobileRouterIntf, "Bindings")
		return len(v.Data)
	}
	dbustest.WaitFor(t, 5*time.Second, "car1 on the bus with two bindings", func() bool {
		_, _, ok := b.Run(nil, "busctl", "--address="+b.Address, "get-property", dbusapi.HomeAgentName, car1, dbusapi.MobileRouterIntf, "State")
		return ok && bindings() == 2
	})
	m := b.StartMonitor(dbusapi.HomeAgentName)
	e.Wifi.SetUp(false)
	dbustest.WaitFor(t, 2*time.Second, "PropertiesChanged of car1", func() bool {
		for _, s := range m.Signals("PropertiesChanged") {
			if strings.Contains(s.Header, "path="+car1+";") && strings.Contains(s.Body, `string "Bindings"`) {
				return true
			}
		}
		return false
	})
	if n := bindings(); n != 1 {
		t.Errorf("%d bindings on the bus after the carrier loss", n)
	}
	_, errs, ok := b.Run(nil, "busctl", "--address="+b.Address, "call", dbusapi.HomeAgentName, string(dbusapi.HomeAgentPath),
		dbusapi.HomeAgentName, "Revoke", "sq", twoends.HoA.String(), "1")
	if ok || !strings.Contains(errs, "revoke") {
		t.Errorf("Revoke: ok %v, %s", ok, errs)
	}
	var reply struct {
		Data []json.RawMessage `json:"data"`
	}
	b.BusctlJSON(&reply, "call", dbusapi.HomeAgentName, string(dbusapi.HomeAgentPath), dbusapi.HomeAgentName, "Reload")
	if len(reply.Data) != 3 || string(reply.Data[0]) != "true" {
		t.Errorf("Reload answered %s", reply.Data)
	}
}
