package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"nemod/nemo"
)

// Error is a mistake in a configuration file's content, at a line.
type Error struct {
	Path string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	return e.Path + ":" + itoa(e.Line) + ": " + e.Msg
}

// Load reads and decodes the configuration file at path (see Parse).
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parse(path, data, os.ReadFile)
}

// Role names the section a daemon runs from.
type Role string

const (
	RoleRouter    Role = "router"
	RoleHomeAgent Role = "homeagent"
)

// LoadFor loads path for a daemon of the given role, at start and on
// reload alike: a file without that role's section is an error.
func LoadFor(path string, role Role) (*File, error) {
	f, err := Load(path)
	if err != nil {
		return nil, err
	}
	if (role == RoleRouter && f.Router == nil) || (role == RoleHomeAgent && f.HomeAgent == nil) {
		return nil, fmt.Errorf("%s: no %s section", path, role)
	}
	return f, nil
}

// Parse decodes data, the content of the configuration file at path. A
// key_file it names is read, relative to path's folder.
//
// A syntax error is returned as a *ParseError. Otherwise every mistake
// found is returned, each a *Error, joined with errors.Join in line order.
// Options and section types nemod does not know are not errors; they are
// listed in File.Warnings.
func Parse(path string, data []byte) (*File, error) {
	return parse(path, data, os.ReadFile)
}

func parse(path string, data []byte, readFile func(string) ([]byte, error)) (*File, error) {
	pkg, err := ParseUCI(filepath.Base(path), data)
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			pe.File = path
		}
		return nil, err
	}
	d := &decoder{path: path, readFile: readFile}
	f := d.file(pkg)
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Line < d.errs[j].Line })
		if len(d.errs) == 1 {
			return nil, d.errs[0]
		}
		errs := make([]error, len(d.errs))
		for i, e := range d.errs {
			errs[i] = e
		}
		return nil, errors.Join(errs...)
	}
	sort.SliceStable(d.warns, func(i, j int) bool { return d.warns[i].line < d.warns[j].line })
	for _, w := range d.warns {
		f.Warnings = append(f.Warnings, d.path+":"+itoa(w.line)+": "+w.msg)
	}
	return f, nil
}

// Limits of the seconds options. A binding lifetime travels in 4-second
// units in a 16-bit field (RFC 6275 6.1.7), hence 4..262140. The replay
// window must exceed the 3 seconds RFC 4285 allows for clock skew and
// transit; past an hour it no longer protects against much.
const (
	minLifetime     = 4
	maxLifetime     = 65535 * 4
	minReplayWindow = 4
	maxReplayWindow = 3600
)

type warning struct {
	line int
	msg  string
}

type decoder struct {
	path     string
	readFile func(string) ([]byte, error)
	errs     []*Error
	warns    []warning
}

func (d *decoder) errorf(line int, format string, args ...any) {
	d.errs = append(d.errs, &Error{Path: d.path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) warnf(line int, format string, args ...any) {
	d.warns = append(d.warns, warning{line, fmt.Sprintf(format, args...)})
}

// section is a UCI section being decoded; it remembers which options were
// looked at so that the rest can be reported as unknown.
type section struct {
	d     *decoder
	s     *Section
	name  string // the section's name, or @TYPE[i] when anonymous
	label string // for messages: uplink "wifi"
	used  map[string]bool
}

func (d *decoder) section(s *Section, ref string) *section {
	return &section{d: d, s: s, name: ref, label: s.Type + " " + quote(ref), used: make(map[string]bool)}
}

func quote(s string) string { return strconv.Quote(s) }

func what(o *Option) string {
	if o.IsList {
		return "list " + o.Name
	}
	return "option " + o.Name
}

// errorf reports a mistake in option o.
func (x *section) errorf(o *Option, format string, args ...any) {
	x.d.errorf(o.Line, "%s: %s", what(o), fmt.Sprintf(format, args...))
}

// itemErrorf reports a mistake in the i-th item of list o, at the line
// that added it.
func (x *section) itemErrorf(o *Option, i int, format string, args ...any) {
	x.d.errorf(itemLine(o, i), "%s: %s", what(o), fmt.Sprintf(format, args...))
}

// missing reports a required option that is absent; name includes the
// keyword ("option spi", "list use").
func (x *section) missing(name, alt string) {
	msg := name + " is required"
	if alt != "" {
		msg += " (or " + alt + ")"
	}
	x.d.errorf(x.s.Line, "%s: %s", x.label, msg)
}

// scalar returns option name; o is non-nil when the option is present and
// ok false when it is present but given as a list.
func (x *section) scalar(name string) (v string, o *Option, ok bool) {
	x.used[name] = true
	o = x.s.Option(name)
	if o == nil {
		return "", nil, false
	}
	if o.IsList {
		x.errorf(o, "takes a single value; write option %s VALUE", name)
		return "", o, false
	}
	return o.value(), o, true
}

// nai returns option nai, the Network Access Identifier sent in the Mobile
// Node Identifier option (RFC 4283), or def when it is absent.
func (x *section) nai(def string) string {
	v, o, ok := x.scalar("nai")
	if o == nil || !ok {
		return def
	}
	if len(v) == 0 || len(v) > 253 || strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r > '~' }) {
		x.errorf(o, "%q is not a network access identifier (1..253 printable characters, e.g. car1@fleet.example)", v)
		return def
	}
	return v
}

