// Package storeutil holds the few rules both store dialects must apply
// identically (cursor format, page limits, status sets, time precision),
// so that the SQLite and Postgres stores cannot drift apart on them.
package storeutil

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/heraldhq/herald"
)

// Page limits of ListNotifications.
const (
	DefaultLimit = 50
	MaxLimit     = 500
	// DefaultStaleLimit bounds StaleDeliveries when the caller gives no limit.
	DefaultStaleLimit = 100
)

// Limit normalises a requested page size: zero or negative means the
// default, and anything above MaxLimit is capped.
func Limit(n int) int {
	switch {
	case n <= 0:
		return DefaultLimit
	case n > MaxLimit:
		return MaxLimit
	}
	return n
}

// EncodeCursor makes the opaque cursor that follows the notification with
// this id. It is opaque so that callers cannot come to rely on its shape.
func EncodeCursor(lastID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(lastID))
}

// DecodeCursor returns the id a cursor points after. A cursor that is not
// ours is the caller's mistake: CodeInvalid naming the "cursor" field.
func DecodeCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !isID(string(b)) {
		return "", herald.Invalid("cursor", "is not a cursor returned by a previous page")
	}
	return string(b), nil
}

// OpenStatuses returns the statuses that are not Done, which a transition
// with an empty From may leave.
func OpenStatuses() []herald.Status {
	all := []herald.Status{
		herald.StatusAccepted, herald.StatusScheduled, herald.StatusQueued, herald.StatusSending,
		herald.StatusSent, herald.StatusDelivered, herald.StatusOpened, herald.StatusClicked,
		herald.StatusFailed, herald.StatusSuppressed, herald.StatusCanceled, herald.StatusDead,
	}
	open := all[:0]
	for _, s := range all {
		if !s.Done() {
			open = append(open, s)
		}
	}
	return open
}

// GuardStatuses returns the statuses a transition may start from.
func GuardStatuses(from []herald.Status) []string {
	if len(from) == 0 {
		from = OpenStatuses()
	}
	out := make([]string, len(from))
	for i, s := range from {
		out[i] = string(s)
	}
	return out
}

// Time is the form in which every time is stored: UTC, truncated to the
// microsecond (both dialects keep microseconds; Postgres would round
// instead of truncating, so we truncate first to behave the same).
func Time(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// DueAt is when a new delivery is first due: its NextAttemptAt, or its
// creation when that is zero ("now").
func DueAt(d herald.Delivery) time.Time {
	if d.NextAttemptAt.IsZero() {
		return d.CreatedAt
	}
	return d.NextAttemptAt
}

// Fill completes a new notification's deliveries, events and idempotency
// record with the notification's app and id where the caller left them
// empty, so a batch cannot write rows that no query would ever find.
func Fill(n *herald.NewNotification) {
	app, id := n.Notification.AppID, n.Notification.ID
	for i := range n.Deliveries {
		d := &n.Deliveries[i]
		if d.AppID == "" {
			d.AppID = app
		}
		if d.NotificationID == "" {
			d.NotificationID = id
		}
	}
	for i := range n.Events {
		e := &n.Events[i]
		if e.AppID == "" {
			e.AppID = app
		}
		if e.NotificationID == "" {
			e.NotificationID = id
		}
	}
	if n.Idempotency != nil {
		if n.Idempotency.AppID == "" {
			n.Idempotency.AppID = app
		}
		if n.Idempotency.NotificationID == "" {
			n.Idempotency.NotificationID = id
		}
	}
}

// UserTimes fills a user's missing CreatedAt or UpdatedAt from the other,
// and both from now when the caller gave neither.
func UserTimes(u *herald.User, now func() time.Time) {
	switch {
	case u.CreatedAt.IsZero() && u.UpdatedAt.IsZero():
		u.CreatedAt = now()
		u.UpdatedAt = u.CreatedAt
	case u.CreatedAt.IsZero():
		u.CreatedAt = u.UpdatedAt
	case u.UpdatedAt.IsZero():
		u.UpdatedAt = u.CreatedAt
	}
	u.CreatedAt, u.UpdatedAt = Time(u.CreatedAt), Time(u.UpdatedAt)
}

// ContactColumn names the users column holding the status of channel c's
// contact; CodeInvalid for channels without a contact (push has devices).
func ContactColumn(c herald.Channel) (string, error) {
	switch c {
	case herald.ChannelEmail:
		return "email_status", nil
	case herald.ChannelSMS:
		return "phone_status", nil
	}
	return "", herald.Invalid("channel", "only email and sms have a contact status")
}

// Message is the caller-facing text of a translated driver error; the
// operation and the driver's own text stay in the error chain for logs.
func Message(c herald.Code) string {
	switch c {
	case herald.CodeConflict:
		return "already exists"
	case herald.CodeUnavailable:
		return "the database is unavailable"
	}
	return "the database failed"
}

// isID reports whether s has the form of a UUID, the form of every id
// a cursor can carry.
func isID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if r != '-' {
				return false
			}
		case !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F'):
			return false
		}
	}
	return true
}

// DecodeAttributes reads a stored attributes document, keeping numbers
// exactly as they were given (json.Number) instead of rounding them to
// float64: a 64-bit CRM id must come back unchanged.
func DecodeAttributes(doc []byte) (map[string]any, error) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// DeadLetters pairs each dead delivery with its own events, kept in order.
func DeadLetters(ds []herald.Delivery, evs []herald.Event) []herald.DeadLetter {
	out := make([]herald.DeadLetter, len(ds))
	at := make(map[string]int, len(ds))
	for i, d := range ds {
		out[i].Delivery = d
		at[d.ID] = i
	}
	for _, e := range evs {
		if i, ok := at[e.DeliveryID]; ok {
			out[i].Events = append(out[i].Events, e)
		}
	}
	return out
}

