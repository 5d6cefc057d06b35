package netifd

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"nemod/ubus"
)

// Interface is what netifd reports about one interface: its status reply,
// a member of its dump, or the data of an interface.update or
// interface.down notification.
type Interface struct {
	Name                              string
	Up, Pending, Available, Autostart bool
	Dynamic                           bool
	UpSince                           time.Time // zero unless up
	L3Device, Device, Proto           string
	Metric, DNSMetric                 int
	Delegation                        bool
	IPv4, IPv6                        []AddrInfo
	Prefixes                          []PrefixInfo     // delegated to this interface ("ipv6-prefix")
	Assigned                          []AssignmentInfo // given to this interface from others ("ipv6-prefix-assignment")
	Routes                            []RouteInfo
	DNS                               []netip.Addr
	DNSSearch                         []string
	Data                              ubus.Table // the protocol handler's own data
	Updated                           []string   // what the last update changed: "addresses", "routes", ...
	IPv4Table, IPv6Table              int
	InactiveIPv4, InactiveIPv6        []AddrInfo // configured but not applied
	InactiveRoutes                    []RouteInfo
}

// AddrInfo is an address netifd holds. Zero times are forever.
type AddrInfo struct {
	Prefix           netip.Prefix
	PtP              netip.Addr
	Preferred, Valid time.Time
	Class            string
}

// PrefixInfo is a prefix delegated to the interface and how netifd split
// it among downstream interfaces.
type PrefixInfo struct {
	Prefix           netip.Prefix
	Preferred, Valid time.Time
	Class            string
	Assigned         map[string]netip.Prefix // downstream interface -> its part
}

// AssignmentInfo is a part of another interface's prefix netifd gave this
// one, and the address it put on it.
type AssignmentInfo struct {
	Prefix           netip.Prefix
	Preferred, Valid time.Time
	Local            netip.Prefix
}

// RouteInfo is a route netifd holds for the interface.
type RouteInfo struct {
	Target  netip.Prefix
	Nexthop netip.Addr   // :: or 0.0.0.0 when on-link
	Source  netip.Prefix // ::/0 or 0.0.0.0/0 when not source-specific
	Metric  int          // -1: the interface's
	Table   int          // 0: main
	MTU     int
	Type    int
	Valid   time.Time
}

// Default reports whether the route is a default route.
func (r RouteInfo) Default() bool { return r.Target.IsValid() && r.Target.Bits() == 0 }

// SourceSpecific reports whether the route applies only to some sources.
func (r RouteInfo) SourceSpecific() bool { return r.Source.IsValid() && r.Source.Bits() != 0 }

// DefaultRoutes returns the interface's default routes of one family (4 or
// 6).
func (i Interface) DefaultRoutes(family int) []RouteInfo {
	var out []RouteInfo
	for _, r := range i.Routes {
		if r.Default() && (r.Target.Addr().Is4() == (family == 4)) {
			out = append(out, r)
		}
	}
	return out
}

// ParseStatus decodes a status reply for the interface called name. Times
// are now plus the seconds netifd reports. Members it does not know are
// ignored (netifd adds some over time); a known member of the wrong type or
// an address that does not parse is an error.
func ParseStatus(name string, t ubus.Table, now time.Time) (Interface, error) {
	p := parser{t: t, now: now, where: name}
	i := Interface{Name: name}
	i.Up = p.bool("up")
	i.Pending = p.bool("pending")
	i.Available = p.bool("available")
	i.Autostart = p.bool("autostart")
	i.Dynamic = p.bool("dynamic")
	if up, ok := p.int("uptime"); ok && i.Up {
		i.UpSince = now.Add(-time.Duration(up) * time.Second)
	}
	i.L3Device = p.str("l3_device")
	i.Device = p.str("device")
	i.Proto = p.str("proto")
	i.Metric, _ = p.int("metric")
	i.DNSMetric, _ = p.int("dns_metric")
	i.Delegation = p.bool("delegation")
	i.IPv4Table, _ = p.int("ip4table")
	i.IPv6Table, _ = p.int("ip6table")
	for _, s := range p.array("updated") {
		if str, ok := s.(ubus.String); ok {
			i.Updated = append(i.Updated, string(str))
		} else {
			p.failf("updated: %s entry", s.Type())
		}
	}
	i.IPv4 = p.addrs(t, "ipv4-address", false)
	i.IPv6 = p.addrs(t, "ipv6-address", true)
	i.Prefixes = p.prefixes()
	i.Assigned = p.assignments()
	i.Routes = p.routes(t)
	for _, s := range p.array("dns-server") {
		if a, ok := p.addrValue(s, "dns-server"); ok {
			i.DNS = append(i.DNS, a)
		}
	}
	for _, s := range p.array("dns-search") {
		if str, ok := s.(ubus.String); ok {
			i.DNSSearch = append(i.DNSSearch, string(str))
		}
	}
	if in, ok := p.table(t, "inactive"); ok {
		i.InactiveIPv4 = p.addrs(in, "ipv4-address", false)
		i.InactiveIPv6 = p.addrs(in, "ipv6-address", true)
		i.InactiveRoutes = p.routes(in)
	}
	i.Data, _ = p.table(t, "data")
	if p.err != nil {
		return Interface{}, p.err
	}
	return i, nil
}

