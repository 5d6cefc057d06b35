package dhcpv6pd

import (
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// A general DHCPv6 library decodes what this package's codec encodes, to
// the same values: an independent decoder, in the tests only (the
// router's binary does without it).
func TestLibraryDecodes(t *testing.T) {
	p := netip.MustParsePrefix("2001:db8:300::/56")
	m := &Msg{Type: Reply, XID: [3]byte{1, 2, 3}, ClientID: duid1, ServerID: srvDUID, HasElapsed: true, Elapsed: 1230 * time.Millisecond,
		IAPDs:       []IAPD{{IAID: iaid, T1: 100, T2: 160, Prefixes: []Prefix{{Prefix: p, Preferred: 200, Valid: 400}}}},
		RapidCommit: true, DNS: []netip.Addr{netip.MustParseAddr("2001:db8::53")}, Status: &Status{Code: StatusSuccess, Message: "ok"}}
	r := &Relay{Type: RelayRepl, HopCount: 1, LinkAddr: hoa, PeerAddr: hoa, RelayPort: 10547, HasRelayPort: true, Inner: m.Marshal()}
	lib, err := dhcpv6.FromBytes(r.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	rm, ok := lib.(*dhcpv6.RelayMessage)
	if !ok || rm.MessageType != dhcpv6.MessageTypeRelayReply || rm.HopCount != 1 || !rm.LinkAddr.Equal(hoa.AsSlice()) || rm.Options.RelayPort().DownstreamSourcePort != 10547 {
		t.Fatalf("relay %v", lib)
	}
	inner, err := rm.GetInnerMessage()
	if err != nil {
		t.Fatal(err)
	}
	ia := inner.Options.OneIAPD()
	if inner.MessageType != dhcpv6.MessageTypeReply || inner.TransactionID != [3]byte{1, 2, 3} || ia == nil || ia.IaId != iaid ||
		ia.T1 != 100*time.Second || ia.T2 != 160*time.Second || inner.Options.ElapsedTime() != 1230*time.Millisecond ||
		len(inner.Options.DNS()) != 1 || inner.GetOneOption(dhcpv6.OptionRapidCommit) == nil {
		t.Fatalf("message %v", inner)
	}
	pfx := ia.Options.Prefixes()
	if len(pfx) != 1 || pfx[0].Prefix.String() != p.String() || pfx[0].PreferredLifetime != 200*time.Second || pfx[0].ValidLifetime != 400*time.Second {
		t.Fatalf("prefixes %v", pfx)
	}
	if string(inner.Options.ClientID().ToBytes()) != string(duid1) || string(inner.Options.ServerID().ToBytes()) != string(srvDUID) {
		t.Fatal("DUIDs")
	}
}
