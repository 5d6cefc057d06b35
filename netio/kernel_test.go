package netio

import (
	"bytes"
	"compress/gzip"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"nemod/nemo"
)

// What a Mobile IPv6 kernel hands a Mobility Header socket (source and
// Home Address option swapped) is rebuilt into the wire form: the binding
// cache parses it, finds the care-of address as source, the home address
// in the option, and the checksum right.
func TestRebuildHAOPacket(t *testing.T) {
	coa := netip.MustParseAddr("2001:db8:a::2")
	hoa := netip.MustParseAddr("2001:db8:ffff:1::100")
	ha := netip.MustParseAddr("2001:db8:ffff::1")
	mh, _ := nemo.Marshal(&nemo.BindingUpdate{Seq: 7, Flags: nemo.BUFlagA | nemo.BUFlagH})
	wire, err := nemo.AppendPacket(nil, coa, ha, hoa, netip.Addr{}, 64, mh)
	if err != nil {
		t.Fatal(err)
	}
	orig, _ := nemo.ParsePacket(wire)
	// The kernel's view: source = home address, option = care-of address.
	c := coa.As16()
	dstopts := append([]byte{135, 2, 1, 2, 0, 0, 0xc9, 16}, c[:]...)
	got, err := RebuildHAOPacket(nil, hoa, ha, dstopts, orig.MH)
	if err != nil {
		t.Fatal(err)
	}
	p, err := nemo.ParsePacket(got)
	if err != nil {
		t.Fatal(err)
	}
	if p.Src != coa || p.HomeAddress != hoa || p.Dst != ha || !nemo.VerifyChecksum(p.MH, p.PseudoSrc(), p.PseudoDst()) {
		t.Fatalf("rebuilt %+v", p)
	}
	// Without the option: as delivered.
	got, _ = RebuildHAOPacket(nil, hoa, ha, nil, orig.MH)
	if p, err := nemo.ParsePacket(got); err != nil || p.Src != hoa || p.HomeAddress.IsValid() {
		t.Fatalf("no option: %+v %v", p, err)
	}
}

func TestConfigHas(t *testing.T) {
	cfg := []byte("# CONFIG_IPV6_MIP6 is not set\nCONFIG_IPV6=y\n")
	if configHas(cfg, "CONFIG_IPV6_MIP6", "y") || !configHas(cfg, "CONFIG_IPV6", "y") {
		t.Fatal("configHas")
	}
	if configHas([]byte("CONFIG_IPV6_MIP6=m\n"), "CONFIG_IPV6_MIP6", "y") {
		t.Fatal("a module counts only when loaded")
	}
	// This machine's kernel has no Mobile IPv6: the packet socket is used.
	if KernelMIP6() {
		t.Log("this kernel processes the Home Address option itself")
	}
}

// The machines nemod runs on (and this one) have UDP segmentation: the
// probe must say so, or the fast encapsulation would never be offered.
func TestUDPSegmentation(t *testing.T) {
	if !UDPSegmentation() {
		t.Fatal("this kernel does not segment UDP, or the probe cannot tell")
	}
}

// The kernel's compressed configuration is read in the full build and is
// an unknown in the router-only one, never a "no"; a loaded module is known
// in both.
func TestReadConfigGzip(t *testing.T) {
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	z.Write([]byte("CONFIG_IPV6=y\n"))
	z.Close()
	path := filepath.Join(t.TempDir(), "config.gz")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := readConfig(path)
	if routerOnly {
		if !errors.Is(err, errNoGzip) || data != nil {
			t.Fatalf("router-only build: %q, %v", data, err)
		}
	} else if err != nil || !configHas(data, "CONFIG_IPV6", "y") {
		t.Fatalf("full build: %q, %v", data, err)
	}
	if _, err := os.Stat("/sys/module/ipv6"); err == nil {
		if has, known := KernelCheck("CONFIG_NO_SUCH_OPTION", "ipv6"); !has || !known {
			t.Errorf("a loaded module: %v %v", has, known)
		}
	}
}
