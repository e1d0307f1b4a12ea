package herald

import (
	"context"
	"time"
)

// Store is Herald's data and notification log. SQLite (embedded) and
// Postgres (scaled out) implement it and pass one conformance suite
// (internal/store/storetest). Every method that takes an appID only ever
// sees that app's objects: another app's object is ErrNotFound.
//
// Errors: methods return errors wrapping *Error with CodeNotFound when the
// object does not exist in the app, CodeConflict on a unique violation, and
// CodeUnavailable when the database cannot be reached; anything else is
// CodeInternal.
type Store interface {
	AppStore
	ContactStore
	ProviderConfigStore
	LogStore
	LeaseStore
	WebhookStore
	AnalyticsStore
	TemplateStore
	CategoryStore
	TopicStore
	// Ping checks that the database answers. Called by /readyz.
	Ping(ctx context.Context) error
	// Close releases the connections. Safe to call twice.
	Close() error
}

// AppStore keeps apps and their API keys.
type AppStore interface {
	// CreateApp stores a new app. CodeConflict when the id exists.
	CreateApp(ctx context.Context, app App) error
	// GetApp returns the app. CodeNotFound when it does not exist.
	GetApp(ctx context.Context, id string) (App, error)
	// SetAppDefaultLocale sets the app's DefaultLocale ("" for none).
	// Called by PUT /v1/app. CodeNotFound when the app does not exist.
	SetAppDefaultLocale(ctx context.Context, id, locale string) error
	// SetAppSMSGuard sets the app's SMSAllowedCountries and SMSDailyBudget.
	// Called by PUT /v1/app. CodeNotFound when the app does not exist.
	SetAppSMSGuard(ctx context.Context, id string, g SMSGuard) error
	// ReserveSMS counts n SMS deliveries against the app's budget for the
	// UTC day (YYYY-MM-DD) when the day's count stays within budget, and
	// reports the outcome; the count is shared by every process on the
	// store. Called by accepting before the log write.
	ReserveSMS(ctx context.Context, appID, day string, n, budget int) (SMSBudgetUse, error)
	// CreateKey stores a key. CodeConflict when the id or hash exists.
	CreateKey(ctx context.Context, key APIKey) error
	// KeyByHash returns the live (not revoked) key with this hash, expired
	// or not (the caller tells expired keys apart); called on every
	// authenticated request. CodeNotFound when none.
	KeyByHash(ctx context.Context, hash []byte) (APIKey, error)
	// RevokeKey marks the app's key revoked at the given time. CodeNotFound
	// when the app has no such live key.
	RevokeKey(ctx context.Context, appID, keyID string, at time.Time) error
	// ListKeys returns the app's live (not revoked) keys, expired ones
	// included, newest first. Called by GET /v1/keys.
	ListKeys(ctx context.Context, appID string) ([]APIKey, error)
	// GetKey returns the app's live key. CodeNotFound when the app has no
	// such live key.
	GetKey(ctx context.Context, appID, keyID string) (APIKey, error)
	// RotateKey stores next and, in the same transaction, makes the app's
	// live key keyID expire at until, unless it expires earlier already
	// (a rotation never extends a key). Called by POST
	// /v1/keys/{id}/rotate. CodeNotFound when the app has no such live
	// key; CodeConflict when next's id or hash exists.
	RotateKey(ctx context.Context, appID, keyID string, next APIKey, until time.Time) error
	// RehashKey replaces the stored hash of the key keyID, if it is still
	// from, by to: the API moves keys stored with the legacy hash to the
	// keyed one on their first use. CodeNotFound when the key has another hash.
	RehashKey(ctx context.Context, keyID string, from, to []byte) error
	// MarkKeyUsed records that the key was used at at, unless a later use
	// is recorded already. Called by the API in the background, at most
	// about once a minute per key and process. CodeNotFound when no such key.
	MarkKeyUsed(ctx context.Context, keyID string, at time.Time) error
}

