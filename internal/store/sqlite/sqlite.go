// Package sqlite implements herald.Store on one SQLite file, for the
// embedded mode. It uses the pure Go driver modernc.org/sqlite in WAL mode
// with synchronous=FULL, so a committed Apply survives power loss.
//
// All writes go through one connection that begins its transactions with
// BEGIN IMMEDIATE: SQLite allows one writer anyway, and taking the write
// lock up front avoids the deadlock-prone upgrade from a read transaction.
// Reads use a pool of their own and never wait for writers (WAL). Other
// processes may open the same file (the CLI while the server runs); they
// wait for each other through busy_timeout.
//
// Times are stored as INTEGER unix microseconds and returned in UTC: they
// round-trip exactly at microsecond precision, finer parts are truncated.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/internal/storeutil"
	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrations embed.FS

// busyTimeout is how long a statement waits for another connection or
// process holding the write lock before failing with CodeUnavailable.
const busyTimeout = 10 * time.Second

// Store is the SQLite herald.Store. It is safe for concurrent use.
type Store struct {
	w    *sql.DB    // the one writer connection
	r    *sql.DB    // readers
	read *stmtCache // the readers' fixed queries, prepared once

	// Apply's statements, prepared on w, and the scratch space of its
	// transaction.
	scratch writer
	seq     atomic.Int64 // the last event seq given out

	// The writer never checkpoints the WAL itself (wal_autocheckpoint=0):
	// copying pages back into the database file and syncing it would land
	// inside some unlucky commit. A background loop does it instead.
	ckpt    *sql.DB
	walPath string
	// walRestart is walRestartBytes; tests lower it.
	walRestart atomic.Int64
	stopCkpt   chan struct{}
	ckptDone   chan struct{}

	closeOnce sync.Once
	closeErr  error
}

