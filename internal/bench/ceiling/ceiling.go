// Package ceiling measures what this machine can do at all, without
// Herald: a bare Go HTTP server answering a tiny JSON body, bare JetStream
// publish and consume on an embedded nats-server, and bare batch inserts
// into SQLite (synchronous=FULL) and, when given, PostgreSQL. Herald's own
// figures divided by these say how much of the machine it turns into
// notifications, which means something on any machine, where the absolute
// figures do not.
package ceiling

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"
)

// Options shape the measurements.
type Options struct {
	// Duration is how long each measurement runs; 5s when zero.
	Duration time.Duration
	// Concurrency is the requests the HTTP client keeps in flight; 64 when zero.
	Concurrency int
	// Client drives the bare HTTP server: the load generator's own client,
	// so that the ceiling counts the same client costs; nil for one sized
	// to Concurrency.
	Client *http.Client
	// DatabaseURL, when set, adds a PostgreSQL batch insert measurement.
	DatabaseURL string
	// Dir holds the scratch SQLite file and JetStream store; a temporary
	// directory, removed afterwards, when empty.
	Dir string
	// Logger receives the embedded nats-server's warnings; nil discards.
	Logger *slog.Logger
}

// Figures are the ceilings measured.
type Figures struct {
	SecondsEach float64 `json:"seconds_each"`
	// HTTPRequestsPerSecond: POSTs of a small JSON body answered with a
	// tiny JSON body by a bare net/http server, HTTPConcurrency in flight.
	HTTPRequestsPerSecond float64 `json:"bare_http_requests_per_second"`
	HTTPConcurrency       int     `json:"bare_http_concurrency"`
	// PublishConsumePerSecond: messages published asynchronously to a
	// work-queue file stream of embedded JetStream and acknowledged by one
	// consumer, counted when acknowledged.
	PublishConsumePerSecond float64 `json:"bare_publish_consume_per_second"`
	// SQLiteRowsPerSecond: rows committed in transactions of BatchRows
	// (WAL, synchronous=FULL).
	SQLiteRowsPerSecond float64 `json:"bare_sqlite_rows_per_second"`
	// PostgresRowsPerSecond: rows committed by COPY in transactions of
	// BatchRows; absent without a database URL.
	PostgresRowsPerSecond float64 `json:"bare_postgres_rows_per_second,omitempty"`
	BatchRows             int     `json:"batch_rows"`
}

// BatchRows is the size of each store transaction, as the architecture's
// figures for the group commit were taken.
const BatchRows = 500

// Measure runs every measurement one after the other, so that none
// shares the CPU with another.
func Measure(ctx context.Context, o Options) (*Figures, error) {
	if o.Duration <= 0 {
		o.Duration = 5 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "herald-ceiling-")
		if err != nil {
			return nil, fmt.Errorf("ceiling: %w", err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	f := &Figures{SecondsEach: o.Duration.Seconds(), HTTPConcurrency: o.Concurrency, BatchRows: BatchRows}
	var err error
	if f.HTTPRequestsPerSecond, err = HTTP(ctx, o.Duration, o.Concurrency, o.Client); err != nil {
		return nil, err
	}
	if f.PublishConsumePerSecond, err = PublishConsume(ctx, dir, o.Duration, o.Logger); err != nil {
		return nil, err
	}
	if f.SQLiteRowsPerSecond, err = SQLite(ctx, dir, o.Duration); err != nil {
		return nil, err
	}
	if o.DatabaseURL != "" {
		if f.PostgresRowsPerSecond, err = Postgres(ctx, o.DatabaseURL, o.Duration); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// perSecond is n over the time since start, rounded to a tenth.
func perSecond(n int64, start time.Time) (float64, error) {
	secs := time.Since(start).Seconds()
	if n <= 0 || secs <= 0 {
		return 0, errors.New("nothing completed")
	}
	return float64(int64(float64(n)/secs*10)) / 10, nil
}
