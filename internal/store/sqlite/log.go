package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/internal/storeutil"
)

// Apply writes the batch in one transaction and sets Applied on each
// transition that matched its guard. CodeConflict when an idempotency key
// or id already exists; nothing of the batch is written then.
//
// Rows go in as multi-row INSERTs: in the pure Go SQLite each statement
// execution has a fixed cost that would otherwise dominate a group commit.
func (s *Store) Apply(ctx context.Context, b *herald.Batch) error {
	// A commit's statements are short and its lock wait is bounded by
	// busy_timeout: a context that can end would only cost a goroutine per
	// statement (see uncancelable).
	ctx = uncancelable(ctx)
	applied := make([]bool, len(b.Transitions))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		w := &writer{tx: tx, prepared: s.prepared, stmts: map[string]*sql.Stmt{}}
		defer w.close()
		var notifications, deliveries, events, keys [][]any
		for i := range b.Notifications {
			nn := b.Notifications[i]
			storeutil.Fill(&nn)
			n := nn.Notification
			content, err := json.Marshal(n.Content)
			if err != nil {
				return err
			}
			notifications = append(notifications, []any{n.AppID, n.ID, n.Category, string(n.Priority), string(content),
				us(storeutil.Time(n.CreatedAt))})
			for _, d := range nn.Deliveries {
				created := us(storeutil.Time(d.CreatedAt))
				deliveries = append(deliveries, []any{d.AppID, d.ID, d.NotificationID, d.UserID, string(d.Channel),
					string(d.Priority), d.Address, d.DeviceID, string(d.Platform), string(d.Status), d.Reason, d.Provider,
					d.ProviderMessageID, d.Attempts, us(storeutil.Time(storeutil.DueAt(d))), created, created})
			}
			for _, e := range nn.Events {
				events = append(events, s.eventRow(e))
			}
			if k := nn.Idempotency; k != nil {
				keys = append(keys, []any{k.AppID, k.Key, k.RequestHash, k.NotificationID, []byte(k.Response),
					us(storeutil.Time(k.CreatedAt))})
			}
		}
		for _, ins := range []struct {
			table, columns string
			rows           [][]any
		}{
			{"notifications", notificationInsertColumns, notifications},
			{"deliveries", deliveryColumns, deliveries},
			{"idempotency", idempotencyColumns, keys},
		} {
			if err := w.insertRows(ctx, ins.table, ins.columns, ins.rows); err != nil {
				return err
			}
		}
		evs, err := w.transitions(ctx, b.Transitions, applied)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			events = append(events, s.eventRow(ev))
		}
		return w.insertRows(ctx, "events", eventColumns, events)
	})
	if err != nil {
		return wrap(err, "apply batch of %d notifications, %d transitions", len(b.Notifications), len(b.Transitions))
	}
	// Only a committed batch reports its transitions applied.
	for i := range b.Transitions {
		b.Transitions[i].Applied = applied[i]
	}
	return nil
}

const eventColumns = "app_id, notification_id, seq, delivery_id, channel, status, reason, attempt, provider, detail, at"

func (s *Store) eventRow(e herald.Event) []any {
	return []any{e.AppID, e.NotificationID, s.nextSeq(), e.DeliveryID, string(e.Channel), string(e.Status),
		e.Reason, e.Attempt, e.Provider, e.Detail, us(storeutil.Time(e.At))}
}

// nextSeq orders events: increasing within this process, and based on the
// clock (microseconds × 1024) so that another process writing the same
// file continues the order instead of colliding with it.
func (s *Store) nextSeq() int64 {
	for {
		last := s.seq.Load()
		next := max(last+1, time.Now().UnixMicro()<<10)
		if s.seq.CompareAndSwap(last, next) {
			return next
		}
	}
}

// rowsPerInsert bounds one multi-row INSERT (SQLite allows 32766
// parameters). A statement for every row count up to it is prepared once
// when the store opens, so each table takes one statement per 64 rows:
// compiling SQL costs as much as running it in the pure Go SQLite, and
// every statement run has a fixed cost.
const rowsPerInsert = 64

