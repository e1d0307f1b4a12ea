package wire

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"120", 2 * time.Minute},
		{" 7 ", 7 * time.Second},
		{"-5", 0},
		{"999999999999", MaxWait},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{now.Add(1000 * time.Hour).Format(http.TimeFormat), MaxWait},
		{"soon", 0},
	} {
		if got := RetryAfter(tc.in, now); got != tc.want {
			t.Errorf("RetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestMessageID(t *testing.T) {
	t.Parallel()
	if got := MessageID("01a2-b3", "example.com"); got != "01a2-b3@example.com" {
		t.Errorf("MessageID = %q", got)
	}
	odd := MessageID("a b<c>", "example.com")
	if odd != MessageID("a b<c>", "example.com") || strings.ContainsAny(odd, " <>") || !strings.HasSuffix(odd, "@example.com") {
		t.Errorf("MessageID of an unsafe id = %q, want a stable hash", odd)
	}
}
