// Package ubus speaks OpenWrt's ubus protocol in pure Go, without libubus:
// the blob and blobmsg codec, the message format, and a client that calls
// methods, publishes objects, sends and listens to events and subscribes
// to notifications, reconnecting when ubusd restarts. Package ubus/ubusd
// is a broker that speaks it too.
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
// elements, nesting up to MaxDepth) and never panic; errors wrap
// ErrMalformed and say where. ParseMessage and Message.Marshal handle
// whole messages, ReadFrame cuts them from a stream.
//
// ParseJSON and FormatJSON convert between tables and JSON with the types
// and the layout of the ubus command line tool (integers INT32 or INT64 by
// range, booleans INT8, null UNSPEC; tab-indented or compact output).
//
// # Client
//
//	c, err := ubus.Connect(ctx, ubus.Options{Reconnect: true})
//	st, err := c.Call(ctx, "network.interface.wan", "status", nil)
//
// Connect dials DefaultSocket (or Options.Path, or Options.Dial for any
// io.ReadWriteCloser) and reads ubusd's HELLO. Lookup finds objects (a
// path, a prefix ending in "*", or all); Call and Invoke call methods and
// return the DATA answers, a non-OK status as a Status error (errors.Is
// works), a request without deadline bounded by Options.Timeout; Send and
// Listen deal in events; Subscribe, or NewSubscriber with SubscribePath,
// Follow and Subscribe, receive an object's notifications; WaitFor waits for
// objects to appear; Monitor sees every message ubusd handles; RoundTrip
// sends a message built by hand. AddObject publishes an object whose
// methods (an ObjectType, shared by objects that add the same one) answer
// calls: a Handler gets the typed arguments, already checked against the
// declared ones, and returns DATA and a status, or defers its answer;
// Object.Notify and NotifyNoReply notify its subscribers, Subscribed and
// the AddObject callback say whether it has any.
//
// Incoming calls, notifications and events are handled in order on one
// goroutine per client; handlers may make requests (answers are read on
// another goroutine) but must not wait for another incoming message. Post
// queues work behind them.
//
// With Options.Reconnect, a lost connection is dialled again with
// exponential backoff; objects are added again (with new ids), event
// patterns registered again, path subscriptions made again, and
// Options.OnConnect runs, ordered with the deliveries. Meanwhile requests
// fail with StatusConnectionFailed. Follow also outlives the owner of the
// followed object: it subscribes again when an object with the path comes
// back.
//
// Every test replays the recordings of the real ubusd, ubus tool, libubus
// programs, rpcd, netifd and odhcpd: the client sends the recorded programs'
// bytes, frame for frame.
package ubus
