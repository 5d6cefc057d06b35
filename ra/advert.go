package ra

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"time"
)

// Protocol constants of RFC 4861 §10 (router side).
const (
	MaxInitialAdvertInterval = 16 * time.Second
	MaxInitialAdvertisements = 3
	MaxRADelay               = 500 * time.Millisecond
	MinDelayBetweenRAs       = 3 * time.Second
	// FinalAdvertisements is how many RAs with router lifetime 0 a router
	// sends when it stops advertising (RFC 4861 §6.2.5 says "one or
	// more"; three survive a lost one).
	FinalAdvertisements = 3
)

// Limits of the lifetimes in a Prefix Information option: a host keeps an
// address no longer than this after the last RA it heard, so that a LAN
// whose router vanished or whose prefix changed without notice moves on
// in time (the limits RFC 9096 §3 recommends for CE routers: 45 min
// preferred, 90 min valid).
const (
	DefaultMaxPreferred = 45 * time.Minute
	DefaultMaxValid     = 90 * time.Minute
)

// deprecatedValid is the longest valid lifetime an old prefix keeps while
// it is deprecated (RFC 7084 L-13: the lower of its current valid lifetime
// and two hours, decremented in real time).
const deprecatedValid = 2 * time.Hour

// zeroRAs is how many RAs carry a withdrawn prefix with valid lifetime 0
// after its deprecation ran out, for hosts that missed the last ones.
const zeroRAs = 3

// Config is what every LAN's advertisements share.
type Config struct {
	// MaxInterval and MinInterval bound the unsolicited RA interval (RFC
	// 4861 §6.2.1 MaxRtrAdvInterval, MinRtrAdvInterval); zero: 600 s and
	// a third of MaxInterval.
	MaxInterval, MinInterval time.Duration
	// RouterLifetime is advertised while a binding is registered; zero:
	// 3 × MaxInterval (the RFC 4861 default).
	RouterLifetime time.Duration
	// MaxPreferred and MaxValid cap the PIO lifetimes; zero: the defaults
	// above.
	MaxPreferred, MaxValid time.Duration
	MTU                    uint32       // the tunnel MTU; 0: no MTU option
	DNS                    []netip.Addr // list dns: RDNSS option (RFC 8106)
	HopLimit               uint8        // Cur Hop Limit; zero: 64
}

func (c *Config) defaults() {
	if c.MaxInterval == 0 {
		c.MaxInterval = 600 * time.Second
	}
	if c.MinInterval == 0 {
		c.MinInterval = max(c.MaxInterval/3, 3*time.Second)
	}
	if c.RouterLifetime == 0 {
		c.RouterLifetime = 3 * c.MaxInterval
	}
	if c.MaxPreferred == 0 {
		c.MaxPreferred = DefaultMaxPreferred
	}
	if c.MaxValid == 0 {
		c.MaxValid = DefaultMaxValid
	}
	if c.HopLimit == 0 {
		c.HopLimit = 64
	}
}

// Validate checks c against RFC 4861 §6.2.1's bounds.
func (c Config) Validate() error {
	c.defaults()
	switch {
	case c.MaxInterval < 4*time.Second || c.MaxInterval > 1800*time.Second:
		return errors.New("ra: MaxRtrAdvInterval must be 4..1800 s")
	case c.MinInterval < 3*time.Second || c.MinInterval > c.MaxInterval:
		return errors.New("ra: MinRtrAdvInterval must be 3 s..MaxRtrAdvInterval")
	case c.RouterLifetime < c.MaxInterval || c.RouterLifetime > 9000*time.Second:
		return errors.New("ra: router lifetime must be MaxRtrAdvInterval..9000 s")
	case c.MaxPreferred > c.MaxValid:
		return errors.New("ra: preferred cap above valid cap")
	}
	for _, a := range c.DNS {
		if !a.Is6() || a.Is4In6() {
			return fmt.Errorf("ra: DNS server %v is not IPv6", a)
		}
	}
	return nil
}

// Send is one RA to send on the LAN.
type Send struct {
	Dst netip.Addr // ff02::1
	RA  *RA
}

// Output is what an Advertiser asks of its shell.
type Output struct {
	Send []Send
	// Addrs is, when AddrsChanged, the full set of the router's own
	// addresses the LAN interface must have (each /64).
	Addrs        []netip.Prefix
	AddrsChanged bool
}

// old is a prefix no longer assigned, advertised deprecated.
type old struct {
	prefix     netip.Prefix
	validUntil time.Time // of the deprecated advertisement
	zeroLeft   int       // RAs still to carry it with valid lifetime 0
}

// AllNodes is where RAs go (RFC 4861 §6.2.4).
var AllNodes = netip.MustParseAddr("ff02::1")

