// Package webhook is Herald's outbound webhooks: each app's endpoints
// (created, listed and deleted through the API), the matching of delivery
// events against them (the tracker role reads the EVENTS stream through
// its own durable consumer), and the sender that posts each match, signed
// per the Standard Webhooks spec.
//
// A match becomes a row in the store (herald.WebhookPost) before the event
// is acknowledged, and the sender works through the rows that are due: a
// failing endpoint's retries wait in the store with their due time, so
// they hold up neither other endpoints nor the event stream, and survive
// a restart. The webhook-id of a post is derived from the event and the
// endpoint, so every attempt, and an event read twice, carries the same id.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/netguard"
)

// Store is what webhooks need of the store.
type Store interface {
	herald.WebhookStore
	// GetDelivery fills a payload's user_id and device.
	GetDelivery(ctx context.Context, appID, id string) (herald.Delivery, error)
}

// Sealer encrypts endpoint secrets at rest (internal/secret.Box).
type Sealer interface {
	Seal(plaintext, associatedData []byte) ([]byte, error)
	Open(sealed, associatedData []byte) ([]byte, error)
}

// Event names besides delivery.<status>.
const (
	EventDeviceInvalid    = "device.invalid"
	EventContactInvalid   = "contact.invalid"
	EventUserUnsubscribed = "user.unsubscribed"
	// EventSMSBudgetWarning and EventSMSBudgetExceeded are an app's daily
	// SMS budget reaching 80%, and being used up (or refusing SMS): each
	// once per app and UTC day.
	EventSMSBudgetWarning  = "sms.budget_warning"
	EventSMSBudgetExceeded = "sms.budget_exceeded"
)

// statuses lists every delivery status, each an event delivery.<status>.
var statuses = []herald.Status{herald.StatusAccepted, herald.StatusScheduled, herald.StatusQueued, herald.StatusSending,
	herald.StatusSent, herald.StatusDelivered, herald.StatusOpened, herald.StatusClicked, herald.StatusFailed,
	herald.StatusSuppressed, herald.StatusCanceled, herald.StatusDead}

// EventNames returns every event an endpoint may subscribe to.
func EventNames() []string {
	out := make([]string, 0, len(statuses)+3)
	for _, s := range statuses {
		out = append(out, "delivery."+string(s))
	}
	return append(out, EventDeviceInvalid, EventContactInvalid, EventUserUnsubscribed,
		EventSMSBudgetWarning, EventSMSBudgetExceeded)
}

// Options configure a Service. Zero values take the defaults.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// AllowPrivateTargets lets posts reach loopback, private, link-local
	// and metadata addresses (HERALD_ALLOW_PRIVATE_TARGETS).
	AllowPrivateTargets bool
	// Attempts is how many times a post is tried before it is given up;
	// default 15.
	Attempts int
	// RetryBase is the wait after the first failed attempt; it doubles
	// after each, up to RetryCap (default 5s and 1h): with the default
	// attempts, about six hours in all.
	RetryBase time.Duration
	RetryCap  time.Duration
	// Timeout bounds one post; default 10s.
	Timeout time.Duration
	// Poll is how often the sender looks for due posts; default 1s. A
	// match made in this process wakes it at once.
	Poll time.Duration
	// CacheTTL is how long an app's endpoints are kept in memory; default
	// 5s. Changes made through this process apply at once.
	CacheTTL time.Duration
	// Registerer receives herald_webhook_posts_total; nil means none.
	Registerer prometheus.Registerer
}

// Service keeps endpoints, matches events and posts them. It is safe for
// concurrent use.
type Service struct {
	store  Store
	sealer Sealer
	o      Options
	log    *slog.Logger
	client *httpClient
	posts  *prometheus.CounterVec

	mu    sync.Mutex
	cache map[string]cached // by app

	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	cancel   context.CancelFunc
	stopOnce sync.Once
	started  bool
}

type cached struct {
	hooks []hook
	at    time.Time
}

// hook is an endpoint with its secret opened.
type hook struct {
	herald.Webhook
	key []byte
}

// Outcomes of a post, the label of herald_webhook_posts_total.
const (
	OutcomeDelivered = "delivered" // 2xx
	OutcomeFailed    = "failed"    // to be retried
	OutcomeGaveUp    = "gave_up"   // the last attempt failed
	OutcomeGone      = "gone"      // 410: the endpoint is disabled
	OutcomeRefused   = "refused"   // a private target, not allowed
	OutcomeDropped   = "dropped"   // the endpoint was deleted or disabled meanwhile
)

