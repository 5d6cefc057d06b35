package nemo

import (
	"errors"
	"strconv"
)

// Error describes input that could not be decoded or a value that cannot be
// encoded. Off is the octet offset from the start of the Mobility Header (or
// of the IPv6 packet, traffic selector or UDP payload being decoded), or -1
// when no offset applies.
type Error struct {
	Msg    string // what was being processed: "Binding Update", "BID option", ...
	Field  string // the field at fault
	Off    int
	Reason string
	// Status is the Binding Acknowledgement status a home agent answers
	// this error with (e.g. 164 for a malformed BID option); 0 when the
	// message is dropped without an answer.
	Status uint8
}

func (e *Error) Error() string {
	s := e.Msg + ": " + e.Field
	if e.Off >= 0 {
		s += " at offset " + strconv.Itoa(e.Off)
	}
	return s + ": " + e.Reason
}

func errAt(msg, field string, off int, reason string) error {
	return &Error{Msg: msg, Field: field, Off: off, Reason: reason}
}

// Sentinel errors for conditions callers act on.
var (
	// ErrAuth: the authenticator does not match (answer with status 146).
	ErrAuth = errors.New("nemo: authentication failed")
	// ErrNoAuth: no MN-HA authentication option (answer with status 146).
	ErrNoAuth = errors.New("nemo: no MN-HA authentication option")
	// ErrTimestamp: the replay protection timestamp is outside the window
	// or not newer than the last accepted one (answer with status 144).
	ErrTimestamp = errors.New("nemo: timestamp outside the replay window")
	// ErrNoTimestamp: the replay protection option is missing (status 145).
	ErrNoTimestamp = errors.New("nemo: no replay protection option")
	// ErrChecksum: the Mobility Header checksum is wrong (drop silently).
	ErrChecksum = errors.New("nemo: bad Mobility Header checksum")
	// ErrNotMH: the packet does not carry a Mobility Header.
	ErrNotMH = errors.New("nemo: not a Mobility Header packet")
)