// Advertiser is one LAN's router advertisement state (RFC 4861 §6.2). It
// is not safe for concurrent use.
type Advertiser struct {
	cfg        Config
	r          *rand.Rand
	subnets    []Subnet
	olds       []old
	registered bool
	running    bool

	next      time.Time // next unsolicited RA
	initLeft  int       // fast initial RAs left
	lastMcast time.Time // last multicast RA
	rsAt      time.Time // pending answer to a Router Solicitation
	finalLeft int

	Counters
}

// Counters count what an Advertiser did.
type Counters struct {
	Sent        uint64 `json:"sent"`
	Solicits    uint64 `json:"solicitations"`
	BadSolicits uint64 `json:"bad_solicitations"`
}

// NewAdvertiser returns a LAN's advertiser; r randomises the intervals.
func NewAdvertiser(cfg Config, r *rand.Rand) (*Advertiser, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	return &Advertiser{cfg: cfg, r: r}, nil
}

// Update sets the LAN's subnets (from Plan, this LAN's only) and whether
// the router has a registered binding. A subnet that went away is
// deprecated, not dropped (RFC 7084 L-13); any change is announced at once
// and then at the fast initial pace.
func (a *Advertiser) Update(subnets []Subnet, registered bool, now time.Time) Output {
	var out Output
	changed := registered != a.registered || !a.running
	for _, s := range a.subnets {
		if !slices.ContainsFunc(subnets, func(n Subnet) bool { return n.Prefix == s.Prefix }) {
			changed = true
			v := s.ValidUntil
			if lim := now.Add(min(deprecatedValid, a.cfg.MaxValid)); lim.Before(v) {
				v = lim
			}
			a.olds = append(a.olds, old{prefix: s.Prefix, validUntil: v, zeroLeft: zeroRAs})
		}
	}
	for _, s := range subnets {
		i := slices.IndexFunc(a.subnets, func(o Subnet) bool { return o.Prefix == s.Prefix })
		if i < 0 || a.subnets[i].PreferredUntil != s.PreferredUntil || a.subnets[i].ValidUntil != s.ValidUntil {
			changed = true
		}
		// A prefix back again is no longer old.
		a.olds = slices.DeleteFunc(a.olds, func(o old) bool { return o.prefix == s.Prefix })
	}
	prevAddrs := a.addrs()
	a.subnets = slices.Clone(subnets)
	a.registered = registered
	a.running = true
	a.finalLeft = 0
	if addrs := a.addrs(); !slices.Equal(addrs, prevAddrs) {
		out.Addrs, out.AddrsChanged = addrs, true
	}
	if changed {
		a.initLeft = MaxInitialAdvertisements
		a.next = now
		out.Send = append(out.Send, a.Tick(now).Send...)
	}
	return out
}

// addrs is the set of router addresses: one per current subnet, and the
// deprecated ones' until they are withdrawn (hosts may still send there).
func (a *Advertiser) addrs() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range a.subnets {
		out = append(out, netip.PrefixFrom(s.Router, 64))
	}
	for _, o := range a.olds {
		if o.zeroLeft == zeroRAs {
			out = append(out, netip.PrefixFrom(o.prefix.Addr().Next(), 64))
		}
	}
	// sort.SliceStable: already in the router's binary, where
	// slices.SortFunc would add 12 KB for netip.Prefix.
	sort.SliceStable(out, func(i, j int) bool { return out[i].Addr().Less(out[j].Addr()) })
	return slices.Compact(out)
}

// Stop withdraws the router: the next RAs say router lifetime 0 and
// deprecate every prefix, then no more (RFC 4861 §6.2.5).
func (a *Advertiser) Stop(now time.Time) Output {
	if !a.running {
		return Output{}
	}
	a.registered = false
	a.finalLeft = FinalAdvertisements
	a.initLeft = 0
	a.next = now
	return a.Tick(now)
}

// Next returns when Tick must next run; zero if never.
func (a *Advertiser) Next() time.Time {
	if !a.running {
		return time.Time{}
	}
	t := a.next
	if !a.rsAt.IsZero() && a.rsAt.Before(t) {
		t = a.rsAt
	}
	return t
}

// Tick sends what is due at now.
func (a *Advertiser) Tick(now time.Time) Output {
	var out Output
	if !a.running {
		return out
	}
	due := !now.Before(a.next) || (!a.rsAt.IsZero() && !now.Before(a.rsAt))
	if !due {
		return out
	}
	prevAddrs := a.addrs()
	out.Send = append(out.Send, Send{Dst: AllNodes, RA: a.build(now)})
	a.Sent++
	a.lastMcast = now
	a.rsAt = time.Time{}
	if addrs := a.addrs(); !slices.Equal(addrs, prevAddrs) {
		out.Addrs, out.AddrsChanged = addrs, true
	}
	switch {
	case a.finalLeft > 0:
		a.finalLeft--
		if a.finalLeft == 0 {
			a.running = false
			a.subnets, a.olds = nil, nil
			out.Addrs, out.AddrsChanged = nil, true
			return out
		}
		a.next = now.Add(MinDelayBetweenRAs)
	case a.initLeft > 0:
		a.initLeft--
		a.next = now.Add(min(a.interval(), MaxInitialAdvertInterval))
	default:
		a.next = now.Add(a.interval())
	}
	// Lifetimes decrease as the lease runs: an RA before a prefix's
	// deadline carries what is left, and one must go out when a
	// deprecated prefix's valid lifetime reaches 0.
	for _, o := range a.olds {
		if o.zeroLeft == zeroRAs && o.validUntil.After(now) && o.validUntil.Before(a.next) {
			a.next = o.validUntil
		}
	}
	return out
}

