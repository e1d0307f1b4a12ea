package herald

import (
	"context"
	"time"
)

// Recipient is one addressee of a send request: a known user of the app,
// a direct email address or phone number, or a topic. Exactly one field is set.
type Recipient struct {
	UserID string `json:"user_id,omitempty"`
	Email  string `json:"email,omitempty"`
	Phone  string `json:"phone,omitempty"`
	// Topic fans the notification out to every subscriber of the app's topic.
	Topic string `json:"topic,omitempty"`
}

// SendRequest asks Herald to notify recipients.
type SendRequest struct {
	To []Recipient `json:"to"`
	// Channels to use; empty means every channel the recipient can be reached on.
	Channels []Channel `json:"channels,omitempty"`
	// Fallback, instead of Channels, lists channels to try in order for
	// each user: the next one only when the previous could not reach the
	// user (see Notification.Fallback).
	Fallback []Channel `json:"fallback,omitempty"`
	// FallbackWindow, with Fallback: see Notification.FallbackWindow.
	FallbackWindow time.Duration `json:"fallback_window,omitempty"`
	Category       string        `json:"category,omitempty"`
	Priority       Priority      `json:"priority,omitempty"`
	Content        Content       `json:"content"`
	// Template names a stored template to render per recipient with Data,
	// instead of Content; TemplateVersion pins a version (0: the latest).
	Template        string         `json:"template,omitempty"`
	TemplateVersion int            `json:"template_version,omitempty"`
	Data            map[string]any `json:"data,omitempty"`
	// SendAt, when set and later than now, holds every delivery until then (status scheduled).
	SendAt time.Time `json:"send_at,omitzero"`
	// SendAtLocal, "HH:MM", holds each delivery until the clock next reads
	// that in its user's timezone (UTC for a user without one, or a direct address).
	SendAtLocal string `json:"send_at_local,omitempty"`
	// IdempotencyKey, when set, makes a repeat of the same request return the first answer.
	IdempotencyKey string `json:"-"`
}

// Accepted is the answer to an accepted send request, stored as it was
// first given so that an idempotent replay returns the same answer.
type Accepted struct {
	ID         string             `json:"id"`
	Status     string             `json:"status"`
	Deliveries []AcceptedDelivery `json:"deliveries"`
}

// AcceptedDelivery is one delivery in an Accepted answer.
type AcceptedDelivery struct {
	ID      string  `json:"id"`
	UserID  string  `json:"user_id,omitempty"`
	Channel Channel `json:"channel"`
	Status  Status  `json:"status"`
	Reason  string  `json:"reason,omitempty"`
}

// Sender accepts notifications: validates, resolves recipients, writes the
// log and queues the deliveries. Called by the HTTP API and the CLI.
//
// Errors: CodeInvalid naming the field (JSON path, e.g. "to[0].email"),
// CodeConflict when the idempotency key was used with another body or its
// first request is still in flight (RetryAfterSeconds set), CodeUnavailable
// when the log cannot be written.
type Sender interface {
	Send(ctx context.Context, appID string, req SendRequest) (a Accepted, replayed bool, err error)
	// Cancel cancels the notification's deliveries that no worker has taken
	// yet (accepted, scheduled or queued) and reports how many; one being
	// sent right now finishes. CodeNotFound when the app has no such
	// notification.
	Cancel(ctx context.Context, appID, notificationID string) (canceled int, err error)
}
