package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The lab options of a cluster of home agents: three home agents (ha1,
// ha2, ha3), each linked to core, where bird 2 runs OSPFv3 and OSPFv2 with
// each, and each on a management network with a three-member etcd (e1,
// e2, e3, Debian's etcd-server) through a bridge of its own (eh). The
// instances' addresses are the lab's home agent addresses (HA6, HA4) and a
// second pair (InstanceB6, InstanceB4): whichever member owns one puts it
// on its TUN device, and its bird announces it to core. The lab's own ha
// namespace is left without addresses.

// ClusterOptions are the lab options of the cluster tests.
type ClusterOptions struct {
	// Members is the number of home agents (0: no cluster; at most 3).
	Members int
	// NoEtcd leaves etcd out: home agents of their own on the cluster's
	// topology (the router's home agent list).
	NoEtcd bool
}

// Roles of the cluster.
const (
	HA1, HA2, HA3 = "ha1", "ha2", "ha3"
	E1, E2, E3    = "e1", "e2", "e3"
	EtcdHub       = "eh"
	// MgmtDev is a home agent's device on the management network.
	MgmtDev = "mgmt0"
)

// The cluster's addresses.
var (
	InstanceB6 = netip.MustParseAddr("2001:db8:fffe::1")
	InstanceB4 = netip.MustParseAddr("198.51.100.129")
	// MgmtPrefix is the management network's.
	MgmtPrefix = netip.MustParsePrefix("2001:db8:e::/64")
)

// clusterRoles are the roles the cluster adds, and sweep looks for.
var clusterRoles = []string{HA1, HA2, HA3, E1, E2, E3, EtcdHub}

func init() {
	for _, r := range []string{HA1, HA2, HA3} {
		forwarding[r] = [2]bool{true, false}
	}
	for _, r := range []string{E1, E2, E3, EtcdHub} {
		forwarding[r] = [2]bool{false, false}
	}
}

// HARoles are the home agents' roles, by member.
var HARoles = []string{HA1, HA2, HA3}

// EtcdRoles are the etcd members' roles.
var EtcdRoles = []string{E1, E2, E3}

// MemberAddr6 and MemberAddr4 are member i's own addresses (0-based) on
// its link to core; MgmtAddr its address on the management network.
func MemberAddr6(i int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("2001:db8:ff0%d::1", i+1)) }
func MemberAddr4(i int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("198.51.100.%d", 17+4*i)) }
func MgmtAddr(i int) netip.Addr    { return netip.MustParseAddr(fmt.Sprintf("2001:db8:e::%d", i+1)) }

// EtcdAddr is etcd member i's address (0-based).
func EtcdAddr(i int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("2001:db8:e::1%d", i+1)) }

// EtcdEndpoints are the etcd members' client URLs.
func EtcdEndpoints() []string {
	var out []string
	for i := range EtcdRoles {
		out = append(out, fmt.Sprintf("http://[%s]:2379", EtcdAddr(i)))
	}
	return out
}

func (l *Lab) clusterOn() bool { return l.cluster.Members > 0 }

func (l *Lab) clusterRoleList() []string {
	if !l.clusterOn() {
		return nil
	}
	out := slices.Clone(HARoles[:l.cluster.Members])
	return append(out, E1, E2, E3, EtcdHub)
}

func (l *Lab) clusterLinks() []veth {
	if !l.clusterOn() {
		return nil
	}
	var out []veth
	for i, r := range HARoles[:l.cluster.Members] {
		out = append(out, veth{Core, r, r, HADev}, veth{EtcdHub, fmt.Sprintf("h%d", i+1), r, MgmtDev})
	}
	for i, r := range EtcdRoles {
		out = append(out, veth{EtcdHub, fmt.Sprintf("e%d", i+1), r, "eth0"})
	}
	return out
}