// insertTables are the tables Apply inserts into, with their columns.
var insertTables = []struct{ table, columns string }{
	{"notifications", notificationInsertColumns},
	{"deliveries", deliveryColumns},
	{"idempotency", idempotencyColumns},
	{"events", eventColumns},
}

const (
	notificationInsertColumns = "app_id, id, category, priority, content, created_at"
	idempotencyColumns        = "app_id, key, request_hash, notification_id, response, created_at"
)

// applyStatements lists every statement Apply uses, for preparing at open.
func applyStatements() []string {
	var qs []string
	for _, t := range insertTables {
		cols := strings.Count(t.columns, ",") + 1
		for n := 1; n <= rowsPerInsert; n++ {
			qs = append(qs, insertQuery(t.table, t.columns, cols, n))
		}
	}
	for n := 1; n <= transitionRows; n *= 2 {
		qs = append(qs, transitionsQuery(n))
	}
	return qs
}

func insertQuery(table, columns string, cols, rows int) string {
	tuple := "(?" + strings.Repeat(", ?", cols-1) + ")"
	return "INSERT INTO " + table + " (" + columns + ") VALUES " + tuple + strings.Repeat(", "+tuple, rows-1)
}

// transitionsQuery updates up to rows deliveries, each under its own
// guard, in one statement: in the pure Go SQLite a statement's fixed cost
// (binding, cursors, the RETURNING table) is several times the cost of
// updating a row. A row's guard statuses travel as one ",a,b," string.
// RETURNING names the deliveries whose guard held, with what their events
// may lack.
func transitionsQuery(rows int) string {
	tuple := "(?" + strings.Repeat(", ?", transitionColumns-1) + ")"
	return `WITH v (app_id, id, guard, if_attempts, status, reason, attempts, provider, provider_message_id, due_at, updated_at)
		AS (VALUES ` + tuple + strings.Repeat(", "+tuple, rows-1) + `)
		UPDATE deliveries SET status = v.status, reason = v.reason,
			attempts = CASE WHEN v.attempts = 0 THEN deliveries.attempts ELSE v.attempts END,
			provider = CASE WHEN v.provider = '' THEN deliveries.provider ELSE v.provider END,
			provider_message_id = CASE WHEN v.provider_message_id = '' THEN deliveries.provider_message_id ELSE v.provider_message_id END,
			due_at = v.due_at, updated_at = v.updated_at
		FROM v
		WHERE deliveries.id = v.id AND deliveries.app_id = v.app_id
			AND instr(v.guard, ',' || deliveries.status || ',') > 0
			AND (v.if_attempts IS NULL OR deliveries.attempts = v.if_attempts)
		RETURNING id, notification_id, channel`
}

// transitionColumns is the number of values per row of transitionsQuery.
const transitionColumns = 11

// transitionRows is the most rows one transitionsQuery carries. Statements
// for 1, 2, 4 … transitionRows rows are prepared at open; n transitions
// run in the smallest of them, padded with rows that match nothing: a
// padding row costs far less than a second statement.
const transitionRows = 64

// prepareApply prepares Apply's statements on the writer pool.
func prepareApply(ctx context.Context, db *sql.DB) (map[string]*sql.Stmt, error) {
	out := map[string]*sql.Stmt{}
	for _, q := range applyStatements() {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			for _, st := range out {
				_ = st.Close()
			}
			return nil, err
		}
		out[q] = st
	}
	return out, nil
}

// writer runs the statements of one Apply inside its transaction.
type writer struct {
	tx       *sql.Tx
	prepared map[string]*sql.Stmt // prepared at open, shared
	stmts    map[string]*sql.Stmt // this transaction's
}

func (w *writer) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := w.stmts[q]; ok {
		return st, nil
	}
	var st *sql.Stmt
	if p, ok := w.prepared[q]; ok {
		// The writer pool has one connection, so this reuses the statement prepared on it.
		st = w.tx.StmtContext(ctx, p)
	} else {
		var err error
		if st, err = w.tx.PrepareContext(ctx, q); err != nil {
			return nil, err
		}
	}
	w.stmts[q] = st
	return st, nil
}

