package herald

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"
)

// Message is one rendered delivery, ready for a provider.
type Message struct {
	AppID          string
	NotificationID string
	DeliveryID     string
	Channel        Channel
	Platform       Platform // push only
	// To is the email address, the E.164 number, or the device token.
	To           string
	Subscription *WebPushSubscription // web push only
	Category     string
	Priority     Priority
	Content      Content
	Attempt      int
	// UnsubscribeURL, when set, is where the recipient opts out of this
	// category (email List-Unsubscribe, RFC 8058 one-click).
	UnsubscribeURL string
}

// OutcomeKind classifies what a provider made of a message.
type OutcomeKind int

// Outcome kinds.
const (
	// OutcomeSent: the provider accepted the message.
	OutcomeSent OutcomeKind = iota + 1
	// OutcomeRetry: a passing failure (5xx, timeout, throttling); try again after RetryAfter.
	OutcomeRetry
	// OutcomePermanent: the message will never be accepted as it is.
	OutcomePermanent
	// OutcomeInvalidRecipient: the address or device is gone; disable it.
	OutcomeInvalidRecipient
	// OutcomeOptedOut: the recipient told the provider to stop (an SMS STOP);
	// turn the channel off in the user's preferences.
	OutcomeOptedOut
	// OutcomeConfigError: the app's provider configuration is wrong
	// (credentials, sender, topic); alert and do not retry.
	OutcomeConfigError
)

func (k OutcomeKind) String() string {
	switch k {
	case OutcomeSent:
		return "sent"
	case OutcomeRetry:
		return "retry"
	case OutcomePermanent:
		return "permanent"
	case OutcomeInvalidRecipient:
		return "invalid_recipient"
	case OutcomeOptedOut:
		return "opted_out"
	case OutcomeConfigError:
		return "config_error"
	}
	return "unknown"
}

// Outcome is the classified result of one provider call.
type Outcome struct {
	Kind              OutcomeKind
	ProviderMessageID string
	// RetryAfter is the least wait before the next attempt (the provider's Retry-After), zero when none.
	RetryAfter time.Duration
	// Detail says what happened, for the timeline (an error text or a provider's code).
	Detail string
	// Provider names the provider kind that answered, when a provider
	// passed the message on to another (failover); empty means Kind().
	Provider string
}

// Provider delivers messages through one third-party service with one
// configuration. Workers call Send concurrently; an implementation must be
// safe for that. Send never panics on bad input: it classifies it.
type Provider interface {
	// Kind names the provider kind ("smtp", "apns", …).
	Kind() string
	// Send delivers one message and classifies the result. It honours ctx's deadline.
	Send(ctx context.Context, m Message) Outcome
}

// ProviderEntry is one element of an app's provider list for a channel.
type ProviderEntry struct {
	Kind     string          `json:"kind"`
	Settings json.RawMessage `json:"settings,omitempty"`
	// RatePerSecond caps the sends per second through this provider for the
	// app (a token bucket; 0 means no cap), e.g. to stay under a quota.
	RatePerSecond float64 `json:"rate_per_second,omitempty"`
}

// ProviderEnv is what Herald hands a provider constructor besides the
// entry's settings.
type ProviderEnv struct {
	Logger *slog.Logger
	// HTTPClient is the base client for HTTP providers (timeouts set); a
	// provider that needs its own TLS roots (settings.ca_pem) clones its transport.
	HTTPClient *http.Client
	// PublicURL is where the outside world reaches Herald (callback URLs).
	PublicURL string
	Now       func() time.Time
	// AllowPrivateTargets lets outbound requests whose target the recipient
	// chose (web push endpoints) reach loopback, private, link-local and
	// metadata addresses; off in production, on in tests and development.
	AllowPrivateTargets bool
}
