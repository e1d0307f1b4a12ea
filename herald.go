package herald

import (
	"encoding/json"
	"time"
)

// Channel is a way of reaching a user.
type Channel string

// Channels Herald delivers on.
const (
	ChannelEmail Channel = "email"
	ChannelSMS   Channel = "sms"
	ChannelPush  Channel = "push"
)

// AllChannels lists every channel in a stable order.
func AllChannels() []Channel { return []Channel{ChannelPush, ChannelEmail, ChannelSMS} }

// Valid reports whether c is a known channel.
func (c Channel) Valid() bool {
	return c == ChannelEmail || c == ChannelSMS || c == ChannelPush
}

// Platform is the kind of device a push goes to.
type Platform string

// Device platforms.
const (
	PlatformIOS     Platform = "ios"
	PlatformAndroid Platform = "android"
	PlatformWeb     Platform = "web"
)

// Valid reports whether p is a known platform.
func (p Platform) Valid() bool {
	return p == PlatformIOS || p == PlatformAndroid || p == PlatformWeb
}

// Priority orders work within a channel: high never waits behind normal.
type Priority string

// Priorities.
const (
	PriorityNormal Priority = "normal"
	PriorityHigh   Priority = "high"
)

// Valid reports whether p is a known priority.
func (p Priority) Valid() bool { return p == PriorityNormal || p == PriorityHigh }

// Scope is what an API key may do.
type Scope string

// Key scopes.
const (
	ScopeAdmin Scope = "admin" // everything in the app
	ScopeSend  Scope = "send"  // send notifications and read their status
)

// Valid reports whether s is a known scope.
func (s Scope) Valid() bool { return s == ScopeAdmin || s == ScopeSend }

// Allows reports whether a key of scope s may act with scope need.
func (s Scope) Allows(need Scope) bool { return s == ScopeAdmin || s == need }

// App is a tenant: every other object belongs to exactly one app.
type App struct {
	ID   string
	Name string
	// DefaultLocale is the locale whose template variant a recipient
	// reads when the template has none for the recipient's own; empty
	// means the templates' base parts.
	DefaultLocale string
	// SMSAllowedCountries lists the ISO 3166 alpha-2 regions (upper case)
	// the app may send SMS to; empty allows every region. It is the first
	// guard against SMS pumping (toll fraud through premium or foreign
	// numbers).
	SMSAllowedCountries []string
	// SMSDailyBudget is the most SMS deliveries the app may have accepted
	// per UTC day; 0 means no budget.
	SMSDailyBudget int
	CreatedAt      time.Time
}

// SMSGuard is the SMS-pumping settings of an app, set by PUT /v1/app.
type SMSGuard struct {
	AllowedCountries []string
	DailyBudget      int
}

// SMSBudgetUse is the outcome of counting SMS deliveries against an app's
// budget for a UTC day.
type SMSBudgetUse struct {
	// Used is the count of the day after the call.
	Used int
	// Reserved reports whether the SMS fitted the budget and were counted.
	Reserved bool
	// Warn is true for the one call of the day that first took the count
	// to 80% of the budget or more.
	Warn bool
	// Exceeded is true for the one call of the day that first reached the
	// budget or was refused for it.
	Exceeded bool
}

// APIKey is a stored key. The secret itself is never stored, only its hash.
type APIKey struct {
	ID        string
	AppID     string
	Name      string
	Scope     Scope
	Prefix    string // the first characters of the key, to recognise it in lists and logs
	Hash      []byte // keyed hash (HMAC-SHA256) of the whole key; plain SHA-256 for keys stored by older versions
	CreatedAt time.Time
	RevokedAt *time.Time
	// ExpiresAt, when set, is when the key stops opening the API: set at
	// creation, or by a rotation to the end of its grace period.
	ExpiresAt *time.Time
	// LastUsedAt is when the key was last seen opening the API, recorded
	// at most about once a minute, so it may lag behind by that much.
	LastUsedAt *time.Time
}

// Expired reports whether the key has expired at now.
func (k APIKey) Expired(now time.Time) bool { return k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) }

