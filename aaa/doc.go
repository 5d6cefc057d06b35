// Package aaa authorizes mobile routers through RADIUS for the home agent,
// accounts for their sessions and accepts Disconnect-Requests for them. It
// is built on layeh.com/radius for packet framing and the attribute
// dictionaries; the security computations layeh leaves to its user
// (Message-Authenticator, the request authenticators of accounting and
// dynamic authorization, Tunnel-Password) are done here.
//
// # Layout
//
// The protocol logic is pure: encoding requests, checking and decoding
// responses (ParseAccessResponse), the client's state machine (which server,
// which identifier, retransmission, fail-over, dead servers and their
// revival: engine), the authorization cache (Cache) and the Disconnect-Request
// checks (ParseDisconnect). None of it does I/O; each takes the time as a
// parameter. Two thin shells do the I/O: Client, which owns the UDP sockets
// and runs the engine in one goroutine, and DynAuthServer, which listens for
// Disconnect-Requests. Neither ever blocks the home agent's event loop:
// Submit and Account refuse at once when their queue is full, and results
// and revocations arrive on channels the loop selects on.
//
// # What a RADIUS server sends for a mobile router
//
// The Access-Request names the router by User-Name, the Network Access
// Identifier of its Mobile Node Identifier option (RFC 4283). The Access-Accept
// gives:
//
//   - Framed-IPv6-Address (RFC 6911, type 168): the home address. Required.
//   - Delegated-IPv6-Prefix (RFC 4818, type 123, repeatable) and
//     Framed-IPv6-Prefix (RFC 3162, type 97, repeatable): the mobile network
//     prefixes the router may claim (RFC 3963).
//   - Framed-IP-Address: the IPv4 home address; PMIP6-Home-IPv4-HoA
//     (RFC 6572, type 155) its prefix, for IPv4 home address support.
//   - Session-Timeout: how long the authorization lasts; the home agent caps
//     binding lifetimes by it and asks again when it runs out.
//   - Tunnel-Password (RFC 2868 §3.5, salt-encrypted): the MN-HA key of
//     RFC 4285, as the hex text `option key` takes. Required.
//   - Tunnel-Client-Auth-ID (RFC 2868 §3.9) with the same tag as the
//     Tunnel-Password: the SPI of that key, in decimal as `option spi` takes
//     it (256..4294967295). Required. An SPI is the name of a security
//     association, and Tunnel-Client-Auth-ID is the standard attribute naming
//     the credentials a tunnel initiator authenticates with; the tag ties the
//     SPI to its key without a vendor dictionary.
//   - Acct-Interim-Interval, Class: echoed into accounting.
//
// In a FreeRADIUS users file:
//
//	car9@fleet.example Auth-Type := Accept
//		Framed-IPv6-Address = 2001:db8:ffff:1::9,
//		Delegated-IPv6-Prefix = 2001:db8:900::/56,
//		Session-Timeout = 3600,
//		Tunnel-Password:1 = "00112233445566778899aabbccddeeff",
//		Tunnel-Client-Auth-ID:1 = "4097"
//
// Every Access-Request carries a Message-Authenticator (RFC 3579 §3.2), and
// every Access-Accept and Access-Reject must carry a valid one unless
// Config.AllowMissingMessageAuthenticator is set: without it a response is
// protected only by MD5 over the request authenticator, which can be forged
// by a chosen-prefix collision by someone on the path (the "Blast-RADIUS"
// attack). FreeRADIUS before 3.2.5 adds it only when told to, with
// `update reply { Message-Authenticator := 0x00 }` in post-auth (and in
// Post-Auth-Type REJECT).
package aaa
