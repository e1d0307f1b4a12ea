package client

import "time"

// The types below mirror the schemas of docs/openapi.yaml; a test checks
// every JSON field against them, so a drift fails the build.

// Recipient is one entry of a send's "to": exactly one of its fields.
type Recipient struct {
	UserID string `json:"user_id,omitempty"`
	Email  string `json:"email,omitempty"`
	Phone  string `json:"phone,omitempty"`
	Topic  string `json:"topic,omitempty"`
}

// Content is a notification's inline content.
type Content struct {
	Title   string         `json:"title,omitempty"`
	Body    string         `json:"body,omitempty"`
	Subject string         `json:"subject,omitempty"`
	HTML    string         `json:"html,omitempty"`
	URL     string         `json:"url,omitempty"`
	Icon    string         `json:"icon,omitempty"`
	Data    map[string]any `json:"data,omitempty"`
}

// SendRequest is the body of POST /v1/notifications: Content, or
// Template with Data.
type SendRequest struct {
	To              []Recipient    `json:"to"`
	Channels        []string       `json:"channels,omitempty"`
	Category        string         `json:"category,omitempty"`
	Priority        string         `json:"priority,omitempty"`
	Content         *Content       `json:"content,omitempty"`
	Template        string         `json:"template,omitempty"`
	TemplateVersion int            `json:"template_version,omitempty"`
	Data            map[string]any `json:"data,omitempty"`
	SendAt          *time.Time     `json:"send_at,omitempty"`
	SendAtLocal     string         `json:"send_at_local,omitempty"`
	Fallback        []string       `json:"fallback,omitempty"`
	FallbackWindow  string         `json:"fallback_window,omitempty"`

	// IdempotencyKey is sent as the Idempotency-Key header. Send makes a
	// random one when it is empty, and uses the same on every retry.
	IdempotencyKey string `json:"-"`
}

// Accepted is the answer to a send.
type Accepted struct {
	ID         string             `json:"id"`
	Status     string             `json:"status"`
	Deliveries []AcceptedDelivery `json:"deliveries"`

	// IdempotencyKey is the key the send was made with.
	IdempotencyKey string `json:"-"`
	// Replayed is true when Herald answered with the stored answer to an
	// earlier request with the same key (Idempotent-Replayed: true).
	Replayed bool `json:"-"`
}

