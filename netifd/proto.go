package netifd

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"nemod/ubus"
)

// Lifetimes of an address or a delegated prefix, in seconds from now.
// Preferred 0 with a Valid above it is a deprecated address. A nil
// *Lifetimes means forever.
type Lifetimes struct {
	Preferred, Valid uint32
}

// Forever is the lifetime netifd reads as infinite.
const Forever = 0xffffffff

// Address is an address a protocol handler puts on its interface.
type Address struct {
	Prefix    netip.Prefix // the address and its prefix length
	Lifetimes *Lifetimes   // IPv6 only; netifd ignores them on IPv4
	PtP       netip.Addr   // IPv4 only: the peer of a point-to-point link
	Offlink   bool         // IPv6: no on-link route for the prefix
	Class     string       // IPv6: the prefix class to assign from
}

// Route is a route a protocol handler asks for.
type Route struct {
	Target  netip.Prefix
	Gateway netip.Addr // invalid: on-link via the interface's device
	// Metric 0 sends none, and netifd then uses the interface's metric.
	Metric uint32
	// Valid, if not nil, is a lifetime in seconds.
	Valid *uint32
	// Source makes the route source-specific (IPv6).
	Source netip.Prefix
	Table  string // a table name or number; empty: main
	MTU    uint32
	Type   string // "unreachable", "prohibit", ...; empty: unicast
	OnLink bool
}

// Prefix is a delegated IPv6 prefix, which netifd hands out to downstream
// interfaces (ip6assign) and odhcpd advertises.
type Prefix struct {
	Prefix    netip.Prefix // length 1 to 64: netifd refuses others
	Lifetimes *Lifetimes
	Class     string       // the class downstream interfaces select by
	Excluded  netip.Prefix // a part not to assign
}

// Update is one notify_proto call of a protocol handler: "action" 0, the
// interface's new state.
type Update struct {
	// Interface names the netifd interface; it is required by the
	// network.interface object and must be empty for a call to
	// network.interface.NAME.
	Interface string
	// Device is the handler's L3 device (sent as "ifname"); empty sends
	// none, which keeps the one netifd has.
	Device string
	// LinkUp false takes the interface down; nothing else is sent then.
	LinkUp bool
	// Keep adds to what netifd has instead of replacing it.
	Keep bool
	// IPv4 and IPv6 addresses; Routes of both families (each goes to
	// "routes" or "routes6" by its target); delegated IPv6 prefixes.
	IPv4, IPv6 []Address
	Routes     []Route
	Prefixes   []Prefix
}

// Args is the call's blobmsg, with the types netifd's policies demand (a
// member of another type is ignored by netifd): "link-up" and "keep"
// booleans, "mask" and "netmask" strings, lifetimes and metrics INT32.
// The order is the one of the recorded daemon call. Invalid input is an
// error and gives nothing.
func (u Update) Args() (ubus.Table, error) {
	t := ubus.Table{{Name: "action", Value: ubus.Int32(0)}}
	if u.Interface != "" {
		t = append(t, ubus.Field{Name: "interface", Value: ubus.String(u.Interface)})
	}
	if !u.LinkUp {
		return append(t, ubus.Field{Name: "link-up", Value: ubus.Bool(false)}), nil
	}
	if u.Device != "" {
		t = append(t, ubus.Field{Name: "ifname", Value: ubus.String(u.Device)})
	}
	t = append(t, ubus.Field{Name: "link-up", Value: ubus.Bool(true)}, ubus.Field{Name: "keep", Value: ubus.Bool(u.Keep)})
	for _, fam := range []struct {
		name string
		v6   bool
		list []Address
	}{{"ipaddr", false, u.IPv4}, {"ip6addr", true, u.IPv6}} {
		if len(fam.list) == 0 {
			continue
		}
		arr := ubus.Array{}
		for _, a := range fam.list {
			v, err := a.table(fam.v6)
			if err != nil {
				return nil, fmt.Errorf("netifd: %s %v: %w", fam.name, a.Prefix, err)
			}
			arr = append(arr, v)
		}
		t = append(t, ubus.Field{Name: fam.name, Value: arr})
	}
	var r4, r6 ubus.Array
	for _, r := range u.Routes {
		v, err := r.table()
		if err != nil {
			return nil, fmt.Errorf("netifd: route %v: %w", r.Target, err)
		}
		if r.Target.Addr().Is4() {
			r4 = append(r4, v)
		} else {
			r6 = append(r6, v)
		}
	}
	if r4 != nil {
		t = append(t, ubus.Field{Name: "routes", Value: r4})
	}
	if r6 != nil {
		t = append(t, ubus.Field{Name: "routes6", Value: r6})
	}
	if len(u.Prefixes) > 0 {
		arr := ubus.Array{}
		for _, p := range u.Prefixes {
			s, err := p.String()
			if err != nil {
				return nil, err
			}
			arr = append(arr, ubus.String(s))
		}
		t = append(t, ubus.Field{Name: "ip6prefix", Value: arr})
	}
	return t, nil
}