func (w *writer) close() {
	for _, st := range w.stmts {
		_ = st.Close()
	}
}

func (w *writer) insertRows(ctx context.Context, table, columns string, rows [][]any) error {
	for len(rows) > 0 {
		n := min(len(rows), rowsPerInsert)
		st, err := w.stmt(ctx, insertQuery(table, columns, len(rows[0]), n))
		if err != nil {
			return fmt.Errorf("prepare insert into %s: %w", table, err)
		}
		args := make([]any, 0, n*len(rows[0]))
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("insert %d rows into %s: %w", n, table, err)
		}
		rows = rows[n:]
	}
	return nil
}

// transitions applies ts in order, each only if its guard holds, sets
// applied[i] for each that did, and returns the events of those, in the
// order of ts, with their missing ids and channel taken from the
// delivery. Transitions of different deliveries go into multi-row
// statements; a delivery's later transitions wait for a later round, so
// that each sees what the earlier ones did.
func (w *writer) transitions(ctx context.Context, ts []herald.Transition, applied []bool) ([]herald.Event, error) {
	if len(ts) == 0 {
		return nil, nil
	}
	type found struct{ notificationID, channel string }
	rows := make([]found, len(ts))
	var rounds [][]int
	seen := make(map[string]int, len(ts)) // delivery id → transitions of it so far
	for i := range ts {
		r := seen[ts[i].DeliveryID]
		seen[ts[i].DeliveryID] = r + 1
		if r == len(rounds) {
			rounds = append(rounds, make([]int, 0, len(ts)))
		}
		rounds[r] = append(rounds[r], i)
	}
	args := make([]any, 0, min(len(ts), transitionRows)*transitionColumns)
	byID := make(map[string]int, min(len(ts), transitionRows))
	for _, round := range rounds {
		for len(round) > 0 {
			chunk := round[:min(len(round), transitionRows)]
			round = round[len(chunk):]
			n := 1
			for n < len(chunk) {
				n *= 2
			}
			args = args[:0]
			clear(byID)
			for _, i := range chunk {
				t := &ts[i]
				byID[t.DeliveryID] = i
				due := t.DueAt
				if due.IsZero() {
					due = t.Event.At
				}
				var ifAttempts any
				if t.IfAttempts != nil {
					ifAttempts = *t.IfAttempts
				}
				args = append(args, t.AppID, t.DeliveryID, guard(t.From), ifAttempts, string(t.To), t.Reason, t.Attempts,
					t.Provider, t.ProviderMessageID, us(storeutil.Time(due)), us(storeutil.Time(t.Event.At)))
			}
			for range n - len(chunk) {
				// Padding up to the prepared size: a NULL id matches no delivery.
				args = append(args, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil)
			}
			st, err := w.stmt(ctx, transitionsQuery(n))
			if err != nil {
				return nil, fmt.Errorf("prepare transitions: %w", err)
			}
			if err := func() error {
				res, err := st.QueryContext(ctx, args...)
				if err != nil {
					return err
				}
				defer res.Close()
				for res.Next() {
					var id string
					var f found
					if err := res.Scan(&id, &f.notificationID, &f.channel); err != nil {
						return err
					}
					if i, ok := byID[id]; ok {
						applied[i], rows[i] = true, f
					}
				}
				return res.Err()
			}(); err != nil {
				return nil, fmt.Errorf("transitions of %d deliveries: %w", len(chunk), err)
			}
		}
	}
	var evs []herald.Event
	for i := range ts {
		if !applied[i] {
			continue
		}
		t, e := &ts[i], ts[i].Event
		if e.AppID == "" {
			e.AppID = t.AppID
		}
		if e.DeliveryID == "" {
			e.DeliveryID = t.DeliveryID
		}
		if e.NotificationID == "" {
			e.NotificationID = rows[i].notificationID
		}
		if e.Channel == "" {
			e.Channel = herald.Channel(rows[i].channel)
		}
		evs = append(evs, e)
	}
	return evs, nil
}

// guard is a transition's From as transitionsQuery matches it: ",a,b,".
func guard(from []herald.Status) string {
	var b strings.Builder
	b.WriteByte(',')
	for _, s := range storeutil.GuardStatuses(from) {
		b.WriteString(s)
		b.WriteByte(',')
	}
	return b.String()
}

