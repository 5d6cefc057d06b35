//go:build !routeronly

package netio

import (
	"compress/gzip"
	"errors"
	"io"
)

// errNoGzip is what gunzip returns in a build without a gzip reader; this
// one has it.
var errNoGzip = errors.New("this build reads no gzip")

func gunzip(r io.Reader) (io.ReadCloser, error) { return gzip.NewReader(r) }

const routerOnly = false
