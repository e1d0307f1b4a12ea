// Package deliver is the worker role: it takes a queued delivery, checks
// its state in the log, records the attempt, calls the provider and
// writes the classified outcome back to the log before the queue message
// is acknowledged.
package deliver

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/heraldhq/herald"
)

// Store is what the worker reads.
type Store interface {
	GetDelivery(ctx context.Context, appID, id string) (herald.Delivery, error)
	// GetDeliveryWork reads a job's delivery, notification and preferences at once.
	GetDeliveryWork(ctx context.Context, appID, id string) (herald.DeliveryWork, error)
	// GetNotification is read only for a fallback step.
	GetNotification(ctx context.Context, appID, id string) (herald.Notification, error)
	GetPreferences(ctx context.Context, appID, userID string) (herald.Preferences, error)
	// GetUser is read only for a user with quiet hours, for their timezone.
	GetUser(ctx context.Context, appID, userID string) (herald.User, error)
	SetDeviceStatus(ctx context.Context, appID, deviceID, status string) error
	SetContactStatus(ctx context.Context, appID, userID string, c herald.Channel, status string) error
	PutPreferences(ctx context.Context, appID, userID string, p herald.Preferences) error
	ListDevices(ctx context.Context, appID, userID string) ([]herald.Device, error)
	// ListEvents is read only when a delivery reaches its last attempt, to
	// find a replay that gave it a fresh budget.
	ListEvents(ctx context.Context, appID, notificationID string) ([]herald.Event, error)
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

// Journal keeps provider answers across a crash of the process: Append
// writes a record the moment the provider answers, before the outcome waits
// for the group commit, and the returned done marks it committed. After a
// crash, the records still pending are handed to Recover at the next start.
type Journal interface {
	Append(rec []byte) (done func(), err error)
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
	// StoreFailed: the store did not answer, so nothing was claimed or
	// recorded; the caller may pause taking work until it answers. A
	// provider's failure never sets it.
	StoreFailed bool
}

// storeFailed is the verdict after a store error: look again in a while.
var storeFailed = Verdict{Action: Retry, Delay: 5 * time.Second, StoreFailed: true}

// Schedule is one channel's retry schedule: at most Attempts provider
// calls; after failed attempt n the next waits a time drawn uniformly from
// [0, min(Cap, Base·2^(n-1))) (exponential backoff with full jitter), and
// never less than the provider's Retry-After.
type Schedule struct {
	Attempts  int
	Base, Cap time.Duration
}

// DefaultSchedules are the retry schedules of a channel left unset: push
// and SMS like Amazon SNS (50 attempts over about 6 hours on average),
// email longer, as mail servers keep trying for a day or more.
func DefaultSchedules() map[herald.Channel]Schedule {
	return map[herald.Channel]Schedule{
		herald.ChannelPush:  {Attempts: 50, Base: time.Second, Cap: 18 * time.Minute},
		herald.ChannelSMS:   {Attempts: 50, Base: time.Second, Cap: 18 * time.Minute},
		herald.ChannelEmail: {Attempts: 30, Base: time.Minute, Cap: 2 * time.Hour},
	}
}

// Horizon is how long the schedule keeps a failing delivery alive: the
// mean and the longest sum of its waits (full jitter makes the mean half
// the longest), not counting the attempts' own time or a longer Retry-After.
func (s Schedule) Horizon() (mean, longest time.Duration) {
	for n := 1; n < s.Attempts; n++ {
		longest += s.ceiling(n)
	}
	return longest / 2, longest
}

// ceiling is the longest wait after failed attempt n.
func (s Schedule) ceiling(n int) time.Duration {
	c := s.Base << min(n-1, 40)
	if c <= 0 || c > s.Cap {
		c = s.Cap
	}
	return c
}

// Options tune the worker.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// SendTimeout bounds one provider call; it must stay well under the
	// queue's AckWait (default 30s). A call that runs out of it may still
	// have reached the provider: its retry is flagged possible_duplicate.
	SendTimeout time.Duration
	// Schedules are the retry schedules per channel; a channel missing, or
	// a zero field, takes DefaultSchedules.
	Schedules map[herald.Channel]Schedule
	// Observe, when set, is told every provider call's result (metrics).
	Observe func(c herald.Channel, provider string, o herald.OutcomeKind, took time.Duration)
	// OnDead, when set, is told each delivery the worker marked dead (metrics).
	OnDead func(c herald.Channel)
	// Jitter picks a wait in [0, n) for the full-jitter backoff (default math/rand/v2).
	Jitter func(n int64) int64
	// Journal, when set, records every provider answer before its outcome
	// is committed (see Recover); nil means no journal.
	Journal Journal
	// Caps, when set, holds deliveries to their category's frequency caps.
	Caps *Caps
	// Links, when set, makes a message's links trackable before it is
	// sent (click and open tracking, the email's unsubscribe URL).
	Links Links
	// Critical, when set, reports whether the app marks a category
	// critical: its deliveries are not held by quiet hours, and such email
	// carries no List-Unsubscribe. nil means no category is critical, the
	// default.
	Critical func(ctx context.Context, appID, category string) bool
}

