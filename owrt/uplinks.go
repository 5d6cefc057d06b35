package owrt

import (
	"nemod/ifmon"
	"nemod/netifd"
)

// Uplink is what netifd says of the interface an uplink follows (option
// interface).
type Uplink struct {
	// Known: netifd has reported the interface.
	Known bool
	// Up: netifd has the interface up.
	Up bool
	// Device is its l3_device: the device the uplink uses. It is kept
	// while the interface is down (netifd's down reports have none), so
	// that a flapping modem does not move the uplink's sockets.
	Device string
	// Default6 and Default4: netifd holds a default route of the family
	// for it that is not source-specific.
	Default6, Default4 bool
}

// Uplinks maps netifd's interfaces to the router's uplinks. It does no
// I/O; not safe for concurrent use.
type Uplinks struct {
	names []string // by uplink index: option interface, "" for option device
	state []Uplink
}

// NewUplinks follows the interfaces named, by uplink index ("" for an
// uplink with a device of its own).
func NewUplinks(interfaces []string) *Uplinks {
	return &Uplinks{names: append([]string(nil), interfaces...), state: make([]Uplink, len(interfaces))}
}

// Follows reports whether any uplink follows a netifd interface.
func (u *Uplinks) Follows() bool {
	for _, n := range u.names {
		if n != "" {
			return true
		}
	}
	return false
}

// Apply takes one of netifd's changes; it returns the uplinks whose state
// changed and whether a device changed among them.
func (u *Uplinks) Apply(ch netifd.Change) (changed []int, device bool) {
	for i, n := range u.names {
		if n == "" || n != ch.Name {
			continue
		}
		old := u.state[i]
		nu := Uplink{Device: old.Device}
		if i := ch.New; i != nil {
			nu.Known, nu.Up = true, i.Up
			if i.L3Device != "" {
				nu.Device = i.L3Device
			}
			nu.Default6, nu.Default4 = general(i.DefaultRoutes(6)), general(i.DefaultRoutes(4))
		}
		if nu != old {
			u.state[i] = nu
			changed = append(changed, i)
			device = device || nu.Device != old.Device
		}
	}
	return changed, device
}

func general(rs []netifd.RouteInfo) bool {
	for _, r := range rs {
		if !r.SourceSpecific() {
			return true
		}
	}
	return false
}

// State is uplink i's state (the zero Uplink for one with a device of its
// own).
func (u *Uplinks) State(i int) Uplink { return u.state[i] }

// Device is the device uplink i uses now: its own (dev), or its netifd
// interface's l3_device ("" until netifd reports one).
func (u *Uplinks) Device(i int, dev string) string {
	if u.names[i] == "" {
		return dev
	}
	return u.state[i].Device
}

// Link is what the router makes of uplink i from the interface monitor's
// report of its device (netlink: the carrier, addresses and routes) and
// netifd's: an interface netifd has down is down whatever the carrier,
// and a default route netifd installed counts even in a table the
// monitor does not read.
func (u *Uplinks) Link(i int, l ifmon.Link) ifmon.Link {
	if u.names[i] == "" {
		return l
	}
	s := u.state[i]
	l.Up = l.Up && s.Up
	l.Default6 = l.Default6 || s.Up && s.Default6
	l.Default4 = l.Default4 || s.Up && s.Default4
	return l
}
