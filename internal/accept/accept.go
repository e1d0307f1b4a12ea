// Package accept is the API role's core: it validates a send request,
// resolves its recipients to addresses and devices, applies opt-outs, and
// writes the notification and its deliveries to the log through the group
// commit, which then queues them. A 202 leaves here only after the log
// commit.
package accept

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/fallback"
	"github.com/heraldhq/herald/internal/tmpl"
	"github.com/heraldhq/herald/internal/validate"
)

// Store is what accepting needs to read.
type Store interface {
	GetApp(ctx context.Context, id string) (herald.App, error)
	GetUser(ctx context.Context, appID, userID string) (herald.User, error)
	GetUserContacts(ctx context.Context, appID string, userIDs []string) (map[string]herald.UserContacts, error)
	GetIdempotency(ctx context.Context, appID, key string) (herald.Idempotency, error)
	GetNotification(ctx context.Context, appID, id string) (herald.Notification, error)
	ListDeliveries(ctx context.Context, appID, notificationID string) ([]herald.Delivery, error)
	GetTopic(ctx context.Context, appID, name string) (herald.Topic, error)
	GetFanout(ctx context.Context, appID, notificationID string) (herald.Fanout, error)
	ApplyFanoutPage(ctx context.Context, p *herald.FanoutPage) error
	ReserveSMS(ctx context.Context, appID, day string, n, budget int) (herald.SMSBudgetUse, error)
}

// LogWriter commits log batches: the group-commit writer, which also
// queues the committed deliveries for the workers.
type LogWriter interface {
	Write(ctx context.Context, b *herald.Batch) error
}

// Limits bound a request.
type Limits struct {
	MaxRecipients int // default 1000
	MaxBodyChars  int // per content field, default 100_000
}

// Caps of a send request's payloads besides the content fields.
const (
	MaxPushDataBytes     = 4 << 10  // content.data, as JSON
	MaxTemplateDataBytes = 64 << 10 // data, as JSON
)

// Service accepts notifications. It implements herald.Sender.
type Service struct {
	store  Store
	log    LogWriter
	now    func() time.Time
	logger *slog.Logger
	limits Limits
	// OnAccepted, when set, is called with the channel of every accepted delivery (metrics).
	onAccepted func(herald.Channel, herald.Status)
	admit      func(herald.Channel, int) error
	templates  Templates
	critical   func(ctx context.Context, appID, category string) bool
	onFanout   func()
	// onSMSBudget is told every reservation against an app's SMS budget.
	onSMSBudget func(ctx context.Context, app herald.App, day string, use herald.SMSBudgetUse)

	mu       sync.Mutex
	inFlight map[string]bool // app id + idempotency key of requests being accepted
}

// Options configure a Service.
type Options struct {
	Logger     *slog.Logger
	Now        func() time.Time
	Limits     Limits
	OnAccepted func(herald.Channel, herald.Status)
	// Admit, when set, is asked before the log write whether a channel's
	// queue can take n more deliveries; its error (CodeUnavailable or
	// CodeRateLimited, with RetryAfterSeconds) refuses the whole request.
	// A replay of a stored answer is never refused.
	Admit func(c herald.Channel, n int) error
	// Templates renders requests that name a template; nil refuses them.
	Templates Templates
	// Critical, when set, reports whether the app marks a category
	// critical: its notifications go to recipients who opted out. nil
	// means no category is critical.
	Critical func(ctx context.Context, appID, category string) bool
	// OnFanout, when set, is called after a notification to a topic is
	// committed, so that a fan-out runner can start at once.
	OnFanout func()
	// OnSMSBudget, when set, is called after every reservation against an
	// app's daily SMS budget (metrics, and the webhook events
	// sms.budget_warning and sms.budget_exceeded).
	OnSMSBudget func(ctx context.Context, app herald.App, day string, use herald.SMSBudgetUse)
}

