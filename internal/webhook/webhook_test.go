package webhook

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
)

// TestSignStandardWebhooksVector: the test vector published with the
// Standard Webhooks reference libraries (and Svix's, which they come from).
func TestSignStandardWebhooksVector(t *testing.T) {
	t.Parallel()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}

func TestPostIDIsStablePerEventAndEndpoint(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	e := herald.Event{AppID: "a", DeliveryID: "d", Status: herald.StatusDead, Attempt: 3, At: at}
	id := postID(e, "delivery.dead", "h1")
	if !strings.HasPrefix(id, "msg_") || postID(e, "delivery.dead", "h1") != id {
		t.Fatalf("postID = %q, not stable", id)
	}
	other := e
	other.Attempt = 4
	for _, got := range []string{postID(e, "delivery.dead", "h2"), postID(other, "delivery.dead", "h1"), postID(e, "device.invalid", "h1")} {
		if got == id {
			t.Errorf("postID %q repeats for another endpoint, event or type", got)
		}
	}
}

func TestBackoffDoublesUpToTheCap(t *testing.T) {
	t.Parallel()
	s := &Service{o: Options{RetryBase: time.Second, RetryCap: 8 * time.Second}}
	for n, longest := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 9: 8 * time.Second} {
		for range 50 {
			if d := s.backoff(n); d < longest/2 || d > longest {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", n, d, longest/2, longest)
			}
		}
	}
}

func TestEventNames(t *testing.T) {
	t.Parallel()
	names := EventNames()
	for _, want := range []string{"delivery.accepted", "delivery.dead", "delivery.failed", "device.invalid", "contact.invalid", "user.unsubscribed",
		"sms.budget_warning", "sms.budget_exceeded"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("EventNames lacks %q", want)
		}
	}
	if len(names) != 17 {
		t.Errorf("EventNames has %d names, want 12 statuses + 5", len(names))
	}
}

func TestTypes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		e    herald.Event
		want string
	}{
		{herald.Event{Status: herald.StatusClicked, Channel: herald.ChannelEmail}, "delivery.clicked"},
		{herald.Event{Status: herald.StatusFailed, Reason: herald.ReasonInvalidRecipient, Channel: herald.ChannelEmail}, "delivery.failed contact.invalid"},
		{herald.Event{Status: herald.StatusFailed, Reason: herald.ReasonInvalidRecipient, Channel: herald.ChannelPush}, "delivery.failed device.invalid"},
		// An unsubscribe is a step of the timeline, not a delivery status.
		{herald.Event{Status: herald.TimelineUnsubscribed, Channel: herald.ChannelEmail}, "user.unsubscribed"},
		// A fallback window's step makes no webhook event of its own.
		{herald.Event{Status: herald.TimelineFallback, Channel: herald.ChannelSMS}, ""},
	} {
		if got := strings.Join(types(c.e), " "); got != c.want {
			t.Errorf("types(%s/%s) = %q, want %q", c.e.Status, c.e.Reason, got, c.want)
		}
	}
}
