package smtp_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/provider/providertest"
	"github.com/heraldhq/herald/internal/provider/smtp"
)

func newProvider(t *testing.T, settings map[string]any) *smtp.Provider {
	t.Helper()
	raw, err := json.Marshal(settings)
	if err != nil {
		t.Fatal(err)
	}
	p, err := smtp.New(raw, herald.ProviderEnv{})
	if err != nil {
		t.Fatalf("smtp.New(%s): %v", raw, err)
	}
	return p
}

func plainSettings(srv *providertest.SMTPServer) map[string]any {
	return map[string]any{"endpoint": srv.Addr(), "from": "Herald <noreply@example.com>", "tls": "none"}
}

func message(id, to string) herald.Message {
	return herald.Message{
		AppID: "app_1", NotificationID: "ntf_1", DeliveryID: id, Channel: herald.ChannelEmail,
		To:      to,
		Content: herald.Content{Subject: "Your order shipped", Body: "It is on its way."},
	}
}

func send(t *testing.T, p herald.Provider, m herald.Message) herald.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return p.Send(ctx, m)
}

func TestConformance(t *testing.T) {
	srv := providertest.NewSMTPServer(t)
	providertest.Run(t, providertest.Suite{
		Kind:     "smtp",
		New:      func(t *testing.T) herald.Provider { return newProvider(t, plainSettings(srv)) },
		Message:  func() herald.Message { return message("dlv_x", "ada@example.org") },
		Received: func(*testing.T) int { return len(srv.Messages()) },
	})
}

func TestConformanceSTARTTLS(t *testing.T) {
	srv := providertest.NewSMTPServer(t, providertest.WithSTARTTLS(), providertest.WithAuth("herald", "s3cret"))
	providertest.Run(t, providertest.Suite{
		Kind: "smtp",
		New: func(t *testing.T) herald.Provider {
			return newProvider(t, map[string]any{
				"endpoint": srv.Addr(), "from": "noreply@example.com",
				"username": "herald", "password": "s3cret", "ca_pem": srv.CAPEM(),
			})
		},
		Message:  func() herald.Message { return message("dlv_x", "ada@example.org") },
		Received: func(*testing.T) int { return len(srv.Messages()) },
	})
}

func TestSendHeaders(t *testing.T) {
	t.Parallel()
	srv := providertest.NewSMTPServer(t)
	p := newProvider(t, plainSettings(srv))

	out := send(t, p, message("dlv_01HZX", "Ada Lovelace <ada@example.org>"))
	if out.Kind != herald.OutcomeSent {
		t.Fatalf("Send = %v (%s), want sent", out.Kind, out.Detail)
	}
	if want := "<dlv_01HZX@example.com>"; out.ProviderMessageID != want {
		t.Fatalf("ProviderMessageID = %q, want %q", out.ProviderMessageID, want)
	}
	got := srv.Messages()[0]
	if got.From != "noreply@example.com" {
		t.Errorf("MAIL FROM = %q", got.From)
	}
	if len(got.To) != 1 || got.To[0] != "ada@example.org" {
		t.Errorf("RCPT TO = %q, want [ada@example.org]", got.To)
	}
	if got.MessageID != out.ProviderMessageID {
		t.Errorf("Message-ID header = %q, want %q", got.MessageID, out.ProviderMessageID)
	}
	if got.Subject != "Your order shipped" {
		t.Errorf("Subject = %q", got.Subject)
	}
	if v := got.Header.Get(smtp.HeaderDeliveryID); v != "dlv_01HZX" {
		t.Errorf("%s = %q", smtp.HeaderDeliveryID, v)
	}
	from, err := mail.ParseAddress(got.Header.Get("From"))
	if err != nil || from.Name != "Herald" || from.Address != "noreply@example.com" {
		t.Errorf("From header = %q (%v)", got.Header.Get("From"), err)
	}
	if got.Header.Get("Date") == "" {
		t.Error("no Date header")
	}
}

func TestSameDeliverySameMessageID(t *testing.T) {
	t.Parallel()
	srv := providertest.NewSMTPServer(t)
	p := newProvider(t, plainSettings(srv))
	m := message("dlv_repeat", "ada@example.org")
	first, second := send(t, p, m), send(t, p, m)
	if first.Kind != herald.OutcomeSent || second.Kind != herald.OutcomeSent {
		t.Fatalf("sends = %v, %v", first.Kind, second.Kind)
	}
	if first.ProviderMessageID != second.ProviderMessageID {
		t.Fatalf("Message-IDs differ: %q, %q", first.ProviderMessageID, second.ProviderMessageID)
	}
	got := srv.Messages()
	if got[0].MessageID != got[1].MessageID || got[0].MessageID != first.ProviderMessageID {
		t.Fatalf("received Message-IDs %q, %q; want both %q", got[0].MessageID, got[1].MessageID, first.ProviderMessageID)
	}

	// An id that is not a valid msg-id left part still gives a stable, valid id.
	odd := message("dlv with spaces/<>", "ada@example.org")
	a, b := send(t, p, odd), send(t, p, odd)
	if a.ProviderMessageID != b.ProviderMessageID || strings.ContainsAny(strings.Trim(a.ProviderMessageID, "<>"), " <>/") {
		t.Fatalf("odd delivery id gave Message-IDs %q, %q", a.ProviderMessageID, b.ProviderMessageID)
	}
}

