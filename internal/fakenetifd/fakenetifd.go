// Package fakenetifd plays OpenWrt's netifd on a ubus broker, for the
// router's tests in one process and in the lab: it publishes
// network.interface with dump, status and notify_proto, keeps each
// interface's status in netifd's shape (what netifd.ParseStatus reads, as
// the recordings in netifd/testdata show it), announces changes with
// netifd's notifications (interface.update, interface.down, NO_REPLY) and
// records every notify_proto call. A notify_proto on an interface it has
// takes it up with the device and addresses it names, or down, as netifd
// does with a protocol handler's update.
package fakenetifd

import (
	"context"
	"net/netip"
	"strings"
	"sync"

	"nemod/netifd"
	"nemod/ubus"
)

// Netifd is the fake.
type Netifd struct {
	c   *ubus.Client
	obj *ubus.Object

	mu     sync.Mutex
	order  []string
	status map[string]ubus.Table
	calls  []ubus.Table
	// Answer is what notify_proto answers (StatusOK unless set).
	answer ubus.Status
}

// Start connects to the broker at path and publishes network.interface.
func Start(ctx context.Context, path string) (*Netifd, error) {
	c, err := ubus.Connect(ctx, ubus.Options{Path: path})
	if err != nil {
		return nil, err
	}
	n := &Netifd{c: c, status: map[string]ubus.Table{}}
	typ := ubus.NewObjectType(
		ubus.Method{Name: "dump", Handler: func(context.Context, *ubus.Request) (ubus.Table, error) { return n.dump(), nil }},
		ubus.Method{Name: "status", Args: []ubus.ArgSig{{Name: "interface", Type: ubus.TypeString}},
			Handler: func(_ context.Context, r *ubus.Request) (ubus.Table, error) {
				name, _ := r.Args.String("interface")
				n.mu.Lock()
				defer n.mu.Unlock()
				st, ok := n.status[name]
				if !ok {
					return nil, ubus.StatusNotFound
				}
				return st, nil
			}},
		ubus.Method{Name: "notify_proto", Handler: n.notifyProto},
	)
	if n.obj, err = c.AddObject(ctx, netifd.Object, typ, nil); err != nil {
		c.Close()
		return nil, err
	}
	return n, nil
}

// Close leaves the broker (the object goes with the connection).
func (n *Netifd) Close() error { return n.c.Close() }

// SetAnswer makes notify_proto answer s from now on.
func (n *Netifd) SetAnswer(s ubus.Status) {
	n.mu.Lock()
	n.answer = s
	n.mu.Unlock()
}

// Calls returns the notify_proto calls received, in order.
func (n *Netifd) Calls() []ubus.Table {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]ubus.Table(nil), n.calls...)
}

func (n *Netifd) dump() ubus.Table {
	n.mu.Lock()
	defer n.mu.Unlock()
	arr := ubus.Array{}
	for _, name := range n.order {
		arr = append(arr, append(ubus.Table{{Name: "interface", Value: ubus.String(name)}}, n.status[name]...))
	}
	return ubus.Table{{Name: "interface", Value: arr}}
}

// Set gives an interface a status (as Status builds it), and notifies it
// as netifd does: interface.update when it is up, interface.down
// otherwise.
func (n *Netifd) Set(name string, st ubus.Table) error {
	n.mu.Lock()
	if _, ok := n.status[name]; !ok {
		n.order = append(n.order, name)
	}
	n.status[name] = st
	n.mu.Unlock()
	method := netifd.NotifyDown
	if up, _ := st.Bool("up"); up {
		method = netifd.NotifyUpdate
	}
	return n.Notify(method, append(ubus.Table{{Name: "interface", Value: ubus.String(name)}}, st...))
}

// Notify sends one notification as it is given (a recorded one, say).
func (n *Netifd) Notify(method string, data ubus.Table) error {
	return n.obj.NotifyNoReply(method, data)
}

// Interface is an interface's state, which Status turns into netifd's
// status table.
type Interface struct {
	Up, Pending bool
	Proto       string
	L3Device    string
	IPv4, IPv6  []netip.Prefix
	// Routes are on-link default routes by family unless Gateway says
	// otherwise; Prefixes are delegated IPv6 prefixes.
	Default4, Default6 bool
	Gateway4, Gateway6 netip.Addr
	Prefixes           []string // "prefix/len" as netifd was told
}