// Qualified prefixes each of the comma-separated columns with table and a
// dot, for a query that joins tables sharing column names.
func Qualified(table, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = table + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// EncodeNameCursor makes the opaque cursor that follows the template of
// this name. Names are not ids, so it is marked to keep the two apart.
func EncodeNameCursor(lastName string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("n:" + lastName))
}

// DecodeNameCursor returns the name a cursor of EncodeNameCursor points
// after; CodeInvalid naming "cursor" for any other string.
func DecodeNameCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	name, ok := bytes.CutPrefix(b, []byte("n:"))
	if err != nil || !ok || len(name) == 0 {
		return "", herald.Invalid("cursor", "is not a cursor returned by a previous page")
	}
	return string(name), nil
}

// contentDoc is the stored content document of a notification: what it
// says, and for a templated one how each recipient's content was rendered.
type contentDoc struct {
	herald.Content
	Template *herald.Rendering `json:"template,omitempty"`
	Fallback []herald.Channel  `json:"fallback,omitempty"`
	// FallbackWindow is in seconds.
	FallbackWindow int64 `json:"fallback_window,omitempty"`
}

// EncodeContent returns the content document of n.
func EncodeContent(n herald.Notification) ([]byte, error) {
	return json.Marshal(contentDoc{Content: n.Content, Template: n.Template, Fallback: n.Fallback,
		FallbackWindow: int64(n.FallbackWindow / time.Second)})
}

// DecodeContent fills n's Content and Template from a content document.
func DecodeContent(doc []byte, n *herald.Notification) error {
	var d contentDoc
	if err := json.Unmarshal(doc, &d); err != nil {
		return err
	}
	n.Content, n.Template, n.Fallback = d.Content, d.Template, d.Fallback
	n.FallbackWindow = time.Duration(d.FallbackWindow) * time.Second
	return nil
}

// templateDoc is the stored document of a template version.
type templateDoc struct {
	herald.TemplateParts
	Locales map[string]herald.TemplateParts `json:"locales,omitempty"`
}

// EncodeTemplate returns the document of t's parts.
func EncodeTemplate(t herald.Template) ([]byte, error) {
	return json.Marshal(templateDoc{TemplateParts: t.TemplateParts, Locales: t.Locales})
}

// DecodeTemplate fills t's parts from a template document.
func DecodeTemplate(doc []byte, t *herald.Template) error {
	var d templateDoc
	if err := json.Unmarshal(doc, &d); err != nil {
		return err
	}
	t.TemplateParts, t.Locales = d.TemplateParts, d.Locales
	return nil
}

// fanoutRequest is the stored document of what a fan-out applies to each
// subscriber: the send request's channels and schedule.
type fanoutRequest struct {
	Channels    []herald.Channel `json:"channels,omitempty"`
	SendAt      time.Time        `json:"send_at,omitzero"`
	SendAtLocal string           `json:"send_at_local,omitempty"`
}

// EncodeFanoutRequest returns the request document of f.
func EncodeFanoutRequest(f herald.Fanout) []byte {
	b, _ := json.Marshal(fanoutRequest{Channels: f.Channels, SendAt: f.SendAt, SendAtLocal: f.SendAtLocal}) // plain data: cannot fail
	return b
}

// DecodeFanoutRequest fills f's request fields from its document.
func DecodeFanoutRequest(doc []byte, f *herald.Fanout) error {
	var r fanoutRequest
	if err := json.Unmarshal(doc, &r); err != nil {
		return err
	}
	f.Channels, f.SendAt, f.SendAtLocal = r.Channels, r.SendAt, r.SendAtLocal
	return nil
}

// FanoutPageRows keeps the deliveries of p that inserted reports written,
// and the events of those, in p.Inserted and returns the events.
func FanoutPageRows(p *herald.FanoutPage, inserted map[string]bool) []herald.Event {
	p.Inserted = p.Inserted[:0]
	for _, d := range p.Deliveries {
		if inserted[d.ID] {
			p.Inserted = append(p.Inserted, d)
		}
	}
	var evs []herald.Event
	for _, e := range p.Events {
		if inserted[e.DeliveryID] {
			evs = append(evs, e)
		}
	}
	return evs
}

// FallbackBlockers are the statuses in which another delivery of the
// channel a fallback step leaves keeps the step from being taken: it may
// still reach the user, did, or was called off.
var FallbackBlockers = []string{
	string(herald.StatusAccepted), string(herald.StatusScheduled), string(herald.StatusQueued), string(herald.StatusSending),
	string(herald.StatusSent), string(herald.StatusDelivered), string(herald.StatusOpened), string(herald.StatusClicked),
	string(herald.StatusCanceled),
}

// MaxIDsPerRead bounds the ids one query of a bulk read takes, so a large
// list stays within the drivers' and databases' limits on a statement.
const MaxIDsPerRead = 500

// IDChunks returns ids without repeats, in chunks of at most MaxIDsPerRead:
// a bulk read runs its queries once per chunk, and would read an id found
// in two chunks twice.
func IDChunks(ids []string) [][]string {
	seen := make(map[string]bool, len(ids))
	distinct := make([]string, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			distinct = append(distinct, id)
		}
	}
	return slices.Collect(slices.Chunk(distinct, MaxIDsPerRead))
}
