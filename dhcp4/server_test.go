package dhcp4

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
)

// serve starts a server on a loopback UDP socket.
func serve(t *testing.T, file string) (*Server, *net.UDPAddr) {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Listen("", Config{Prefix: netip.MustParsePrefix("10.201.5.0/24"), Router: netip.MustParseAddr("10.201.5.1"),
		DNS: []netip.Addr{netip.MustParseAddr("192.0.2.53")}, LeaseTime: 10 * time.Minute}, file, conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Close() })
	return s, conn.LocalAddr().(*net.UDPAddr)
}

// client is insomniacslk's nclient4 on a loopback socket of its own,
// talking to the server by unicast.
func client(t *testing.T, server *net.UDPAddr, mac net.HardwareAddr) *nclient4.Client {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := nclient4.NewWithConn(conn, mac, nclient4.WithServerAddr(server), nclient4.WithTimeout(2*time.Second), nclient4.WithRetry(2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestServerWithClient: a real DHCPv4 client gets a lease with the
// router, DNS and lease time configured, renews it and releases it; the
// leases survive a restart of the server through its lease file.
func TestServerWithClient(t *testing.T) {
	file := filepath.Join(t.TempDir(), "state", "dhcp4.leases")
	s, addr := serve(t, file)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := client(t, addr, mac1)
	lease, err := c.Request(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ack := lease.ACK
	if !ack.YourIPAddr.Equal(net.ParseIP("10.201.5.2")) || !ack.Router()[0].Equal(net.ParseIP("10.201.5.1")) ||
		!ack.DNS()[0].Equal(net.ParseIP("192.0.2.53")) || ack.IPAddressLeaseTime(0) != 10*time.Minute ||
		ack.SubnetMask().String() != "ffffff00" {
		t.Fatalf("lease: %s", ack.Summary())
	}
	renewed, err := c.Renew(ctx, lease)
	if err != nil || !renewed.ACK.YourIPAddr.Equal(ack.YourIPAddr) {
		t.Fatalf("renewal: %v %v", renewed, err)
	}
	if s.Leases().Active(time.Now()) != 1 {
		t.Fatal("no active lease")
	}
	c2 := client(t, addr, mac2)
	lease2, err := c2.Request(ctx)
	if err != nil || !lease2.ACK.YourIPAddr.Equal(net.ParseIP("10.201.5.3")) {
		t.Fatalf("second host: %v %v", lease2, err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("no lease file: %v", err)
	}
	// A restart: the second host asks again and gets its address back,
	// though the first host's would now be free for it.
	// nclient4 sends a release to the server identifier, which is not on
	// loopback: the same message, to the server's socket.
	rel, err := dhcpv4.NewReleaseFromACK(lease.ACK)
	if err != nil {
		t.Fatal(err)
	}
	u, err := net.DialUDP("udp4", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, err := u.Write(rel.ToBytes()); err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); s.Leases().Active(time.Now()) != 1; time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatal("release not applied")
		}
	}
	s.Close()
	_, addr = serve(t, file)
	c3 := client(t, addr, mac2)
	lease3, err := c3.Request(ctx)
	if err != nil || !lease3.ACK.YourIPAddr.Equal(lease2.ACK.YourIPAddr) {
		t.Fatalf("after a restart: %v %v", lease3, err)
	}
	c4 := client(t, addr, net.HardwareAddr{2, 0, 0, 0, 0, 9})
	lease4, err := c4.Request(ctx)
	if err != nil || !lease4.ACK.YourIPAddr.Equal(ack.YourIPAddr) {
		t.Fatalf("a new host after the release: %v %v", lease4, err)
	}
}
