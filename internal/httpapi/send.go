package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/validate"
)

// maxIdempotencyKey bounds the Idempotency-Key header, which is stored.
const maxIdempotencyKey = 255

type sendRequestBody struct {
	To       []recipientBody `json:"to"`
	Channels []string        `json:"channels"`
	Fallback []string        `json:"fallback"`
	// FallbackWindow is a Go duration ("10m", "1h30m").
	FallbackWindow string       `json:"fallback_window"`
	Category       string       `json:"category"`
	Priority       string       `json:"priority"`
	Content        *contentBody `json:"content"`

	Template        string         `json:"template"`
	TemplateVersion int            `json:"template_version"`
	Data            map[string]any `json:"data"`

	// Fields of the public contract that this version does not implement
	// yet. They are decoded so that using one is a clear 422 rather than a
	// 400 "unknown field" or, worse, silently ignored.
	SendAt      json.RawMessage `json:"send_at"`
	SendAtLocal json.RawMessage `json:"send_at_local"`
	EventID     json.RawMessage `json:"event_id"`
}

type recipientBody struct {
	UserID string `json:"user_id"`
	Email  string `json:"email"`
	Phone  string `json:"phone"`
	Topic  string `json:"topic"`
}

type contentBody struct {
	Title   string   `json:"title"`
	Body    string   `json:"body"`
	Subject string   `json:"subject"`
	HTML    string   `json:"html"`
	URL     string   `json:"url"`
	Icon    string   `json:"icon"`
	Data    pushData `json:"data"`
}

type acceptedResponse struct {
	ID         string                     `json:"id"`
	Status     string                     `json:"status"`
	Deliveries []acceptedDeliveryResponse `json:"deliveries"`
}

