package homeagent_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"nemod/control"
	"nemod/homeagent"
	"nemod/internal/twoends"
	"nemod/lab"
	"nemod/status"
)

func revoke(t *testing.T, sock string, args homeagent.RevokeArgs) (status.Revocation, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var r status.Revocation
	err := control.Do(ctx, sock, "revoke", args, &r)
	return r, err
}

// TestRevokeByTheOperator: `ctl revoke` of one BID takes that binding off
// at both ends and reports the router's acknowledgement; revoking every
// binding leaves the router with none; bad requests change nothing.
func TestRevokeByTheOperator(t *testing.T) {
	e := twoends.New(t, "")
	e.WriteRouterConfig(strings.Replace(lab.RouterUCI(e.MRSock, ""), "option lifetime '600'", "option lifetime '600'\n\toption revoked_holdoff '2'", 1))
	e.Start()
	e.Registered()
	for _, bad := range []homeagent.RevokeArgs{
		{Target: "2001:db8:ffff:1::999"}, {Target: "nobody@fleet"}, {Target: "car1@fleet", BIDs: []uint16{7}},
		{Target: "car1@fleet", Reason: "boredom"}, {Target: "2001:db8:ffff:1::200"}, // car2 has no binding
	} {
		if _, err := revoke(t, e.HASock, bad); err == nil {
			t.Errorf("revoke %+v: no error", bad)
		}
	}
	if got := e.States(); got != twoends.DefaultStates {
		t.Fatalf("after refused revocations: %s", got)
	}
	r, err := revoke(t, e.HASock, homeagent.RevokeArgs{Target: "car1@fleet", BIDs: []uint16{1}})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Answered || r.Status != 0 || r.Router != "car1" || r.HomeAddress != twoends.HoA.String() || len(r.BIDs) != 1 || r.Trigger != 1 {
		t.Fatalf("revocation %+v", r)
	}
	if got := e.HABindings(); len(got) != 1 || got[0] != "2 udp4" {
		t.Fatalf("home agent's bindings after the revocation: %v", got)
	}
	if got := e.States(); got != "wifi=revoked/udp6 cell=registered/udp4" {
		t.Fatalf("router after the revocation: %s", got)
	}
	s := e.HAStatus()
	if s.Revocations.Revoked != 1 || s.Revocations.Acknowledged != 1 || s.Revocations.Sent != 1 || s.Revocations.Pending != 0 {
		t.Fatalf("revocation counters %+v", s.Revocations)
	}
	// After the 2 s holdoff, the router registers it again.
	e.Eventually(6*time.Second, "wifi registered again", func() bool {
		return e.States() == twoends.DefaultStates
	})
	// Everything, by home address, through UDP or natively as each
	// binding is.
	r, err = revoke(t, e.HASock, homeagent.RevokeArgs{Target: twoends.HoA.String()})
	if err != nil || !r.Answered || r.Status != 0 || len(r.BIDs) != 0 {
		t.Fatalf("revoke all: %+v %v", r, err)
	}
	if got := e.HABindings(); len(got) != 0 {
		t.Fatalf("home agent's bindings after revoking all: %v", got)
	}
	m := e.MRStatus()
	if !m.Revocation.AllRevoked || len(m.Revocation.Revoked) != 2 || m.Revocation.Taken != 2 || m.Revocation.HoldoffUntil == "" {
		t.Fatalf("router's revocation status %+v", m.Revocation)
	}
	if got := e.HASys.Prefixes(); len(got) != 1 {
		t.Fatalf("routes with nothing registered: %v", got)
	}
}