// ContactStore keeps users, their devices and their preferences.
type ContactStore interface {
	// PutUser creates or replaces the user's profile (keeping CreatedAt and
	// contact statuses of an existing one) and reports whether it was created.
	PutUser(ctx context.Context, u User) (User, bool, error)
	// PutUsers creates or replaces users of one app as PutUser does each,
	// all in one transaction (nothing is written on an error), and reports
	// how many were created. Ids must be distinct.
	PutUsers(ctx context.Context, users []User) (created int, err error)
	// GetUser returns the user. CodeNotFound when the app has no such user.
	GetUser(ctx context.Context, appID, userID string) (User, error)
	// GetUserContacts returns each of userIDs that is a user of the app
	// with its preferences and devices, keyed by user id, in a few reads
	// whatever the count (GetUser, GetPreferences and ListDevices cost one
	// each per user). Accepting calls it for a request's users and for each
	// page of a topic fan-out. An id that is not the app's user is absent
	// from the map, never an error; repeated ids are read once.
	GetUserContacts(ctx context.Context, appID string, userIDs []string) (map[string]UserContacts, error)
	// DeleteUser erases the user with its devices and preferences. CodeNotFound when absent.
	DeleteUser(ctx context.Context, appID, userID string) error
	// SetContactStatus marks the user's email or SMS contact usable ("") or DeviceInvalid.
	SetContactStatus(ctx context.Context, appID, userID string, c Channel, status string) error

	// AddDevice registers a device. Registering the same token for the same
	// user again returns the existing device, reactivated; the same token
	// registered by another user of the app is marked invalid there (the
	// device changed hands). CodeNotFound when the user does not exist.
	AddDevice(ctx context.Context, d Device) (Device, error)
	// ListDevices returns the user's devices, oldest first.
	ListDevices(ctx context.Context, appID, userID string) ([]Device, error)
	// DeleteDevice removes one device. CodeNotFound when absent.
	DeleteDevice(ctx context.Context, appID, userID, deviceID string) error
	// SetDeviceStatus marks a device DeviceActive or DeviceInvalid.
	SetDeviceStatus(ctx context.Context, appID, deviceID, status string) error

	// GetPreferences returns the user's preferences (empty when never set).
	// CodeNotFound when the user does not exist.
	GetPreferences(ctx context.Context, appID, userID string) (Preferences, error)
	// PutPreferences replaces the user's preferences. CodeNotFound when the user does not exist.
	PutPreferences(ctx context.Context, appID, userID string, p Preferences) error
}

// UserContacts is a user with what reaching them takes: their preferences
// (empty when never set) and their push devices, oldest first.
type UserContacts struct {
	User        User
	Preferences Preferences
	Devices     []Device
}

// ProviderConfigStore keeps each app's provider list per channel, sealed
// (encrypted) by the caller: the store never sees credentials in the clear.
type ProviderConfigStore interface {
	// PutProviderConfig replaces the sealed provider list of a channel.
	PutProviderConfig(ctx context.Context, appID string, c Channel, sealed []byte) error
	// GetProviderConfig returns the sealed list. CodeNotFound when none was put.
	GetProviderConfig(ctx context.Context, appID string, c Channel) ([]byte, error)
}

