//go:build routeronly

package netio

import (
	"errors"
	"io"
)

// errNoGzip: the router-only build has no gzip reader. Its only use would
// be /proc/config.gz, which OpenWrt's kernels do not have by default
// (CONFIG_IKCONFIG_PROC is off), and it costs the binary about 70 KB.
// A kernel feature that only that file could tell is reported unknown.
var errNoGzip = errors.New("the router-only build reads no gzip'd kernel configuration")

func gunzip(io.Reader) (io.ReadCloser, error) { return nil, errNoGzip }

const routerOnly = true