// ParseDump decodes the reply to network.interface's dump: every
// interface, in netifd's order.
func ParseDump(t ubus.Table, now time.Time) ([]Interface, error) {
	list, ok := t.Array("interface")
	if !ok {
		return nil, fmt.Errorf("netifd: dump without an interface array")
	}
	out := make([]Interface, 0, len(list))
	for _, v := range list {
		e, ok := v.(ubus.Table)
		if !ok {
			return nil, fmt.Errorf("netifd: dump entry is a %s", v.Type())
		}
		name, ok := e.String("interface")
		if !ok || name == "" {
			return nil, fmt.Errorf("netifd: dump entry without a name")
		}
		i, err := ParseStatus(name, e, now)
		if err != nil {
			return nil, err
		}
		out = append(out, i)
	}
	return out, nil
}

// The notifications netifd sends on network.interface and on
// network.interface.NAME.
const (
	NotifyUpdate = "interface.update" // the full status
	NotifyDown   = "interface.down"   // the short form of a down interface
)

// ParseNotification decodes an interface.update or interface.down
// notification.
func ParseNotification(method string, t ubus.Table, now time.Time) (Interface, error) {
	if method != NotifyUpdate && method != NotifyDown {
		return Interface{}, fmt.Errorf("netifd: notification %q is not about an interface", method)
	}
	name, ok := t.String("interface")
	if !ok || name == "" {
		return Interface{}, fmt.Errorf("netifd: %s without an interface name", method)
	}
	i, err := ParseStatus(name, t, now)
	if err == nil && method == NotifyDown && i.Up {
		err = fmt.Errorf("netifd: %s for %q says it is up", method, name)
	}
	return i, err
}

// IfEvent is a "network.interface" event (sent to ubusd's event object):
// Action "ifup", "ifdown" or "ifupdate" for Interface.
type IfEvent struct {
	Action, Interface string
}

// EventName is the name netifd sends its interface events under.
const EventName = "network.interface"

// ParseEvent decodes a network.interface event.
func ParseEvent(name string, data ubus.Table) (IfEvent, error) {
	if name != EventName {
		return IfEvent{}, fmt.Errorf("netifd: event %q is not %s", name, EventName)
	}
	a, ok1 := data.String("action")
	n, ok2 := data.String("interface")
	if !ok1 || !ok2 || n == "" {
		return IfEvent{}, fmt.Errorf("netifd: %s event without action or interface", EventName)
	}
	return IfEvent{Action: a, Interface: n}, nil
}

type parser struct {
	t     ubus.Table
	now   time.Time
	where string
	err   error
}

func (p *parser) failf(format string, a ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("netifd: %s: "+format, append([]any{p.where}, a...)...)
	}
}

func get[T ubus.Value](p *parser, t ubus.Table, key string) (T, bool) {
	var zero T
	v, ok := t.Get(key)
	if !ok {
		return zero, false
	}
	x, ok := v.(T)
	if !ok {
		p.failf("%s is a %s", key, v.Type())
	}
	return x, ok
}

func (p *parser) bool(key string) bool {
	v, _ := get[ubus.Int8](p, p.t, key)
	return v != 0
}

func (p *parser) str(key string) string {
	v, _ := get[ubus.String](p, p.t, key)
	return string(v)
}

func (p *parser) int(key string) (int, bool) {
	return p.intIn(p.t, key)
}

