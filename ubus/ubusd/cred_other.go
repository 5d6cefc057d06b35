//go:build !linux

package ubusd

import (
	"errors"
	"net"
)

func peerIdentity(*net.UnixConn) (Identity, error) {
	return Identity{}, errors.New("ubusd: no peer credentials on this system")
}