// Links rewrites a message's links to tracking links on the public URL
// (tracklink.Links). listUnsubscribe asks for the email's unsubscribe URL.
type Links interface {
	Prepare(m herald.Message, listUnsubscribe bool) herald.Message
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
	schedules := DefaultSchedules()
	for c, s := range o.Schedules {
		def := schedules[c]
		if s.Attempts <= 0 {
			s.Attempts = def.Attempts
		}
		if s.Base <= 0 {
			s.Base = def.Base
		}
		if s.Cap <= 0 {
			s.Cap = max(def.Cap, s.Base)
		}
		schedules[c] = s
	}
	o.Schedules = schedules
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
	// One read: the delivery, its notification and its user's preferences.
	work, err := w.store.GetDeliveryWork(ctx, appID, deliveryID)
	if herald.IsNotFound(err) {
		w.o.Logger.Warn("queued delivery is not in the log; dropping the message", "app", appID, "delivery", deliveryID)
		return Verdict{Action: Drop}
	}
	if err != nil {
		w.o.Logger.Error("reading delivery", "delivery", deliveryID, "err", err)
		return storeFailed
	}
	d, n := work.Delivery, work.Notification
	if d.Status.Done() {
		return Verdict{Action: Ack}
	}
	now := w.now()
	if d.Status == herald.StatusScheduled && d.NextAttemptAt.After(now) {
		// Held back since this copy was queued: the reconciler queues it
		// again when its time comes.
		return Verdict{Action: Ack}
	}
	if d.Status == herald.StatusSending && d.NextAttemptAt.After(now) {
		// Another worker holds this attempt; look again when its time is up.
		return Verdict{Action: Retry, Delay: d.NextAttemptAt.Sub(now) + time.Second}
	}

	// Preferences may have changed since the notification was accepted.
	if d.UserID != "" {
		if work.UserGone || !work.Preferences.Allows(d.Channel, n.Category) && !w.critical(ctx, d, n) {
			reason := herald.ReasonOptedOut
			if work.UserGone {
				reason = herald.ReasonNoAddress // the user was erased
			}
			return w.finish(ctx, d, d.Attempts, herald.StatusSuppressed, reason, "", "", time.Time{}, "")
		}
		if v, held := w.holdForQuietHours(ctx, d, n, work.Preferences.QuietHours, now); held {
			return v
		}
	}
	if v, held := w.applyCaps(ctx, d, n); held {
		return v
	}

	// Claim the attempt: the compare-and-set on the attempt count makes
	// sure two workers never both send, and the due time marks how long
	// the claim holds before a crashed attempt may be taken over.
	attempt := d.Attempts + 1
	detail := ""
	switch {
	case d.Status == herald.StatusSending:
		detail = PossibleDuplicate + ": the previous attempt ended without a recorded outcome"
	case d.Reason == herald.ReasonPossibleDuplicate:
		detail = PossibleDuplicate + ": the previous attempt timed out and may have reached the provider"
	}
	claim := herald.Transition{
		AppID: appID, DeliveryID: d.ID,
		From:       []herald.Status{herald.StatusAccepted, herald.StatusScheduled, herald.StatusQueued, herald.StatusSending},
		IfAttempts: &d.Attempts, To: herald.StatusSending, Attempts: attempt,
		DueAt: now.Add(w.o.SendTimeout + 10*time.Second),
		Event: w.event(d, herald.StatusSending, "", attempt, "", detail, now),
	}
	if d.Status == herald.StatusAccepted || d.Status == herald.StatusScheduled {
		// A fresh delivery passes through queued on its way, so the claim
		// writes that step too, and only from where the step is true. No
		// other claim is refused by it: at an unchanged attempt count,
		// nothing but a claim (which raises the count) takes a delivery on
		// from accepted or scheduled to queued or sending.
		claim.From = []herald.Status{herald.StatusAccepted, herald.StatusScheduled}
		if queuedAt.IsZero() || queuedAt.After(now) || queuedAt.Before(d.NextAttemptAt) {
			queuedAt = now // a scheduled delivery is queued when its time came, not when it was first published
		}
		claim.Steps = []herald.Event{w.event(d, herald.StatusQueued, "", 0, "", "", queuedAt.UTC().Truncate(time.Microsecond))}
	}
	b := &herald.Batch{Transitions: []herald.Transition{claim}}
	if err := w.log.Write(ctx, b); err != nil {
		w.o.Logger.Error("recording attempt", "delivery", d.ID, "err", err)
		return storeFailed
	}
	if !b.Transitions[0].Applied {
		// Someone else moved it on; the next look will see what they did.
		return Verdict{Action: Retry, Delay: 2 * time.Second}
	}

	p, err := w.providers.For(ctx, appID, d.Channel, d.Platform)
	if err != nil {
		detail := fmt.Sprintf("no usable %s provider: %v", d.Channel, err)
		return w.retryOrDie(ctx, d, attempt, "", herald.ReasonNoProvider, detail, 0)
	}
	msg := herald.Message{AppID: appID, NotificationID: n.ID, DeliveryID: d.ID, Channel: d.Channel,
		Platform: d.Platform, To: d.Address, Category: n.Category, Priority: n.Priority, Content: n.ContentFor(d), Attempt: attempt}
	if d.Platform == herald.PlatformWeb {
		// The browser's keys live with the device, not in the log.
		if msg.Subscription, err = w.subscription(ctx, d); err != nil {
			return w.retryOrDie(ctx, d, attempt, "", "", err.Error(), 0)
		}
	}
	if w.o.Links != nil {
		critical := w.o.Critical != nil && w.o.Critical(ctx, appID, n.Category)
		msg = w.o.Links.Prepare(msg, msg.Channel == herald.ChannelEmail && !critical)
	}
	sctx, cancel := context.WithTimeout(ctx, w.o.SendTimeout)
	start := time.Now()
	out := p.Send(sctx, msg)
	// A call cut short by the timeout (or a shutdown) may have reached the
	// provider all the same: its outcome is unknown, not failed. A client
	// whose connection deadline is the context's may return a moment before
	// the context itself reports the deadline, hence the clock as well.
	deadline, _ := sctx.Deadline()
	ambiguous := sctx.Err() != nil || !time.Now().Before(deadline)
	cancel()
	kind := p.Kind()
	if out.Provider != "" {
		kind = out.Provider
	}
	done := w.journal(answer{AppID: appID, DeliveryID: d.ID, Attempt: attempt, Kind: out.Kind, Provider: kind,
		ProviderMessageID: out.ProviderMessageID, RetryAfter: out.RetryAfter, Detail: out.Detail, Ambiguous: ambiguous, At: w.now()})
	if w.o.Observe != nil {
		w.o.Observe(d.Channel, kind, out.Kind, time.Since(start))
	}
	v, committed := w.afterSend(ctx, d, attempt, kind, out, ambiguous)
	if committed {
		done()
	}
	return v
}

