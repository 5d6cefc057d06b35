package lab

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// accessRouter maps an uplink name, "wifi" or "cell", to the role of its
// access router (the same name, checked).
func accessRouter(uplink string) (string, error) {
	switch uplink {
	case Wifi, Cell:
		return uplink, nil
	}
	return "", fmt.Errorf("lab: unknown uplink %q (want %q or %q)", uplink, Wifi, Cell)
}

func faultCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

// CarrierDown sets the access router's side of the uplink administratively
// down. The veth then drops the carrier of mr's wlan0 or wwan0 at once:
// mr's device stays UP but shows NO-CARRIER, operstate DOWN, and its routes
// are kept, flagged linkdown, as on a real carrier loss.
func (l *Lab) CarrierDown(uplink string) error {
	return l.setAccessLink(uplink, "down")
}

// CarrierUp undoes CarrierDown. The access router keeps its addresses
// across it; on mr the kernel neither redoes DAD nor sends a router
// solicitation (see WaitSLAAC and the package notes).
func (l *Lab) CarrierUp(uplink string) error {
	return l.setAccessLink(uplink, "up")
}

func (l *Lab) setAccessLink(uplink, state string) error {
	role, err := accessRouter(uplink)
	if err != nil {
		return err
	}
	ctx, cancel := faultCtx()
	defer cancel()
	return l.ipBatch(ctx, role, []string{"link set " + accessDev + " " + state})
}

// Blackhole makes the access router silently drop everything it forwards,
// both ways, while the link and neighbour discovery with the router itself
// keep working: the failure that only probing finds.
func (l *Lab) Blackhole(uplink string, on bool) error {
	script := "flush chain inet nemolab_fault blackhole\n"
	if on {
		script += "add rule inet nemolab_fault blackhole counter drop comment \"blackhole\"\n"
	}
	return l.faultScript(uplink, script)
}

// BlockProtocols makes the access router drop forwarded IPv6 packets whose
// upper-layer protocol is one of protos, e.g. 135 (Mobility Header) and 41
// (IPv6 in IPv6). The match is nft's `meta l4proto`, which is the protocol
// after the extension headers (hop-by-hop, routing, fragment, destination
// options, AH). It replaces any earlier BlockProtocols on the uplink.
// IPv4 packets are not matched, so on the IPv4-only "cell" it blocks
// nothing.
func (l *Lab) BlockProtocols(uplink string, protos ...int) error {
	script := "flush chain inet nemolab_fault block\n"
	if len(protos) > 0 {
		s := make([]string, len(protos))
		for i, p := range protos {
			if p < 0 || p > 255 {
				return fmt.Errorf("lab: bad protocol number %d", p)
			}
			s[i] = strconv.Itoa(p)
		}
		script += fmt.Sprintf("add rule inet nemolab_fault block meta nfproto ipv6 meta l4proto { %s } counter drop comment \"block\"\n",
			strings.Join(s, ", "))
	}
	return l.faultScript(uplink, script)
}

// Unblock removes Blackhole and BlockProtocols from the uplink.
func (l *Lab) Unblock(uplink string) error {
	return l.faultScript(uplink, "flush chain inet nemolab_fault blackhole\nflush chain inet nemolab_fault block\n")
}

func (l *Lab) faultScript(uplink, script string) error {
	role, err := accessRouter(uplink)
	if err != nil {
		return err
	}
	ctx, cancel := faultCtx()
	defer cancel()
	return l.nft(ctx, role, script)
}

var counterRE = regexp.MustCompile(`counter packets (\d+)`)

// Dropped returns how many packets the uplink's current Blackhole and
// BlockProtocols rules dropped since they were set.
func (l *Lab) Dropped(uplink string) (uint64, error) {
	role, err := accessRouter(uplink)
	if err != nil {
		return 0, err
	}
	ctx, cancel := faultCtx()
	defer cancel()
	out, err := l.Run(ctx, role, "nft", "list", "table", "inet", faultTable)
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, m := range counterRE.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseUint(m[1], 10, 64)
		n += v
	}
	return n, nil
}

// FlushNAT drops the access router's NAT mappings with `conntrack -F` (from
// Debian's conntrack package), which empties the namespace's whole
// connection-tracking table. Until mr sends again, packets towards its old
// outside port reach the router itself and are refused; mr's next packet
// gets a new mapping. On "cell" (a CGN with fully random ports) that
// mapping has a new outside port; on "wifi" (plain masquerade) it usually
// keeps the old one.
func (l *Lab) FlushNAT(uplink string) error {
	role, err := accessRouter(uplink)
	if err != nil {
		return err
	}
	ctx, cancel := faultCtx()
	defer cancel()
	_, err = l.Run(ctx, role, "conntrack", "-F")
	return err
}
