// Package dhcp4 serves DHCPv4 on the mobile network's LAN (RFC 2131): the
// hosts get their addresses from the IPv4 prefix the home agent granted,
// the router's LAN address as their router, and DNS servers. Leases is the
// protocol's state machine, with no I/O, taking the time as a parameter;
// Server is the shell around it on a UDP socket, keeping the leases in a
// file across restarts. The messages are the package's own codec
// (message.go).
package dhcp4

import (
	"encoding/binary"
	"encoding/json"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Defaults of a LAN's DHCPv4.
const (
	DefaultLeaseTime = time.Hour
	// offerHold is how long an offered address waits for its REQUEST
	// before another host may be offered it.
	offerHold = time.Minute
)

// Config is what the server hands out.
type Config struct {
	Prefix    netip.Prefix  // the leases come from it
	Router    netip.Addr    // the router's address on it: option 3, and the server identifier
	DNS       []netip.Addr  // option 6; the router's address when empty
	LeaseTime time.Duration // option 51 (DefaultLeaseTime when 0)
}

// Lease is one host's address.
type Lease struct {
	MAC      string     `json:"mac"`
	Addr     netip.Addr `json:"address"`
	Expires  time.Time  `json:"expires"`
	Hostname string     `json:"hostname,omitempty"`
	// offered: not yet requested; it lapses after offerHold.
	offered bool
}

// Leases is a LAN's DHCPv4 state. Its methods are safe for concurrent use:
// the server answers on its goroutine while the daemon reads the state.
type Leases struct {
	mu     sync.Mutex
	cfg    Config
	byMAC  map[string]*Lease
	byAddr map[netip.Addr]*Lease
	// declined are addresses a host found in use (DHCPDECLINE), kept out
	// of the pool until then.
	declined map[netip.Addr]time.Time
	changed  bool
}

// NewLeases returns the state for cfg, with the leases of an earlier run
// (those outside the prefix dropped).
func NewLeases(cfg Config, saved []Lease) *Leases {
	l := &Leases{byMAC: map[string]*Lease{}, byAddr: map[netip.Addr]*Lease{}, declined: map[netip.Addr]time.Time{}}
	l.setConfig(cfg)
	for _, s := range saved {
		if l.usable(s.Addr) && l.byMAC[s.MAC] == nil && l.byAddr[s.Addr] == nil {
			c := s
			c.offered = false
			l.byMAC[c.MAC], l.byAddr[c.Addr] = &c, &c
		}
	}
	return l
}

func (l *Leases) setConfig(cfg Config) {
	if cfg.LeaseTime <= 0 {
		cfg.LeaseTime = DefaultLeaseTime
	}
	if len(cfg.DNS) == 0 {
		cfg.DNS = []netip.Addr{cfg.Router}
	}
	cfg.Prefix = cfg.Prefix.Masked()
	l.cfg = cfg
}

// SetConfig changes what is handed out (the home agent granted another
// prefix): leases outside the new prefix are forgotten.
func (l *Leases) SetConfig(cfg Config) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.setConfig(cfg)
	for mac, le := range l.byMAC {
		if !l.usable(le.Addr) {
			delete(l.byMAC, mac)
			delete(l.byAddr, le.Addr)
			l.changed = true
		}
	}
}

// Config returns what is handed out.
func (l *Leases) Config() Config {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg
}

// usable reports whether a may be leased: inside the prefix, neither its
// network nor its broadcast address, nor the router's or a DNS server's.
func (l *Leases) usable(a netip.Addr) bool {
	p := l.cfg.Prefix
	if !a.Is4() || !p.Contains(a) || a == p.Addr() || a == broadcast(p) || a == l.cfg.Router {
		return false
	}
	return !slices.Contains(l.cfg.DNS, a)
}

