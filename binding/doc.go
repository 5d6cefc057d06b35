// Package binding holds the registration state of both roles, with no I/O:
// the home agent's binding cache (Cache) and the mobile router's binding
// update list (UpdateList). Both take the time as a parameter, consume decoded
// or raw signalling packets and return the packets to send, so the daemons
// are event loops around them and the logic is tested without a network.
package binding
