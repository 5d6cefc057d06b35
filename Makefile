# nemod: see README.md. `make demo` and `make test` are the whole set-up on a
# fresh Debian 12 machine as root.

GO        ?= go
GOBIN     := $(shell $(GO) env GOPATH)/bin
LDFLAGS   := -s -w
BUILD     := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'
# Packages with no I/O: unit tested, fuzzed and run under qemu on other CPUs.
PURE_PKGS := ./header/... ./nemo/... ./config/... ./policy/... ./binding/... ./ifmon/... ./status/... ./dhcp4/... ./dhcpv6pd ./ra ./ubus/... ./netifd/... ./setup/... ./internal/logsum/... ./internal/pubsched/... ./owrt/...
FUZZTIME  ?= 100000x
AAA_IO_TESTS := ^Test(FreeRADIUS|Radclient|Client|NewClient|DynAuth|ListenDynAuth)

.PHONY: all build cross deps lint unit race fuzz-smoke fuzz qemu e2e test demo \
        bench bench-codec bench-ha bench-throughput bench-failover clean package deb

all: build

build:
	$(BUILD) -o bin/nemod ./cmd/nemod

# Static binaries for the router CPUs OpenWrt runs on (softfloat: most MIPS
# routers have no FPU) and for the home agent's server.
cross:
	GOOS=linux GOARCH=mips   GOMIPS=softfloat $(BUILD) -o bin/nemod-linux-mips   ./cmd/nemod
	GOOS=linux GOARCH=mipsle GOMIPS=softfloat $(BUILD) -o bin/nemod-linux-mipsle ./cmd/nemod
	GOOS=linux GOARCH=arm    GOARM=7          $(BUILD) -o bin/nemod-linux-arm    ./cmd/nemod
	GOOS=linux GOARCH=arm64                   $(BUILD) -o bin/nemod-linux-arm64  ./cmd/nemod
	GOOS=linux GOARCH=amd64                   $(BUILD) -o bin/nemod-linux-amd64  ./cmd/nemod
	@ls -l bin/nemod-linux-*

# OpenWrt packages (router-only binary): .ipk for 24.10 and older and
# .apk for 25.12 and later, for every architecture nemopkg knows, in dist/
# (the .apk files in dist/apk/ARCH/). ARCH=mipsel_24kc,x86_64 picks some.
# Reproducible: SOURCE_DATE_EPOCH or the last commit's time.
package:
	$(GO) run ./cmd/nemopkg -out dist -formats ipk,apk -openwrt-arch $(or $(ARCH),all)

# Debian packages (full binary, systemd units) for amd64 and arm64 in dist/.
deb:
	$(GO) run ./cmd/nemopkg -out dist -formats deb -deb-arch $(or $(DEB_ARCH),all)

deps:
	@scripts/deps.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go') $$(git ls-files -o --exclude-standard '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	$(GO) vet ./...
	@# Every package (tests too) must build for the 32-bit and big-endian
	@# router CPUs, where syscall structs have other field widths.
	GOARCH=mips GOMIPS=softfloat $(GO) vet ./...
	GOARCH=arm GOARM=7 $(GO) vet ./...
	$(GOBIN)/staticcheck ./...

# Every package, with the race detector; the end-to-end tests in lab/ build
# the daemons with -race too.
unit race:
	$(GO) test -race -count=1 -timeout 15m ./...

fuzz-smoke:
	@scripts/fuzz.sh $(FUZZTIME)

fuzz:
	@scripts/fuzz.sh $(or $(FUZZ_FOR),60s)

qemu:
	@cross/qemu-test.sh $(PURE_PKGS)
	@# aaa's pure core; its shells' tests (sockets, FreeRADIUS) run natively.
	@cross/qemu-test.sh -skip '$(AAA_IO_TESTS)' ./aaa

test: deps lint unit fuzz-smoke qemu

demo: deps build
	$(GO) run ./cmd/nemolab demo -nemod bin/nemod

bench-codec:
	$(GO) test -run '^$$' -bench . -benchmem ./nemo/

# A real home agent, 10,000 mobile routers with two bindings each over
# loopback, authenticated: registrations per second, memory per binding;
# then the same routers known only to a FreeRADIUS beside the home agent
# (authorization cache cold, then warm); then three home agents sharing
# their binding cache in a three-member etcd on this machine.
bench-ha: deps build
	$(GO) run ./bench/haload -nemod bin/nemod -routers $(or $(ROUTERS),10000)
	$(GO) run ./bench/haload -nemod bin/nemod -routers $(or $(ROUTERS),10000) -radius
	$(GO) run ./bench/haload -nemod bin/nemod -routers $(or $(ROUTERS),10000) -cluster

# One TCP stream each way between the LAN host and the correspondent, in
# the lab: plain routing, wireguard-go, nemod as shipped (encap 'auto',
# negotiated) beside its IPv6-in-IPv6, UDP/IPv4 and UDP/IPv6 tunnels, side
# by side, and the same carrying IPv4 (RFC 5555), with the daemons' CPU and
# the ratios to the targets. REPEAT=3 reports the median of three fresh
# labs per case.
bench-throughput: deps build
	$(GO) run ./bench/throughput -nemod bin/nemod -repeat $(or $(REPEAT),1)

# Failover in the lab: a 1000 packets/s UDP stream each way, a duplicated
# flow and a TCP transfer through the faults (Wi-Fi carrier lost, Wi-Fi
# black-holed for 5, 30 and 120 s, cellular NAT mapping dropped, an idle
# Wi-Fi black-holed, 5 % random loss busy and idle), the first three again
# over IPv4 (a4, b4, c4): longest gap and packets lost per direction,
# detection and recovery, false failovers, the idle probes' bit rate, TCP
# survival, the targets. TRIALS=n per fault, LONG_TRIALS=n per long one
# (about 25 minutes with the defaults).
bench-failover: deps build
	$(GO) run ./bench/failover -nemod bin/nemod -trials $(or $(TRIALS),10) -long-trials $(or $(LONG_TRIALS),3)

clean:
	rm -rf bin dist
