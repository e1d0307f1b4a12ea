package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

func esc(s string) string { return url.PathEscape(s) }

// Send sends a notification (POST /v1/notifications). Every attempt
// carries the same Idempotency-Key: req's, or a new random one, returned
// in Accepted.IdempotencyKey. So a retry after a lost answer returns the
// first answer instead of sending twice.
func (c *Client) Send(ctx context.Context, req SendRequest) (*Accepted, error) {
	key := req.IdempotencyKey
	if key == "" {
		key = NewIdempotencyKey()
	}
	var out Accepted
	h, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/notifications", body: req,
		header: http.Header{"Idempotency-Key": {key}}, idempotent: true}, &out)
	if err != nil {
		return nil, err
	}
	out.IdempotencyKey = key
	out.Replayed = h.Get("Idempotent-Replayed") == "true"
	return &out, nil
}

// GetNotification returns a notification with every delivery and its
// timeline.
func (c *Client) GetNotification(ctx context.Context, id string) (*Notification, error) {
	var out Notification
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/notifications/" + esc(id), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListNotifications returns one page of the app's notifications, newest
// first; pass NextCursor as p.Cursor for the next.
func (c *Client) ListNotifications(ctx context.Context, p ListNotificationsParams) (*NotificationList, error) {
	q := url.Values{}
	set(q, "user_id", p.UserID)
	set(q, "status", p.Status)
	set(q, "channel", p.Channel)
	set(q, "cursor", p.Cursor)
	if !p.Since.IsZero() {
		q.Set("since", p.Since.UTC().Format(time.RFC3339Nano))
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	var out NotificationList
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/notifications", query: q.Encode(), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CancelNotification cancels what has not been sent yet and returns the
// notification as it now stands. Canceling twice is harmless.
func (c *Client) CancelNotification(ctx context.Context, id string) (*Notification, error) {
	var out Notification
	if _, err := c.do(ctx, call{method: http.MethodDelete, path: "/v1/notifications/" + esc(id), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// WaitNotification polls a notification every interval (a second when
// zero) until its status is completed, and returns it; or ctx's error
// with the last state seen.
func (c *Client) WaitNotification(ctx context.Context, id string, interval time.Duration) (*Notification, error) {
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := c.GetNotification(ctx, id)
		if err != nil {
			return n, err
		}
		if n.Status == NotificationCompleted {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return n, fmt.Errorf("herald: waiting for notification %s (still %s): %w", id, n.Status, ctx.Err())
		case <-t.C:
		}
	}
}

// PutUser creates or replaces a user.
func (c *Client) PutUser(ctx context.Context, id string, req PutUserRequest) (*User, error) {
	var out User
	if _, err := c.do(ctx, call{method: http.MethodPut, path: "/v1/users/" + esc(id), body: req, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetUser returns a user.
func (c *Client) GetUser(ctx context.Context, id string) (*User, error) {
	var out User
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/users/" + esc(id), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteUser erases a user with its devices and preferences.
func (c *Client) DeleteUser(ctx context.Context, id string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: "/v1/users/" + esc(id), idempotent: true}, nil)
	return err
}

// ImportResult is what a CSV import wrote and which rows it skipped.
type ImportResult struct {
	Rows     int           `json:"rows"`
	Imported int           `json:"imported"`
	Created  int           `json:"created"`
	Updated  int           `json:"updated"`
	Failed   int           `json:"failed"`
	Errors   []ImportError `json:"errors"`
}

// ImportError is a skipped row: its line (the header is line 1) and column.
type ImportError struct {
	Line    int    `json:"line"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ImportUsers creates or updates users from CSV (POST /v1/users/import).
// The body is streamed once, so the call is not retried.
func (c *Client) ImportUsers(ctx context.Context, csv io.Reader) (*ImportResult, error) {
	var out ImportResult
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/users/import", rawBody: csv, contentType: "text/csv"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AddDevice registers a push device of a user; registering the same token
// again returns the existing device.
func (c *Client) AddDevice(ctx context.Context, userID string, req AddDeviceRequest) (*Device, error) {
	var out Device
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/users/" + esc(userID) + "/devices", body: req, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListDevices returns every device of a user, oldest first.
func (c *Client) ListDevices(ctx context.Context, userID string) ([]Device, error) {
	var out DeviceList
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/users/" + esc(userID) + "/devices", idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out.Data, nil
}

// DeleteDevice removes a device.
func (c *Client) DeleteDevice(ctx context.Context, userID, deviceID string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: "/v1/users/" + esc(userID) + "/devices/" + esc(deviceID), idempotent: true}, nil)
	return err
}

// GetPreferences returns a user's preferences.
func (c *Client) GetPreferences(ctx context.Context, userID string) (*Preferences, error) {
	var out Preferences
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/users/" + esc(userID) + "/preferences", idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PutPreferences replaces a user's preferences.
func (c *Client) PutPreferences(ctx context.Context, userID string, p Preferences) (*Preferences, error) {
	var out Preferences
	if _, err := c.do(ctx, call{method: http.MethodPut, path: "/v1/users/" + esc(userID) + "/preferences", body: p, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PutTemplate saves a new version of a template.
func (c *Client) PutTemplate(ctx context.Context, name string, req PutTemplateRequest) (*Template, error) {
	var out Template
	// Not idempotent: each save is a new version.
	if _, err := c.do(ctx, call{method: http.MethodPut, path: "/v1/templates/" + esc(name), body: req}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetTemplate returns a template's latest version, or version when it is
// above zero.
func (c *Client) GetTemplate(ctx context.Context, name string, version int) (*Template, error) {
	q := url.Values{}
	if version > 0 {
		q.Set("version", strconv.Itoa(version))
	}
	var out Template
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/templates/" + esc(name), query: q.Encode(), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListTemplates returns one page of templates (limit 0: the server's
// default).
func (c *Client) ListTemplates(ctx context.Context, cursor string, limit int) (*TemplateList, error) {
	q := url.Values{}
	set(q, "cursor", cursor)
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out TemplateList
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/templates", query: q.Encode(), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteTemplate deletes a template.
func (c *Client) DeleteTemplate(ctx context.Context, name string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: "/v1/templates/" + esc(name), idempotent: true}, nil)
	return err
}

// PreviewTemplate renders a template as a send would.
func (c *Client) PreviewTemplate(ctx context.Context, name string, req PreviewRequest) (*Preview, error) {
	var out Preview
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/templates/" + esc(name) + "/preview", body: req, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PutTopicSubscribers adds and removes subscribers of a topic, creating
// it on first use.
func (c *Client) PutTopicSubscribers(ctx context.Context, topic string, req PutSubscribersRequest) (*Topic, error) {
	var out Topic
	if _, err := c.do(ctx, call{method: http.MethodPut, path: "/v1/topics/" + esc(topic) + "/subscribers", body: req, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetTopic returns a topic with its subscriber count.
func (c *Client) GetTopic(ctx context.Context, topic string) (*Topic, error) {
	var out Topic
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/topics/" + esc(topic), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListDeadLetters returns one page of dead deliveries, newest first.
func (c *Client) ListDeadLetters(ctx context.Context, p ListDeadLettersParams) (*DeadLetterList, error) {
	q := url.Values{}
	set(q, "channel", p.Channel)
	set(q, "cursor", p.Cursor)
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	var out DeadLetterList
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/dead-letters", query: q.Encode(), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ReplayDeadLetter sends a dead delivery again with a fresh budget of
// attempts. A delivery that is no longer dead is a 409 (IsConflict), so
// the call is not retried after a lost answer.
func (c *Client) ReplayDeadLetter(ctx context.Context, deliveryID string) (*Delivery, error) {
	var out Delivery
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/dead-letters/" + esc(deliveryID) + "/replay"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateKey creates an API key of the app; its secret is in the answer
// only.
func (c *Client) CreateKey(ctx context.Context, req CreateKeyRequest) (*NewKey, error) {
	var out NewKey
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/keys", body: req}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListKeys returns the app's keys, without their secrets.
func (c *Client) ListKeys(ctx context.Context) ([]Key, error) {
	var out KeyList
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/keys", idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out.Data, nil
}

// RevokeKey revokes a key; effective on every process within seconds.
func (c *Client) RevokeKey(ctx context.Context, id string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: "/v1/keys/" + esc(id), idempotent: true}, nil)
	return err
}

// RotateKey makes a new key in place of key id; the old one stays valid
// for the grace period.
func (c *Client) RotateKey(ctx context.Context, id string, req RotateKeyRequest) (*NewKey, error) {
	var out NewKey
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/keys/" + esc(id) + "/rotate", body: req}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateWebhook creates a webhook endpoint; its Secret is in the answer
// only.
func (c *Client) CreateWebhook(ctx context.Context, req CreateWebhookRequest) (*Webhook, error) {
	var out Webhook
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/webhooks", body: req}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListWebhooks returns the app's webhook endpoints, without secrets.
func (c *Client) ListWebhooks(ctx context.Context) ([]Webhook, error) {
	var out WebhookList
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/webhooks", idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out.Data, nil
}

// DeleteWebhook deletes a webhook endpoint.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: "/v1/webhooks/" + esc(id), idempotent: true}, nil)
	return err
}

// PutProviders sets the ordered provider list of a channel (push, sms or
// email) and returns the stored kinds.
func (c *Client) PutProviders(ctx context.Context, channel string, entries []ProviderEntry) (*ProviderList, error) {
	if entries == nil {
		entries = []ProviderEntry{} // an empty list, not null
	}
	var out ProviderList
	if _, err := c.do(ctx, call{method: http.MethodPut, path: "/v1/providers/" + esc(channel), body: entries, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetApp returns the calling key's app.
func (c *Client) GetApp(ctx context.Context) (*App, error) {
	var out App
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/app", idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PutApp changes the app's settings.
func (c *Client) PutApp(ctx context.Context, req PutAppRequest) (*App, error) {
	var out App
	if _, err := c.do(ctx, call{method: http.MethodPut, path: "/v1/app", body: req, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func set(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}
