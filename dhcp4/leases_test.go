package dhcp4

import (
	"net"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

var (
	t0   = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	cfg  = Config{Prefix: netip.MustParsePrefix("10.201.5.0/29"), Router: netip.MustParseAddr("10.201.5.1")}
	mac1 = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	mac2 = net.HardwareAddr{2, 0, 0, 0, 0, 2}
)

// handle gives m, encoded by the independent library, to l as the server
// reads it (Parse), and decodes l's answer with that library again: every
// test of the state machine checks the codec against another one too.
func handle(t *testing.T, l *Leases, m *dhcpv4.DHCPv4, now time.Time) *dhcpv4.DHCPv4 {
	t.Helper()
	req, err := Parse(m.ToBytes())
	if err != nil {
		t.Fatalf("%s does not parse: %v", m.Summary(), err)
	}
	r := l.Handle(req, now)
	if r == nil {
		return nil
	}
	b := r.Append(nil)
	out, err := dhcpv4.FromBytes(b)
	if err != nil {
		t.Fatalf("the answer does not decode: %v\n%x", err, b)
	}
	if got, err := Parse(b); err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("the answer reads back as %+v (%v), was %+v", got, err, r)
	}
	return out
}

func discover(t *testing.T, mac net.HardwareAddr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.NewDiscovery(mac, mods...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func request(t *testing.T, offer *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.NewRequestFromOffer(offer)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// dora runs DISCOVER, OFFER, REQUEST, ACK for mac and returns the ACK.
func dora(t *testing.T, l *Leases, mac net.HardwareAddr, now time.Time) *dhcpv4.DHCPv4 {
	t.Helper()
	offer := handle(t, l, discover(t, mac), now)
	if offer == nil || offer.MessageType() != dhcpv4.MessageTypeOffer {
		t.Fatalf("no offer for %s: %v", mac, offer)
	}
	ack := handle(t, l, request(t, offer), now)
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck || !ack.YourIPAddr.Equal(offer.YourIPAddr) {
		t.Fatalf("no ACK for %s: %v", mac, ack)
	}
	return ack
}

// A host gets an address of the prefix with the router, DNS, mask and
// lease time; a second host another; each keeps its own on renewal and
// after a restart from the saved leases.
func TestLeasesDORA(t *testing.T) {
	l := NewLeases(cfg, nil)
	ack := dora(t, l, mac1, t0)
	if !ack.YourIPAddr.Equal(net.ParseIP("10.201.5.2")) || !ack.Router()[0].Equal(net.ParseIP("10.201.5.1")) ||
		!ack.DNS()[0].Equal(net.ParseIP("10.201.5.1")) || ack.SubnetMask().String() != "fffffff8" ||
		ack.IPAddressLeaseTime(0) != DefaultLeaseTime || !ack.ServerIdentifier().Equal(net.ParseIP("10.201.5.1")) ||
		!ack.BroadcastAddress().Equal(net.ParseIP("10.201.5.7")) {
		t.Fatalf("ACK: %s", ack.Summary())
	}
	ack2 := dora(t, l, mac2, t0)
	if !ack2.YourIPAddr.Equal(net.ParseIP("10.201.5.3")) {
		t.Fatalf("second host got %s", ack2.YourIPAddr)
	}
	// Renewing: unicast from the address, no requested-IP option.
	renew, err := dhcpv4.NewRenewFromAck(ack)
	if err != nil {
		t.Fatal(err)
	}
	if r := handle(t, l, renew, t0.Add(30*time.Minute)); r == nil || r.MessageType() != dhcpv4.MessageTypeAck || !r.YourIPAddr.Equal(ack.YourIPAddr) {
		t.Fatalf("renewal: %v", r)
	}
	if n := l.Active(t0.Add(50 * time.Minute)); n != 2 {
		t.Fatalf("%d active leases", n)
	}
	b, changed := l.Save()
	if !changed {
		t.Fatal("leases not marked changed")
	}
	if _, again := l.Save(); again {
		t.Fatal("saved twice without a change")
	}
	saved, err := ParseLeases(b)
	if err != nil || len(saved) != 2 {
		t.Fatalf("saved %d: %v\n%s", len(saved), err, b)
	}
	// A restart: both come back to their addresses, even past the lease.
	l2 := NewLeases(cfg, saved)
	if a := dora(t, l2, mac2, t0.Add(3*time.Hour)); !a.YourIPAddr.Equal(ack2.YourIPAddr) {
		t.Fatalf("after a restart the second host got %s", a.YourIPAddr)
	}
}

// The server refuses what is not its to give, ignores another server's
// selection, frees released and declined addresses, and offers nothing
// from a full pool; a new prefix forgets the old leases.
func TestLeasesRefusals(t *testing.T) {
	l := NewLeases(cfg, nil)
	ack := dora(t, l, mac1, t0)
	// INIT-REBOOT with an address of another network, and one another
	// host holds.
	for _, want := range []string{"192.168.1.5", ack.YourIPAddr.String(), "10.201.5.1", "10.201.5.7"} {
		m, _ := dhcpv4.New(dhcpv4.WithHwAddr(mac2), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP(want))))
		if r := handle(t, l, m, t0); r == nil || r.MessageType() != dhcpv4.MessageTypeNak {
			t.Errorf("request for %s: %v", want, r)
		}
	}
	// mac2 selects another server's offer.
	offer := handle(t, l, discover(t, mac2), t0)
	other, _ := dhcpv4.New(dhcpv4.WithHwAddr(mac2), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP("10.201.5.254"))))
	if r := handle(t, l, other, t0); r != nil {
		t.Fatalf("answered another server's selection: %v", r)
	}
	// The pool of a /29: .2 to .6 (network, router and broadcast out).
	var macs []net.HardwareAddr
	for i := 0; i < 4; i++ {
		m := net.HardwareAddr{2, 0, 0, 0, 1, byte(i)}
		dora(t, l, m, t0)
		macs = append(macs, m)
	}
	if r := handle(t, l, discover(t, net.HardwareAddr{2, 0, 0, 0, 2, 0}), t0); r != nil {
		t.Fatalf("an offer from a full pool: %v", r)
	}
	// A release frees its address for the next host.
	rel, _ := dhcpv4.NewReleaseFromACK(ack)
	handle(t, l, rel, t0)
	if a := dora(t, l, net.HardwareAddr{2, 0, 0, 0, 2, 0}, t0); !a.YourIPAddr.Equal(ack.YourIPAddr) {
		t.Fatalf("after the release: %s", a.YourIPAddr)
	}
	// A decline keeps the address out of the pool.
	last, _ := l.Lookup(macs[3])
	dec, _ := dhcpv4.New(dhcpv4.WithHwAddr(macs[3]), dhcpv4.WithMessageType(dhcpv4.MessageTypeDecline),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(last.Addr.AsSlice())))
	handle(t, l, dec, t0)
	if r := handle(t, l, discover(t, net.HardwareAddr{2, 0, 0, 0, 3, 0}), t0); r != nil {
		t.Fatalf("offered %s, declined or taken", r.YourIPAddr)
	}
	// Expired leases go to new hosts.
	if r := handle(t, l, discover(t, net.HardwareAddr{2, 0, 0, 0, 3, 0}), t0.Add(2*time.Hour)); r == nil {
		t.Fatal("no offer once the leases ran out")
	}
	// Another prefix: the old leases are gone, the router is the new one.
	l.SetConfig(Config{Prefix: netip.MustParsePrefix("10.200.1.0/24"), Router: netip.MustParseAddr("10.200.1.1")})
	if _, ok := l.Lookup(macs[0]); ok {
		t.Fatal("a lease outside the new prefix survived")
	}
	if a := dora(t, l, mac1, t0); !a.YourIPAddr.Equal(net.ParseIP("10.200.1.2")) || !a.Router()[0].Equal(net.ParseIP("10.200.1.1")) {
		t.Fatalf("in the new prefix: %s", a.Summary())
	}
	// INFORM: options, no address or lease.
	inf, _ := dhcpv4.New(dhcpv4.WithHwAddr(mac2), dhcpv4.WithMessageType(dhcpv4.MessageTypeInform), dhcpv4.WithClientIP(net.ParseIP("10.200.1.9")))
	if r := handle(t, l, inf, t0); r == nil || r.MessageType() != dhcpv4.MessageTypeAck || !r.YourIPAddr.IsUnspecified() || r.Options.Has(dhcpv4.OptionIPAddressLeaseTime) {
		t.Fatalf("INFORM: %v", r)
	}
}

// FuzzHandle: any datagram from the LAN is refused by Parse or answered
// without panicking, and whatever is offered or acknowledged is an
// address of the pool, in an answer the independent library decodes.
func FuzzHandle(f *testing.F) {
	d, _ := dhcpv4.NewDiscovery(mac1)
	f.Add(d.ToBytes())
	r, _ := dhcpv4.New(dhcpv4.WithHwAddr(mac2), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP("10.201.5.3"))))
	f.Add(r.ToBytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		l := NewLeases(cfg, nil)
		for _, now := range []time.Time{t0, t0.Add(time.Second)} {
			resp := l.Handle(m, now)
			if resp == nil {
				continue
			}
			if _, err := dhcpv4.FromBytes(resp.Append(nil)); err != nil {
				t.Fatalf("answer %+v does not decode: %v", resp, err)
			}
			if resp.Type() == Nak || !fromMsg(resp.YIAddr).IsValid() {
				continue
			}
			if !l.usable(resp.YIAddr) {
				t.Fatalf("handed out %s", resp.YIAddr)
			}
		}
	})
}