// GetNotification returns the notification. CodeNotFound when the app has none with this id.
func (s *Store) GetNotification(ctx context.Context, appID, id string) (herald.Notification, error) {
	n, err := scanNotification(s.read.QueryRowContext(ctx, `SELECT `+notificationColumns+` FROM notifications
		WHERE app_id = ? AND id = ?`, appID, id))
	if err != nil {
		return herald.Notification{}, wrap(err, "get notification %q of app %q", id, appID)
	}
	return n, nil
}

const notificationColumns = `app_id, id, category, priority, content, created_at`

func scanNotification(row interface{ Scan(...any) error }) (herald.Notification, error) {
	var n herald.Notification
	var priority, content string
	var created int64
	if err := row.Scan(&n.AppID, &n.ID, &n.Category, &priority, &content, &created); err != nil {
		return herald.Notification{}, err
	}
	if err := json.Unmarshal([]byte(content), &n.Content); err != nil {
		return herald.Notification{}, err
	}
	n.Priority, n.CreatedAt = herald.Priority(priority), fromUS(created)
	return n, nil
}

// ListNotifications returns the app's notifications newest first (by id:
// UUIDv7 ids are time-ordered), one page at a time.
func (s *Store) ListNotifications(ctx context.Context, appID string, f herald.NotificationFilter) ([]herald.Notification, string, error) {
	limit := storeutil.Limit(f.Limit)
	q := `SELECT ` + notificationColumns + ` FROM notifications n WHERE n.app_id = ?`
	args := []any{appID}
	if f.Cursor != "" {
		after, err := storeutil.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, "", wrap(err, "list notifications of app %q", appID)
		}
		q += ` AND n.id < ?`
		args = append(args, after)
	}
	if !f.Since.IsZero() {
		q += ` AND n.created_at >= ?`
		args = append(args, us(storeutil.Time(f.Since)))
	}
	if f.UserID != "" || f.Status != "" || f.Channel != "" {
		q += ` AND EXISTS (SELECT 1 FROM deliveries d WHERE d.app_id = n.app_id AND d.notification_id = n.id`
		if f.UserID != "" {
			q += ` AND d.user_id = ?`
			args = append(args, f.UserID)
		}
		if f.Status != "" {
			q += ` AND d.status = ?`
			args = append(args, string(f.Status))
		}
		if f.Channel != "" {
			q += ` AND d.channel = ?`
			args = append(args, string(f.Channel))
		}
		q += `)`
	}
	q += ` ORDER BY n.id DESC LIMIT ?`
	args = append(args, limit+1)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", wrap(err, "list notifications of app %q", appID)
	}
	defer rows.Close()
	var out []herald.Notification
	for rows.Next() {
		n, err := scanNotification(rows)
		if err != nil {
			return nil, "", wrap(err, "list notifications of app %q", appID)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, "", wrap(err, "list notifications of app %q", appID)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = storeutil.EncodeCursor(out[limit-1].ID)
	}
	return out, next, nil
}

const deliveryColumns = `app_id, id, notification_id, user_id, channel, priority, address, device_id, platform,
	status, reason, provider, provider_message_id, attempts, due_at, created_at, updated_at`

func scanDelivery(row interface{ Scan(...any) error }) (herald.Delivery, error) {
	var d herald.Delivery
	var channel, priority, platform, status string
	var due, created, updated int64
	if err := row.Scan(&d.AppID, &d.ID, &d.NotificationID, &d.UserID, &channel, &priority, &d.Address, &d.DeviceID,
		&platform, &status, &d.Reason, &d.Provider, &d.ProviderMessageID, &d.Attempts, &due, &created, &updated); err != nil {
		return herald.Delivery{}, err
	}
	d.Channel, d.Priority, d.Platform, d.Status = herald.Channel(channel), herald.Priority(priority), herald.Platform(platform), herald.Status(status)
	d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = fromUS(due), fromUS(created), fromUS(updated)
	return d, nil
}