func TestHTMLAndText(t *testing.T) {
	t.Parallel()
	srv := providertest.NewSMTPServer(t)
	p := newProvider(t, plainSettings(srv))
	m := message("dlv_html", "ada@example.org")
	m.Content.Subject = "Grüße aus Köln"
	m.Content.HTML = "<p>It is <b>on its way</b>.</p>"
	if out := send(t, p, m); out.Kind != herald.OutcomeSent {
		t.Fatalf("Send = %v (%s)", out.Kind, out.Detail)
	}
	got := srv.Messages()[0]
	if got.Subject != "Grüße aus Köln" {
		t.Errorf("Subject = %q", got.Subject)
	}
	mediaType, params, err := mime.ParseMediaType(got.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type = %q (%v), want multipart/alternative", got.Header.Get("Content-Type"), err)
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(got.Data)))
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string]string{}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart() // decodes quoted-printable
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(part)
		ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		parts[ct] = strings.TrimSpace(string(body))
	}
	if parts["text/plain"] != m.Content.Body {
		t.Errorf("text/plain part = %q, want %q", parts["text/plain"], m.Content.Body)
	}
	if parts["text/html"] != m.Content.HTML {
		t.Errorf("text/html part = %q, want %q", parts["text/html"], m.Content.HTML)
	}
}

func TestClassification(t *testing.T) {
	t.Parallel()
	// A port that refuses connections: listen, note the address, close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()

	tests := []struct {
		name     string
		opts     []providertest.SMTPOption
		endpoint string // instead of the fake's
		to       string
		want     herald.OutcomeKind
		detail   string // a part of Outcome.Detail
	}{
		{name: "accepted", to: "ada@example.org", want: herald.OutcomeSent},
		{name: "550 5.1.1 no such mailbox",
			opts: []providertest.SMTPOption{providertest.RejectRecipient("gone@example.org", 550, [3]int{5, 1, 1}, "No such user")},
			to:   "gone@example.org", want: herald.OutcomeInvalidRecipient, detail: "5.1.1 No such user"},
		{name: "553 5.1.3 bad address syntax",
			opts: []providertest.SMTPOption{providertest.RejectRecipient("bad@example.org", 553, [3]int{5, 1, 3}, "Bad address")},
			to:   "bad@example.org", want: herald.OutcomeInvalidRecipient, detail: "553"},
		{name: "550 5.7.1 relaying denied is not a dead mailbox",
			opts: []providertest.SMTPOption{providertest.RejectRecipient("far@example.net", 550, [3]int{5, 7, 1}, "Relaying denied")},
			to:   "far@example.net", want: herald.OutcomePermanent, detail: "Relaying denied"},
		{name: "450 mailbox busy",
			opts: []providertest.SMTPOption{providertest.RejectRecipient("busy@example.org", 450, [3]int{4, 2, 1}, "Try again later")},
			to:   "busy@example.org", want: herald.OutcomeRetry, detail: "450"},
		{name: "554 on DATA",
			opts: []providertest.SMTPOption{providertest.FailData(554, "Message rejected as spam")},
			to:   "ada@example.org", want: herald.OutcomePermanent, detail: "554"},
		{name: "451 on DATA",
			opts: []providertest.SMTPOption{providertest.FailData(451, "Local error")},
			to:   "ada@example.org", want: herald.OutcomeRetry, detail: "451"},
		{name: "connection refused", endpoint: refused, to: "ada@example.org", want: herald.OutcomeRetry},
		{name: "bad credentials",
			opts: []providertest.SMTPOption{providertest.WithAuth("herald", "right")},
			to:   "ada@example.org", want: herald.OutcomePermanent, detail: "535"},
		{name: "recipient not an address", to: "not-an-address", want: herald.OutcomeInvalidRecipient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := providertest.NewSMTPServer(t, tt.opts...)
			settings := plainSettings(srv)
			if tt.endpoint != "" {
				settings["endpoint"] = tt.endpoint
			}
			if tt.name == "bad credentials" {
				settings["username"], settings["password"] = "herald", "wrong"
			}
			out := send(t, newProvider(t, settings), message("dlv_cls", tt.to))
			if out.Kind != tt.want {
				t.Fatalf("Send = %v (%s), want %v", out.Kind, out.Detail, tt.want)
			}
			if !strings.Contains(out.Detail, tt.detail) {
				t.Errorf("Detail = %q, want it to contain %q", out.Detail, tt.detail)
			}
			if tt.want != herald.OutcomeSent && len(srv.Messages()) != 0 {
				t.Errorf("the server stored a message for a failed send")
			}
		})
	}
}

