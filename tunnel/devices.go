package tunnel

import "slices"

// SetDevice moves uplink i to another device: on OpenWrt an uplink that
// follows a netifd interface uses whatever l3_device netifd reports, and a
// modem's can change while the router runs. The uplink's sockets close
// (SetUplink opens them on the new device once it exists) and local
// breakout is installed again for the new devices.
func (m *MR) SetDevice(i int, dev string) error {
	u := m.uplinks[i]
	if u.dev == dev {
		return nil
	}
	if u.socks != nil {
		u.socks.close()
		u.socks = nil
		m.rebuild()
	}
	u.dev = dev
	m.cfg.Devices = slices.Clone(m.cfg.Devices)
	m.cfg.Devices[i] = dev
	if m.breakout.Uplinks == nil {
		return nil // SetDirect has not run yet
	}
	b := m.breakout
	b.Uplinks = m.cfg.Devices
	m.breakout = b
	return m.sys.SetBreakout(b)
}

// Device is uplink i's device now.
func (m *MR) Device(i int) string { return m.uplinks[i].dev }