func (s *Store) deliveries(ctx context.Context, q string, args ...any) ([]herald.Delivery, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []herald.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ListDeadLetters returns the app's dead deliveries newest first, one page
// at a time, each with its events; the page's events are one query.
func (s *Store) ListDeadLetters(ctx context.Context, appID string, f herald.DeadLetterFilter) ([]herald.DeadLetter, string, error) {
	limit := storeutil.Limit(f.Limit)
	// status = 'dead' reads exactly as in the partial index deliveries_dead.
	q := `SELECT ` + deliveryColumns + ` FROM deliveries WHERE app_id = ? AND status = 'dead'`
	args := []any{appID}
	if f.Cursor != "" {
		after, err := storeutil.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, "", wrap(err, "list dead letters of app %q", appID)
		}
		q += ` AND id < ?`
		args = append(args, after)
	}
	if f.Channel != "" {
		q += ` AND channel = ?`
		args = append(args, string(f.Channel))
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit+1)
	ds, err := s.deliveries(ctx, q, args...)
	if err != nil {
		return nil, "", wrap(err, "list dead letters of app %q", appID)
	}
	next := ""
	if len(ds) > limit {
		ds = ds[:limit]
		next = storeutil.EncodeCursor(ds[limit-1].ID)
	}
	if len(ds) == 0 {
		return nil, "", nil
	}
	eq := `SELECT app_id, notification_id, delivery_id, channel, status, reason, attempt, provider, detail, at
		FROM events WHERE app_id = ? AND notification_id IN (?` + strings.Repeat(", ?", len(ds)-1) + `) ORDER BY seq`
	eargs := []any{appID}
	for _, d := range ds {
		eargs = append(eargs, d.NotificationID)
	}
	evs, err := s.events(ctx, eq, eargs...)
	if err != nil {
		return nil, "", wrap(err, "list dead letters of app %q: events", appID)
	}
	return storeutil.DeadLetters(ds, evs), next, nil
}