// Status is i in netifd's status shape.
func Status(i Interface) ubus.Table {
	t := ubus.Table{
		{Name: "up", Value: ubus.Bool(i.Up)}, {Name: "pending", Value: ubus.Bool(i.Pending)},
		{Name: "available", Value: ubus.Bool(true)}, {Name: "autostart", Value: ubus.Bool(true)},
		{Name: "dynamic", Value: ubus.Bool(false)},
	}
	if i.Up {
		t = append(t, ubus.Field{Name: "uptime", Value: ubus.Int32(1)})
		if i.L3Device != "" {
			t = append(t, ubus.Field{Name: "l3_device", Value: ubus.String(i.L3Device)})
		}
	}
	proto := i.Proto
	if proto == "" {
		proto = "dhcp"
	}
	t = append(t, ubus.Field{Name: "proto", Value: ubus.String(proto)})
	if i.L3Device != "" {
		t = append(t, ubus.Field{Name: "device", Value: ubus.String(i.L3Device)})
	}
	t = append(t, ubus.Field{Name: "metric", Value: ubus.Int32(0)}, ubus.Field{Name: "dns_metric", Value: ubus.Int32(0)},
		ubus.Field{Name: "delegation", Value: ubus.Bool(true)})
	addrs := func(list []netip.Prefix) ubus.Array {
		arr := ubus.Array{}
		for _, p := range list {
			arr = append(arr, ubus.Table{{Name: "address", Value: ubus.String(p.Addr().String())}, {Name: "mask", Value: ubus.Int32(p.Bits())}})
		}
		return arr
	}
	if !i.Up {
		return t
	}
	t = append(t, ubus.Field{Name: "ipv4-address", Value: addrs(i.IPv4)}, ubus.Field{Name: "ipv6-address", Value: addrs(i.IPv6)})
	prefixes := ubus.Array{}
	for _, s := range i.Prefixes {
		p := netip.MustParsePrefix(s)
		prefixes = append(prefixes, ubus.Table{{Name: "address", Value: ubus.String(p.Addr().String())}, {Name: "mask", Value: ubus.Int32(p.Bits())}})
	}
	t = append(t, ubus.Field{Name: "ipv6-prefix", Value: prefixes}, ubus.Field{Name: "ipv6-prefix-assignment", Value: ubus.Array{}})
	routes := ubus.Array{}
	route := func(target string, gw netip.Addr, zero string) {
		if !gw.IsValid() {
			gw = netip.MustParseAddr(zero)
		}
		routes = append(routes, ubus.Table{{Name: "target", Value: ubus.String(target)}, {Name: "mask", Value: ubus.Int32(0)},
			{Name: "nexthop", Value: ubus.String(gw.String())}, {Name: "source", Value: ubus.String(target + "/0")}})
	}
	if i.Default4 {
		route("0.0.0.0", i.Gateway4, "0.0.0.0")
	}
	if i.Default6 {
		route("::", i.Gateway6, "::")
	}
	t = append(t, ubus.Field{Name: "route", Value: routes}, ubus.Field{Name: "dns-server", Value: ubus.Array{}},
		ubus.Field{Name: "dns-search", Value: ubus.Array{}}, ubus.Field{Name: "data", Value: ubus.Table{}})
	return t
}

// notifyProto records the call and, for an interface it has, does what
// netifd does with a protocol handler's update: link-up takes it up with
// the device (ifname), addresses and prefixes named, link-up false down.
func (n *Netifd) notifyProto(_ context.Context, r *ubus.Request) (ubus.Table, error) {
	n.mu.Lock()
	n.calls = append(n.calls, r.Args)
	answer := n.answer
	name, _ := r.Args.String("interface")
	_, known := n.status[name]
	n.mu.Unlock()
	if answer != ubus.StatusOK {
		return nil, answer
	}
	if _, ok := r.Args.Get("link-up"); !ok || name == "" {
		return nil, ubus.StatusInvalidArgument
	}
	if !known {
		return nil, ubus.StatusNotFound
	}
	up, _ := r.Args.Bool("link-up")
	i := Interface{Up: up, Pending: !up, Proto: "nemo"}
	if up {
		i.L3Device, _ = r.Args.String("ifname")
		if arr, ok := r.Args.Array("ip6addr"); ok {
			for _, v := range arr {
				if a, ok := v.(ubus.Table); ok {
					ip, _ := a.String("ipaddr")
					mask, _ := a.String("mask")
					if p, err := netip.ParsePrefix(ip + "/" + mask); err == nil {
						i.IPv6 = append(i.IPv6, p)
					}
				}
			}
		}
		if arr, ok := r.Args.Array("ip6prefix"); ok {
			for _, v := range arr {
				if s, ok := v.(ubus.String); ok {
					p, _, _ := strings.Cut(string(s), ",")
					i.Prefixes = append(i.Prefixes, p)
				}
			}
		}
	}
	return nil, n.Set(name, Status(i))
}
