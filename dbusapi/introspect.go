package dbusapi

import (
	"maps"
	"slices"
	"strings"

	"github.com/godbus/dbus/v5"
)

// The standard interfaces as introspection data; the bus's own checkers
// (busctl, gdbus) read these to know the signatures to send.
const (
	propertiesXML = ` <interface name="org.freedesktop.DBus.Properties">
  <method name="Get">
   <arg name="interface_name" type="s" direction="in"/>
   <arg name="property_name" type="s" direction="in"/>
   <arg name="value" type="v" direction="out"/>
  </method>
  <method name="GetAll">
   <arg name="interface_name" type="s" direction="in"/>
   <arg name="props" type="a{sv}" direction="out"/>
  </method>
  <method name="Set">
   <arg name="interface_name" type="s" direction="in"/>
   <arg name="property_name" type="s" direction="in"/>
   <arg name="value" type="v" direction="in"/>
  </method>
  <signal name="PropertiesChanged">
   <arg name="interface_name" type="s"/>
   <arg name="changed_properties" type="a{sv}"/>
   <arg name="invalidated_properties" type="as"/>
  </signal>
 </interface>
`
	introspectXML = ` <interface name="org.freedesktop.DBus.Introspectable">
  <method name="Introspect">
   <arg name="xml_data" type="s" direction="out"/>
  </method>
 </interface>
`
	peerXML = ` <interface name="org.freedesktop.DBus.Peer">
  <method name="Ping"/>
  <method name="GetMachineId">
   <arg name="machine_uuid" type="s" direction="out"/>
  </method>
 </interface>
`
	objectManagerXML = ` <interface name="org.freedesktop.DBus.ObjectManager">
  <method name="GetManagedObjects">
   <arg name="objects" type="a{oa{sa{sv}}}" direction="out"/>
  </method>
  <signal name="InterfacesAdded">
   <arg name="object_path" type="o"/>
   <arg name="interfaces_and_properties" type="a{sa{sv}}"/>
  </signal>
  <signal name="InterfacesRemoved">
   <arg name="object_path" type="o"/>
   <arg name="interfaces" type="as"/>
  </signal>
 </interface>
`
)

func (s ifaceSpec) xml(b *strings.Builder) {
	b.WriteString(` <interface name="` + s.name + `">` + "\n")
	for _, m := range s.methods {
		if len(m.in)+len(m.out) == 0 {
			b.WriteString(`  <method name="` + m.name + `"/>` + "\n")
			continue
		}
		b.WriteString(`  <method name="` + m.name + `">` + "\n")
		for _, a := range m.in {
			b.WriteString(`   <arg name="` + a.name + `" type="` + a.sig + `" direction="in"/>` + "\n")
		}
		for _, a := range m.out {
			b.WriteString(`   <arg name="` + a.name + `" type="` + a.sig + `" direction="out"/>` + "\n")
		}
		b.WriteString("  </method>\n")
	}
	for _, p := range s.props {
		emits := "true"
		if p.quiet {
			emits = "false"
		}
		b.WriteString(`  <property name="` + p.name + `" type="` + p.sig + `" access="read">` + "\n")
		b.WriteString(`   <annotation name="org.freedesktop.DBus.Property.EmitsChangedSignal" value="` + emits + `"/>` + "\n")
		if p.fields != "" {
			b.WriteString(`   <annotation name="org.nemod.StructFields" value="` + p.fields + `"/>` + "\n")
		}
		b.WriteString("  </property>\n")
	}
	b.WriteString(" </interface>\n")
}

// nodes are every path that answers Introspect: the objects and their
// ancestors up to /, so that a client can walk the tree from the top.
func (t *tree) isNode(p dbus.ObjectPath) bool {
	if _, ok := t.objects[p]; ok {
		return true
	}
	prefix := string(p) + "/"
	if p == "/" {
		prefix = "/"
	}
	for q := range t.objects {
		if strings.HasPrefix(string(q), prefix) {
			return true
		}
	}
	return false
}

// childNames are the elements one level below p.
func (t *tree) childNames(p dbus.ObjectPath) []string {
	prefix := string(p) + "/"
	if p == "/" {
		prefix = "/"
	}
	set := map[string]bool{}
	for q := range t.objects {
		rest, ok := strings.CutPrefix(string(q), prefix)
		if !ok || rest == "" {
			continue
		}
		first, _, _ := strings.Cut(rest, "/")
		set[first] = true
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// introspect is the introspection data of p; false when p is no node.
func (t *tree) introspect(p dbus.ObjectPath) (string, bool) {
	if !t.isNode(p) {
		return "", false
	}
	var b strings.Builder
	b.WriteString("<node>\n")
	obj, isObject := t.objects[p]
	if isObject {
		b.WriteString(propertiesXML)
	}
	b.WriteString(introspectXML)
	b.WriteString(peerXML)
	if p == t.root {
		b.WriteString(objectManagerXML)
	}
	if isObject {
		for _, name := range slices.Sorted(maps.Keys(obj)) {
			t.ifaces[name].xml(&b)
		}
	}
	for _, c := range t.childNames(p) {
		b.WriteString(` <node name="` + c + `"/>` + "\n")
	}
	b.WriteString("</node>\n")
	return b.String(), true
}