// items returns list name; a plain option counts as a list of one.
func (x *section) items(name string) *Option {
	x.used[name] = true
	return x.s.Option(name)
}

// finish reports the options nobody asked for.
func (x *section) finish() {
	for i := range x.s.Options {
		o := &x.s.Options[i]
		if !x.used[o.Name] {
			x.d.warnf(o.Line, "unknown option %s in %s", quote(o.Name), x.label)
		}
	}
}

// parsed reads option name with parse, which returns the value or what is
// wrong with the text; ok is false when the option is absent or wrong (and
// then reported), and o is non-nil when it is present.
func parsed[T any](x *section, name string, parse func(string) (T, string)) (val T, o *Option, ok bool) {
	v, o, ok := x.scalar(name)
	if !ok {
		return val, o, false
	}
	val, msg := parse(v)
	if msg != "" {
		x.errorf(o, "%s", msg)
		var zero T
		return zero, o, false
	}
	return val, o, true
}

func (x *section) ipv6(name, v4opt string) (netip.Addr, *Option) {
	a, o, _ := parsed(x, name, func(v string) (netip.Addr, string) { return ipv6Addr(v, v4opt) })
	return a, o
}

func (x *section) ipv4(name string) (netip.Addr, *Option) {
	a, o, _ := parsed(x, name, ipv4Addr)
	return a, o
}

func (x *section) seconds(name string, def time.Duration, lo, hi uint64) time.Duration {
	d, _, ok := parsed(x, name, func(v string) (time.Duration, string) { return seconds(v, lo, hi) })
	if !ok {
		return def
	}
	return d
}

func (x *section) socket(def string) string {
	v, o, ok := x.scalar("control_socket")
	if !ok {
		return def
	}
	if msg := socketPath(v); msg != "" {
		x.errorf(o, "%s", msg)
	}
	return v
}

// spi reads a Security Parameter Index for the MN-HA authentication option.
func (x *section) spi() (uint32, *Option) {
	v, o, ok := x.scalar("spi")
	if o == nil {
		x.missing("option spi", "")
	}
	if !ok {
		return 0, o
	}
	n, inRange := uintIn(v, 0, 1<<32-1)
	switch {
	case !inRange:
		x.errorf(o, "%s is not an SPI (256..4294967295)", show(v))
	case n < 256:
		x.errorf(o, "%s is reserved (RFC 4285 reserves SPIs 0..255); use 256 or more", v)
	default:
		return uint32(n), o
	}
	return 0, o
}

// key reads the MN-HA shared key from option key or from the file option
// key_file names.
func (x *section) key() []byte {
	k, ko, kok := x.scalar("key")
	kf, kfo, kfok := x.scalar("key_file")
	switch {
	case ko != nil && kfo != nil:
		later, other := kfo, ko
		if ko.Line > kfo.Line {
			later, other = ko, kfo
		}
		x.errorf(later, "%s (line %d) is given too; give the key one way only", what(other), other.Line)
		return nil
	case ko == nil && kfo == nil:
		x.missing("option key", "key_file")
		return nil
	case kok:
		key, msg := hexKey(k)
		if msg != "" {
			x.errorf(ko, "%s", msg)
		}
		return key
	case kfok:
		path := kf
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(x.d.path), path)
		}
		data, err := x.d.readFile(path)
		if err != nil {
			x.errorf(kfo, "%v", err)
			return nil
		}
		key, msg := hexKey(strings.TrimSpace(string(data)))
		if msg != "" {
			x.errorf(kfo, "%s: %s", path, msg)
		}
		return key
	}
	return nil
}

