// Package netguard keeps outbound requests whose target a user chose (web
// push endpoints, webhook URLs) away from loopback, private, link-local and
// cloud metadata addresses: protection against server-side request forgery.
// The check runs in the dialer, after DNS resolution, so a public name that
// resolves to a private address is refused too.
package netguard

import (
	"context"
	"net"
	"net/netip"
	"syscall"
)

// BlockedError says a target resolved to an address outbound requests may
// not reach.
type BlockedError struct {
	Addr   netip.Addr
	Reason string
}

func (e *BlockedError) Error() string {
	return "endpoint address " + e.Addr.String() + " is " + e.Reason +
		"; private targets are not allowed (HERALD_ALLOW_PRIVATE_TARGETS)"
}

// Control is a net.Dialer ControlContext that refuses to connect to a
// blocked address with a *BlockedError.
func Control(_ context.Context, _, address string, _ syscall.RawConn) error {
	return CheckAddress(address)
}

// CheckAddress is the dialer's check of each resolved ip:port before it
// connects.
func CheckAddress(address string) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		host, _, serr := net.SplitHostPort(address)
		if serr != nil {
			host = address
		}
		a, perr := netip.ParseAddr(host)
		if perr != nil {
			return &BlockedError{Reason: "not an IP address"}
		}
		ap = netip.AddrPortFrom(a, 0)
	}
	if reason := Reason(ap.Addr()); reason != "" {
		return &BlockedError{Addr: ap.Addr(), Reason: reason}
	}
	return nil
}

// HostReason returns why host, when it is an IP literal, may not be
// reached, or "" when it may be or is a name (names are checked by the
// dialer once resolved).
func HostReason(host string) string {
	a, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	if reason := Reason(a); reason != "" {
		return "an address that is " + reason
	}
	return ""
}

// in reports whether a lies in the prefix of the given address and length.
// Prefixes are built on the spot (no allocation) rather than kept in
// package variables.
func in(a netip.Addr, prefix netip.Addr, bits int) bool {
	return netip.PrefixFrom(prefix, bits).Contains(a)
}

func v4(a, b, c, d byte) netip.Addr { return netip.AddrFrom4([4]byte{a, b, c, d}) }

// Reason returns why a may not be reached, or "" when it may.
func Reason(a netip.Addr) string {
	a = a.Unmap()
	// IPv6 forms that carry an IPv4 address are judged by that address.
	if a.Is6() {
		b := a.As16()
		switch {
		case in(a, netip.AddrFrom16([16]byte{0: 0x00, 1: 0x64, 2: 0xff, 3: 0x9b}), 96): // NAT64
			return Reason(netip.AddrFrom4([4]byte(b[12:16])))
		case in(a, netip.AddrFrom16([16]byte{0: 0x20, 1: 0x02}), 16): // 6to4
			return Reason(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	switch {
	case !a.IsValid():
		return "not an IP address"
	case a.IsLoopback():
		return "a loopback address"
	case a.IsPrivate():
		return "a private address"
	case a.IsLinkLocalUnicast():
		return "a link-local address (where cloud metadata services live)"
	case a.IsUnspecified():
		return "the unspecified address"
	case a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return "a multicast address"
	case in(a, v4(100, 64, 0, 0), 10):
		// Shared address space; Alibaba Cloud's metadata is 100.100.100.200.
		return "a shared (carrier-grade NAT) address"
	case in(a, v4(0, 0, 0, 0), 8), in(a, v4(192, 0, 0, 0), 24), in(a, v4(198, 18, 0, 0), 15), in(a, v4(240, 0, 0, 0), 4):
		return "a reserved address"
	}
	return ""
}
