package lab

import (
	"fmt"
	"regexp"
	"strconv"
)

var meterRE = regexp.MustCompile(`counter packets (\d+) bytes (\d+)`)

// Random loss and traffic metering at an access router, in nftables
// tables of their own next to the fault table: this kernel, like many,
// has no netem, and nft's numgen gives the same independent random loss
// per packet.

const (
	lossTable  = "nemolab_loss"
	meterTable = "nemolab_meter"
)

// RandomLoss makes the uplink's access router drop percent of the
// packets it forwards, each independently, both ways (0 ends it). The
// link and neighbour discovery with the router itself are not affected.
func (l *Lab) RandomLoss(uplink string, percent int) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("lab: loss of %d%%", percent)
	}
	script := fmt.Sprintf("table inet %s {}\ndelete table inet %s\n", lossTable, lossTable)
	if percent > 0 {
		script += fmt.Sprintf(`table inet %s {
	chain forward {
		type filter hook forward priority filter - 20; policy accept;
		numgen random mod 100 < %d counter drop comment "loss"
	}
}
`, lossTable, percent)
	}
	return l.faultScript(uplink, script)
}

// Metered is what an access router forwarded for the mobile router since
// the meter was started: octets at the IP layer, each way.
type Metered struct {
	UpPackets, UpOctets     uint64 // from the mobile router
	DownPackets, DownOctets uint64 // to it
}

// StartMeter starts (again) counting what the uplink's access router
// forwards from and to the mobile router.
func (l *Lab) StartMeter(uplink string) error {
	return l.faultScript(uplink, fmt.Sprintf(`table inet %s {}
delete table inet %s
table inet %s {
	chain forward {
		type filter hook forward priority filter - 30; policy accept;
		iifname "%s" counter comment "up"
		oifname "%s" counter comment "down"
	}
}
`, meterTable, meterTable, meterTable, accessIf, accessIf))
}

// Meter reads the uplink's meter.
func (l *Lab) Meter(uplink string) (Metered, error) {
	role, err := accessRouter(uplink)
	if err != nil {
		return Metered{}, err
	}
	ctx, cancel := faultCtx()
	defer cancel()
	out, err := l.Run(ctx, role, "nft", "list", "table", "inet", meterTable)
	if err != nil {
		return Metered{}, err
	}
	m := meterRE.FindAllStringSubmatch(out, -1)
	if len(m) != 2 {
		return Metered{}, fmt.Errorf("lab: meter of %s: %d counters in %q", uplink, len(m), out)
	}
	var v [4]uint64
	for i, s := range []string{m[0][1], m[0][2], m[1][1], m[1][2]} {
		v[i], _ = strconv.ParseUint(s, 10, 64)
	}
	return Metered{UpPackets: v[0], UpOctets: v[1], DownPackets: v[2], DownOctets: v[3]}, nil
}
