package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
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
	applied := make([]bool, len(b.Transitions))
	added := make([]bool, len(b.Transitions))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		w := &writer{tx: tx, prepared: s.prepared, stmts: map[string]*sql.Stmt{}}
		defer w.close()
		var notifications, deliveries, events, keys, fanouts [][]any
		var fallbackDue []herald.Delivery
		for i := range b.Notifications {
			nn := b.Notifications[i]
			storeutil.Fill(&nn)
			n := nn.Notification
			content, err := storeutil.EncodeContent(n)
			if err != nil {
				return err
			}
			notifications = append(notifications, []any{n.AppID, n.ID, n.Category, string(n.Priority), string(content),
				us(storeutil.Time(n.CreatedAt))})
			for _, d := range nn.Deliveries {
				deliveries = append(deliveries, deliveryRow(d))
				if !d.FallbackDue.IsZero() {
					fallbackDue = append(fallbackDue, d)
				}
			}
			if f := nn.Fanout; f != nil {
				fanouts = append(fanouts, fanoutRow(n, *f))
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
			{"fanouts", fanoutColumns, fanouts},
		} {
			if err := w.insertRows(ctx, ins.table, ins.columns, ins.rows); err != nil {
				return err
			}
		}
		for _, d := range fallbackDue {
			if err := w.setFallbackDue(ctx, d); err != nil {
				return err
			}
		}
		for i := range b.Transitions {
			ev, ok, err := w.transition(ctx, &b.Transitions[i])
			if err != nil {
				return err
			}
			if applied[i] = ok; ok {
				events = append(events, s.eventRow(ev))
			}
			if ok && b.Transitions[i].Fallback != nil {
				stepEvents, err := w.fallbackStep(ctx, &b.Transitions[i], ev.NotificationID)
				if err != nil {
					return err
				}
				added[i] = len(stepEvents) > 0
				for _, e := range stepEvents {
					events = append(events, s.eventRow(e))
				}
			}
		}
		return w.insertRows(ctx, "events", eventColumns, events)
	})
	if err != nil {
		return wrap(err, "apply batch of %d notifications, %d transitions", len(b.Notifications), len(b.Transitions))
	}
	// Only a committed batch reports its transitions applied.
	for i := range b.Transitions {
		b.Transitions[i].Applied = applied[i]
		if f := b.Transitions[i].Fallback; f != nil {
			f.Added = added[i]
		}
	}
	return nil
}

func deliveryRow(d herald.Delivery) []any {
	created := us(storeutil.Time(d.CreatedAt))
	return []any{d.AppID, d.ID, d.NotificationID, d.UserID, string(d.Channel),
		string(d.Priority), d.Address, d.DeviceID, string(d.Platform), string(d.Status), d.Reason, d.Provider,
		d.ProviderMessageID, d.Attempts, us(storeutil.Time(storeutil.DueAt(d))), created, created}
}

