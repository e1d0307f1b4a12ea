package httpapi

import (
	"context"
	"errors"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/heraldhq/herald"
)

// Tracking handles the routes outside /v1 that the outside world calls
// without an API key: provider callbacks, verified by their signatures,
// and the tracking links Herald hands out, verified by their tokens.
type Tracking interface {
	// TwilioStatus handles a status callback. fullURL is the URL Twilio
	// was given (the public URL, path and query). Errors: CodeUnauthorized
	// without a signature, CodeForbidden when it does not verify.
	TwilioStatus(ctx context.Context, fullURL string, params url.Values, signature string) error
	// SendGridEvents handles a signed Event Webhook batch. Errors:
	// CodeUnauthorized without a signature, CodeForbidden when it is stale
	// or does not verify, CodeMalformed for a body that is no event array.
	SendGridEvents(ctx context.Context, timestamp, signature string, body []byte) error
	// Click records a click and returns where it leads. Errors:
	// CodeNotFound for a token that is not Herald's.
	Click(ctx context.Context, token string) (string, error)
	// Open records an open. Errors: CodeNotFound for a bad token.
	Open(ctx context.Context, token string) error
	// UnsubscribeScope returns the channel and category an unsubscribe
	// link is about. Errors: CodeNotFound for a bad token.
	UnsubscribeScope(ctx context.Context, token string) (herald.Channel, string, error)
	// Unsubscribe opts the link's user out of its category on its channel,
	// or of the channel when everything is set. Errors: CodeNotFound.
	Unsubscribe(ctx context.Context, token string, everything bool) error
}

// Body limits of the unauthenticated routes: a status callback is a
// short form, an event batch may hold many events, and an unsubscribe
// form is a field or two.
const (
	maxTwilioBody      = 64 << 10
	maxSendGridBody    = 8 << 20
	maxUnsubscribeBody = 8 << 10
)

// TwilioStatusPath is where Twilio posts status callbacks, below the public URL.
const TwilioStatusPath = "/hooks/twilio/status"

func (s *server) trackingRoutes() {
	m := s.mux
	m.HandleFunc("POST "+TwilioStatusPath, s.twilioStatus)
	m.HandleFunc("POST /hooks/sendgrid/events", s.sendgridEvents)
	m.HandleFunc("GET /t/c/{token}", s.click)
	m.HandleFunc("GET /t/o/{token}", s.open)
	m.HandleFunc("GET /u/{token}", s.unsubscribePage)
	m.HandleFunc("POST /u/{token}", s.unsubscribe)
}

// readCapped reads the whole body up to limit; over it is CodeTooLarge.
func readCapped(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, herald.Errorf(herald.CodeTooLarge, "the request body is larger than %d bytes", mbe.Limit)
		}
		return nil, &herald.Error{Code: herald.CodeMalformed, Message: "the request body could not be read", Err: err}
	}
	return body, nil
}