func (p *parser) intIn(t ubus.Table, key string) (int, bool) {
	v, ok := t.Get(key)
	if !ok {
		return 0, false
	}
	n, ok := ubus.IntOf(v)
	if !ok {
		p.failf("%s is a %s", key, v.Type())
	}
	return int(n), ok
}

func (p *parser) array(key string) ubus.Array {
	v, _ := get[ubus.Array](p, p.t, key)
	return v
}

func (p *parser) table(t ubus.Table, key string) (ubus.Table, bool) {
	return get[ubus.Table](p, t, key)
}

// lifetime turns remaining seconds into a deadline.
func (p *parser) lifetime(t ubus.Table, key string) time.Time {
	s, ok := p.intIn(t, key)
	if !ok {
		return time.Time{}
	}
	return p.now.Add(time.Duration(s) * time.Second)
}

func (p *parser) addrValue(v ubus.Value, what string) (netip.Addr, bool) {
	s, ok := v.(ubus.String)
	if !ok {
		p.failf("%s is a %s", what, v.Type())
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(string(s))
	if err != nil {
		p.failf("%s: %v", what, err)
		return netip.Addr{}, false
	}
	return a, true
}

// prefixOf reads "address" and "mask" of t.
func (p *parser) prefixOf(t ubus.Table, what string) (netip.Prefix, bool) {
	v, ok := t.Get("address")
	if !ok {
		p.failf("%s without an address", what)
		return netip.Prefix{}, false
	}
	a, ok := p.addrValue(v, what)
	if !ok {
		return netip.Prefix{}, false
	}
	m, ok := p.intIn(t, "mask")
	if !ok || m < 0 || m > a.BitLen() {
		p.failf("%s %v: mask %d", what, a, m)
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, m), true
}

func (p *parser) entries(t ubus.Table, key string) []ubus.Table {
	arr, _ := get[ubus.Array](p, t, key)
	var out []ubus.Table
	for _, v := range arr {
		e, ok := v.(ubus.Table)
		if !ok {
			p.failf("%s entry is a %s", key, v.Type())
			return nil
		}
		out = append(out, e)
	}
	return out
}

func (p *parser) addrs(t ubus.Table, key string, v6 bool) []AddrInfo {
	var out []AddrInfo
	for _, e := range p.entries(t, key) {
		pfx, ok := p.prefixOf(e, key)
		if !ok {
			return nil
		}
		if pfx.Addr().Is6() != v6 {
			p.failf("%s holds %v", key, pfx)
			return nil
		}
		a := AddrInfo{Prefix: pfx, Preferred: p.lifetime(e, "preferred"), Valid: p.lifetime(e, "valid")}
		if v, ok := e.Get("ptpaddress"); ok {
			a.PtP, _ = p.addrValue(v, key+" ptpaddress")
		}
		a.Class, _ = e.String("class")
		out = append(out, a)
	}
	return out
}

func (p *parser) prefixes() []PrefixInfo {
	var out []PrefixInfo
	for _, e := range p.entries(p.t, "ipv6-prefix") {
		pfx, ok := p.prefixOf(e, "ipv6-prefix")
		if !ok {
			return nil
		}
		pi := PrefixInfo{Prefix: pfx, Preferred: p.lifetime(e, "preferred"), Valid: p.lifetime(e, "valid")}
		pi.Class, _ = e.String("class")
		if as, ok := p.table(e, "assigned"); ok {
			pi.Assigned = map[string]netip.Prefix{}
			for _, f := range as {
				at, ok := f.Value.(ubus.Table)
				if !ok {
					p.failf("assigned %s is a %s", f.Name, f.Value.Type())
					return nil
				}
				if ap, ok := p.prefixOf(at, "assigned "+f.Name); ok {
					pi.Assigned[f.Name] = ap
				}
			}
		}
		out = append(out, pi)
	}
	return out
}

func (p *parser) assignments() []AssignmentInfo {
	var out []AssignmentInfo
	for _, e := range p.entries(p.t, "ipv6-prefix-assignment") {
		pfx, ok := p.prefixOf(e, "ipv6-prefix-assignment")
		if !ok {
			return nil
		}
		a := AssignmentInfo{Prefix: pfx, Preferred: p.lifetime(e, "preferred"), Valid: p.lifetime(e, "valid")}
		if l, ok := p.table(e, "local-address"); ok {
			a.Local, _ = p.prefixOf(l, "local-address")
		}
		out = append(out, a)
	}
	return out
}

func (p *parser) routes(t ubus.Table) []RouteInfo {
	var out []RouteInfo
	for _, e := range p.entries(t, "route") {
		tv, ok := e.Get("target")
		if !ok {
			p.failf("route without a target")
			return nil
		}
		ta, ok := p.addrValue(tv, "route target")
		if !ok {
			return nil
		}
		m, ok := p.intIn(e, "mask")
		if !ok || m < 0 || m > ta.BitLen() {
			p.failf("route %v: mask %d", ta, m)
			return nil
		}
		r := RouteInfo{Target: netip.PrefixFrom(ta, m), Metric: -1, Valid: p.lifetime(e, "valid")}
		if v, ok := e.Get("nexthop"); ok {
			r.Nexthop, _ = p.addrValue(v, "route nexthop")
		}
		if v, ok := get[ubus.String](p, e, "source"); ok {
			src, err := netip.ParsePrefix(string(v))
			if err != nil {
				p.failf("route source: %v", err)
				return nil
			}
			r.Source = src
		}
		if v, ok := p.intIn(e, "metric"); ok {
			r.Metric = v
		}
		r.Table, _ = p.intIn(e, "table")
		r.MTU, _ = p.intIn(e, "mtu")
		r.Type, _ = p.intIn(e, "type")
		out = append(out, r)
	}
	return out
}

// near compares deadlines with the slack of netifd's whole-second counts
// taken at two moments.
func near(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() == b.IsZero()
	}
	d := a.Sub(b)
	return d > -2*time.Second && d < 2*time.Second
}