// New returns a Service. Start runs its sender; without it (a process
// without the tracker role) it only keeps endpoints.
func New(store Store, sealer Sealer, o Options) (*Service, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Attempts <= 0 {
		o.Attempts = 15
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 5 * time.Second
	}
	if o.RetryCap <= 0 {
		o.RetryCap = time.Hour
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = 5 * time.Second
	}
	s := &Service{store: store, sealer: sealer, o: o, log: o.Logger.With("component", "webhooks"),
		client: newHTTPClient(o.Timeout, o.AllowPrivateTargets), cache: map[string]cached{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	s.posts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_webhook_posts_total",
		Help: "Webhook posts by outcome: delivered, failed (retried later), gave_up, gone (410, endpoint disabled), refused (private target), dropped.",
	}, []string{"outcome"})
	if o.Registerer != nil {
		if err := o.Registerer.Register(s.posts); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Create validates and stores a new endpoint and returns it with its
// secret ("whsec_" and the base64 of 32 random bytes), which is never
// shown again. Called by POST /v1/webhooks. Errors: CodeInvalid naming
// "url" or "events[i]".
func (s *Service) Create(ctx context.Context, appID, rawURL string, events []string) (herald.Webhook, string, error) {
	var v herald.Validation
	if msg := s.checkURL(rawURL); msg != "" {
		v.Add("url", "%s", msg)
	}
	known := EventNames()
	var list []string
	if len(events) == 0 {
		v.Add("events", "subscribe to at least one event")
	}
	for i, e := range events {
		switch {
		case !slices.Contains(known, e):
			v.Add("events["+strconv.Itoa(i)+"]", "unknown event %q; use delivery.<status>, device.invalid, contact.invalid, user.unsubscribed, sms.budget_warning or sms.budget_exceeded", e)
		case !slices.Contains(list, e):
			list = append(list, e)
		}
	}
	if err := v.Err(); err != nil {
		return herald.Webhook{}, "", err
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key) // never fails (crypto/rand)
	id, err := uuid.NewV7()
	if err != nil {
		return herald.Webhook{}, "", fmt.Errorf("webhook: id: %w", err)
	}
	w := herald.Webhook{AppID: appID, ID: id.String(), URL: rawURL, Events: list,
		CreatedAt: s.o.Now().UTC().Truncate(time.Microsecond)}
	if w.Secret, err = s.sealer.Seal(key, sealAD(appID, w.ID)); err != nil {
		return herald.Webhook{}, "", fmt.Errorf("webhook: seal secret: %w", err)
	}
	if err := s.store.CreateWebhook(ctx, w); err != nil {
		return herald.Webhook{}, "", fmt.Errorf("webhook: create: %w", err)
	}
	s.forget(appID)
	return w, "whsec_" + base64.StdEncoding.EncodeToString(key), nil
}

// List returns the app's endpoints. Called by GET /v1/webhooks.
func (s *Service) List(ctx context.Context, appID string) ([]herald.Webhook, error) {
	ws, err := s.store.ListWebhooks(ctx, appID)
	if err != nil {
		return nil, fmt.Errorf("webhook: list: %w", err)
	}
	return ws, nil
}

// Delete removes an endpoint and what waits for it. Called by DELETE
// /v1/webhooks/{id}. Errors: CodeNotFound when the app has no such endpoint.
func (s *Service) Delete(ctx context.Context, appID, id string) error {
	if err := s.store.DeleteWebhook(ctx, appID, id); err != nil {
		return fmt.Errorf("webhook: delete %q: %w", id, err)
	}
	s.forget(appID)
	return nil
}

// checkURL returns why u cannot be an endpoint, or "".
func (s *Service) checkURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case raw == "" || err != nil || u.Host == "" || u.Opaque != "":
		return "must be an absolute http or https URL"
	case u.Scheme != "https" && u.Scheme != "http":
		return "must be an http or https URL"
	case u.User != nil:
		return "must not carry credentials"
	case len(raw) > 2048:
		return "must be at most 2048 characters"
	}
	if !s.o.AllowPrivateTargets {
		if reason := netguard.HostReason(u.Hostname()); reason != "" {
			return "is " + reason + "; private targets are not allowed"
		}
	}
	return ""
}

