package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"nemod/control"
	"nemod/lab"
	"nemod/status"
)

// prefixDelegation is the demo's last chapter: the router starts again
// without a configured prefix, gets one from its home agent by DHCPv6
// through its tunnel (RFC 6276), and advertises it on its LAN, where the
// host, without a static address now, configures itself.
func (d *demoRun) prefixDelegation() error {
	step("Prefix delegation: the router is started again without a mobile network prefix")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.ha.Stop(); err != nil && !isExit(err) {
		return err
	}
	if err := d.lab.ForPD(ctx); err != nil {
		return err
	}
	haConf := filepath.Join(d.lab.Dir(), "homeagent-pd.uci")
	mrConf := filepath.Join(d.lab.Dir(), "router-pd.uci")
	if err := os.WriteFile(haConf, []byte(lab.HomeAgentUCIPD(d.haSock, filepath.Join(d.lab.Dir(), "ha-leases.json"), netip.Addr{}, "")), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(mrConf, []byte(lab.RouterUCIPD(d.mrSock, filepath.Join(d.lab.Dir(), "mr-lease.json"), "")), 0o600); err != nil {
		return err
	}
	say("  the LAN host's static address is gone; the home agent delegates /56s of its pd_pool %s,", lab.PDPool)
	say("  the router asks with option reqprefix '56' and no list mnp (implicit mode, RFC 3963)")
	var err error
	if d.ha, err = d.lab.Start(lab.HA, "homeagent-pd", d.bin, "homeagent", "-c", haConf); err != nil {
		return err
	}
	if err := waitFor(5*time.Second, func() bool { return control.Do(context.Background(), d.haSock, "status", nil, nil) == nil }); err != nil {
		return errors.New("the home agent did not start")
	}
	t0 := time.Now()
	if d.mr, err = d.lab.Start(lab.MR, "router-pd", d.bin, "router", "-c", mrConf); err != nil {
		return err
	}
	var pd *status.RouterPD
	if err := waitFor(20*time.Second, func() bool {
		pd = d.router().PD
		return pd != nil && pd.State == "bound" && len(pd.Prefixes) == 1
	}); err != nil {
		return fmt.Errorf("prefix delegation: %w", err)
	}
	q := netip.MustParsePrefix(pd.Prefixes[0].Prefix)
	say("  %s after the router started it holds %s, by DHCPv6 from its home agent's built-in server:", since(t0), q)
	say("  Solicit and Reply (Rapid Commit) relayed through the tunnel from its home address, renewed in %d s,", pd.T1)
	say("  valid for %d s, kept in its lease file so that a restart Rebinds it", pd.Prefixes[0].Valid)
	lan64 := netip.PrefixFrom(q.Addr(), 64)
	var host netip.Addr
	if err := waitFor(20*time.Second, func() bool { host = d.lanSLAAC(lan64); return host.IsValid() }); err != nil {
		return fmt.Errorf("the LAN host's SLAAC address: %w", err)
	}
	step("The LAN host configured itself from the router's advertisements")
	say("  the router took %s on lan0 and advertises %s (with the DNS server %s and the tunnel's MTU);", netip.PrefixFrom(lan64.Addr().Next(), 64), lan64, lab.PDDNS)
	say("  the LAN host made itself %s (SLAAC, %s after the router started)", host, since(t0))
	out, err := d.lab.Run(ctx, lab.LAN, "ping", "-6", "-n", "-c", "3", "-i", "0.2", "-W", "2", "-I", host.String(), lab.CN6.String())
	if err != nil {
		return fmt.Errorf("ping from the delegated prefix: %w\n%s", err, out)
	}
	say("  and reaches the correspondent %s from it through the tunnel: %s", lab.CN6, lastLine(out))
	say("\n  nemod ctl status, on the home agent (car1's lease):")
	d.ctlTable(lab.HA, d.haSock)
	return nil
}

// lanSLAAC is the LAN host's usable address in lan64, or the zero Addr.
func (d *demoRun) lanSLAAC(lan64 netip.Prefix) netip.Addr {
	out, err := d.lab.Command(context.Background(), lab.LAN, "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global").Output()
	if err != nil {
		return netip.Addr{}
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if p, err := netip.ParsePrefix(f[i+1]); f[i] == "inet6" && err == nil && lan64.Contains(p.Addr()) && !strings.Contains(line, "tentative") {
				return p.Addr()
			}
		}
	}
	return netip.Addr{}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
