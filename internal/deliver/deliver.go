// Package deliver is the worker role: it takes a queued delivery, checks
// its state in the log, records the attempt, calls the provider and
// writes the classified outcome back to the log before the queue message
// is acknowledged.
package deliver

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/heraldhq/herald"
)

// Store is what the worker reads.
type Store interface {
	GetDelivery(ctx context.Context, appID, id string) (herald.Delivery, error)
	GetNotification(ctx context.Context, appID, id string) (herald.Notification, error)
	GetPreferences(ctx context.Context, appID, userID string) (herald.Preferences, error)
	SetDeviceStatus(ctx context.Context, appID, deviceID, status string) error
	SetContactStatus(ctx context.Context, appID, userID string, c herald.Channel, status string) error
	PutPreferences(ctx context.Context, appID, userID string, p herald.Preferences) error
	ListDevices(ctx context.Context, appID, userID string) ([]herald.Device, error)
}

// LogWriter commits log batches (the group-commit writer).
type LogWriter interface {
	Write(ctx context.Context, b *herald.Batch) error
}

// Providers finds the provider that serves a delivery.
//
// Errors: CodeNotFound when the app has no provider for the channel and platform.
type Providers interface {
	For(ctx context.Context, appID string, c herald.Channel, p herald.Platform) (herald.Provider, error)
}

// Action tells the queue what to do with the message after Handle.
type Action int

// Actions.
const (
	// Ack: the log has the outcome; the message is done.
	Ack Action = iota + 1
	// Retry: deliver the message again after Verdict.Delay.
	Retry
	// Drop: the message is unusable (no such delivery); remove it.
	Drop
)

// Verdict is Handle's answer for the queue.
type Verdict struct {
	Action Action
	Delay  time.Duration
}

// Options tune the worker.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// SendTimeout bounds one provider call; it must stay well under the queue's AckWait (default 30s).
	SendTimeout time.Duration
	// MaxAttempts before a delivery is dead (default 8).
	MaxAttempts int
	// Backoff is the base of the exponential backoff with full jitter (default 2s), capped at MaxBackoff (default 1h).
	Backoff, MaxBackoff time.Duration
	// Observe, when set, is told every provider call's result (metrics).
	Observe func(c herald.Channel, provider string, o herald.OutcomeKind, took time.Duration)
	// Jitter picks a wait in [0, n) for the full-jitter backoff (default math/rand/v2).
	Jitter func(n int64) int64
}

// Worker delivers messages. Handle is safe for concurrent use.
type Worker struct {
	store     Store
	log       LogWriter
	providers Providers
	o         Options
}

// New returns a Worker.
func New(store Store, log LogWriter, providers Providers, o Options) *Worker {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 30 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.Backoff <= 0 {
		o.Backoff = 2 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Hour
	}
	if o.Jitter == nil {
		o.Jitter = rand.Int64N
	}
	return &Worker{store: store, log: log, providers: providers, o: o}
}

func (w *Worker) now() time.Time { return w.o.Now().UTC().Truncate(time.Microsecond) }

