package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"time"
)

// Address families for Addr: 4 and 6, or syscall.AF_INET and AF_INET6.
const (
	IPv4 = 4
	IPv6 = 6
)

type ipAddrInfo struct {
	Family    string `json:"family"`
	Local     string `json:"local"`
	Scope     string `json:"scope"`
	Tentative bool   `json:"tentative"`
	DADFailed bool   `json:"dadfailed"`
}

type ipLink struct {
	Flags    []string     `json:"flags"`
	AddrInfo []ipAddrInfo `json:"addr_info"`
}

// globalAddrs lists the usable global addresses of a device: neither
// tentative nor failed DAD.
func (l *Lab) globalAddrs(ctx context.Context, role, dev string, family int) ([]netip.Addr, error) {
	fam := ""
	switch family {
	case IPv4, syscall.AF_INET:
		fam = "-4"
	case IPv6, syscall.AF_INET6:
		fam = "-6"
	default:
		return nil, fmt.Errorf("lab: bad address family %d", family)
	}
	ns, err := l.ns(role)
	if err != nil {
		return nil, err
	}
	out, err := runOut(ctx, "ip", "-n", ns, "-j", fam, "addr", "show", "dev", dev, "scope", "global")
	if err != nil {
		return nil, err
	}
	var links []ipLink
	if err := json.Unmarshal(out, &links); err != nil {
		return nil, fmt.Errorf("lab: ip -j addr: %w", err)
	}
	var addrs []netip.Addr
	for _, ln := range links {
		for _, a := range ln.AddrInfo {
			if a.Scope != "global" || a.Tentative || a.DADFailed {
				continue
			}
			if ip, err := netip.ParseAddr(a.Local); err == nil {
				addrs = append(addrs, ip)
			}
		}
	}
	return addrs, nil
}

// Addr returns the first usable global address of a device, e.g. mr
// wlan0's SLAAC address. family is 4 or 6 (or AF_INET, AF_INET6).
func (l *Lab) Addr(role, dev string, family int) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addrs, err := l.globalAddrs(ctx, role, dev, family)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("lab: %s %s has no usable global IPv%d address", role, dev, family2version(family))
	}
	return addrs[0], nil
}

func family2version(family int) int {
	if family == IPv4 || family == syscall.AF_INET {
		return 4
	}
	return 6
}

// WaitSLAAC waits until mr's wlan0 has a non-tentative address in
// WifiPrefix and mr has an IPv6 default route, and returns the address.
// After CarrierUp("wifi") it tells when the Wi-Fi uplink is usable again.
func (l *Lab) WaitSLAAC(ctx context.Context) (netip.Addr, error) {
	ns, err := l.ns(MR)
	if err != nil {
		return netip.Addr{}, err
	}
	for {
		addrs, err := l.globalAddrs(ctx, MR, MRWLANDev, IPv6)
		var found netip.Addr
		for _, a := range addrs {
			if WifiPrefix.Contains(a) {
				found = a
				break
			}
		}
		if err == nil && found.IsValid() {
			out, rerr := runOut(ctx, "ip", "-n", ns, "-j", "-6", "route", "show", "default")
			var routes []json.RawMessage
			if rerr == nil && json.Unmarshal(out, &routes) == nil && len(routes) > 0 {
				return found, nil
			}
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("no SLAAC address and default route on mr wlan0")
			}
			return netip.Addr{}, fmt.Errorf("lab: waiting for SLAAC: %w (%w)", ctx.Err(), err)
		case <-time.After(25 * time.Millisecond):
		}
	}
}
