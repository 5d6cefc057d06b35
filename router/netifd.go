package router

// netifd on OpenWrt: the tunnel as the netifd interface of option
// netifd_interface (proto nemo, whose handler only declares the protocol:
// nemod sends the interface's state itself), and the uplinks of option
// interface, which take their device (l3_device), their state and their
// default routes from netifd while the interface monitor keeps the
// carrier of that device (netlink).

import (
	"context"
	"time"

	"nemod/ifmon"
	"nemod/netifd"
	"nemod/owrt"
)

// tunnelInput is what the tunnel's netifd interface is built from: the
// binding update list's bindings, the prefixes with their lifetimes
// (configured and delegated: pd.go), the IPv4 the home agent granted.
func (d *Daemon) tunnelInput() owrt.TunnelInput {
	if d.ub.device == "" {
		d.ub.device = d.fwd.Status().Device // the TUN device's name, fixed at start
	}
	return owrt.TunnelInput{Interface: d.cfg.OpenWrt.NetifdInterface, Device: d.ub.device,
		HoA: d.cfg.HomeAddress, Bindings: d.br.Bindings(), MNPs: d.mnps(), IPv4: d.tunnelIPv4()}
}

// tunnelIPv4 is the tunnel's IPv4 for netifd: the IPv4 home address and
// prefixes the home agent granted (RFC 5555). No default route: the LAN's
// IPv4 reaches the tunnel by the router's own policy routing, as IPv6
// does.
func (d *Daemon) tunnelIPv4() owrt.IPv4 {
	hoa, prefixes := d.br.IPv4()
	return owrt.IPv4{HoA: hoa, Prefixes: prefixes}
}

// netifdChanged follows one of netifd's changes: an uplink's interface
// (its device moves the uplink's sockets and the interface monitor, its
// state the binding), and the tunnel's own interface, told its state again
// when netifd reports it not up while the router has it up (netifd
// restarted, or lost what it was told). apply is false while starting,
// before the data plane and the monitor exist.
func (d *Daemon) netifdChanged(ch netifd.Change, now time.Time, apply bool) {
	ub := d.ub
	ub.seen = true
	changed, moved := ub.uplinks.Apply(ch)
	for _, i := range changed {
		s := ub.uplinks.State(i)
		d.log.Info("netifd: uplink interface", "uplink", d.uplinks[i].Cfg.Name, "interface", d.uplinks[i].Cfg.Interface,
			"up", s.Up, "device", s.Device, "default6", s.Default6, "default4", s.Default4)
	}
	if moved {
		for i, u := range d.uplinks {
			dev := ub.uplinks.Device(i, u.Cfg.Device)
			if dev == u.Cfg.Device {
				continue
			}
			u.Cfg.Device = dev
			if apply {
				if err := d.fwd.SetDevice(i, dev); err != nil {
					d.log.Error("local breakout on the uplink's new device", "uplink", u.Cfg.Name, "err", err)
				}
			}
		}
		if apply {
			d.restartMonitor(ub.ctx)
		}
	}
	if apply && len(changed) > 0 {
		d.linkChanged(now)
	}
	if ch.Name == d.cfg.OpenWrt.NetifdInterface && ch.New != nil && !ch.New.Up && ub.up {
		d.log.Info("netifd: the tunnel's interface is not up: telling it again", "interface", ch.Name)
		ub.out.resend()
	}
}

// restartMonitor starts the interface monitor on the uplinks' devices now.
// If it cannot, the old one stays closed, and the loop starts another
// when it sees it done.
func (d *Daemon) restartMonitor(ctx context.Context) {
	d.mon.Close()
	mon, err := d.opts.Monitor(ctx, d.devices())
	if err != nil {
		d.log.Error("interface monitor on the uplinks' new devices", "err", err)
		return
	}
	d.mon = mon
}

// netifdLink is what the router makes of uplink i's device report: as the
// monitor says for an uplink with a device of its own, with netifd's
// state for one that follows an interface.
func (d *Daemon) netifdLink(i int, l ifmon.Link) ifmon.Link {
	if d.ub == nil {
		return l
	}
	return d.ub.uplinks.Link(i, l)
}
