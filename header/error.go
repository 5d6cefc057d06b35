package header

import "strconv"

// Error describes a header that did not pass a validity gate: which
// header, which field, at which octet offset of the buffer given to the
// gate, and why.
type Error struct {
	Header string // "IPv6", "IPv4", "extension header", ...
	Field  string
	Off    int
	Reason string
}

func (e *Error) Error() string {
	return e.Header + " " + e.Field + " at offset " + strconv.Itoa(e.Off) + ": " + e.Reason
}

func errAt(hdr, field string, off int, reason string) error {
	return &Error{Header: hdr, Field: field, Off: off, Reason: reason}
}

func itoa(v int) string { return strconv.Itoa(v) }
