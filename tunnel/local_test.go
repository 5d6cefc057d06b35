package tunnel_test

import (
	"net/netip"
	"slices"
	"testing"

	"nemod/binding"
	"nemod/internal/netsim"
	"nemod/nemo"
	"nemod/tunnel"
)

// The router's own packets into the tunnel, the answers back to it, and
// prefixes that change while it runs (local.go).
func TestLocalPacketsAndChangingPrefixes(t *testing.T) {
	r := newRig(t, nil)
	// SendLocal: through the binding the table picks, out of the home
	// agent as if from the TUN device.
	own := netsim.UDP6(hoa, ha6, 547, 547, 20, 'l')
	if err := r.mr.SendLocal(own); err != nil {
		t.Fatal(err)
	}
	expect(t, r.haTUN, own, "the router's own packet")
	if err := r.mr.SendLocal(netsim.UDP6(lan.Next(), cn, 1, 2, 1, 'f')); err != nil {
		t.Fatal("a packet of the mobile network was refused")
	}
	if err := r.mr.SendLocal(netsim.UDP6(forger, cn, 1, 2, 1, 'f')); err == nil {
		t.Fatal("a foreign source was sent")
	}

	// SetLocal: what the take function keeps does not reach the TUN
	// device; the rest does.
	took := make(chan []byte, 4)
	r.mr.SetLocal(func(p []byte) bool {
		if p[len(p)-1] != 'k' {
			return false
		}
		took <- append([]byte(nil), p...)
		return true
	})
	keep := netsim.UDP6(ha6, hoa, 547, 547, 20, 'k')
	pass := netsim.UDP6(cn, lan, 2, 1, 20, 'p')
	r.haTUN.Inject(keep)
	r.haTUN.Inject(pass)
	expect(t, r.mrTUN, pass, "a packet not for the router")
	if got := <-took; string(got) != string(keep) {
		t.Fatal("the router's packet was not handed over")
	}
	quiet(t, r.mrTUN, keep, "the router's own packet")
	r.mr.SetLocal(nil)
	r.haTUN.Inject(keep)
	expect(t, r.mrTUN, keep, "without a take function")

	// SetMNPs: a new prefix is forwarded both ways and routed by the
	// host; the old one is not.
	next := netip.MustParsePrefix("2001:db8:300::/56")
	host := netip.MustParseAddr("2001:db8:300::10")
	r.ha.SetRouters([]tunnel.HARouter{{HoA: hoa, Prefixes: []netip.Prefix{next}}})
	r.ha.Update(hoa, []netip.Prefix{next}, r.haBindings(), nil)
	if err := r.mr.SetMNPs([]netip.Prefix{next}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.mrSys.Routes().MNPs, []netip.Prefix{next}) || !slices.Equal(r.mrSys.Breakout().MNPs, []netip.Prefix{next}) {
		t.Fatalf("host routing %+v, breakout %+v", r.mrSys.Routes(), r.mrSys.Breakout())
	}
	up := netsim.UDP6(host, cn, 1, 2, 10, 'n')
	r.mrTUN.Inject(up)
	expect(t, r.haTUN, up, "from the new prefix")
	old := netsim.UDP6(lan, cn, 1, 2, 10, 'o')
	before := r.mr.Drops().Count(tunnel.DropForeignSrc)
	r.mrTUN.Inject(old)
	counted(t, r.mr.Drops(), tunnel.DropForeignSrc, before+1)
}

// haBindings are the rig's registered bindings as the home agent holds
// them.
func (r *rig) haBindings() []binding.Binding {
	var hb []binding.Binding
	for _, b := range r.bindings {
		outer := netip.AddrPortFrom(b.CoA, 0)
		if b.Encap == nemo.EncapUDP4 {
			outer = r.cellOuter
		}
		hb = append(hb, binding.Binding{BID: b.BID, CoA: b.CoA, Outer: outer, Encap: b.Encap})
	}
	return hb
}