// prefixes reads a list of IPv6 prefixes that must not overlap each other.
func (x *section) prefixes(name string) ([]netip.Prefix, []prefixAt) {
	o := x.items(name)
	if o == nil {
		return nil, nil
	}
	var out []netip.Prefix
	var at []prefixAt
	for i, v := range o.Values {
		p, msg := ipv6Prefix(v)
		if msg != "" {
			x.itemErrorf(o, i, "%s", msg)
			continue
		}
		clash := false
		for _, q := range at {
			if q.p.Overlaps(p) {
				x.itemErrorf(o, i, "%s overlaps %s (line %d)", p, q.p, q.line)
				clash = true
				break
			}
		}
		if clash {
			continue
		}
		out = append(out, p)
		at = append(at, prefixAt{p: p, line: itemLine(o, i), opt: o, item: i})
	}
	return out, at
}

type prefixAt struct {
	p    netip.Prefix
	line int
	opt  *Option
	item int
}

func itemLine(o *Option, i int) int {
	if i < len(o.ValueLines) {
		return o.ValueLines[i]
	}
	return o.Line
}

func (d *decoder) file(pkg *Package) *File {
	f := &File{Path: d.path}
	var routers, agents, uplinks, policies, rules, mrs, radii, pools, clusters []*section
	count := make(map[string]int)
	for _, s := range pkg.Sections {
		ref := s.Name
		if ref == "" {
			ref = "@" + s.Type + "[" + itoa(count[s.Type]) + "]"
		}
		count[s.Type]++
		x := d.section(s, ref)
		switch s.Type {
		case "router":
			routers = append(routers, x)
		case "homeagent":
			agents = append(agents, x)
		case "uplink":
			uplinks = append(uplinks, x)
		case "policy":
			policies = append(policies, x)
		case "rule":
			rules = append(rules, x)
		case "mobile_router":
			mrs = append(mrs, x)
		case "radius":
			radii = append(radii, x)
		case "pd_pool":
			pools = append(pools, x)
		case "cluster":
			clusters = append(clusters, x)
		default:
			d.warnf(s.Line, "unknown section type %s", quote(s.Type))
		}
	}
	if len(routers) == 0 && len(agents) == 0 {
		d.errorf(1, "no router or homeagent section: nemod needs `config router` or `config homeagent`")
		return f
	}
	for _, extra := range [][]*section{routers, agents, radii, clusters} {
		for _, x := range extra[min(1, len(extra)):] {
			d.errorf(x.s.Line, "a second %s section (%s); only one is allowed, the first is at line %d",
				x.s.Type, quote(x.name), extra[0].s.Line)
		}
	}
	v4 := d.readIPv4(routers, agents, mrs) // before the sections report unknown options
	if len(routers) > 0 {
		f.Router = d.router(routers[0], uplinks, policies, rules)
	} else {
		for _, group := range [][]*section{uplinks, policies, rules} {
			for _, x := range group {
				d.warnf(x.s.Line, "%s is ignored: the file has no router section", x.label)
			}
		}
	}
	if routerOnly { // the home agent's sections are not decoded (build_routeronly.go)
		d.refuseAgent(agents, mrs, radii, pools, clusters)
	} else if len(agents) > 0 {
		f.HomeAgent = d.homeAgent(agents[0], mrs, pools)
		if len(radii) > 0 {
			f.Radius = d.radius(radii[0])
		}
		if len(clusters) > 0 {
			f.HomeAgent.Cluster = d.cluster(clusters[0], f.HomeAgent)
		}
	} else {
		for _, x := range append(append(append(mrs, radii...), pools...), clusters...) {
			d.warnf(x.s.Line, "%s is ignored: the file has no homeagent section", x.label)
		}
	}
	d.applyIPv4(f, v4, rules)
	return f
}