// LogStore is the notification log: the source of truth for what must
// still be delivered. Writes go through Apply, one transaction per batch,
// which the group-commit writer calls with many requests' writes at once.
type LogStore interface {
	// Apply writes the batch in one transaction and sets Applied on each
	// transition that matched its guard. CodeConflict when an idempotency
	// key or id already exists (nothing of the batch is written then).
	Apply(ctx context.Context, b *Batch) error

	// GetNotification returns the notification. CodeNotFound when the app has none with this id.
	GetNotification(ctx context.Context, appID, id string) (Notification, error)
	// ListNotifications returns notifications newest first, matching the filter.
	// next is the cursor of the following page, empty on the last page.
	ListNotifications(ctx context.Context, appID string, f NotificationFilter) (list []Notification, next string, err error)
	// ListDeliveries returns the notification's deliveries in creation order.
	ListDeliveries(ctx context.Context, appID, notificationID string) ([]Delivery, error)
	// ListEvents returns the notification's events, oldest first.
	ListEvents(ctx context.Context, appID, notificationID string) ([]Event, error)
	// GetDelivery returns one delivery. CodeNotFound when absent.
	GetDelivery(ctx context.Context, appID, id string) (Delivery, error)
	// GetDeliveryWork returns a delivery with its notification and its
	// user's preferences, in one read: the worker calls it for every job it
	// takes. CodeNotFound when the app has no such delivery.
	GetDeliveryWork(ctx context.Context, appID, id string) (DeliveryWork, error)
	// DeliveryByProviderMessage returns the delivery, of any app, that the
	// provider kind accepted under providerMessageID (a Twilio message SID).
	// Only inbound provider callbacks call it, which learn the app from the
	// delivery and only then verify the callback with that app's
	// credentials. CodeNotFound when none.
	DeliveryByProviderMessage(ctx context.Context, provider, providerMessageID string) (Delivery, error)
	// GetIdempotency returns the stored answer for key. CodeNotFound when none.
	GetIdempotency(ctx context.Context, appID, key string) (Idempotency, error)
	// DeleteIdempotencyBefore deletes up to limit idempotency records of
	// any app created before before, oldest first, and reports how many it
	// deleted; the caller repeats while it deletes limit. Only the sweep of
	// the scheduler role calls it. The notifications stay.
	DeleteIdempotencyBefore(ctx context.Context, before time.Time, limit int) (int, error)
	// ListDeadLetters returns the app's dead deliveries — retries ran out —
	// newest first (by id), matching the filter, each with its own events
	// oldest first. next is the cursor of the following page, empty on the
	// last page. Called by GET /v1/dead-letters. Errors: CodeInvalid naming
	// "cursor" for a cursor that is not one of ours.
	ListDeadLetters(ctx context.Context, appID string, f DeadLetterFilter) (list []DeadLetter, next string, err error)
	// StaleDeliveries returns up to limit deliveries of any app that should
	// be on the work queue but may not be, oldest due first: accepted or
	// sending with a due time before staleBefore (a publish or a worker was
	// lost), and queued — waiting for a retry — or scheduled with a due
	// time before retryBefore (their time has come). The reconciler
	// republishes them.
	StaleDeliveries(ctx context.Context, staleBefore, retryBefore time.Time, limit int) ([]Delivery, error)
	// PostponeDeliveries moves the due time of the given deliveries (any
	// app) to until, without changing their status or timeline, but only
	// those still unfinished and due before ifDueBefore: a delivery that a
	// worker claimed or rescheduled since it was read keeps its due time.
	PostponeDeliveries(ctx context.Context, ids []string, ifDueBefore, until time.Time) error
	// OverdueFallbacks returns up to limit deliveries of any app that are
	// still sent with a FallbackDue at or before before, oldest due first.
	// Only the reconciler calls it; a fallback step written for one clears
	// its FallbackDue.
	OverdueFallbacks(ctx context.Context, before time.Time, limit int) ([]Delivery, error)
}

// NotificationFilter selects notifications in ListNotifications. Zero fields match everything.
type NotificationFilter struct {
	UserID  string
	Status  Status // a delivery of the notification has this status
	Channel Channel
	Since   time.Time
	Cursor  string // from a previous page
	Limit   int    // 1..500
}

// DeadLetterFilter selects dead deliveries in ListDeadLetters. Zero fields match everything.
type DeadLetterFilter struct {
	Channel Channel
	Cursor  string // from a previous page
	Limit   int    // 1..500
}

// DeliveryWork is what a worker reads before it sends a delivery.
type DeliveryWork struct {
	Delivery     Delivery
	Notification Notification
	// Preferences are those of the delivery's user (empty when never set,
	// or when the delivery has no user). UserGone reports a delivery whose
	// user no longer exists (erased since it was accepted).
	Preferences Preferences
	UserGone    bool
}

// DeadLetter is a dead delivery with its timeline, the error of each attempt included.
type DeadLetter struct {
	Delivery Delivery
	Events   []Event
}

// Batch is what one log transaction writes.
type Batch struct {
	Notifications []NewNotification
	Transitions   []Transition
}

// NewNotification is an accepted notification with its deliveries, their
// first events, and the idempotency record of the request, if any.
type NewNotification struct {
	Notification Notification
	Deliveries   []Delivery
	Events       []Event
	Idempotency  *Idempotency
	// Fanout, when set, starts the fan-out of a notification sent to a
	// topic, in the same transaction as the notification.
	Fanout *Fanout
}

// Transition moves one delivery to a new status, if its guard holds, and
// appends Event to its timeline in the same transaction, after Steps.
type Transition struct {
	AppID      string
	DeliveryID string
	// From lists the statuses the delivery may be in; empty means any status that is not Done.
	From []Status
	// IfAttempts, when not nil, also requires the stored attempt count to equal it.
	IfAttempts *int

	To                Status
	Reason            string
	Attempts          int // the new attempt count; kept when zero
	Provider          string
	ProviderMessageID string
	// DueAt is when the delivery is next due (a retry's time); now when zero.
	DueAt time.Time
	Event Event
	// Steps are earlier steps of the timeline that the delivery passes
	// through on its way to To, in order (a worker's claim of a fresh
	// delivery records queued, dated when the queue took the message,
	// before sending). They are written before Event when, and only when,
	// the transition applies; ids and channel they lack are filled in as
	// Event's are.
	Steps []Event
	// Fallback, when set, is the next step of a fallback notification,
	// written in the same transaction when the transition applies.
	Fallback *FallbackStep

	// Applied is set by Apply when the guard held and the change was written.
	Applied bool
}

