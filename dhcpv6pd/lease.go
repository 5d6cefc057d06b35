package dhcpv6pd

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// EventKind says what happened to a delegated prefix.
type EventKind uint8

const (
	// Delegated: the router now has the prefix, until ValidUntil (a new
	// delegation or an extended one).
	Delegated EventKind = iota + 1
	// Released: the prefix was given back (Release) or taken back (a
	// Reply with valid lifetime 0); it is no longer the router's.
	Released
	// Expired: the valid lifetime ended without a renewal.
	Expired
)

func (k EventKind) String() string {
	switch k {
	case Delegated:
		return "delegated"
	case Released:
		return "released"
	case Expired:
		return "expired"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is a change of a router's delegated prefixes. The client, the
// delegating router and the home agent's relay emit the same events.
type Event struct {
	Kind   EventKind
	Router netip.Addr // the mobile router's home address
	Prefix netip.Prefix
	// PreferredUntil and ValidUntil are set for Delegated; Forever for an
	// infinite lifetime.
	PreferredUntil, ValidUntil time.Time
}

// Forever stands for an infinite lifetime: far enough that no clock
// reaches it, near enough that time arithmetic does not overflow.
var Forever = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// until turns a lifetime in seconds at now into an instant.
func until(now time.Time, s uint32) time.Time {
	if s == Infinity {
		return Forever
	}
	return now.Add(time.Duration(s) * time.Second).Truncate(time.Second)
}

// left turns an instant back into a lifetime in seconds at now.
func left(now, t time.Time) uint32 {
	if !t.Before(Forever) {
		return Infinity
	}
	d := t.Sub(now)
	if d <= 0 {
		return 0
	}
	s := (d + time.Second - 1) / time.Second
	return uint32(min(s, Infinity-1))
}

// Held is a delegated prefix with its lifetimes as instants.
type Held struct {
	Prefix         netip.Prefix
	PreferredUntil time.Time
	ValidUntil     time.Time
}

// Lease is what the requesting router keeps across restarts: its DUID
// (even with no prefix: the DUID must never change), the server that
// delegated and the prefixes with their lifetimes.
type Lease struct {
	DUID     DUID
	IAID     [4]byte
	ServerID DUID // nil: no server yet
	Prefixes []Held
	// T1 and T2 are when to Renew and Rebind; zero: not bound.
	T1, T2 time.Time
	// Hint is the last prefix held: asked for again in a Solicit after
	// the lease is gone, so that a router gets its old prefix back if the
	// server still has it free.
	Hint netip.Prefix
	DNS  []netip.Addr
}

// Clone returns a deep copy.
func (l *Lease) Clone() *Lease {
	if l == nil {
		return nil
	}
	c := *l
	c.DUID = slices.Clone(l.DUID)
	c.ServerID = slices.Clone(l.ServerID)
	c.Prefixes = slices.Clone(l.Prefixes)
	c.DNS = slices.Clone(l.DNS)
	return &c
}

// Valid reports the prefixes still valid at now.
func (l *Lease) Valid(now time.Time) []Held {
	var out []Held
	for _, h := range l.Prefixes {
		if now.Before(h.ValidUntil) {
			out = append(out, h)
		}
	}
	return out
}

// leaseVersion is the format of the lease file; a file of another version
// is refused rather than misread.
const leaseVersion = 1

type jsonLease struct {
	Version  int          `json:"version"`
	DUID     string       `json:"duid"`
	IAID     string       `json:"iaid"`
	ServerID string       `json:"server_id,omitempty"`
	Prefixes []jsonHeld   `json:"prefixes"`
	T1       *time.Time   `json:"t1,omitempty"`
	T2       *time.Time   `json:"t2,omitempty"`
	Hint     string       `json:"hint,omitempty"`
	DNS      []netip.Addr `json:"dns,omitempty"`
}

type jsonHeld struct {
	Prefix         netip.Prefix `json:"prefix"`
	PreferredUntil time.Time    `json:"preferred_until"`
	ValidUntil     time.Time    `json:"valid_until"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// EncodeLease encodes l as JSON. Equal leases encode to equal bytes (UTC,
// whole seconds), so a store can tell a real change from a rewrite.
func EncodeLease(l *Lease) []byte {
	j := jsonLease{
		Version:  leaseVersion,
		DUID:     hex.EncodeToString(l.DUID),
		IAID:     hex.EncodeToString(l.IAID[:]),
		ServerID: hex.EncodeToString(l.ServerID),
		Prefixes: []jsonHeld{},
		T1:       optTime(l.T1),
		T2:       optTime(l.T2),
		DNS:      l.DNS,
	}
	if l.Hint.IsValid() {
		j.Hint = l.Hint.String()
	}
	for _, h := range l.Prefixes {
		j.Prefixes = append(j.Prefixes, jsonHeld{h.Prefix, h.PreferredUntil.UTC(), h.ValidUntil.UTC()})
	}
	b, err := json.MarshalIndent(&j, "", "\t")
	if err != nil {
		panic(err) // only plain values: cannot fail
	}
	return append(b, '\n')
}

// ErrLease is wrapped by every error of DecodeLease.
var ErrLease = errors.New("dhcpv6pd: bad lease file")

// DecodeLease decodes a lease file. It checks everything a lease's users
// rely on, and never panics.
func DecodeLease(b []byte) (*Lease, error) {
	var j jsonLease
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&j); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrLease, err)
	}
	if d.More() {
		return nil, fmt.Errorf("%w: data after the lease", ErrLease)
	}
	if j.Version != leaseVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrLease, j.Version, leaseVersion)
	}
	l := &Lease{}
	var err error
	if l.DUID, err = hex.DecodeString(j.DUID); err != nil || checkDUID(l.DUID) != nil {
		return nil, fmt.Errorf("%w: duid %q", ErrLease, j.DUID)
	}
	iaid, err := hex.DecodeString(j.IAID)
	if err != nil || len(iaid) != 4 {
		return nil, fmt.Errorf("%w: iaid %q", ErrLease, j.IAID)
	}
	copy(l.IAID[:], iaid)
	if j.ServerID != "" {
		if l.ServerID, err = hex.DecodeString(j.ServerID); err != nil || checkDUID(l.ServerID) != nil {
			return nil, fmt.Errorf("%w: server_id %q", ErrLease, j.ServerID)
		}
	}
	for _, h := range j.Prefixes {
		p := h.Prefix
		if !p.IsValid() || !p.Addr().Is6() || p.Addr().Is4In6() || p != p.Masked() || p.Bits() == 0 {
			return nil, fmt.Errorf("%w: prefix %v", ErrLease, h.Prefix)
		}
		if h.PreferredUntil.After(h.ValidUntil) || h.ValidUntil.After(Forever) {
			return nil, fmt.Errorf("%w: lifetimes of %v", ErrLease, p)
		}
		l.Prefixes = append(l.Prefixes, Held{p, h.PreferredUntil, h.ValidUntil})
	}
	if j.T1 != nil {
		l.T1 = *j.T1
	}
	if j.T2 != nil {
		l.T2 = *j.T2
	}
	if l.T1.After(l.T2) && !l.T2.IsZero() {
		return nil, fmt.Errorf("%w: t1 after t2", ErrLease)
	}
	if j.Hint != "" {
		if l.Hint, err = netip.ParsePrefix(j.Hint); err != nil || !l.Hint.Addr().Is6() || l.Hint.Addr().Is4In6() || l.Hint != l.Hint.Masked() {
			return nil, fmt.Errorf("%w: hint %q", ErrLease, j.Hint)
		}
	}
	for _, a := range j.DNS {
		if !a.Is6() || a.Is4In6() || a.Zone() != "" {
			return nil, fmt.Errorf("%w: dns %v", ErrLease, a)
		}
	}
	l.DNS = j.DNS
	return l, nil
}

type jsonServerLease struct {
	HoA            netip.Addr   `json:"hoa"`
	DUID           string       `json:"duid"`
	IAID           string       `json:"iaid"`
	Prefix         netip.Prefix `json:"prefix"`
	PreferredUntil time.Time    `json:"preferred_until"`
	ValidUntil     time.Time    `json:"valid_until"`
	Active         bool         `json:"active"`
}

type jsonServerState struct {
	Version int               `json:"version"`
	DUID    string            `json:"duid"`
	Leases  []jsonServerLease `json:"leases"`
}

// EncodeServerState encodes the delegating router's state as JSON; equal
// states encode to equal bytes.
func EncodeServerState(st *ServerState) []byte {
	j := jsonServerState{Version: leaseVersion, DUID: hex.EncodeToString(st.DUID), Leases: []jsonServerLease{}}
	for _, l := range st.Leases {
		j.Leases = append(j.Leases, jsonServerLease{l.HoA, hex.EncodeToString(l.DUID), hex.EncodeToString(l.IAID[:]),
			l.Prefix, l.PreferredUntil.UTC(), l.ValidUntil.UTC(), l.Active})
	}
	b, err := json.MarshalIndent(&j, "", "\t")
	if err != nil {
		panic(err) // only plain values: cannot fail
	}
	return append(b, '\n')
}

// DecodeServerState decodes what EncodeServerState wrote. It never panics;
// a lease file that does not check out is refused whole.
func DecodeServerState(b []byte) (*ServerState, error) {
	var j jsonServerState
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&j); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrLease, err)
	}
	if d.More() {
		return nil, fmt.Errorf("%w: data after the state", ErrLease)
	}
	if j.Version != leaseVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrLease, j.Version, leaseVersion)
	}
	st := &ServerState{}
	var err error
	if st.DUID, err = hex.DecodeString(j.DUID); err != nil || checkDUID(st.DUID) != nil {
		return nil, fmt.Errorf("%w: duid %q", ErrLease, j.DUID)
	}
	seen := map[netip.Prefix]bool{}
	for _, jl := range j.Leases {
		l := ServerLease{HoA: jl.HoA, Prefix: jl.Prefix, PreferredUntil: jl.PreferredUntil, ValidUntil: jl.ValidUntil, Active: jl.Active}
		if !l.HoA.Is6() || l.HoA.Is4In6() || l.HoA.Zone() != "" {
			return nil, fmt.Errorf("%w: hoa %v", ErrLease, jl.HoA)
		}
		if l.DUID, err = hex.DecodeString(jl.DUID); err != nil || checkDUID(l.DUID) != nil {
			return nil, fmt.Errorf("%w: duid %q", ErrLease, jl.DUID)
		}
		iaid, err := hex.DecodeString(jl.IAID)
		if err != nil || len(iaid) != 4 {
			return nil, fmt.Errorf("%w: iaid %q", ErrLease, jl.IAID)
		}
		copy(l.IAID[:], iaid)
		p := l.Prefix
		if !p.IsValid() || !p.Addr().Is6() || p.Addr().Is4In6() || p != p.Masked() || p.Bits() == 0 || seen[p] {
			return nil, fmt.Errorf("%w: prefix %v", ErrLease, jl.Prefix)
		}
		if l.PreferredUntil.After(l.ValidUntil) {
			return nil, fmt.Errorf("%w: lifetimes of %v", ErrLease, p)
		}
		seen[p] = true
		st.Leases = append(st.Leases, l)
	}
	return st, nil
}
