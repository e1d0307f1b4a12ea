package track

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/tracklink"
)

// CallbackStore is what inbound callbacks need of the store.
type CallbackStore interface {
	GetDelivery(ctx context.Context, appID, id string) (herald.Delivery, error)
	DeliveryByProviderMessage(ctx context.Context, provider, providerMessageID string) (herald.Delivery, error)
	GetNotification(ctx context.Context, appID, id string) (herald.Notification, error)
	GetPreferences(ctx context.Context, appID, userID string) (herald.Preferences, error)
	PutPreferences(ctx context.Context, appID, userID string, p herald.Preferences) error
	SetContactStatus(ctx context.Context, appID, userID string, c herald.Channel, status string) error
	// GetUser and ListDevices are read for the next step of a fallback
	// notification whose delivery failed.
	GetUser(ctx context.Context, appID, userID string) (herald.User, error)
	ListDevices(ctx context.Context, appID, userID string) ([]herald.Device, error)
}

// LogWriter commits transitions to the notification log (the group-commit
// writer); their events then go out on the EVENTS stream like any other.
type LogWriter interface {
	Write(ctx context.Context, b *herald.Batch) error
}

// ConfiguredProviders returns the providers an app has configured for a
// channel, each built from its settings; callbacks use their credentials
// (a Twilio auth token, a SendGrid verification key) to check signatures.
type ConfiguredProviders interface {
	Configured(ctx context.Context, appID string, c herald.Channel) ([]herald.Provider, error)
}

// twilioVerifier is the part of the Twilio provider that checks callbacks.
type twilioVerifier interface {
	AccountSID() string
	VerifyCallback(fullURL string, params url.Values, signature string) bool
}

// sendgridVerifier is the part of the SendGrid provider that holds the
// Event Webhook's verification key.
type sendgridVerifier interface {
	WebhookPublicKey() *ecdsa.PublicKey
}

// CallbackOptions tune Callbacks. Zero values take the defaults.
type CallbackOptions struct {
	Logger *slog.Logger
	Now    func() time.Time
	// MaxSkew is how far a SendGrid signature's timestamp may be from now
	// before the batch is refused as stale (a replay); default 10 minutes.
	MaxSkew time.Duration
	// LookupWait is how long a Twilio callback waits for its message's
	// outcome to reach the log: Twilio may call back before the worker's
	// commit of "sent"; default 3s.
	LookupWait time.Duration
	// VerifyEvents checks a SendGrid signature (sendgrid.VerifyEvents).
	VerifyEvents func(key *ecdsa.PublicKey, timestamp string, body []byte, signature string) bool
	// Critical, when set, reports whether the app marks a category
	// critical; the next step of a fallback notification of such a
	// category goes to channels the user opted out of. nil means none is.
	Critical func(ctx context.Context, appID, category string) bool
}

// Callbacks turns inbound provider callbacks and tracking hits into
// transitions of the notification log. Every transition is a
// compare-and-set on the delivery's status, so a replayed or late callback
// never moves a status backwards or twice. It is safe for concurrent use.
type Callbacks struct {
	store     CallbackStore
	log       LogWriter
	providers ConfiguredProviders
	links     *tracklink.Links
	o         CallbackOptions
}

// NewCallbacks returns Callbacks.
func NewCallbacks(store CallbackStore, log LogWriter, providers ConfiguredProviders, links *tracklink.Links, o CallbackOptions) *Callbacks {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxSkew <= 0 {
		o.MaxSkew = 10 * time.Minute
	}
	if o.LookupWait <= 0 {
		o.LookupWait = 3 * time.Second
	}
	return &Callbacks{store: store, log: log, providers: providers, links: links, o: o}
}

// Refusals of unverified callbacks. They say nothing of why: whether a
// message exists or which check failed is not the caller's to learn.
var (
	errNoSignature  = &herald.Error{Code: herald.CodeUnauthorized, Message: "the request carries no signature"}
	errBadSignature = &herald.Error{Code: herald.CodeForbidden, Message: "the request's signature does not verify"}
)

// Provider kinds as they appear in deliveries' provider field.
const (
	kindTwilio   = "twilio"
	kindSendGrid = "sendgrid"
)

// Progress guards. A status moves forward only: a late "delivered" after
// "opened", or any repeat, matches no guard and changes nothing.
var (
	fromDelivered = []herald.Status{herald.StatusSent}
	fromOpened    = []herald.Status{herald.StatusSent, herald.StatusDelivered}
	fromClicked   = []herald.Status{herald.StatusSent, herald.StatusDelivered, herald.StatusOpened}
	// A bounce may come after the receiving server first took the message.
	fromBounced = []herald.Status{herald.StatusSent, herald.StatusDelivered}
	fromFailed  = []herald.Status{herald.StatusSent}
)

