package dbusapi

import (
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/godbus/dbus/v5"

	"nemod/status"
)

// Names of both roles on the bus.
const (
	RouterName       = "org.nemod.Router1"
	RouterPath       = dbus.ObjectPath("/org/nemod/Router1")
	UplinkInterface  = "org.nemod.Router1.Uplink"
	HomeAgentName    = "org.nemod.HomeAgent1"
	HomeAgentPath    = dbus.ObjectPath("/org/nemod/HomeAgent1")
	MobileRouterIntf = "org.nemod.HomeAgent1.MobileRouter"
)

// The standard interfaces every object (or the root) carries.
const (
	propertiesIntf    = "org.freedesktop.DBus.Properties"
	introspectIntf    = "org.freedesktop.DBus.Introspectable"
	peerIntf          = "org.freedesktop.DBus.Peer"
	objectManagerIntf = "org.freedesktop.DBus.ObjectManager"
)

// prop is one property of an interface: its D-Bus type, whether changes
// are signalled, and how it is read from a snapshot of type S.
type prop[S any] struct {
	name string
	sig  string
	// quiet properties change with the clock (uptime, lifetime left):
	// signalling them would send a PropertiesChanged for every object on
	// every snapshot, so they are annotated EmitsChangedSignal=false and
	// read with Get.
	quiet bool
	get   func(*S) any
}

// propSpec is a property without its getter, for introspection.
type propSpec struct {
	name, sig string
	quiet     bool
	// fields names the members of a struct-typed property, in order.
	fields string
}

type arg struct{ name, sig string }

type methodSpec struct {
	name    string
	in, out []arg
}

type ifaceSpec struct {
	name    string
	methods []methodSpec
	props   []propSpec
}

func specs[S any](ps []prop[S]) []propSpec {
	out := make([]propSpec, len(ps))
	for i, p := range ps {
		out[i] = propSpec{name: p.name, sig: p.sig, quiet: p.quiet}
	}
	return out
}

func values[S any](ps []prop[S], s *S) props {
	out := make(props, len(ps))
	for _, p := range ps {
		out[p.name] = dbus.MakeVariant(p.get(s))
	}
	return out
}

// props are one interface's property values by name.
type props map[string]dbus.Variant

// object is one exported object: its interfaces with properties.
type object map[string]props

// tree is everything a role exports at one moment: immutable once built,
// so that method calls read it while the next one is built.
type tree struct {
	root    dbus.ObjectPath
	objects map[dbus.ObjectPath]object
	ifaces  map[string]ifaceSpec
}

