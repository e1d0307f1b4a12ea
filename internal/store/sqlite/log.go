package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
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
	added := make([]bool, len(b.Transitions))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// The writer pool's one connection makes this the only transaction
		// using the scratch space.
		w := &s.scratch
		w.tx = tx
		defer w.reset()
		var fanouts [][]any
		var fallbackDue []herald.Delivery
		for i := range b.Notifications {
			nn := b.Notifications[i]
			storeutil.Fill(&nn)
			n := nn.Notification
			content, err := storeutil.EncodeContent(n)
			if err != nil {
				return err
			}
			w.rows[tableNotifications] = append(w.rows[tableNotifications], n.AppID, n.ID, n.Category, string(n.Priority),
				string(content), us(storeutil.Time(n.CreatedAt)))
			for _, d := range nn.Deliveries {
				w.rows[tableDeliveries] = appendDelivery(w.rows[tableDeliveries], d)
				if !d.FallbackDue.IsZero() {
					fallbackDue = append(fallbackDue, d)
				}
			}
			if f := nn.Fanout; f != nil {
				fanouts = append(fanouts, fanoutRow(n, *f))
			}
			for _, e := range nn.Events {
				w.event(s.nextSeq(), e)
			}
			if k := nn.Idempotency; k != nil {
				w.rows[tableIdempotency] = append(w.rows[tableIdempotency], k.AppID, k.Key, k.RequestHash, k.NotificationID,
					[]byte(k.Response), us(storeutil.Time(k.CreatedAt)))
			}
		}
		for _, t := range []int{tableNotifications, tableDeliveries, tableIdempotency} {
			if err := w.insert(ctx, t); err != nil {
				return err
			}
		}
		for _, f := range fanouts { // one per topic send: rare, so not prepared
			if _, err := tx.ExecContext(ctx, insertQuery("fanouts", fanoutColumns, len(f), 1), f...); err != nil {
				return fmt.Errorf("insert into fanouts: %w", err)
			}
		}
		for _, d := range fallbackDue {
			if err := w.setFallbackDue(ctx, d); err != nil {
				return err
			}
		}
		steps, err := w.transitions(ctx, b.Transitions, applied, added)
		if err != nil {
			return err
		}
		for i := range b.Transitions {
			if applied[i] {
				for _, e := range b.Transitions[i].Steps {
					w.event(s.nextSeq(), w.filled(b.Transitions, i, e))
				}
				w.event(s.nextSeq(), w.transitionEvent(b.Transitions, i))
			}
			if i < len(steps) {
				for _, e := range steps[i] {
					w.event(s.nextSeq(), e)
				}
			}
		}
		return w.insert(ctx, tableEvents)
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