// sealAD binds a sealed secret to its endpoint, so that it cannot be
// moved to another.
func sealAD(appID, id string) []byte { return []byte("webhook\x00" + appID + "\x00" + id) }

// forget drops the app's cached endpoints.
func (s *Service) forget(appID string) {
	s.mu.Lock()
	delete(s.cache, appID)
	s.mu.Unlock()
}

// hooks returns the app's endpoints, from the cache when fresh.
func (s *Service) hooks(ctx context.Context, appID string) ([]hook, error) {
	now := s.o.Now()
	s.mu.Lock()
	c, ok := s.cache[appID]
	s.mu.Unlock()
	if ok && now.Sub(c.at) < s.o.CacheTTL {
		return c.hooks, nil
	}
	ws, err := s.store.ListWebhooks(ctx, appID)
	if err != nil {
		return nil, fmt.Errorf("webhook: endpoints of app %q: %w", appID, err)
	}
	hooks := make([]hook, 0, len(ws))
	for _, w := range ws {
		key, err := s.sealer.Open(w.Secret, sealAD(appID, w.ID))
		if err != nil {
			// A key change (HERALD_SECRET_KEY) makes the endpoint unusable;
			// the others still work.
			s.log.Error("cannot open a webhook secret (was HERALD_SECRET_KEY changed?)", "app", appID, "webhook", w.ID, "err", err)
			continue
		}
		hooks = append(hooks, hook{Webhook: w, key: key})
	}
	s.mu.Lock()
	s.cache[appID] = cached{hooks: hooks, at: now}
	s.mu.Unlock()
	return hooks, nil
}

// SMSBudgetData is the data of the sms.budget_* events.
type SMSBudgetData struct {
	AppID  string `json:"app_id"`
	Day    string `json:"day"`    // the UTC day, YYYY-MM-DD
	Used   int    `json:"used"`   // SMS counted that day
	Budget int    `json:"budget"` // the app's sms_daily_budget
}

