package aaa

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

func listenDynAuth(t *testing.T, clients []netip.Addr, maxPending int) *DynAuthServer {
	t.Helper()
	s, err := ListenDynAuth(DynAuthConfig{
		Listen: netip.MustParseAddrPort("[::1]:0"), Clients: clients, MaxPending: maxPending,
		DynAuthPolicy: DynAuthPolicy{Secret: testSecret, NAS: testNAS},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// exchange sends pkt from conn and returns the answer, or nil if none came
// within a short wait.
func exchange(t *testing.T, conn *net.UDPConn, pkt []byte) []byte {
	t.Helper()
	if _, err := conn.Write(pkt); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

func dial(t *testing.T, to netip.AddrPort) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestDynAuthRetransmission: a retransmitted Disconnect-Request is answered
// with the same answer from memory and not handed to the loop again; while
// the loop has not answered, a retransmission gets nothing.
func TestDynAuthRetransmission(t *testing.T) {
	s := listenDynAuth(t, []netip.Addr{netip.MustParseAddr("::1")}, 0)
	conn := dial(t, s.Addr())
	pkt := disconnectRequest(t, radius.CodeDisconnectRequest, 3, testSecret, true, byName)
	if _, err := conn.Write(pkt); err != nil {
		t.Fatal(err)
	}
	r := <-s.Events()
	if got := exchange(t, conn, pkt); got != nil {
		t.Fatalf("answered before the loop did: %x", got)
	}
	r.Ack()
	r.Nak(CauseSessionNotFound) // a second answer is ignored
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	ack := bytes.Clone(buf[:n])
	if radius.Code(ack[0]) != radius.CodeDisconnectACK || !radius.IsAuthenticResponse(ack, pkt, testSecret) {
		t.Fatalf("answer %v", radius.Code(ack[0]))
	}
	if again := exchange(t, conn, pkt); !bytes.Equal(again, ack) {
		t.Errorf("retransmission answered %x, want %x", again, ack)
	}
	select {
	case r := <-s.Events():
		t.Errorf("retransmission handed over again: %+v", r.Selector)
	default:
	}
	if st := s.Stats(); st.Duplicates != 2 || st.ACKs != 1 || st.NAKs != 0 || st.Revocations != 1 {
		t.Errorf("stats %+v", st)
	}
	// The same identifier with another authenticator is a new request.
	pkt2 := disconnectRequest(t, radius.CodeDisconnectRequest, 3, testSecret, true, func(p *radius.Packet) {
		p.Add(rfc2865.UserName_Type, []byte("car10@fleet.example"))
	})
	conn.Write(pkt2)
	if r := <-s.Events(); r.NAI != "car10@fleet.example" {
		t.Errorf("new request %+v", r.Selector)
	}
}

// TestDynAuthStrangersAndOverload: a request from an address not among the
// clients is dropped unanswered; past MaxPending unanswered revocations, a
// request is refused at once with Error-Cause 506.
func TestDynAuthStrangersAndOverload(t *testing.T) {
	s := listenDynAuth(t, []netip.Addr{netip.MustParseAddr("192.0.2.1")}, 1)
	conn := dial(t, s.Addr())
	if got := exchange(t, conn, disconnectRequest(t, radius.CodeDisconnectRequest, 1, testSecret, true, byName)); got != nil {
		t.Errorf("a stranger was answered")
	}
	if st := s.Stats(); st.Discarded != 1 || st.Received != 1 {
		t.Errorf("stats %+v", st)
	}

	s = listenDynAuth(t, []netip.Addr{netip.MustParseAddr("::1")}, 1)
	conn = dial(t, s.Addr())
	conn.Write(disconnectRequest(t, radius.CodeDisconnectRequest, 1, testSecret, true, byName))
	r := <-s.Events() // taken, not answered
	pkt := disconnectRequest(t, radius.CodeDisconnectRequest, 2, testSecret, true, byName)
	nak := exchange(t, conn, pkt)
	if nak == nil || radius.Code(nak[0]) != radius.CodeDisconnectNAK {
		t.Fatalf("overload answer %x", nak)
	}
	p, _ := radius.Parse(nak, testSecret)
	if c, _ := radius.Integer(p.Get(typeErrorCause)); c != uint32(CauseResourcesUnavailable) {
		t.Errorf("Error-Cause %d", c)
	}
	r.Ack()
	// With the first answered there is room again.
	conn.Write(disconnectRequest(t, radius.CodeDisconnectRequest, 4, testSecret, true, byName))
	select {
	case r := <-s.Events():
		r.Nak(CauseSessionNotFound)
	case <-time.After(2 * time.Second):
		t.Fatal("no revocation after room was made")
	}
	s.Close()
	if _, ok := <-s.Events(); ok {
		t.Error("Events not closed")
	}
}

func TestListenDynAuthChecks(t *testing.T) {
	for name, cfg := range map[string]DynAuthConfig{
		"no secret":  {Listen: netip.MustParseAddrPort("[::1]:0"), Clients: []netip.Addr{netip.MustParseAddr("::1")}},
		"no clients": {Listen: netip.MustParseAddrPort("[::1]:0"), DynAuthPolicy: DynAuthPolicy{Secret: testSecret}},
		"no address": {Clients: []netip.Addr{netip.MustParseAddr("::1")}, DynAuthPolicy: DynAuthPolicy{Secret: testSecret}},
	} {
		if s, err := ListenDynAuth(cfg); err == nil {
			s.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}