func (c *Callbacks) now() time.Time { return c.o.Now().UTC().Truncate(time.Microsecond) }

// move commits one guarded transition of d and reports whether it applied.
func (c *Callbacks) move(ctx context.Context, d herald.Delivery, from []herald.Status, to herald.Status, reason, provider, detail string) (bool, error) {
	return c.moveStep(ctx, d, from, to, reason, provider, detail, nil)
}

// moveStep is move that also writes a fallback step with the transition.
func (c *Callbacks) moveStep(ctx context.Context, d herald.Delivery, from []herald.Status, to herald.Status, reason, provider, detail string,
	step *herald.FallbackStep) (bool, error) {
	t := herald.Transition{AppID: d.AppID, DeliveryID: d.ID, From: from, To: to, Reason: reason, Fallback: step,
		Event: herald.Event{AppID: d.AppID, NotificationID: d.NotificationID, DeliveryID: d.ID, Channel: d.Channel,
			Status: to, Reason: reason, Attempt: d.Attempts, Provider: provider, Detail: detail, At: c.now()}}
	b := &herald.Batch{Transitions: []herald.Transition{t}}
	if err := c.log.Write(ctx, b); err != nil {
		return false, fmt.Errorf("track: record %s of delivery %q: %w", to, d.ID, err)
	}
	return b.Transitions[0].Applied, nil
}

// note appends a timeline step that changes nothing of the delivery (an
// unsubscribe): a transition from its current status to the same one,
// which still fails, harmlessly, if the delivery moved meanwhile.
func (c *Callbacks) note(ctx context.Context, d herald.Delivery, step herald.Status, provider, detail string) error {
	t := herald.Transition{AppID: d.AppID, DeliveryID: d.ID, From: []herald.Status{d.Status}, To: d.Status,
		Reason: d.Reason, DueAt: d.NextAttemptAt,
		Event: herald.Event{AppID: d.AppID, NotificationID: d.NotificationID, DeliveryID: d.ID, Channel: d.Channel,
			Status: step, Attempt: d.Attempts, Provider: provider, Detail: detail, At: c.now()}}
	if err := c.log.Write(ctx, &herald.Batch{Transitions: []herald.Transition{t}}); err != nil {
		return fmt.Errorf("track: record %s of delivery %q: %w", step, d.ID, err)
	}
	return nil
}

// ---- Twilio ----

// TwilioStatus handles a status callback Twilio posted to fullURL (the
// public URL of /hooks/twilio/status with the query it was called with)
// with the form params and the X-Twilio-Signature header. The message's
// delivery names the app, whose Twilio auth token must verify the
// signature. Errors: CodeUnauthorized without a signature, CodeForbidden
// when it does not verify (an unknown message included).
func (c *Callbacks) TwilioStatus(ctx context.Context, fullURL string, params url.Values, signature string) error {
	if signature == "" {
		return errNoSignature
	}
	sid := params.Get("MessageSid")
	if sid == "" {
		sid = params.Get("SmsSid")
	}
	d, err := c.twilioDelivery(ctx, sid)
	if herald.IsNotFound(err) {
		return errBadSignature
	}
	if err != nil {
		return err
	}
	provs, err := c.providers.Configured(ctx, d.AppID, herald.ChannelSMS)
	if err != nil && !herald.IsNotFound(err) {
		return fmt.Errorf("track: sms providers of app %q: %w", d.AppID, err)
	}
	verified := false
	for _, p := range provs {
		v, ok := p.(twilioVerifier)
		if !ok || (params.Get("AccountSid") != "" && v.AccountSID() != params.Get("AccountSid")) {
			continue
		}
		if v.VerifyCallback(fullURL, params, signature) {
			verified = true
			break
		}
	}
	if !verified {
		return errBadSignature
	}

	status := params.Get("MessageStatus")
	if status == "" {
		status = params.Get("SmsStatus")
	}
	code := params.Get("ErrorCode")
	detail := "twilio: " + status
	if code != "" && code != "0" {
		detail += " (error " + code + ")"
	}
	switch status {
	case "delivered":
		_, err = c.move(ctx, d, fromDelivered, herald.StatusDelivered, "", kindTwilio, detail)
	case "read":
		_, err = c.move(ctx, d, fromOpened, herald.StatusOpened, "", kindTwilio, detail)
	case "undelivered", "failed":
		err = c.failed(ctx, d, fromFailed, twilioReason(code), kindTwilio, detail)
	default:
		// queued, sending, sent, accepted…: nothing the log does not know.
	}
	return err
}

