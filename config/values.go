package config

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// The value parsers return a message for the user instead of an error: the
// caller prefixes it with the option and the file position.

func itoa(n int) string { return strconv.Itoa(n) }

// show prints a value inside a message: as written when that is
// unambiguous, quoted and shortened otherwise, so that a 5000-byte value or
// one with control characters does not wreck the message.
func show(s string) string {
	const maxShown = 64
	plain := s != "" && len(s) <= maxShown
	for i := 0; plain && i < len(s); i++ {
		plain = s[i] > ' ' && s[i] < 0x7f && s[i] != '"' && s[i] != '\''
	}
	if plain {
		return s
	}
	if len(s) > maxShown {
		return strconv.Quote(s[:maxShown]) + "..."
	}
	return strconv.Quote(s)
}

// uintIn parses a decimal number (digits only: no sign, no spaces) in
// lo..hi; numbers too big for 64 bits are simply out of range.
func uintIn(s string, lo, hi uint64) (uint64, bool) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, false
	}
	return n, true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// seconds parses a whole number of seconds in lo..hi.
func seconds(s string, lo, hi uint64) (time.Duration, string) {
	if !isDigits(s) {
		return 0, show(s) + " is not a whole number of seconds"
	}
	n, ok := uintIn(s, lo, hi)
	if !ok {
		return 0, fmt.Sprintf("%s is out of range (%d..%d seconds)", show(s), lo, hi)
	}
	return time.Duration(n) * time.Second, ""
}

// interval parses "400ms", "1.5s" or a bare number of seconds ("0.4").
func interval(s string, lo, hi time.Duration) (time.Duration, string) {
	text := s
	if isDecimal(s) {
		// ParseDuration reads fractions exactly; a float would turn 0.4
		// into 400000000.00000006 ns.
		text += "s"
	}
	d, err := time.ParseDuration(text)
	if err != nil {
		return 0, show(s) + " is not a duration (such as 400ms, 1.5s, or a number of seconds)"
	}
	if d < lo || d > hi {
		return 0, fmt.Sprintf("%s is out of range (%s..%s)", show(s), duration(lo), duration(hi))
	}
	return d, ""
}

// duration writes whole seconds as "60s" rather than Go's "1m0s".
func duration(d time.Duration) string {
	if d%time.Second == 0 {
		return itoa(int(d/time.Second)) + "s"
	}
	return d.String()
}

func isDecimal(s string) bool {
	digits, dots := 0, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] >= '0' && s[i] <= '9':
			digits++
		case s[i] == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}

// ipv6Addr parses an address a peer must reach us at (or we it): global
// unicast IPv6, written without zone. v4opt names the option to use for an
// IPv4 address instead, if there is one.
func ipv6Addr(s, v4opt string) (netip.Addr, string) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return a, show(s) + " is not an IPv6 address"
	case a.Is4():
		msg := show(s) + " is an IPv4 address; this option needs IPv6"
		if v4opt != "" {
			msg += " (use " + v4opt + " for IPv4)"
		}
		return a, msg
	case a.Is4In6():
		return a, show(s) + " is an IPv4-mapped address; this option needs a native IPv6 address"
	case a.Zone() != "":
		return a, show(s) + " has a zone; this option needs a global address"
	case !a.IsGlobalUnicast():
		return a, show(s) + " is not a global unicast address"
	}
	return a, ""
}

func ipv4Addr(s string) (netip.Addr, string) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return a, show(s) + " is not an IPv4 address"
	case !a.Is4():
		return a, show(s) + " is an IPv6 address; this option needs IPv4"
	case !a.IsGlobalUnicast():
		return a, show(s) + " is not a unicast address"
	}
	return a, ""
}

// ipv6Prefix parses a network prefix; host bits must be clear so that what
// is written is what is routed.
func ipv6Prefix(s string) (netip.Prefix, string) {
	if !strings.Contains(s, "/") {
		return netip.Prefix{}, show(s) + " is not a prefix (ADDRESS/LENGTH)"
	}
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return p, show(s) + " is not an IPv6 prefix"
	case p.Addr().Is4():
		return p, show(s) + " is an IPv4 prefix; this option needs IPv6"
	case p.Addr().Is4In6():
		return p, show(s) + " is an IPv4-mapped prefix; this option needs native IPv6"
	case p.Bits() == 0:
		return p, show(s) + " covers every address"
	case p != p.Masked():
		return p, fmt.Sprintf("%s has host bits set (the prefix is %s)", show(s), p.Masked())
	}
	return p, ""
}

