package tunnel

import (
	"net/netip"
	"time"

	"nemod/binding"
	"nemod/header"
	"nemod/nemo"
	"nemod/netio"
)

// The data planes' part in path liveness (binding/liveness.go): both ends
// keep every binding's clock (Stats), answer the peer's Heartbeats and
// hand their own probes' answers on; the home agent also probes a
// router's binding itself while it sends traffic the router leaves
// unanswered, and stops using a binding its probes found dead.

// The home agent answers probes from paths it has no binding for (a dead
// path being tried again, a router behind a NAT that moved it) within a
// token bucket per reader, so that forged probes cannot make it a
// reflector and a fleet whose paths come back together re-registers at a
// rate the home agent chose (about 2,000 a second, a tenth of what it
// registers, see BENCHMARKS.md).
const (
	unboundRate  = 2000
	unboundBurst = 2000
)

// haProbeFailures and haSuspectCeiling are the home agent's own probing:
// as a router's defaults, and one-way traffic backs off to a probe a
// second.
const (
	haProbeFailures  = 3
	haSuspectCeiling = time.Second
)

// haInitialRTT stands in until the home agent has measured a binding:
// its first probes wait long enough for a slow path's answer.
var haInitialRTT = binding.RTT{SRTT: 100 * time.Millisecond, RTTVar: 50 * time.Millisecond}

// heartbeats is one reader's Heartbeat state: a message decoded in place,
// an answer buffer and, at the home agent, its rate limit.
type heartbeats struct {
	hb     nemo.Heartbeat
	out    *netio.Batch
	bucket binding.Bucket
}

func newHeartbeats() *heartbeats {
	return &heartbeats{out: netio.NewBatch(1, 128), bucket: binding.Bucket{Rate: unboundRate, Burst: unboundBurst}}
}

// send sends pkt to to from src (if valid) on c.
func (s *heartbeats) send(c netio.Conn, pkt []byte, to netip.AddrPort, src netip.Addr) error {
	b := s.out
	b.N[0] = copy(b.Bufs[0][:cap(b.Bufs[0])], pkt)
	b.Addr[0], b.Src[0], b.Seg[0] = to, src, 0
	_, err := c.Send(b, 1)
	return err
}

// Router side.

// routerCoA returns the care-of address uplink i's binding has in table
// t, for the answers that must leave from it.
func (t *routerTable) routerCoA(uplink int) (netip.Addr, nemo.Encap) {
	for _, b := range t.bindings {
		if b.uplink == uplink {
			return b.coa, b.encap
		}
	}
	return netip.Addr{}, nemo.EncapNone
}

// answered hands the home agent's answer to one of our probes to the
// daemon; an answer from no binding (the unbound mark) is not hearing
// from the binding.
func (m *MR) answered(u *mrUplink, hb *nemo.Heartbeat, now int64) {
	unbound := hb.NemodUnbound()
	if !unbound {
		u.stats.heard(now)
	}
	if m.cfg.OnProbeAnswer != nil {
		m.cfg.OnProbeAnswer(u.index, hb.Seq, time.Unix(0, now), unbound)
	}
}

// udpHeartbeat takes a Heartbeat a home agent sent in UDP from ha over
// uplink u: the answer to our probe, or its own probe, answered at once
// through the socket it came by (from the binding's care-of address over
// IPv6), to the home agent address it came from.
func (m *MR) udpHeartbeat(u *mrUplink, c netio.Conn, p []byte, ha netip.AddrPort, t *routerTable, hs *heartbeats, now int64) {
	from, err := nemo.ParseHeartbeatPacket(p, &hs.hb)
	if err != nil || !m.fromHA(from) {
		m.drops.Add(DropBadProbe)
		return
	}
	if hs.hb.Response {
		m.answered(u, &hs.hb, now)
		return
	}
	u.stats.heard(now)
	src := netip.Addr{}
	if coa, e := t.routerCoA(u.index); e == nemo.EncapUDP6 {
		src = coa
	}
	pkt, err := nemo.AppendHeartbeatPacket(hs.out.Bufs[0][:0], m.cfg.HoA, from, &nemo.Heartbeat{Response: true, Seq: hs.hb.Seq})
	if err == nil {
		err = hs.send(c, pkt, ha, src)
	}
	if err != nil {
		m.drops.Add(DropSendError)
	}
}

