package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/heraldhq/herald"
)

// channelSendBody is the SendGrid-like shape of /v1/{email,sms,push}/send,
// kept so that services written against the original design work as they are.
type channelSendBody struct {
	To       []channelRecipientBody `json:"to"`
	From     *fromBody              `json:"from"`
	Subject  string                 `json:"subject"`
	Content  []channelContentBody   `json:"content"`
	Title    string                 `json:"title"`
	URL      string                 `json:"url"`
	Data     pushData               `json:"data"`
	Category string                 `json:"category"`
	Priority string                 `json:"priority"`
}

type channelRecipientBody struct {
	// UserID is a string or an integer: older callers send numeric ids.
	UserID json.RawMessage `json:"user_id"`
	Email  string          `json:"email"`
	Phone  string          `json:"phone"`
}

// fromBody is accepted and ignored: the sender address is the provider's
// configured from, so that an API key cannot spoof another domain.
type fromBody struct {
	Email string `json:"email"`
	Name  string `json:"name"`
}

type channelContentBody struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// userIDFromJSON reads a user id given as a JSON string or integer.
func userIDFromJSON(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", true
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false
		}
		return s, validUserID(s)
	}
	if len(raw) > 40 {
		return "", false
	}
	for _, b := range raw {
		if b < '0' || b > '9' {
			return "", false
		}
	}
	return string(raw), true
}

// channelSend maps the channel endpoint's body onto a SendRequest for
// that one channel, so both shapes share the whole pipeline.
func (s *server) channelSend(c herald.Channel) handler {
	return func(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
		var body channelSendBody
		if err := s.decode(w, r, &body); err != nil {
			return err
		}
		var v herald.Validation
		req := herald.SendRequest{
			Channels: []herald.Channel{c},
			Category: body.Category,
			Priority: herald.Priority(body.Priority),
			Content:  herald.Content{Title: body.Title, Subject: body.Subject, URL: body.URL, Data: body.Data.strings(&v, "data")},
		}
		s.checkRecipientCount(&v, len(body.To))
		for i, rc := range body.To {
			field := "to[" + strconv.Itoa(i) + "]"
			id, ok := userIDFromJSON(rc.UserID)
			if !ok {
				v.Add(field+".user_id", "must be a string of 1 to %d printable characters without a slash, or an integer", maxUserID)
			}
			req.To = append(req.To, herald.Recipient{UserID: id, Email: rc.Email, Phone: rc.Phone})
			if ok {
				checkOneAddress(&v, field, req.To[len(req.To)-1])
			}
		}
		checkCategoryPriority(&v, body.Category, body.Priority)
		seen := map[string]bool{}
		for i, part := range body.Content {
			field := "content[" + strconv.Itoa(i) + "]"
			switch part.Type {
			case "text/plain":
				req.Content.Body = part.Value
			case "text/html":
				req.Content.HTML = part.Value
			default:
				v.Add(field+".type", "must be text/plain or text/html")
				continue
			}
			if seen[part.Type] {
				v.Add(field+".type", "%s is given twice", part.Type)
			}
			seen[part.Type] = true
		}
		if err := v.Err(); err != nil {
			return err
		}
		return channelFields(s.send(w, r, caller, req))
	}
}

// channelFields renames the fields of a validation error from the shape of
// POST /v1/notifications to the shape of the channel endpoints, so that
// each names the offending input of the request actually sent.
func channelFields(err error) error {
	var he *herald.Error
	if !errors.As(err, &he) || len(he.Fields) == 0 {
		return err
	}
	renamed := *he
	renamed.Fields = make([]herald.FieldError, len(he.Fields))
	for i, f := range he.Fields {
		switch {
		case f.Field == "channels":
			f.Field = "to" // the endpoint fixes the channel: no recipient has it
		case f.Field == "content.body" || f.Field == "content.html":
			f.Field = "content"
		case strings.HasPrefix(f.Field, "content."):
			f.Field = strings.TrimPrefix(f.Field, "content.") // subject, title, url, data.*
		}
		renamed.Fields[i] = f
	}
	return &renamed
}
