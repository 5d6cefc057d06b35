package fleetweb

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"nemod/internal/chromium"
	"nemod/internal/httpd"
	"nemod/metrics"
	"nemod/status"
)

func fleetSnap() Snapshot {
	return Snapshot{
		Status: status.HomeAgent{Role: status.RoleHomeAgent, Address: "2001:db8:1::1", AddressV4: "192.0.2.1",
			HomePrefix: "2001:db8:1::/64", Uptime: 93784,
			MobileRouters: []status.MobileRouter{
				{Name: "car1", HomeAddress: "2001:db8:1::10", MNP: []string{"2001:db8:100::/64"}, Bindings: []status.Binding{
					{BID: 1, Uplink: "wifi", CoA: "2001:db8:a::2", Outer: "2001:db8:a::2", Encap: "ip6ip6", State: status.StateRegistered,
						Lifetime: 240, Since: "2026-01-01T10:00:00Z", RTTms: 14.2, Loss: 0.02,
						Traffic: status.Traffic{TxPackets: 1200, TxBytes: 1500000, RxPackets: 2400, RxBytes: 3200000}},
					{BID: 2, Uplink: "cell", CoA: "198.51.100.7", Outer: "203.0.113.9:4500", Encap: "udp", NAT: true, State: status.StateRegistered,
						Lifetime: 240, Since: "2026-01-01T10:00:05Z", RTTms: 61.0,
						Traffic: status.Traffic{TxPackets: 300, TxBytes: 200000, RxPackets: 310, RxBytes: 250000}},
				}},
				{Name: "<b>bus2</b>", HomeAddress: "2001:db8:1::20"},
			}},
		Flows: status.HomeAgentFlows{Role: status.RoleHomeAgent, MobileRouters: []status.MobileRouterFlow{
			{Name: "car1", HomeAddress: "2001:db8:1::10", Flows: status.Flows{Flows: []status.Flow{
				{Rule: "voice", FID: 10, Pri: 1, Mode: "failover", BIDs: []uint16{1, 2}, Selector: "udp dport 5060", Active: true, Packets: 42},
				{Rule: "video", FID: 11, Pri: 2, Mode: "duplicate", BIDs: []uint16{1, 2}, Selector: "udp dport 8801", Active: true, Packets: 7},
			}}},
		}},
	}
}

func TestAuthorize(t *testing.T) {
	loop := netip.MustParseAddrPort("127.0.0.1:5000")
	loop6 := netip.MustParseAddrPort("[::1]:5000")
	far := netip.MustParseAddrPort("[2001:db8::99]:5000")
	req := func(remote netip.AddrPort, query, auth string) *httpd.Request {
		q, _ := url.ParseQuery(query)
		h := map[string]string{}
		if auth != "" {
			h["authorization"] = auth
		}
		return &httpd.Request{Remote: remote, Query: q, Header: h}
	}
	for _, c := range []struct {
		token string
		r     *httpd.Request
		want  int
	}{
		{"", req(loop, "", ""), 0},
		{"", req(loop6, "", ""), 0},
		{"", req(far, "", ""), 403},
		{"", req(netip.AddrPort{}, "", ""), 403}, // unknown peer: not taken for local
		{"", req(far, "token=anything", ""), 403},
		{"s3cret", req(far, "", ""), 401},
		{"s3cret", req(loop, "", ""), 401}, // a set token binds loopback too
		{"s3cret", req(far, "token=s3cret", ""), 0},
		{"s3cret", req(far, "token=s3cre", ""), 401},
		{"s3cret", req(far, "token=s3cret2", ""), 401},
		{"s3cret", req(far, "", "Bearer s3cret"), 0},
		{"s3cret", req(far, "", "Bearer wrong"), 401},
		{"s3cret", req(far, "token=s3cret", "Bearer wrong"), 401}, // the header wins
		{"s3cret", req(far, "", "Basic s3cret"), 401},
	} {
		if got, _ := Authorize(c.token, c.r); got != c.want {
			t.Errorf("token %q, remote %v, query %v, header %v: %d, want %d", c.token, c.r.Remote, c.r.Query, c.r.Header, got, c.want)
		}
	}
}