// New returns a Service.
func New(store Store, log LogWriter, o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Limits.MaxRecipients <= 0 {
		o.Limits.MaxRecipients = 1000
	}
	if o.Limits.MaxBodyChars <= 0 {
		o.Limits.MaxBodyChars = 100_000
	}
	return &Service{store: store, log: log, now: o.Now, logger: o.Logger,
		limits: o.Limits, onAccepted: o.OnAccepted, admit: o.Admit, templates: o.Templates, critical: o.Critical,
		onFanout: o.OnFanout, onSMSBudget: o.OnSMSBudget, inFlight: map[string]bool{}}
}

var _ herald.Sender = (*Service)(nil)

// Send implements herald.Sender.
func (s *Service) Send(ctx context.Context, appID string, req herald.SendRequest) (herald.Accepted, bool, error) {
	if err := s.normalize(&req); err != nil {
		return herald.Accepted{}, false, err
	}
	var hash []byte
	if key := req.IdempotencyKey; key != "" {
		hash = requestHash(req)
		if a, ok, err := s.replay(ctx, appID, key, hash); err != nil || ok {
			return a, ok, err
		}
		flight := appID + "\x00" + key
		s.mu.Lock()
		busy := s.inFlight[flight]
		s.inFlight[flight] = true
		s.mu.Unlock()
		if busy {
			return herald.Accepted{}, false, &herald.Error{Code: herald.CodeConflict,
				Message: "a request with this Idempotency-Key is still being processed", RetryAfterSeconds: 1}
		}
		defer func() {
			s.mu.Lock()
			delete(s.inFlight, flight)
			s.mu.Unlock()
		}()
	}

	var err error
	now := s.now().UTC().Truncate(time.Microsecond)
	n := herald.Notification{AppID: appID, ID: uuid.Must(uuid.NewV7()).String(), Category: req.Category,
		Priority: req.Priority, Content: req.Content, Fallback: req.Fallback, FallbackWindow: req.FallbackWindow, CreatedAt: now}
	var plan *templatePlan
	if req.Template != "" {
		if plan, err = s.loadTemplate(ctx, appID, req); err != nil {
			return herald.Accepted{}, false, err
		}
	}
	fanout, err := s.topic(ctx, appID, req)
	if err != nil {
		return herald.Accepted{}, false, err
	}
	users, err := s.requestUsers(ctx, appID, req)
	if err != nil {
		return herald.Accepted{}, false, err
	}
	deliveries, details, err := s.resolve(ctx, n, req, users, plan, fanout != nil)
	if err != nil {
		return herald.Accepted{}, false, err
	}
	var app herald.App
	if plan != nil || hasSMS(deliveries) {
		if app, err = s.store.GetApp(ctx, appID); err != nil {
			return herald.Accepted{}, false, fmt.Errorf("accept: app %q: %w", appID, err)
		}
	}
	if err := guardSMSRegions(app, req, deliveries); err != nil {
		return herald.Accepted{}, false, err
	}
	if plan != nil {
		if n.Template, err = plan.render(app.DefaultLocale, deliveries, req.Data, fanout != nil); err != nil {
			return herald.Accepted{}, false, err
		}
	}
	if err := s.schedule(ctx, appID, req, now, deliveries, users); err != nil {
		return herald.Accepted{}, false, err
	}
	for i := range deliveries {
		// A fallback window runs from when the delivery is due.
		if d := &deliveries[i]; d.UserID != "" && (d.Status == herald.StatusAccepted || d.Status == herald.StatusScheduled) {
			d.FallbackDue = fallback.WindowDue(n, d.Channel, d.NextAttemptAt)
		}
	}

	if s.admit != nil {
		queued := map[herald.Channel]int{}
		for _, d := range deliveries {
			if d.Status == herald.StatusAccepted {
				queued[d.Channel]++
			}
		}
		for _, c := range herald.AllChannels() {
			if queued[c] == 0 {
				continue
			}
			if err := s.admit(c, queued[c]); err != nil {
				return herald.Accepted{}, false, fmt.Errorf("accept: %s queue: %w", c, err)
			}
		}
	}

	if err := s.reserveSMS(ctx, app, deliveries, now); err != nil {
		return herald.Accepted{}, false, err
	}

	rec := herald.NewNotification{Notification: n, Deliveries: deliveries, Fanout: fanout}
	acc := herald.Accepted{ID: n.ID, Status: "accepted", Deliveries: make([]herald.AcceptedDelivery, len(deliveries))}
	for i, d := range deliveries {
		acc.Deliveries[i] = herald.AcceptedDelivery{ID: d.ID, UserID: d.UserID, Channel: d.Channel, Status: d.Status, Reason: d.Reason}
		rec.Events = append(rec.Events, herald.Event{AppID: appID, NotificationID: n.ID, DeliveryID: d.ID,
			Channel: d.Channel, Status: d.Status, Reason: d.Reason, Detail: firstDetail(d, details[d.ID]), At: now})
	}
	if req.IdempotencyKey != "" {
		body, err := json.Marshal(acc)
		if err != nil {
			return herald.Accepted{}, false, fmt.Errorf("accept: encode answer: %w", err)
		}
		rec.Idempotency = &herald.Idempotency{AppID: appID, Key: req.IdempotencyKey, RequestHash: hash,
			NotificationID: n.ID, Response: body, CreatedAt: now}
	}

	if err := s.log.Write(ctx, &herald.Batch{Notifications: []herald.NewNotification{rec}}); err != nil {
		if herald.ErrorCode(err) == herald.CodeConflict && req.IdempotencyKey != "" {
			// Another process accepted the same key first.
			if a, ok, rerr := s.replay(ctx, appID, req.IdempotencyKey, hash); rerr != nil || ok {
				return a, ok, rerr
			}
		}
		if herald.ErrorCode(err) == herald.CodeConflict {
			// Fresh ids cannot collide: only a write retried after an unclear outcome can.
			err = &herald.Error{Code: herald.CodeInternal, Message: "writing the notification failed", Err: err}
		}
		return herald.Accepted{}, false, fmt.Errorf("accept: write notification %s: %w", n.ID, err)
	}
	for _, d := range deliveries {
		if s.onAccepted != nil {
			s.onAccepted(d.Channel, d.Status)
		}
	}
	if fanout != nil && s.onFanout != nil {
		s.onFanout()
	}
	return acc, false, nil
}