// Handle processes one queued delivery. queuedAt is when the queue stored
// its message: the first time a worker sees a delivery, the "queued" step
// of its timeline is written then, in the same commit as the claim, so
// that queueing costs the accept path no second write.
func (w *Worker) Handle(ctx context.Context, appID, deliveryID string, queuedAt time.Time) Verdict {
	d, err := w.store.GetDelivery(ctx, appID, deliveryID)
	if herald.IsNotFound(err) {
		w.o.Logger.Warn("queued delivery is not in the log; dropping the message", "app", appID, "delivery", deliveryID)
		return Verdict{Action: Drop}
	}
	if err != nil {
		w.o.Logger.Error("reading delivery", "delivery", deliveryID, "err", err)
		return Verdict{Action: Retry, Delay: 5 * time.Second}
	}
	if d.Status.Done() {
		return Verdict{Action: Ack}
	}
	now := w.now()
	if d.Status == herald.StatusSending && d.NextAttemptAt.After(now) {
		// Another worker holds this attempt; look again when its time is up.
		return Verdict{Action: Retry, Delay: d.NextAttemptAt.Sub(now) + time.Second}
	}
	n, err := w.store.GetNotification(ctx, appID, d.NotificationID)
	if err != nil {
		w.o.Logger.Error("reading notification", "notification", d.NotificationID, "err", err)
		return Verdict{Action: Retry, Delay: 5 * time.Second}
	}

	// Preferences may have changed since the notification was accepted.
	if d.UserID != "" {
		prefs, err := w.store.GetPreferences(ctx, appID, d.UserID)
		if err != nil && !herald.IsNotFound(err) {
			return Verdict{Action: Retry, Delay: 5 * time.Second}
		}
		if herald.IsNotFound(err) || !prefs.Allows(d.Channel, n.Category) {
			reason := herald.ReasonOptedOut
			if herald.IsNotFound(err) {
				reason = herald.ReasonNoAddress // the user was erased
			}
			return w.finish(ctx, d, d.Attempts, herald.StatusSuppressed, reason, "", "", time.Time{}, "")
		}
	}

	// Claim the attempt: the compare-and-set on the attempt count makes
	// sure two workers never both send, and the due time marks how long
	// the claim holds before a crashed attempt may be taken over.
	attempt := d.Attempts + 1
	detail := ""
	if d.Status == herald.StatusSending {
		detail = "possible_duplicate: the previous attempt ended without a recorded outcome"
	}
	claim := &herald.Batch{}
	if d.Status == herald.StatusAccepted {
		if queuedAt.IsZero() || queuedAt.After(now) {
			queuedAt = now
		}
		claim.Transitions = append(claim.Transitions, herald.Transition{AppID: appID, DeliveryID: d.ID,
			From: []herald.Status{herald.StatusAccepted}, IfAttempts: &d.Attempts, To: herald.StatusQueued,
			Event: w.event(d, herald.StatusQueued, "", 0, "", "", queuedAt.UTC().Truncate(time.Microsecond))})
	}
	claim.Transitions = append(claim.Transitions, herald.Transition{
		AppID: appID, DeliveryID: d.ID,
		From:       []herald.Status{herald.StatusAccepted, herald.StatusQueued, herald.StatusSending},
		IfAttempts: &d.Attempts, To: herald.StatusSending, Attempts: attempt,
		DueAt: now.Add(w.o.SendTimeout + 10*time.Second),
		Event: w.event(d, herald.StatusSending, "", attempt, "", detail, now),
	})
	if err := w.log.Write(ctx, claim); err != nil {
		w.o.Logger.Error("recording attempt", "delivery", d.ID, "err", err)
		return Verdict{Action: Retry, Delay: 5 * time.Second}
	}
	if !claim.Transitions[len(claim.Transitions)-1].Applied {
		// Someone else moved it on; the next look will see what they did.
		return Verdict{Action: Retry, Delay: 2 * time.Second}
	}

	p, err := w.providers.For(ctx, appID, d.Channel, d.Platform)
	if err != nil {
		detail := fmt.Sprintf("no usable %s provider: %v", d.Channel, err)
		return w.retryOrDie(ctx, d, attempt, "", herald.ReasonNoProvider, detail, 0)
	}
	msg := herald.Message{AppID: appID, NotificationID: n.ID, DeliveryID: d.ID, Channel: d.Channel,
		Platform: d.Platform, To: d.Address, Category: n.Category, Priority: n.Priority, Content: n.Content, Attempt: attempt}
	if d.Platform == herald.PlatformWeb {
		// The browser's keys live with the device, not in the log.
		if msg.Subscription, err = w.subscription(ctx, d); err != nil {
			return w.retryOrDie(ctx, d, attempt, "", "", err.Error(), 0)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, w.o.SendTimeout)
	start := time.Now()
	out := p.Send(sctx, msg)
	cancel()
	kind := p.Kind()
	if out.Provider != "" {
		kind = out.Provider
	}
	if w.o.Observe != nil {
		w.o.Observe(d.Channel, kind, out.Kind, time.Since(start))
	}

	switch out.Kind {
	case herald.OutcomeSent:
		return w.finish(ctx, d, attempt, herald.StatusSent, "", kind, out.ProviderMessageID, time.Time{}, out.Detail)
	case herald.OutcomeInvalidRecipient:
		w.disable(ctx, d)
		return w.finish(ctx, d, attempt, herald.StatusFailed, herald.ReasonInvalidRecipient, kind, "", time.Time{}, out.Detail)
	case herald.OutcomePermanent:
		return w.finish(ctx, d, attempt, herald.StatusFailed, herald.ReasonProviderRejected, kind, "", time.Time{}, out.Detail)
	case herald.OutcomeOptedOut:
		w.optOut(ctx, d)
		return w.finish(ctx, d, attempt, herald.StatusSuppressed, herald.ReasonOptedOut, kind, "", time.Time{}, out.Detail)
	case herald.OutcomeConfigError:
		// Retrying cannot help until someone fixes the provider settings.
		w.o.Logger.Error("provider configuration error: fix the app's provider settings", "app", appID,
			"channel", d.Channel, "provider", kind, "detail", out.Detail)
		return w.finish(ctx, d, attempt, herald.StatusFailed, herald.ReasonProviderConfig, kind, "", time.Time{}, out.Detail)
	default:
		return w.retryOrDie(ctx, d, attempt, kind, "", out.Detail, out.RetryAfter)
	}
}

// retryOrDie schedules the next attempt with backoff, or marks the delivery dead after the last one.
func (w *Worker) retryOrDie(ctx context.Context, d herald.Delivery, attempt int, provider, reason, detail string, retryAfter time.Duration) Verdict {
	if attempt >= w.o.MaxAttempts {
		if reason == "" {
			reason = herald.ReasonRetriesExhausted
		}
		return w.finish(ctx, d, attempt, herald.StatusDead, reason, provider, "", time.Time{}, detail)
	}
	delay := w.backoff(attempt)
	if delay < retryAfter {
		delay = retryAfter
	}
	due := w.now().Add(delay)
	v := w.finish(ctx, d, attempt, herald.StatusQueued, reason, provider, "", due, detail)
	if v.Action == Ack && delay <= queueRetryLimit {
		return Verdict{Action: Retry, Delay: delay}
	}
	// A longer wait is kept in the log, not in the queue: a message waiting
	// in JetStream counts against its consumer's MaxAckPending and would
	// hold up the whole channel. The reconciler republishes it when due.
	return v
}

// queueRetryLimit is the longest retry delay left to the queue's redelivery.
const queueRetryLimit = 10 * time.Second

// backoff is exponential with full jitter.
func (w *Worker) backoff(attempt int) time.Duration {
	ceiling := w.o.Backoff << min(attempt-1, 30)
	if ceiling <= 0 || ceiling > w.o.MaxBackoff {
		ceiling = w.o.MaxBackoff
	}
	return time.Duration(w.o.Jitter(int64(ceiling))) + time.Millisecond
}

// finish writes the attempt's outcome; only then may the message be acked.
func (w *Worker) finish(ctx context.Context, d herald.Delivery, attempt int, to herald.Status, reason, provider, providerID string, due time.Time, detail string) Verdict {
	now := w.now()
	t := herald.Transition{AppID: d.AppID, DeliveryID: d.ID, To: to, Reason: reason,
		Attempts: attempt, Provider: provider, ProviderMessageID: providerID, DueAt: due,
		Event: w.event(d, to, reason, attempt, provider, detail, now)}
	if attempt > d.Attempts {
		t.From, t.IfAttempts = []herald.Status{herald.StatusSending}, &attempt
	} else {
		t.IfAttempts = &d.Attempts
	}
	b := &herald.Batch{Transitions: []herald.Transition{t}}
	if err := w.writeOutcome(ctx, b); err != nil {
		w.o.Logger.Error("recording outcome", "delivery", d.ID, "status", to, "err", err)
		return Verdict{Action: Retry, Delay: 5 * time.Second}
	}
	if !b.Transitions[0].Applied {
		w.o.Logger.Warn("delivery changed while it was being sent", "delivery", d.ID, "status", to)
	}
	return Verdict{Action: Ack}
}

// writeOutcome commits an outcome, retrying for as long as the attempt's
// claim holds: once the provider has answered, losing the outcome would
// mean sending again. It ignores the caller's cancellation (a shutdown
// waits for it) but not its values.
func (w *Worker) writeOutcome(ctx context.Context, b *herald.Batch) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	wait := 50 * time.Millisecond
	for {
		err := w.log.Write(ctx, b)
		if err == nil || herald.ErrorCode(err) == herald.CodeConflict {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

func (w *Worker) event(d herald.Delivery, s herald.Status, reason string, attempt int, provider, detail string, at time.Time) herald.Event {
	return herald.Event{AppID: d.AppID, NotificationID: d.NotificationID, DeliveryID: d.ID, Channel: d.Channel,
		Status: s, Reason: reason, Attempt: attempt, Provider: provider, Detail: detail, At: at}
}

// subscription finds the web push subscription of the delivery's device;
// nil when the device is gone (the provider then reports the recipient invalid).
func (w *Worker) subscription(ctx context.Context, d herald.Delivery) (*herald.WebPushSubscription, error) {
	devices, err := w.store.ListDevices(ctx, d.AppID, d.UserID)
	if err != nil && !herald.IsNotFound(err) {
		return nil, fmt.Errorf("deliver: devices of user %q: %w", d.UserID, err)
	}
	for _, dev := range devices {
		if dev.ID == d.DeviceID {
			return dev.Subscription, nil
		}
	}
	return nil, nil
}

// optOut turns the channel off in the user's preferences after the
// recipient told the provider to stop, so later sends are suppressed.
func (w *Worker) optOut(ctx context.Context, d herald.Delivery) {
	if d.UserID == "" {
		return
	}
	prefs, err := w.store.GetPreferences(ctx, d.AppID, d.UserID)
	if err == nil {
		if prefs.Channels == nil {
			prefs.Channels = map[herald.Channel]bool{}
		}
		prefs.Channels[d.Channel] = false
		err = w.store.PutPreferences(ctx, d.AppID, d.UserID, prefs)
	}
	if err != nil {
		w.o.Logger.Warn("recording an opt-out", "delivery", d.ID, "err", err)
	}
}

// disable marks the address the provider rejected as gone, so later sends skip it.
func (w *Worker) disable(ctx context.Context, d herald.Delivery) {
	var err error
	switch {
	case d.DeviceID != "":
		err = w.store.SetDeviceStatus(ctx, d.AppID, d.DeviceID, herald.DeviceInvalid)
	case d.UserID != "":
		err = w.store.SetContactStatus(ctx, d.AppID, d.UserID, d.Channel, herald.DeviceInvalid)
	}
	if err != nil {
		w.o.Logger.Warn("disabling invalid recipient", "delivery", d.ID, "err", err)
	}
}
