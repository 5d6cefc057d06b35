package ubusd

import (
	"fmt"
	"net"
	"os/user"
	"strconv"

	"golang.org/x/sys/unix"
)

// peerIdentity reads the client's uid and gid (SO_PEERCRED) and their
// names, as ubusd does; a uid or gid without a name refuses the client,
// as in ubusd.
func peerIdentity(c *net.UnixConn) (Identity, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Identity{}, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Identity{}, err
	}
	if cerr != nil {
		return Identity{}, fmt.Errorf("SO_PEERCRED: %w", cerr)
	}
	u, err := user.LookupId(strconv.FormatUint(uint64(cred.Uid), 10))
	if err != nil {
		return Identity{}, err
	}
	g, err := user.LookupGroupId(strconv.FormatUint(uint64(cred.Gid), 10))
	if err != nil {
		return Identity{}, err
	}
	return Identity{User: u.Username, Group: g.Name, UID: cred.Uid, GID: cred.Gid}, nil
}