// FallbackStep is what a fallback notification does next for one user
// after a delivery that could not reach them: the deliveries of its next
// channels (those that cannot reach the user either, suppressed, then the
// first that can) with their first events. Apply writes it with the
// transition that ends the delivery, and only while no other delivery of
// the notification to the same user on the channel being left (another
// device) is unfinished or reached the user; the deliveries' ids are
// derived from the notification and the step, so a step taken twice adds
// nothing the second time.
type FallbackStep struct {
	UserID     string
	Channel    Channel // the channel being left
	Deliveries []Delivery
	Events     []Event

	// Added is set by Apply when the step's deliveries were written.
	Added bool
}

// AnalyticsStore counts deliveries for GET /v1/analytics.
type AnalyticsStore interface {
	// CountDeliveries counts the app's deliveries accepted in [f.From, f.To)
	// that match the filter: by current status, and how many reached each
	// step of the funnel by their events.
	CountDeliveries(ctx context.Context, appID string, f AnalyticsFilter) (Analytics, error)
	// CountActivity counts the app's timeline events dated in [f.From,
	// f.To) per interval of f.Interval, by status, reason, channel and
	// provider, for the admin UI's throughput and provider health (GET
	// /v1/stats). It counts the steps that measure throughput: accepted,
	// sent, failed, dead, suppressed, and queued when a provider answered
	// (a retry), not the worker's own queued and sending steps nor later
	// engagement. Only events of notifications accepted at or after
	// f.AcceptedSince count: that bound keeps the scan to a range of the
	// log's key. Buckets with nothing are left out.
	CountActivity(ctx context.Context, appID string, f ActivityFilter) ([]ActivityCount, error)
}

// ActivityFilter selects the events CountActivity counts. Every field is
// required; AcceptedSince is at or before From.
type ActivityFilter struct {
	From, To      time.Time
	Interval      time.Duration
	AcceptedSince time.Time
}

// ActivityCount is how many events of one kind fell in one interval.
type ActivityCount struct {
	// Interval is the bucket's index: it covers From+Interval*i onwards.
	Interval int
	Status   Status
	Reason   string
	Channel  Channel
	// Provider is the kind that answered; empty for events no provider
	// answered (accepted, queued by the worker, sending).
	Provider string
	N        int64
}

// AnalyticsFilter selects the deliveries CountDeliveries counts. From and
// To are required; zero Channel and Category match everything.
type AnalyticsFilter struct {
	From, To time.Time
	Channel  Channel
	Category string
}

// Analytics is what CountDeliveries found.
type Analytics struct {
	Total    int64
	ByStatus map[Status]int64
	Funnel   Funnel
}

// Funnel counts the deliveries that reached each step, whatever they did
// next: a delivery that was clicked counts at every step, one that was sent
// and then bounced counts as sent. A step a channel does not report (an
// SMS open) is reached only through a later one.
type Funnel struct {
	Sent, Delivered, Opened, Clicked int64
}

// LeaseStore gives one holder at a time a named lease, so that exactly
// one reconciler or scheduler acts.
type LeaseStore interface {
	// AcquireLease takes or renews the lease for holder until now+ttl and
	// reports whether holder has it. It fails over when the lease expired.
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
	// ReleaseLease gives the lease up if holder has it.
	ReleaseLease(ctx context.Context, name, holder string) error
}