// clusterBatch adjusts a role's `ip -batch` to the cluster.
func (l *Lab) clusterBatch(role string, cmds []string) []string {
	if !l.clusterOn() {
		return cmds
	}
	switch role {
	case Core:
		// Core reaches the home agents' addresses by OSPF only.
		cmds = slices.DeleteFunc(slices.Clone(cmds), func(c string) bool {
			return strings.Contains(c, "dev ha") && c != "link set ha up"
		})
		for i, r := range HARoles[:l.cluster.Members] {
			cmds = append(cmds, "link set "+r+" up",
				fmt.Sprintf("addr add 2001:db8:ff0%d::2/64 dev %s nodad", i+1, r),
				fmt.Sprintf("addr add 198.51.100.%d/30 dev %s", 18+4*i, r))
		}
	case HA:
		return []string{"link set lo up", "link set eth0 up"}
	case HA1, HA2, HA3:
		i := slices.Index(HARoles, role)
		return []string{
			"link set lo up", "link set eth0 up", "link set " + MgmtDev + " up",
			fmt.Sprintf("addr add %s/64 dev eth0 nodad", MemberAddr6(i)),
			fmt.Sprintf("addr add %s/30 dev eth0", MemberAddr4(i)),
			fmt.Sprintf("addr add %s/64 dev %s nodad", MgmtAddr(i), MgmtDev),
			fmt.Sprintf("route add ::/0 via 2001:db8:ff0%d::2 dev eth0", i+1),
			fmt.Sprintf("route add 0.0.0.0/0 via 198.51.100.%d dev eth0", 18+4*i),
		}
	case E1, E2, E3:
		i := slices.Index(EtcdRoles, role)
		return []string{"link set lo up", "link set eth0 up", fmt.Sprintf("addr add %s/64 dev eth0 nodad", EtcdAddr(i))}
	case EtcdHub:
		out := []string{"link set lo up", "link add br0 type bridge", "link set br0 up"}
		for i := range l.cluster.Members {
			out = append(out, fmt.Sprintf("link set h%d master br0", i+1), fmt.Sprintf("link set h%d up", i+1))
		}
		for i := range EtcdRoles {
			out = append(out, fmt.Sprintf("link set e%d master br0", i+1), fmt.Sprintf("link set e%d up", i+1))
		}
		return out
	}
	return cmds
}

// clusterBirdConf is bird 2 in core or a home agent of the cluster:
// OSPFv3 and OSPFv2, point-to-point links, the home agents exporting their
// kernel routes of protocol 135 (the instances' addresses and the
// registered routers' routes) but the home link.
func clusterBirdConf(role, dir string, members int) string {
	id := "10.255.0.2"
	if i := slices.Index(HARoles, role); i >= 0 {
		id = fmt.Sprintf("10.255.1.%d", i+1)
	}
	common := fmt.Sprintf("router id %s;\nlog \"%s\" all;\nprotocol device { scan time 10; }\n", id, filepath.Join(dir, "bird-"+role+".log"))
	ospf := func(v, af, ifaces, export string) string {
		return fmt.Sprintf(`protocol ospf %s ospf%s {
	%s { import all; export %s; };
	tick 1;
	area 0 {
		interface %s { type ptp; hello 1; dead 4; retransmit 2; };
	};
}
`, v, v, af, export, ifaces)
	}
	if role != Core {
		return common + `protocol kernel kernel6 {
	ipv6 { import where krt_source = 135 && net != 2001:db8:ffff:1::/64; export none; };
	learn;
	scan time 1;
}
protocol kernel kernel4 {
	ipv4 { import where krt_source = 135; export none; };
	learn;
	scan time 1;
}
` + ospf("v3", "ipv6", `"eth0"`, "where source = RTS_INHERIT") + ospf("v2", "ipv4", `"eth0"`, "where source = RTS_INHERIT")
	}
	var ifs []string
	for _, r := range HARoles[:members] {
		ifs = append(ifs, `"`+r+`"`)
	}
	return common + `protocol kernel kernel6 {
	ipv6 { import none; export where source = RTS_OSPF || source = RTS_OSPF_EXT1 || source = RTS_OSPF_EXT2; };
	scan time 10;
}
protocol kernel kernel4 {
	ipv4 { import none; export where source = RTS_OSPF || source = RTS_OSPF_EXT1 || source = RTS_OSPF_EXT2; };
	scan time 10;
}
` + ospf("v3", "ipv6", strings.Join(ifs, ", "), "none") + ospf("v2", "ipv4", strings.Join(ifs, ", "), "none")
}

// startCluster runs bird in core and the home agents, and etcd.
func (l *Lab) startCluster(ctx context.Context) error {
	if !l.clusterOn() {
		return nil
	}
	for _, role := range append([]string{Core}, HARoles[:l.cluster.Members]...) {
		conf := filepath.Join(l.dir, "bird-"+role+".conf")
		if err := os.WriteFile(conf, []byte(clusterBirdConf(role, l.dir, l.cluster.Members)), 0o644); err != nil {
			return err
		}
		sock := filepath.Join(l.dir, "bird-"+role+".ctl")
		if _, err := l.Start(role, "bird-"+role, "bird", "-f", "-c", conf, "-s", sock); err != nil {
			return err
		}
	}
	if l.cluster.NoEtcd {
		return nil
	}
	for i := range EtcdRoles {
		if err := l.StartEtcd(i); err != nil {
			return err
		}
	}
	return l.WaitEtcd(ctx)
}

