package log_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/heraldhq/herald"
	logprovider "github.com/heraldhq/herald/internal/provider/log"
	"github.com/heraldhq/herald/internal/provider/providertest"
)

// lockedBuffer collects JSON log lines from concurrent sends.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(b.buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

func newProvider(t *testing.T, out *lockedBuffer) *logprovider.Provider {
	t.Helper()
	p, err := logprovider.New(nil, herald.ProviderEnv{Logger: slog.New(slog.NewJSONHandler(out, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConformance(t *testing.T) {
	var out lockedBuffer
	providertest.Run(t, providertest.Suite{
		Kind: "log",
		New:  func(t *testing.T) herald.Provider { return newProvider(t, &out) },
		Message: func() herald.Message {
			return herald.Message{DeliveryID: "dlv_1", Channel: herald.ChannelSMS, To: "+15555550100",
				Content: herald.Content{Body: "Your code is 123456"}}
		},
		Received: func(t *testing.T) int { return len(out.records(t)) },
	})
}

func TestSendLogsOneLine(t *testing.T) {
	t.Parallel()
	var out lockedBuffer
	p := newProvider(t, &out)
	long := strings.Repeat("é", 500)
	got := p.Send(t.Context(), herald.Message{
		DeliveryID: "dlv_42", Channel: herald.ChannelPush, To: "device-token",
		Content: herald.Content{Title: "Hello", Body: long},
	})
	if got.Kind != herald.OutcomeSent || got.ProviderMessageID != "log-dlv_42" {
		t.Fatalf("Send = %+v, want sent with log-dlv_42", got)
	}
	recs := out.records(t)
	if len(recs) != 1 {
		t.Fatalf("%d log lines, want 1", len(recs))
	}
	r := recs[0]
	for k, want := range map[string]any{
		"level": "INFO", "msg": "would send", "provider": "log",
		"channel": "push", "to": "device-token", "title": "Hello", "delivery_id": "dlv_42",
	} {
		if r[k] != want {
			t.Errorf("%s = %v, want %v", k, r[k], want)
		}
	}
	body, _ := r["body"].(string)
	if n := utf8.RuneCountInString(body); n > 201 || !strings.HasPrefix(long, strings.TrimSuffix(body, "…")) {
		t.Errorf("body is %d runes (%q…), want the body cut to 200", n, body[:20])
	}
}

func TestSettings(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"", "  ", "{}", " { } ", "null"} {
		if _, err := logprovider.New(json.RawMessage(ok), herald.ProviderEnv{}); err != nil {
			t.Errorf("New(%q) = %v, want success", ok, err)
		}
	}
	for raw, field := range map[string]string{
		`{"endpoint":"x"}`: "settings.endpoint",
		`[]`:               "settings",
		`"x"`:              "settings",
	} {
		_, err := logprovider.New(json.RawMessage(raw), herald.ProviderEnv{})
		var herr *herald.Error
		if !errors.As(err, &herr) || herr.Code != herald.CodeInvalid || len(herr.Fields) != 1 || herr.Fields[0].Field != field {
			t.Errorf("New(%s) = %v, want CodeInvalid naming %s", raw, err, field)
		}
	}
}