func (d *decoder) router(x *section, uplinks, policies, rules []*section) *Router {
	r := &Router{
		Name:          x.name,
		Line:          x.s.Line,
		Path:          d.path,
		Lifetime:      DefaultLifetime,
		ReplayWindow:  DefaultReplayWindow,
		ControlSocket: DefaultControlSocket,
	}
	var haOpt, v4Opt, hoaOpt *Option
	haOpt, v4Opt = x.routerHomeAgents(r)
	if haOpt == nil && v4Opt == nil {
		x.missing("option home_agent", "home_agent_v4")
	}
	r.HomeAddress, hoaOpt = x.ipv6("home_address", "")
	if hoaOpt == nil {
		x.missing("option home_address", "")
	}
	var mnps []prefixAt
	r.MNPs, mnps = x.prefixes("mnp")
	for _, m := range mnps {
		switch {
		case r.HomeAddress.IsValid() && m.p.Contains(r.HomeAddress):
			x.itemErrorf(m.opt, m.item, "%s contains the home address %s", m.p, r.HomeAddress)
		case r.HomeAgent.IsValid() && m.p.Contains(r.HomeAgent):
			x.itemErrorf(m.opt, m.item, "%s contains the home agent %s", m.p, r.HomeAgent)
		}
	}
	lanAt := make(map[string]int)
	if o := x.items("lan"); o != nil {
		for i, v := range o.Values {
			if msg := ifname(v); msg != "" {
				x.itemErrorf(o, i, "%s", msg)
				continue
			}
			if line, dup := lanAt[v]; dup {
				x.itemErrorf(o, i, "%s is listed twice (line %d)", v, line)
				continue
			}
			lanAt[v] = itemLine(o, i)
			r.LAN = append(r.LAN, v)
		}
	}
	r.SPI, _ = x.spi()
	r.Key = x.key()
	r.NAI = x.nai(r.Name)
	r.Lifetime = x.seconds("lifetime", DefaultLifetime, minLifetime, maxLifetime)
	r.ControlSocket = x.socket(DefaultControlSocket)
	r.ReplayWindow = x.seconds("replay_window", DefaultReplayWindow, minReplayWindow, maxReplayWindow)
	defPolicy, defOpt, _ := x.scalar("default_policy")
	r.DefaultPolicy = defPolicy
	r.Ops = x.ops(RoleRouter)
	r.PD = d.routerPD(x, r)
	r.OpenWrt = x.openWrt(r)
	x.routerFleet(r)
	x.finish()

	// Uplinks. A mistake in one is reported once; its name still counts
	// as known, so that policies naming it do not add errors of their own.
	known := make(map[string]bool)
	bids := make(map[uint16]*section)
	devices := make(map[string]*section)
	for _, u := range uplinks {
		up := d.uplink(u, lanAt, bids, devices)
		d.checkUplinkInterface(u, &up, r)
		if u.s.Name != "" {
			known[u.s.Name] = true
		}
		r.Uplinks = append(r.Uplinks, up)
	}

	policyAt := make(map[string]bool)
	for _, p := range policies {
		pol := d.policy(p, known)
		if p.s.Name != "" && p.s.Name != DirectPolicy {
			policyAt[p.s.Name] = true
		}
		r.Policies = append(r.Policies, pol)
	}
	if defOpt != nil && defPolicy != "" {
		switch {
		case defPolicy == DirectPolicy:
			x.errorf(defOpt, "%q cannot be the default: traffic of the mobile network must go through the home agent; name a policy section", DirectPolicy)
		case !policyAt[defPolicy]:
			x.errorf(defOpt, "no policy %s%s", quote(defPolicy), policyHint(policyAt))
		}
	}

	for _, ru := range rules {
		r.Rules = append(r.Rules, d.rule(ru, policyAt))
	}
	if len(uplinks) == 0 {
		d.warnf(x.s.Line, "%s has no uplink sections: it has nothing to register with the home agent", x.label)
	}
	return r
}