var _ herald.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path and migrates
// it to the current schema. path is a file name, not a URI.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, herald.Invalid("path", "must be a file name without ? or #"))
	}
	common := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)", busyTimeout.Milliseconds())
	// The writer keeps the log's hot index pages in a 16 MiB page cache between
	// commits; 64 MiB bought no measurable throughput under herald bench and
	// about 100 MiB more peak RSS (docs/BENCHMARKS.md).
	w, err := sql.Open("sqlite", path+"?"+common+"&_pragma=journal_mode(WAL)&_pragma=cache_size(-16384)&_pragma=wal_autocheckpoint(0)&_pragma=temp_store(MEMORY)&_txlock=immediate")
	if err != nil {
		return nil, wrap(err, "open %q", path)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	// Switch the file to WAL before any reader opens it.
	if err := pingBusy(ctx, w); err != nil {
		_ = w.Close()
		return nil, wrap(err, "open %q", path)
	}
	r, err := sql.Open("sqlite", path+"?"+common+"&_pragma=query_only(1)")
	if err != nil {
		_ = w.Close()
		return nil, wrap(err, "open %q", path)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	s := &Store{w: w, r: r, read: newStmtCache(r)}
	if err := pingBusy(ctx, r); err != nil {
		_ = s.Close()
		return nil, wrap(err, "open %q", path)
	}
	if err := s.Migrate(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	var last sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT max(seq) FROM events`).Scan(&last); err != nil {
		_ = s.Close()
		return nil, wrap(err, "read the last event seq")
	}
	s.seq.Store(last.Int64)
	if s.scratch.prepared, err = prepareApply(ctx, w); err != nil {
		_ = s.Close()
		return nil, wrap(err, "prepare statements")
	}
	if s.ckpt, err = sql.Open("sqlite", path+"?"+common); err != nil {
		_ = s.Close()
		return nil, wrap(err, "open %q", path)
	}
	s.ckpt.SetMaxOpenConns(1)
	s.walPath = path + "-wal"
	s.walRestart.Store(walRestartBytes)
	s.stopCkpt, s.ckptDone = make(chan struct{}), make(chan struct{})
	go s.checkpointLoop()
	return s, nil
}

// Migrate brings the schema up to date. Open calls it; the CLI's migrate
// command may call it again. Another process may be migrating the same
// file at the same moment: SQLite has no session lock goose could use, so
// a failed run is retried, and the retry finds the other's work done.
func (s *Store) Migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return wrap(err, "migrate")
	}
	for attempt := 0; ; attempt++ {
		// A fresh provider per attempt: it caches what it learned about the
		// version table.
		var p *goose.Provider
		p, err = goose.NewProvider(goose.DialectSQLite3, s.w, fsys, goose.WithDisableGlobalRegistry(true))
		if err != nil {
			return wrap(err, "migrate")
		}
		if _, err = p.Up(ctx); err == nil {
			return nil
		}
		if attempt == 4 || ctx.Err() != nil {
			return wrap(err, "migrate")
		}
	}
}

// pingBusy opens a first connection of db, retrying while the file is
// busy for up to busyTimeout. It is needed because SQLite answers
// SQLITE_BUSY at once, without waiting on busy_timeout, when two processes
// open a fresh file together and both set its journal mode.
func pingBusy(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeout)
	for {
		err := db.PingContext(ctx)
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// checkpointInterval is how often committed WAL frames are copied back
// into the database file.
const checkpointInterval = time.Second

// walRestartBytes is the WAL size above which a checkpoint also makes the
// writer start the WAL over from its beginning. A PASSIVE checkpoint never
// does: the WAL restarts only when a write transaction begins with every
// frame copied back, and under a steady stream of commits some frames are
// always newer than the last pass, so the file grows for as long as the load
// lasts (about 45 MB/s at 600 commits/s, measured), and each commit's sync
// then also has to extend the file.
const walRestartBytes = 64 << 20

// checkpointLoop checkpoints the WAL in the background. PASSIVE never
// blocks the writer or readers; frames still in use wait for the next pass.
// Once the WAL is larger than walRestartBytes, a RESTART follows on the
// writer's own connection, so that it takes its turn between two commits
// (from another connection it polls for the write lock, and a writer
// committing back to back starves it). It holds off commits while it copies
// what the PASSIVE pass left and waits for readers still on the old frames
// (single queries); the next commit then writes from the start of the file.
func (s *Store) checkpointLoop() {
	defer close(s.ckptDone)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopCkpt:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, _ = s.ckpt.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)") // best effort: the next pass retries
			if st, err := os.Stat(s.walPath); err == nil && st.Size() > s.walRestart.Load() {
				s.restartWAL(ctx)
			}
			cancel()
		}
	}
}

// restartWALWait bounds how long a RESTART waits for readers, which holds
// off every commit meanwhile; a reader longer than that makes the pass give
// up, and the next one tries again.
const restartWALWait = 100 * time.Millisecond

// restartWAL runs a RESTART checkpoint on the writer's connection with
// restartWALWait as its busy timeout.
func (s *Store) restartWAL(ctx context.Context) {
	c, err := s.w.Conn(ctx)
	if err != nil {
		return
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", restartWALWait.Milliseconds())); err != nil {
		return
	}
	_, _ = c.ExecContext(ctx, "PRAGMA wal_checkpoint(RESTART)") // best effort: the next pass retries
	if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", busyTimeout.Milliseconds())); err != nil {
		// The connection must not keep the short timeout: drop it, and
		// the pool opens a fresh one with the DSN's pragmas.
		_ = c.Raw(func(any) error { return driver.ErrBadConn })
	}
}

// Ping checks that both the writer and the readers answer.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return wrap(err, "ping")
	}
	if err := s.r.PingContext(ctx); err != nil {
		return wrap(err, "ping")
	}
	return nil
}

// Close closes both pools. Safe to call twice.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.stopCkpt != nil {
			close(s.stopCkpt)
			<-s.ckptDone
			// A last full checkpoint leaves a small WAL behind.
			_, _ = s.ckpt.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
			_ = s.ckpt.Close()
		}
		if s.scratch.prepared != nil {
			s.scratch.prepared.close()
		}
		s.read.close()
		s.closeErr = errors.Join(s.r.Close(), s.w.Close())
	})
	return s.closeErr
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
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: %s: %w (%w)", op, herald.ErrNotFound, err)
	}
	code := herald.CodeInternal
	var se *sqlite.Error
	switch {
	case errors.As(err, &se):
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CONSTRAINT:
			if c := se.Code(); c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
				code = herald.CodeConflict
			}
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN,
			sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY:
			code = herald.CodeUnavailable
		}
	case errors.Is(err, sql.ErrConnDone), errors.Is(err, context.DeadlineExceeded),
		strings.Contains(err.Error(), "sql: database is closed"):
		code = herald.CodeUnavailable
	}
	return fmt.Errorf("sqlite: %s: %w", op, &herald.Error{Code: code, Message: storeutil.Message(code), Err: err})
}

// isForeignKey reports whether err is a foreign key violation, which the
// contact methods turn into "the user does not exist".
func isForeignKey(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// us is the stored form of a time.
func us(t time.Time) int64 { return t.UnixMicro() }

// fromUS is the returned form of a stored time.
func fromUS(v int64) time.Time { return time.UnixMicro(v).UTC() }

// inTx runs f in a write transaction (BEGIN IMMEDIATE), committing when f
// returns nil.
func (s *Store) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