func (a Address) table(v6 bool) (ubus.Table, error) {
	if !a.Prefix.IsValid() || a.Prefix.Addr().Is6() != v6 || a.Prefix.Addr().Is4In6() {
		return nil, fmt.Errorf("not an IPv%s address with a prefix length", map[bool]string{true: "6", false: "4"}[v6])
	}
	if v6 && a.Prefix.Addr().IsMulticast() {
		return nil, fmt.Errorf("multicast")
	}
	t := ubus.Table{
		{Name: "ipaddr", Value: ubus.String(a.Prefix.Addr().WithZone("").String())},
		{Name: "mask", Value: ubus.String(strconv.Itoa(a.Prefix.Bits()))},
	}
	if a.PtP.IsValid() {
		if v6 || !a.PtP.Is4() {
			return nil, fmt.Errorf("a point-to-point peer is for IPv4")
		}
		t = append(t, ubus.Field{Name: "ptp", Value: ubus.String(a.PtP.String())})
	}
	if a.Lifetimes != nil {
		if !v6 {
			return nil, fmt.Errorf("netifd keeps no lifetimes for IPv4 addresses")
		}
		if err := a.Lifetimes.check(); err != nil {
			return nil, err
		}
		t = append(t, ubus.Field{Name: "preferred", Value: ubus.Int32(a.Lifetimes.Preferred)},
			ubus.Field{Name: "valid", Value: ubus.Int32(a.Lifetimes.Valid)})
	}
	if a.Offlink {
		t = append(t, ubus.Field{Name: "offlink", Value: ubus.Bool(true)})
	}
	if a.Class != "" {
		t = append(t, ubus.Field{Name: "class", Value: ubus.String(a.Class)})
	}
	return t, nil
}

// check refuses what netifd would drop: a preferred lifetime beyond the
// valid one.
func (l *Lifetimes) check() error {
	if l.Preferred > l.Valid {
		return fmt.Errorf("preferred lifetime %d beyond valid lifetime %d", l.Preferred, l.Valid)
	}
	return nil
}