// AcceptedDelivery is a delivery as a send answers it.
type AcceptedDelivery struct {
	ID      string `json:"id"`
	UserID  string `json:"user_id,omitempty"`
	Channel string `json:"channel"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
}

// Notification statuses.
const (
	NotificationAccepted   = "accepted"
	NotificationProcessing = "processing"
	NotificationCompleted  = "completed"
)

// Notification is a notification with every delivery and its timeline.
type Notification struct {
	ID              string     `json:"id"`
	Status          string     `json:"status"`
	Category        string     `json:"category,omitempty"`
	Priority        string     `json:"priority"`
	CreatedAt       time.Time  `json:"created_at"`
	Template        string     `json:"template,omitempty"`
	TemplateVersion int        `json:"template_version,omitempty"`
	Fanout          *Fanout    `json:"fanout,omitempty"`
	Deliveries      []Delivery `json:"deliveries"`
}

// Fanout is the progress of a notification's fan-out to a topic.
type Fanout struct {
	Topic      string `json:"topic"`
	Status     string `json:"status"`
	Recipients int    `json:"recipients"`
}

// Delivery is one message of a notification to one address or device.
type Delivery struct {
	ID                string          `json:"id"`
	UserID            string          `json:"user_id,omitempty"`
	Channel           string          `json:"channel"`
	Address           string          `json:"address,omitempty"`
	Platform          string          `json:"platform,omitempty"`
	Locale            string          `json:"locale,omitempty"`
	Status            string          `json:"status"`
	Reason            string          `json:"reason,omitempty"`
	Provider          string          `json:"provider,omitempty"`
	ProviderMessageID string          `json:"provider_message_id,omitempty"`
	Attempts          int             `json:"attempts"`
	CreatedAt         time.Time       `json:"created_at"`
	UpdatedAt         time.Time       `json:"updated_at"`
	PossibleDuplicate bool            `json:"possible_duplicate,omitempty"`
	Timeline          []TimelineEvent `json:"timeline"`
}

// TimelineEvent is one step of a delivery.
type TimelineEvent struct {
	Status            string    `json:"status"`
	At                time.Time `json:"at"`
	Detail            string    `json:"detail,omitempty"`
	Reason            string    `json:"reason,omitempty"`
	Attempt           int       `json:"attempt"`
	Provider          string    `json:"provider,omitempty"`
	ProviderMessageID string    `json:"provider_message_id,omitempty"`
}

// ListNotificationsParams filters GET /v1/notifications; zero values are
// left out.
type ListNotificationsParams struct {
	UserID  string
	Status  string
	Channel string
	Since   time.Time
	Cursor  string
	Limit   int
}

// NotificationList is one page of notifications, newest first.
type NotificationList struct {
	Data       []NotificationSummary `json:"data"`
	NextCursor string                `json:"next_cursor,omitempty"`
}

// NotificationSummary is a notification as a list shows it.
type NotificationSummary struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	Category  string    `json:"category,omitempty"`
	Priority  string    `json:"priority"`
	CreatedAt time.Time `json:"created_at"`
}

// PutUserRequest is the whole profile of a user; fields left empty
// become empty.
type PutUserRequest struct {
	Email      string         `json:"email,omitempty"`
	Phone      string         `json:"phone,omitempty"`
	Locale     string         `json:"locale,omitempty"`
	Timezone   string         `json:"timezone,omitempty"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

// User is a recipient of the app.
type User struct {
	ID         string         `json:"id"`
	Email      string         `json:"email,omitempty"`
	Phone      string         `json:"phone,omitempty"`
	Locale     string         `json:"locale,omitempty"`
	Timezone   string         `json:"timezone,omitempty"`
	Attributes map[string]any `json:"attributes"`
	CreatedAt  time.Time      `json:"created_at"`
	UpdatedAt  time.Time      `json:"updated_at"`
}

// AddDeviceRequest registers a push device: Token for ios and android,
// Subscription for web.
type AddDeviceRequest struct {
	Platform     string               `json:"platform"`
	Token        string               `json:"token,omitempty"`
	Subscription *WebPushSubscription `json:"subscription,omitempty"`
}

// WebPushSubscription is a browser's PushSubscription.toJSON().
type WebPushSubscription struct {
	Endpoint string      `json:"endpoint"`
	Keys     WebPushKeys `json:"keys"`
}

// WebPushKeys are a web push subscription's keys, base64url.
type WebPushKeys struct {
	P256DH string `json:"p256dh"`
	Auth   string `json:"auth"`
}

// Device is a registered push device.
type Device struct {
	ID           string              `json:"id"`
	Platform     string              `json:"platform"`
	Token        string              `json:"token,omitempty"`
	Subscription *DeviceSubscription `json:"subscription,omitempty"`
	Status       string              `json:"status"`
	CreatedAt    time.Time           `json:"created_at"`
}

// DeviceList is every device of a user.
type DeviceList struct {
	Data []Device `json:"data"`
}

// DeviceSubscription is a web device's endpoint (its keys are not
// returned).
type DeviceSubscription struct {
	Endpoint string `json:"endpoint"`
}

// Preferences are a user's opt-ins and opt-outs; a channel missing from a
// map is allowed.
type Preferences struct {
	Channels     map[string]bool            `json:"channels,omitempty"`
	Categories   map[string]map[string]bool `json:"categories,omitempty"`
	QuietHours   *QuietHours                `json:"quiet_hours,omitempty"`
	Unsubscribed bool                       `json:"unsubscribed,omitempty"`
}

// QuietHours is a daily window ("22:00" to "07:00") in the user's timezone.
type QuietHours struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// EmailParts are the email parts of a template.
type EmailParts struct {
	Subject string `json:"subject"`
	HTML    string `json:"html,omitempty"`
	Text    string `json:"text,omitempty"`
}

// SMSParts are the SMS part of a template.
type SMSParts struct {
	Text string `json:"text"`
}

// PushParts are the push parts of a template.
type PushParts struct {
	Title string            `json:"title,omitempty"`
	Body  string            `json:"body,omitempty"`
	URL   string            `json:"url,omitempty"`
	Icon  string            `json:"icon,omitempty"`
	Data  map[string]string `json:"data,omitempty"`
}

// TemplateParts are a template's parts of each channel.
type TemplateParts struct {
	Email *EmailParts `json:"email,omitempty"`
	SMS   *SMSParts   `json:"sms,omitempty"`
	Push  *PushParts  `json:"push,omitempty"`
}

// PutTemplateRequest is a new version of a template.
type PutTemplateRequest struct {
	Email   *EmailParts              `json:"email,omitempty"`
	SMS     *SMSParts                `json:"sms,omitempty"`
	Push    *PushParts               `json:"push,omitempty"`
	Locales map[string]TemplateParts `json:"locales,omitempty"`
}

// Template is one version of a template.
type Template struct {
	Name      string                   `json:"name"`
	Version   int                      `json:"version"`
	CreatedAt time.Time                `json:"created_at"`
	Email     *EmailParts              `json:"email,omitempty"`
	SMS       *SMSParts                `json:"sms,omitempty"`
	Push      *PushParts               `json:"push,omitempty"`
	Locales   map[string]TemplateParts `json:"locales,omitempty"`
}

// TemplateList is one page of templates, by name.
type TemplateList struct {
	Data       []Template `json:"data"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

// PreviewRequest renders a template with Data for a recipient of Locale.
type PreviewRequest struct {
	Data    map[string]any `json:"data,omitempty"`
	Locale  string         `json:"locale,omitempty"`
	Version int            `json:"version,omitempty"`
}

// Preview is a rendered template.
type Preview struct {
	Name    string      `json:"name"`
	Version int         `json:"version"`
	Locale  string      `json:"locale,omitempty"`
	Email   *EmailParts `json:"email,omitempty"`
	SMS     *SMSParts   `json:"sms,omitempty"`
	Push    *PushParts  `json:"push,omitempty"`
}

// PutSubscribersRequest adds and removes subscribers of a topic.
type PutSubscribersRequest struct {
	Add    []string `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

// Topic is a named group of the app's users.
type Topic struct {
	Name        string    `json:"name"`
	Subscribers int       `json:"subscribers"`
	CreatedAt   time.Time `json:"created_at"`
}

// DeadLetterList is one page of dead deliveries, newest first.
type DeadLetterList struct {
	Data       []DeadLetter `json:"data"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

// DeadLetter is a delivery whose retries ran out, with its error history.
type DeadLetter struct {
	ID                string            `json:"id"`
	NotificationID    string            `json:"notification_id"`
	UserID            string            `json:"user_id,omitempty"`
	Channel           string            `json:"channel"`
	Attempts          int               `json:"attempts"`
	Reason            string            `json:"reason"`
	DeadAt            time.Time         `json:"dead_at"`
	PossibleDuplicate bool              `json:"possible_duplicate"`
	Errors            []DeadLetterError `json:"errors"`
}

// DeadLetterError is the error of one failed attempt.
type DeadLetterError struct {
	Attempt  int       `json:"attempt"`
	At       time.Time `json:"at"`
	Provider string    `json:"provider,omitempty"`
	Detail   string    `json:"detail"`
}

// ListDeadLettersParams filters GET /v1/dead-letters.
type ListDeadLettersParams struct {
	Channel string
	Cursor  string
	Limit   int
}

// Key scopes.
const (
	ScopeAdmin = "admin"
	ScopeSend  = "send"
)

// CreateKeyRequest asks for a new API key of the app.
type CreateKeyRequest struct {
	Name      string     `json:"name"`
	Scope     string     `json:"scope"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// NewKey is a key as its creation or rotation answers it: the only time
// its secret Key is shown.
type NewKey struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Scope       string     `json:"scope"`
	Key         string     `json:"key"`
	Prefix      string     `json:"prefix"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	RotatedFrom string     `json:"rotated_from,omitempty"`
}

// Key is a key as the list shows it, without its secret.
type Key struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Scope      string     `json:"scope"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// KeyList is the app's keys.
type KeyList struct {
	Data []Key `json:"data"`
}

// RotateKeyRequest says how long the old key stays valid after a
// rotation; zero leaves it to Herald.
type RotateKeyRequest struct {
	GracePeriodSeconds int `json:"grace_period_seconds,omitempty"`
}

// CreateWebhookRequest is a new webhook endpoint.
type CreateWebhookRequest struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
}

// Webhook is an endpoint Herald posts delivery events to.
type Webhook struct {
	ID         string     `json:"id"`
	URL        string     `json:"url"`
	Events     []string   `json:"events"`
	Secret     string     `json:"secret,omitempty"`
	Status     string     `json:"status"`
	CreatedAt  time.Time  `json:"created_at"`
	DisabledAt *time.Time `json:"disabled_at,omitempty"`
}

// WebhookList is the app's webhook endpoints.
type WebhookList struct {
	Data []Webhook `json:"data"`
}

// ProviderEntry is one provider of a channel's ordered list.
type ProviderEntry struct {
	Kind          string         `json:"kind"`
	Settings      map[string]any `json:"settings,omitempty"`
	RatePerSecond float64        `json:"rate_per_second,omitempty"`
}

// ProviderList is a channel's provider kinds in order, without settings.
type ProviderList struct {
	Channel   string         `json:"channel"`
	Providers []ProviderKind `json:"providers"`
}

// ProviderKind is a stored provider entry's kind.
type ProviderKind struct {
	Kind string `json:"kind"`
}

// App is the calling key's app.
type App struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	DefaultLocale string `json:"default_locale"`
	// SMSAllowedCountries are the ISO 3166 alpha-2 regions the app may
	// send SMS to; empty allows every region.
	SMSAllowedCountries []string `json:"sms_allowed_countries"`
	// SMSDailyBudget is the most SMS accepted per UTC day; 0 means none.
	SMSDailyBudget int       `json:"sms_daily_budget"`
	CreatedAt      time.Time `json:"created_at"`
}

// PutAppRequest changes the app's settings. The SMS guard's fields are
// left as they are when nil.
type PutAppRequest struct {
	DefaultLocale       string    `json:"default_locale"`
	SMSAllowedCountries *[]string `json:"sms_allowed_countries,omitempty"`
	SMSDailyBudget      *int      `json:"sms_daily_budget,omitempty"`
}
