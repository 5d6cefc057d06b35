package netio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// KernelMIP6 reports whether the running kernel processes Mobile IPv6's
// Home Address option itself (CONFIG_IPV6_MIP6, built in or loaded): it
// then delivers Binding Updates to a Mobility Header socket, and the packet
// socket is not needed.
func KernelMIP6() bool { return KernelHas("CONFIG_IPV6_MIP6", "mip6") }

// KernelHas reports whether the running kernel has a feature: built in
// (option=y in its configuration) or its module loaded. A kernel whose
// configuration this build cannot read counts as not having it; KernelCheck
// tells the two apart.
func KernelHas(option, module string) bool {
	has, _ := KernelCheck(option, module)
	return has
}

// KernelCheck reports whether the running kernel has a feature, and whether
// that answer is known: the router-only build does not read the compressed
// /proc/config.gz (see kernel_routeronly.go), so a kernel that has only that
// and not the module loaded is unknown there.
func KernelCheck(option, module string) (has, known bool) {
	if _, err := os.Stat("/sys/module/" + module); err == nil {
		return true, true
	}
	var uname unix.Utsname
	release := ""
	if unix.Uname(&uname) == nil {
		release = unix.ByteSliceToString(uname.Release[:])
	}
	known = true
	for _, path := range []string{"/proc/config.gz", "/boot/config-" + release} {
		data, err := readConfig(path)
		if errors.Is(err, errNoGzip) {
			// A configuration this build cannot read: unknown, unless
			// the next one answers.
			known = false
			continue
		}
		if err != nil {
			continue
		}
		// A module that is not loaded does not count (checked above).
		return configHas(data, option, "y"), true
	}
	return false, known
}

func readConfig(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gunzip(f)
		if err != nil {
			return nil, err
		}
		defer gz.Close()
		r = gz
	}
	return io.ReadAll(io.LimitReader(r, 16<<20))
}

// configHas reports whether a kernel configuration sets name to value.
func configHas(config []byte, name, value string) bool {
	for _, line := range bytes.Split(config, []byte("\n")) {
		if string(bytes.TrimSpace(line)) == name+"="+value {
			return true
		}
	}
	return false
}

// MHListener receives Mobility Header packets through the kernel's own
// Mobile IPv6 path: a raw socket for protocol 135 that also reports the
// destination options and the packet's destination address.
type MHListener struct {
	rc  syscall.RawConn
	f   *os.File
	oob []byte
}

// Socket options of RFC 3542 (not all named in x/sys for every arch).
const (
	ipv6RecvPktinfo  = 49
	ipv6Pktinfo      = 50
	ipv6RecvDstopts  = 58
	ipv6Dstopts      = 59
	ipv6RecvRthdr    = 56
	sizeofPktinfo    = 20
	mhProto          = 135
	optHomeAddress   = 0xc9
	nextHeaderDstOpt = 60
)

// ListenMH opens the Mobility Header socket.
func ListenMH() (*MHListener, error) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, mhProto)
	if err != nil {
		return nil, fmt.Errorf("mobility header socket: %w", err)
	}
	for _, opt := range []int{ipv6RecvPktinfo, ipv6RecvDstopts, ipv6RecvRthdr} {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, opt, 1); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("mobility header socket: option %d: %w", opt, err)
		}
	}
	f := os.NewFile(uintptr(fd), "mh")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &MHListener{rc: rc, f: f, oob: make([]byte, 1024)}, nil
}

// Read reads the next Mobility Header packet into buf, rebuilt as it was
// on the wire (see RebuildHAOPacket). The interface is not known (0).
func (l *MHListener) Read(buf []byte) (n, ifindex int, err error) {
	p, err := l.read(buf)
	if err != nil {
		return 0, 0, err
	}
	if len(p) > len(buf) {
		return 0, 0, ErrTruncated
	}
	return copy(buf, p), 0, nil
}

func (l *MHListener) read(buf []byte) ([]byte, error) {
	mh := make([]byte, 2048)
	var (
		n, oobn int
		from    unix.Sockaddr
		err     error
	)
	rerr := l.rc.Read(func(fd uintptr) bool {
		n, oobn, _, from, err = unix.Recvmsg(int(fd), mh, l.oob, 0)
		return !errors.Is(err, unix.EAGAIN)
	})
	if rerr != nil {
		return nil, rerr
	}
	if err != nil {
		return nil, err
	}
	sa, ok := from.(*unix.SockaddrInet6)
	if !ok {
		return nil, errors.New("mobility header socket: not an IPv6 source")
	}
	var dst netip.Addr
	var dstopts []byte
	msgs, err := unix.ParseSocketControlMessage(l.oob[:oobn])
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		if m.Header.Level != unix.IPPROTO_IPV6 {
			continue
		}
		switch m.Header.Type {
		case ipv6Pktinfo:
			if len(m.Data) >= sizeofPktinfo {
				dst = netip.AddrFrom16([16]byte(m.Data[:16]))
			}
		case ipv6Dstopts:
			dstopts = m.Data
		}
	}
	return RebuildHAOPacket(buf[:0:len(buf)], netip.AddrFrom16(sa.Addr), dst, dstopts, mh[:n])
}

// Close closes the socket.
func (l *MHListener) Close() error { return l.f.Close() }

// RebuildHAOPacket rebuilds the wire form of a packet a Mobile IPv6 kernel
// delivered: the kernel has swapped the Home Address option's address
// with the IPv6 source (RFC 6275 §9.3.1), so src is the home address and
// the option in dstopts holds the care-of address. The result is an IPv6
// packet from the care-of address with the Home Address option, the form
// the binding cache reads off a packet socket on other kernels. Without a
// Home Address option the packet is rebuilt from src as it is.
func RebuildHAOPacket(b []byte, src, dst netip.Addr, dstopts, mh []byte) ([]byte, error) {
	if !src.Is6() || !dst.Is6() {
		return b, errors.New("rebuild: need IPv6 source and destination")
	}
	coa, hoa := src, netip.Addr{}
	if a, ok := homeAddressOption(dstopts); ok {
		coa, hoa = a, src
	}
	plen := len(mh)
	next := uint8(mhProto)
	if hoa.IsValid() {
		plen += 24
		next = nextHeaderDstOpt
	}
	if plen > 0xffff {
		return b, errors.New("rebuild: packet too long")
	}
	b = append(b, 0x60, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(plen))
	b = append(b, next, 64)
	s, d := coa.As16(), dst.As16()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	if hoa.IsValid() {
		h := hoa.As16()
		b = append(b, mhProto, 2, 1, 2, 0, 0, optHomeAddress, 16)
		b = append(b, h[:]...)
	}
	return append(b, mh...), nil
}

// homeAddressOption finds the Home Address option in a destination options
// header (as the IPV6_DSTOPTS control message carries it).
func homeAddressOption(h []byte) (netip.Addr, bool) {
	if len(h) < 2 {
		return netip.Addr{}, false
	}
	end := min(len(h), (int(h[1])+1)*8)
	for o := 2; o < end; {
		if h[o] == 0 {
			o++
			continue
		}
		if o+2 > end || o+2+int(h[o+1]) > end {
			break
		}
		if h[o] == optHomeAddress && h[o+1] == 16 {
			return netip.AddrFrom16([16]byte(h[o+2 : o+18])), true
		}
		o += 2 + int(h[o+1])
	}
	return netip.Addr{}, false
}
