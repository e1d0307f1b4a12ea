package failover_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/provider/failover"
	"github.com/heraldhq/herald/internal/provider/providertest"
	"github.com/heraldhq/herald/internal/provider/smtp"
)

func smtpTo(t *testing.T, s *providertest.SMTPServer) herald.Provider {
	t.Helper()
	settings, _ := json.Marshal(map[string]string{"endpoint": s.Addr(), "from": "shop@example.com", "tls": "none"})
	p, err := smtp.New(settings, herald.ProviderEnv{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func message(i int) herald.Message {
	return herald.Message{AppID: "a", NotificationID: "n", DeliveryID: "d" + string(rune('a'+i)), Channel: herald.ChannelEmail,
		To: "ada@example.com", Content: herald.Content{Subject: "Hi", Body: "hello"}}
}

// With the first relay down, messages go through the second; the first
// circuit opens, a probe after the cooldown finds it back, and traffic
// returns to it.
func TestFailoverAndRecovery(t *testing.T) {
	primary, secondary := providertest.NewSMTPServer(t), providertest.NewSMTPServer(t)
	primary.SetFailData(451, "relay overloaded")
	now := time.Unix(1_800_000_000, 0)
	var states []bool
	f := failover.New([]herald.Provider{smtpTo(t, primary), smtpTo(t, secondary)}, failover.Options{
		Threshold: 3, Cooldown: 30 * time.Second, Now: func() time.Time { return now },
		OnState: func(_ string, open bool) { states = append(states, open) },
	})
	ctx := context.Background()

	for i := range 5 {
		if out := f.Send(ctx, message(i)); out.Kind != herald.OutcomeSent || out.Provider != "smtp" {
			t.Fatalf("send %d: %+v, want sent through the second relay", i, out)
		}
	}
	if got := len(secondary.Messages()); got != 5 {
		t.Fatalf("second relay got %d, want 5", got)
	}
	if len(states) != 1 || !states[0] {
		t.Fatalf("circuit changes = %v, want one opening", states)
	}

	// While open, the first relay is not tried at all.
	if f.Send(ctx, message(5)); len(secondary.Messages()) != 6 {
		t.Fatal("the open relay was used")
	}

	// After the cooldown one probe goes to the first relay, which is back.
	primary.SetFailData(0, "")
	now = now.Add(31 * time.Second)
	if out := f.Send(ctx, message(6)); out.Kind != herald.OutcomeSent {
		t.Fatalf("probe: %+v", out)
	}
	if got := len(primary.Messages()); got != 1 {
		t.Fatalf("first relay got %d after recovering, want the probe", got)
	}
	f.Send(ctx, message(7))
	if got := len(primary.Messages()); got != 2 {
		t.Fatalf("traffic did not return to the first relay")
	}
	if len(states) != 2 || states[1] {
		t.Fatalf("circuit changes = %v, want opened then closed", states)
	}
}

// A permanent answer is final: it is not another provider's business.
func TestPermanentAnswersDoNotFailOver(t *testing.T) {
	primary := providertest.NewSMTPServer(t, providertest.FailData(554, "content rejected"))
	secondary := providertest.NewSMTPServer(t)
	f := failover.New([]herald.Provider{smtpTo(t, primary), smtpTo(t, secondary)}, failover.Options{})
	if out := f.Send(context.Background(), message(0)); out.Kind != herald.OutcomePermanent {
		t.Fatalf("outcome = %+v, want permanent", out)
	}
	if len(secondary.Messages()) != 0 {
		t.Fatal("a permanent failure was sent again through the second relay")
	}
}

// With every circuit open, the first provider is still tried.
func TestAllOpenStillTries(t *testing.T) {
	primary := providertest.NewSMTPServer(t)
	primary.SetFailData(451, "down")
	now := time.Unix(1_800_000_000, 0)
	f := failover.New([]herald.Provider{smtpTo(t, primary)}, failover.Options{Threshold: 1, Now: func() time.Time { return now }})
	f.Send(context.Background(), message(0)) // opens
	primary.SetFailData(0, "")
	if out := f.Send(context.Background(), message(1)); out.Kind != herald.OutcomeSent {
		t.Fatalf("outcome = %+v, want the lone provider tried", out)
	}
}

// A provider's send-rate cap spaces its sends out; running out of time
// while waiting for it is not held against the provider's circuit.
func TestRateCap(t *testing.T) {
	primary, secondary := providertest.NewSMTPServer(t), providertest.NewSMTPServer(t)
	f := failover.NewWithLimits([]failover.Member{{Provider: smtpTo(t, primary), RatePerSecond: 5}, {Provider: smtpTo(t, secondary)}},
		failover.Options{Threshold: 1})
	ctx := context.Background()
	start := time.Now()
	for i := range 10 {
		if out := f.Send(ctx, message(i)); out.Kind != herald.OutcomeSent {
			t.Fatalf("send %d: %+v", i, out)
		}
	}
	// A burst of 5, then 5 more at 5/s: about a second.
	if took := time.Since(start); took < 800*time.Millisecond {
		t.Errorf("10 sends at 5/s took %s, want about a second", took)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	f.Send(short, message(10)) // the cap has no room: the message moves on to the second relay
	// The cap, not the relay, refused it: the first relay's circuit is still closed.
	if out := f.Send(ctx, message(11)); out.Kind != herald.OutcomeSent {
		t.Fatalf("after the cap ran out: %+v", out)
	}
	if got := len(primary.Messages()); got != 11 {
		t.Fatalf("first relay got %d messages, want 11: the capped wait counted against its circuit", got)
	}
}