func (r Route) table() (ubus.Table, error) {
	if !r.Target.IsValid() {
		return nil, fmt.Errorf("no target")
	}
	v6 := r.Target.Addr().Is6()
	same := func(a netip.Addr) bool { return a.Is6() == v6 && !a.Is4In6() }
	t := ubus.Table{
		{Name: "target", Value: ubus.String(r.Target.Masked().Addr().String())},
		{Name: "netmask", Value: ubus.String(strconv.Itoa(r.Target.Bits()))},
	}
	if r.Gateway.IsValid() {
		if !same(r.Gateway) {
			return nil, fmt.Errorf("gateway %v of the other family", r.Gateway)
		}
		t = append(t, ubus.Field{Name: "gateway", Value: ubus.String(r.Gateway.String())})
	}
	if r.Metric != 0 {
		t = append(t, ubus.Field{Name: "metric", Value: ubus.Int32(r.Metric)})
	}
	if r.Valid != nil {
		t = append(t, ubus.Field{Name: "valid", Value: ubus.Int32(*r.Valid)})
	}
	if r.Source.IsValid() {
		if !same(r.Source.Addr()) {
			return nil, fmt.Errorf("source %v of the other family", r.Source)
		}
		t = append(t, ubus.Field{Name: "source", Value: ubus.String(r.Source.Masked().String())})
	}
	if r.Table != "" {
		t = append(t, ubus.Field{Name: "table", Value: ubus.String(r.Table)})
	}
	if r.MTU != 0 {
		t = append(t, ubus.Field{Name: "mtu", Value: ubus.Int32(r.MTU)})
	}
	if r.Type != "" {
		t = append(t, ubus.Field{Name: "type", Value: ubus.String(r.Type)})
	}
	if r.OnLink {
		t = append(t, ubus.Field{Name: "onlink", Value: ubus.Bool(true)})
	}
	return t, nil
}

// String is the prefix in the form netifd parses:
// "prefix/len[,preferred,valid[,class=C][,excluded=P]]". netifd reads the
// preferred lifetime first. (netifd-proto.sh's proto_add_ipv6_prefix
// writes the valid one first, so shell handlers get them swapped; this
// follows what netifd parses.)
func (p Prefix) String() (string, error) {
	if !p.Prefix.IsValid() || !p.Prefix.Addr().Is6() || p.Prefix.Addr().Is4In6() {
		return "", fmt.Errorf("netifd: prefix %v is not IPv6", p.Prefix)
	}
	if b := p.Prefix.Bits(); b < 1 || b > 64 {
		return "", fmt.Errorf("netifd: prefix %v: netifd takes lengths 1 to 64", p.Prefix)
	}
	var b strings.Builder
	b.WriteString(p.Prefix.Masked().String())
	extra := p.Class != "" || p.Excluded.IsValid()
	if p.Lifetimes != nil || extra {
		l := Lifetimes{Forever, Forever}
		if p.Lifetimes != nil {
			if err := p.Lifetimes.check(); err != nil {
				return "", fmt.Errorf("netifd: prefix %v: %w", p.Prefix, err)
			}
			l = *p.Lifetimes
		}
		fmt.Fprintf(&b, ",%d,%d", l.Preferred, l.Valid)
	}
	if p.Class != "" {
		if strings.ContainsAny(p.Class, ",=") {
			return "", fmt.Errorf("netifd: prefix class %q has ',' or '='", p.Class)
		}
		b.WriteString(",class=" + p.Class)
	}
	if p.Excluded.IsValid() {
		if !p.Prefix.Contains(p.Excluded.Addr()) || p.Excluded.Bits() < p.Prefix.Bits() {
			return "", fmt.Errorf("netifd: excluded %v is not inside %v", p.Excluded, p.Prefix)
		}
		b.WriteString(",excluded=" + p.Excluded.Masked().String())
	}
	return b.String(), nil
}

// DefaultIPv4Metric is the metric of an IPv4 default route through the
// tunnel in the main table when TunnelState.IPv4Metric is zero. IPv4 routes
// have no source prefix in the kernel's key, and netifd adds routes with
// NLM_F_REPLACE: a tunnel default route with an uplink's metric would
// replace the uplink's default route (and the tunnel's own packets would
// follow it into the tunnel). OpenWrt uplinks use netifd's default metric
// 0 or small ones (mwan3 setups number theirs 1, 2, ... or 10, 20, ...), so
// 4096 stays clear of them and leaves the tunnel route as a last resort;
// route traffic into the tunnel by a table (IPv4Table) instead.
const DefaultIPv4Metric = 4096