// afterSend classifies a provider's answer and commits the outcome; d is
// the delivery as read before attempt was claimed. committed reports
// whether the outcome reached the log (or the log had moved on).
func (w *Worker) afterSend(ctx context.Context, d herald.Delivery, attempt int, kind string, out herald.Outcome, ambiguous bool) (v Verdict, committed bool) {
	switch out.Kind {
	case herald.OutcomeSent:
		return w.settle(ctx, d, attempt, herald.StatusSent, "", kind, out.ProviderMessageID, time.Time{}, out.Detail)
	case herald.OutcomeInvalidRecipient:
		w.disable(ctx, d)
		return w.settle(ctx, d, attempt, herald.StatusFailed, herald.ReasonInvalidRecipient, kind, "", time.Time{}, out.Detail)
	case herald.OutcomePermanent:
		return w.settle(ctx, d, attempt, herald.StatusFailed, herald.ReasonProviderRejected, kind, "", time.Time{}, out.Detail)
	case herald.OutcomeOptedOut:
		w.optOut(ctx, d)
		return w.settle(ctx, d, attempt, herald.StatusSuppressed, herald.ReasonOptedOut, kind, "", time.Time{}, out.Detail)
	case herald.OutcomeConfigError:
		// Retrying cannot help until someone fixes the provider settings.
		w.o.Logger.Error("provider configuration error: fix the app's provider settings", "app", d.AppID,
			"channel", d.Channel, "provider", kind, "detail", out.Detail)
		return w.settle(ctx, d, attempt, herald.StatusFailed, herald.ReasonProviderConfig, kind, "", time.Time{}, out.Detail)
	default:
		if ambiguous {
			return w.retry(ctx, d, attempt, kind, herald.ReasonPossibleDuplicate,
				fmt.Sprintf("%s: no answer within %s, the provider may have accepted it: %s", PossibleDuplicate, w.o.SendTimeout, out.Detail),
				out.RetryAfter)
		}
		return w.retry(ctx, d, attempt, kind, "", out.Detail, out.RetryAfter)
	}
}

