package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCache runs the readers' fixed queries through statements prepared
// once, instead of having the driver parse and plan the SQL text on every
// call: under load that parsing was about 9 % of the process's CPU.
// database/sql prepares a statement again on each reader connection the
// first time it runs there.
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache { return &stmtCache{db: db, m: map[string]*sql.Stmt{}} }

// stmt returns the statement of q, preparing it on first use. A failed
// prepare is not kept, so the next call tries again.
func (c *stmtCache) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[q]; ok {
		return st, nil
	}
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	c.m[q] = st
	return st, nil
}

// QueryRowContext is sql.DB's, through the cached statement of q. When q
// cannot be prepared, the query runs unprepared, so its Row carries the
// error as before. Like every query here it runs under uncancelable(ctx).
func (c *stmtCache) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	ctx = uncancelable(ctx)
	st, err := c.stmt(ctx, q)
	if err != nil {
		return c.db.QueryRowContext(ctx, q, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// QueryContext is sql.DB's, through the cached statement of q.
func (c *stmtCache) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx = uncancelable(ctx)
	st, err := c.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// uncancelable returns ctx without its cancellation, or, when ctx has
// ended already, a context that has too. Under a context that can end,
// the driver starts a goroutine per statement to interrupt it and
// database/sql one per result set to close it; for a lookup by key that
// takes microseconds, that costs more than the lookup, and a wait for a
// lock is bounded by busy_timeout anyway.
func uncancelable(ctx context.Context) context.Context {
	if ctx.Done() == nil || ctx.Err() != nil {
		return ctx
	}
	return context.WithoutCancel(ctx)
}

// close closes every cached statement.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.m {
		_ = st.Close()
		delete(c.m, q)
	}
}