// twilioReason classifies a failed message's error code (PROVIDERS.md §4).
func twilioReason(code string) string {
	switch code {
	case "21211", "21614", "30005", "30006":
		return herald.ReasonInvalidRecipient
	case "21610", "30004":
		return herald.ReasonOptedOut
	}
	return herald.ReasonProviderRejected
}

// twilioDelivery finds the delivery Twilio accepted as sid, waiting a
// little for the worker's commit of it.
func (c *Callbacks) twilioDelivery(ctx context.Context, sid string) (herald.Delivery, error) {
	if sid == "" || len(sid) > 64 {
		return herald.Delivery{}, herald.ErrNotFound
	}
	deadline := time.Now().Add(c.o.LookupWait)
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		d, err := c.store.DeliveryByProviderMessage(ctx, kindTwilio, sid)
		if !herald.IsNotFound(err) || time.Now().Add(wait).After(deadline) {
			return d, err
		}
		select {
		case <-ctx.Done():
			return herald.Delivery{}, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// failed records a failure the provider reported after accepting the
// message, and what it means for the contact: an address that does not
// exist is disabled, an opt-out turns the channel off.
func (c *Callbacks) failed(ctx context.Context, d herald.Delivery, from []herald.Status, reason, provider, detail string) error {
	step, err := c.fallbackStep(ctx, d, reason)
	if err != nil {
		return err
	}
	applied, err := c.moveStep(ctx, d, from, herald.StatusFailed, reason, provider, detail, step)
	if err != nil || !applied || d.UserID == "" {
		return err
	}
	switch reason {
	case herald.ReasonInvalidRecipient:
		if err := c.store.SetContactStatus(ctx, d.AppID, d.UserID, d.Channel, herald.DeviceInvalid); err != nil {
			return fmt.Errorf("track: disable %s contact of user %q: %w", d.Channel, d.UserID, err)
		}
	case herald.ReasonOptedOut:
		if _, err := c.optOut(ctx, d, ""); err != nil {
			return err
		}
	}
	return nil
}

// optOut turns the delivery's channel off for the user: for category
// only, or the whole channel when category is "". It reports whether the
// preferences changed (a repeat changes nothing).
func (c *Callbacks) optOut(ctx context.Context, d herald.Delivery, category string) (bool, error) {
	prefs, err := c.store.GetPreferences(ctx, d.AppID, d.UserID)
	if herald.IsNotFound(err) {
		return false, nil // the user was erased
	}
	if err != nil {
		return false, fmt.Errorf("track: preferences of user %q: %w", d.UserID, err)
	}
	if category == "" {
		if on, ok := prefs.Channels[d.Channel]; ok && !on {
			return false, nil
		}
		if prefs.Channels == nil {
			prefs.Channels = map[herald.Channel]bool{}
		}
		prefs.Channels[d.Channel] = false
	} else {
		if on, ok := prefs.Categories[category][d.Channel]; ok && !on {
			return false, nil
		}
		if prefs.Categories == nil {
			prefs.Categories = map[string]map[herald.Channel]bool{}
		}
		if prefs.Categories[category] == nil {
			prefs.Categories[category] = map[herald.Channel]bool{}
		}
		prefs.Categories[category][d.Channel] = false
	}
	if err := c.store.PutPreferences(ctx, d.AppID, d.UserID, prefs); err != nil {
		return false, fmt.Errorf("track: opt user %q out: %w", d.UserID, err)
	}
	return true, nil
}

// ---- SendGrid ----

// sendgridEvent is the part of an Event Webhook event Herald reads; the
// custom args every message carries arrive as top-level fields.
type sendgridEvent struct {
	Event      string          `json:"event"`
	Type       string          `json:"type"`
	Reason     string          `json:"reason"`
	URL        string          `json:"url"`
	SGEventID  string          `json:"sg_event_id"`
	Timestamp  json.RawMessage `json:"timestamp"`
	DeliveryID string          `json:"herald_delivery_id"`
	AppID      string          `json:"herald_app_id"`
}

// SendGridEvents handles a signed Event Webhook batch: timestamp and
// signature are the X-Twilio-Email-Event-Webhook-* headers, body the raw
// request body. Each event names its delivery by the custom args Herald
// sets; the events of an app are applied only when that app's SendGrid
// verification key verifies the batch. Errors: CodeUnauthorized without a
// signature, CodeForbidden when it is stale or verifies for no app,
// CodeMalformed when the body is not a JSON array of events.
func (c *Callbacks) SendGridEvents(ctx context.Context, timestamp, signature string, body []byte) error {
	if timestamp == "" || signature == "" {
		return errNoSignature
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errBadSignature
	}
	if skew := c.o.Now().Sub(time.Unix(ts, 0)); skew > c.o.MaxSkew || skew < -c.o.MaxSkew {
		return errBadSignature
	}
	var events []sendgridEvent
	if err := json.Unmarshal(body, &events); err != nil {
		return &herald.Error{Code: herald.CodeMalformed, Message: "the body must be a JSON array of events",
			Fields: []herald.FieldError{{Field: "", Message: "must be a JSON array of event objects"}}}
	}
	// Verify once per app named in the batch.
	verified := map[string]bool{}
	anyVerified := false
	for _, e := range events {
		if e.AppID == "" || e.DeliveryID == "" {
			continue // not a message Herald sent
		}
		if _, seen := verified[e.AppID]; !seen {
			ok, err := c.sendgridVerifies(ctx, e.AppID, timestamp, body, signature)
			if err != nil {
				return err
			}
			verified[e.AppID] = ok
		}
		anyVerified = anyVerified || verified[e.AppID]
	}
	if len(verified) > 0 && !anyVerified {
		return errBadSignature
	}
	for _, e := range events {
		if e.AppID == "" || e.DeliveryID == "" || !verified[e.AppID] {
			continue
		}
		if err := c.sendgridEvent(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

func (c *Callbacks) sendgridVerifies(ctx context.Context, appID, timestamp string, body []byte, signature string) (bool, error) {
	provs, err := c.providers.Configured(ctx, appID, herald.ChannelEmail)
	if herald.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("track: email providers of app %q: %w", appID, err)
	}
	for _, p := range provs {
		if v, ok := p.(sendgridVerifier); ok && c.o.VerifyEvents != nil &&
			c.o.VerifyEvents(v.WebhookPublicKey(), timestamp, body, signature) {
			return true, nil
		}
	}
	return false, nil
}

// sendgridEvent applies one verified event (PROVIDERS.md §5.3).
func (c *Callbacks) sendgridEvent(ctx context.Context, e sendgridEvent) error {
	d, err := c.store.GetDelivery(ctx, e.AppID, e.DeliveryID)
	if herald.IsNotFound(err) || (err == nil && d.Channel != herald.ChannelEmail) {
		return nil // erased meanwhile, or not an email: nothing to move
	}
	if err != nil {
		return fmt.Errorf("track: delivery %q of an event: %w", e.DeliveryID, err)
	}
	detail := "sendgrid: " + e.Event
	if e.Reason != "" {
		detail += ": " + truncate(e.Reason, 200)
	}
	switch e.Event {
	case "delivered":
		_, err = c.move(ctx, d, fromDelivered, herald.StatusDelivered, "", kindSendGrid, detail)
	case "open":
		_, err = c.move(ctx, d, fromOpened, herald.StatusOpened, "", kindSendGrid, detail)
	case "click":
		if tracklink.Trackable(e.URL) {
			detail += ": " + truncate(e.URL, 500)
		}
		_, err = c.move(ctx, d, fromClicked, herald.StatusClicked, "", kindSendGrid, detail)
	case "bounce":
		reason := herald.ReasonInvalidRecipient
		if e.Type == "blocked" {
			reason = herald.ReasonProviderRejected // reputation or policy, not the address
		}
		err = c.failed(ctx, d, fromBounced, reason, kindSendGrid, detail)
	case "dropped":
		err = c.failed(ctx, d, fromFailed, droppedReason(e.Reason), kindSendGrid, detail)
	case "spamreport":
		// A complaint: stop all email to the user, not just the category.
		err = c.unsubscribe(ctx, d, "", kindSendGrid, detail)
	case "unsubscribe", "group_unsubscribe":
		n, nerr := c.store.GetNotification(ctx, d.AppID, d.NotificationID)
		if nerr != nil && !herald.IsNotFound(nerr) {
			return fmt.Errorf("track: notification of delivery %q: %w", d.ID, nerr)
		}
		err = c.unsubscribe(ctx, d, n.Category, kindSendGrid, detail)
	default:
		// processed, deferred, group_resubscribe…: nothing to record.
	}
	return err
}

// droppedReason classifies why SendGrid dropped a message ("Bounced
// Address", "Invalid", "Unsubscribed Address", "Spam Reporting Address", …).
func droppedReason(reason string) string {
	switch r := strings.ToLower(strings.TrimSpace(reason)); {
	case strings.Contains(r, "bounced address") || r == "invalid" || strings.Contains(r, "invalid address"):
		return herald.ReasonInvalidRecipient
	case strings.Contains(r, "unsubscribed address") || strings.Contains(r, "spam reporting address"):
		return herald.ReasonOptedOut
	}
	return herald.ReasonProviderRejected
}

// unsubscribe opts the delivery's user out (of category on its channel,
// or of the channel when category is "") and records the step, once:
// a repeat that changes no preference records nothing.
func (c *Callbacks) unsubscribe(ctx context.Context, d herald.Delivery, category, provider, detail string) error {
	if d.UserID == "" {
		return nil // a direct address has no preferences to change
	}
	changed, err := c.optOut(ctx, d, category)
	if err != nil || !changed {
		return err
	}
	scope := "all " + string(d.Channel)
	if category != "" {
		scope = "category " + category + " on " + string(d.Channel)
	}
	if detail == "" {
		detail = "unsubscribed"
	}
	return c.note(ctx, d, herald.TimelineUnsubscribed, provider, detail+" ("+scope+")")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// ---- Tracking links ----

// Click records a click on a tracking link and returns where it leads.
// The delivery's status moves to clicked once; further clicks still
// redirect. A failure to record does not keep the recipient from the
// page. Errors: CodeNotFound for a token that is not ours.
func (c *Callbacks) Click(ctx context.Context, token string) (string, error) {
	t, err := c.links.Parse(tracklink.KindClick, token)
	if err != nil {
		return "", err
	}
	d, err := c.store.GetDelivery(ctx, t.AppID, t.DeliveryID)
	if err == nil {
		_, err = c.move(ctx, d, fromClicked, herald.StatusClicked, "", "", "click: "+truncate(t.URL, 500))
	}
	if err != nil && !herald.IsNotFound(err) {
		c.o.Logger.Warn("recording a click", "delivery", t.DeliveryID, "err", err)
	}
	return t.URL, nil
}

// Open records an email's open pixel being loaded. Errors: CodeNotFound
// for a token that is not ours.
func (c *Callbacks) Open(ctx context.Context, token string) error {
	t, err := c.links.Parse(tracklink.KindOpen, token)
	if err != nil {
		return err
	}
	d, err := c.store.GetDelivery(ctx, t.AppID, t.DeliveryID)
	if err == nil {
		_, err = c.move(ctx, d, fromOpened, herald.StatusOpened, "", "", "open pixel")
	}
	if err != nil && !herald.IsNotFound(err) {
		c.o.Logger.Warn("recording an open", "delivery", t.DeliveryID, "err", err)
	}
	return nil
}

// UnsubscribeScope returns what an unsubscribe link is about: its
// delivery's channel and category (empty when none), for the page that
// asks to confirm. Errors: CodeNotFound for a token that is not ours or a
// delivery that is gone.
func (c *Callbacks) UnsubscribeScope(ctx context.Context, token string) (herald.Channel, string, error) {
	d, n, err := c.unsubscribeTarget(ctx, token)
	if err != nil {
		return "", "", err
	}
	return d.Channel, n.Category, nil
}

// Unsubscribe opts the user of an unsubscribe link out of the delivery's
// category on its channel, or of the whole channel when everything is
// set (or the notification had no category), records the step in the
// delivery's timeline and so emits user.unsubscribed. Repeating it changes
// nothing. Called by POST /u/{token}, the RFC 8058 one-click included.
// Errors: CodeNotFound for a token that is not ours or a delivery that is gone.
func (c *Callbacks) Unsubscribe(ctx context.Context, token string, everything bool) error {
	d, n, err := c.unsubscribeTarget(ctx, token)
	if err != nil {
		return err
	}
	category := n.Category
	if everything {
		category = ""
	}
	return c.unsubscribe(ctx, d, category, "", "unsubscribe link")
}

func (c *Callbacks) unsubscribeTarget(ctx context.Context, token string) (herald.Delivery, herald.Notification, error) {
	t, err := c.links.Parse(tracklink.KindUnsubscribe, token)
	if err != nil {
		return herald.Delivery{}, herald.Notification{}, err
	}
	d, err := c.store.GetDelivery(ctx, t.AppID, t.DeliveryID)
	if err != nil {
		return herald.Delivery{}, herald.Notification{}, fmt.Errorf("track: delivery of an unsubscribe link: %w", err)
	}
	n, err := c.store.GetNotification(ctx, t.AppID, d.NotificationID)
	if err != nil {
		return herald.Delivery{}, herald.Notification{}, fmt.Errorf("track: notification of an unsubscribe link: %w", err)
	}
	return d, n, nil
}