// Same reports whether two reports describe the same state: everything is
// compared except "updated" (what the last change was), and times are
// compared with two seconds of slack, since netifd counts the lifetimes and
// the uptime down and up in whole seconds.
func (i Interface) Same(o Interface) bool {
	return i.Name == o.Name && i.Up == o.Up && i.Pending == o.Pending && i.Available == o.Available &&
		i.Autostart == o.Autostart && i.Dynamic == o.Dynamic && near(i.UpSince, o.UpSince) &&
		i.L3Device == o.L3Device && i.Device == o.Device && i.Proto == o.Proto && i.Metric == o.Metric &&
		i.DNSMetric == o.DNSMetric && i.Delegation == o.Delegation && i.IPv4Table == o.IPv4Table &&
		i.IPv6Table == o.IPv6Table &&
		slices.EqualFunc(i.IPv4, o.IPv4, sameAddr) && slices.EqualFunc(i.IPv6, o.IPv6, sameAddr) &&
		slices.EqualFunc(i.InactiveIPv4, o.InactiveIPv4, sameAddr) && slices.EqualFunc(i.InactiveIPv6, o.InactiveIPv6, sameAddr) &&
		slices.EqualFunc(i.Prefixes, o.Prefixes, samePrefix) && slices.EqualFunc(i.Assigned, o.Assigned, sameAssignment) &&
		slices.EqualFunc(i.Routes, o.Routes, sameRoute) && slices.EqualFunc(i.InactiveRoutes, o.InactiveRoutes, sameRoute) &&
		slices.Equal(i.DNS, o.DNS) && slices.Equal(i.DNSSearch, o.DNSSearch) && ubus.Equal(i.Data, o.Data)
}

func sameAddr(a, b AddrInfo) bool {
	return a.Prefix == b.Prefix && a.PtP == b.PtP && a.Class == b.Class && near(a.Preferred, b.Preferred) && near(a.Valid, b.Valid)
}

func samePrefix(a, b PrefixInfo) bool {
	if a.Prefix != b.Prefix || a.Class != b.Class || !near(a.Preferred, b.Preferred) || !near(a.Valid, b.Valid) || len(a.Assigned) != len(b.Assigned) {
		return false
	}
	for k, v := range a.Assigned {
		if b.Assigned[k] != v {
			return false
		}
	}
	return true
}

func sameAssignment(a, b AssignmentInfo) bool {
	return a.Prefix == b.Prefix && a.Local == b.Local && near(a.Preferred, b.Preferred) && near(a.Valid, b.Valid)
}

func sameRoute(a, b RouteInfo) bool {
	return a.Target == b.Target && a.Nexthop == b.Nexthop && a.Source == b.Source && a.Metric == b.Metric &&
		a.Table == b.Table && a.MTU == b.MTU && a.Type == b.Type && near(a.Valid, b.Valid)
}