func broadcast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(b[:]) | (1<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// free reports whether a may go to mac at now.
func (l *Leases) free(a netip.Addr, mac string, now time.Time) bool {
	if !l.usable(a) || now.Before(l.declined[a]) {
		return false
	}
	le := l.byAddr[a]
	return le == nil || le.MAC == mac || !now.Before(le.Expires)
}

// pick chooses the address for mac: the one it had, the one it asks for,
// else the lowest free one.
func (l *Leases) pick(mac string, want netip.Addr, now time.Time) (netip.Addr, bool) {
	if le := l.byMAC[mac]; le != nil && l.free(le.Addr, mac, now) {
		return le.Addr, true
	}
	if want.IsValid() && l.free(want, mac, now) {
		return want, true
	}
	for a := l.cfg.Prefix.Addr().Next(); l.cfg.Prefix.Contains(a); a = a.Next() {
		if l.free(a, mac, now) {
			return a, true
		}
	}
	return netip.Addr{}, false
}

func (l *Leases) bind(mac string, a netip.Addr, until time.Time, offered bool, host string) {
	if old := l.byMAC[mac]; old != nil {
		delete(l.byAddr, old.Addr)
	}
	if other := l.byAddr[a]; other != nil && other.MAC != mac {
		delete(l.byMAC, other.MAC)
	}
	le := &Lease{MAC: mac, Addr: a, Expires: until, Hostname: host, offered: offered}
	l.byMAC[mac], l.byAddr[a] = le, le
	if !offered {
		l.changed = true
	}
}

// fromMsg is an address field or option of a message: invalid when unset
// (0.0.0.0).
func fromMsg(a netip.Addr) netip.Addr {
	if !a.Is4() || a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}

// Handle answers one message from a host at now; nil when nothing is to
// be sent (not a request, not for this server, or no address to offer).
func (l *Leases) Handle(req *Message, now time.Time) *Message {
	if req.Op != OpRequest || req.HLen == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	mac := req.HardwareAddr().String()
	want := fromMsg(req.Addr(OptRequestedIP))
	server := fromMsg(req.Addr(OptServerID))
	host, _ := req.Option(OptHostname)
	switch req.Type() {
	case Discover:
		a, ok := l.pick(mac, want, now)
		if !ok {
			return nil // the pool is full: no offer (RFC 2131 §4.3.1)
		}
		l.bind(mac, a, now.Add(offerHold), true, string(host))
		return l.reply(req, Offer, a)
	case Request:
		if server.IsValid() && server != l.cfg.Router {
			// The host chose another server's offer: ours lapses.
			if le := l.byMAC[mac]; le != nil && le.offered {
				delete(l.byMAC, mac)
				delete(l.byAddr, le.Addr)
			}
			return nil
		}
		a := want // SELECTING and INIT-REBOOT name it (RFC 2131 §4.3.2)
		if !a.IsValid() {
			a = fromMsg(req.CIAddr) // RENEWING, REBINDING
		}
		if !a.IsValid() || !l.free(a, mac, now) {
			return l.nak(req)
		}
		l.bind(mac, a, now.Add(l.cfg.LeaseTime), false, string(host))
		return l.reply(req, Ack, a)
	case Release:
		if le := l.byMAC[mac]; le != nil && le.Addr == fromMsg(req.CIAddr) {
			delete(l.byMAC, mac)
			delete(l.byAddr, le.Addr)
			l.changed = true
		}
	case Decline:
		// Someone else uses it: keep it out of the pool for a lease time.
		if le := l.byMAC[mac]; want.IsValid() && le != nil && le.Addr == want {
			delete(l.byMAC, mac)
			delete(l.byAddr, want)
			l.declined[want] = now.Add(l.cfg.LeaseTime)
			l.changed = true
		}
	case Inform:
		// Configuration only: no address and no lease times (RFC 2131
		// §4.3.5).
		r := l.reply(req, Ack, netip.Addr{})
		r.Del(OptLeaseTime)
		r.Del(OptRenewalTime)
		r.Del(OptRebindTime)
		return r
	}
	return nil
}

// reply is an OFFER or ACK of a (none for an INFORM's ACK) with what the
// LAN's hosts are given: mask, router, DNS, broadcast address, the lease
// time and when to renew and rebind (RFC 2131 §4.4.5's defaults).
func (l *Leases) reply(req *Message, t MessageType, a netip.Addr) *Message {
	r := NewReply(req, t)
	r.SIAddr = l.cfg.Router
	if a.IsValid() {
		r.YIAddr = a
	}
	lease := uint32(l.cfg.LeaseTime / time.Second)
	mask := net.CIDRMask(l.cfg.Prefix.Bits(), 32)
	r.Set(OptServerID, addrsData(l.cfg.Router))
	r.Set(OptLeaseTime, secondsData(lease))
	r.Set(OptRenewalTime, secondsData(lease/2))
	r.Set(OptRebindTime, secondsData(uint32(uint64(lease)*7/8)))
	r.Set(OptSubnetMask, mask)
	r.Set(OptRouter, addrsData(l.cfg.Router))
	r.Set(OptDNS, addrsData(l.cfg.DNS...))
	r.Set(OptBroadcast, addrsData(broadcast(l.cfg.Prefix)))
	return r
}

func (l *Leases) nak(req *Message) *Message {
	r := NewReply(req, Nak)
	r.Set(OptServerID, addrsData(l.cfg.Router))
	return r
}

// Active is the number of leases (not offers) running at now.
func (l *Leases) Active(now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, le := range l.byMAC {
		if !le.offered && now.Before(le.Expires) {
			n++
		}
	}
	return n
}

// Lookup returns the lease of a host, if it has one.
func (l *Leases) Lookup(mac net.HardwareAddr) (Lease, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	le := l.byMAC[mac.String()]
	if le == nil || le.offered {
		return Lease{}, false
	}
	return *le, true
}

// Save returns the leases to keep (offers are not) when they changed since
// the last Save, and whether they did.
func (l *Leases) Save() ([]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.changed {
		return nil, false
	}
	l.changed = false
	// Sorted as pointers: the generic sort's instance for pointers is in
	// the binary already, one for Lease would cost 12 KB of the router's
	// flash.
	ptrs := make([]*Lease, 0, len(l.byMAC))
	for _, le := range l.byMAC {
		if !le.offered {
			ptrs = append(ptrs, le)
		}
	}
	slices.SortFunc(ptrs, func(a, b *Lease) int { return a.Addr.Compare(b.Addr) })
	out := make([]Lease, len(ptrs))
	for i, le := range ptrs {
		out[i] = *le
	}
	b, err := json.MarshalIndent(out, "", "\t")
	if err != nil {
		return nil, false
	}
	return append(b, '\n'), true
}

// ParseLeases reads what Save wrote.
func ParseLeases(b []byte) ([]Lease, error) {
	var out []Lease
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}
