package ceiling

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

func sane(t *testing.T, name string, v float64) {
	t.Helper()
	if !(v > 0) || math.IsInf(v, 0) {
		t.Errorf("%s = %v, want a positive finite rate", name, v)
	}
}

// TestMeasure: a short run of every local measurement yields positive
// figures and records how it was taken.
func TestMeasure(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	f, err := Measure(ctx, Options{Duration: 300 * time.Millisecond, Concurrency: 4, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	sane(t, "bare HTTP requests/s", f.HTTPRequestsPerSecond)
	sane(t, "bare publish+consume/s", f.PublishConsumePerSecond)
	sane(t, "bare SQLite rows/s", f.SQLiteRowsPerSecond)
	if f.PostgresRowsPerSecond != 0 {
		t.Errorf("Postgres measured without a database URL: %v", f.PostgresRowsPerSecond)
	}
	if f.HTTPConcurrency != 4 || f.BatchRows != BatchRows || f.SecondsEach != 0.3 {
		t.Errorf("figures record concurrency %d, batch %d, %vs each; want 4, %d, 0.3", f.HTTPConcurrency, f.BatchRows, f.SecondsEach, BatchRows)
	}
}

// TestPostgres: COPY batches into a scratch schema, which is dropped.
func TestPostgres(t *testing.T) {
	url := heraldtest.ServiceURL(t, heraldtest.EnvPostgres)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	rate, err := Postgres(ctx, url, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	sane(t, "bare Postgres rows/s", rate)
}
