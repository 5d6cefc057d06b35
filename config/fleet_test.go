package config

import (
	"strings"
	"testing"
	"time"
)

func TestFleetOptions(t *testing.T) {
	f, err := parse("nemod", []byte(minimalRouter+"\toption revoked_holdoff '90'\n"), memFiles(nil))
	if err != nil || f.Router.RevokedHoldoff != 90*time.Second {
		t.Fatalf("revoked_holdoff: %v %+v", err, f.Router)
	}
	f, err = parse("nemod", []byte(minimalRouter), memFiles(nil))
	if err != nil || f.Router.RevokedHoldoff != DefaultRevokedHoldoff {
		t.Fatalf("default holdoff: %v", err)
	}
	f, err = parse("nemod", []byte(minimalHA+"\toption route_table '100'\n"), memFiles(nil))
	if err != nil || f.HomeAgent.RouteTable != 100 {
		t.Fatalf("route_table: %v %+v", err, f.HomeAgent)
	}
	f, err = parse("nemod", []byte(minimalHA), memFiles(nil))
	if err != nil || f.HomeAgent.RouteTable != MainRouteTable {
		t.Fatalf("default table: %v", err)
	}
	for _, c := range []struct{ text, want string }{
		{minimalRouter + "\toption revoked_holdoff '0'\n", "nemod:6: "},
		{minimalRouter + "\toption revoked_holdoff 'soon'\n", "nemod:6: "},
		{minimalHA + "\toption route_table '255'\n", "nemod:4: "},
		{minimalHA + "\toption route_table '0'\n", "nemod:4: "},
		{minimalHA + "\toption route_table 'main'\n", "nemod:4: "},
	} {
		if _, err := parse("nemod", []byte(c.text), memFiles(nil)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error at %s", c.text, err, c.want)
		}
	}
}