func policyHint(policies map[string]bool) string {
	var names []string
	for n := range policies {
		if n != DirectPolicy {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	names = append(names, DirectPolicy)
	return " (known: " + strings.Join(names, ", ") + ")"
}

func (d *decoder) uplink(x *section, lanAt map[string]int, bids map[uint16]*section, devices map[string]*section) Uplink {
	u := Uplink{
		Name:          x.s.Name,
		Line:          x.s.Line,
		ProbeInterval: DefaultProbeInterval,
		ProbeFailures: DefaultProbeFailures,
	}
	if x.s.Name == "" {
		d.errorf(x.s.Line, "%s has no name: policies refer to uplinks by name (config uplink 'NAME')", x.label)
	}
	byInterface := x.uplinkInterface(&u)
	dev, devOpt, ok := x.scalar("device")
	switch {
	case byInterface:
	case devOpt == nil:
		x.missing("option device", "interface")
	case !ok:
	case ifname(dev) != "":
		x.errorf(devOpt, "%s", ifname(dev))
	case devices[dev] != nil:
		x.errorf(devOpt, "%s is already the device of %s (line %d)", dev, devices[dev].label, devices[dev].s.Option("device").Line)
	default:
		if line, isLAN := lanAt[dev]; isLAN {
			x.errorf(devOpt, "%s is a lan interface of the router (line %d), it cannot be an uplink too", dev, line)
		}
		devices[dev] = x
		u.Device = dev
	}

	bid, bidOpt, ok := x.scalar("bid")
	switch {
	case bidOpt == nil:
		x.missing("option bid", "")
	case !ok:
	default:
		n, inRange := uintIn(bid, 1, 65535)
		switch {
		case !inRange:
			x.errorf(bidOpt, "%s is not a Binding ID (1..65535)", show(bid))
		case bids[uint16(n)] != nil:
			other := bids[uint16(n)]
			x.errorf(bidOpt, "%s is already the BID of %s (line %d)", bid, other.label, other.s.Option("bid").Line)
		default:
			bids[uint16(n)] = x
			u.BID = uint16(n)
		}
	}

	u.Encap = nemo.EncapAuto
	if v, o, ok := x.scalar("encap"); ok {
		if e, valid := nemo.ParseEncap(v); valid {
			u.Encap = e
		} else {
			x.errorf(o, "%s is not an encapsulation (auto, ipv6 or udp)", show(v))
		}
	}
	if v, o, ok := x.scalar("priority"); ok {
		if n, inRange := uintIn(v, 1, 127); inRange {
			u.Priority = uint8(n)
		} else {
			x.errorf(o, "%s is not a BID priority (1..127)", show(v))
		}
	}
	if iv, _, ok := parsed(x, "probe_interval", func(v string) (time.Duration, string) {
		return interval(v, 50*time.Millisecond, 60*time.Second)
	}); ok {
		u.ProbeInterval = iv
	}
	if v, o, ok := x.scalar("probe_failures"); ok {
		if n, inRange := uintIn(v, 1, 100); inRange {
			u.ProbeFailures = int(n)
		} else {
			x.errorf(o, "%s is out of range (1..100)", show(v))
		}
	}
	x.finish()
	return u
}

func (d *decoder) policy(x *section, uplinks map[string]bool) Policy {
	p := Policy{Name: x.s.Name, Line: x.s.Line}
	switch x.s.Name {
	case "":
		d.errorf(x.s.Line, "%s has no name: rules refer to policies by name (config policy 'NAME')", x.label)
	case DirectPolicy:
		d.errorf(x.s.Line, "policy name %q is reserved for the built-in policy", DirectPolicy)
	}
	use := x.items("use")
	if use == nil {
		x.missing("list use", "")
	} else {
		seen := make(map[string]int)
		for i, name := range use.Values {
			switch line, dup := seen[name]; {
			case !uplinks[name]:
				x.itemErrorf(use, i, "no uplink %s", quote(name))
			case dup:
				x.itemErrorf(use, i, "uplink %s is listed twice (line %d)", name, line)
			default:
				seen[name] = itemLine(use, i)
				p.Use = append(p.Use, name)
			}
		}
	}
	if v, o, ok := x.scalar("mode"); ok {
		switch v {
		case "failover":
			p.Mode = ModeFailover
		case "duplicate":
			p.Mode = ModeDuplicate
			// Counted from the list as written, so that an unknown
			// uplink in it is not reported a second time here.
			if use != nil && len(use.Values) < 2 {
				x.errorf(o, "duplicate sends every packet over each uplink of the policy; it needs at least 2 in use")
			}
		default:
			x.errorf(o, "%s is not a mode (failover or duplicate)", show(v))
		}
	}
	x.finish()
	return p
}

func (d *decoder) rule(x *section, policies map[string]bool) Rule {
	r := Rule{Name: x.name, Line: x.s.Line, Proto: -1, DSCP: -1}
	protoOK := true
	protoV, protoOpt, ok := x.scalar("proto")
	if ok {
		n, msg := protocol(protoV)
		if msg != "" {
			x.errorf(protoOpt, "%s", msg)
			protoOK = false
		} else {
			r.Proto = n
		}
	} else if protoOpt != nil {
		protoOK = false
	}

	var srcOpt, destOpt *Option
	r.SrcIP, srcOpt = x.match("src_ip")
	r.DestIP, destOpt = x.match("dest_ip")
	if r.SrcIP.IsValid() && r.DestIP.IsValid() && r.SrcIP.Addr().Is4() != r.DestIP.Addr().Is4() {
		x.errorf(destOpt, "%s and src_ip %s (line %d) are of different address families", r.DestIP, r.SrcIP, srcOpt.Line)
	}
	for _, p := range []netip.Prefix{r.SrcIP, r.DestIP} {
		if p.IsValid() && r.Proto == protoICMP && p.Addr().Is6() {
			x.errorf(protoOpt, "icmp is IPv4's; IPv6 traffic (%s) needs icmpv6", p)
			break
		}
		if p.IsValid() && r.Proto == protoICMPv6 && p.Addr().Is4() {
			x.errorf(protoOpt, "icmpv6 is IPv6's; IPv4 traffic (%s) needs icmp", p)
			break
		}
	}

	r.SrcPort = x.ports("src_port", r.Proto, protoOK)
	r.DestPort = x.ports("dest_port", r.Proto, protoOK)

	if n, _, ok := parsed(x, "dscp", dscp); ok {
		r.DSCP = n
	}

	pol, polOpt, ok := x.scalar("policy")
	switch {
	case polOpt == nil:
		x.missing("option policy", "")
	case !ok:
	case pol != DirectPolicy && !policies[pol]:
		x.errorf(polOpt, "no policy %s%s", quote(pol), policyHint(policies))
	default:
		r.Policy = pol
	}
	x.finish()
	return r
}

func (x *section) match(name string) (netip.Prefix, *Option) {
	p, o, _ := parsed(x, name, matchPrefix)
	return p, o
}

// ports reads a port match; ports only exist for TCP and UDP. protoOK is
// false when proto itself was wrong and already reported.
func (x *section) ports(name string, proto int, protoOK bool) PortRange {
	v, o, ok := x.scalar(name)
	if !ok {
		return PortRange{}
	}
	r, msg := portRange(v)
	switch {
	case msg != "":
		x.errorf(o, "%s", msg)
	case !protoOK:
	case proto != protoTCP && proto != protoUDP:
		x.errorf(o, "ports need option proto tcp or udp")
	default:
		return r
	}
	return PortRange{}
}

func (d *decoder) homeAgent(x *section, mrs, pools []*section) *HomeAgent {
	h := &HomeAgent{
		Name:          x.name,
		Line:          x.s.Line,
		MaxLifetime:   DefaultMaxLifetime,
		ReplayWindow:  DefaultReplayWindow,
		ControlSocket: DefaultHAControlSocket,
	}
	var addrOpt *Option
	if h.Address, addrOpt = x.ipv6("address", "address_v4"); addrOpt == nil && x.s.Option("address_v4") == nil {
		x.missing("option address", "address_v4")
	}
	h.AddressV4, _ = x.ipv4("address_v4")
	if p, o, ok := parsed(x, "home_prefix", ipv6Prefix); o == nil {
		x.missing("option home_prefix", "")
	} else if ok {
		h.HomePrefix = p
	}
	h.MaxLifetime = x.seconds("max_lifetime", DefaultMaxLifetime, minLifetime, maxLifetime)
	h.ControlSocket = x.socket(DefaultHAControlSocket)
	h.ReplayWindow = x.seconds("replay_window", DefaultReplayWindow, minReplayWindow, maxReplayWindow)
	h.LivenessTimeout = DefaultLivenessTimeout
	if iv, _, ok := parsed(x, "liveness_timeout", func(v string) (time.Duration, string) {
		return interval(v, 100*time.Millisecond, time.Hour)
	}); ok {
		h.LivenessTimeout = iv
	}
	h.Ops = x.ops(RoleHomeAgent)
	h.PD = d.homeAgentPD(x, pools, h.HomePrefix)
	x.homeAgentFleet(h)
	x.finish()

	hoas := make(map[netip.Addr]*section)
	spis := make(map[uint32]*section)
	type owned struct {
		prefixAt
		owner *section
	}
	var allMNPs []owned
	for _, m := range mrs {
		mr := MobileRouter{Name: m.name, Line: m.s.Line}
		var hoaOpt, spiOpt *Option
		mr.HomeAddress, hoaOpt = m.ipv6("home_address", "")
		switch hoa := mr.HomeAddress; {
		case hoaOpt == nil:
			m.missing("option home_address", "")
		case !hoa.IsValid():
		case h.HomePrefix.IsValid() && !h.HomePrefix.Contains(hoa):
			m.errorf(hoaOpt, "%s is outside home_prefix %s (line %d)", hoa, h.HomePrefix, x.s.Option("home_prefix").Line)
		case hoa == h.Address:
			m.errorf(hoaOpt, "%s is the home agent's own address", hoa)
		case hoas[hoa] != nil:
			m.errorf(hoaOpt, "%s is already the home address of %s (line %d)", hoa, hoas[hoa].label, hoas[hoa].s.Option("home_address").Line)
		default:
			hoas[hoa] = m
		}
		mr.SPI, spiOpt = m.spi()
		if mr.SPI != 0 {
			if other := spis[mr.SPI]; other != nil {
				m.errorf(spiOpt, "%d is already the SPI of %s (line %d)", mr.SPI, other.label, other.s.Option("spi").Line)
			} else {
				spis[mr.SPI] = m
			}
		}
		mr.Key = m.key()
		if _, o, _ := m.scalar("nai"); o != nil {
			mr.NAI = m.nai("")
		}
		var mnps []prefixAt
		mr.MNPs, mnps = m.prefixes("mnp")
		for _, p := range mnps {
			switch {
			case mr.HomeAddress.IsValid() && p.p.Contains(mr.HomeAddress):
				m.itemErrorf(p.opt, p.item, "%s contains the home address %s", p.p, mr.HomeAddress)
				continue
			case h.Address.IsValid() && p.p.Contains(h.Address):
				m.itemErrorf(p.opt, p.item, "%s contains the home agent's address %s", p.p, h.Address)
				continue
			case h.HomePrefix.IsValid() && p.p.Overlaps(h.HomePrefix):
				m.itemErrorf(p.opt, p.item, "%s overlaps home_prefix %s", p.p, h.HomePrefix)
				continue
			}
			allMNPs = append(allMNPs, owned{p, m})
		}
		m.mobileRouterPD(&mr)
		m.finish()
		h.MobileRouters = append(h.MobileRouters, mr)
	}
	// Prefixes of different routers must not overlap. Sorted by address, a
	// prefix overlaps an earlier one exactly when it starts before the end
	// of the furthest-reaching one so far: one pass, where comparing every
	// pair took most of a second for a fleet of 10,000 routers.
	slices.SortStableFunc(allMNPs, func(a, b owned) int {
		if c := a.p.Addr().Compare(b.p.Addr()); c != 0 {
			return c
		}
		return a.p.Bits() - b.p.Bits()
	})
	var reach *owned
	for i := range allMNPs {
		p := &allMNPs[i]
		if reach == nil || !reach.p.Contains(p.p.Addr()) {
			reach = p
			continue
		}
		// Report the one written later in the file.
		first, later := reach, p
		if p.line < reach.line {
			first, later = p, reach
		}
		// reach keeps the longer reach: sorted by address, p starts inside
		// it and cannot be the wider of the two.
		later.owner.itemErrorf(later.opt, later.item, "%s overlaps mnp %s of %s (line %d)", later.p, first.p, first.owner.label, first.line)
	}
	d.checkPDRouters(h, mrs)
	return h
}
