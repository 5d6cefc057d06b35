package router_test

import (
	"reflect"
	"strings"
	"testing"

	"nemod/internal/twoends"
	"nemod/lab"
	"nemod/status"
)

// TestReloadReply: `ctl reload` takes what a running router can (the
// lifetime, an uplink's probing, a new policy) and names what waits for a
// restart (a new home address), which keeps its running value; the
// registrations stay.
func TestReloadReply(t *testing.T) {
	e := twoends.New(t, "")
	e.Start()
	e.Registered()
	conf := lab.RouterUCI(e.MRSock, voice)
	for _, r := range [][2]string{
		{"option lifetime '600'", "option lifetime '120'"},
		{"option home_address '2001:db8:ffff:1::100'", "option home_address '2001:db8:ffff:1::101'"},
		{"option encap 'auto'", "option encap 'auto'\n\toption probe_interval '200ms'"},
	} {
		if !strings.Contains(conf, r[0]) {
			t.Fatalf("the lab's configuration has no %q", r[0])
		}
		conf = strings.Replace(conf, r[0], r[1], 1)
	}
	e.WriteRouterConfig(conf)
	var reply status.Reload
	if err := twoends.Ctl(e.MRSock, "reload", &reply); err != nil {
		t.Fatal(err)
	}
	want := status.Reload{
		Reloaded:     true,
		Applied:      []string{"router.lifetime", "uplink wifi.probe_interval", "policy voice", "rule sip"},
		NeedsRestart: []string{"router.home_address"},
	}
	if !reflect.DeepEqual(reply, want) {
		t.Fatalf("reply\n got %+v\nwant %+v", reply, want)
	}
	if s := e.MRStatus(); s.HomeAddress != "2001:db8:ffff:1::100" {
		t.Fatalf("home address %s after the reload, want the running one", s.HomeAddress)
	}
	if st := e.States(); st != twoends.DefaultStates {
		t.Fatalf("registrations after the reload: %s", st)
	}
}
