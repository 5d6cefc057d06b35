package binding

import (
	"net/netip"
	"testing"
	"time"
)

// TestBindingsReportRefresh: a registered binding's status says when its
// refresh is due (80 % of the lifetime here), which the router reports to
// netifd as its home address's preferred lifetime; a binding that is not
// registered has none.
func TestBindingsReportRefresh(t *testing.T) {
	w := newWorld(t, routerConfig(), haConfig())
	w.up(0, wifiCoA, netip.MustParseAddr("192.168.50.2"))
	w.step()
	bs := w.r.Bindings()
	if bs[0].State != StateRegistered || bs[0].RefreshAt.Sub(t0) != 480*time.Second || bs[0].Expires.Sub(t0) != 600*time.Second {
		t.Errorf("wifi %+v", bs[0])
	}
	if bs[1].State == StateRegistered || !bs[1].RefreshAt.IsZero() {
		t.Errorf("cell %+v", bs[1])
	}
}