func strs(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func counts(m map[string]uint64) map[string]uint64 {
	if m == nil {
		return map[string]uint64{}
	}
	return m
}

// Properties both roles' root objects have, read from status.Counters,
// DataPlane and Runtime.
func commonProps[S any](c func(*S) *status.Counters, dp func(*S) *status.DataPlane, rt func(*S) *status.Runtime) []prop[S] {
	return []prop[S]{
		{name: "Registrations", sig: "t", get: func(s *S) any { return c(s).Accepted }},
		{name: "Deregistrations", sig: "t", get: func(s *S) any { return c(s).Deregistrations }},
		{name: "Retransmissions", sig: "t", get: func(s *S) any { return c(s).Retransmits }},
		{name: "Expired", sig: "t", get: func(s *S) any { return c(s).Expired }},
		{name: "DeadPaths", sig: "t", get: func(s *S) any { return c(s).DeadPaths }},
		{name: "QueueDropped", sig: "t", get: func(s *S) any { return c(s).QueueDropped }},
		{name: "RateLimited", sig: "t", get: func(s *S) any { return c(s).RateLimited }},
		{name: "Rejections", sig: "a{st}", get: func(s *S) any { return counts(c(s).Rejected) }},
		{name: "Ignored", sig: "a{st}", get: func(s *S) any { return counts(c(s).Ignored) }},
		{name: "DataPlaneBackend", sig: "s", get: func(s *S) any { return dp(s).Backend }},
		{name: "DataPlaneKernelBackend", sig: "s", get: func(s *S) any { return dp(s).Kernel }},
		{name: "DataPlaneDevice", sig: "s", get: func(s *S) any { return dp(s).Device }},
		{name: "DataPlaneMTU", sig: "i", get: func(s *S) any { return int32(dp(s).MTU) }},
		{name: "DataPlaneDrops", sig: "a{st}", get: func(s *S) any { return counts(dp(s).Drops) }},
		{name: "DataPlaneDropsV4", sig: "a{st}", get: func(s *S) any { return counts(dp(s).DropsV4) }},
		{name: "Goroutines", sig: "i", quiet: true, get: func(s *S) any { return int32(rt(s).Goroutines) }},
		{name: "OpenFDs", sig: "i", quiet: true, get: func(s *S) any { return int32(rt(s).FDs) }},
	}
}

var routerProps = append([]prop[status.Router]{
	{name: "HomeAddress", sig: "s", get: func(s *status.Router) any { return s.HomeAddress }},
	{name: "HomeAgent", sig: "s", get: func(s *status.Router) any { return s.HomeAgent }},
	{name: "MobileNetworkPrefixes", sig: "as", get: func(s *status.Router) any { return strs(s.MNP) }},
	// The mobile network's IPv4 as the home agent granted it (RFC 5555):
	// "" and none when the router asks for none or has none yet.
	{name: "HomeAddressV4", sig: "s", get: func(s *status.Router) any {
		if s.IPv4 == nil {
			return ""
		}
		return s.IPv4.HomeAddress
	}},
	{name: "MobileNetworkPrefixesV4", sig: "as", get: func(s *status.Router) any {
		if s.IPv4 == nil {
			return []string{}
		}
		return strs(s.IPv4.MNP)
	}},
	{name: "Uptime", sig: "x", quiet: true, get: func(s *status.Router) any { return s.Uptime }},
	{name: "BindingUpdatesSent", sig: "t", get: func(s *status.Router) any { return s.Counters.Sent }},
	{name: "AcknowledgementsReceived", sig: "t", get: func(s *status.Router) any { return s.Counters.Received }},
	{name: "ProbesSent", sig: "t", get: func(s *status.Router) any { return s.Counters.Probes }},
	{name: "Failovers", sig: "t", get: func(s *status.Router) any { return s.Counters.Failovers }},
}, commonProps(
	func(s *status.Router) *status.Counters { return &s.Counters },
	func(s *status.Router) *status.DataPlane { return &s.DataPlane },
	func(s *status.Router) *status.Runtime { return &s.Runtime })...)

var uplinkProps = []prop[status.Binding]{
	{name: "Name", sig: "s", get: func(b *status.Binding) any { return b.Uplink }},
	{name: "Device", sig: "s", get: func(b *status.Binding) any { return b.Device }},
	{name: "BID", sig: "q", get: func(b *status.Binding) any { return b.BID }},
	{name: "CareOfAddress", sig: "s", get: func(b *status.Binding) any { return b.CoA }},
	{name: "Encapsulation", sig: "s", get: func(b *status.Binding) any { return b.Encap }},
	{name: "State", sig: "s", get: func(b *status.Binding) any { return b.State }},
	{name: "NAT", sig: "b", get: func(b *status.Binding) any { return b.NAT }},
	{name: "Lifetime", sig: "x", quiet: true, get: func(b *status.Binding) any { return b.Lifetime }},
	{name: "RoundTripTimeMs", sig: "d", get: func(b *status.Binding) any { return b.RTTms }},
	{name: "ProbeLoss", sig: "d", get: func(b *status.Binding) any { return b.Loss }},
	{name: "TxPackets", sig: "t", get: func(b *status.Binding) any { return b.TxPackets }},
	{name: "TxBytes", sig: "t", get: func(b *status.Binding) any { return b.TxBytes }},
	{name: "RxPackets", sig: "t", get: func(b *status.Binding) any { return b.RxPackets }},
	{name: "RxBytes", sig: "t", get: func(b *status.Binding) any { return b.RxBytes }},
}

var homeAgentProps = append([]prop[status.HomeAgent]{
	{name: "Address", sig: "s", get: func(s *status.HomeAgent) any { return s.Address }},
	{name: "AddressV4", sig: "s", get: func(s *status.HomeAgent) any { return s.AddressV4 }},
	{name: "HomePrefix", sig: "s", get: func(s *status.HomeAgent) any { return s.HomePrefix }},
	{name: "Uptime", sig: "x", quiet: true, get: func(s *status.HomeAgent) any { return s.Uptime }},
	{name: "BindingUpdatesReceived", sig: "t", get: func(s *status.HomeAgent) any { return s.Counters.Received }},
	{name: "AcknowledgementsSent", sig: "t", get: func(s *status.HomeAgent) any { return s.Counters.Sent }},
	{name: "ProbesAnswered", sig: "t", get: func(s *status.HomeAgent) any { return s.Counters.Probes }},
}, commonProps(
	func(s *status.HomeAgent) *status.Counters { return &s.Counters },
	func(s *status.HomeAgent) *status.DataPlane { return &s.DataPlane },
	func(s *status.HomeAgent) *status.Runtime { return &s.Runtime })...)

// BindingStruct is one element of a mobile router's Bindings property,
// signature (qsssbssddtttt). The bindings of a router are a property of it
// rather than objects of their own: a router has two or three, they change
// together (a handover moves traffic from one to another), and a home
// agent with ten thousand routers would otherwise export and announce
// three times the objects. One PropertiesChanged then carries the
// router's whole consistent set. The lifetime left is not in it: it
// changes with the clock and would make every router's Bindings change on
// every snapshot.
type BindingStruct struct {
	BID             uint16
	CareOfAddress   string
	Outer           string
	Encapsulation   string
	NAT             bool
	State           string
	Since           string
	RoundTripTimeMs float64
	ProbeLoss       float64
	TxPackets       uint64
	TxBytes         uint64
	RxPackets       uint64
	RxBytes         uint64
}

// bindingFields names BindingStruct's members for the introspection data.
const bindingFields = "bid,care_of_address,outer,encapsulation,nat,state,since,rtt_ms,probe_loss,tx_packets,tx_bytes,rx_packets,rx_bytes"

var mobileRouterProps = []prop[status.MobileRouter]{
	{name: "Name", sig: "s", get: func(m *status.MobileRouter) any { return m.Name }},
	{name: "HomeAddress", sig: "s", get: func(m *status.MobileRouter) any { return m.HomeAddress }},
	{name: "MobileNetworkPrefixes", sig: "as", get: func(m *status.MobileRouter) any { return strs(m.MNP) }},
	{name: "HomeAddressV4", sig: "s", get: func(m *status.MobileRouter) any { return m.HomeAddressV4 }},
	{name: "MobileNetworkPrefixesV4", sig: "as", get: func(m *status.MobileRouter) any { return strs(m.MNPv4) }},
	{name: "State", sig: "s", get: func(m *status.MobileRouter) any { return m.State() }},
	{name: "Bindings", sig: "a(qsssbssddtttt)", get: func(m *status.MobileRouter) any {
		out := make([]BindingStruct, 0, len(m.Bindings))
		for _, b := range m.Bindings {
			out = append(out, BindingStruct{b.BID, b.CoA, b.Outer, b.Encap, b.NAT, b.State, b.Since,
				b.RTTms, b.Loss, b.TxPackets, b.TxBytes, b.RxPackets, b.RxBytes})
		}
		return out
	}},
}

var reloadMethod = methodSpec{name: "Reload", out: []arg{{"reloaded", "b"}, {"applied", "as"}, {"needs_restart", "as"}}}

var revokeMethod = methodSpec{name: "Revoke", in: []arg{{"home_address", "s"}, {"bid", "q"}}}

var (
	routerIface = ifaceSpec{name: RouterName, methods: []methodSpec{reloadMethod}, props: specs(routerProps)}
	uplinkIface = ifaceSpec{name: UplinkInterface, props: specs(uplinkProps)}
	haIface     = ifaceSpec{name: HomeAgentName, methods: []methodSpec{reloadMethod, revokeMethod}, props: specs(homeAgentProps)}
	mrIface     = func() ifaceSpec {
		ps := specs(mobileRouterProps)
		for i := range ps {
			if ps[i].name == "Bindings" {
				ps[i].fields = bindingFields
			}
		}
		return ifaceSpec{name: MobileRouterIntf, props: ps}
	}()
)

// EscapePathElement makes s one valid object path element: ASCII letters
// and digits stay, every other byte (the underscore too, so that the
// mapping is reversible) becomes _ and two lower-case hex digits, and the
// empty string becomes a lone _.
func EscapePathElement(s string) string {
	if s == "" {
		return "_"
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			b.WriteByte(c)
			continue
		}
		const hex = "0123456789abcdef"
		b.WriteByte('_')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// UnescapePathElement reverses EscapePathElement; ok is false for an
// element EscapePathElement cannot have made.
func UnescapePathElement(e string) (string, bool) {
	if e == "_" {
		return "", true
	}
	var b strings.Builder
	for i := 0; i < len(e); i++ {
		c := e[i]
		if c != '_' {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
				return "", false
			}
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(e) {
			return "", false
		}
		v, err := strconv.ParseUint(e[i+1:i+3], 16, 8)
		// Upper-case digits, or an escaped letter or digit, are spellings
		// EscapePathElement never makes: refusing them keeps one element
		// per name.
		if err != nil || e[i+1:i+3] != strings.ToLower(e[i+1:i+3]) || EscapePathElement(string(rune(v))) == string(rune(v)) {
			return "", false
		}
		b.WriteByte(byte(v))
		i += 2
	}
	if b.Len() == 0 {
		return "", false
	}
	return b.String(), true
}

// uplinkKey names a binding's object: its uplink, or its BID when the
// router left the uplink unnamed.
func uplinkKey(b status.Binding) string {
	if b.Uplink != "" {
		return b.Uplink
	}
	return "bid" + strconv.Itoa(int(b.BID))
}

func routerTree(s status.Router) *tree {
	t := &tree{root: RouterPath, objects: map[dbus.ObjectPath]object{},
		ifaces: map[string]ifaceSpec{RouterName: routerIface, UplinkInterface: uplinkIface}}
	t.objects[RouterPath] = object{RouterName: values(routerProps, &s)}
	for i := range s.Bindings {
		b := &s.Bindings[i]
		key := uplinkKey(*b)
		p := RouterPath + "/Uplink/" + dbus.ObjectPath(EscapePathElement(key))
		if _, dup := t.objects[p]; dup {
			// Two bindings on one uplink name: the second is told apart
			// by its BID rather than hidden.
			p += dbus.ObjectPath(EscapePathElement("#" + strconv.Itoa(int(b.BID))))
		}
		t.objects[p] = object{UplinkInterface: values(uplinkProps, b)}
	}
	return t
}

func homeAgentTree(s status.HomeAgent) *tree {
	t := &tree{root: HomeAgentPath, objects: map[dbus.ObjectPath]object{},
		ifaces: map[string]ifaceSpec{HomeAgentName: haIface, MobileRouterIntf: mrIface}}
	t.objects[HomeAgentPath] = object{HomeAgentName: values(homeAgentProps, &s)}
	for i := range s.MobileRouters {
		m := &s.MobileRouters[i]
		p := HomeAgentPath + "/MobileRouter/" + dbus.ObjectPath(EscapePathElement(m.Name))
		t.objects[p] = object{MobileRouterIntf: values(mobileRouterProps, m)}
	}
	return t
}

// signal is one signal to emit.
type signal struct {
	path   dbus.ObjectPath
	member string // interface.member
	body   []any
}

// children are the objects below the root: the ones the ObjectManager
// manages.
func (t *tree) children() []dbus.ObjectPath {
	var out []dbus.ObjectPath
	for p := range t.objects {
		if p != t.root {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// managed is one object as GetManagedObjects and InterfacesAdded show it:
// its interfaces with their properties, the standard ones (which have no
// properties) included.
func (t *tree) managed(p dbus.ObjectPath) map[string]map[string]dbus.Variant {
	out := map[string]map[string]dbus.Variant{
		propertiesIntf: {}, introspectIntf: {}, peerIntf: {},
	}
	for name, ps := range t.objects[p] {
		out[name] = maps.Clone(ps)
	}
	return out
}

func (t *tree) ifaceNames(p dbus.ObjectPath) []string {
	names := []string{propertiesIntf, introspectIntf, peerIntf}
	for name := range t.objects[p] {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// diff is what the bus must be told between old and new (old nil: nothing
// was exported, so nothing is signalled: clients read the state when the
// name appears). Removed objects first, then changed properties, then new
// objects, each in path order.
func diff(old, new *tree) []signal {
	if old == nil {
		return nil
	}
	var out []signal
	om := dbus.ObjectPath(new.root)
	for _, p := range old.children() {
		if _, ok := new.objects[p]; !ok {
			out = append(out, signal{om, objectManagerIntf + ".InterfacesRemoved", []any{p, old.ifaceNames(p)}})
		}
	}
	paths := slices.Sorted(maps.Keys(new.objects))
	for _, p := range paths {
		oo, ok := old.objects[p]
		if !ok {
			continue
		}
		no := new.objects[p]
		for _, iface := range slices.Sorted(maps.Keys(no)) {
			spec := new.ifaces[iface]
			changed := map[string]dbus.Variant{}
			for _, ps := range spec.props {
				nv, ov := no[iface][ps.name], oo[iface][ps.name]
				if ps.quiet || reflect.DeepEqual(nv.Value(), ov.Value()) {
					continue
				}
				changed[ps.name] = nv
			}
			if len(changed) > 0 {
				out = append(out, signal{p, propertiesIntf + ".PropertiesChanged", []any{iface, changed, []string{}}})
			}
		}
	}
	for _, p := range new.children() {
		if _, ok := old.objects[p]; !ok {
			out = append(out, signal{om, objectManagerIntf + ".InterfacesAdded", []any{p, new.managed(p)}})
		}
	}
	return out
}
