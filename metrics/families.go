package metrics

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"nemod/status"
)

// States are the binding states, in the order the state gauges list them.
var States = []string{status.StateDown, status.StateRegistering, status.StateRegistered}

func family(name, help string, t Type, ms ...Metric) Family {
	return Family{Name: name, Help: help, Type: t, Metrics: ms}
}

func one(v float64, ls ...Label) Metric { return Metric{Labels: ls, Value: v} }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// byReason lists a map's counts sorted by reason, one labelled metric
// each.
func byReason(m map[string]uint64, extra ...Label) []Metric {
	ms := []Metric{}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		ms = append(ms, one(float64(m[k]), append(slices.Clone(extra), Label{"reason", k})...))
	}
	return ms
}

// RouterFamilies are the metric families of a mobile router with status
// s; reg is its registration latency histogram (nil: none published).
func RouterFamilies(s status.Router, reg *Histogram) []Family {
	var (
		info, state, rtt, loss, life, txB, txP, rxB, rxP []Metric
	)
	for _, b := range s.Bindings {
		id := []Label{{"uplink", b.Uplink}, {"bid", strconv.Itoa(int(b.BID))}}
		info = append(info, one(1, append(slices.Clone(id),
			Label{"device", b.Device}, Label{"coa", b.CoA}, Label{"encap", b.Encap})...))
		for _, st := range States {
			state = append(state, one(b2f(b.State == st), append(slices.Clone(id), Label{"state", st})...))
		}
		// An RTT of 0 means no probe was answered yet: leaving the sample
		// out says "unknown", where a 0 would read as a perfect path.
		if b.RTTms > 0 {
			rtt = append(rtt, one(b.RTTms/1000, id...))
		}
		loss = append(loss, one(b.Loss, id...))
		life = append(life, one(float64(b.Lifetime), id...))
		txB = append(txB, one(float64(b.TxBytes), id...))
		txP = append(txP, one(float64(b.TxPackets), id...))
		rxB = append(rxB, one(float64(b.RxBytes), id...))
		rxP = append(rxP, one(float64(b.RxPackets), id...))
	}
	c := s.Counters
	fams := []Family{
		family("nemod_router_info", "The mobile router's home address and home agent (always 1).", TypeGauge,
			one(1, Label{"home_address", s.HomeAddress}, Label{"home_agent", s.HomeAgent})),
		family("nemod_uptime_seconds", "Seconds since the daemon started.", TypeGauge, one(float64(s.Uptime))),
		family("nemod_binding_info", "Each binding's uplink, device, care-of address and encapsulation (always 1).", TypeGauge, info...),
		family("nemod_binding_state", "1 for each binding's current state (down, registering, registered), 0 for the others.", TypeGauge, state...),
		family("nemod_binding_rtt_seconds", "Smoothed round-trip time of the binding's liveness probes; absent until one is answered.", TypeGauge, rtt...),
		family("nemod_binding_probe_loss_ratio", "Fraction of the binding's recent liveness probes left unanswered.", TypeGauge, loss...),
		family("nemod_binding_lifetime_seconds", "Seconds left of the binding's registration; 0 unless registered.", TypeGauge, life...),
		family("nemod_binding_transmit_bytes_total", "Octets sent into the tunnel over the binding.", TypeCounter, txB...),
		family("nemod_binding_transmit_packets_total", "Packets sent into the tunnel over the binding.", TypeCounter, txP...),
		family("nemod_binding_receive_bytes_total", "Octets received out of the tunnel over the binding.", TypeCounter, rxB...),
		family("nemod_binding_receive_packets_total", "Packets received out of the tunnel over the binding.", TypeCounter, rxP...),
		family("nemod_failovers_total", "Times traffic moved off a binding that went down onto another.", TypeCounter, one(float64(c.Failovers))),
		family("nemod_binding_updates_sent_total", "Binding Updates sent, retransmissions included.", TypeCounter, one(float64(c.Sent))),
		family("nemod_binding_acks_received_total", "Binding Acknowledgements received.", TypeCounter, one(float64(c.Received))),
		family("nemod_registrations_total", "Registrations and refreshes the home agent accepted.", TypeCounter, one(float64(c.Accepted))),
		family("nemod_registration_rejections_total", "Binding Acknowledgements received with an error status, by reason.", TypeCounter, byReason(c.Rejected)...),
		family("nemod_retransmissions_total", "Binding Updates sent again for want of an answer.", TypeCounter, one(float64(c.Retransmits))),
		family("nemod_probes_sent_total", "Liveness probes sent.", TypeCounter, one(float64(c.Probes))),
		family("nemod_dead_paths_total", "Bindings declared dead by their liveness probes.", TypeCounter, one(float64(c.DeadPaths))),
	}
	if v4 := s.IPv4; v4 != nil {
		fams = append(fams, family("nemod_router_ipv4_info", "The mobile network's IPv4 home address and prefixes as granted (RFC 5555; always 1).", TypeGauge,
			one(1, Label{"home_address", v4.HomeAddress}, Label{"mnp", strings.Join(v4.MNP, ",")})))
		if v4.DHCP != nil {
			fams = append(fams, family("nemod_dhcp4_leases", "Active DHCPv4 leases on the LAN.", TypeGauge, one(float64(v4.DHCP.Active))))
		}
	}
	fams = append(fams, common(c, s.DataPlane, s.Runtime)...)
	if reg != nil {
		v := reg.Value()
		fams = append(fams, family("nemod_registration_duration_seconds",
			"Time from a Binding Update to the Binding Acknowledgement that accepted it.", TypeHistogram, Metric{Hist: &v}))
	}
	return fams
}