// serve runs the fleet page and /metrics on one loopback listener, the way
// the home agent will.
func serve(t *testing.T, f *Fleet) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := httpd.NewMux()
	f.Mount(mux)
	ha := &metrics.HomeAgent{}
	ha.Update(fleetSnap().Status)
	metrics.Mount(mux, ha.Families)
	s := httpd.NewServer(mux.Serve)
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return "http://" + ln.Addr().String()
}

func get(t *testing.T, u string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestEndpoints(t *testing.T) {
	f := New(Options{Token: "tok en", Heartbeat: 100 * time.Millisecond, MinInterval: 10 * time.Millisecond})
	snap := fleetSnap()
	f.Update(snap)
	base := serve(t, f)
	q := "?token=" + url.QueryEscape("tok en")

	if resp, _ := get(t, base+"/"); resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("/ without the token: %d", resp.StatusCode)
	}
	if resp, _ := get(t, base+"/events"); resp.StatusCode != 401 {
		t.Errorf("/events without the token: %d", resp.StatusCode)
	}
	resp, body := get(t, base+"/"+q)
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || !strings.Contains(body, "<main id=\"fleet\"") || strings.Contains(body, "/*SCRIPT*/") ||
		!strings.Contains(csp, "script-src 'sha256-") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("/: %d, CSP %q", resp.StatusCode, csp)
	}
	// No outside assets: nothing in the page refers to another origin.
	for _, bad := range []string{"http://", "https://", "//cdn", "src=\"", "href=\"http"} {
		if strings.Contains(body, bad) {
			t.Errorf("the page refers to %q", bad)
		}
	}

	resp, body = get(t, base+"/status.json", "Authorization", "Bearer tok en")
	var back Snapshot
	if err := json.Unmarshal([]byte(body), &back); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/status.json: %d %v", resp.StatusCode, err)
	}
	if !reflect.DeepEqual(back, snap) {
		t.Errorf("/status.json is not the snapshot:\n%+v\n%+v", back, snap)
	}

	// The metrics share the listener, without the token.
	if resp, body := get(t, base+"/metrics"); resp.StatusCode != 200 || !strings.Contains(body, `nemod_mobile_routers{state="registered"} 1`) {
		t.Errorf("/metrics: %d", resp.StatusCode)
	}

	// The stream: the snapshot now, a heartbeat when idle, the next
	// snapshot when it changes.
	req, _ := http.NewRequest("GET", base+"/events"+q, nil)
	sresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer sresp.Body.Close()
	if ct := sresp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("events content type %q", ct)
	}
	events := make(chan [2]string, 16)
	go func() {
		sc := bufio.NewScanner(sresp.Body)
		sc.Buffer(nil, 1<<20)
		var ev, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev != "" {
					events <- [2]string{ev, data}
				}
				ev, data = "", ""
			case strings.HasPrefix(line, "event: "):
				ev = line[7:]
			case strings.HasPrefix(line, "data: "):
				data = line[6:]
			}
		}
		close(events)
	}()
	next := func(want string) string {
		t.Helper()
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("the stream ended")
			}
			if e[0] != want {
				t.Fatalf("event %q, want %q", e[0], want)
			}
			return e[1]
		case <-time.After(3 * time.Second):
			t.Fatalf("no %s event", want)
		}
		return ""
	}
	var got Snapshot
	json.Unmarshal([]byte(next("status")), &got)
	if !reflect.DeepEqual(got, snap) {
		t.Errorf("first event is not the snapshot")
	}
	next("heartbeat")
	snap2 := fleetSnap()
	snap2.Status.MobileRouters[0].Bindings = snap2.Status.MobileRouters[0].Bindings[1:]
	f.Update(snap2)
	var got2 Snapshot
	for {
		// A heartbeat may come first.
		select {
		case e := <-events:
			if e[0] != "status" {
				continue
			}
			json.Unmarshal([]byte(e[1]), &got2)
		case <-time.After(3 * time.Second):
			t.Fatal("no event after the update")
		}
		break
	}
	if len(got2.Status.MobileRouters[0].Bindings) != 1 || got2.Status.MobileRouters[0].Bindings[0].BID != 2 {
		t.Errorf("after the update: %+v", got2.Status.MobileRouters[0].Bindings)
	}
	// A burst of updates comes as far fewer pushes, the last one the
	// latest.
	for i := 0; i < 200; i++ {
		s := fleetSnap()
		s.Status.Uptime = int64(i)
		f.Update(s)
	}
	deadline := time.After(3 * time.Second)
	pushes := 0
	for last := int64(-1); last != 199; {
		select {
		case e := <-events:
			if e[0] == "status" {
				pushes++
				var s Snapshot
				json.Unmarshal([]byte(e[1]), &s)
				last = s.Status.Uptime
			}
		case <-deadline:
			t.Fatal("the latest snapshot never came")
		}
	}
	if pushes > 20 {
		t.Errorf("200 updates in a burst made %d pushes", pushes)
	}
}

