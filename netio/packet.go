package netio

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

const ethPIPv6 = 0x86dd

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// extHeaderFilter accepts IPv6 packets whose first next header is a routing
// (43) or destination options (60) header: the Binding Updates and
// Acknowledgements of Mobile IPv6. Everything else stays in the kernel, so
// the socket costs nothing for ordinary traffic. The packet socket is of
// type SOCK_DGRAM: offset 0 is the IPv6 header.
var extHeaderFilter = mustAssemble([]bpf.Instruction{
	bpf.LoadAbsolute{Off: 0, Size: 1},
	bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 6, SkipTrue: 4},
	bpf.LoadAbsolute{Off: 6, Size: 1},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: 43, SkipTrue: 1},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 60, SkipTrue: 1},
	bpf.RetConstant{Val: 0xffff},
	bpf.RetConstant{Val: 0},
})

func mustAssemble(prog []bpf.Instruction) []unix.SockFilter {
	raw, err := bpf.Assemble(prog)
	if err != nil {
		panic(err)
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out
}

// PacketListener receives IPv6 packets carrying extension headers from a
// packet socket, on one interface or all of them.
type PacketListener struct {
	f  *os.File
	rc syscall.RawConn
}

// ListenExtHeaders opens the packet socket on the interface with index
// ifindex (0: every interface). Packets the host sends itself are ignored.
func ListenExtHeaders(ifindex int) (*PacketListener, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	fail := func(what string, err error) (*PacketListener, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("packet socket: %s: %w", what, err)
	}
	// Attach the filter before binding, so that no unfiltered packet is
	// ever queued.
	prog := unix.SockFprog{Len: uint16(len(extHeaderFilter)), Filter: &extHeaderFilter[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
		return fail("attach filter", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fail("ignore outgoing", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(ethPIPv6), Ifindex: ifindex}); err != nil {
		return fail("bind", err)
	}
	f := os.NewFile(uintptr(fd), "packet")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &PacketListener{f: f, rc: rc}, nil
}

// Read blocks for the next packet and returns its length and the index of
// the interface it arrived on.
func (l *PacketListener) Read(b []byte) (n, ifindex int, err error) {
	var from unix.Sockaddr
	rerr := l.rc.Read(func(fd uintptr) bool {
		n, from, err = unix.Recvfrom(int(fd), b, 0)
		return !errors.Is(err, unix.EAGAIN)
	})
	if rerr != nil {
		return 0, 0, rerr
	}
	if err != nil {
		return 0, 0, err
	}
	if ll, ok := from.(*unix.SockaddrLinklayer); ok {
		ifindex = ll.Ifindex
	}
	return n, ifindex, nil
}

// Close stops the listener; a blocked Read returns an error.
func (l *PacketListener) Close() error { return l.f.Close() }

// IsClosed reports whether err comes from reading a closed socket.
func IsClosed(err error) bool { return errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed) }
