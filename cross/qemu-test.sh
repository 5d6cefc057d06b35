#!/bin/sh
# Runs the tests of the given (pure, I/O-free) packages on the CPUs nemod
# ships for, under qemu-user: big-endian MIPS catches byte-order mistakes,
# 32-bit ARM and MIPS catch alignment and int-size ones.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || { echo "usage: $0 PKG..." >&2; exit 2; }
for arch in mips mipsle arm arm64; do
	# qemu names the CPUs its own way: mipsel, aarch64.
	case $arch in
	mips) q=mips cpu=24Kc; export GOMIPS=softfloat ;;
	mipsle) q=mipsel cpu=24Kc; export GOMIPS=softfloat ;;
	arm) q=arm cpu=cortex-a7; export GOARM=7 ;;
	arm64) q=aarch64 cpu=cortex-a53 ;;
	esac
	command -v "qemu-$q-static" >/dev/null ||
		{ echo "qemu-$q-static missing (apt-get install qemu-user-static)" >&2; exit 1; }
	echo "qemu: $arch ($cpu)"
	GOOS=linux GOARCH=$arch CGO_ENABLED=0 QEMU_CPU=$cpu QEMU_ARCH=$q \
		go test -count=1 -exec "$here/qemu-exec" "$@"
done
