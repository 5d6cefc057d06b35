package ifmon

import (
	"net/netip"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

const upFlags = FlagUp | FlagLowerUp

func linkUpMsg(idx int, name string) LinkMsg {
	return LinkMsg{Index: idx, Name: name, Flags: upFlags, OperState: OperUp, MTU: 1500}
}

// noCarrier is what a veth shows when its peer goes down: still IFF_UP,
// no IFF_LOWER_UP, operstate lower-layer-down.
func noCarrier(idx int, name string) LinkMsg {
	return LinkMsg{Index: idx, Name: name, Flags: FlagUp, OperState: OperLowerLayerDown, MTU: 1500}
}

func v6(idx int, p string, flags int) AddrMsg {
	return AddrMsg{Index: idx, Prefix: netip.MustParsePrefix(p), Flags: flags, PreferredLft: -1, ValidLft: -1}
}

func v4(idx int, p string, flags int) AddrMsg {
	return AddrMsg{Index: idx, Prefix: netip.MustParsePrefix(p), Flags: flags, PreferredLft: -1, ValidLft: -1}
}

func del[T AddrMsg | RouteMsg](m T) T {
	switch x := any(&m).(type) {
	case *AddrMsg:
		x.Deleted = true
	case *RouteMsg:
		x.Deleted = true
	}
	return m
}

func def6(idx int, gw string, prio int) RouteMsg {
	return RouteMsg{Index: idx, Gateway: netip.MustParseAddr(gw), Table: TableMain, Family: FamilyV6, Priority: prio}
}

func def4(idx int, gw string, prio int) RouteMsg {
	return RouteMsg{Index: idx, Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr(gw), Table: TableMain, Family: FamilyV4, Priority: prio}
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// step feeds messages at a time (ms after t0) and then, if want is set,
// checks the reported state of the first device.
type step struct {
	at   int
	msgs []any
	want *Link
	// wantGenSame asserts the step reported nothing new.
	wantGenSame bool
}

func feed(tr *Tracker, now time.Time, msgs ...any) {
	for _, m := range msgs {
		switch x := m.(type) {
		case LinkMsg:
			tr.Link(x, now)
		case AddrMsg:
			tr.Addr(x, now)
		case RouteMsg:
			tr.Route(x, now)
		case resetMsg:
			tr.Reset(now)
		default:
			panic("unknown message")
		}
	}
}

type resetMsg struct{}

// upW is a fully usable wlan0 at index 3 with the given addresses.
func upW(idx int, a6 string, gw6 string, a4, gw4 string) *Link {
	l := &Link{Name: "wlan0", Index: idx, Exists: true, Up: true, MTU: 1500}
	if a6 != "" {
		l.IPv6 = ip(a6)
	}
	if gw6 != "" {
		l.Gateway6, l.Default6 = ip(gw6), true
	}
	if a4 != "" {
		l.IPv4 = ip(a4)
	}
	if gw4 != "" {
		l.Gateway4, l.Default4 = ip(gw4), true
	}
	return l
}

func with(l *Link, f func(*Link)) *Link { c := *l; f(&c); return &c }

func notUp(l *Link) *Link { return with(l, func(l *Link) { l.Up = false }) }

func TestTrackerScenarios(t *testing.T) {
	t.Parallel()
	base := []any{linkUpMsg(3, "wlan0")}
	ready := upW(3, "", "", "", "")
	gone := &Link{Name: "wlan0"}

	tests := []struct {
		name  string
		steps []step
	}{
		{"tentative becomes usable after DAD", []step{
			{at: 0, msgs: append(base, v6(3, "2001:db8::5/64", AddrTentative), def6(3, "fe80::1", 1024))},
			{at: 60, want: with(ready, func(l *Link) { l.Gateway6, l.Default6 = ip("fe80::1"), true })},
			{at: 1000, msgs: []any{v6(3, "2001:db8::5/64", 0)}, want: upW(3, "2001:db8::5", "fe80::1", "", "")},
		}},
		{"dadfailed is never used", []step{
			{at: 0, msgs: append(base, v6(3, "2001:db8::1/64", AddrTentative), v6(3, "2001:db8::9/64", 0))},
			{at: 60, want: upW(3, "2001:db8::9", "", "", "")},
			{at: 900, msgs: []any{v6(3, "2001:db8::1/64", AddrTentative|AddrDADFailed)}, want: upW(3, "2001:db8::9", "", "", "")},
			{at: 950, msgs: []any{v6(3, "2001:db8::1/64", AddrDADFailed)}, want: upW(3, "2001:db8::9", "", "", "")},
		}},
		{"deprecated by flag or by preferred lifetime 0", []step{
			{at: 0, msgs: append(base, v6(3, "2001:db8::1/64", 0), v6(3, "2001:db8::2/64", 0))},
			{at: 60, want: upW(3, "2001:db8::1", "", "", "")},
			{at: 70, msgs: []any{v6(3, "2001:db8::1/64", AddrDeprecated)}, want: upW(3, "2001:db8::2", "", "", "")},
			{at: 80, msgs: []any{AddrMsg{Index: 3, Prefix: netip.MustParsePrefix("2001:db8::2/64"), PreferredLft: 0, ValidLft: 3600}}, want: ready},
			{at: 90, msgs: []any{AddrMsg{Index: 3, Prefix: netip.MustParsePrefix("2001:db8::2/64"), PreferredLft: 1800, ValidLft: 3600}}, want: upW(3, "2001:db8::2", "", "", "")},
		}},
		{"stable preferred over temporary, then lowest", []step{
			{at: 0, msgs: append(base, v6(3, "2001:db8::1/64", AddrTemporary))},
			{at: 60, want: upW(3, "2001:db8::1", "", "", "")},
			{at: 70, msgs: []any{v6(3, "2001:db8::ffff/64", 0)}, want: upW(3, "2001:db8::ffff", "", "", "")},
			{at: 80, msgs: []any{v6(3, "2001:db8::8/64", AddrPermanent)}, want: upW(3, "2001:db8::8", "", "", "")},
			{at: 90, msgs: []any{del(v6(3, "2001:db8::8/64", 0)), del(v6(3, "2001:db8::ffff/64", 0))}, want: upW(3, "2001:db8::1", "", "", "")},
		}},
		{"link-local and non-global scope are ignored", []step{
			{at: 0, msgs: append(base, v6(3, "fe80::1/64", 0), AddrMsg{Index: 3, Prefix: netip.MustParsePrefix("2001:db8::1/64"), Scope: 200})},
			{at: 60, want: ready},
		}},
		{"carrier flap within UpHold is coalesced, loss at once", []step{
			{at: 0, msgs: base},
			{at: 49, want: notUp(ready)},
			{at: 50, want: ready},
			{at: 100, msgs: []any{noCarrier(3, "wlan0")}, want: notUp(ready)},
			{at: 110, msgs: []any{linkUpMsg(3, "wlan0")}, want: notUp(ready)},
			{at: 120, msgs: []any{noCarrier(3, "wlan0")}, want: notUp(ready), wantGenSame: true},
			{at: 130, msgs: []any{linkUpMsg(3, "wlan0")}, want: notUp(ready), wantGenSame: true},
			{at: 179, want: notUp(ready), wantGenSame: true},
			{at: 180, want: ready},
			// Down and up between two reads still restarts the hold: the
			// router must not see an "up" that was never held.
			{at: 200, msgs: []any{noCarrier(3, "wlan0"), linkUpMsg(3, "wlan0")}, want: notUp(ready)},
			{at: 250, want: ready},
		}},
		{"admin down, dormant and lower-layer-down are not up", []step{
			{at: 0, msgs: []any{LinkMsg{Index: 3, Name: "wlan0", Flags: upFlags, OperState: OperDormant, MTU: 1500}}},
			{at: 100, want: notUp(ready)},
			{at: 100, msgs: []any{LinkMsg{Index: 3, Name: "wlan0", Flags: upFlags, OperState: OperUnknown, MTU: 1400}}},
			{at: 150, want: with(ready, func(l *Link) { l.MTU = 1400 })},
			{at: 160, msgs: []any{LinkMsg{Index: 3, Name: "wlan0", Flags: FlagLowerUp, OperState: OperDown, MTU: 1400}}, want: with(notUp(ready), func(l *Link) { l.MTU = 1400 })},
		}},
		{"delete and re-create with a new index", []step{
			{at: 0, msgs: append(base, v6(3, "2001:db8::1/64", 0), def6(3, "fe80::1", 1024), v4(3, "192.0.2.2/24", 0), def4(3, "192.0.2.1", 0))},
			{at: 50, want: upW(3, "2001:db8::1", "fe80::1", "192.0.2.2", "192.0.2.1")},
			{at: 60, msgs: []any{LinkMsg{Index: 3, Name: "wlan0", Deleted: true}}, want: gone},
			// The kernel's address deletions come later on another socket.
			{at: 61, msgs: []any{del(v6(3, "2001:db8::1/64", 0)), del(v4(3, "192.0.2.2/24", 0))}, want: gone, wantGenSame: true},
			{at: 70, msgs: []any{linkUpMsg(9, "wlan0")}, want: notUp(upW(9, "", "", "", ""))},
			{at: 120, want: upW(9, "", "", "", "")},
		}},
		{"address before its link message", []step{
			{at: 0, msgs: []any{v6(4, "2001:db8::4/64", 0)}, want: gone},
			{at: 1, msgs: []any{linkUpMsg(4, "wlan0")}},
			{at: 60, want: upW(4, "2001:db8::4", "", "", "")},
		}},
		{"rename in and out", []step{
			{at: 0, msgs: []any{linkUpMsg(5, "eth9"), v6(5, "2001:db8::5/64", 0)}},
			{at: 100, want: gone},
			{at: 100, msgs: []any{linkUpMsg(5, "wlan0")}, want: upW(5, "2001:db8::5", "", "", "")},
			{at: 110, msgs: []any{linkUpMsg(5, "wlan1")}, want: gone},
		}},
		{"two default routes with different metrics", []step{
			{at: 0, msgs: append(base, v6(3, "2001:db8::1/64", 0), def6(3, "fe80::2", 200), def6(3, "fe80::1", 100))},
			{at: 50, want: upW(3, "2001:db8::1", "fe80::1", "", "")},
			{at: 60, msgs: []any{del(def6(3, "fe80::1", 100))}, want: upW(3, "2001:db8::1", "fe80::2", "", "")},
			{at: 70, msgs: []any{def6(3, "fe80::1", 100)}, want: upW(3, "2001:db8::1", "fe80::1", "", "")},
			{at: 80, msgs: []any{del(def6(3, "fe80::2", 200))}, want: upW(3, "2001:db8::1", "fe80::1", "", "")},
			{at: 90, msgs: []any{del(def6(3, "fe80::1", 100))}, want: upW(3, "2001:db8::1", "", "", "")},
			// Other tables and non-default routes do not count.
			{at: 100, msgs: []any{
				RouteMsg{Index: 3, Table: 100, Family: FamilyV6, Gateway: ip("fe80::1")},
				RouteMsg{Index: 3, Dst: netip.MustParsePrefix("2001:db8::/64"), Family: FamilyV6},
				RouteMsg{Index: 3, Family: FamilyV6, Type: 7},
			}, want: upW(3, "2001:db8::1", "", "", ""), wantGenSame: true},
			// Table 0 (unset) is the main table, the family comes from Dst.
			{at: 110, msgs: []any{RouteMsg{Index: 3, Dst: netip.MustParsePrefix("::/0")}}, want: with(upW(3, "2001:db8::1", "", "", ""), func(l *Link) { l.Default6 = true })},
		}},
		{"replace moves the default to another device", []step{
			{at: 0, msgs: append(base, v4(3, "192.0.2.2/24", 0), def4(3, "192.0.2.1", 0))},
			{at: 50, want: upW(3, "", "", "192.0.2.2", "192.0.2.1")},
			{at: 60, msgs: []any{func() RouteMsg { r := def4(8, "198.51.100.1", 0); r.Replace = true; return r }()}, want: upW(3, "", "", "192.0.2.2", "")},
		}},
		{"IPv4 primary over secondary; silent route flushes", []step{
			{at: 0, msgs: append(base, v4(3, "192.0.2.9/24", AddrSecondary), v4(3, "192.0.2.7/24", 0), v4(3, "198.51.100.2/24", 0), def4(3, "192.0.2.1", 0))},
			{at: 50, want: upW(3, "", "", "192.0.2.7", "192.0.2.1")},
			{at: 60, msgs: []any{del(v4(3, "192.0.2.7/24", 0))}, want: upW(3, "", "", "198.51.100.2", "192.0.2.1")},
			{at: 70, msgs: []any{del(v4(3, "198.51.100.2/24", 0))}, want: upW(3, "", "", "192.0.2.9", "192.0.2.1")},
			// The last IPv4 address gone, the kernel drops the IPv4 routes
			// and says nothing.
			{at: 80, msgs: []any{del(v4(3, "192.0.2.9/24", 0))}, want: ready},
			{at: 90, msgs: []any{v4(3, "192.0.2.7/24", 0), def4(3, "192.0.2.1", 0), def6(3, "fe80::1", 0)}},
			// Admin down flushes the IPv4 routes silently too.
			{at: 100, msgs: []any{LinkMsg{Index: 3, Name: "wlan0", MTU: 1500, OperState: OperDown}}, want: notUp(upW(3, "", "", "192.0.2.7", ""))},
		}},
		{"IPv4-only device", []step{
			{at: 0, msgs: []any{LinkMsg{Index: 3, Name: "wlan0", Flags: upFlags | 0x10 /* IFF_POINTOPOINT */, OperState: OperUnknown, MTU: 1428},
				v4(3, "10.64.1.2/32", 0), RouteMsg{Index: 3, Family: FamilyV4}}},
			{at: 50, want: &Link{Name: "wlan0", Index: 3, Exists: true, Up: true, MTU: 1428, IPv4: ip("10.64.1.2"), Default4: true}},
		}},
		{"Reset then re-list keeps a steady device steady", []step{
			{at: 0, msgs: append(base, v6(3, "2001:db8::1/64", 0), def6(3, "fe80::1", 1))},
			{at: 50, want: upW(3, "2001:db8::1", "fe80::1", "", "")},
			{at: 60, msgs: []any{resetMsg{}, linkUpMsg(3, "wlan0"), v6(3, "2001:db8::1/64", 0), def6(3, "fe80::1", 1)}, want: upW(3, "2001:db8::1", "fe80::1", "", ""), wantGenSame: true},
			// What the re-list no longer has is gone.
			{at: 70, msgs: []any{resetMsg{}, linkUpMsg(3, "wlan0")}, want: ready},
			// A device that came back under a new index is held again.
			{at: 80, msgs: []any{resetMsg{}, linkUpMsg(4, "wlan0")}, want: notUp(upW(4, "", "", "", ""))},
			{at: 130, want: upW(4, "", "", "", "")},
			{at: 140, msgs: []any{resetMsg{}}, want: gone},
			// Continuity ends with the first Current after Reset.
			{at: 150, msgs: []any{linkUpMsg(4, "wlan0")}, want: notUp(upW(4, "", "", "", ""))},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr := NewTracker([]string{"wlan0", "wwan0"}, Options{})
			for i, s := range tc.steps {
				now := at(s.at)
				gen := tr.Generation()
				feed(tr, now, s.msgs...)
				if s.want == nil {
					continue
				}
				got := tr.Current(now)
				if len(got) != 2 || got[1].Name != "wwan0" {
					t.Fatalf("step %d: devices %+v", i, got)
				}
				if got[0] != *s.want {
					t.Fatalf("step %d (t=%dms):\n got %+v\nwant %+v", i, s.at, got[0], *s.want)
				}
				if s.wantGenSame && tr.Generation() != gen {
					t.Fatalf("step %d: generation moved %d -> %d", i, gen, tr.Generation())
				}
				if got[0].Usable6() && !got[0].Up || got[0].Usable4() && !got[0].Up {
					t.Fatalf("step %d: usable while not up", i)
				}
			}
		})
	}
}

func TestTrackerDeadline(t *testing.T) {
	t.Parallel()
	tr := NewTracker([]string{"wlan0", "wwan0"}, Options{UpHold: 100 * time.Millisecond})
	if d := tr.NextDeadline(); !d.IsZero() {
		t.Fatalf("deadline with nothing held: %v", d)
	}
	tr.Link(linkUpMsg(3, "wlan0"), at(0))
	tr.Link(linkUpMsg(4, "wwan0"), at(30))
	if d := tr.NextDeadline(); !d.Equal(at(100)) {
		t.Fatalf("deadline %v, want %v", d, at(100))
	}
	if tr.Changed(at(99)) != true { // the devices now exist, held
		t.Fatal("existence not reported as a change")
	}
	tr.Current(at(99))
	if tr.Changed(at(99)) {
		t.Fatal("Changed right after Current")
	}
	if !tr.Changed(at(100)) {
		t.Fatal("the hold ending is no change")
	}
	g := tr.Generation()
	cur := tr.Current(at(100))
	if !cur[0].Up || cur[1].Up || tr.Generation() != g+1 {
		t.Fatalf("at 100ms: %+v gen %d->%d", cur, g, tr.Generation())
	}
	if d := tr.NextDeadline(); !d.Equal(at(130)) {
		t.Fatalf("deadline %v, want %v", d, at(130))
	}
	tr.Current(at(130))
	if d := tr.NextDeadline(); !d.IsZero() {
		t.Fatalf("deadline after all reported: %v", d)
	}
	// A message after Current at the same instant must still get a
	// deadline, or the shell would never look again.
	tr2 := NewTracker([]string{"wlan0"}, Options{UpHold: -1})
	tr2.Current(at(5))
	tr2.Link(linkUpMsg(3, "wlan0"), at(5))
	if d := tr2.NextDeadline(); !d.Equal(at(5)) {
		t.Fatalf("no-hold deadline %v", d)
	}
	if !tr2.Current(at(5))[0].Up {
		t.Fatal("no hold: not up at once")
	}
}

func TestTrackerDoubtful(t *testing.T) {
	t.Parallel()
	tr := NewTracker([]string{"wlan0"}, Options{})
	tr.Link(linkUpMsg(3, "wlan0"), at(0))
	tr.Route(def4(3, "192.0.2.1", 0), at(0))
	if tr.Doubtful() {
		t.Fatal("a route via an up device is doubtful")
	}
	// Read in this order, "route added" and "device down" contradict the
	// kernel: it cannot hold a route via a down device.
	tr.Link(LinkMsg{Index: 3, Name: "wlan0", OperState: OperDown}, at(1))
	tr.Route(def4(3, "192.0.2.1", 5), at(1))
	if !tr.Doubtful() {
		t.Fatal("route via a down device not doubtful")
	}
	if tr.Doubtful() {
		t.Fatal("Doubtful does not forget")
	}
	// Deletions and unknown devices are no contradiction.
	tr.Route(del(def4(3, "192.0.2.1", 5)), at(2))
	tr.Route(def4(9, "192.0.2.1", 5), at(2))
	if tr.Doubtful() {
		t.Fatal("doubt without a contradiction")
	}
	tr.Route(def4(3, "192.0.2.1", 5), at(3))
	tr.Reset(at(4))
	if tr.Doubtful() {
		t.Fatal("Reset keeps the doubt")
	}
}

func TestTrackerDuplicatesAndUnknown(t *testing.T) {
	t.Parallel()
	tr := NewTracker([]string{"wlan0", "wlan0"}, Options{})
	if got := tr.Current(at(0)); len(got) != 1 {
		t.Fatalf("duplicate device reported twice: %+v", got)
	}
	// Messages with nonsense indexes or prefixes are dropped.
	tr.Link(LinkMsg{Index: 0, Name: "wlan0", Flags: upFlags}, at(0))
	tr.Addr(AddrMsg{Index: -1, Prefix: netip.MustParsePrefix("2001:db8::1/64")}, at(0))
	tr.Addr(AddrMsg{Index: 3}, at(0))
	tr.Route(RouteMsg{Index: 3}, at(0)) // no family to be had
	if len(tr.ifs) != 0 {
		t.Fatalf("state from junk: %d entries", len(tr.ifs))
	}
	// A stray add then delete for a device never seen leaves nothing.
	tr.Addr(v6(7, "2001:db8::1/64", 0), at(0))
	tr.Route(def6(7, "fe80::1", 0), at(0))
	tr.Addr(del(v6(7, "2001:db8::1/64", 0)), at(0))
	tr.Route(del(def6(7, "fe80::1", 0)), at(0))
	if len(tr.ifs) != 0 {
		t.Fatalf("stray messages leak: %d entries", len(tr.ifs))
	}
}

// FuzzTracker feeds random message sequences and checks invariants that must
// hold whatever the kernel says, in whatever order.
func FuzzTracker(f *testing.F) {
	f.Add([]byte{0, 1, 0, 10, 3, 1, 0, 60, 5, 1, 2, 0, 1, 1, 0, 1})
	f.Add([]byte{0, 2, 1, 0, 3, 2, 4, 0, 4, 2, 4, 0, 7, 0, 0, 0, 0, 2, 1, 100})
	f.Add([]byte{0, 1, 0, 0, 1, 1, 0, 1, 0, 1, 0, 1, 6, 0, 0, 0, 2, 1, 0, 50})
	names := []string{"wlan0", "wwan0", "eth9"}
	addrs := []netip.Prefix{
		netip.MustParsePrefix("2001:db8::1/64"), netip.MustParsePrefix("2001:db8::2/64"),
		netip.MustParsePrefix("fe80::1/64"), netip.MustParsePrefix("192.0.2.1/24"),
		netip.MustParsePrefix("192.0.2.2/24"), netip.MustParsePrefix("::ffff:198.51.100.1/120"),
	}
	gws := []netip.Addr{{}, ip("fe80::1"), ip("192.0.2.254"), ip("2001:db8::ff")}
	f.Fuzz(func(t *testing.T, data []byte) {
		tr := NewTracker([]string{"wlan0", "wwan0"}, Options{UpHold: 20 * time.Millisecond})
		now := t0
		type shadow struct {
			name string
			up   bool
		}
		links := map[int]shadow{}
		for len(data) >= 4 {
			op, a, b, c := data[0], data[1], data[2], data[3]
			data = data[4:]
			now = now.Add(time.Duration(c) * time.Millisecond)
			idx := 1 + int(a%4)
			switch op % 9 {
			case 0, 1:
				flags := uint32(0)
				if b&1 != 0 {
					flags |= FlagUp
				}
				if b&2 != 0 {
					flags |= FlagLowerUp
				}
				m := LinkMsg{Index: idx, Name: names[int(b>>2)%len(names)], Flags: flags, OperState: (b >> 4) % 7, MTU: int(c) + 1280}
				tr.Link(m, now)
				links[idx] = shadow{m.Name, linkUp(m.Flags, m.OperState)}
			case 2:
				tr.Link(LinkMsg{Index: idx, Deleted: true}, now)
				delete(links, idx)
			case 3, 4:
				tr.Addr(AddrMsg{Index: idx, Prefix: addrs[int(b)%len(addrs)], Flags: int(c) & 0xff, Scope: int(b>>6) * 100,
					PreferredLft: int(b>>4) % 2, ValidLft: int(b>>5) % 2, Deleted: op%9 == 4}, now)
			case 5, 6:
				tr.Route(RouteMsg{Index: idx, Gateway: gws[int(b)%len(gws)], Family: []int{0, FamilyV4, FamilyV6}[int(b>>2)%3],
					Table: []int{0, TableMain, 100}[int(b>>4)%3], Priority: int(c % 3), Deleted: op%9 == 6, Replace: b&0x80 != 0}, now)
			case 7:
				tr.Reset(now)
				links = map[int]shadow{}
			case 8:
				if d := tr.NextDeadline(); !d.IsZero() {
					if d.After(now) {
						now = d
					}
					tr.Current(now)
					if d2 := tr.NextDeadline(); d2.Equal(d) {
						t.Fatalf("deadline %v does not move after Current at %v", d, now)
					}
				}
			}
			if op&0x10 != 0 {
				continue // sometimes let messages pile up between reads
			}
			cur := tr.Current(now)
			g := tr.Generation()
			again := tr.Current(now)
			if tr.Generation() != g {
				t.Fatal("Current twice at the same time reported a change")
			}
			if d := tr.NextDeadline(); !d.IsZero() && !d.After(now) {
				t.Fatalf("deadline %v not after the Current at %v", d, now)
			}
			for i, l := range cur {
				if l != again[i] {
					t.Fatalf("Current not deterministic: %+v vs %+v", l, again[i])
				}
				if !l.Up && (l.Usable6() || l.Usable4()) {
					t.Fatalf("usable while not up: %+v", l)
				}
				if l.Exists != (l.Index > 0) {
					t.Fatalf("Exists and Index disagree: %+v", l)
				}
				if !l.Exists && l != (Link{Name: l.Name}) {
					t.Fatalf("state for a missing device: %+v", l)
				}
				if l.IPv6.IsValid() && (!l.IPv6.Is6() || l.IPv6.IsLinkLocalUnicast() || l.IPv6.Is4In6()) {
					t.Fatalf("bad IPv6 choice: %+v", l)
				}
				if l.IPv4.IsValid() && !l.IPv4.Is4() {
					t.Fatalf("bad IPv4 choice: %+v", l)
				}
				if l.Gateway6.IsValid() && !l.Default6 || l.Gateway4.IsValid() && !l.Default4 {
					t.Fatalf("gateway without default: %+v", l)
				}
				// Losses are immediate: up is only ever reported for a
				// device whose last word from the kernel was "up".
				if s, ok := links[l.Index]; l.Up && (!ok || !s.up || s.name != l.Name) {
					t.Fatalf("reported up but the kernel said %+v (ok=%v): %+v", s, ok, l)
				}
			}
		}
	})
}
