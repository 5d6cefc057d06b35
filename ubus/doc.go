// Package ubus speaks OpenWrt's ubus protocol in pure Go: the blob and
// blobmsg codec, the message format, and a client that calls methods,
// publishes objects, sends and listens to events and subscribes to
// notifications, reconnecting when ubusd restarts. Package ubus/ubusd is a
// broker that speaks it too.
//
// # Wire format
//
// A message is an 8-byte header (version 0, type, sequence number, peer;
// big-endian) followed by one blob attribute with id 0 whose payload is the
// message's attributes (AttrStatus, AttrObjID, ...). A blob attribute is a
// big-endian word (extended bit, 7-bit id, 24-bit length counting the word)
// and its payload, padded with zeros to a multiple of 4. blobmsg attributes
// have the extended bit set, their id is the value Type, and their payload
// starts with a name. Values decode to Table, Array, String, Int64, Int32,
// Int16, Int8 (also booleans), Double and Null, which encode back to the
// same bytes: decoders accept only the canonical form libubox writes (zero
// padding, exact scalar sizes, named table members, unnamed array
// elements) and never panic; errors wrap ErrMalformed and say where.
//
// ParseJSON and FormatJSON convert between tables and JSON with the types
// and the layout of the ubus command line tool.
package ubus