// mhHeartbeat takes a native Heartbeat (the Mobility Header a protocol-135
// socket delivers) from home agent ha over uplink u; the home agent's own
// probe is answered from the binding's care-of address.
func (m *MR) mhHeartbeat(u *mrUplink, s *mrSocks, mh []byte, ha netip.Addr, hs *heartbeats, now int64) {
	if nemo.Unmarshal(mh, &hs.hb) != nil {
		m.drops.Add(DropBadProbe)
		return
	}
	if hs.hb.Response {
		m.answered(u, &hs.hb, now)
		return
	}
	coa, e := m.table.Load().routerCoA(u.index)
	if e != nemo.EncapIPv6 {
		// The home agent probes natively only a native binding.
		m.drops.Add(DropBadProbe)
		return
	}
	u.stats.heard(now)
	pkt, err := nemo.AppendHeartbeatPacket(hs.out.Bufs[0][:0], coa, ha, &nemo.Heartbeat{Response: true, Seq: hs.hb.Seq})
	if err == nil {
		err = s.hdrincl.Send(pkt)
	}
	if err != nil {
		m.drops.Add(DropSendError)
	}
}

// Clock returns uplink i's path clock.
func (m *MR) Clock(i int) binding.Clock { return m.uplinks[i].stats.Clock() }

// Home agent side.

// isRouter reports whether a is the home address of a configured router.
func (h *HA) isRouter(a netip.Addr) bool {
	s, ok := h.table.Load().lookup(a)
	return ok && s.hoa == a
}

// sample takes the answer to the home agent's own probe seq of a
// binding: a round trip.
func sample(st *Stats, seq uint32, now int64) {
	if seq != st.hbSeq.Load() {
		return
	}
	sent := st.hbSent.Load()
	if sent == 0 || now < sent {
		return
	}
	r := binding.RTT{SRTT: time.Duration(st.srtt.Load()), RTTVar: time.Duration(st.rttvar.Load()), Samples: int(st.rttSamples.Load())}
	r.Sample(time.Duration(now - sent))
	st.srtt.Store(int64(r.SRTT))
	st.rttvar.Store(int64(r.RTTVar))
	st.rttSamples.Store(int64(r.Samples))
	st.hbSent.Store(0) // one sample per probe
}

// udpHeartbeat takes a Heartbeat that came in UDP from outer: a request
// from a binding is answered and counts as hearing from it; one from no
// binding but with a configured router's home address inside is answered
// with the unbound mark, within the rate limit; a response is the answer
// to our own probe. In a cluster a binding whose instance another member
// owns is left to it (DropStandby), and every answer leaves from the
// address the probe was sent to, inside and out.
func (h *HA) udpHeartbeat(p []byte, from netip.AddrPort, now int64, replies *sender, hs *heartbeats) {
	inner, err := nemo.ParseHeartbeatPacket(p, &hs.hb)
	if err != nil {
		h.drops.Add(DropBadProbe)
		return
	}
	local := header.IPv6(p).Dst()
	var ab *agentBinding
	if v, ok := h.byOuter.Load(from); ok {
		ab = v.(*agentBinding)
	}
	if ab != nil && ab.onStandby() {
		h.drops.Add(DropStandby)
		return
	}
	if hs.hb.Response {
		if ab == nil {
			h.drops.Add(DropBadProbe)
			return
		}
		ab.stats.heard(now)
		sample(ab.stats, hs.hb.Seq, now)
		return
	}
	resp := nemo.Heartbeat{Response: true, Seq: hs.hb.Seq}
	switch {
	case ab != nil:
		ab.stats.heard(now)
		ab.stats.Probed.Store(true)
		ab.stats.Probes.Add(1)
	case !h.isRouter(inner):
		h.drops.Add(DropBadProbe)
		return
	case h.standbyAt(local):
		h.drops.Add(DropStandby)
		return
	case !hs.bucket.Allow(time.Unix(0, now)):
		h.drops.Add(DropProbeRateLimited)
		return
	default:
		resp.SetNemodUnbound()
	}
	pkt, err := nemo.AppendHeartbeatPacket(hs.out.Bufs[0][:0], local, inner, &resp)
	if err != nil {
		return
	}
	src := h.srcFor(ab, from.Addr().Is6())
	if ab == nil {
		src = h.outerFrom(local, from.Addr().Is6())
	}
	replies.add(pkt, from, src)
}

