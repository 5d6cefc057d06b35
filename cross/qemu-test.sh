#!/bin/sh
# Runs the tests of the given (pure, I/O-free) packages on the CPUs nemod
# ships for, under qemu-user: big-endian MIPS catches byte-order mistakes,
# 32-bit ARM and MIPS catch alignment and int-size ones.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || { echo "usage: $0 PKG..." >&2; exit 2; }
for arch in mips mipsle arm arm64; do
	case $arch in
	mips|mipsle) cpu=24Kc; export GOMIPS=softfloat ;;
	arm) cpu=cortex-a7; export GOARM=7 ;;
	arm64) cpu=cortex-a53 ;;
	esac
	command -v "qemu-$arch-static" >/dev/null ||
		{ echo "qemu-$arch-static missing (apt-get install qemu-user-static)" >&2; exit 1; }
	echo "qemu: $arch ($cpu)"
	GOOS=linux GOARCH=$arch CGO_ENABLED=0 QEMU_CPU=$cpu QEMU_ARCH=$arch \
		go test -count=1 -exec "$here/qemu-exec" "$@"
done
