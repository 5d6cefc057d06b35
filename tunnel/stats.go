package tunnel

import "sync/atomic"

// Stats count one binding's traffic. They outlive the forwarding tables
// that point at them, so a table rebuild loses no count.
type Stats struct {
	TxPackets, TxBytes atomic.Uint64 // into the tunnel, towards the peer
	RxPackets, RxBytes atomic.Uint64 // out of the tunnel, from the peer
	// LastRx is when the last packet arrived from the peer on this
	// binding (Unix nanoseconds): the liveness of the path.
	LastRx atomic.Int64
	// Probed: the peer probes this binding (a nemod router does), so the
	// home agent may judge it by LastRx; a peer that never probes is not
	// judged, lest its idle bindings look dead.
	Probed atomic.Bool
	Probes atomic.Uint64 // probes answered (home agent) or sent (router)
}

// StatsView is the JSON form of Stats.
type StatsView struct {
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
}

// View returns a snapshot.
func (s *Stats) View() StatsView {
	return StatsView{s.TxPackets.Load(), s.TxBytes.Load(), s.RxPackets.Load(), s.RxBytes.Load()}
}

// Drops count packets the data plane refused, by reason.
type Drops struct {
	NotIPv6    atomic.Uint64 // not an IPv6 packet
	Malformed  atomic.Uint64 // shorter than its header says
	NoBinding  atomic.Uint64 // towards a router (or from a LAN) with no usable binding
	NoRoute    atomic.Uint64 // destination not a mobile network we serve
	BadSource  atomic.Uint64 // inner source outside the router's home address and prefixes
	BadOuter   atomic.Uint64 // outer source not a registered care-of address of that router
	NotFromHA  atomic.Uint64 // tunnelled packet from someone other than the home agent
	NotForUs   atomic.Uint64 // tunnelled packet to an address outside the mobile network
	SendErrors atomic.Uint64 // the socket refused to send
	TunErrors  atomic.Uint64 // the TUN device refused a packet
	TooBig     atomic.Uint64 // larger than the binding carries (answered with Packet Too Big)
	BadProbe   atomic.Uint64 // a probe from no registered binding, or malformed
	Direct     atomic.Uint64 // a local-breakout packet that reached the tunnel
}

// DropsView is the JSON form of Drops.
type DropsView struct {
	NotIPv6    uint64 `json:"not_ipv6"`
	Malformed  uint64 `json:"malformed"`
	NoBinding  uint64 `json:"no_binding"`
	NoRoute    uint64 `json:"no_route"`
	BadSource  uint64 `json:"bad_inner_source"`
	BadOuter   uint64 `json:"bad_outer_source"`
	NotFromHA  uint64 `json:"not_from_home_agent"`
	NotForUs   uint64 `json:"not_for_mobile_network"`
	SendErrors uint64 `json:"send_errors"`
	TunErrors  uint64 `json:"tun_errors"`
	TooBig     uint64 `json:"too_big"`
	BadProbe   uint64 `json:"bad_probe"`
	Direct     uint64 `json:"direct_in_tunnel"`
}

// View returns a snapshot.
func (d *Drops) View() DropsView {
	return DropsView{
		d.NotIPv6.Load(), d.Malformed.Load(), d.NoBinding.Load(), d.NoRoute.Load(), d.BadSource.Load(),
		d.BadOuter.Load(), d.NotFromHA.Load(), d.NotForUs.Load(), d.SendErrors.Load(), d.TunErrors.Load(), d.TooBig.Load(),
		d.BadProbe.Load(), d.Direct.Load(),
	}
}