// holdForQuietHours defers d to the end of its user's quiet hours when now
// falls inside them, unless the notification's category is critical. The
// window is read in the user's timezone (UTC without one).
func (w *Worker) holdForQuietHours(ctx context.Context, d herald.Delivery, n herald.Notification, q *herald.QuietHours, now time.Time) (Verdict, bool) {
	// A delivery taken over from a crashed attempt is finished, not held.
	if q == nil || d.Status == herald.StatusSending || (w.o.Critical != nil && w.o.Critical(ctx, d.AppID, n.Category)) {
		return Verdict{}, false
	}
	u, err := w.store.GetUser(ctx, d.AppID, d.UserID)
	if err != nil {
		w.o.Logger.Error("reading the user for quiet hours", "delivery", d.ID, "err", err)
		return storeFailed, true
	}
	loc := time.UTC
	if u.Timezone != "" {
		if l, err := time.LoadLocation(u.Timezone); err == nil {
			loc = l
		}
	}
	until, inside := q.Holds(now, loc)
	if !inside {
		return Verdict{}, false
	}
	return w.Defer(ctx, d, until, herald.ReasonQuietHours, fmt.Sprintf("quiet hours %s to %s (%s): held until %s",
		q.Start, q.End, loc, until.In(loc).Format("2006-01-02 15:04 MST"))), true
}

// Defer holds d back until until: it becomes scheduled with reason and
// detail on its timeline, and the reconciler queues it again when its time
// comes. The message in hand is then acknowledged. For any send-time rule
// that delays rather than drops (quiet hours, a deferring frequency cap).
func (w *Worker) Defer(ctx context.Context, d herald.Delivery, until time.Time, reason, detail string) Verdict {
	t := herald.Transition{AppID: d.AppID, DeliveryID: d.ID,
		From:       []herald.Status{herald.StatusAccepted, herald.StatusScheduled, herald.StatusQueued},
		IfAttempts: &d.Attempts, To: herald.StatusScheduled, Reason: reason, DueAt: until,
		Event: w.event(d, herald.StatusScheduled, reason, d.Attempts, "", detail, w.now())}
	if err := w.log.Write(ctx, &herald.Batch{Transitions: []herald.Transition{t}}); err != nil {
		w.o.Logger.Error("deferring a delivery", "delivery", d.ID, "reason", reason, "err", err)
		return storeFailed
	}
	// Not applied: someone else moved it on (a cancel, another worker);
	// the log has its state either way.
	return Verdict{Action: Ack}
}

