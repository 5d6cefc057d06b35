package ubusd

import (
	"testing"

	"nemod/ubus"
)

// client drives one broker client by hand.
type bclient struct {
	t   *testing.T
	b   *Broker
	id  uint32
	seq uint16
	got map[uint32][]*ubus.Message
}

func (c *bclient) do(m *ubus.Message) []*ubus.Message {
	c.t.Helper()
	c.seq++
	m.Seq = c.seq
	f, err := m.Marshal()
	if err != nil {
		c.t.Fatal(err)
	}
	var mine []*ubus.Message
	for _, o := range c.b.Handle(c.id, f) {
		msg, err := ubus.ParseMessage(o.Frame)
		if err != nil {
			c.t.Fatal(err)
		}
		if o.Client == c.id {
			mine = append(mine, msg)
		} else {
			c.got[o.Client] = append(c.got[o.Client], msg)
		}
	}
	return mine
}

func status(t *testing.T, ms []*ubus.Message) ubus.Status {
	t.Helper()
	last := ms[len(ms)-1]
	s, ok := last.Status()
	if last.Type != ubus.MsgStatus || !ok {
		t.Fatalf("no final STATUS: %+v", last)
	}
	return s
}

// TestBrokerEvents: "*" listens to everything, a pattern matches once per
// object even when two of its patterns match, a sender does not hear its
// own event, ubusd's own object events reach everyone, and a receiver that
// goes takes its patterns along.
func TestBrokerEvents(t *testing.T) {
	b := New(nil)
	got := map[uint32][]*ubus.Message{}
	mk := func() *bclient {
		id, _ := b.Connect(Root)
		return &bclient{t: t, b: b, id: id, got: got}
	}
	a, l := mk(), mk()
	anon := func(c *bclient) uint32 {
		id, _ := c.do(ubus.NewMessage(ubus.MsgAddObject, 0, 0))[0].ObjID()
		return id
	}
	la := anon(l)
	reg := func(c *bclient, obj uint32, p string) ubus.Status {
		m := ubus.NewMessage(ubus.MsgInvoke, 0, ubus.ObjectEvents).PutU32(ubus.AttrObjID, ubus.ObjectEvents).PutString(ubus.AttrMethod, "register")
		m.PutTable(ubus.AttrData, ubus.Table{{Name: "object", Value: ubus.Int32(obj)}, {Name: "pattern", Value: ubus.String(p)}})
		return status(t, c.do(m))
	}
	for _, p := range []string{"*", "net.*", "net.up"} {
		if s := reg(l, la, p); s != ubus.StatusOK {
			t.Fatalf("register %q: %v", p, s)
		}
	}
	if s := reg(a, la, "x"); s != ubus.StatusPermissionDenied {
		t.Errorf("registering someone else's object: %v", s)
	}
	if s := reg(l, 5, "x"); s != ubus.StatusPermissionDenied {
		t.Errorf("registering a system id: %v", s)
	}
	sendEv := func(c *bclient, name string) {
		m := ubus.NewMessage(ubus.MsgInvoke, 0, ubus.ObjectEvents).PutU32(ubus.AttrObjID, ubus.ObjectEvents).PutString(ubus.AttrMethod, "send")
		m.PutTable(ubus.AttrData, ubus.Table{{Name: "id", Value: ubus.String(name)}, {Name: "data", Value: ubus.Table{}}})
		if s := status(t, c.do(m)); s != ubus.StatusOK {
			t.Fatalf("send: %v", s)
		}
	}
	sendEv(a, "net.up")
	sendEv(a, "other")
	sendEv(l, "net.up") // its own: not delivered
	var names []string
	for _, m := range got[l.id] {
		meth, _ := m.Method()
		names = append(names, meth)
	}
	if len(names) != 2 || names[0] != "net.up" || names[1] != "other" {
		t.Errorf("deliveries %v", names)
	}
	// Object events come from ubusd itself: l hears of its own object.
	clear(got)
	m := ubus.NewMessage(ubus.MsgAddObject, 0, 0).PutString(ubus.AttrObjPath, "mine")
	sig, _ := ubus.Signature{}.Encode()
	m.PutRaw(ubus.AttrSignature, sig)
	heard := 0
	for _, x := range l.do(m) {
		if meth, _ := x.Method(); x.Type == ubus.MsgInvoke && meth == "ubus.object.add" {
			heard++
		}
	}
	if heard != 1 {
		t.Errorf("ubus.object.add heard %d times by its own object's owner", heard)
	}
	// The listener leaves: its patterns go with it.
	b.Disconnect(l.id)
	clear(got)
	sendEv(a, "net.up")
	if len(got) != 0 || len(b.patterns) != 0 {
		t.Errorf("after the listener left: %v, %d patterns", got, len(b.patterns))
	}
}