// mhHeartbeat takes a native Heartbeat (the Mobility Header) from src: as
// udpHeartbeat, with an address one of a router's bindings had standing
// for the home address a native probe does not carry. local is the home
// agent address the answer leaves from (its checksum's destination).
func (h *HA) mhHeartbeat(mh []byte, src netip.Addr, now int64, hs *heartbeats) (answer nemo.Heartbeat, local netip.Addr, ok bool) {
	var ab *agentBinding
	if v, bound := h.byOuter.Load(netip.AddrPortFrom(src, 0)); bound {
		ab = v.(*agentBinding)
		local = h.srcFor(ab, true)
	} else if v, known := h.known.Load(src); known {
		local = h.slotAddr(v.(*routerSlot))
	}
	if !local.IsValid() || nemo.Unmarshal(mh, &hs.hb) != nil || !nemo.VerifyChecksum(mh, src, local) {
		h.drops.Add(DropBadProbe)
		return answer, local, false
	}
	if ab != nil && ab.onStandby() || ab == nil && h.standbyAt(local) {
		h.drops.Add(DropStandby)
		return answer, local, false
	}
	if hs.hb.Response {
		if ab == nil {
			h.drops.Add(DropBadProbe)
			return answer, local, false
		}
		ab.stats.heard(now)
		sample(ab.stats, hs.hb.Seq, now)
		return answer, local, false
	}
	answer = nemo.Heartbeat{Response: true, Seq: hs.hb.Seq}
	switch {
	case ab != nil:
		ab.stats.heard(now)
		ab.stats.Probed.Store(true)
		ab.stats.Probes.Add(1)
	case !hs.bucket.Allow(time.Unix(0, now)):
		h.drops.Add(DropProbeRateLimited)
		return answer, local, false
	default:
		answer.SetNemodUnbound()
	}
	return answer, local, true
}

// slotAddr is the home agent address a router registers with: its
// cluster instance's, or the home agent's.
func (h *HA) slotAddr(s *routerSlot) netip.Addr {
	if i := h.instanceOf(s); i != nil {
		return i.Address
	}
	return h.cfg.Address
}

// standbyAt reports whether a is the address of a cluster instance this
// member stands by for.
func (h *HA) standbyAt(a netip.Addr) bool {
	if h.cl == nil {
		return false
	}
	i := h.cl.by[a]
	return i != nil && i.standby.Load()
}

// outerFrom is where an answer to a probe sent to local leaves from, in
// UDP over IPv6 (v6) or IPv4: local's instance's address, or the home
// agent's.
func (h *HA) outerFrom(local netip.Addr, v6 bool) netip.Addr {
	if h.cl != nil {
		if i := h.cl.by[local]; i != nil {
			if v6 {
				return i.Address
			}
			return i.AddressV4
		}
	}
	return h.srcFor(nil, v6)
}

// sendFrom is the source a native answer from local is sent with: left to
// the socket outside a cluster (bound to the home agent's address).
func (h *HA) sendFrom(local netip.Addr) netip.Addr {
	if h.cl == nil {
		return netip.Addr{}
	}
	return local
}

// knownPerRouter bounds the addresses remembered per router.
const knownPerRouter = 8

// remember notes the outer addresses of a router's bindings, keeping the
// last knownPerRouter it had.
func (h *HA) remember(s *routerSlot, a netip.Addr) {
	for i, k := range s.known {
		if k == a {
			s.known = append(append(s.known[:i:i], s.known[i+1:]...), a)
			return
		}
	}
	s.known = append(s.known, a)
	h.known.Store(a, s)
	if len(s.known) > knownPerRouter {
		old := s.known[0]
		s.known = s.known[1:]
		if v, ok := h.known.Load(old); ok && v.(*routerSlot) == s {
			h.known.Delete(old)
		}
	}
}

// forget drops the addresses a router's bindings had.
func (h *HA) forget(s *routerSlot) {
	for _, a := range s.known {
		if v, ok := h.known.Load(a); ok && v.(*routerSlot) == s {
			h.known.Delete(a)
		}
	}
	s.known = nil
}

// prober sends the home agent's own probes, from the goroutine that
// sends towards the routers.
type prober struct {
	h   *HA
	udp *sender
	mh  *heartbeats
	buf []byte
}