func TestRejectsLineBreaks(t *testing.T) {
	t.Parallel()
	srv := providertest.NewSMTPServer(t)
	p := newProvider(t, plainSettings(srv))
	for name, m := range map[string]herald.Message{
		"subject": func() herald.Message {
			m := message("dlv_1", "ada@example.org")
			m.Content.Subject = "hi\r\nBcc: eve@example.org"
			return m
		}(),
		"to":          message("dlv_2", "ada@example.org\r\nBcc: eve@example.org"),
		"delivery id": message("dlv_3\nX-Evil: 1", "ada@example.org"),
	} {
		if out := send(t, p, m); out.Kind != herald.OutcomePermanent {
			t.Errorf("%s with a line break: Send = %v (%s), want permanent", name, out.Kind, out.Detail)
		}
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("the server received %d messages, want 0", n)
	}
}

func TestSTARTTLS(t *testing.T) {
	t.Parallel()
	srv := providertest.NewSMTPServer(t, providertest.WithSTARTTLS())
	settings := map[string]any{"endpoint": srv.Addr(), "from": "noreply@example.com", "ca_pem": srv.CAPEM()}
	if out := send(t, newProvider(t, settings), message("dlv_tls", "ada@example.org")); out.Kind != herald.OutcomeSent {
		t.Fatalf("Send with ca_pem = %v (%s), want sent", out.Kind, out.Detail)
	}

	// Without the CA the certificate is untrusted: a configuration error.
	delete(settings, "ca_pem")
	if out := send(t, newProvider(t, settings), message("dlv_tls2", "ada@example.org")); out.Kind != herald.OutcomePermanent {
		t.Fatalf("Send without ca_pem = %v (%s), want permanent", out.Kind, out.Detail)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("the server received %d messages, want 1", n)
	}
}

func TestSTARTTLSRequired(t *testing.T) {
	t.Parallel()
	srv := providertest.NewSMTPServer(t) // offers no STARTTLS
	settings := map[string]any{"endpoint": srv.Addr(), "from": "noreply@example.com"}
	if out := send(t, newProvider(t, settings), message("dlv_notls", "ada@example.org")); out.Kind == herald.OutcomeSent {
		t.Fatal("the default tls mode sent in clear text to a server without STARTTLS")
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("the server received %d messages, want 0", n)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	srv := providertest.NewSMTPServer(t, providertest.WithSTARTTLS(), providertest.WithAuth("herald", "s3cret"))
	settings := map[string]any{
		"endpoint": srv.Addr(), "from": "noreply@example.com", "ca_pem": srv.CAPEM(),
		"username": "herald", "password": "s3cret",
	}
	if out := send(t, newProvider(t, settings), message("dlv_auth", "ada@example.org")); out.Kind != herald.OutcomeSent {
		t.Fatalf("Send with credentials = %v (%s), want sent", out.Kind, out.Detail)
	}
	delete(settings, "username")
	delete(settings, "password")
	if out := send(t, newProvider(t, settings), message("dlv_noauth", "ada@example.org")); out.Kind == herald.OutcomeSent {
		t.Fatal("Send without credentials was accepted by a server requiring auth")
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("the server received %d messages, want 1", n)
	}
}

func TestDeadline(t *testing.T) {
	t.Parallel()
	// A server that accepts the connection and never greets.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		if c, err := ln.Accept(); err == nil {
			held = c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		if held != nil {
			held.Close()
		}
	})

	p := newProvider(t, map[string]any{"endpoint": ln.Addr().String(), "from": "noreply@example.com", "tls": "none"})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	out := p.Send(ctx, message("dlv_slow", "ada@example.org"))
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Send took %v with a 300ms deadline", took)
	}
	if out.Kind != herald.OutcomeRetry {
		t.Fatalf("Send = %v (%s), want retry", out.Kind, out.Detail)
	}
}

func TestSettingsValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		settings string
		fields   []string
	}{
		{"missing from", `{"endpoint":"127.0.0.1:25"}`, []string{"settings.from"}},
		{"missing everything", `{}`, []string{"settings.endpoint", "settings.from"}},
		{"empty", ``, []string{"settings.endpoint", "settings.from"}},
		{"bad from", `{"endpoint":"127.0.0.1:25","from":"not an address"}`, []string{"settings.from"}},
		{"from without domain", `{"endpoint":"127.0.0.1:25","from":"Herald <noreply@>"}`, []string{"settings.from"}},
		{"bad endpoint", `{"endpoint":"127.0.0.1","from":"a@example.com"}`, []string{"settings.endpoint"}},
		{"bad port", `{"endpoint":"127.0.0.1:0","from":"a@example.com"}`, []string{"settings.endpoint"}},
		{"bad tls", `{"endpoint":"127.0.0.1:25","from":"a@example.com","tls":"ssl"}`, []string{"settings.tls"}},
		{"unknown field", `{"endpoint":"127.0.0.1:25","from":"a@example.com","hostname":"x"}`, []string{"settings.hostname"}},
		{"wrong type", `{"endpoint":"127.0.0.1:25","from":42}`, []string{"settings.from"}},
		{"bad ca_pem", `{"endpoint":"127.0.0.1:25","from":"a@example.com","ca_pem":"nope"}`, []string{"settings.ca_pem"}},
		{"password without username", `{"endpoint":"127.0.0.1:25","from":"a@example.com","password":"x"}`, []string{"settings.username"}},
		{"not an object", `[1]`, []string{"settings"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := smtp.New(json.RawMessage(tt.settings), herald.ProviderEnv{})
			var herr *herald.Error
			if !errors.As(err, &herr) || herr.Code != herald.CodeInvalid {
				t.Fatalf("New(%s) = %v, want a CodeInvalid *herald.Error", tt.settings, err)
			}
			var got []string
			for _, f := range herr.Fields {
				got = append(got, f.Field)
			}
			if strings.Join(got, ",") != strings.Join(tt.fields, ",") {
				t.Fatalf("fields = %q, want %q", got, tt.fields)
			}
		})
	}

	for _, ok := range []string{
		`{"endpoint":"smtp.example.com:587","from":"Herald <noreply@example.com>"}`,
		`{"endpoint":"[::1]:465","from":"noreply@example.com","tls":"implicit","username":"u","password":"p"}`,
		`{"endpoint":"localhost:25","from":"noreply@example.com","tls":"none"}`,
	} {
		if _, err := smtp.New(json.RawMessage(ok), herald.ProviderEnv{}); err != nil {
			t.Errorf("New(%s) = %v, want success", ok, err)
		}
	}
}

func TestImplicitTLS(t *testing.T) {
	t.Parallel()
	srv := providertest.NewSMTPServer(t, providertest.WithImplicitTLS(), providertest.WithAuth("herald", "s3cret"))
	settings := map[string]any{
		"endpoint": srv.Addr(), "from": "noreply@example.com", "tls": "implicit", "ca_pem": srv.CAPEM(),
		"username": "herald", "password": "s3cret",
	}
	if out := send(t, newProvider(t, settings), message("dlv_465", "ada@example.org")); out.Kind != herald.OutcomeSent {
		t.Fatalf("Send = %v (%s), want sent", out.Kind, out.Detail)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("the server received %d messages, want 1", n)
	}
}

// TestListUnsubscribeHeaders: an unsubscribe URL becomes RFC 2369
// List-Unsubscribe and, for https, RFC 8058 List-Unsubscribe-Post; without
// one (a critical category) neither header is sent.
func TestListUnsubscribeHeaders(t *testing.T) {
	t.Parallel()
	srv := providertest.NewSMTPServer(t)
	p := newProvider(t, plainSettings(srv))
	long := "https://herald.example.com/u/" + strings.Repeat("AbC-_9", 30)
	for i, c := range []struct{ url, list, post string }{
		{long, "<" + long + ">", "List-Unsubscribe=One-Click"},
		{"http://127.0.0.1:8080/u/tok", "<http://127.0.0.1:8080/u/tok>", ""},
		{"", "", ""},
	} {
		m := message("dlv_"+string(rune('a'+i)), "ada@example.org")
		m.UnsubscribeURL = c.url
		if out := send(t, p, m); out.Kind != herald.OutcomeSent {
			t.Fatalf("Send = %v (%s)", out.Kind, out.Detail)
		}
		got := srv.Messages()[i]
		if list, post := got.Header.Get("List-Unsubscribe"), got.Header.Get("List-Unsubscribe-Post"); list != c.list || post != c.post {
			t.Errorf("unsubscribe URL %q: List-Unsubscribe %q, List-Unsubscribe-Post %q; want %q, %q", c.url, list, post, c.list, c.post)
		}
	}
	m := message("dlv_bad", "ada@example.org")
	m.UnsubscribeURL = "https://herald.example.com/u/x\r\nBcc: eve@example.org"
	if out := send(t, p, m); out.Kind != herald.OutcomePermanent {
		t.Errorf("an unsubscribe URL with a line break: %v, want permanent", out.Kind)
	}
}
