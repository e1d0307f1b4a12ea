// Package postgres implements herald.Store on PostgreSQL, for the scaled
// out mode. It uses a pgx connection pool; Apply sends a whole batch as one
// pipelined pgx.Batch in one transaction, with array (unnest) inserts, so
// that hundreds of rows cost one round trip and one commit.
//
// The connection URL may set search_path as a runtime parameter
// (…?search_path=tenant_x): the pool and the migrations both use it, so
// every table, goose's version table included, lives in that schema.
//
// Times are timestamptz and returned in UTC. They round-trip exactly at
// microsecond precision; finer parts are truncated before writing.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"sync"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/internal/storeutil"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jackc/puddle/v2"
	"github.com/pressly/goose/v3"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the Postgres herald.Store. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool

	closeOnce sync.Once
}

var _ herald.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or key=value
// DSN, as pgx parses it) and migrates its schema.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The URL may hold a password: do not repeat it.
		return nil, fmt.Errorf("postgres: open: %w", herald.Invalid("url", "is not a Postgres connection URL"))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, wrap(err, "open %s", cfg.ConnConfig.Host)
	}
	s := &Store{pool: pool}
	if err := pool.Ping(ctx); err != nil {
		s.Close()
		return nil, wrap(err, "open %s", cfg.ConnConfig.Host)
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Migrate brings the schema up to date. Open calls it; the CLI's migrate
// command may call it again. Concurrent migrations of one schema (several
// servers starting at once) take turns on an advisory lock.
func (s *Store) Migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return wrap(err, "migrate")
	}
	// Through the pool itself, so that goose sees the same search_path.
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithSessionLocker(schemaLocker{}), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return wrap(err, "migrate")
	}
	if _, err := p.Up(ctx); err != nil {
		return wrap(err, "migrate")
	}
	return nil
}

// schemaLocker serialises migrations of one schema with a session
// advisory lock keyed by the schema's name. goose's own Postgres locker
// uses one key for the whole database and polls every five seconds, which
// would make migrations of unrelated schemas (parallel tests) wait on each
// other; pg_advisory_lock simply blocks until the holder is done.
type schemaLocker struct{}

const lockKey = `hashtextextended('herald.migrate.' || coalesce(current_schema(), ''), 0)`

func (schemaLocker) SessionLock(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(`+lockKey+`)`)
	return err
}

func (schemaLocker) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock(`+lockKey+`)`)
	return err
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	return wrap(s.pool.Ping(ctx), "ping")
}

// Close closes the pool. Safe to call twice.
func (s *Store) Close() error {
	s.closeOnce.Do(s.pool.Close)
	return nil
}

// wrap names the operation and translates driver errors into herald
// errors, keeping the original in the chain for errors.Is.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	op := fmt.Sprintf(format, args...)
	var he *herald.Error
	if errors.As(err, &he) {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	if errors.Is(err, pgx.ErrNoRows) || errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("postgres: %s: %w (%w)", op, herald.ErrNotFound, err)
	}
	code := herald.CodeInternal
	var pe *pgconn.PgError
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &pe):
		switch {
		case pe.Code == "23505": // unique_violation
			code = herald.CodeConflict
		case pe.Code[:2] == "08", // connection exception
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", // shutdown, cannot connect now
			pe.Code == "53300", pe.Code == "53100", // too many connections, disk full
			pe.Code == "25006", // read-only transaction (a standby)
			transient(err):     // deadlock, serialization failure: nothing was written, try again
			code = herald.CodeUnavailable
		}
	case errors.As(err, &ce), errors.As(err, &ne), pgconn.Timeout(err),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, net.ErrClosed),
		errors.Is(err, pgconn.ErrConnClosed), // the connection died under the query
		errors.Is(err, puddle.ErrClosedPool):
		code = herald.CodeUnavailable
	}
	return fmt.Errorf("postgres: %s: %w", op, &herald.Error{Code: code, Message: storeutil.Message(code), Err: err})
}

// transient reports whether err is a deadlock (40P01) or serialization
// failure (40001): the transaction was rolled back and may simply be run
// again.
func transient(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// isForeignKey reports whether err is a foreign key violation, which the
// contact methods turn into "the user does not exist".
func isForeignKey(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

// affected turns "no row changed" into ErrNotFound, for updates and
// deletes whose target must exist.
func affected(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return herald.ErrNotFound
	}
	return nil
}