// NotifySMSBudget stores a post of an sms.budget_warning or
// sms.budget_exceeded event for each of the app's endpoints subscribed to
// it. The webhook-id derives from the app, the event and the day, so the
// event is posted at most once per endpoint and day. Called by accepting,
// which learns from the store that the day's threshold was first crossed.
func (s *Service) NotifySMSBudget(ctx context.Context, typ string, d SMSBudgetData) error {
	hooks, err := s.hooks(ctx, d.AppID)
	if err != nil || len(hooks) == 0 {
		return err
	}
	now := s.o.Now().UTC()
	body, err := json.Marshal(struct {
		Type      string        `json:"type"`
		Timestamp time.Time     `json:"timestamp"`
		Data      SMSBudgetData `json:"data"`
	}{typ, now, d})
	if err != nil {
		return fmt.Errorf("webhook: payload: %w", err)
	}
	var posts []herald.WebhookPost
	for _, h := range hooks {
		if h.DisabledAt != nil || !slices.Contains(h.Events, typ) {
			continue
		}
		sum := sha256.Sum256([]byte(d.AppID + "\x00" + typ + "\x00" + d.Day + "\x00" + h.ID))
		posts = append(posts, herald.WebhookPost{AppID: d.AppID, ID: "msg_" + hex.EncodeToString(sum[:16]),
			WebhookID: h.ID, Payload: body, DueAt: now, CreatedAt: now})
	}
	if len(posts) == 0 {
		return nil
	}
	if err := s.store.AddWebhookPosts(ctx, posts); err != nil {
		return fmt.Errorf("webhook: store %d posts: %w", len(posts), err)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// Payload is the JSON body of a post.
type Payload struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      Data      `json:"data"`
}

// Data describes the delivery an event is about.
type Data struct {
	NotificationID string `json:"notification_id"`
	DeliveryID     string `json:"delivery_id"`
	UserID         string `json:"user_id"`
	DeviceID       string `json:"device_id,omitempty"`
	Channel        string `json:"channel"`
	Status         string `json:"status"`
	Reason         string `json:"reason"`
	Attempt        int    `json:"attempt"`
	Provider       string `json:"provider"`
	Detail         string `json:"detail"`
}

// types returns the webhook events of a delivery event.
func types(e herald.Event) []string {
	switch e.Status {
	case herald.TimelineUnsubscribed:
		// A step of the timeline, not a delivery status.
		return []string{EventUserUnsubscribed}
	case herald.TimelineFallback:
		// A step of the timeline; the next channel's deliveries have events of their own.
		return nil
	}
	out := []string{"delivery." + string(e.Status)}
	if e.Status == herald.StatusFailed && e.Reason == herald.ReasonInvalidRecipient {
		// The worker disabled the device or contact in the same step.
		if e.Channel == herald.ChannelPush {
			out = append(out, EventDeviceInvalid)
		} else {
			out = append(out, EventContactInvalid)
		}
	}
	return out
}

// HandleEvents matches delivery events against their apps' endpoints and
// stores a post for each match, all of a batch in one store write. An
// error (the store) makes the caller redeliver the events; a repeat
// stores nothing twice.
func (s *Service) HandleEvents(ctx context.Context, evs []herald.Event) error {
	var posts []herald.WebhookPost
	for _, e := range evs {
		var err error
		if posts, err = s.match(ctx, e, posts); err != nil {
			return err
		}
	}
	if len(posts) == 0 {
		return nil
	}
	if err := s.store.AddWebhookPosts(ctx, posts); err != nil {
		return fmt.Errorf("webhook: store %d posts: %w", len(posts), err)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// match appends to posts one post for each of the app's endpoints that
// subscribed to the event.
func (s *Service) match(ctx context.Context, e herald.Event, posts []herald.WebhookPost) ([]herald.WebhookPost, error) {
	hooks, err := s.hooks(ctx, e.AppID)
	if err != nil || len(hooks) == 0 {
		return posts, err
	}
	var d *herald.Delivery
	now := s.o.Now().UTC()
	for _, typ := range types(e) {
		for _, h := range hooks {
			if h.DisabledAt != nil || !slices.Contains(h.Events, typ) {
				continue
			}
			if d == nil {
				got, err := s.store.GetDelivery(ctx, e.AppID, e.DeliveryID)
				if err != nil && herald.ErrorCode(err) != herald.CodeNotFound {
					return posts, fmt.Errorf("webhook: delivery %q of an event: %w", e.DeliveryID, err)
				}
				d = &got // a delivery erased meanwhile leaves user_id empty
			}
			// The worker disables a device, or a user's contact; a direct
			// address has nothing to disable.
			if (typ == EventDeviceInvalid && d.DeviceID == "") || (typ == EventContactInvalid && d.UserID == "") {
				continue
			}
			body, err := json.Marshal(Payload{Type: typ, Timestamp: e.At.UTC(), Data: Data{
				NotificationID: e.NotificationID, DeliveryID: e.DeliveryID, UserID: d.UserID,
				DeviceID: d.DeviceID, Channel: string(e.Channel), Status: string(e.Status), Reason: e.Reason,
				Attempt: e.Attempt, Provider: e.Provider, Detail: e.Detail}})
			if err != nil {
				return posts, fmt.Errorf("webhook: payload: %w", err)
			}
			posts = append(posts, herald.WebhookPost{AppID: e.AppID, ID: postID(e, typ, h.ID), WebhookID: h.ID,
				Payload: body, DueAt: now, CreatedAt: now})
		}
	}
	return posts, nil
}

// postID is the webhook-id of an event's post to an endpoint: the same
// whenever the event is read, so a receiver can drop repeats.
func postID(e herald.Event, typ, hookID string) string {
	h := sha256.New()
	for _, part := range []string{e.AppID, e.DeliveryID, string(e.Status), strconv.Itoa(e.Attempt),
		strconv.FormatInt(e.At.UnixMicro(), 10), typ, hookID} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "msg_" + hex.EncodeToString(h.Sum(nil)[:16])
}

// Sign returns the webhook-signature header value of a post: "v1," and
// the base64 of HMAC-SHA256(key, "<id>.<timestamp>.<body>").
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(timestamp, 10) + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// backoff is the wait after failed attempt n (1-based): the base doubled
// n-1 times, capped, with "equal jitter" (between half and all of it) so
// that endpoints coming back are not hit by every retry at once.
func (s *Service) backoff(n int) time.Duration {
	d := s.o.RetryBase
	for i := 1; i < n && d < s.o.RetryCap; i++ {
		d *= 2
	}
	d = min(d, s.o.RetryCap)
	return d/2 + mrand.N(d/2+1)
}
