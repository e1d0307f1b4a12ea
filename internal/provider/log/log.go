// Package log is the provider for local development: instead of sending,
// it logs what would have been sent.
package log

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sort"

	"github.com/heraldhq/herald"
)

// Kind is the provider kind this package implements.
const Kind = "log"

// maxBody is how many characters of a body the log line keeps: enough to
// recognise the message without flooding the log.
const maxBody = 200

// Provider logs messages instead of sending them. It is safe for
// concurrent use.
type Provider struct {
	logger *slog.Logger
}

var _ herald.Provider = (*Provider)(nil)

// New returns a Provider logging to env.Logger. The log provider takes no
// settings: anything but empty or {} is a CodeInvalid *herald.Error, so a
// misplaced setting is noticed rather than ignored.
func New(settings json.RawMessage, env herald.ProviderEnv) (*Provider, error) {
	if t := bytes.TrimSpace(settings); len(t) > 0 && !bytes.Equal(t, []byte("null")) {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(t, &fields); err != nil {
			return nil, herald.Invalid("settings", "must be empty or {}")
		}
		if len(fields) > 0 {
			names := make([]string, 0, len(fields))
			for name := range fields {
				names = append(names, name)
			}
			sort.Strings(names)
			var v herald.Validation
			for _, name := range names {
				v.Add("settings."+name, "the log provider takes no settings")
			}
			return nil, v.Err()
		}
	}
	logger := env.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return &Provider{logger: logger.With("provider", Kind)}, nil
}

// Kind returns "log".
func (p *Provider) Kind() string { return Kind }

// Send logs m at Info as "would send" and reports it sent, with
// "log-"+DeliveryID as the provider message id. A canceled context is
// honoured like any provider would, so development runs behave as
// production ones.
func (p *Provider) Send(ctx context.Context, m herald.Message) herald.Outcome {
	if err := ctx.Err(); err != nil {
		return herald.Outcome{Kind: herald.OutcomeRetry, Detail: "log: " + err.Error()}
	}
	attrs := []slog.Attr{
		slog.String("delivery_id", m.DeliveryID),
		slog.String("channel", string(m.Channel)),
		slog.String("to", m.To),
	}
	if m.Content.Subject != "" {
		attrs = append(attrs, slog.String("subject", m.Content.Subject))
	}
	if m.Content.Title != "" {
		attrs = append(attrs, slog.String("title", m.Content.Title))
	}
	attrs = append(attrs, slog.String("body", truncate(m.Content.Body, maxBody)))
	p.logger.LogAttrs(ctx, slog.LevelInfo, "would send", attrs...)
	return herald.Outcome{Kind: herald.OutcomeSent, ProviderMessageID: "log-" + m.DeliveryID}
}

// truncate cuts s to at most n runes, marking the cut.
func truncate(s string, n int) string {
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos] + "…"
		}
		i++
	}
	return s
}