// common are the families both roles publish the same way.
func common(c status.Counters, dp status.DataPlane, rt status.Runtime) []Family {
	return []Family{
		family("nemod_deregistrations_total", "De-registrations (lifetime 0 Binding Updates) completed.", TypeCounter, one(float64(c.Deregistrations))),
		family("nemod_bindings_expired_total", "Bindings that ran out of lifetime.", TypeCounter, one(float64(c.Expired))),
		family("nemod_signalling_queue_dropped_total", "Signalling packets dropped because the event loop was behind.", TypeCounter, one(float64(c.QueueDropped))),
		family("nemod_signalling_rate_limited_total", "Refusals left unanswered by the rate limit.", TypeCounter, one(float64(c.RateLimited))),
		family("nemod_signalling_ignored_total", "Signalling packets dropped without an answer, by reason.", TypeCounter, byReason(c.Ignored)...),
		family("nemod_dataplane_drops_total", "Packets the data plane refused, by reason.", TypeCounter, byReason(dp.Drops)...),
		family("nemod_dataplane_drops_ipv4_total", "The IPv4 packets among the data plane's drops, by reason.", TypeCounter, byReason(dp.DropsV4)...),
		family("nemod_dataplane_info", "The data plane's backend and device (always 1).", TypeGauge,
			one(1, Label{"backend", dp.Backend}, Label{"kernel_backend", dp.Kernel}, Label{"device", dp.Device})),
		family("nemod_dataplane_mtu_bytes", "MTU of the tunnel device.", TypeGauge, one(float64(dp.MTU))),
		family("nemod_goroutines", "Goroutines of the daemon.", TypeGauge, one(float64(rt.Goroutines))),
		family("nemod_open_fds", "Open file descriptors of the daemon.", TypeGauge, one(float64(rt.FDs))),
	}
}

