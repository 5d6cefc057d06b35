package e2e

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"nemod/internal/testenv"
	"nemod/lab"
)

// ping6 pings dst from a role count times and reports whether all came
// back.
func (e *env) ping6(role, dst string, count int, extra ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := append([]string{"ping", "-6", "-n", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "2"}, extra...)
	return e.lab.Run(ctx, role, append(args, dst)...)
}

func (e *env) registered() {
	e.t.Helper()
	eventually(e.t, 5*time.Second, "both uplinks registered ("+e.want+")", func() bool {
		return e.mrStates() == e.want
	})
}

// The LAN host reaches the correspondent over IPv6 through the tunnel;
// the correspondent sees the LAN host's own address from the mobile
// network prefix; the replies come back.
func TestLANReachesCorrespondent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startHA()
	e.startMR()
	e.registered()
	cap, err := e.lab.Capture(lab.CN, "eth0", "icmp6")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := e.ping6(lab.LAN, "2001:db8:c::1", 3); err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	path, err := cap.Stop()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rows, err := lab.PcapFields(ctx, path, "icmpv6.type == 128", "ipv6.src", "ipv6.dst")
	if err != nil || len(rows) < 3 || rows[0][0] != "2001:db8:100::10" || rows[0][1] != "2001:db8:c::1" {
		t.Fatalf("echo requests at the correspondent: %q %v", rows, err)
	}
}

// The same over the cellular uplink alone: IPv6 in UDP over IPv4, through
// the carrier-grade NAT, both ways; the binding's counters move.
func TestLANReachesCorrespondentOverCellular(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startHA()
	e.startMR()
	e.registered()
	if err := e.lab.CarrierDown("wifi"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "only the cellular binding", func() bool { return len(e.haBindings()) == 1 })
	cap, err := e.lab.Capture(lab.Cell, "eth1", "udp port 4191")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := e.ping6(lab.LAN, "2001:db8:c::1", 5); err != nil {
		t.Fatalf("ping over cellular: %v\n%s", err, out)
	}
	path, err := cap.Stop()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Echo requests leave the CGN from its address inside UDP to 4191;
	// the replies come back to the NAT's port.
	rows, err := lab.PcapFields(ctx, path, "icmpv6.type == 128", "ip.src", "udp.dstport", "ipv6.src")
	if err != nil || len(rows) < 5 || rows[0][0] != "192.0.2.2" || rows[0][1] != "4191" || !strings.Contains(rows[0][2], "2001:db8:100::10") {
		t.Fatalf("requests after the NAT: %q %v", rows, err)
	}
	rows, err = lab.PcapFields(ctx, path, "icmpv6.type == 129", "ip.dst", "udp.srcport", "ipv6.dst")
	if err != nil || len(rows) < 5 || rows[0][0] != "192.0.2.2" || rows[0][1] != "4191" {
		t.Fatalf("replies towards the NAT: %q %v", rows, err)
	}
	s := e.mrStatus()
	if b := s.Bindings[1]; b.BID != 2 || b.TxPackets < 5 || b.RxPackets < 5 {
		t.Fatalf("cellular binding counters: %+v", s.Bindings)
	}
}

// An oversized packet from the LAN host gets Packet Too Big with the
// tunnel's MTU, and a retry at that size gets through.
func TestPacketTooBig(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startHA()
	e.startMR()
	e.registered()
	out, err := e.ping6(lab.LAN, "2001:db8:c::1", 1, "-M", "do", "-s", "1452") // 1500 octets on the wire
	if err == nil {
		t.Fatalf("a 1500-octet packet went through a tunnel over 1500-octet links:\n%s", out)
	}
	i := strings.Index(out, "mtu=")
	if i < 0 {
		t.Fatalf("no Packet Too Big:\n%s", out)
	}
	mtu, _ := strconv.Atoi(strings.TrimFunc(out[i+4:min(len(out), i+9)], func(r rune) bool { return r < '0' || r > '9' }))
	// The tunnel carries the smallest of its bindings' paths: UDP over
	// IPv6 (1452; IPv6-in-IPv6 would be 1460) and UDP over IPv4 (1472).
	if mtu != 1452 {
		t.Fatalf("Packet Too Big says mtu=%d, want 1452:\n%s", mtu, out)
	}
	if out, err := e.ping6(lab.LAN, "2001:db8:c::1", 2, "-M", "do", "-s", strconv.Itoa(mtu-48)); err != nil {
		t.Fatalf("retry at %d octets: %v\n%s", mtu, err, out)
	}
}

// A TCP transfer from the LAN host to the correspondent keeps going, with
// no reset, while the Wi-Fi uplink is taken down and brought back twice:
// the flow moves to the cellular binding and back, keeping its addresses.
func TestTCPSurvivesWifiLossTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	testenv.NeedTool(t, "iperf3")
	e.startHA()
	e.startMR()
	e.registered()
	if _, err := e.lab.Start(lab.CN, "iperf3-server", "iperf3", "-s", "-1", "-B", "2001:db8:c::1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the server binds
	client := e.lab.Command(context.Background(), lab.LAN, "iperf3", "-c", "2001:db8:c::1", "-t", "8", "-b", "100M", "-J")
	var out strings.Builder
	client.Stdout = &out
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, step := range []struct {
		at   time.Duration
		down bool
	}{{1500 * time.Millisecond, true}, {3 * time.Second, false}, {4500 * time.Millisecond, true}, {6 * time.Second, false}} {
		time.Sleep(time.Until(start.Add(step.at)))
		var err error
		if step.down {
			err = e.lab.CarrierDown("wifi")
		} else {
			err = e.lab.CarrierUp("wifi")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := client.Wait(); err != nil {
		t.Fatalf("iperf3 client: %v\n%s", err, out.String())
	}
	var res struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				Bytes float64 `json:"bytes"`
			} `json:"sum_received"`
		} `json:"end"`
		Intervals []struct {
			Sum struct {
				Bytes float64 `json:"bytes"`
			} `json:"sum"`
		} `json:"intervals"`
	}
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatalf("iperf3 output: %v\n%s", err, out.String())
	}
	if res.Error != "" || res.End.SumReceived.Bytes == 0 {
		t.Fatalf("transfer: error %q, %v bytes", res.Error, res.End.SumReceived.Bytes)
	}
	// Every second of the transfer moved data: the flow never stopped.
	for i, iv := range res.Intervals {
		if iv.Sum.Bytes == 0 {
			t.Errorf("second %d moved nothing", i)
		}
	}
	t.Logf("%.1f MB received in 8 s across two Wi-Fi losses", res.End.SumReceived.Bytes/1e6)
	if got := e.mrStates(); got != e.want {
		t.Errorf("final state %s", got)
	}
}