type acceptedDeliveryResponse struct {
	ID      string `json:"id"`
	UserID  string `json:"user_id,omitempty"`
	Channel string `json:"channel"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
}

// present reports whether an optional raw member was given a value.
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && !bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

const notSupported = "is not supported yet"

func (s *server) sendNotification(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	var body sendRequestBody
	if err := s.decode(w, r, &body); err != nil {
		return err
	}
	req, err := s.sendRequest(body)
	if err != nil {
		return err
	}
	return s.send(w, r, caller, req)
}

// sendRequest checks a decoded POST /v1/notifications body and turns it
// into the request the Sender takes. Errors are CodeInvalid naming each
// field; the Sender checks what needs the store (users, templates) and
// the contacts given directly.
func (s *server) sendRequest(body sendRequestBody) (herald.SendRequest, error) {
	var v herald.Validation
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{
		{"event_id", body.EventID},
	} {
		if present(f.raw) {
			v.Add(f.name, notSupported)
		}
	}
	req := herald.SendRequest{Category: body.Category, Priority: herald.Priority(body.Priority),
		Template: body.Template, TemplateVersion: body.TemplateVersion, Data: body.Data}
	req.SendAt, req.SendAtLocal = scheduleFields(&v, body.SendAt, body.SendAtLocal)
	s.checkRecipientCount(&v, len(body.To))
	req.To = make([]herald.Recipient, 0, len(body.To))
	for i, rc := range body.To {
		// Field names are built only for an error: most requests have none.
		if rc.UserID != "" && !validUserID(rc.UserID) {
			v.Add(recipientField(i)+".user_id", "must be 1 to %d printable characters without a slash", maxUserID)
		}
		if rc.Topic != "" {
			if err := validate.Topic(rc.Topic); err != nil {
				v.Add(recipientField(i)+".topic", "%v", err)
			}
		}
		req.To = append(req.To, herald.Recipient{UserID: rc.UserID, Email: rc.Email, Phone: rc.Phone, Topic: rc.Topic})
		if !oneAddress(req.To[len(req.To)-1]) {
			v.Add(recipientField(i), "must have exactly one of user_id, email, phone or topic")
		}
	}
	if len(body.Channels) > 0 {
		req.Channels = make([]herald.Channel, 0, len(body.Channels))
	}
	for i, c := range body.Channels {
		req.Channels = append(req.Channels, herald.Channel(c))
		if !herald.Channel(c).Valid() {
			v.Add("channels["+strconv.Itoa(i)+"]", "must be push, email or sms")
		}
	}
	if body.Fallback != nil {
		req.Fallback = make([]herald.Channel, 0, len(body.Fallback))
	}
	for i, c := range body.Fallback {
		req.Fallback = append(req.Fallback, herald.Channel(c))
		if !herald.Channel(c).Valid() {
			v.Add("fallback["+strconv.Itoa(i)+"]", "must be push, email or sms")
		}
	}
	if body.FallbackWindow != "" {
		d, err := time.ParseDuration(body.FallbackWindow)
		if err != nil {
			v.Add("fallback_window", `must be a duration like "10m" or "1h30m"`)
		}
		req.FallbackWindow = d
	}
	checkCategoryPriority(&v, body.Category, body.Priority)
	if body.Content == nil {
		if body.Template == "" {
			v.Add("content", "is required (or template, with data)")
		}
	} else {
		req.Content = herald.Content{
			Title: body.Content.Title, Body: body.Content.Body, Subject: body.Content.Subject,
			HTML: body.Content.HTML, URL: body.Content.URL, Icon: body.Content.Icon, Data: body.Content.Data.strings(&v, "content.data"),
		}
	}
	if err := v.Err(); err != nil {
		return herald.SendRequest{}, err
	}
	return req, nil
}

func (s *server) checkRecipientCount(v *herald.Validation, n int) {
	switch {
	case n == 0:
		v.Add("to", "must list at least one recipient")
	case n > s.maxRecipients:
		v.Add("to", "must list at most %d recipients", s.maxRecipients)
	}
}

func checkOneAddress(v *herald.Validation, field string, rc herald.Recipient) {
	if !oneAddress(rc) {
		v.Add(field, oneAddressMessage)
	}
}

const oneAddressMessage = "must have exactly one of user_id, email or phone"

func oneAddress(rc herald.Recipient) bool {
	n := 0
	for _, s := range [...]string{rc.UserID, rc.Email, rc.Phone, rc.Topic} {
		if s != "" {
			n++
		}
	}
	return n == 1
}

func recipientField(i int) string { return "to[" + strconv.Itoa(i) + "]" }

func checkCategoryPriority(v *herald.Validation, category, priority string) {
	if category != "" {
		if err := validate.Category(category); err != nil {
			v.Add("category", "%v", err)
		}
	}
	if priority != "" && !herald.Priority(priority).Valid() {
		v.Add("priority", "must be normal or high")
	}
}

// send hands the request to the Sender with the Idempotency-Key header and
// answers 202 with what it accepted (the first answer on a replay).
func (s *server) send(w http.ResponseWriter, r *http.Request, caller herald.APIKey, req herald.SendRequest) error {
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		if len(key) > maxIdempotencyKey || !visibleASCII(key) {
			return herald.Invalid("Idempotency-Key", fmt.Sprintf("must be 1 to %d visible ASCII characters", maxIdempotencyKey))
		}
		req.IdempotencyKey = key
	}
	a, replayed, err := s.sender.Send(r.Context(), caller.AppID, req)
	if err != nil {
		return fmt.Errorf("httpapi: send: %w", err)
	}
	out := acceptedResponse{ID: a.ID, Status: a.Status, Deliveries: make([]acceptedDeliveryResponse, 0, len(a.Deliveries))}
	for _, d := range a.Deliveries {
		out.Deliveries = append(out.Deliveries, acceptedDeliveryResponse{
			ID: d.ID, UserID: d.UserID, Channel: string(d.Channel), Status: string(d.Status), Reason: d.Reason,
		})
	}
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	s.writeJSON(w, r, http.StatusAccepted, out)
	return nil
}

func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// pushData is the data of a push: string values, and numbers and booleans
// taken as their text, since FCM carries only strings.
type pushData map[string]any

func (d pushData) strings(v *herald.Validation, field string) map[string]string {
	if d == nil {
		return nil
	}
	out := make(map[string]string, len(d))
	for k, val := range d {
		switch val := val.(type) {
		case string:
			out[k] = val
		case json.Number:
			out[k] = val.String()
		case bool:
			out[k] = strconv.FormatBool(val)
		default:
			v.Add(field+"."+k, "must be a string, a number or a boolean")
		}
	}
	return out
}

// scheduleFields reads send_at (an RFC 3339 time) and send_at_local
// ("HH:MM"); the sender checks their ranges.
func scheduleFields(v *herald.Validation, sendAt, sendAtLocal json.RawMessage) (time.Time, string) {
	var at time.Time
	if present(sendAt) {
		var raw string
		t, err := time.Time{}, json.Unmarshal(sendAt, &raw)
		if err == nil {
			t, err = time.Parse(time.RFC3339, raw)
		}
		if err != nil {
			v.Add("send_at", "must be an RFC 3339 time like 2026-12-01T09:00:00Z")
		}
		at = t.UTC()
	}
	var local string
	if present(sendAtLocal) {
		if err := json.Unmarshal(sendAtLocal, &local); err != nil {
			v.Add("send_at_local", `must be a 24-hour time "HH:MM", like "09:00"`)
		}
	}
	return at, local
}