// appendDelivery appends d's values for deliveryColumns to vals.
func appendDelivery(vals []any, d herald.Delivery) []any {
	created := us(storeutil.Time(d.CreatedAt))
	return append(vals, d.AppID, d.ID, d.NotificationID, d.UserID, string(d.Channel),
		string(d.Priority), d.Address, d.DeviceID, string(d.Platform), string(d.Status), d.Reason, d.Provider,
		d.ProviderMessageID, d.Attempts, us(storeutil.Time(storeutil.DueAt(d))), created, created)
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
		res, err := w.tx.ExecContext(ctx, q, appendDelivery(nil, d)...)
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

// The tables Apply inserts into, indexes of insertTables.
const (
	tableNotifications = iota
	tableDeliveries
	tableIdempotency
	tableEvents
)

// insertTable is a table Apply inserts into, with its columns.
type insertTable struct{ table, columns string }

func (t insertTable) cols() int { return strings.Count(t.columns, ",") + 1 }

// insertTables are the tables Apply inserts into.
var insertTables = [...]insertTable{
	tableNotifications: {"notifications", notificationInsertColumns},
	tableDeliveries:    {"deliveries", deliveryColumns},
	tableIdempotency:   {"idempotency", idempotencyColumns},
	tableEvents:        {"events", eventColumns},
}

const (
	notificationInsertColumns = "app_id, id, category, priority, content, created_at"
	idempotencyColumns        = "app_id, key, request_hash, notification_id, response, created_at"
)

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

// transitionSizes counts the prepared transitionsQuery statements: for 1,
// 2, 4 … transitionRows rows. n transitions run in the smallest that holds
// them, padded with rows that match nothing: a padding row costs far less
// than a second statement.
const (
	transitionSizes = 7
	transitionRows  = 1 << (transitionSizes - 1)
)

// applyStmts are Apply's statements, prepared once at open on the writer
// connection.
type applyStmts struct {
	insert      [len(insertTables)][rowsPerInsert]*sql.Stmt // by table and row count - 1
	transitions [transitionSizes]*sql.Stmt                  // by log2 of the row count
}

// prepareApply prepares Apply's statements on the writer pool.
func prepareApply(ctx context.Context, db *sql.DB) (*applyStmts, error) {
	p := &applyStmts{}
	prepare := func(q string) (*sql.Stmt, error) {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			p.close()
		}
		return st, err
	}
	var err error
	for t, it := range insertTables {
		for n := 1; n <= rowsPerInsert; n++ {
			if p.insert[t][n-1], err = prepare(insertQuery(it.table, it.columns, it.cols(), n)); err != nil {
				return nil, err
			}
		}
	}
	for i := range p.transitions {
		if p.transitions[i], err = prepare(transitionsQuery(1 << i)); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *applyStmts) close() {
	for _, sts := range p.insert {
		for _, st := range sts {
			if st != nil {
				_ = st.Close()
			}
		}
	}
	for _, st := range p.transitions {
		if st != nil {
			_ = st.Close()
		}
	}
}

// writer runs the statements of one Apply inside its transaction. Its
// slices are kept from one Apply to the next (Store.scratch), so that a
// commit does not grow them again from nothing.
type writer struct {
	tx       *sql.Tx
	prepared *applyStmts
	stmts    map[*sql.Stmt]*sql.Stmt // this transaction's, by prepared statement
	adhoc    map[string]*sql.Stmt    // this transaction's others, by SQL text

	rows [len(insertTables)][]any // each table's values, row after row
	args []any                    // one statement's
	// transitions' scratch
	rounds [][]int
	seen   map[string]int
	byID   map[string]int
	found  []found
}

// found is what a transition's RETURNING told of its delivery.
type found struct{ notificationID, channel string }

// reset ends the transaction's use of the writer, dropping its references.
func (w *writer) reset() {
	for p, st := range w.stmts {
		_ = st.Close()
		delete(w.stmts, p)
	}
	for q, st := range w.adhoc {
		_ = st.Close()
		delete(w.adhoc, q)
	}
	for t := range w.rows {
		clear(w.rows[t])
		w.rows[t] = w.rows[t][:0]
	}
	clear(w.args[:cap(w.args)])
	clear(w.found)
	clear(w.seen)
	clear(w.byID)
	w.tx = nil
}

// stmt returns the transaction's handle of a prepared statement.
func (w *writer) stmt(ctx context.Context, p *sql.Stmt) *sql.Stmt {
	if st, ok := w.stmts[p]; ok {
		return st
	}
	// The writer pool has one connection, so this reuses the statement prepared on it.
	st := w.tx.StmtContext(ctx, p)
	if w.stmts == nil {
		w.stmts = map[*sql.Stmt]*sql.Stmt{}
	}
	w.stmts[p] = st
	return st
}

// prepare prepares a statement that is not among Apply's (a rare one) for
// this transaction, once.
func (w *writer) prepare(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := w.adhoc[q]; ok {
		return st, nil
	}
	st, err := w.tx.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if w.adhoc == nil {
		w.adhoc = map[string]*sql.Stmt{}
	}
	w.adhoc[q] = st
	return st, nil
}

// event adds an event row.
func (w *writer) event(seq int64, e herald.Event) {
	w.rows[tableEvents] = append(w.rows[tableEvents], e.AppID, e.NotificationID, seq, e.DeliveryID, string(e.Channel),
		string(e.Status), e.Reason, e.Attempt, e.Provider, e.Detail, us(storeutil.Time(e.At)))
}

// insert writes the rows gathered for table t.
func (w *writer) insert(ctx context.Context, t int) error {
	cols := insertTables[t].cols()
	vals := w.rows[t]
	for len(vals) > 0 {
		n := min(len(vals)/cols, rowsPerInsert)
		if _, err := w.stmt(ctx, w.prepared.insert[t][n-1]).ExecContext(ctx, vals[:n*cols]...); err != nil {
			return fmt.Errorf("insert %d rows into %s: %w", n, insertTables[t].table, err)
		}
		vals = vals[n*cols:]
	}
	return nil
}

// transitions applies ts in order, each only if its guard holds, and sets
// applied[i] for each that did (transitionEvent then gives its event). It
// takes the fallback step of each applied one that has a plan: added[i]
// tells whether the step added deliveries, steps[i] holds their events.
// Transitions of different deliveries go into multi-row statements; a
// delivery's later transitions wait for a later round, so that each sees
// what the earlier ones did. A transition with a fallback plan (rare) runs
// alone, after those before it and before those after it, since its step
// reads the state of the notification's other deliveries.
func (w *writer) transitions(ctx context.Context, ts []herald.Transition, applied, added []bool) (steps [][]herald.Event, err error) {
	if len(ts) == 0 {
		return nil, nil
	}
	w.found = slices.Grow(w.found[:0], len(ts))[:len(ts)]
	clear(w.found)
	start := 0
	for i := range ts {
		if ts[i].Fallback == nil {
			continue
		}
		if err := w.inRounds(ctx, ts, start, i, applied); err != nil {
			return nil, err
		}
		if err := w.inRounds(ctx, ts, i, i+1, applied); err != nil {
			return nil, err
		}
		if applied[i] {
			evs, err := w.fallbackStep(ctx, &ts[i], w.transitionEvent(ts, i).NotificationID)
			if err != nil {
				return nil, err
			}
			if steps == nil {
				steps = make([][]herald.Event, len(ts))
			}
			steps[i], added[i] = evs, len(evs) > 0
		}
		start = i + 1
	}
	return steps, w.inRounds(ctx, ts, start, len(ts), applied)
}

// inRounds applies ts[from:to] in rounds of multi-row statements.
func (w *writer) inRounds(ctx context.Context, ts []herald.Transition, from, to int, applied []bool) error {
	if from >= to {
		return nil
	}
	if w.seen == nil {
		w.seen, w.byID = map[string]int{}, map[string]int{}
	}
	clear(w.seen)
	rounds := w.rounds[:0]
	for i := from; i < to; i++ {
		r := w.seen[ts[i].DeliveryID] // the delivery's transitions so far
		w.seen[ts[i].DeliveryID] = r + 1
		if r == len(rounds) {
			if r < len(w.rounds) {
				rounds = append(rounds, w.rounds[r][:0])
			} else {
				rounds = append(rounds, make([]int, 0, to-from))
			}
		}
		rounds[r] = append(rounds[r], i)
	}
	w.rounds = rounds
	for _, round := range rounds {
		for len(round) > 0 {
			chunk := round[:min(len(round), transitionRows)]
			round = round[len(chunk):]
			size := 0
			for 1<<size < len(chunk) {
				size++
			}
			args := w.args[:0]
			clear(w.byID)
			for _, i := range chunk {
				t := &ts[i]
				w.byID[t.DeliveryID] = i
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
			for range 1<<size - len(chunk) {
				// Padding up to the prepared size: a NULL id matches no delivery.
				args = append(args, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil)
			}
			w.args = args
			if err := w.returning(ctx, w.stmt(ctx, w.prepared.transitions[size]), args, applied); err != nil {
				return fmt.Errorf("transitions of %d deliveries: %w", len(chunk), err)
			}
		}
	}
	return nil
}

// returning runs one transitions statement and records which deliveries it moved.
func (w *writer) returning(ctx context.Context, st *sql.Stmt, args []any, applied []bool) error {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var f found
		if err := rows.Scan(&id, &f.notificationID, &f.channel); err != nil {
			return err
		}
		if i, ok := w.byID[id]; ok {
			applied[i], w.found[i] = true, f
		}
	}
	return rows.Err()
}

// transitionEvent is the event of the applied transition ts[i], with its
// missing ids and channel taken from the delivery.
func (w *writer) transitionEvent(ts []herald.Transition, i int) herald.Event {
	return w.filled(ts, i, ts[i].Event)
}

// filled is e, an event of the applied transition ts[i], with its missing
// ids and channel taken from the delivery.
func (w *writer) filled(ts []herald.Transition, i int, e herald.Event) herald.Event {
	t := &ts[i]
	if e.AppID == "" {
		e.AppID = t.AppID
	}
	if e.DeliveryID == "" {
		e.DeliveryID = t.DeliveryID
	}
	if e.NotificationID == "" {
		e.NotificationID = w.found[i].notificationID
	}
	if e.Channel == "" {
		e.Channel = herald.Channel(w.found[i].channel)
	}
	return e
}

// guard is a transition's From as transitionsQuery matches it: ",a,b,".
func guard(from []herald.Status) string {
	if len(from) == 0 {
		return openGuard
	}
	return guardOf(from)
}

func guardOf(from []herald.Status) string {
	var b strings.Builder
	b.WriteByte(',')
	for _, s := range from {
		b.WriteString(string(s))
		b.WriteByte(',')
	}
	return b.String()
}

// openGuard is the guard of an empty From: any status that is not Done.
var openGuard = guardOf(storeutil.OpenStatuses())

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

// GetDeliveryWork returns a delivery with its notification and its user's
// preferences, in one query (one read transaction, where three would each
// find the page cache of a reader emptied by the commits in between).
func (s *Store) GetDeliveryWork(ctx context.Context, appID, id string) (herald.DeliveryWork, error) {
	var w herald.DeliveryWork
	var nID, category, nPriority, content, doc sql.NullString
	var nCreated sql.NullInt64
	var hasUser bool
	d, err := scanDelivery(moreColumns{s.read.QueryRowContext(ctx, `SELECT `+storeutil.Qualified("d", deliveryColumns)+`,
			n.id, n.category, n.priority, n.content, n.created_at, u.id IS NOT NULL, p.doc
		FROM deliveries d
		LEFT JOIN notifications n ON n.app_id = d.app_id AND n.id = d.notification_id
		LEFT JOIN users u ON u.app_id = d.app_id AND u.id = d.user_id
		LEFT JOIN preferences p ON p.app_id = d.app_id AND p.user_id = d.user_id
		WHERE d.app_id = ? AND d.id = ?`, appID, id),
		[]any{&nID, &category, &nPriority, &content, &nCreated, &hasUser, &doc}})
	if err != nil {
		return herald.DeliveryWork{}, wrap(err, "get delivery %q of app %q to send", id, appID)
	}
	w.Delivery = d
	if !nID.Valid {
		return herald.DeliveryWork{}, wrap(fmt.Errorf("its notification %q is missing", d.NotificationID), "get delivery %q of app %q to send", id, appID)
	}
	w.Notification = herald.Notification{AppID: appID, ID: nID.String, Category: category.String,
		Priority: herald.Priority(nPriority.String), CreatedAt: fromUS(nCreated.Int64)}
	if err := storeutil.DecodeContent([]byte(content.String), &w.Notification); err != nil {
		return herald.DeliveryWork{}, wrap(err, "get delivery %q of app %q to send", id, appID)
	}
	w.UserGone = d.UserID != "" && !hasUser
	if doc.Valid && hasUser {
		if err := json.Unmarshal([]byte(doc.String), &w.Preferences); err != nil {
			return herald.DeliveryWork{}, wrap(err, "get delivery %q of app %q to send", id, appID)
		}
	}
	return w, nil
}

// moreColumns scans a row into the destinations a scan function gives it,
// then into its own.
type moreColumns struct {
	row  interface{ Scan(...any) error }
	more []any
}

func (m moreColumns) Scan(dest ...any) error { return m.row.Scan(append(dest, m.more...)...) }

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
