package netguard

import (
	"errors"
	"net/netip"
	"testing"
)

func TestReason(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr    string
		blocked bool
	}{
		{"127.0.0.1", true},
		{"::1", true},
		{"10.1.2.3", true},
		{"172.16.0.1", true},
		{"192.168.1.1", true},
		{"169.254.169.254", true}, // AWS, GCP, Azure metadata
		{"fd00:ec2::254", true},   // AWS IPv6 metadata
		{"100.100.100.200", true}, // Alibaba metadata
		{"0.0.0.0", true},
		{"::", true},
		{"::ffff:127.0.0.1", true},
		{"::ffff:10.0.0.1", true},
		{"64:ff9b::a9fe:a9fe", true}, // NAT64 of 169.254.169.254
		{"2002:7f00:1::", true},      // 6to4 of 127.0.0.1
		{"fe80::1", true},
		{"224.0.0.1", true},
		{"8.8.8.8", false},
		{"142.250.74.46", false},
		{"2606:4700::1111", false},
		{"::ffff:8.8.8.8", false},
	} {
		got := Reason(netip.MustParseAddr(tc.addr)) != ""
		if got != tc.blocked {
			t.Errorf("Reason(%s) blocked = %v, want %v", tc.addr, got, tc.blocked)
		}
	}
}

func TestCheckAddress(t *testing.T) {
	t.Parallel()
	var blocked *BlockedError
	if err := CheckAddress("169.254.169.254:80"); !errors.As(err, &blocked) || blocked.Addr.String() != "169.254.169.254" {
		t.Errorf("CheckAddress(metadata) = %v, want a *BlockedError naming the address", err)
	}
	if err := CheckAddress("[::1]:443"); err == nil {
		t.Error("CheckAddress([::1]:443) = nil, want refused")
	}
	if err := CheckAddress("8.8.8.8:443"); err != nil {
		t.Errorf("CheckAddress(8.8.8.8:443) = %v, want allowed", err)
	}
	if got := HostReason("example.com"); got != "" {
		t.Errorf("HostReason(a name) = %q, want \"\" (names are checked once resolved)", got)
	}
	if got := HostReason("10.0.0.1"); got == "" {
		t.Error("HostReason(10.0.0.1) = \"\", want a reason")
	}
}