// answer is a provider's answer to one attempt as the journal keeps it.
type answer struct {
	AppID             string             `json:"app"`
	DeliveryID        string             `json:"delivery"`
	Attempt           int                `json:"attempt"`
	Kind              herald.OutcomeKind `json:"kind"`
	Provider          string             `json:"provider,omitempty"`
	ProviderMessageID string             `json:"provider_message_id,omitempty"`
	RetryAfter        time.Duration      `json:"retry_after,omitempty"`
	Detail            string             `json:"detail,omitempty"`
	Ambiguous         bool               `json:"ambiguous,omitempty"`
	At                time.Time          `json:"at"`
}

// journal records a provider's answer, when there is a journal, and
// returns the function that marks it committed.
func (w *Worker) journal(a answer) (done func()) {
	if w.o.Journal == nil {
		return func() {}
	}
	rec, err := json.Marshal(a)
	if err == nil {
		done, err = w.o.Journal.Append(rec)
	}
	if err != nil {
		// Without the record a crash before the commit means a flagged
		// possible duplicate, as without a journal.
		w.o.Logger.Warn("journal: recording a provider answer", "delivery", a.DeliveryID, "err", err)
		return func() {}
	}
	return done
}

// Recover commits the outcome of a provider answer that an earlier process
// recorded in its journal but may have died before committing. It applies
// only while the delivery is still sending that very attempt, through the
// same compare-and-set as after a send; otherwise the log has moved on (the
// outcome was committed, or another worker took the delivery over) and the
// record is dropped. applied reports whether the outcome was committed now;
// an error means the log could not be read or written.
func (w *Worker) Recover(ctx context.Context, rec []byte) (applied bool, err error) {
	var a answer
	if err := json.Unmarshal(rec, &a); err != nil || a.DeliveryID == "" || a.Attempt < 1 {
		w.o.Logger.Warn("journal: skipping an unreadable record", "err", err)
		return false, nil
	}
	d, err := w.store.GetDelivery(ctx, a.AppID, a.DeliveryID)
	if herald.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("deliver: recover delivery %q: %w", a.DeliveryID, err)
	}
	if d.Status != herald.StatusSending || d.Attempts != a.Attempt {
		return false, nil
	}
	// As Handle saw it before the claim: the outcome's compare-and-set then
	// requires status sending with this attempt.
	d.Attempts = a.Attempt - 1
	out := herald.Outcome{Kind: a.Kind, ProviderMessageID: a.ProviderMessageID, RetryAfter: a.RetryAfter,
		Detail: a.Detail, Provider: a.Provider}
	// The queue's message, if any, finds the outcome in the log.
	if _, committed := w.afterSend(ctx, d, a.Attempt, a.Provider, out, a.Ambiguous); !committed {
		return false, fmt.Errorf("deliver: recover the outcome of delivery %q attempt %d: not committed", a.DeliveryID, a.Attempt)
	}
	return true, nil
}

// PossibleDuplicate starts the detail of every timeline event after which
// the provider may have received a delivery twice: an attempt that follows
// one whose outcome is unknown, and the retry of a timed-out call.
const PossibleDuplicate = "possible_duplicate"

// retryOrDie schedules the next attempt with backoff, or marks the
// delivery dead after the channel's last one. reason is kept on a retry
// and as the dead reason, except possible_duplicate, which only a retry
// carries (the next attempt reads it).
func (w *Worker) retryOrDie(ctx context.Context, d herald.Delivery, attempt int, provider, reason, detail string, retryAfter time.Duration) Verdict {
	v, _ := w.retry(ctx, d, attempt, provider, reason, detail, retryAfter)
	return v
}