// TunnelState is what the mobile router knows about its tunnel, in the form
// the daemon keeps it.
type TunnelState struct {
	Interface string // the netifd interface of the tunnel (proto nemo)
	Device    string // the tunnel device
	Up        bool   // registered: the tunnel carries traffic
	// HomeAddress is the home address with the prefix length to give it
	// on the device, and HomeLifetimes the binding's (nil: forever).
	HomeAddress   netip.Prefix
	HomeLifetimes *Lifetimes
	// Gateway is the next hop in the tunnel; invalid for a
	// point-to-point device, where routes are on-link.
	Gateway netip.Addr
	// Prefixes are the mobile network prefixes the home agent routes to
	// the router, delegated through netifd to the LAN.
	Prefixes []Prefix
	// Metric of the IPv6 default routes; 0 sends none (see Update).
	Metric uint32
	// IPv4Address is the IPv4 home address with its prefix length
	// (invalid: none). IPv4Default adds an IPv4 default route through
	// the tunnel, in IPv4Table if set, with IPv4Metric (0:
	// DefaultIPv4Metric).
	IPv4Address netip.Prefix
	IPv4Default bool
	IPv4Table   string
	IPv4Metric  uint32
	// Routes are added after the default routes, as given (a home link
	// prefix, say).
	Routes []Route
}

// Update turns the tunnel state into the notify_proto update that says it
// to netifd (on the network.interface object, hence with Interface set).
//
// The IPv6 default routes through the tunnel are source-specific: one from
// each mobile network prefix, or from the home address alone when there is
// none. The kernel keys an IPv6 route by destination, source and metric, so
// netifd's NLM_F_REPLACE can never make them replace an uplink's default
// route, which has no source, whatever their metric; and traffic from the
// router's other addresses keeps using the uplinks. They carry no metric
// unless Metric is set: the interface's own (UCI `option metric`) applies.
func (s TunnelState) Update() Update {
	u := Update{Interface: s.Interface, LinkUp: s.Up}
	if !s.Up {
		return u
	}
	u.Device = s.Device
	if s.HomeAddress.IsValid() {
		u.IPv6 = []Address{{Prefix: s.HomeAddress, Lifetimes: s.HomeLifetimes}}
	}
	if s.IPv4Address.IsValid() {
		u.IPv4 = []Address{{Prefix: s.IPv4Address}}
	}
	def := netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	for _, p := range s.Prefixes {
		u.Routes = append(u.Routes, Route{Target: def, Gateway: s.Gateway, Source: p.Prefix, Metric: s.Metric})
	}
	if len(s.Prefixes) == 0 && s.HomeAddress.IsValid() {
		src := netip.PrefixFrom(s.HomeAddress.Addr(), 128)
		u.Routes = append(u.Routes, Route{Target: def, Gateway: s.Gateway, Source: src, Metric: s.Metric})
	}
	if s.IPv4Default {
		m := s.IPv4Metric
		if m == 0 {
			m = DefaultIPv4Metric
		}
		u.Routes = append(u.Routes, Route{Target: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Metric: m, Table: s.IPv4Table})
	}
	u.Routes = append(u.Routes, s.Routes...)
	u.Prefixes = s.Prefixes
	return u
}

// Args is s.Update().Args().
func (s TunnelState) Args() (ubus.Table, error) { return s.Update().Args() }

// Notify sends the update as a notify_proto call to network.interface (or,
// without Interface, to nothing: that is an error). netifd answers
// INVALID_ARGUMENT without link-up or interface, NOT_FOUND for an unknown
// interface and NOT_SUPPORTED for one whose protocol is not handled
// outside netifd (static, dhcp...).
func Notify(ctx context.Context, c *ubus.Client, u Update) error {
	if u.Interface == "" {
		return fmt.Errorf("netifd: an update for network.interface needs the interface name")
	}
	args, err := u.Args()
	if err != nil {
		return err
	}
	_, err = c.Call(ctx, "network.interface", "notify_proto", args)
	return err
}
