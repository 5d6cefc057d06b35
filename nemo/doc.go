// Package nemo encodes and decodes Mobile IPv6 and NEMO signalling: the
// Mobility Header (RFC 6275) with its messages and options, the Home Address
// destination option and the type 2 routing header, the NEMO, multiple care-of
// address, flow binding, DSMIPv6 and traffic selector extensions (RFC 3963,
// 5648, 6089, 6088, 5555), the Home Agent Switch and Binding Revocation
// messages (RFC 5142, 5846), Experimental and Vendor Specific extensions
// (RFC 5096, 5094) and RFC 4285 authentication.
//
// The package does no I/O. Decoders never panic and never read past their
// input; a decoding error names the message, the field and the octet offset
// from the start of the Mobility Header (*Error). Decoded byte slices alias the
// input buffer: copy them before reusing it.
//
// Where the RFC texts disagree on a number, this package uses the one IANA
// assigned: Flow Summary is option 44 and Flow Identification 45; IPv4
// Home Address is 29 and IPv4 Address Acknowledgement 30.
//
// RFC 4285 leaves open which addresses an authenticator covers when a message
// travels without a Home Address option (inside UDP, RFC 5555) and for the
// Binding Acknowledgement. This package uses one rule for both directions:
// "care-of address" is the mobile router's end of the IPv6 header that
// carries the Mobility Header (its source for a Binding Update, its
// destination for a Binding Acknowledgement) and "home address" is the
// address from the Home Address option or type 2 routing header, or that same
// address when there is none.
package nemo