func (s *Store) events(ctx context.Context, q string, args ...any) ([]herald.Event, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []herald.Event
	for rows.Next() {
		var e herald.Event
		var channel, status string
		var at int64
		if err := rows.Scan(&e.AppID, &e.NotificationID, &e.DeliveryID, &channel, &status, &e.Reason, &e.Attempt,
			&e.Provider, &e.Detail, &at); err != nil {
			return nil, err
		}
		e.Channel, e.Status, e.At = herald.Channel(channel), herald.Status(status), fromUS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// ListDeliveries returns the notification's deliveries in creation order.
func (s *Store) ListDeliveries(ctx context.Context, appID, notificationID string) ([]herald.Delivery, error) {
	out, err := s.deliveries(ctx, `SELECT `+deliveryColumns+` FROM deliveries WHERE app_id = ? AND notification_id = ?
		ORDER BY created_at, id`, appID, notificationID)
	return out, wrap(err, "list deliveries of notification %q of app %q", notificationID, appID)
}

// GetDelivery returns one delivery. CodeNotFound when absent.
func (s *Store) GetDelivery(ctx context.Context, appID, id string) (herald.Delivery, error) {
	d, err := scanDelivery(s.read.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM deliveries WHERE app_id = ? AND id = ?`, appID, id))
	if err != nil {
		return herald.Delivery{}, wrap(err, "get delivery %q of app %q", id, appID)
	}
	return d, nil
}

// ListEvents returns the notification's events in the order they were written.
func (s *Store) ListEvents(ctx context.Context, appID, notificationID string) ([]herald.Event, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT app_id, notification_id, delivery_id, channel, status, reason, attempt,
		provider, detail, at FROM events WHERE app_id = ? AND notification_id = ? ORDER BY seq`, appID, notificationID)
	if err != nil {
		return nil, wrap(err, "list events of notification %q of app %q", notificationID, appID)
	}
	defer rows.Close()
	var out []herald.Event
	for rows.Next() {
		var e herald.Event
		var channel, status string
		var at int64
		if err := rows.Scan(&e.AppID, &e.NotificationID, &e.DeliveryID, &channel, &status, &e.Reason, &e.Attempt,
			&e.Provider, &e.Detail, &at); err != nil {
			return nil, wrap(err, "list events of notification %q of app %q", notificationID, appID)
		}
		e.Channel, e.Status, e.At = herald.Channel(channel), herald.Status(status), fromUS(at)
		out = append(out, e)
	}
	return out, wrap(rows.Err(), "list events of notification %q of app %q", notificationID, appID)
}

// GetIdempotency returns the stored answer for key. CodeNotFound when none.
func (s *Store) GetIdempotency(ctx context.Context, appID, key string) (herald.Idempotency, error) {
	k := herald.Idempotency{AppID: appID, Key: key}
	var response []byte
	var created int64
	err := s.read.QueryRowContext(ctx, `SELECT request_hash, notification_id, response, created_at FROM idempotency
		WHERE app_id = ? AND key = ?`, appID, key).Scan(&k.RequestHash, &k.NotificationID, &response, &created)
	if err != nil {
		return herald.Idempotency{}, wrap(err, "get idempotency key %q of app %q", key, appID)
	}
	if response != nil {
		k.Response = json.RawMessage(response)
	}
	k.CreatedAt = fromUS(created)
	return k, nil
}

// DeleteIdempotencyBefore deletes up to limit idempotency records of any
// app created before before, oldest first, and reports how many.
func (s *Store) DeleteIdempotencyBefore(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	res, err := s.w.ExecContext(ctx, `DELETE FROM idempotency WHERE rowid IN
		(SELECT rowid FROM idempotency WHERE created_at < ? ORDER BY created_at LIMIT ?)`,
		us(storeutil.Time(before)), limit)
	if err != nil {
		return 0, wrap(err, "delete idempotency records before %s", before)
	}
	n, err := res.RowsAffected()
	return int(n), wrap(err, "delete idempotency records before %s", before)
}

// StaleDeliveries returns up to limit deliveries of any app that should be
// on the work queue but may not be, oldest due first.
func (s *Store) StaleDeliveries(ctx context.Context, staleBefore, retryBefore time.Time, limit int) ([]herald.Delivery, error) {
	if limit <= 0 {
		limit = storeutil.DefaultStaleLimit
	}
	stale, retry := us(storeutil.Time(staleBefore)), us(storeutil.Time(retryBefore))
	// The status list must read exactly as in the partial index deliveries_due.
	out, err := s.deliveries(ctx, `SELECT `+deliveryColumns+` FROM deliveries
		WHERE status IN ('accepted', 'queued', 'sending') AND due_at < max(?, ?)
		AND (status = 'queued' AND due_at < ? OR status <> 'queued' AND due_at < ?)
		ORDER BY due_at LIMIT ?`, stale, retry, retry, stale, limit)
	return out, wrap(err, "stale deliveries before %s, retries before %s", staleBefore, retryBefore)
}

// PostponeDeliveries moves the due time of the given deliveries (any app)
// to until, without changing their status or timeline.
func (s *Store) PostponeDeliveries(ctx context.Context, ids []string, ifDueBefore, until time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `UPDATE deliveries SET due_at = ?
			WHERE id = ? AND status IN ('accepted', 'queued', 'sending') AND due_at < ?`)
		if err != nil {
			return err
		}
		defer st.Close()
		u, before := us(storeutil.Time(until)), us(storeutil.Time(ifDueBefore))
		for _, id := range ids {
			if _, err := st.ExecContext(ctx, u, id, before); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap(err, "postpone %d deliveries", len(ids))
}

// AcquireLease takes or renews the lease for holder until now+ttl and
// reports whether holder has it: it succeeds when the lease is free,
// expired, or already holder's.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	now = storeutil.Time(now)
	res, err := s.w.ExecContext(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`,
		name, holder, us(now.Add(ttl)), us(now))
	if err != nil {
		return false, wrap(err, "acquire lease %q for %q", name, holder)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, wrap(err, "acquire lease %q for %q", name, holder)
	}
	return n == 1, nil
}

// ReleaseLease gives the lease up if holder has it.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := s.w.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder)
	return wrap(err, "release lease %q for %q", name, holder)
}
