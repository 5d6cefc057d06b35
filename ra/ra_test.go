package ra

import (
	"cmp"
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/mdlayher/ndp"
)

var (
	t0  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	mnp = MNP{Prefix: netip.MustParsePrefix("2001:db8:200:4400::/56"), PreferredUntil: t0.Add(4 * time.Hour), ValidUntil: t0.Add(24 * time.Hour)}
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestPlanInOrderAndHints(t *testing.T) {
	subs, err := Plan([]MNP{mnp}, []LAN{{Name: "lan"}, {Name: "guest"}, {Name: "iot", Assign: 60}, {Name: "cam", Hint: 0x20, HasHint: true}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{
		"cam":   {"2001:db8:200:4420::/64", "2001:db8:200:4420::/64"}, // hinted first
		"lan":   {"2001:db8:200:4400::/64", "2001:db8:200:4400::/64"},
		"guest": {"2001:db8:200:4401::/64", "2001:db8:200:4401::/64"},
		"iot":   {"2001:db8:200:4410::/60", "2001:db8:200:4410::/64"}, // the first aligned free /60
	}
	if len(subs) != len(want) {
		t.Fatalf("subnets %v", subs)
	}
	for _, s := range subs {
		w := want[s.LAN]
		if s.Piece != pfx(w[0]) || s.Prefix != pfx(w[1]) || s.Router != s.Prefix.Addr().Next() || s.From != mnp.Prefix || s.ValidUntil != mnp.ValidUntil {
			t.Errorf("%s: %+v, want %v", s.LAN, s, w)
		}
	}
	if got := ForLAN(subs, "guest"); len(got) != 1 || got[0].Prefix != pfx("2001:db8:200:4401::/64") {
		t.Fatalf("ForLAN %v", got)
	}
	// Two MNPs: each LAN gets a /64 of each.
	two, err := Plan([]MNP{mnp, {Prefix: pfx("2001:db8:9::/64"), PreferredUntil: Forever, ValidUntil: Forever}}, []LAN{{Name: "lan"}, {Name: "guest"}})
	if !errors.Is(err, ErrNoRoom) || len(two) != 3 || len(ForLAN(two, "lan")) != 2 || len(ForLAN(two, "guest")) != 1 {
		t.Fatalf("two MNPs: %v %v", two, err)
	}
}

func newAdv(t *testing.T, cfg Config) *Advertiser {
	t.Helper()
	a, err := NewAdvertiser(cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func subnet(p string, pref, valid time.Time) Subnet {
	q := pfx(p)
	return Subnet{LAN: "lan", Prefix: q, Piece: q, Router: q.Addr().Next(), PreferredUntil: pref, ValidUntil: valid}
}

// dec decodes an RA as sent with an independent NDP library.
func dec(t *testing.T, r *RA) *ndp.RouterAdvertisement {
	t.Helper()
	m, err := ndp.ParseMessage(r.Marshal())
	if err != nil {
		t.Fatalf("the RA does not decode: %v", err)
	}
	ra, ok := m.(*ndp.RouterAdvertisement)
	if !ok {
		t.Fatalf("decoded as %T", m)
	}
	return ra
}

func pios(ra *ndp.RouterAdvertisement) map[netip.Addr]*ndp.PrefixInformation {
	out := map[netip.Addr]*ndp.PrefixInformation{}
	for _, o := range ra.Options {
		if p, ok := o.(*ndp.PrefixInformation); ok {
			out[p.Prefix] = p
		}
	}
	return out
}

func TestAdvertisementContent(t *testing.T) {
	dns := []netip.Addr{netip.MustParseAddr("2001:db8::53")}
	a := newAdv(t, Config{MTU: 1400, DNS: dns})
	s := subnet("2001:db8:200:4400::/64", t0.Add(4*time.Hour), t0.Add(24*time.Hour))
	out := a.Update([]Subnet{s}, false, t0)
	if len(out.Send) != 1 || out.Send[0].Dst != AllNodes || !out.AddrsChanged || !slices.Equal(out.Addrs, []netip.Prefix{pfx("2001:db8:200:4400::1/64")}) {
		t.Fatalf("update: %+v", out)
	}
	ra := dec(t, out.Send[0].RA)
	// No binding: not a default router. M and O clear: SLAAC only.
	if ra.RouterLifetime != 0 || ra.ManagedConfiguration || ra.OtherConfiguration || ra.CurrentHopLimit != 64 {
		t.Fatalf("ra %+v", ra)
	}
	p := pios(ra)[s.Prefix.Addr()]
	if p == nil || !p.OnLink || !p.AutonomousAddressConfiguration || p.PrefixLength != 64 || p.PreferredLifetime != DefaultMaxPreferred || p.ValidLifetime != DefaultMaxValid {
		t.Fatalf("pio %+v", p)
	}
	var mtu, rdnss bool
	for _, o := range ra.Options {
		switch v := o.(type) {
		case *ndp.MTU:
			mtu = v.MTU == 1400
		case *ndp.RecursiveDNSServer:
			rdnss = slices.Equal(v.Servers, dns) && v.Lifetime == 1800*time.Second
		}
	}
	if !mtu || !rdnss {
		t.Fatalf("options %v", ra.Options)
	}
	// The RA marshals (the library checks every field it encodes).
	if _, err := ndp.MarshalMessage(ra); err != nil {
		t.Fatal(err)
	}
	// Registered: a default router for 3 × MaxRtrAdvInterval.
	out = a.Update([]Subnet{s}, true, t0.Add(time.Second))
	if len(out.Send) != 1 || out.Send[0].RA.RouterLifetime != 1800*time.Second || out.AddrsChanged {
		t.Fatalf("registered: %+v", out)
	}
	// Lifetimes decrease as the lease runs out.
	late := t0.Add(24*time.Hour - 20*time.Minute)
	ra = dec(t, a.build(late))
	if p := pios(ra)[s.Prefix.Addr()]; p.ValidLifetime != 20*time.Minute || p.PreferredLifetime != 0 {
		t.Fatalf("late pio %+v", p)
	}
}

func TestSchedule(t *testing.T) {
	a := newAdv(t, Config{})
	s := subnet("2001:db8:200:4400::/64", Forever, Forever)
	a.Update([]Subnet{s}, true, t0)
	// Three fast RAs at most 16 s apart, then every 200..600 s.
	now := t0
	var gaps []time.Duration
	for i := 0; i < 12; i++ {
		next := a.Next()
		if out := a.Tick(next); len(out.Send) != 1 {
			t.Fatalf("tick %d sent %d", i, len(out.Send))
		}
		gaps = append(gaps, next.Sub(now))
		now = next
	}
	for i, g := range gaps {
		lo, hi := 200*time.Second, 600*time.Second
		if i < MaxInitialAdvertisements {
			lo, hi = 0, MaxInitialAdvertInterval
		}
		if g < lo || g > hi {
			t.Fatalf("gap %d: %v not in %v..%v (%v)", i, g, lo, hi, gaps)
		}
	}
	// Nothing is sent before it is due.
	if out := a.Tick(a.Next().Add(-time.Millisecond)); len(out.Send) != 0 {
		t.Fatal("sent early")
	}
}

func rs(opts ...ndp.Option) []byte {
	b, err := ndp.MarshalMessage(&ndp.RouterSolicitation{Options: opts})
	if err != nil {
		panic(err)
	}
	return b
}

func TestRouterSolicitation(t *testing.T) {
	a := newAdv(t, Config{})
	a.Update([]Subnet{subnet("2001:db8:200:4400::/64", Forever, Forever)}, true, t0)
	for a.initLeft > 0 {
		a.Tick(a.Next())
	}
	last := a.lastMcast
	host := netip.MustParseAddr("fe80::2")
	// Right after an RA: the answer waits MinDelayBetweenRAs.
	if _, err := a.ReceiveRS(rs(), host, 255, last.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := a.Next(); got != last.Add(MinDelayBetweenRAs) {
		t.Fatalf("answer at %v, want %v", got.Sub(last), MinDelayBetweenRAs)
	}
	if out := a.Tick(a.Next()); len(out.Send) != 1 {
		t.Fatal("no answer")
	}
	// Later: within MaxRADelay.
	at := a.lastMcast.Add(time.Minute)
	if _, err := a.ReceiveRS(rs(&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: []byte{2, 0, 0, 0, 0, 1}}), host, 255, at); err != nil {
		t.Fatal(err)
	}
	if d := a.Next().Sub(at); d < 0 || d > MaxRADelay {
		t.Fatalf("answer after %v", d)
	}
	// Invalid ones change nothing (RFC 4861 §6.1.1).
	before := a.Next()
	bad := map[string]struct {
		b   []byte
		src netip.Addr
		hl  int
	}{
		"hop limit 64":       {rs(), host, 64},
		"code 1":             {func() []byte { b := rs(); b[1] = 1; return b }(), host, 255},
		"short":              {rs()[:4], host, 255},
		"not an RS":          {func() []byte { b := rs(); b[0] = 134; return b }(), host, 255},
		"SLLA from ::":       {rs(&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: []byte{2, 0, 0, 0, 0, 1}}), netip.IPv6Unspecified(), 255},
		"zero length option": {append(rs(), 1, 0, 0, 0, 0, 0, 0, 0), host, 255},
	}
	for name, c := range bad {
		if _, err := a.ReceiveRS(c.b, c.src, c.hl, at); !errors.Is(err, ErrBadRS) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if a.Next() != before || a.BadSolicits != uint64(len(bad)) {
		t.Fatalf("bad solicitations changed the schedule (%d counted)", a.BadSolicits)
	}
}

// RFC 7084 L-13: a replaced prefix is advertised with preferred lifetime 0
// and a valid lifetime of at most two hours counting down, then with valid
// lifetime 0 a few times, then no more; the router's address on it goes
// with it.
func TestPrefixChangeDeprecatesOld(t *testing.T) {
	a := newAdv(t, Config{})
	oldS := subnet("2001:db8:200:4400::/64", t0.Add(4*time.Hour), t0.Add(24*time.Hour))
	newS := subnet("2001:db8:200:9900::/64", t0.Add(4*time.Hour), t0.Add(24*time.Hour))
	a.Update([]Subnet{oldS}, true, t0)
	change := t0.Add(time.Hour)
	out := a.Update([]Subnet{newS}, true, change)
	if len(out.Send) != 1 {
		t.Fatal("no RA on change")
	}
	p := pios(dec(t, out.Send[0].RA))
	o, n := p[oldS.Prefix.Addr()], p[newS.Prefix.Addr()]
	if o == nil || o.PreferredLifetime != 0 || o.ValidLifetime != DefaultMaxValid || n == nil || n.PreferredLifetime != DefaultMaxPreferred {
		t.Fatalf("old %+v new %+v", o, n)
	}
	// Both router addresses while the old one is deprecated.
	if !out.AddrsChanged || !slices.Equal(out.Addrs, []netip.Prefix{pfx("2001:db8:200:4400::1/64"), pfx("2001:db8:200:9900::1/64")}) {
		t.Fatalf("addrs %v", out.Addrs)
	}
	// Counting down, then 0 for zeroRAs RAs, then gone.
	var valids []time.Duration
	var addrsAfter []netip.Prefix
	for i := 0; i < 40; i++ {
		now := a.Next()
		out := a.Tick(now)
		if out.AddrsChanged {
			addrsAfter = out.Addrs
		}
		if q := pios(dec(t, out.Send[0].RA))[oldS.Prefix.Addr()]; q != nil {
			if q.PreferredLifetime != 0 {
				t.Fatalf("old prefix preferred again: %+v", q)
			}
			valids = append(valids, q.ValidLifetime)
			if want := lifetime(now, change.Add(DefaultMaxValid), deprecatedValid); q.ValidLifetime != want {
				t.Fatalf("valid %v at %v, want %v", q.ValidLifetime, now.Sub(change), want)
			}
		}
	}
	if !slices.IsSortedFunc(valids, func(x, y time.Duration) int { return cmp.Compare(y, x) }) {
		t.Fatalf("valid lifetimes not decreasing: %v", valids)
	}
	zeros := 0
	for _, v := range valids {
		if v == 0 {
			zeros++
		}
	}
	if zeros != zeroRAs {
		t.Fatalf("%d RAs with valid 0 (%v)", zeros, valids)
	}
	if !slices.Equal(addrsAfter, []netip.Prefix{pfx("2001:db8:200:9900::1/64")}) {
		t.Fatalf("addresses after withdrawal %v", addrsAfter)
	}
}

func TestStop(t *testing.T) {
	a := newAdv(t, Config{})
	a.Update([]Subnet{subnet("2001:db8:200:4400::/64", Forever, Forever)}, true, t0)
	out := a.Stop(t0.Add(time.Minute))
	n := 0
	for len(out.Send) > 0 {
		n++
		ra := dec(t, out.Send[0].RA)
		if ra.RouterLifetime != 0 || pios(ra)[netip.MustParseAddr("2001:db8:200:4400::")].PreferredLifetime != 0 {
			t.Fatalf("final RA %+v", ra)
		}
		if a.Next().IsZero() {
			if !out.AddrsChanged || len(out.Addrs) != 0 {
				t.Fatalf("addresses kept: %+v", out)
			}
			break
		}
		out = a.Tick(a.Next())
	}
	if n != FinalAdvertisements || !a.Next().IsZero() {
		t.Fatalf("%d final RAs", n)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{MaxInterval: time.Second}, {MaxInterval: 100 * time.Second, MinInterval: 200 * time.Second},
		{RouterLifetime: time.Second}, {DNS: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}, {MaxPreferred: time.Hour, MaxValid: time.Minute}} {
		if c.Validate() == nil {
			t.Errorf("%+v valid", c)
		}
	}
}

func FuzzReceiveRS(f *testing.F) {
	f.Add(rs(), uint8(255))
	f.Add(rs(&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: []byte{2, 0, 0, 0, 0, 1}}), uint8(255))
	f.Fuzz(func(t *testing.T, b []byte, hl uint8) {
		a := newAdv(t, Config{})
		a.Update([]Subnet{subnet("2001:db8:200:4400::/64", Forever, Forever)}, true, t0)
		before, sent := a.Next(), a.Sent
		out, err := a.ReceiveRS(b, netip.MustParseAddr("fe80::2"), int(hl), t0.Add(time.Minute))
		if len(out.Send) != 0 {
			t.Fatal("sent from the receive path")
		}
		if err != nil && (a.Next() != before || a.Sent != sent) {
			t.Fatal("invalid RS changed the schedule")
		}
		if err == nil && a.Next().After(before) {
			t.Fatal("valid RS delayed the next RA")
		}
	})
}
