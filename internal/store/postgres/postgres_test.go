package postgres_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/internal/store/postgres"
	"github.com/heraldhq/herald/internal/store/storetest"
	"github.com/jackc/pgx/v5"
)

// schemaURL creates a schema of its own for the test, dropped at cleanup,
// and returns the database URL with search_path set to it.
func schemaURL(t *testing.T) string {
	t.Helper()
	base := heraldtest.ServiceURL(t, heraldtest.EnvPostgres)
	schema := "herald_test_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	conn, err := pgx.Connect(t.Context(), base)
	if err != nil {
		t.Fatalf("connect to %s: %v", heraldtest.EnvPostgres, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func open(t *testing.T, u string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) herald.Store { return open(t, schemaURL(t)) })
}

// TestSearchPath checks that everything, goose's version table included,
// lands in the URL's schema, and that migrating again is a no-op.
func TestSearchPath(t *testing.T) {
	u := schemaURL(t)
	s := open(t, u)
	schema, _ := url.Parse(u)
	conn, err := pgx.Connect(t.Context(), heraldtest.ServiceURL(t, heraldtest.EnvPostgres))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename IN ('goose_db_version', 'deliveries')`,
		schema.Query().Get("search_path")).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("%d of goose_db_version and deliveries are in the test schema, want 2", n)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Errorf("migrating an up-to-date schema: %v", err)
	}
	// A second store on the same schema (another server) migrates too.
	open(t, u)
}

func TestUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err := postgres.Open(ctx, "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if got := herald.ErrorCode(err); got != herald.CodeUnavailable {
		t.Errorf("Open(unreachable) code = %q, want unavailable (err: %v)", got, err)
	}
}