// Without a token the page is for loopback clients; the listener on a
// loopback address answers them.
func TestNoTokenLoopback(t *testing.T) {
	f := New(Options{})
	base := serve(t, f)
	if resp, body := get(t, base+"/status.json"); resp.StatusCode != 200 || !strings.Contains(body, `"mobile_routers":null`) {
		t.Errorf("before any Update: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, base+"/"); resp.StatusCode != 200 {
		t.Errorf("/ from loopback without a token: %d", resp.StatusCode)
	}
}

// The page in a real browser: it lists the fleet, and when a binding goes
// the page shows it gone within a second without reloading.
func TestPageInChromium(t *testing.T) {
	b := chromium.Start(t)
	f := New(Options{Token: "t0k"})
	f.Update(fleetSnap())
	base := serve(t, f)
	b.Phone()
	b.Navigate(base + "/?token=t0k")

	type view struct {
		Routers  []string `json:"routers"`
		Bids     []string `json:"bids"`
		Text     string   `json:"text"`
		Origin   float64  `json:"origin"`
		Renders  int      `json:"renders"`
		Mode     string   `json:"mode"`
		Overflow bool     `json:"overflow"`
	}
	read := func() view {
		var v view
		b.Eval(`(() => {
			const p = window.nemodPage || {};
			return {
				routers: [...document.querySelectorAll("[data-router]")].map(e => e.dataset.router),
				bids: [...document.querySelectorAll('[data-router="car1"] [data-bid]')].map(e => e.dataset.bid),
				text: document.body ? document.body.innerText : "",
				origin: performance.timeOrigin,
				renders: p.renders || 0,
				mode: p.mode || "",
				overflow: !!document.documentElement && document.documentElement.scrollWidth > window.innerWidth,
			};
		})()`, &v)
		return v
	}
	var v view
	deadline := time.Now().Add(15 * time.Second)
	for {
		v = read()
		if v.Renders > 0 && v.Mode == "on" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page never rendered live: %+v", v)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Join(v.Routers, ",") != "car1,<b>bus2</b>" || strings.Join(v.Bids, ",") != "1,2" {
		t.Fatalf("routers %v, car1's bindings %v", v.Routers, v.Bids)
	}
	for _, want := range []string{"wifi · BID 1", "cell · BID 2", "2001:db8:a::2", "198.51.100.7", "ip6ip6", "udp · behind NAT",
		"14.2 ms", "61.0 ms", "REGISTERED", "voice · failover → BID 1, 2", "1 of 2 routers registered · 2 bindings"} {
		if !strings.Contains(v.Text, want) {
			t.Errorf("the page lacks %q:\n%s", want, v.Text)
		}
	}
	if v.Overflow {
		t.Error("the page is wider than a phone's screen")
	}
	shot := b.Screenshot(chromium.Artifacts(t), "fleet-before.png")
	t.Logf("screenshot: %s", shot)

	// BID 1 (Wi-Fi) goes.
	origin, loads := v.Origin, f.pageLoads.Load()
	snap := fleetSnap()
	snap.Status.MobileRouters[0].Bindings = snap.Status.MobileRouters[0].Bindings[1:]
	start := time.Now()
	f.Update(snap)
	for {
		v = read()
		if strings.Join(v.Bids, ",") == "2" {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("1 s after the update the page shows bindings %v", v.Bids)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("the page showed the Wi-Fi binding gone after %v", time.Since(start).Round(time.Millisecond))
	if strings.Contains(v.Text, "wifi") {
		t.Errorf("the Wi-Fi binding still shows:\n%s", v.Text)
	}
	if v.Origin != origin || f.pageLoads.Load() != loads {
		t.Errorf("the page was reloaded (time origin %v -> %v, loads %d -> %d)", origin, v.Origin, loads, f.pageLoads.Load())
	}
	shot = b.Screenshot(chromium.Artifacts(t), "fleet-after.png")
	t.Logf("screenshot: %s", shot)
}
