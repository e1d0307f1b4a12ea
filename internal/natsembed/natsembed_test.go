package natsembed_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/natsembed"
	"github.com/nats-io/nats.go/jetstream"
)

// recorder is a slog.Handler keeping every record, to check where the
// server's log lines go.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.records)
}

func TestStartConnectStop(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	srv, err := natsembed.Start(t.Context(), natsembed.Options{StoreDir: t.TempDir(), Logger: slog.New(rec), SyncInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	if rec.count() == 0 {
		t.Error("the server logged nothing to the injected logger")
	}

	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	info, err := js.AccountInfo(ctx)
	if err != nil {
		t.Fatalf("JetStream not available in-process: %v", err)
	}
	if info.Tier.Store != 0 {
		t.Errorf("fresh store uses %d bytes", info.Tier.Store)
	}
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.x", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(ctx, 1)
	if err != nil || string(m.Data) != "hello" {
		t.Fatalf("GetMsg = %v, %v; want hello", m, err)
	}

	if err := srv.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := srv.Stop(t.Context()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := srv.Connect(); herald.ErrorCode(err) != herald.CodeUnavailable {
		t.Errorf("Connect after Stop = %v, want unavailable", err)
	}
}

func TestRestartKeepsStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i := range 2 {
		srv, err := natsembed.Start(t.Context(), natsembed.Options{StoreDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		nc, err := srv.Connect()
		if err != nil {
			t.Fatal(err)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		s, err := js.CreateOrUpdateStream(t.Context(), jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.FileStorage})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().State.Msgs; got != uint64(i) {
			t.Errorf("start %d: stream holds %d messages, want %d", i, got, i)
		}
		if _, err := js.Publish(t.Context(), "t.x", []byte("m")); err != nil {
			t.Fatal(err)
		}
		nc.Close()
		if err := srv.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	if _, err := natsembed.Start(t.Context(), natsembed.Options{}); herald.ErrorCode(err) != herald.CodeInvalid {
		t.Errorf("Start without a store dir = %v, want invalid", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := natsembed.Start(ctx, natsembed.Options{StoreDir: t.TempDir()}); herald.ErrorCode(err) != herald.CodeUnavailable {
		t.Errorf("Start with a canceled context = %v, want unavailable", err)
	}
}