// WebhookStore keeps each app's webhook endpoints and the posts waiting
// for them. Endpoints are read by the API (scoped by app) and by the
// tracker role's webhook sender, which alone claims posts across apps.
type WebhookStore interface {
	// CreateWebhook stores an endpoint. CodeConflict when the id exists.
	CreateWebhook(ctx context.Context, w Webhook) error
	// ListWebhooks returns the app's endpoints, disabled ones included,
	// oldest first. Called by GET /v1/webhooks and the webhook sender.
	ListWebhooks(ctx context.Context, appID string) ([]Webhook, error)
	// DeleteWebhook removes the endpoint and the posts waiting for it.
	// CodeNotFound when the app has no such endpoint.
	DeleteWebhook(ctx context.Context, appID, id string) error
	// DisableWebhook marks the endpoint disabled at at and drops the posts
	// waiting for it. CodeNotFound when the app has no such endpoint.
	DisableWebhook(ctx context.Context, appID, id string, at time.Time) error

	// AddWebhookPosts stores posts to make; a post whose id is stored
	// already is skipped, so an event read twice is posted once.
	AddWebhookPosts(ctx context.Context, posts []WebhookPost) error
	// ClaimWebhookPosts returns up to limit posts of any app due at or
	// before now, oldest due first, and moves their due time to until, so
	// that no other sender takes them before until. Only the webhook
	// sender calls it.
	ClaimWebhookPosts(ctx context.Context, now, until time.Time, limit int) ([]WebhookPost, error)
	// RetryWebhookPost records a failed attempt: the post's attempt count
	// and when it is next due. CodeNotFound when the post is gone (its
	// endpoint was deleted or disabled meanwhile).
	RetryWebhookPost(ctx context.Context, appID, id string, attempts int, due time.Time) error
	// DeleteWebhookPost removes a post that was delivered or given up. A
	// post already gone is not an error.
	DeleteWebhookPost(ctx context.Context, appID, id string) error
}

// TopicStore keeps topics, their subscribers, and the progress of each
// notification's fan-out to a topic.
type TopicStore interface {
	// UpdateSubscribers creates the app's topic if it is new, then adds
	// and removes subscribers (adding one already there, or removing one
	// not there, changes nothing). When some ids in add are not users of
	// the app, nothing is written and they are returned as missing, in the
	// order given. Called by PUT /v1/topics/{name}/subscribers and bulk loads.
	UpdateSubscribers(ctx context.Context, appID, topic string, add, remove []string, at time.Time) (missing []string, err error)
	// GetTopic returns the topic with its subscriber count. CodeNotFound when the app has no such topic.
	GetTopic(ctx context.Context, appID, name string) (Topic, error)
	// ListSubscribers returns up to limit user ids subscribed to the topic
	// that sort after after, in byte order of user id. Called by the API's
	// list and by the fan-out, which pages with it.
	ListSubscribers(ctx context.Context, appID, topic, after string, limit int) ([]string, error)
	// GetFanout returns the fan-out of a notification. CodeNotFound when the
	// notification was not sent to a topic (or is not the app's).
	GetFanout(ctx context.Context, appID, notificationID string) (Fanout, error)
	// RunningFanouts returns up to limit fan-outs of any app that are not
	// completed, least recently advanced first. Only the fan-out runner calls it.
	RunningFanouts(ctx context.Context, limit int) ([]Fanout, error)
	// ApplyFanoutPage writes one page of a fan-out in one transaction: its
	// deliveries and their first events, and the fan-out's new cursor,
	// recipient count and status. Nothing is written, and Applied stays
	// false, unless the fan-out is still running with its cursor at
	// p.After: a page redone after a crash, or by a second runner, adds
	// nothing. A delivery whose id is in the log already (its user was also
	// a direct recipient) is skipped with its event; Inserted lists the
	// deliveries written. Only the fan-out runner calls it.
	ApplyFanoutPage(ctx context.Context, p *FanoutPage) error
}

// Topic is a named group of an app's users; a notification to it fans out
// to every subscriber.
type Topic struct {
	AppID       string
	Name        string
	Subscribers int
	CreatedAt   time.Time
}

// Fan-out statuses.
const (
	FanoutRunning   = "running"
	FanoutCompleted = "completed"
)

// Fanout is the progress of one notification's fan-out to a topic's subscribers.
type Fanout struct {
	AppID          string
	NotificationID string
	Topic          string
	// Channels, SendAt and SendAtLocal are the send request's, applied to each subscriber.
	Channels    []Channel
	SendAt      time.Time
	SendAtLocal string
	// Cursor is the last subscriber (by user id) whose deliveries are in
	// the log; "" before the first page.
	Cursor string
	// Recipients counts the subscribers fanned out to so far.
	Recipients int
	Status     string // FanoutRunning or FanoutCompleted
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// FanoutPage is one page of a fan-out, written by ApplyFanoutPage.
type FanoutPage struct {
	AppID          string
	NotificationID string
	// After is the cursor the page starts from: the guard.
	After string
	// Cursor is the last subscriber of the page; Users how many subscribers it covers.
	Cursor string
	Users  int
	// Done completes the fan-out.
	Done       bool
	At         time.Time
	Deliveries []Delivery
	Events     []Event

	// Applied and Inserted are set by ApplyFanoutPage.
	Applied  bool
	Inserted []Delivery
}
