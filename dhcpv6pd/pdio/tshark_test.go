package pdio

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nemod/dhcpv6pd"
	"nemod/internal/testenv"
)

// writePcap writes IPv6 packets as a pcap file of link type RAW (101).
func writePcap(t *testing.T, path string, pkts [][]byte) {
	t.Helper()
	var b bytes.Buffer
	hdr := []uint32{0xa1b2c3d4, 0x00040002, 0, 0, 65535, 101}
	binary.Write(&b, binary.LittleEndian, hdr[0])
	binary.Write(&b, binary.LittleEndian, uint16(2))
	binary.Write(&b, binary.LittleEndian, uint16(4))
	for _, v := range hdr[2:] {
		binary.Write(&b, binary.LittleEndian, v)
	}
	for i, p := range pkts {
		for _, v := range []uint32{uint32(1_700_000_000 + i), 0, uint32(len(p)), uint32(len(p))} {
			binary.Write(&b, binary.LittleEndian, v)
		}
		b.Write(p)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

var (
	tsHoA = netip.MustParseAddr("2001:db8:1::10")
	tsHA  = netip.MustParseAddr("2001:db8:1::1")
	tsExt = netip.MustParseAddr("2001:db8:ffff::547")
)

// conversation runs a client, the home agent's relay and an "external"
// delegating router through Solicit, Request, Renew, Rebind and Release,
// and returns every datagram as an IPv6/UDP packet on the wire, in order.
func conversation(t *testing.T) [][]byte {
	t.Helper()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	mr := netip.AddrPortFrom(tsHoA, 547)
	ha := netip.AddrPortFrom(tsHA, 547)
	ext := netip.AddrPortFrom(tsExt, 547)
	c, err := dhcpv6pd.NewClient(dhcpv6pd.ClientConfig{HoA: tsHoA, Server: ha, DUID: dhcpv6pd.NewDUIDUUID([16]byte{0: 7}),
		IAID: [4]byte{0, 0, 0, 1}, PrefixLen: 56}, nil, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := dhcpv6pd.NewServer(dhcpv6pd.ServerConfig{DUID: dhcpv6pd.NewDUIDUUID([16]byte{0: 9}),
		Pools:   []dhcpv6pd.Pool{{Prefix: netip.MustParsePrefix("2001:db8:200::/40"), Length: 56}},
		Routers: map[netip.Addr]string{tsHoA: ""}, DNS: []netip.Addr{netip.MustParseAddr("2001:db8::53")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := dhcpv6pd.NewHARelay(dhcpv6pd.RelayConfig{Server: ext, LinkAddr: tsHA, LocalPort: 10547, Routers: map[netip.Addr]bool{tsHoA: true}})
	if err != nil {
		t.Fatal(err)
	}
	var pkts [][]byte
	wire := func(from, to netip.AddrPort, b []byte) { pkts = append(pkts, dhcpv6pd.IPv6UDP(from, to, 64, b)) }
	relayPort := netip.AddrPortFrom(tsHA, 10547)
	pump := func(out dhcpv6pd.Output) {
		for len(out.Send) > 0 {
			d := out.Send[0]
			out.Send = out.Send[1:]
			wire(mr, d.To, d.Data)
			ro, err := h.Handle(d.Data, mr, now)
			if err != nil {
				t.Fatal(err)
			}
			wire(relayPort, ro.Send[0].To, ro.Send[0].Data)
			// The external server: our delegating router behind an unwrap.
			outer, _ := dhcpv6pd.ParseRelay(ro.Send[0].Data)
			so, err := srv.Handle(outer.Inner, mr, now)
			if err != nil {
				t.Fatal(err)
			}
			rr := dhcpv6pd.Relay{Type: dhcpv6pd.RelayRepl, HopCount: outer.HopCount, LinkAddr: outer.LinkAddr, PeerAddr: outer.PeerAddr, Inner: so.Send[0].Data}
			wire(ext, relayPort, rr.Marshal())
			back, err := h.Handle(rr.Marshal(), ext, now)
			if err != nil {
				t.Fatal(err)
			}
			wire(ha, back.Send[0].To, back.Send[0].Data)
			co, err := c.Receive(back.Send[0].Data, ha, now)
			if err != nil {
				t.Fatal(err)
			}
			out.Send = append(out.Send, co.Send...)
		}
	}
	c.Start(now)
	now = c.Next()
	pump(c.Tick(now)) // Solicit, Advertise, Request, Reply
	lease := c.Lease()
	now = lease.T1
	pump(c.Tick(now)) // Renew, Reply
	c2, _ := dhcpv6pd.NewClient(dhcpv6pd.ClientConfig{HoA: tsHoA, Server: ha, DUID: dhcpv6pd.NewDUIDUUID([16]byte{0: 7}),
		IAID: [4]byte{0, 0, 0, 1}, PrefixLen: 56}, c.Lease(), rand.New(rand.NewPCG(3, 4)))
	c = c2
	pump(c.Start(now)) // Rebind after a restart, Reply
	pump(c.Release(now))
	return pkts
}

type tsharkPacket struct {
	Source struct {
		Layers map[string]json.RawMessage `json:"layers"`
	} `json:"_source"`
}

// Every message we send, in its UDP/IPv6 packet, as tshark decodes it: no
// malformed packet, no expert warning or error, a good UDP checksum, and
// the fields we meant.
func TestTsharkDecodesEveryMessage(t *testing.T) {
	tshark := testenv.NeedTool(t, "tshark")
	pkts := conversation(t)
	if len(pkts) != 5*4 {
		t.Fatalf("%d packets", len(pkts))
	}
	path := filepath.Join(t.TempDir(), "pd.pcap")
	if p := os.Getenv("PD_PCAP"); p != "" {
		path = p
	}
	writePcap(t, path, pkts)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, tshark, "-n", "-o", "udp.check_checksum:TRUE", "-r", path, "-T", "json").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	if bytes.Contains(out, []byte(`"_ws.malformed`)) {
		t.Fatal("tshark: malformed packet")
	}
	var decoded []tsharkPacket
	if err := json.Unmarshal(out, &decoded); err != nil {
		t.Fatal(err)
	}
	if len(decoded) != len(pkts) {
		t.Fatalf("tshark read %d packets", len(decoded))
	}
	// Expert info: one item per packet and only one kind, Wireshark's
	// dhcpv6.error_hopcount on the innermost Relay-forw/Relay-reply:
	// Wireshark holds it to RFC 8415 §19.1.1 (hop count 0 from a client),
	// while RFC 6276 §3.1.2 sets 1 for the mobile router's co-located
	// relay, which is what we send. Anything else fails.
	experts := map[string]int{}
	for _, p := range decoded {
		for _, raw := range p.Source.Layers {
			var v any
			if err := json.Unmarshal(raw, &v); err == nil {
				collectExperts(v, experts)
			}
		}
	}
	if len(experts) != 1 || experts["dhcpv6.error_hopcount"] != len(pkts) {
		t.Fatalf("tshark expert info %v, want dhcpv6.error_hopcount once per packet", experts)
	}
	fields := []string{"udp.srcport", "udp.dstport", "udp.checksum.status", "dhcpv6.msgtype", "dhcpv6.hopcount",
		"dhcpv6.linkaddr", "dhcpv6.peeraddr", "dhcpv6.iaprefix.pref_addr", "dhcpv6.iaprefix.pref_len", "dhcpv6.iaprefix.valid_lifetime",
		"dhcpv6.relay_port", "dhcpv6.elapsed_time"}
	args := []string{"-n", "-o", "udp.check_checksum:TRUE", "-r", path, "-T", "fields", "-E", "separator=|", "-E", "aggregator=,"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	fo, err := exec.CommandContext(ctx, tshark, args...).Output()
	if err != nil {
		t.Fatalf("tshark fields: %v", err)
	}
	rows := strings.Split(strings.TrimSpace(string(fo)), "\n")
	// Per exchange: router -> HA (RELAY-FORW hop 1 around the client's
	// message), HA -> server (RELAY-FORW hop 2 with relay port 10547),
	// server -> HA (RELAY-REPL x2), HA -> router (RELAY-REPL hop 1).
	inner := []string{"1", "2", "3", "7", "5", "7", "6", "7", "8", "7"} // SOLICIT ADVERTISE REQUEST REPLY ...
	for i, row := range rows {
		f := strings.Split(row, "|")
		get := func(name string) string {
			for j, n := range fields {
				if n == name {
					return f[j]
				}
			}
			return ""
		}
		if get("udp.checksum.status") != "1" {
			t.Errorf("packet %d: UDP checksum status %q", i+1, get("udp.checksum.status"))
		}
		types := strings.Split(get("dhcpv6.msgtype"), ",")
		hops := get("dhcpv6.hopcount")
		exch, leg := i/4, i%4
		var want []string
		var wantHops string
		switch leg {
		case 0: // router -> home agent
			want, wantHops = []string{"12", inner[2*exch]}, "1"
		case 1: // home agent -> server
			want, wantHops = []string{"12", "12", inner[2*exch]}, "2,1"
		case 2: // server -> home agent
			want, wantHops = []string{"13", "13", inner[2*exch+1]}, "2,1"
		case 3: // home agent -> router
			want, wantHops = []string{"13", inner[2*exch+1]}, "1"
		}
		if strings.Join(types, ",") != strings.Join(want, ",") || hops != wantHops {
			t.Errorf("packet %d: types %v hops %s, want %v %s", i+1, types, hops, want, wantHops)
		}
		links := strings.Split(get("dhcpv6.linkaddr"), ",")
		peers := strings.Split(get("dhcpv6.peeraddr"), ",")
		wantLinks := fmt.Sprint([]string{tsHoA.String()})
		if leg == 1 || leg == 2 {
			wantLinks = fmt.Sprint([]string{tsHA.String(), tsHoA.String()})
		}
		if fmt.Sprint(links) != wantLinks || peers[len(peers)-1] != tsHoA.String() {
			t.Errorf("packet %d: link %v peer %v", i+1, links, peers)
		}
		if leg == 1 && get("dhcpv6.relay_port") != "10547" {
			t.Errorf("packet %d: relay port %q", i+1, get("dhcpv6.relay_port"))
		}
		if (leg == 0 || leg == 1) && get("dhcpv6.elapsed_time") == "" {
			t.Errorf("packet %d: no elapsed time", i+1)
		}
		// The answers with prefixes: /56 from the pool, a day valid.
		if (leg == 2 || leg == 3) && exch < 4 {
			if !strings.HasPrefix(get("dhcpv6.iaprefix.pref_addr"), "2001:db8:2") || get("dhcpv6.iaprefix.pref_len") != "56" || get("dhcpv6.iaprefix.valid_lifetime") != "86400" {
				t.Errorf("packet %d: prefix %q/%q valid %q", i+1, get("dhcpv6.iaprefix.pref_addr"), get("dhcpv6.iaprefix.pref_len"), get("dhcpv6.iaprefix.valid_lifetime"))
			}
		}
	}
}

// collectExperts counts the expert info items in a decoded tshark layer by
// their field name (the key beside _ws.expert.message).
func collectExperts(v any, out map[string]int) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if k == "_ws.expert" {
				if m, ok := c.(map[string]any); ok {
					for f := range m {
						if !strings.HasPrefix(f, "_ws.expert.") {
							out[f]++
						}
					}
				}
				continue
			}
			collectExperts(c, out)
		}
	case []any:
		for _, c := range x {
			collectExperts(c, out)
		}
	}
}
