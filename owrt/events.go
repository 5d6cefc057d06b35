package owrt

import (
	"time"

	"nemod/binding"
	"nemod/status"
	"nemod/ubus"
)

// BindingEvent is the name of the event the router sends on ubus at every
// binding change: `ubus listen nemod.binding` shows them, a daemon
// registers for them, a hotplug-style script reacts to them.
const BindingEvent = "nemod.binding"

// UplinkNames are what an event or a status names an uplink's binding by.
type UplinkNames struct {
	Device    string // the device it uses now ("" when none)
	Interface string // its netifd interface (option interface), "" if none
}

// BindingEvents are the events for the changes from prev to cur (the
// binding update list's bindings, in uplink order; prev nil at start,
// when every binding counts as new), one per binding whose state,
// care-of address, encapsulation or NAT changed:
//
//	{"uplink": "wifi", "bid": 1, "device": "wlan0", "interface": "wwan",
//	 "state": "down", "previous": "registered", "coa": "2001:db8::2",
//	 "encap": "ipv6", "nat": false, "registered": 1}
//
// "interface" only for an uplink that follows netifd, "coa" only when
// there is one, "registered" counts the bindings registered now.
func BindingEvents(prev, cur []binding.BindingStatus, names []UplinkNames) []ubus.Table {
	registered := 0
	for _, b := range cur {
		if b.State == binding.StateRegistered {
			registered++
		}
	}
	var out []ubus.Table
	for i, b := range cur {
		var n UplinkNames
		if i < len(names) {
			n = names[i]
		}
		var was binding.BindingStatus
		if i < len(prev) {
			was = prev[i]
		}
		if prev != nil && b.State == was.State && b.CoA == was.CoA && b.Encap == was.Encap && b.NAT == was.NAT {
			continue
		}
		previous := "none"
		if prev != nil {
			previous = was.State.String()
		}
		t := ubus.Table{
			{Name: "uplink", Value: ubus.String(b.Uplink)},
			{Name: "bid", Value: ubus.Int32(b.BID)},
			{Name: "device", Value: ubus.String(n.Device)},
		}
		if n.Interface != "" {
			t = append(t, ubus.Field{Name: "interface", Value: ubus.String(n.Interface)})
		}
		t = append(t, ubus.Field{Name: "state", Value: ubus.String(b.State.String())},
			ubus.Field{Name: "previous", Value: ubus.String(previous)})
		if b.CoA.IsValid() {
			t = append(t, ubus.Field{Name: "coa", Value: ubus.String(b.CoA.String())})
		}
		t = append(t, ubus.Field{Name: "encap", Value: ubus.String(b.Encap.String())},
			ubus.Field{Name: "nat", Value: ubus.Bool(b.NAT)},
			ubus.Field{Name: "registered", Value: ubus.Int32(registered)})
		out = append(out, t)
	}
	return out
}

// Health is, per uplink by name, what mwan3's users read of its
// interfaces, from the router's status and its bindings:
//
//   - status "online" or "offline", and online (a bool): the uplink's
//     binding is registered, so the uplink carries the tunnel;
//   - uptime: seconds since it registered (0 offline);
//   - rtt_ms and loss: the liveness probes' smoothed round-trip time
//     and the fraction of the recent ones lost, as ctl status has them.
func Health(st status.Router, bs []binding.BindingStatus, names []UplinkNames, now time.Time) map[string]status.UplinkHealth {
	out := map[string]status.UplinkHealth{}
	for i, b := range st.Bindings {
		var n UplinkNames
		if i < len(names) {
			n = names[i]
		}
		h := status.UplinkHealth{BID: b.BID, Device: n.Device, Interface: n.Interface,
			Status: "offline", RTTms: b.RTTms, Loss: b.Loss}
		if i < len(bs) && bs[i].State == binding.StateRegistered {
			h.Status, h.Online = "online", true
			if !bs[i].Since.IsZero() && now.After(bs[i].Since) {
				h.Uptime = int64(now.Sub(bs[i].Since) / time.Second)
			}
		}
		out[b.Uplink] = h
	}
	return out
}
