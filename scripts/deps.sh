#!/bin/sh
# Installs what `make test`, `make demo` and the benchmarks need and this
# machine lacks. Debian 12 packages come from apt; Go tools from the module
# proxy. Safe to run again: it only installs what is missing.
set -eu

need_pkgs=""
want() { # want COMMAND PACKAGE
	command -v "$1" >/dev/null 2>&1 || need_pkgs="$need_pkgs $2"
}
want ip iproute2
want nft nftables
want tshark tshark
want dumpcap tshark
want qemu-mips-static qemu-user-static
want radvd radvd
want iperf3 iperf3
# The LAN host's DHCPv4 client in the lab (udhcpc).
want busybox busybox
want ping iputils-ping
want conntrack conntrack
want sysctl procps
want tc iproute2
want wg wireguard-tools
want ethtool ethtool
# metrics: Prometheus's own checker reads our scrapes.
want promtool prometheus
# dbusapi: a real bus, and the bus's own clients as checkers; throwaway
# users to try the policy as.
want dbus-daemon dbus-daemon
want dbus-monitor dbus-bin
want busctl systemd
want gdbus libglib2.0-bin
want setpriv util-linux
# The installed .deb's daemons run with a private /run (nemopkg's test).
want unshare util-linux
want mount mount
want env coreutils
want useradd passwd
want groupadd passwd
# fleetweb: the page in a real browser, and a font for its screenshots.
want chromium chromium
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_pkgs="$need_pkgs fonts-dejavu-core"
# Packaging checks: the scripts, the .deb, the units, the init script's
# procd calls under busybox's shell (OpenWrt's).
want shellcheck shellcheck
want lintian lintian
want dpkg-deb dpkg
want systemd-analyze systemd
want systemd-sysusers systemd
want busybox busybox
# The DHCPv6 prefix delegation tests relay to a real Kea.
want kea-dhcp6 kea-dhcp6-server
# The aaa package's tests run a real FreeRADIUS and send with its radclient.
want freeradius freeradius
want radclient freeradius-utils
# The home agent announces the registered routes to a routing daemon the
# operator runs; the lab's core and home agent run bird 2 (OSPFv3).
want bird bird2
want birdc bird2
# The cluster of home agents shares its binding cache in etcd: the tests
# start a three-member etcd of Debian's.
want etcd etcd-server
want etcdctl etcd-client
# scapy is checked against Debian's own interpreter, not any python3 on PATH.
/usr/bin/python3 -c 'import scapy' >/dev/null 2>&1 || need_pkgs="$need_pkgs python3-scapy"

if [ -n "$need_pkgs" ]; then
	echo "deps: installing$need_pkgs"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $need_pkgs >/dev/null
fi

gobin=$(go env GOPATH)/bin
if [ ! -x "$gobin/staticcheck" ]; then
	echo "deps: installing staticcheck"
	go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