// retry is retryOrDie that also says whether the outcome was committed.
func (w *Worker) retry(ctx context.Context, d herald.Delivery, attempt int, provider, reason, detail string, retryAfter time.Duration) (Verdict, bool) {
	sched := w.o.Schedules[d.Channel]
	used := attempt
	if used >= sched.Attempts {
		used -= w.replayedAt(ctx, d)
	}
	if used >= sched.Attempts {
		if reason == "" || reason == herald.ReasonPossibleDuplicate {
			reason = herald.ReasonRetriesExhausted
		}
		return w.settle(ctx, d, attempt, herald.StatusDead, reason, provider, "", time.Time{}, detail)
	}
	delay := w.backoff(sched, used)
	if delay < retryAfter {
		delay = retryAfter
	}
	due := w.now().Add(delay)
	v, committed := w.settle(ctx, d, attempt, herald.StatusQueued, reason, provider, "", due, detail)
	if v.Action == Ack && delay <= queueRetryLimit {
		return Verdict{Action: Retry, Delay: delay}, committed
	}
	// A longer wait is kept in the log, not in the queue: a message waiting
	// in JetStream counts against its consumer's MaxAckPending and would
	// hold up the whole channel. The reconciler republishes it when due.
	return v, committed
}

// queueRetryLimit is the longest retry delay left to the queue's redelivery.
const queueRetryLimit = 10 * time.Second

// backoff is exponential with full jitter.
func (w *Worker) backoff(s Schedule, attempt int) time.Duration {
	return time.Duration(w.o.Jitter(int64(s.ceiling(attempt)))) + time.Millisecond
}

// replayedAt returns the attempt count at which the delivery was last
// replayed from the dead letters (its fresh budget starts there), or 0.
func (w *Worker) replayedAt(ctx context.Context, d herald.Delivery) int {
	evs, err := w.store.ListEvents(ctx, d.AppID, d.NotificationID)
	if err != nil {
		// Without the timeline the delivery dies a replay early at worst,
		// and stays in the dead letters to be replayed again.
		w.o.Logger.Warn("reading the timeline for a replay", "delivery", d.ID, "err", err)
		return 0
	}
	at := 0
	for _, e := range evs {
		if e.DeliveryID == d.ID && e.Reason == herald.ReasonReplayed {
			at = e.Attempt
		}
	}
	return at
}

// finish writes the attempt's outcome; only then may the message be acked.
func (w *Worker) finish(ctx context.Context, d herald.Delivery, attempt int, to herald.Status, reason, provider, providerID string, due time.Time, detail string) Verdict {
	v, _ := w.settle(ctx, d, attempt, to, reason, provider, providerID, due, detail)
	return v
}

// settle is finish that also says whether the outcome was committed (or
// the log had moved on, so that it never will be).
func (w *Worker) settle(ctx context.Context, d herald.Delivery, attempt int, to herald.Status, reason, provider, providerID string, due time.Time, detail string) (Verdict, bool) {
	now := w.now()
	t := herald.Transition{AppID: d.AppID, DeliveryID: d.ID, To: to, Reason: reason,
		Attempts: attempt, Provider: provider, ProviderMessageID: providerID, DueAt: due,
		Event: w.event(d, to, reason, attempt, provider, detail, now), Fallback: w.fallbackStep(ctx, d, to, reason, now)}
	if attempt > d.Attempts {
		t.From, t.IfAttempts = []herald.Status{herald.StatusSending}, &attempt
	} else {
		t.IfAttempts = &d.Attempts
	}
	b := &herald.Batch{Transitions: []herald.Transition{t}}
	if err := w.writeOutcome(ctx, b); err != nil {
		w.o.Logger.Error("recording outcome", "delivery", d.ID, "status", to, "err", err)
		return storeFailed, herald.ErrorCode(err) == herald.CodeConflict
	}
	if !b.Transitions[0].Applied {
		w.o.Logger.Warn("delivery changed while it was being sent", "delivery", d.ID, "status", to)
	} else if to == herald.StatusDead && w.o.OnDead != nil {
		w.o.OnDead(d.Channel)
	}
	// Only now, with the outcome (dead included) committed, may the queue let go of the message.
	return Verdict{Action: Ack}, true
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