func (s *server) twilioStatus(w http.ResponseWriter, r *http.Request) {
	body, err := readCapped(w, r, maxTwilioBody)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	params, err := url.ParseQuery(string(body))
	if err != nil {
		s.fail(w, r, &herald.Error{Code: herald.CodeMalformed, Message: "the body must be form-encoded",
			Fields: []herald.FieldError{{Field: "body", Message: "must be application/x-www-form-urlencoded"}}})
		return
	}
	// Twilio signs the URL it was given, which is the public URL: the
	// Host this request arrived with may be a proxy's.
	full := s.publicURL + TwilioStatusPath
	if r.URL.RawQuery != "" {
		full += "?" + r.URL.RawQuery
	}
	if err := s.tracking.TwilioStatus(r.Context(), full, params, r.Header.Get("X-Twilio-Signature")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) sendgridEvents(w http.ResponseWriter, r *http.Request) {
	body, err := readCapped(w, r, maxSendGridBody)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	err = s.tracking.SendGridEvents(r.Context(), r.Header.Get("X-Twilio-Email-Event-Webhook-Timestamp"),
		r.Header.Get("X-Twilio-Email-Event-Webhook-Signature"), body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) click(w http.ResponseWriter, r *http.Request) {
	target, err := s.tracking.Click(r.Context(), r.PathValue("token"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Location", target)
	w.WriteHeader(http.StatusFound)
}

// pixel is a transparent 1×1 GIF.
var pixel = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

func (s *server) open(w http.ResponseWriter, r *http.Request) {
	if err := s.tracking.Open(r.Context(), r.PathValue("token")); err != nil {
		s.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/gif")
	h.Set("Cache-Control", "no-store, private")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(pixel)
}

var unsubscribeTmpl = template.Must(template.New("unsubscribe").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>Unsubscribe</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}
button{font-size:1rem;padding:.5rem 1rem}label{display:block;margin:.5rem 0}</style></head>
<body>{{if .Done}}<h1>You are unsubscribed</h1>
<p>{{if .Everything}}You will get no more {{.Channel}} from us.{{else}}You will get no more {{.Channel}} about {{.Category}}.{{end}}</p>
{{else}}<h1>Unsubscribe</h1>
<form method="post">
{{if .Category}}<label><input type="radio" name="scope" value="category" checked> Only {{.Channel}} about {{.Category}}</label>
<label><input type="radio" name="scope" value="all"> All {{.Channel}}</label>
{{else}}<input type="hidden" name="scope" value="all"><p>Stop all {{.Channel}} from us?</p>{{end}}
<button type="submit">Unsubscribe</button>
</form>{{end}}
</body></html>
`))

type unsubscribeView struct {
	Channel    string
	Category   string
	Done       bool
	Everything bool
}

// channelNoun names a channel's messages on the unsubscribe page.
func channelNoun(c herald.Channel) string {
	switch c {
	case herald.ChannelEmail:
		return "emails"
	case herald.ChannelSMS:
		return "text messages"
	case herald.ChannelPush:
		return "notifications"
	}
	return "messages"
}

// unsubscribePage asks to confirm: a GET never unsubscribes by itself,
// since mail scanners follow links.
func (s *server) unsubscribePage(w http.ResponseWriter, r *http.Request) {
	c, category, err := s.tracking.UnsubscribeScope(r.Context(), r.PathValue("token"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writePage(w, unsubscribeView{Channel: channelNoun(c), Category: category})
}

// unsubscribe takes the confirmation form (scope=all or category) and
// the RFC 8058 one-click POST (List-Unsubscribe=One-Click), which opts
// out of the category on the channel at once.
func (s *server) unsubscribe(w http.ResponseWriter, r *http.Request) {
	body, err := readCapped(w, r, maxUnsubscribeBody)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		s.fail(w, r, &herald.Error{Code: herald.CodeMalformed, Message: "the body must be form-encoded",
			Fields: []herald.FieldError{{Field: "body", Message: "must be application/x-www-form-urlencoded"}}})
		return
	}
	scope := form.Get("scope")
	if scope != "" && scope != "all" && scope != "category" {
		s.fail(w, r, herald.Invalid("scope", `use "category" or "all"`))
		return
	}
	token := r.PathValue("token")
	c, category, err := s.tracking.UnsubscribeScope(r.Context(), token)
	if err == nil {
		err = s.tracking.Unsubscribe(r.Context(), token, scope == "all")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if form.Get("List-Unsubscribe") == "One-Click" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.writePage(w, unsubscribeView{Channel: channelNoun(c), Category: category, Done: true,
		Everything: scope == "all" || category == ""})
}

func (s *server) writePage(w http.ResponseWriter, v unsubscribeView) {
	var b strings.Builder
	if err := unsubscribeTmpl.Execute(&b, v); err != nil {
		s.log.Error("httpapi: unsubscribe page", "err", err)
		writeProblemBody(w, http.StatusInternalServerError, problemFor(herald.CodeInternal, "", nil))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, b.String())
}
