package herald

import "time"

// Webhook is an app's endpoint for outbound events: Herald posts the
// events it subscribes to, signed with its secret per the Standard
// Webhooks spec.
type Webhook struct {
	AppID  string
	ID     string
	URL    string
	Events []string // event names, such as "delivery.dead"
	// Secret is the signing key sealed (encrypted) by the caller: the
	// store never sees it in the clear.
	Secret []byte
	// DisabledAt is set when the endpoint answered 410 Gone; nothing is
	// posted to it after.
	DisabledAt *time.Time
	CreatedAt  time.Time
}

// WebhookPost is one event waiting to be posted to one endpoint. Its ID
// is the webhook-id header, the same on every attempt, so that the
// receiver can drop a repeat.
type WebhookPost struct {
	AppID     string
	ID        string
	WebhookID string
	Payload   []byte // the JSON body, fixed when the event was matched
	Attempts  int    // attempts made so far
	DueAt     time.Time
	CreatedAt time.Time
}
