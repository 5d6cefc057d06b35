package lab_test

import (
	"regexp"
	"strconv"
	"testing"
	"time"

	"nemod/lab"
	"nemod/lab/labtest"
)

var receivedRE = regexp.MustCompile(`(\d+) received`)

// The meter counts what the access router forwards each way, at the IP
// layer; random loss drops about its share of it, independently each way,
// and goes again.
func TestLossAndMeter(t *testing.T) {
	t.Parallel()
	l := labtest.New(t, lab.Options{})
	ctx := testCtx(t, 90*time.Second)
	wlanPing := []string{"-6", "-I", lab.MRWLANDev, lab.CN6.String()}
	mustReach(t, ctx, l, lab.MR, wlanPing...)
	if err := l.StartMeter(lab.Wifi); err != nil {
		t.Fatal(err)
	}
	// 20 echoes of 56 octets of data: 104-octet IPv6 packets each way.
	if _, err := l.Run(ctx, lab.MR, append([]string{"ping", "-n", "-q", "-c", "20", "-i", "0.01", "-W", "1"}, wlanPing...)...); err != nil {
		t.Fatal(err)
	}
	m, err := l.Meter(lab.Wifi)
	if err != nil {
		t.Fatal(err)
	}
	if m.UpPackets < 20 || m.DownPackets < 20 || m.UpOctets < 20*104 || m.UpOctets > 30*104 || m.DownOctets < 20*104 {
		t.Fatalf("meter after 20 echoes: %+v", m)
	}
	if err := l.RandomLoss(lab.Wifi, 50); err != nil {
		t.Fatal(err)
	}
	out, _ := l.Run(ctx, lab.MR, append([]string{"ping", "-n", "-q", "-c", "200", "-i", "0.005", "-W", "1"}, wlanPing...)...)
	got := receivedRE.FindStringSubmatch(out)
	if got == nil {
		t.Fatalf("ping: %s", out)
	}
	// Each echo and its reply lost with one chance in two: a quarter come
	// back.
	if n, _ := strconv.Atoi(got[1]); n < 20 || n > 90 {
		t.Fatalf("%d of 200 echoes answered under 50 %% loss each way", n)
	}
	if err := l.RandomLoss(lab.Wifi, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Run(ctx, lab.MR, append([]string{"ping", "-n", "-q", "-c", "20", "-i", "0.01", "-W", "1"}, wlanPing...)...); err != nil {
		t.Fatalf("loss did not go: %v", err)
	}
	if err := l.RandomLoss(lab.Wifi, 0); err != nil {
		t.Fatalf("ending no loss: %v", err)
	}
}
