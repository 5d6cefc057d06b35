package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"nemod/lab"
)

// The kernel's own drop counters at the ends of the streams and in the
// daemons' namespaces. A datagram lost in this process's socket or in a
// daemon's TUN queue is not lost by nemod's switching, and a loss the
// daemons do not count anywhere has to be found somewhere else.
var dropRoles = []string{lab.LAN, lab.MR, lab.HA, lab.CN}

type dropSnapshot map[string]uint64 // "role dev rx|tx" and "role Udp6..." -> count

func takeDrops(l *lab.Lab) dropSnapshot {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := dropSnapshot{}
	for _, role := range dropRoles {
		if out, err := l.Run(ctx, role, "ip", "-j", "-s", "link", "show"); err == nil {
			var links []struct {
				Name  string `json:"ifname"`
				Stats struct {
					RX struct {
						Dropped uint64 `json:"dropped"`
					} `json:"rx"`
					TX struct {
						Dropped uint64 `json:"dropped"`
					} `json:"tx"`
				} `json:"stats64"`
			}
			if json.Unmarshal([]byte(out), &links) == nil {
				for _, k := range links {
					s[role+" "+k.Name+" rx_dropped"] = k.Stats.RX.Dropped
					s[role+" "+k.Name+" tx_dropped"] = k.Stats.TX.Dropped
				}
			}
		}
		if role != lab.LAN && role != lab.CN {
			continue
		}
		if out, err := l.Run(ctx, role, "cat", "/proc/net/snmp6"); err == nil {
			for _, line := range strings.Split(out, "\n") {
				f := strings.Fields(line)
				if len(f) == 2 && (f[0] == "Udp6RcvbufErrors" || f[0] == "Udp6InErrors" || f[0] == "Udp6InCsumErrors" || f[0] == "Udp6SndbufErrors") {
					v, _ := strconv.ParseUint(f[1], 10, 64)
					s[role+" "+f[0]] = v
				}
			}
		}
	}
	return s
}

// since lists what grew from before to s, or "none".
func (s dropSnapshot) since(before dropSnapshot) string {
	var parts []string
	for k, v := range s {
		if d := v - before[k]; v > before[k] {
			parts = append(parts, fmt.Sprintf("%s +%d", k, d))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}
