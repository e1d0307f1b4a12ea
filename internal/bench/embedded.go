package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/heraldhq/herald/internal/app"
	"github.com/heraldhq/herald/internal/bench/sink"
)

// Embedded is a Herald started in this process on cfg (the embedded
// default unless cfg says otherwise), with a bench sink of its own as
// every provider of one app.
type Embedded struct {
	App  *app.App
	Sink *sink.Sink
	key  string
}

// StartEmbedded starts a sink with the given latency, jitter and error
// rate, then Herald on cfg, and creates the app "bench".
func StartEmbedded(ctx context.Context, cfg app.Config, so sink.Options, logger *slog.Logger) (*Embedded, error) {
	so.Addr, so.SMTPAddr, so.Logger = "127.0.0.1:0", "127.0.0.1:0", logger
	s, err := sink.New(so)
	if err != nil {
		return nil, err
	}
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	e := &Embedded{Sink: s}
	e.App = app.New(cfg, logger)
	if err := e.App.Start(ctx); err != nil {
		_ = s.Stop(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("bench: start herald: %w", err)
	}
	if _, e.key, err = app.CreateApp(ctx, e.App.Store(), "bench", time.Now()); err != nil {
		_ = e.Stop(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("bench: create app: %w", err)
	}
	return e, nil
}

// Target is the embedded Herald as a bench target, to be configured
// by the run; its process is this one.
func (e *Embedded) Target() Target {
	return Target{URL: "http://" + e.App.Addr(), APIKey: e.key, Configure: true, Process: ProcFS(0),
		Sink: NewSinkClient(e.Sink.URL(), e.Sink.SMTPAddr(), e.Sink.CAPEM())}
}

// Stop stops Herald, then the sink.
func (e *Embedded) Stop(ctx context.Context) error {
	return errors.Join(e.App.Stop(ctx), e.Sink.Stop(ctx))
}