// matchPrefix parses a rule's address match: a prefix of either family, or
// an address standing for itself (/32 or /128).
func matchPrefix(s string) (netip.Prefix, string) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return p, show(s) + " is not an address or prefix"
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return p, show(s) + " is not an address or prefix"
		}
		if a.Zone() != "" {
			return p, show(s) + " has a zone; write the address without it"
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() {
		return p, show(s) + " is IPv4-mapped; write the IPv4 address"
	}
	if p != p.Masked() {
		return p, fmt.Sprintf("%s has host bits set (the prefix is %s)", show(s), p.Masked())
	}
	return p, ""
}

func portRange(s string) (PortRange, string) {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	l, ok1 := uintIn(lo, 1, 65535)
	h, ok2 := uintIn(hi, 1, 65535)
	if !ok1 || !ok2 {
		return PortRange{}, show(s) + " is not a port or port range (PORT or LOW-HIGH, ports 1..65535)"
	}
	if l > h {
		return PortRange{}, fmt.Sprintf("range %s is reversed (write LOW-HIGH)", show(s))
	}
	return PortRange{Lo: uint16(l), Hi: uint16(h)}, ""
}

const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

var protoNames = map[string]int{
	"tcp": protoTCP, "udp": protoUDP, "icmp": protoICMP,
	"icmpv6": protoICMPv6, "ipv6-icmp": protoICMPv6, "all": -1,
}

func protocol(s string) (int, string) {
	if n, ok := protoNames[strings.ToLower(s)]; ok {
		return n, ""
	}
	if n, ok := uintIn(s, 0, 255); ok {
		return int(n), ""
	}
	return 0, show(s) + " is not a protocol (tcp, udp, icmp, icmpv6, all, or a number 0..255)"
}

// dscp parses a Differentiated Services code point, as a number or by the
// names of RFC 2474 (CSx), RFC 2597 (AFxy) and RFC 3246 (EF).
func dscp(s string) (int, string) {
	if n, ok := uintIn(s, 0, 63); ok {
		return int(n), ""
	}
	u := strings.ToUpper(s)
	switch {
	case u == "BE":
		return 0, ""
	case u == "EF":
		return 46, ""
	case len(u) == 3 && u[:2] == "CS" && u[2] >= '0' && u[2] <= '7':
		return int(u[2]-'0') * 8, ""
	case len(u) == 4 && u[:2] == "AF" && u[2] >= '1' && u[2] <= '4' && u[3] >= '1' && u[3] <= '3':
		return int(u[2]-'0')*8 + int(u[3]-'0')*2, ""
	}
	return 0, show(s) + " is not a DSCP (0..63, or BE, EF, AF11..AF43, CS0..CS7)"
}

// ifname checks a Linux interface name the way the kernel's dev_valid_name
// does.
func ifname(s string) string {
	switch {
	case s == "":
		return "an interface name cannot be empty"
	case len(s) > 15:
		return show(s) + " is too long for an interface name (at most 15 bytes)"
	case s == "." || s == "..":
		return show(s) + " is not a valid interface name"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '/' || c == ':' || c <= ' ' || c == 0x7f {
			return show(s) + " is not a valid interface name (no '/', ':' or whitespace)"
		}
	}
	return ""
}

// minKeyLen is the shortest MN-HA key accepted: 128 bits, the strength of
// the HMAC-SHA1 authenticator RFC 4285 truncates to 96 bits.
const minKeyLen = 16

// hexKey decodes a key. Messages never repeat the key: they end up in logs.
func hexKey(s string) ([]byte, string) {
	if len(s)%2 != 0 {
		return nil, "the key has an odd number of hex digits"
	}
	k, err := hex.DecodeString(s)
	if err != nil {
		return nil, "the key is not a hex string"
	}
	if len(k) < minKeyLen {
		return nil, fmt.Sprintf("the key is %d bytes; at least %d are needed", len(k), minKeyLen)
	}
	return k, ""
}

// socketPath checks a unix socket path: absolute (or "@" for the abstract
// namespace) and short enough for sun_path.
func socketPath(s string) string {
	if !strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "@") {
		return show(s) + " is not an absolute path"
	}
	if len(s) > 107 {
		return "the path is longer than a unix socket allows (107 bytes)"
	}
	return ""
}