// HomeAgentFamilies are the metric families of a home agent with status
// s; reg, when not nil, is a registration processing time histogram.
func HomeAgentFamilies(s status.HomeAgent, reg *Histogram) []Family {
	routers := map[string]int{}
	bindings := map[string]int{}
	var txB, txP, rxB, rxP, nb []Metric
	for _, mr := range s.MobileRouters {
		routers[mr.State()]++
		var t status.Traffic
		for _, b := range mr.Bindings {
			bindings[b.State]++
			t.TxBytes += b.TxBytes
			t.TxPackets += b.TxPackets
			t.RxBytes += b.RxBytes
			t.RxPackets += b.RxPackets
		}
		l := Label{"router", mr.Name}
		nb = append(nb, one(float64(len(mr.Bindings)), l))
		txB = append(txB, one(float64(t.TxBytes), l))
		txP = append(txP, one(float64(t.TxPackets), l))
		rxB = append(rxB, one(float64(t.RxBytes), l))
		rxP = append(rxP, one(float64(t.RxPackets), l))
	}
	var rs, bs []Metric
	for _, st := range States {
		rs = append(rs, one(float64(routers[st]), Label{"state", st}))
		bs = append(bs, one(float64(bindings[st]), Label{"state", st}))
	}
	c := s.Counters
	fams := []Family{
		family("nemod_home_agent_info", "The home agent's address and home prefix (always 1).", TypeGauge,
			one(1, Label{"address", s.Address}, Label{"address_v4", s.AddressV4}, Label{"home_prefix", s.HomePrefix})),
		family("nemod_uptime_seconds", "Seconds since the daemon started.", TypeGauge, one(float64(s.Uptime))),
		family("nemod_mobile_routers", "Configured mobile routers by state: registered when a binding is, else registering when one is, else down.", TypeGauge, rs...),
		family("nemod_bindings", "Bindings by state.", TypeGauge, bs...),
		family("nemod_mobile_router_bindings", "Bindings each mobile router holds.", TypeGauge, nb...),
		family("nemod_mobile_router_transmit_bytes_total", "Octets sent into the tunnel towards each mobile router.", TypeCounter, txB...),
		family("nemod_mobile_router_transmit_packets_total", "Packets sent into the tunnel towards each mobile router.", TypeCounter, txP...),
		family("nemod_mobile_router_receive_bytes_total", "Octets received out of the tunnel from each mobile router.", TypeCounter, rxB...),
		family("nemod_mobile_router_receive_packets_total", "Packets received out of the tunnel from each mobile router.", TypeCounter, rxP...),
		family("nemod_binding_updates_received_total", "Binding Updates received.", TypeCounter, one(float64(c.Received))),
		family("nemod_binding_acks_sent_total", "Binding Acknowledgements sent.", TypeCounter, one(float64(c.Sent))),
		family("nemod_registrations_total", "Registrations and refreshes accepted.", TypeCounter, one(float64(c.Accepted))),
		family("nemod_registration_rejections_total", "Binding Updates refused with an error status, by reason.", TypeCounter, byReason(c.Rejected)...),
		family("nemod_retransmissions_total", "Binding Updates retransmitted by mobile routers, as the home agent counts them.", TypeCounter, one(float64(c.Retransmits))),
		family("nemod_probes_answered_total", "Liveness probes answered.", TypeCounter, one(float64(c.Probes))),
		family("nemod_dead_paths_total", "Bindings found dead.", TypeCounter, one(float64(c.DeadPaths))),
	}
	if p := s.PoolV4; p != nil {
		fams = append(fams,
			family("nemod_ipv4_pool_routers", "Mobile routers holding an assignment of the IPv4 pool.", TypeGauge, one(float64(p.Assigned))),
			family("nemod_ipv4_pool_used_addresses", "Addresses of the IPv4 pool assigned.", TypeGauge, one(float64(p.Used))))
	}
	fams = append(fams, common(c, s.DataPlane, s.Runtime)...)
	if reg != nil {
		v := reg.Value()
		fams = append(fams, family("nemod_registration_duration_seconds",
			"Time from a Binding Update's arrival to its Acknowledgement.", TypeHistogram, Metric{Hist: &v}))
	}
	return fams
}