// etcdDir is where member i keeps its data: in memory where the machine
// has /dev/shm (an fsync there costs nothing: the tests measure the
// cluster, not the disk).
func (l *Lab) etcdDir(i int) string {
	base := l.dir
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = filepath.Join("/dev/shm", filepath.Base(l.dir))
	}
	return filepath.Join(base, fmt.Sprintf("etcd-e%d", i+1))
}

// StartEtcd starts etcd member i (0-based), in its namespace, with the
// data it had if it ran before.
func (l *Lab) StartEtcd(i int) error {
	var peers []string
	for j := range EtcdRoles {
		peers = append(peers, fmt.Sprintf("e%d=http://[%s]:2380", j+1, EtcdAddr(j)))
	}
	dir := l.etcdDir(i)
	state := "new"
	if _, err := os.Stat(dir); err == nil {
		state = "existing"
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	a := EtcdAddr(i)
	name := fmt.Sprintf("etcd-e%d", i+1)
	p, err := l.Start(EtcdRoles[i], name, "etcd", "--name", fmt.Sprintf("e%d", i+1), "--data-dir", dir,
		"--listen-peer-urls", fmt.Sprintf("http://[%s]:2380", a), "--initial-advertise-peer-urls", fmt.Sprintf("http://[%s]:2380", a),
		"--listen-client-urls", fmt.Sprintf("http://[%s]:2379", a), "--advertise-client-urls", fmt.Sprintf("http://[%s]:2379", a),
		"--initial-cluster", strings.Join(peers, ","), "--initial-cluster-state", state, "--initial-cluster-token", l.prefix,
		"--max-txn-ops", "1024", "--logger", "zap", "--log-level", "warn")
	if err != nil {
		return err
	}
	l.mu.Lock()
	if l.etcd == nil {
		l.etcd = map[int]*Proc{}
	}
	l.etcd[i] = p
	l.mu.Unlock()
	return nil
}

// Etcd returns etcd member i's process (nil if not running).
func (l *Lab) Etcd(i int) *Proc {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.etcd[i]
}

// WaitEtcd waits until every etcd member answers as healthy.
func (l *Lab) WaitEtcd(ctx context.Context) error {
	for {
		out, err := l.Run(ctx, E1, "env", "ETCDCTL_API=3", "etcdctl", "--endpoints", strings.Join(EtcdEndpoints(), ","),
			"--dial-timeout", "1s", "--command-timeout", "2s", "endpoint", "health")
		if err == nil && strings.Count(out, "is healthy") == len(EtcdRoles) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcd not healthy: %v: %s", ctx.Err(), out)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Partition cuts (on) or heals a home agent's management link with nft:
// it reaches etcd no more, while its traffic with core goes on.
func (l *Lab) Partition(role string, on bool) error {
	ctx, cancel := faultCtx()
	defer cancel()
	script := "add table inet nemolab_partition\ndelete table inet nemolab_partition\n"
	if on {
		script += `table inet nemolab_partition {
	chain in { type filter hook input priority -10; policy accept; iifname "` + MgmtDev + `" counter drop; }
	chain out { type filter hook output priority -10; policy accept; oifname "` + MgmtDev + `" counter drop; }
}
`
	}
	return l.nft(ctx, role, script)
}

// ClusterUCI is member i's configuration (0-based): the lab's home agent
// with a cluster section naming the lab's etcd and both instances.
func ClusterUCI(controlSocket string, i, leaseTTL int) string {
	return HomeAgentUCI(controlSocket) + fmt.Sprintf(`config cluster 'lab'
	list etcd_endpoint '%s'
	list etcd_endpoint '%s'
	list etcd_endpoint '%s'
	option node 'ha%d'
	option lease_ttl '%d'
	option switch_rate '20'
	option max_txn_ops '1024'
	list instance '%s %s'
`, EtcdEndpoints()[0], EtcdEndpoints()[1], EtcdEndpoints()[2], i+1, leaseTTL, InstanceB6, InstanceB4)
}

// clusterTeardown removes what lives outside the lab's directory.
func (l *Lab) clusterTeardown() {
	if !l.clusterOn() {
		return
	}
	for i := range EtcdRoles {
		os.RemoveAll(l.etcdDir(i))
	}
	os.Remove(filepath.Dir(l.etcdDir(0)))
}