// User is a recipient of an app, identified by the app's own id for it.
type User struct {
	AppID    string
	ID       string
	Email    string // empty when unknown
	Phone    string // E.164, empty when unknown
	Locale   string // BCP 47, empty when unknown
	Timezone string // IANA, empty when unknown
	// Attributes are the app's own data about the user; numbers are json.Number, kept exactly.
	Attributes map[string]any
	// EmailStatus and PhoneStatus are "" (usable) or DeviceInvalid when a provider rejected the contact.
	EmailStatus string
	PhoneStatus string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Device statuses.
const (
	DeviceActive  = "active"
	DeviceInvalid = "invalid"
)

// WebPushSubscription is a browser's push subscription (the PushSubscription JSON).
type WebPushSubscription struct {
	Endpoint string `json:"endpoint"`
	Keys     struct {
		P256dh string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
}

// Device is one push target of a user.
type Device struct {
	AppID        string
	ID           string
	UserID       string
	Platform     Platform
	Token        string               // APNs or FCM token; for web, the subscription endpoint
	Subscription *WebPushSubscription // web only
	Status       string               // DeviceActive or DeviceInvalid
	CreatedAt    time.Time
}

// QuietHours is a daily window, in the user's timezone, for holding back non-critical notifications.
type QuietHours struct {
	Start string `json:"start"` // "22:00"
	End   string `json:"end"`   // "07:00"
}

// Holds reports whether now falls inside the quiet hours in loc, and if so
// when they end. The window runs from Start up to End, across midnight when
// End is earlier; Start equal to End is no window. A malformed time (the
// API refuses them) holds nothing.
func (q QuietHours) Holds(now time.Time, loc *time.Location) (until time.Time, inside bool) {
	start, ok1 := ClockMinutes(q.Start)
	end, ok2 := ClockMinutes(q.End)
	if !ok1 || !ok2 || start == end {
		return time.Time{}, false
	}
	local := now.In(loc)
	m := local.Hour()*60 + local.Minute()
	if start < end {
		inside = m >= start && m < end
	} else {
		inside = m >= start || m < end
	}
	if !inside {
		return time.Time{}, false
	}
	return NextClock(now, end, loc), true
}

// ClockMinutes parses "HH:MM" (24-hour) into minutes after midnight.
func ClockMinutes(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	h, m := int(s[0]-'0')*10+int(s[1]-'0'), int(s[3]-'0')*10+int(s[4]-'0')
	for _, c := range []byte{s[0], s[1], s[3], s[4]} {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	if h > 23 || m > 59 {
		return 0, false
	}
	return h*60 + m, true
}

// NextClock is the first time after now at which the clock in loc reads
// minutes after midnight. On a day when that local time does not exist (a
// DST gap), time.Date's normalisation puts it within the hour around it.
func NextClock(now time.Time, minutes int, loc *time.Location) time.Time {
	local := now.In(loc)
	for day := 0; day <= 2; day++ {
		t := time.Date(local.Year(), local.Month(), local.Day()+day, minutes/60, minutes%60, 0, 0, loc)
		if t.After(now) {
			return t.UTC()
		}
	}
	return now.Add(24 * time.Hour).UTC() // unreachable: within two days the clock reads every time
}

// Preferences are a user's choices. A channel missing from Channels is allowed.
type Preferences struct {
	Channels   map[Channel]bool            `json:"channels,omitempty"`
	Categories map[string]map[Channel]bool `json:"categories,omitempty"`
	QuietHours *QuietHours                 `json:"quiet_hours,omitempty"`
	// Unsubscribed is the global unsubscribe: no channel, no category
	// (critical ones aside, which bypass every opt-out).
	Unsubscribed bool `json:"unsubscribed,omitempty"`
}

// Allows reports whether the user accepts channel c for category.
func (p Preferences) Allows(c Channel, category string) bool {
	if p.Unsubscribed {
		return false
	}
	if on, ok := p.Channels[c]; ok && !on {
		return false
	}
	if cat, ok := p.Categories[category]; ok {
		if on, ok := cat[c]; ok && !on {
			return false
		}
	}
	return true
}

// Content is what a notification says, before it is shaped for a channel.
type Content struct {
	Title   string            `json:"title,omitempty"`   // push
	Body    string            `json:"body,omitempty"`    // every channel's plain text
	Subject string            `json:"subject,omitempty"` // email
	HTML    string            `json:"html,omitempty"`    // email
	URL     string            `json:"url,omitempty"`     // where a tap or click leads
	Icon    string            `json:"icon,omitempty"`    // web push: the notification's icon URL
	Data    map[string]string `json:"data,omitempty"`    // push key/values
}

// Notification is one accepted send request.
type Notification struct {
	AppID    string
	ID       string
	Category string
	Priority Priority
	Content  Content
	// Template is set when the content was rendered from a template;
	// Content is empty then, and ContentFor picks each delivery's.
	Template *Rendering
	// Fallback is the request's fallback plan: the channels to try in
	// order for each user. Empty for a notification sent on all its
	// channels at once.
	Fallback []Channel
	// FallbackWindow, with Fallback, is how long an SMS or email of the
	// plan may stay sent without a delivery receipt (delivered, opened)
	// before the user's next channel is tried; zero waits for a failure.
	FallbackWindow time.Duration
	CreatedAt      time.Time
}

// CouldNotReach reports whether a delivery that ended in status s with
// reason could not reach its recipient, so that a fallback notification
// tries the user's next channel. A sent (or later) delivery reached the
// provider; a canceled one was called off; one suppressed by a frequency
// cap was held back on purpose.
func CouldNotReach(s Status, reason string) bool {
	switch s {
	case StatusFailed, StatusDead:
		return true
	case StatusSuppressed:
		return reason == ReasonNoAddress || reason == ReasonOptedOut || reason == ReasonInvalidRecipient
	}
	return false
}

// Status is the state of a delivery.
type Status string

// Delivery statuses, in the order a delivery usually passes them.
const (
	StatusAccepted   Status = "accepted"
	StatusScheduled  Status = "scheduled"
	StatusQueued     Status = "queued"
	StatusSending    Status = "sending"
	StatusSent       Status = "sent"
	StatusDelivered  Status = "delivered"
	StatusOpened     Status = "opened"
	StatusClicked    Status = "clicked"
	StatusFailed     Status = "failed"
	StatusSuppressed Status = "suppressed"
	StatusCanceled   Status = "canceled"
	StatusDead       Status = "dead"
)

// TimelineUnsubscribed is a step of a delivery's timeline, not a status a
// delivery takes: the recipient opted out through this delivery (its
// unsubscribe link or a provider's unsubscribe or spam report event). The
// delivery keeps its status; the event goes out as user.unsubscribed.
const TimelineUnsubscribed Status = "unsubscribed"

// TimelineFallback is a step of a delivery's timeline, not a status: the
// delivery stayed sent without a receipt for its notification's fallback
// window, and the user's next channel is tried. The delivery keeps its
// status (a receipt may still come).
const TimelineFallback Status = "fallback"

// Done reports whether no more sending will happen for a delivery in status s.
func (s Status) Done() bool {
	switch s {
	case StatusSent, StatusDelivered, StatusOpened, StatusClicked,
		StatusFailed, StatusSuppressed, StatusCanceled, StatusDead:
		return true
	}
	return false
}

// Reasons explain a suppressed, failed or retried delivery.
const (
	ReasonOptedOut         = "opted_out"
	ReasonNoAddress        = "no_address"
	ReasonInvalidRecipient = "invalid_recipient"
	ReasonProviderRejected = "provider_rejected"
	ReasonNoProvider       = "no_provider"
	ReasonProviderConfig   = "provider_config_error"
	ReasonRetriesExhausted = "retries_exhausted"
	// ReasonPossibleDuplicate marks a retry after an attempt whose outcome is
	// unknown (the provider call timed out): the provider may have it already.
	ReasonPossibleDuplicate = "possible_duplicate"
	// ReasonReplayed marks a dead delivery given a fresh budget of attempts
	// from the dead letters; its event's Attempt is where that budget starts.
	ReasonReplayed = "replayed"
	// ReasonSendAt marks a delivery scheduled by its request's send_at or send_at_local.
	ReasonSendAt = "send_at"
	// ReasonQuietHours marks a delivery held until the end of its user's quiet hours.
	ReasonQuietHours = "quiet_hours"
	// ReasonRateLimited marks a delivery held back or dropped by a frequency cap.
	ReasonRateLimited = "rate_limited"
	// ReasonSMSCountry marks an SMS delivery to a stored user whose phone
	// is in a region the app does not allow (sms_allowed_countries).
	ReasonSMSCountry = "sms_country_not_allowed"
)

// Delivery is one message of a notification to one address on one channel.
type Delivery struct {
	AppID          string
	ID             string
	NotificationID string
	UserID         string // empty for direct addresses
	Channel        Channel
	Priority       Priority
	// Address is the email address, the E.164 phone number, or the device token or endpoint.
	Address           string
	DeviceID          string
	Platform          Platform
	Status            Status
	Reason            string
	Provider          string
	ProviderMessageID string
	Attempts          int
	NextAttemptAt     time.Time // when the delivery is due; zero means now
	// FallbackDue, when set, is when a fallback notification moves on to
	// the user's next channel if this delivery is still sent (no receipt)
	// by then. Written with the delivery; stores do not read it back.
	FallbackDue time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Event is one step in a delivery's timeline.
type Event struct {
	AppID          string
	NotificationID string
	DeliveryID     string
	Channel        Channel
	Status         Status
	Reason         string
	Attempt        int
	Provider       string
	Detail         string
	At             time.Time
}

// Idempotency is the stored first answer to a request with an Idempotency-Key.
type Idempotency struct {
	AppID          string
	Key            string
	RequestHash    []byte
	NotificationID string
	Response       json.RawMessage
	CreatedAt      time.Time
}