// fallbackStep writes the fallback step of an applied transition unless
// another delivery of the channel being left blocks it, and returns the
// events of the deliveries it added. A delivery already there (the step
// was taken before) is skipped with its events. The single writer
// connection serialises steps, so two devices failing together see each
// other's outcome.
func (w *writer) fallbackStep(ctx context.Context, t *herald.Transition, notificationID string) ([]herald.Event, error) {
	f := t.Fallback
	// Whether or not it is taken, the step is decided: a window it had is done.
	if _, err := w.tx.ExecContext(ctx, `UPDATE deliveries SET fallback_due = NULL WHERE app_id = ? AND id = ? AND fallback_due IS NOT NULL`,
		t.AppID, t.DeliveryID); err != nil {
		return nil, fmt.Errorf("fallback step after delivery %q: %w", t.DeliveryID, err)
	}
	args := []any{t.AppID, notificationID, f.UserID, string(f.Channel), t.DeliveryID}
	for _, st := range storeutil.FallbackBlockers {
		args = append(args, st)
	}
	var blocked bool
	err := w.tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM deliveries
		WHERE app_id = ? AND notification_id = ? AND user_id = ? AND channel = ? AND id <> ?
		AND status IN (?`+strings.Repeat(", ?", len(storeutil.FallbackBlockers)-1)+`))`, args...).Scan(&blocked)
	if err != nil {
		return nil, fmt.Errorf("fallback step after delivery %q: %w", t.DeliveryID, err)
	}
	if blocked {
		return nil, nil
	}
	q := "INSERT INTO deliveries (" + deliveryColumns + ") VALUES (?" + strings.Repeat(", ?", strings.Count(deliveryColumns, ",")) +
		") ON CONFLICT DO NOTHING"
	added := map[string]bool{}
	for _, d := range f.Deliveries {
		res, err := w.tx.ExecContext(ctx, q, deliveryRow(d)...)
		if err != nil {
			return nil, fmt.Errorf("fallback step after delivery %q: insert %q: %w", t.DeliveryID, d.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			added[d.ID] = true
			if !d.FallbackDue.IsZero() {
				if err := w.setFallbackDue(ctx, d); err != nil {
					return nil, err
				}
			}
		}
	}
	var evs []herald.Event
	for _, e := range f.Events {
		if added[e.DeliveryID] {
			evs = append(evs, e)
		}
	}
	return evs, nil
}

// setFallbackDue writes a new delivery's fallback window (rare: only
// fallback notifications with a window have one, so the bulk insert
// stays as it is).
func (w *writer) setFallbackDue(ctx context.Context, d herald.Delivery) error {
	if _, err := w.tx.ExecContext(ctx, `UPDATE deliveries SET fallback_due = ? WHERE app_id = ? AND id = ?`,
		us(storeutil.Time(d.FallbackDue)), d.AppID, d.ID); err != nil {
		return fmt.Errorf("fallback window of delivery %q: %w", d.ID, err)
	}
	return nil
}

// OverdueFallbacks returns sent deliveries whose fallback window ended.
func (s *Store) OverdueFallbacks(ctx context.Context, before time.Time, limit int) ([]herald.Delivery, error) {
	// The predicate reads as the partial index deliveries_fallback_due's.
	out, err := s.deliveries(ctx, `SELECT `+deliveryColumns+` FROM deliveries
		WHERE status = 'sent' AND fallback_due IS NOT NULL AND fallback_due <= ? ORDER BY fallback_due LIMIT ?`,
		us(storeutil.Time(before)), limit)
	return out, wrap(err, "overdue fallbacks before %s", before)
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

// maxGuard is the longest From list whose transition statement is prepared up front.
const maxGuard = 8

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
	for n := 1; n <= maxGuard; n++ {
		qs = append(qs, transitionQuery(n, false), transitionQuery(n, true))
	}
	return qs
}

func insertQuery(table, columns string, cols, rows int) string {
	tuple := "(?" + strings.Repeat(", ?", cols-1) + ")"
	return "INSERT INTO " + table + " (" + columns + ") VALUES " + tuple + strings.Repeat(", "+tuple, rows-1)
}

func transitionQuery(guardLen int, ifAttempts bool) string {
	guard := ""
	if ifAttempts {
		guard = " AND attempts = ?"
	}
	return `UPDATE deliveries SET status = ?, reason = ?,
		attempts = CASE WHEN ? = 0 THEN attempts ELSE ? END,
		provider = CASE WHEN ? = '' THEN provider ELSE ? END,
		provider_message_id = CASE WHEN ? = '' THEN provider_message_id ELSE ? END,
		due_at = ?, updated_at = ?
		WHERE app_id = ? AND id = ? AND status IN (?` + strings.Repeat(", ?", guardLen-1) + `)` + guard + `
		RETURNING notification_id, channel`
}

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

// transition applies t if its guard holds and returns its event, with the
// event's missing ids and channel taken from the delivery itself.
func (w *writer) transition(ctx context.Context, t *herald.Transition) (herald.Event, bool, error) {
	from := storeutil.GuardStatuses(t.From)
	due := t.DueAt
	if due.IsZero() {
		due = t.Event.At
	}
	args := []any{string(t.To), t.Reason, t.Attempts, t.Attempts, t.Provider, t.Provider,
		t.ProviderMessageID, t.ProviderMessageID, us(storeutil.Time(due)), us(storeutil.Time(t.Event.At)), t.AppID, t.DeliveryID}
	for _, f := range from {
		args = append(args, f)
	}
	if t.IfAttempts != nil {
		args = append(args, *t.IfAttempts)
	}
	st, err := w.stmt(ctx, transitionQuery(len(from), t.IfAttempts != nil))
	if err != nil {
		return herald.Event{}, false, fmt.Errorf("prepare transition: %w", err)
	}
	var notificationID, channel string
	err = st.QueryRowContext(ctx, args...).Scan(&notificationID, &channel)
	if errors.Is(err, sql.ErrNoRows) {
		return herald.Event{}, false, nil
	}
	if err != nil {
		return herald.Event{}, false, fmt.Errorf("transition of delivery %q: %w", t.DeliveryID, err)
	}
	e := t.Event
	if e.AppID == "" {
		e.AppID = t.AppID
	}
	if e.DeliveryID == "" {
		e.DeliveryID = t.DeliveryID
	}
	if e.NotificationID == "" {
		e.NotificationID = notificationID
	}
	if e.Channel == "" {
		e.Channel = herald.Channel(channel)
	}
	return e, true, nil
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
	if err := storeutil.DecodeContent([]byte(content), &n); err != nil {
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

// DeliveryByProviderMessage returns the delivery, of any app, that provider
// accepted under providerMessageID. CodeNotFound when none.
func (s *Store) DeliveryByProviderMessage(ctx context.Context, provider, providerMessageID string) (herald.Delivery, error) {
	if providerMessageID == "" {
		return herald.Delivery{}, wrap(sql.ErrNoRows, "delivery of %s message %q", provider, providerMessageID)
	}
	// provider_message_id <> '' reads exactly as in the partial index.
	d, err := scanDelivery(s.read.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM deliveries
		WHERE provider_message_id = ? AND provider_message_id <> '' AND provider = ? LIMIT 1`, providerMessageID, provider))
	if err != nil {
		return herald.Delivery{}, wrap(err, "delivery of %s message %q", provider, providerMessageID)
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
		WHERE status IN ('accepted', 'queued', 'scheduled', 'sending') AND due_at < max(?, ?)
		AND (status IN ('queued', 'scheduled') AND due_at < ? OR status IN ('accepted', 'sending') AND due_at < ?)
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
			WHERE id = ? AND status IN ('accepted', 'queued', 'scheduled', 'sending') AND due_at < ?`)
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
