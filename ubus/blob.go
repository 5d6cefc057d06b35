package ubus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// The blob attribute header is one big-endian word: bit 31 is the extended
// flag (set on blobmsg attributes), bits 30..24 the id or type, bits 23..0
// the length of header and payload without the padding that follows.
const (
	blobExtended = 0x80000000
	blobIDMask   = 0x7f000000
	blobIDShift  = 24
	blobLenMask  = 0x00ffffff
	blobHdrLen   = 4
)

// MaxMessageLen is the largest message container ubusd accepts; longer
// ones make it drop the connection.
const MaxMessageLen = 1 << 20

// MaxDepth bounds the nesting of blobmsg tables and arrays the decoder
// accepts, so that hostile input cannot make it recurse without end. Real
// traffic nests a handful of levels (netifd's status: four).
const MaxDepth = 64

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("malformed")

// DecodeError says where and why input could not be decoded.
type DecodeError struct {
	What   string // "message", "blobmsg", ...
	Off    int    // octet offset in the input that was given to the decoder
	Reason string
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("ubus: %s at offset %d: %s", e.What, e.Off, e.Reason)
}

func (e *DecodeError) Unwrap() error { return ErrMalformed }

func pad4(n int) int { return (n + 3) &^ 3 }

// attr is one blob attribute split from a buffer.
type attr struct {
	id      uint8
	ext     bool
	payload []byte
	off     int // offset of the header in the buffer that was split
}

// splitAttrs cuts a container payload into its attributes. It insists on
// the canonical form libubox writes: every length covers at least the
// header, padding is present and zero, and nothing is left over, so that
// re-encoding what it accepts gives back the same bytes.
func splitAttrs(b []byte, base int, what string) ([]attr, error) {
	var out []attr
	off := 0
	for off < len(b) {
		if len(b)-off < blobHdrLen {
			return nil, &DecodeError{what, base + off, "truncated attribute header"}
		}
		w := binary.BigEndian.Uint32(b[off:])
		l := int(w & blobLenMask)
		if l < blobHdrLen {
			return nil, &DecodeError{what, base + off, fmt.Sprintf("attribute length %d is shorter than its header", l)}
		}
		if l > len(b)-off {
			return nil, &DecodeError{what, base + off, fmt.Sprintf("attribute length %d runs past the end (%d bytes left)", l, len(b)-off)}
		}
		p := pad4(l)
		if p > len(b)-off {
			return nil, &DecodeError{what, base + off + l, "padding missing after the attribute"}
		}
		for i := off + l; i < off+p; i++ {
			if b[i] != 0 {
				return nil, &DecodeError{what, base + i, "non-zero padding"}
			}
		}
		out = append(out, attr{
			id:      uint8((w & blobIDMask) >> blobIDShift),
			ext:     w&blobExtended != 0,
			payload: b[off+blobHdrLen : off+l],
			off:     base + off,
		})
		off += p
	}
	return out, nil
}

// beginAttr appends a header placeholder; endAttr fills it in once the
// payload is in place and pads to 4.
func beginAttr(b []byte) ([]byte, int) {
	return append(b, 0, 0, 0, 0), len(b)
}

func endAttr(b []byte, start int, id uint8, ext bool) []byte {
	l := len(b) - start
	w := uint32(id)<<blobIDShift&blobIDMask | uint32(l)&blobLenMask
	if ext {
		w |= blobExtended
	}
	binary.BigEndian.PutUint32(b[start:], w)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func appendRawAttr(b []byte, id uint8, payload []byte) []byte {
	b, s := beginAttr(b)
	b = append(b, payload...)
	return endAttr(b, s, id, false)
}

// cString checks a NUL-terminated payload with no NUL inside.
func cString(p []byte) (string, bool) {
	if len(p) == 0 || p[len(p)-1] != 0 || bytes.IndexByte(p[:len(p)-1], 0) >= 0 {
		return "", false
	}
	return string(p[:len(p)-1]), true
}
