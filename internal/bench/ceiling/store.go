package ceiling

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the driver Herald's SQLite store uses
)

// row is one inserted row: about the size of a delivery in the log.
func row(i int64, now int64) []any {
	id := strconv.FormatInt(i, 10)
	return []any{"0190c9f2-6a4e-7c1b-9d2a-" + id, "app-ceiling", "user-" + id, "push", "accepted", now}
}

const createRows = `CREATE TABLE rows (id TEXT PRIMARY KEY, app_id TEXT NOT NULL, user_id TEXT NOT NULL,
	channel TEXT NOT NULL, status TEXT NOT NULL, created_at BIGINT NOT NULL)`

// SQLite measures rows per second committed into a fresh SQLite file in
// dir, in transactions of BatchRows, in WAL mode with synchronous=FULL:
// the settings of Herald's notification log, so every commit is fsynced.
func SQLite(ctx context.Context, dir string, d time.Duration) (float64, error) {
	wrap := func(err error) error { return fmt.Errorf("ceiling: sqlite: %w", err) }
	path := filepath.Join(dir, "ceiling.db")
	db, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(5000)&_txlock=immediate")
	if err != nil {
		return 0, wrap(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, createRows+" WITHOUT ROWID"); err != nil {
		return 0, wrap(err)
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&mode); err != nil || mode != "2" {
		return 0, wrap(fmt.Errorf("synchronous is %q (%v), want 2 (FULL)", mode, err))
	}
	ins, err := db.PrepareContext(ctx, `INSERT INTO rows VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return 0, wrap(err)
	}
	defer ins.Close()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var n int64
	for ctx.Err() == nil {
		tx, err := db.BeginTx(context.WithoutCancel(ctx), nil)
		if err != nil {
			return 0, wrap(err)
		}
		stmt := tx.Stmt(ins)
		now := time.Now().UnixNano()
		for i := range int64(BatchRows) {
			if _, err := stmt.Exec(row(n+i, now)...); err != nil {
				_ = tx.Rollback()
				return 0, wrap(err)
			}
		}
		if err := tx.Commit(); err != nil {
			return 0, wrap(err)
		}
		n += BatchRows
	}
	rate, err := perSecond(n, start)
	if err != nil {
		return 0, wrap(err)
	}
	return rate, nil
}

// Postgres measures rows per second committed by COPY into a table of a
// scratch schema (dropped afterwards), in transactions of BatchRows, with
// the server's own durability settings.
func Postgres(ctx context.Context, url string, d time.Duration) (float64, error) {
	wrap := func(err error) error { return fmt.Errorf("ceiling: postgres: %w", err) }
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, wrap(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "herald_ceiling_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return 0, wrap(err)
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), "DROP SCHEMA "+schema+" CASCADE") }()
	if _, err := conn.Exec(ctx, "SET search_path TO "+schema); err != nil {
		return 0, wrap(err)
	}
	if _, err := conn.Exec(ctx, createRows); err != nil {
		return 0, wrap(err)
	}
	cols := []string{"id", "app_id", "user_id", "channel", "status", "created_at"}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var n int64
	rows := make([][]any, BatchRows)
	for ctx.Err() == nil {
		now := time.Now().UnixNano()
		for i := range rows {
			rows[i] = row(n+int64(i), now)
		}
		tctx := context.WithoutCancel(ctx)
		tx, err := conn.Begin(tctx)
		if err != nil {
			return 0, wrap(err)
		}
		if _, err := tx.CopyFrom(tctx, pgx.Identifier{"rows"}, cols, pgx.CopyFromRows(rows)); err != nil {
			_ = tx.Rollback(tctx)
			return 0, wrap(err)
		}
		if err := tx.Commit(tctx); err != nil {
			return 0, wrap(err)
		}
		n += BatchRows
	}
	rate, err := perSecond(n, start)
	if err != nil {
		return 0, wrap(err)
	}
	return rate, nil
}