// Cancel implements herald.Sender. Each delivery moves to canceled only if
// it is still waiting when the log writes it, so a worker that claimed it
// first wins and sends.
func (s *Service) Cancel(ctx context.Context, appID, notificationID string) (int, error) {
	if _, err := s.store.GetNotification(ctx, appID, notificationID); err != nil {
		return 0, fmt.Errorf("accept: cancel %s: %w", notificationID, err)
	}
	// First stop a fan-out, so that no delivery is written after the list below.
	if err := s.stopFanout(ctx, appID, notificationID); err != nil {
		return 0, fmt.Errorf("accept: cancel %s: %w", notificationID, err)
	}
	ds, err := s.store.ListDeliveries(ctx, appID, notificationID)
	if err != nil {
		return 0, fmt.Errorf("accept: cancel %s: %w", notificationID, err)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	waiting := []herald.Status{herald.StatusAccepted, herald.StatusScheduled, herald.StatusQueued}
	b := &herald.Batch{}
	for _, d := range ds {
		if slices.Contains(waiting, d.Status) {
			b.Transitions = append(b.Transitions, herald.Transition{AppID: appID, DeliveryID: d.ID, From: waiting,
				To: herald.StatusCanceled, Reason: "canceled_by_request",
				Event: herald.Event{AppID: appID, NotificationID: notificationID, DeliveryID: d.ID, Channel: d.Channel,
					Status: herald.StatusCanceled, Reason: "canceled_by_request", At: now}})
		}
	}
	if len(b.Transitions) == 0 {
		return 0, nil
	}
	if err := s.log.Write(ctx, b); err != nil {
		return 0, fmt.Errorf("accept: cancel %s: %w", notificationID, err)
	}
	n := 0
	for _, t := range b.Transitions {
		if t.Applied {
			n++
		}
	}
	return n, nil
}

func (s *Service) replay(ctx context.Context, appID, key string, hash []byte) (herald.Accepted, bool, error) {
	idem, err := s.store.GetIdempotency(ctx, appID, key)
	if herald.IsNotFound(err) {
		return herald.Accepted{}, false, nil
	}
	if err != nil {
		return herald.Accepted{}, false, fmt.Errorf("accept: look up idempotency key: %w", err)
	}
	if string(idem.RequestHash) != string(hash) {
		return herald.Accepted{}, false, &herald.Error{Code: herald.CodeConflict,
			Message: "this Idempotency-Key was already used with a different request body"}
	}
	var a herald.Accepted
	if err := json.Unmarshal(idem.Response, &a); err != nil {
		return herald.Accepted{}, false, fmt.Errorf("accept: decode stored answer for key %q: %w", key, err)
	}
	return a, true, nil
}

// requestHash identifies a request's meaning, independent of JSON layout.
func requestHash(req herald.SendRequest) []byte {
	b, _ := json.Marshal(req) // plain data: cannot fail
	h := sha256.Sum256(b)
	return h[:]
}

// normalize validates the request and fills defaults in place.
func (s *Service) normalize(req *herald.SendRequest) error {
	var v herald.Validation
	if len(req.To) == 0 {
		v.Add("to", "at least one recipient is required")
	}
	if len(req.To) > s.limits.MaxRecipients {
		v.Add("to", "at most %d recipients per request", s.limits.MaxRecipients)
	}
	topics := 0
	for i := range req.To {
		r := &req.To[i]
		field := "to[" + strconv.Itoa(i) + "]"
		set := 0
		for _, f := range []string{r.UserID, r.Email, r.Phone, r.Topic} {
			if f != "" {
				set++
			}
		}
		if set != 1 {
			v.Add(field, "give exactly one of user_id, email, phone or topic")
			continue
		}
		switch {
		case r.Topic != "":
			if err := validate.Topic(r.Topic); err != nil {
				v.Add(field+".topic", "%v", err)
			} else if topics++; topics > 1 {
				v.Add(field+".topic", "at most one topic per notification")
			}
		case r.UserID != "":
			if len(r.UserID) > 128 {
				v.Add(field+".user_id", "at most 128 characters")
			}
		case r.Email != "":
			if err := validate.Email(r.Email); err != nil {
				v.Add(field+".email", "%v", err)
			}
		case r.Phone != "":
			e164, err := validate.Phone(r.Phone)
			if err != nil {
				v.Add(field+".phone", "%v", err)
			}
			r.Phone = e164
		}
	}
	seen := map[herald.Channel]bool{}
	for i, c := range req.Channels {
		if !c.Valid() {
			v.Add(fmt.Sprintf("channels[%d]", i), "unknown channel %q: use push, email or sms", c)
		} else if seen[c] {
			v.Add(fmt.Sprintf("channels[%d]", i), "channel %q is listed twice", c)
		}
		seen[c] = true
	}
	checkFallback(&v, req)
	if req.Category == "" {
		req.Category = "transactional"
	} else if err := validate.Category(req.Category); err != nil {
		v.Add("category", "%v", err)
	}
	if req.Priority == "" {
		req.Priority = herald.PriorityNormal
	} else if !req.Priority.Valid() {
		v.Add("priority", "use normal or high")
	}
	c := req.Content
	switch {
	case req.Template != "":
		if !contentEmpty(c) {
			v.Add("content", "give either template (with data) or content, not both")
		}
		if err := tmpl.CheckName(req.Template); err != nil {
			v.Add("template", "%v", err)
		}
		if req.TemplateVersion < 0 {
			v.Add("template_version", "must be a version number, 1 or more")
		}
	case req.TemplateVersion != 0 || req.Data != nil:
		v.Add("template", "is required with template_version and data")
	case c.Body == "" && c.HTML == "" && c.Title == "":
		v.Add("content", "give at least a body, an html part or a title")
	}
	for _, f := range [...]struct{ name, val string }{
		{"title", c.Title}, {"body", c.Body}, {"subject", c.Subject}, {"html", c.HTML}, {"url", c.URL}, {"icon", c.Icon}} {
		if len(f.val) > s.limits.MaxBodyChars {
			v.Add("content."+f.name, "at most %d characters", s.limits.MaxBodyChars)
		}
	}
	// Push services take about 4 KiB of payload in all; template data is
	// read by every render of the request.
	if len(c.Data) > maxDataKeys {
		v.Add("content.data", "at most %d keys", maxDataKeys)
	} else if raw, _ := json.Marshal(c.Data); len(raw) > MaxPushDataBytes {
		v.Add("content.data", "at most %d bytes of JSON", MaxPushDataBytes)
	}
	if raw, _ := json.Marshal(req.Data); len(raw) > MaxTemplateDataBytes {
		v.Add("data", "at most %d bytes of JSON", MaxTemplateDataBytes)
	}
	if strings.ContainsAny(c.Subject, "\r\n") {
		v.Add("content.subject", "must be one line")
	}
	checkSchedule(&v, req, s.now())
	return v.Err()
}

// maxDataKeys bounds a push's data, as a template's push data is bounded:
// every key goes to the provider, and the log keeps them all.
const maxDataKeys = 100

func contentEmpty(c herald.Content) bool {
	return c.Title == "" && c.Body == "" && c.Subject == "" && c.HTML == "" && c.URL == "" && c.Icon == "" && len(c.Data) == 0
}

// checkFallback validates the fallback plan: known channels, each once,
// and not together with channels, which it replaces.
func checkFallback(v *herald.Validation, req *herald.SendRequest) {
	if w := req.FallbackWindow; w != 0 {
		switch {
		case req.Fallback == nil:
			v.Add("fallback_window", "is a window of the fallback plan: give fallback too")
		case w < time.Second || w > maxFallbackWindow || w%time.Second != 0:
			v.Add("fallback_window", "must be whole seconds from 1s to %s", maxFallbackWindow)
		}
	}
	if req.Fallback == nil {
		return
	}
	if len(req.Channels) > 0 {
		v.Add("fallback", "give channels or fallback, not both: fallback replaces channels")
	}
	if len(req.Fallback) == 0 {
		v.Add("fallback", "list at least one channel, like [\"push\", \"sms\", \"email\"]")
	}
	seen := map[herald.Channel]bool{}
	for i, c := range req.Fallback {
		if !c.Valid() {
			v.Add(fmt.Sprintf("fallback[%d]", i), "unknown channel %q: use push, email or sms", c)
		} else if seen[c] {
			v.Add(fmt.Sprintf("fallback[%d]", i), "channel %q is listed twice", c)
		}
		seen[c] = true
	}
}

// maxFallbackWindow bounds fallback_window: a receipt later than a week
// is not coming.
const maxFallbackWindow = 7 * 24 * time.Hour

// firstDetail is the note on a delivery's first timeline event: why a
// fallback plan skipped or took its channel, and when a scheduled one is due.
func firstDetail(d herald.Delivery, fallback string) string {
	sched := scheduledDetail(d)
	switch {
	case fallback == "":
		return sched
	case sched == "":
		return fallback
	}
	return fallback + "; " + sched
}