func (h *HA) newProber(udp *sender) *prober {
	return &prober{h: h, udp: udp, mh: newHeartbeats(), buf: make([]byte, 0, nemo.HeartbeatPacketLen)}
}

// watch judges binding b after a packet was sent by it at now: the cheap
// test first (no episode open, nothing unanswered for long), the whole
// judgement only when it says so. A binding found dead is not used until
// something is heard from it again (agentBinding.alive).
func (p *prober) watch(b *agentBinding, now int64) {
	st := b.stats
	if !b.answers {
		return
	}
	if st.rttSamples.Load() == 0 && now-st.hbSent.Load() > int64(time.Second) && !st.watch.Probing() {
		// A first round trip, so that the first suspicion is judged by
		// the path's own time.
		p.send(b, now)
	}
	if !st.watch.Probing() {
		if w := st.waiting.Load(); w <= st.lastRx.Load() || now-w < st.suspectNs {
			return
		}
	}
	if n := st.rttSamples.Load(); n > 0 {
		st.watch.RTT = binding.RTT{SRTT: time.Duration(st.srtt.Load()), RTTVar: time.Duration(st.rttvar.Load()), Samples: int(n)}
	} else {
		st.watch.RTT = haInitialRTT
	}
	at := time.Unix(0, now)
	v := st.watch.Judge(st.Clock(), at, haProbeFailures, haSuspectCeiling)
	st.suspectNs = int64(st.watch.Suspect(haSuspectCeiling))
	switch v {
	case binding.Dead:
		if st.dead.Load() == 0 {
			st.dead.Store(now)
		}
	case binding.ProbeNow:
		p.send(b, now)
	default:
		if d := st.dead.Load(); d != 0 && st.lastRx.Load() >= d {
			st.dead.Store(0)
		}
	}
}

// send sends a Heartbeat request by binding b: natively to its care-of
// address, or in UDP to its outer address and port, to its home address.
func (p *prober) send(b *agentBinding, now int64) {
	st := b.stats
	st.probeSeq++
	st.hbSeq.Store(st.probeSeq)
	st.hbSent.Store(now)
	hb := nemo.Heartbeat{Seq: st.probeSeq}
	h := p.h
	if b.encap == nemo.EncapIPv6 {
		mh, err := nemo.AppendMessage(p.buf[:0], &hb)
		if err != nil {
			return
		}
		local := h.srcFor(b, true)
		nemo.SetChecksum(mh, local, b.outer.Addr())
		if err := p.mh.send(h.mh, mh, netip.AddrPortFrom(b.outer.Addr(), 0), h.sendFrom(local)); err != nil {
			h.drops.Add(DropSendError)
		}
		return
	}
	pkt, err := nemo.AppendHeartbeatPacket(p.buf[:0], h.srcFor(b, true), b.hoa, &hb)
	if err != nil {
		return
	}
	p.udp.addAlone(pkt, b.outer, h.srcFor(b, b.outer.Addr().Is6()))
}

// addAlone queues pkt as a datagram of its own: a probe must not join a
// run of tunnelled packets in one offloaded send, nor they it, or a
// capture taken before segmentation (a veth passes the run whole) shows
// the packets behind the probe as its trailer.
func (s *sender) addAlone(pkt []byte, to netip.AddrPort, src netip.Addr) {
	if s.n > 0 {
		s.closed[s.n-1] = true
	}
	s.add(pkt, to, src)
	if s.n > 0 {
		s.closed[s.n-1] = true
	}
}

// isHeartbeat reports whether a UDP payload is a Heartbeat packet to
// addr: a probe or its answer, not tunnelled traffic or signalling for
// the daemon.
func isHeartbeat(p []byte, addr netip.Addr) bool {
	return len(p) >= header.IPv6MinSize && nemo.IsHeartbeatPacket(p, addr)
}

// isHeartbeatHere is isHeartbeat for any of the home agent's addresses
// (an instance's in a cluster).
func (h *HA) isHeartbeatHere(p []byte) bool {
	if h.cl == nil {
		return isHeartbeat(p, h.cfg.Address)
	}
	return len(p) >= header.IPv6MinSize && h.local(header.IPv6(p).Dst()) && isHeartbeat(p, header.IPv6(p).Dst())
}
