package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/app"
	"github.com/heraldhq/herald/internal/journal"
	"github.com/heraldhq/herald/internal/provider/providertest"
)

// TestJournalRecoveredAtStart (embedded): a process died after the SMTP
// server accepted an email and before the outcome was committed — the log
// says sending, attempt 1, and the journal in the data dir holds the answer.
// The next start commits the outcome from the journal before its workers
// run, and the email is not sent again.
func TestJournalRecoveredAtStart(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	cfg := testConfig(t)
	cfg.Roles = "api"
	a := start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	shop, key, err := app.CreateApp(ctx, a.Store(), "shop", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := newAPI(t, a, key)
	configureEmail(t, c, smtpd)
	id := sendEmail(t, c)
	var n notificationView
	c.must(200, "GET", "/v1/notifications/"+id, nil).decode(t, &n)
	deliveryID := n.Deliveries[0].ID
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// What the crashed process left: the attempt claimed in the log, the
	// provider's answer in the journal only.
	st, err := app.OpenStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	zero, now := 0, time.Now().UTC().Truncate(time.Microsecond)
	claim := &herald.Batch{Transitions: []herald.Transition{{AppID: shop.ID, DeliveryID: deliveryID,
		From: []herald.Status{herald.StatusAccepted}, IfAttempts: &zero, To: herald.StatusSending, Attempts: 1,
		DueAt: now.Add(time.Hour),
		Event: herald.Event{AppID: shop.ID, NotificationID: id, DeliveryID: deliveryID, Channel: herald.ChannelEmail,
			Status: herald.StatusSending, Attempt: 1, At: now}}}}
	if err := st.Apply(ctx, claim); err != nil || !claim.Transitions[0].Applied {
		t.Fatalf("claim: %v (applied %v)", err, claim.Transitions[0].Applied)
	}
	_ = st.Close()
	j, err := journal.Open(filepath.Join(cfg.DataDir, "journal"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := json.Marshal(map[string]any{"app": shop.ID, "delivery": deliveryID, "attempt": 1,
		"kind": herald.OutcomeSent, "provider": "smtp", "provider_message_id": "<from-the-journal@example.com>", "at": now})
	if _, err := j.Append(rec); err != nil {
		t.Fatal(err)
	}
	_ = j.Close() // the record is pending: it stays, as after a kill -9

	cfg.Roles = "api,worker,tracker,scheduler"
	b := start(t, cfg)
	waitMetric(t, b, "herald_journal_recovered_outcomes_total", 1)
	c = newAPI(t, b, key)
	n = c.waitDone(id, 10*time.Second)
	d := n.Deliveries[0]
	if d.Status != "sent" || d.Attempts != 1 || d.ProviderMessageID != "<from-the-journal@example.com>" {
		t.Fatalf("delivery = %+v, want sent on attempt 1 with the journal's message id", d)
	}
	if got := len(smtpd.Messages()); got != 0 {
		t.Fatalf("the SMTP server got %d messages, want none: the outcome came from the journal", got)
	}
	// The journal belongs to the running process.
	if _, err := journal.Open(filepath.Join(cfg.DataDir, "journal"), journal.Options{}); !errors.Is(err, journal.ErrLocked) {
		t.Errorf("opening the running process's journal: %v, want ErrLocked", err)
	}
}
