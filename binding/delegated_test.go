package binding

import (
	"net/netip"
	"slices"
	"testing"

	"nemod/nemo"
)

var delegatedPfx = netip.MustParsePrefix("2001:db8:200:4200::/56")

// A router with option pd and no configured prefix registers in implicit
// mode; the delegated prefix joins its entry while delegated and leaves
// it at release, and survives a re-registration and a reload in between.
func TestDelegatedPrefixesJoinAndLeave(t *testing.T) {
	hc := haConfig()
	hc.Peers[0].MNPs, hc.Peers[0].PD = nil, true
	rc := routerConfig()
	rc.MNPs = nil
	w := newWorld(t, rc, hc)
	w.up(0, wifiCoA, netip.Addr{})
	w.step()
	e := w.c.Entry(hoa)
	if !e.Registered() || len(e.MNPs) != 0 {
		t.Fatalf("implicit registration without prefixes: registered %v, MNPs %v", e.Registered(), e.MNPs)
	}
	if got := w.c.SetDelegated(hoa, []netip.Prefix{delegatedPfx}); got != e || !slices.Equal(e.MNPs, []netip.Prefix{delegatedPfx}) {
		t.Fatalf("after delegation: %v", e.MNPs)
	}
	// A refresh keeps it.
	w.run(rc.Lifetime)
	if !slices.Equal(w.c.Entry(hoa).MNPs, []netip.Prefix{delegatedPfx}) {
		t.Fatalf("after a refresh: %v", w.c.Entry(hoa).MNPs)
	}
	// So does a reload that changes the router's key (it registers again).
	peers := slices.Clone(hc.Peers)
	peers[0].Key = []byte("a brand new key!")
	w.c.SetPeers(peers)
	if e := w.c.Entry(hoa); e.Registered() || !slices.Equal(e.Delegated, []netip.Prefix{delegatedPfx}) {
		t.Fatalf("after a new key: %+v", e)
	}
	w.c.SetDelegated(hoa, nil)
	if e := w.c.Entry(hoa); len(e.MNPs) != 0 || len(e.Delegated) != 0 {
		t.Fatalf("after release: %+v", e)
	}
	if w.c.SetDelegated(hoa.Next(), []netip.Prefix{delegatedPfx}) != nil {
		t.Fatal("an unknown router has an entry")
	}
}

// Without option pd, an implicit registration with nothing configured is
// still refused (RFC 3963 §6.2: no prefixes to forward).
func TestImplicitWithoutPrefixesNeedsPD(t *testing.T) {
	hc := haConfig()
	hc.Peers[0].MNPs = nil
	rc := routerConfig()
	rc.MNPs = nil
	w := newWorld(t, rc, hc)
	w.up(0, wifiCoA, netip.Addr{})
	w.step()
	if w.c.Entry(hoa).Registered() || len(w.results) == 0 || w.results[0].Status != nemo.StatusForwardingSetupFailed {
		t.Fatalf("registered without prefixes or pd: %+v", w.results)
	}
}

// In explicit mode a router may name a delegated prefix; when the
// delegation ends, the prefix leaves its entry, the configured one stays.
func TestExplicitDelegatedPrefix(t *testing.T) {
	hc := haConfig()
	hc.Peers[0].PD = true
	rc := routerConfig()
	rc.MNPs = []netip.Prefix{mnp, delegatedPfx}
	w := newWorld(t, rc, hc)
	w.c.SetDelegated(hoa, []netip.Prefix{delegatedPfx})
	w.up(0, wifiCoA, netip.Addr{})
	w.step()
	e := w.c.Entry(hoa)
	if !slices.Equal(e.MNPs, []netip.Prefix{mnp, delegatedPfx}) {
		t.Fatalf("explicit: %v (%+v)", e.MNPs, w.results)
	}
	w.c.SetDelegated(hoa, nil)
	if !slices.Equal(e.MNPs, []netip.Prefix{mnp}) {
		t.Fatalf("after the delegation ended: %v", e.MNPs)
	}
}
