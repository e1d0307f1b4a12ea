package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/provider/providertest"
)

// TestFrequencyCapDefer: with "at most 1 email per 3s, defer", a second
// email right after the first is scheduled (rate_limited, the rule on its
// timeline) and sent once the window has room, not before.
func TestFrequencyCapDefer(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	a := start(t, testConfig(t))
	c := newAPI(t, a, newApp(t, a, "shop"))
	configureEmail(t, c, smtpd)
	c.must(201, "PUT", "/v1/categories/digest", map[string]any{"frequency_caps": []any{
		map[string]any{"channel": "email", "max": 1, "per": "3s", "over": "defer"}}})

	first := sendMarketing(t, c, "ada", "digest")
	c.waitDone(first, 30*time.Second)
	second := sendMarketing(t, c, "ada", "digest")

	type event struct {
		Status string    `json:"status"`
		At     time.Time `json:"at"`
		Detail string    `json:"detail"`
	}
	var view struct {
		Deliveries []struct {
			Status, Reason string
			Timeline       []event
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c.must(200, "GET", "/v1/notifications/"+second, nil).decode(t, &view)
		if d := view.Deliveries[0]; d.Status == "scheduled" || d.Status == "sent" || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := view.Deliveries[0]; d.Status == "scheduled" && d.Reason != "rate_limited" {
		t.Fatalf("the deferred email is scheduled with reason %q, want rate_limited", d.Reason)
	}
	n := c.waitDone(second, 30*time.Second)
	if n.Deliveries[0].Status != "sent" {
		t.Fatalf("the deferred email ended %s, want sent", n.Deliveries[0].Status)
	}

	sendingAt := func(id string) (at time.Time, held []event) {
		c.must(200, "GET", "/v1/notifications/"+id, nil).decode(t, &view)
		for _, e := range view.Deliveries[0].Timeline {
			switch e.Status {
			case "sending":
				at = e.At
			case "scheduled":
				held = append(held, e)
			}
		}
		return at, held
	}
	firstAt, _ := sendingAt(first)
	secondAt, held := sendingAt(second)
	if len(held) == 0 || !strings.Contains(held[0].Detail, "email: at most 1 per 3s (defer)") {
		t.Fatalf("the second email's timeline holds %+v, want a scheduled step naming the rule", held)
	}
	// The cap's slot is taken just before the first attempt is claimed.
	if gap := secondAt.Sub(firstAt); gap < 2500*time.Millisecond {
		t.Fatalf("the second email was sent %s after the first, within the cap's 3s window", gap)
	}
	smtpd.WaitForMessages(t, 2, 10*time.Second)
}