func (a *Advertiser) interval() time.Duration {
	lo, hi := a.cfg.MinInterval, a.cfg.MaxInterval
	return lo + time.Duration(a.r.Int64N(int64(hi-lo)+1))
}

// lifetime is what is left of until at now, capped, in whole seconds as
// the option carries them.
func lifetime(now, until time.Time, cap time.Duration) time.Duration {
	d := until.Sub(now)
	if d <= 0 {
		return 0
	}
	return min(d, cap).Truncate(time.Second)
}

// build makes the RA to send at now.
func (a *Advertiser) build(now time.Time) *RA {
	ra := &RA{CurrentHopLimit: a.cfg.HopLimit}
	if a.registered {
		// Only with a binding registered is this router a way out; with
		// none, hosts must not pick it as default router (lifetime 0).
		ra.RouterLifetime = a.cfg.RouterLifetime
	}
	final := a.finalLeft > 0
	for _, s := range a.subnets {
		pio := PrefixInformation{Prefix: netip.PrefixFrom(s.Prefix.Addr(), 64), OnLink: true, AutonomousAddressConfiguration: true,
			ValidLifetime: lifetime(now, s.ValidUntil, a.cfg.MaxValid)}
		pio.PreferredLifetime = min(lifetime(now, s.PreferredUntil, a.cfg.MaxPreferred), pio.ValidLifetime)
		if final {
			pio.PreferredLifetime = 0
		}
		ra.Prefixes = append(ra.Prefixes, pio)
	}
	keep := a.olds[:0]
	for _, o := range a.olds {
		v := lifetime(now, o.validUntil, deprecatedValid)
		if v == 0 {
			if o.zeroLeft == 0 {
				continue
			}
			o.zeroLeft--
		}
		ra.Prefixes = append(ra.Prefixes, PrefixInformation{Prefix: netip.PrefixFrom(o.prefix.Addr(), 64), OnLink: true,
			AutonomousAddressConfiguration: true, ValidLifetime: v})
		keep = append(keep, o)
	}
	a.olds = keep
	ra.MTU = a.cfg.MTU
	if len(a.cfg.DNS) > 0 {
		// RFC 8106 §5.1: at least MaxRtrAdvInterval, 3 × by default.
		ra.DNS, ra.DNSLifetime = a.cfg.DNS, 3*a.cfg.MaxInterval
	}
	return ra
}

// ErrBadRS: a Router Solicitation that RFC 4861 §6.1.1 says to discard.
var ErrBadRS = errors.New("ra: invalid Router Solicitation")

// ReceiveRS takes an ICMPv6 message from the LAN, with the IPv6 source and
// hop limit the socket reported. A valid Router Solicitation schedules a
// multicast RA within MaxRADelay, no sooner than MinDelayBetweenRAs after
// the last one (RFC 4861 §6.2.6). Anything else changes nothing.
func (a *Advertiser) ReceiveRS(b []byte, src netip.Addr, hopLimit int, now time.Time) (Output, error) {
	if len(b) < 8 || b[0] != 133 {
		a.BadSolicits++
		return Output{}, fmt.Errorf("%w: not a Router Solicitation", ErrBadRS)
	}
	if hopLimit != 255 || b[1] != 0 {
		a.BadSolicits++
		return Output{}, fmt.Errorf("%w: hop limit %d, code %d", ErrBadRS, hopLimit, b[1])
	}
	sllao, err := parseRS(b)
	if err != nil {
		a.BadSolicits++
		return Output{}, fmt.Errorf("%w: %v", ErrBadRS, err)
	}
	if src.IsUnspecified() && sllao {
		a.BadSolicits++
		return Output{}, fmt.Errorf("%w: source link-layer address from the unspecified address", ErrBadRS)
	}
	a.Solicits++
	if !a.running || a.finalLeft > 0 {
		return Output{}, nil
	}
	at := now.Add(time.Duration(a.r.Int64N(int64(MaxRADelay) + 1)))
	if earliest := a.lastMcast.Add(MinDelayBetweenRAs); !a.lastMcast.IsZero() && at.Before(earliest) {
		at = earliest
	}
	if a.rsAt.IsZero() || at.Before(a.rsAt) {
		if at.Before(a.next) {
			a.rsAt = at
		}
	}
	return Output{}, nil
}
