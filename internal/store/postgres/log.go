package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/internal/storeutil"
	"github.com/jackc/pgx/v5"
)

// Apply writes the batch in one transaction and sets Applied on each
// transition that matched its guard. CodeConflict when an idempotency key
// or id already exists; nothing of the batch is written then.
//
// The whole batch is one pgx.Batch: one array INSERT per table for the new
// notifications, then one statement per transition (an UPDATE whose
// RETURNING feeds the INSERT of its event), all pipelined in one round trip.
//
// Transitions lock their delivery rows in delivery id order (a stable sort:
// two transitions of one delivery keep theirs), the order every writer of
// several deliveries uses, so that two batches touching the same
// deliveries wait for each other instead of deadlocking. A deadlock or
// serialization failure that still happens (another writer's order) rolls
// everything back, so the batch is tried again, up to applyAttempts times.
func (s *Store) Apply(ctx context.Context, b *herald.Batch) error {
	if len(b.Notifications) == 0 && len(b.Transitions) == 0 {
		return nil
	}
	order := lockOrder(b.Transitions)
	applied := make([]bool, len(b.Transitions))
	added := make([]bool, len(b.Transitions))
	steps := stepOrder(b.Transitions)
	var err error
	for attempt := 1; ; attempt++ {
		var batch pgx.Batch
		queueInserts(&batch, b.Notifications)
		first := batch.Len() // the results before this one are the inserts'
		for _, i := range order {
			queueTransition(&batch, b.Transitions[i])
		}
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			br := tx.SendBatch(ctx, &batch)
			for i := range batch.Len() {
				tag, err := br.Exec()
				if err != nil {
					_ = br.Close()
					return err
				}
				if i >= first {
					// One row per event: the steps' and the transition's.
					applied[order[i-first]] = tag.RowsAffected() > 0
				}
			}
			if err := br.Close(); err != nil {
				return err
			}
			for _, i := range steps {
				added[i] = false
				if applied[i] {
					if added[i], err = fallbackStep(ctx, tx, b.Transitions[i]); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err == nil || !transient(err) || attempt == applyAttempts {
			break
		}
		select {
		case <-ctx.Done():
			return wrap(err, "apply batch of %d notifications, %d transitions", len(b.Notifications), len(b.Transitions))
		case <-time.After(time.Duration(attempt) * (5*time.Millisecond + rand.N(20*time.Millisecond))):
		}
	}
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

// stepOrder returns the indexes of the transitions with a fallback step,
// in notification id order: the order in which their notification rows
// are locked.
func stepOrder(ts []herald.Transition) []int {
	var order []int
	for i, t := range ts {
		if t.Fallback != nil {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return strings.Compare(ts[a].Event.NotificationID, ts[b].Event.NotificationID)
	})
	return order
}

// fallbackStep writes the fallback step of an applied transition unless
// another delivery of the channel being left blocks it, and reports
// whether it added any delivery. The lock on the notification's row
// serialises the steps of one notification: of two devices failing in
// concurrent transactions, the second reads the first's committed outcome
// (each statement reads afresh under READ COMMITTED) after the first
// commits, so the step is neither lost nor taken twice. A delivery already
// there (a step taken before) is skipped with its events.
func fallbackStep(ctx context.Context, tx pgx.Tx, t herald.Transition) (bool, error) {
	f := t.Fallback
	// Whether or not it is taken, the step is decided: a window it had is done.
	if _, err := tx.Exec(ctx, `UPDATE deliveries SET fallback_due = NULL WHERE app_id = $1 AND id = $2 AND fallback_due IS NOT NULL`,
		t.AppID, t.DeliveryID); err != nil {
		return false, fmt.Errorf("fallback step after delivery %q: %w", t.DeliveryID, err)
	}
	if len(f.Deliveries) == 0 {
		return false, nil
	}
	nid := f.Deliveries[0].NotificationID
	if _, err := tx.Exec(ctx, `SELECT 1 FROM notifications WHERE app_id = $1 AND id = $2 FOR UPDATE`, t.AppID, nid); err != nil {
		return false, fmt.Errorf("fallback step after delivery %q: %w", t.DeliveryID, err)
	}
	var blocked bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM deliveries WHERE app_id = $1 AND notification_id = $2
		AND user_id = $3 AND channel = $4 AND id <> $5 AND status = ANY($6::text[]))`,
		t.AppID, nid, f.UserID, string(f.Channel), t.DeliveryID, storeutil.FallbackBlockers).Scan(&blocked); err != nil {
		return false, fmt.Errorf("fallback step after delivery %q: %w", t.DeliveryID, err)
	}
	if blocked {
		return false, nil
	}
	inserted := map[string]bool{}
	for _, d := range f.Deliveries {
		tag, err := tx.Exec(ctx, `INSERT INTO deliveries (app_id, id, notification_id, user_id, channel, priority, address,
			device_id, platform, status, reason, provider, provider_message_id, attempts, due_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16) ON CONFLICT DO NOTHING`,
			d.AppID, d.ID, d.NotificationID, d.UserID, string(d.Channel), string(d.Priority), d.Address, d.DeviceID,
			string(d.Platform), string(d.Status), d.Reason, d.Provider, d.ProviderMessageID, int32(d.Attempts),
			storeutil.Time(storeutil.DueAt(d)), storeutil.Time(d.CreatedAt))
		if err != nil {
			return false, fmt.Errorf("fallback step after delivery %q: insert %q: %w", t.DeliveryID, d.ID, err)
		}
		inserted[d.ID] = tag.RowsAffected() == 1
		if inserted[d.ID] && !d.FallbackDue.IsZero() {
			if _, err := tx.Exec(ctx, `UPDATE deliveries SET fallback_due = $3 WHERE app_id = $1 AND id = $2`,
				d.AppID, d.ID, storeutil.Time(d.FallbackDue)); err != nil {
				return false, fmt.Errorf("fallback window of delivery %q: %w", d.ID, err)
			}
		}
	}
	for _, e := range f.Events {
		if !inserted[e.DeliveryID] {
			continue
		}
		if _, err := tx.Exec(ctx, `INSERT INTO events (app_id, notification_id, delivery_id, channel, status, reason,
			attempt, provider, detail, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			e.AppID, e.NotificationID, e.DeliveryID, string(e.Channel), string(e.Status), e.Reason, int32(e.Attempt),
			e.Provider, e.Detail, storeutil.Time(e.At)); err != nil {
			return false, fmt.Errorf("fallback step after delivery %q: event of %q: %w", t.DeliveryID, e.DeliveryID, err)
		}
	}
	for _, ok := range inserted {
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// OverdueFallbacks returns sent deliveries whose fallback window ended.
func (s *Store) OverdueFallbacks(ctx context.Context, before time.Time, limit int) ([]herald.Delivery, error) {
	// The predicate reads as the partial index deliveries_fallback_due's.
	out, err := s.deliveries(ctx, `SELECT `+deliveryColumns+` FROM deliveries
		WHERE status = 'sent' AND fallback_due IS NOT NULL AND fallback_due <= $1 ORDER BY fallback_due LIMIT $2`,
		storeutil.Time(before), limit)
	return out, wrap(err, "overdue fallbacks before %s", before)
}

// applyAttempts bounds how often Apply runs a batch that deadlocked.
const applyAttempts = 4

// lockOrder returns the indexes of ts sorted by delivery id, stable.
func lockOrder(ts []herald.Transition) []int {
	order := make([]int, len(ts))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(ts[a].DeliveryID, ts[b].DeliveryID) })
	return order
}

// queueInserts adds one array INSERT per table for the new notifications,
// in the order notifications, deliveries, events, idempotency records.
func queueInserts(batch *pgx.Batch, nns []herald.NewNotification) {
	if len(nns) == 0 {
		return
	}
	var (
		n struct {
			app, id, category, priority, content []string
			created                              []time.Time
		}
		d  deliveryArrays
		fo struct {
			app, nid, topic, request, cursor, status []string
			recipients                               []int32
			created                                  []time.Time
		}
		ev events
		k  struct {
			app, key, nid, response []string
			hash                    [][]byte
			created                 []time.Time
		}
	)
	for _, nn := range nns {
		storeutil.Fill(&nn)
		x := nn.Notification
		content, _ := storeutil.EncodeContent(x) // strings, numbers and maps of them: it cannot fail
		n.app, n.id, n.category, n.priority = append(n.app, x.AppID), append(n.id, x.ID), append(n.category, x.Category), append(n.priority, string(x.Priority))
		n.content, n.created = append(n.content, string(content)), append(n.created, storeutil.Time(x.CreatedAt))
		for _, y := range nn.Deliveries {
			d.add(y)
		}
		if f := nn.Fanout; f != nil {
			status := f.Status
			if status == "" {
				status = herald.FanoutRunning
			}
			fo.app, fo.nid, fo.topic = append(fo.app, x.AppID), append(fo.nid, x.ID), append(fo.topic, f.Topic)
			fo.request, fo.cursor = append(fo.request, string(storeutil.EncodeFanoutRequest(*f))), append(fo.cursor, f.Cursor)
			fo.status, fo.recipients = append(fo.status, status), append(fo.recipients, int32(f.Recipients))
			fo.created = append(fo.created, storeutil.Time(x.CreatedAt))
		}
		for _, e := range nn.Events {
			ev.add(e)
		}
		if r := nn.Idempotency; r != nil {
			k.app, k.key, k.nid = append(k.app, r.AppID), append(k.key, r.Key), append(k.nid, r.NotificationID)
			k.response, k.hash = append(k.response, string(r.Response)), append(k.hash, r.RequestHash)
			k.created = append(k.created, storeutil.Time(r.CreatedAt))
		}
	}
	var dueApp, dueID []string
	var dueAt []time.Time
	for _, nn := range nns {
		for _, y := range nn.Deliveries {
			if !y.FallbackDue.IsZero() {
				dueApp, dueID, dueAt = append(dueApp, nn.Notification.AppID), append(dueID, y.ID), append(dueAt, storeutil.Time(y.FallbackDue))
			}
		}
	}
	defer func() {
		// Rare (fallback notifications with a window): the bulk insert stays as it is.
		if len(dueID) > 0 {
			batch.Queue(`UPDATE deliveries d SET fallback_due = u.t FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u (a, i, t)
				WHERE d.app_id = u.a AND d.id = u.i`, dueApp, dueID, dueAt)
		}
	}()
	batch.Queue(`INSERT INTO notifications (app_id, id, category, priority, content, created_at)
		SELECT a, i, c, p, x::jsonb, t
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[]) AS u (a, i, c, p, x, t)`,
		n.app, n.id, n.category, n.priority, n.content, n.created)
	if len(d.id) > 0 {
		batch.Queue(insertDeliveries, d.args()...)
	}
	if len(fo.app) > 0 {
		batch.Queue(`INSERT INTO fanouts (app_id, notification_id, topic, request, cursor, recipients, status, created_at, updated_at)
			SELECT a, n, t, r::jsonb, c, x, s, w, w
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[], $8::timestamptz[])
				AS u (a, n, t, r, c, x, s, w)`,
			fo.app, fo.nid, fo.topic, fo.request, fo.cursor, fo.recipients, fo.status, fo.created)
	}
	if len(ev.app) > 0 {
		batch.Queue(insertEvents, ev.args()...)
	}
	if len(k.app) > 0 {
		batch.Queue(`INSERT INTO idempotency (app_id, key, request_hash, notification_id, response, created_at)
			SELECT a, k, h, n, NULLIF(r, '')::json, t
			FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::text[], $6::timestamptz[]) AS u (a, k, h, n, r, t)`,
			k.app, k.key, k.hash, k.nid, k.response, k.created)
	}
}

// deliveryArrays gathers delivery columns for one array INSERT.
type deliveryArrays struct {
	app, id, nid, user, channel, priority, address, device, platform, status, reason, provider, pmid []string
	attempts                                                                                         []int32
	due, created                                                                                     []time.Time
}

func (d *deliveryArrays) add(y herald.Delivery) {
	d.app, d.id, d.nid, d.user = append(d.app, y.AppID), append(d.id, y.ID), append(d.nid, y.NotificationID), append(d.user, y.UserID)
	d.channel, d.priority, d.address = append(d.channel, string(y.Channel)), append(d.priority, string(y.Priority)), append(d.address, y.Address)
	d.device, d.platform, d.status = append(d.device, y.DeviceID), append(d.platform, string(y.Platform)), append(d.status, string(y.Status))
	d.reason, d.provider, d.pmid = append(d.reason, y.Reason), append(d.provider, y.Provider), append(d.pmid, y.ProviderMessageID)
	d.attempts = append(d.attempts, int32(y.Attempts))
	d.due, d.created = append(d.due, storeutil.Time(storeutil.DueAt(y))), append(d.created, storeutil.Time(y.CreatedAt))
}

// args are the arguments of insertDeliveries.
func (d *deliveryArrays) args() []any {
	return []any{d.app, d.id, d.nid, d.user, d.channel, d.priority, d.address, d.device, d.platform, d.status, d.reason,
		d.provider, d.pmid, d.attempts, d.due, d.created}
}

// insertDeliveries inserts the rows of a deliveryArrays.
const insertDeliveries = `INSERT INTO deliveries (app_id, id, notification_id, user_id, channel, priority, address, device_id,
	platform, status, reason, provider, provider_message_id, attempts, due_at, created_at, updated_at)
	SELECT *, created FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
		$8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::int[], $15::timestamptz[],
		$16::timestamptz[]) AS u (a, i, n, us, c, pr, ad, dv, pl, st, re, pv, pm, at, du, created)`

// events gathers event columns for one array INSERT.
type events struct {
	app, nid, did, channel, status, reason, provider, detail []string
	attempt                                                  []int32
	at                                                       []time.Time
}

// insertEvents inserts the rows of an events, in order.
const insertEvents = `INSERT INTO events (app_id, notification_id, delivery_id, channel, status, reason, attempt, provider, detail, at)
	SELECT a, n, d, c, s, r, t, p, x, w FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[],
		$8::text[], $9::text[], $10::timestamptz[]) WITH ORDINALITY AS u (a, n, d, c, s, r, t, p, x, w, o) ORDER BY o`

// args are the arguments of insertEvents.
func (ev *events) args() []any {
	return []any{ev.app, ev.nid, ev.did, ev.channel, ev.status, ev.reason, ev.attempt, ev.provider, ev.detail, ev.at}
}

func (ev *events) add(e herald.Event) {
	ev.app, ev.nid, ev.did = append(ev.app, e.AppID), append(ev.nid, e.NotificationID), append(ev.did, e.DeliveryID)
	ev.channel, ev.status, ev.reason = append(ev.channel, string(e.Channel)), append(ev.status, string(e.Status)), append(ev.reason, e.Reason)
	ev.attempt, ev.provider, ev.detail = append(ev.attempt, int32(e.Attempt)), append(ev.provider, e.Provider), append(ev.detail, e.Detail)
	ev.at = append(ev.at, storeutil.Time(e.At))
}

// queueTransition adds t as one statement whose command tag says whether
// the guard held: the UPDATE's RETURNING feeds the INSERT of the event (of
// the steps and then the event), so the events exist exactly when the
// update happened. The events' missing ids and channel come from the
// delivery row.
func queueTransition(batch *pgx.Batch, t herald.Transition) {
	due := t.DueAt
	if due.IsZero() {
		due = t.Event.At
	}
	var ifAttempts *int32
	if t.IfAttempts != nil {
		v := int32(*t.IfAttempts)
		ifAttempts = &v
	}
	args := []any{t.AppID, t.DeliveryID, string(t.To), t.Reason, int32(t.Attempts), t.Provider, t.ProviderMessageID,
		storeutil.Time(due), storeutil.Time(t.Event.At), storeutil.GuardStatuses(t.From), ifAttempts}
	if len(t.Steps) > 0 {
		var ev events
		for _, e := range t.Steps {
			ev.add(e)
		}
		ev.add(t.Event)
		batch.Queue(updateDelivery+`
			INSERT INTO events (app_id, notification_id, delivery_id, channel, status, reason, attempt, provider, detail, at)
			SELECT COALESCE(NULLIF(e.a, ''), u.app_id), COALESCE(NULLIF(e.n, ''), u.notification_id),
				COALESCE(NULLIF(e.d, ''), u.id), COALESCE(NULLIF(e.c, ''), u.channel), e.s, e.r, e.t, e.p, e.x, e.w
			FROM u, unnest($12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::int[],
				$19::text[], $20::text[], $21::timestamptz[]) WITH ORDINALITY AS e (a, n, d, c, s, r, t, p, x, w, o)
			ORDER BY e.o`, append(args, ev.args()...)...)
		return
	}
	e := t.Event
	batch.Queue(updateDelivery+`
		INSERT INTO events (app_id, notification_id, delivery_id, channel, status, reason, attempt, provider, detail, at)
		SELECT COALESCE(NULLIF($12::text, ''), u.app_id), COALESCE(NULLIF($13::text, ''), u.notification_id),
			COALESCE(NULLIF($14::text, ''), u.id), COALESCE(NULLIF($15::text, ''), u.channel),
			$16, $17, $18, $19, $20, $21
		FROM u`,
		append(args, e.AppID, e.NotificationID, e.DeliveryID, string(e.Channel),
			string(e.Status), e.Reason, int32(e.Attempt), e.Provider, e.Detail, storeutil.Time(e.At))...)
}

// updateDelivery is the guarded UPDATE of a transition, $1 to $11 of
// queueTransition's statements, as the CTE u that their INSERTs read.
const updateDelivery = `WITH u AS (
		UPDATE deliveries SET status = $3, reason = $4,
			attempts = CASE WHEN $5::int = 0 THEN attempts ELSE $5::int END,
			provider = CASE WHEN $6::text = '' THEN provider ELSE $6::text END,
			provider_message_id = CASE WHEN $7::text = '' THEN provider_message_id ELSE $7::text END,
			due_at = $8, updated_at = $9
		WHERE app_id = $1 AND id = $2 AND status = ANY($10::text[]) AND ($11::int IS NULL OR attempts = $11::int)
		RETURNING app_id, id, notification_id, channel
	)`

const notificationColumns = `app_id, id, category, priority, content, created_at`

func scanNotification(row pgx.Row) (herald.Notification, error) {
	var n herald.Notification
	var priority string
	var content []byte
	if err := row.Scan(&n.AppID, &n.ID, &n.Category, &priority, &content, &n.CreatedAt); err != nil {
		return herald.Notification{}, err
	}
	if err := storeutil.DecodeContent(content, &n); err != nil {
		return herald.Notification{}, err
	}
	n.Priority, n.CreatedAt = herald.Priority(priority), n.CreatedAt.UTC()
	return n, nil
}

// GetNotification returns the notification. CodeNotFound when the app has none with this id.
func (s *Store) GetNotification(ctx context.Context, appID, id string) (herald.Notification, error) {
	n, err := scanNotification(s.pool.QueryRow(ctx, `SELECT `+notificationColumns+` FROM notifications
		WHERE app_id = $1 AND id = $2`, appID, id))
	if err != nil {
		return herald.Notification{}, wrap(err, "get notification %q of app %q", id, appID)
	}
	return n, nil
}

// ListNotifications returns the app's notifications newest first (by id:
// UUIDv7 ids are time-ordered), one page at a time.
func (s *Store) ListNotifications(ctx context.Context, appID string, f herald.NotificationFilter) ([]herald.Notification, string, error) {
	limit := storeutil.Limit(f.Limit)
	args := []any{appID}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	q := `SELECT ` + notificationColumns + ` FROM notifications n WHERE n.app_id = $1`
	if f.Cursor != "" {
		after, err := storeutil.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, "", wrap(err, "list notifications of app %q", appID)
		}
		q += ` AND n.id < ` + arg(after)
	}
	if !f.Since.IsZero() {
		q += ` AND n.created_at >= ` + arg(storeutil.Time(f.Since))
	}
	if f.UserID != "" || f.Status != "" || f.Channel != "" {
		q += ` AND EXISTS (SELECT 1 FROM deliveries d WHERE d.app_id = n.app_id AND d.notification_id = n.id`
		if f.UserID != "" {
			q += ` AND d.user_id = ` + arg(f.UserID)
		}
		if f.Status != "" {
			q += ` AND d.status = ` + arg(string(f.Status))
		}
		if f.Channel != "" {
			q += ` AND d.channel = ` + arg(string(f.Channel))
		}
		q += `)`
	}
	q += ` ORDER BY n.id DESC LIMIT ` + arg(limit+1)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", wrap(err, "list notifications of app %q", appID)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (herald.Notification, error) { return scanNotification(r) })
	if err != nil {
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

func scanDelivery(row pgx.Row) (herald.Delivery, error) {
	var d herald.Delivery
	var channel, priority, platform, status string
	if err := row.Scan(&d.AppID, &d.ID, &d.NotificationID, &d.UserID, &channel, &priority, &d.Address, &d.DeviceID,
		&platform, &status, &d.Reason, &d.Provider, &d.ProviderMessageID, &d.Attempts, &d.NextAttemptAt,
		&d.CreatedAt, &d.UpdatedAt); err != nil {
		return herald.Delivery{}, err
	}
	d.Channel, d.Priority, d.Platform, d.Status = herald.Channel(channel), herald.Priority(priority), herald.Platform(platform), herald.Status(status)
	d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = d.NextAttemptAt.UTC(), d.CreatedAt.UTC(), d.UpdatedAt.UTC()
	return d, nil
}

func (s *Store) deliveries(ctx context.Context, q string, args ...any) ([]herald.Delivery, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (herald.Delivery, error) { return scanDelivery(r) })
}

// ListDeadLetters returns the app's dead deliveries newest first, one page
// at a time, each with its events; the page's events are one query.
func (s *Store) ListDeadLetters(ctx context.Context, appID string, f herald.DeadLetterFilter) ([]herald.DeadLetter, string, error) {
	limit := storeutil.Limit(f.Limit)
	args := []any{appID}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	// status = 'dead' reads exactly as in the partial index deliveries_dead.
	q := `SELECT ` + deliveryColumns + ` FROM deliveries WHERE app_id = $1 AND status = 'dead'`
	if f.Cursor != "" {
		after, err := storeutil.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, "", wrap(err, "list dead letters of app %q", appID)
		}
		q += ` AND id < ` + arg(after)
	}
	if f.Channel != "" {
		q += ` AND channel = ` + arg(string(f.Channel))
	}
	q += ` ORDER BY id DESC LIMIT ` + arg(limit+1)
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
	nids := make([]string, len(ds))
	for i, d := range ds {
		nids[i] = d.NotificationID
	}
	rows, err := s.pool.Query(ctx, `SELECT app_id, notification_id, delivery_id, channel, status, reason, attempt,
		provider, detail, at FROM events WHERE app_id = $1 AND notification_id = ANY($2::text[]) ORDER BY seq`, appID, nids)
	if err != nil {
		return nil, "", wrap(err, "list dead letters of app %q: events", appID)
	}
	evs, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return nil, "", wrap(err, "list dead letters of app %q: events", appID)
	}
	return storeutil.DeadLetters(ds, evs), next, nil
}

func scanEvent(r pgx.CollectableRow) (herald.Event, error) {
	var e herald.Event
	var channel, status string
	err := r.Scan(&e.AppID, &e.NotificationID, &e.DeliveryID, &channel, &status, &e.Reason, &e.Attempt,
		&e.Provider, &e.Detail, &e.At)
	e.Channel, e.Status, e.At = herald.Channel(channel), herald.Status(status), e.At.UTC()
	return e, err
}

// ListDeliveries returns the notification's deliveries in creation order.
func (s *Store) ListDeliveries(ctx context.Context, appID, notificationID string) ([]herald.Delivery, error) {
	out, err := s.deliveries(ctx, `SELECT `+deliveryColumns+` FROM deliveries WHERE app_id = $1 AND notification_id = $2
		ORDER BY created_at, id`, appID, notificationID)
	return out, wrap(err, "list deliveries of notification %q of app %q", notificationID, appID)
}

// GetDelivery returns one delivery. CodeNotFound when absent.
func (s *Store) GetDelivery(ctx context.Context, appID, id string) (herald.Delivery, error) {
	d, err := scanDelivery(s.pool.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM deliveries WHERE app_id = $1 AND id = $2`, appID, id))
	if err != nil {
		return herald.Delivery{}, wrap(err, "get delivery %q of app %q", id, appID)
	}
	return d, nil
}

// GetDeliveryWork returns a delivery with its notification and its user's
// preferences, in one query (one round trip instead of three).
func (s *Store) GetDeliveryWork(ctx context.Context, appID, id string) (herald.DeliveryWork, error) {
	var w herald.DeliveryWork
	var nID, category, nPriority *string
	var content, doc []byte
	var nCreated *time.Time
	var hasUser bool
	d, err := scanDelivery(moreColumns{s.pool.QueryRow(ctx, `SELECT `+storeutil.Qualified("d", deliveryColumns)+`,
			n.id, n.category, n.priority, n.content, n.created_at, u.id IS NOT NULL, p.doc
		FROM deliveries d
		LEFT JOIN notifications n ON n.app_id = d.app_id AND n.id = d.notification_id
		LEFT JOIN users u ON u.app_id = d.app_id AND u.id = d.user_id
		LEFT JOIN preferences p ON p.app_id = d.app_id AND p.user_id = d.user_id
		WHERE d.app_id = $1 AND d.id = $2`, appID, id),
		[]any{&nID, &category, &nPriority, &content, &nCreated, &hasUser, &doc}})
	if err != nil {
		return herald.DeliveryWork{}, wrap(err, "get delivery %q of app %q to send", id, appID)
	}
	w.Delivery = d
	if nID == nil {
		return herald.DeliveryWork{}, wrap(fmt.Errorf("its notification %q is missing", d.NotificationID), "get delivery %q of app %q to send", id, appID)
	}
	w.Notification = herald.Notification{AppID: appID, ID: *nID, Category: *category, Priority: herald.Priority(*nPriority),
		CreatedAt: nCreated.UTC()}
	if err := storeutil.DecodeContent(content, &w.Notification); err != nil {
		return herald.DeliveryWork{}, wrap(err, "get delivery %q of app %q to send", id, appID)
	}
	w.UserGone = d.UserID != "" && !hasUser
	if len(doc) > 0 && hasUser {
		if err := json.Unmarshal(doc, &w.Preferences); err != nil {
			return herald.DeliveryWork{}, wrap(err, "get delivery %q of app %q to send", id, appID)
		}
	}
	return w, nil
}

// moreColumns scans a row into the destinations a scan function gives it,
// then into its own.
type moreColumns struct {
	row  pgx.Row
	more []any
}

func (m moreColumns) Scan(dest ...any) error { return m.row.Scan(append(dest, m.more...)...) }

// DeliveryByProviderMessage returns the delivery, of any app, that provider
// accepted under providerMessageID. CodeNotFound when none.
func (s *Store) DeliveryByProviderMessage(ctx context.Context, provider, providerMessageID string) (herald.Delivery, error) {
	if providerMessageID == "" {
		return herald.Delivery{}, wrap(pgx.ErrNoRows, "delivery of %s message %q", provider, providerMessageID)
	}
	d, err := scanDelivery(s.pool.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM deliveries
		WHERE provider_message_id = $1 AND provider_message_id <> '' AND provider = $2 LIMIT 1`, providerMessageID, provider))
	if err != nil {
		return herald.Delivery{}, wrap(err, "delivery of %s message %q", provider, providerMessageID)
	}
	return d, nil
}

// ListEvents returns the notification's events in the order they were written.
func (s *Store) ListEvents(ctx context.Context, appID, notificationID string) ([]herald.Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT app_id, notification_id, delivery_id, channel, status, reason, attempt,
		provider, detail, at FROM events WHERE app_id = $1 AND notification_id = $2 ORDER BY seq`, appID, notificationID)
	if err != nil {
		return nil, wrap(err, "list events of notification %q of app %q", notificationID, appID)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (herald.Event, error) {
		var e herald.Event
		var channel, status string
		err := r.Scan(&e.AppID, &e.NotificationID, &e.DeliveryID, &channel, &status, &e.Reason, &e.Attempt,
			&e.Provider, &e.Detail, &e.At)
		e.Channel, e.Status, e.At = herald.Channel(channel), herald.Status(status), e.At.UTC()
		return e, err
	})
	return out, wrap(err, "list events of notification %q of app %q", notificationID, appID)
}

// GetIdempotency returns the stored answer for key. CodeNotFound when none.
func (s *Store) GetIdempotency(ctx context.Context, appID, key string) (herald.Idempotency, error) {
	k := herald.Idempotency{AppID: appID, Key: key}
	var response *string
	err := s.pool.QueryRow(ctx, `SELECT request_hash, notification_id, response::text, created_at FROM idempotency
		WHERE app_id = $1 AND key = $2`, appID, key).Scan(&k.RequestHash, &k.NotificationID, &response, &k.CreatedAt)
	if err != nil {
		return herald.Idempotency{}, wrap(err, "get idempotency key %q of app %q", key, appID)
	}
	if response != nil {
		k.Response = json.RawMessage(*response)
	}
	k.CreatedAt = k.CreatedAt.UTC()
	return k, nil
}

// StaleDeliveries returns up to limit deliveries of any app still to be
// sent whose due time is before the given time, oldest due first.
func (s *Store) StaleDeliveries(ctx context.Context, staleBefore, retryBefore time.Time, limit int) ([]herald.Delivery, error) {
	if limit <= 0 {
		limit = storeutil.DefaultStaleLimit
	}
	// A literal status list, so that the planner can prove the partial
	// index deliveries_due applies.
	out, err := s.deliveries(ctx, `SELECT `+deliveryColumns+` FROM deliveries
		WHERE status IN ('accepted', 'queued', 'scheduled', 'sending') AND due_at < GREATEST($1::timestamptz, $2::timestamptz)
		AND (status IN ('queued', 'scheduled') AND due_at < $2 OR status IN ('accepted', 'sending') AND due_at < $1)
		ORDER BY due_at LIMIT $3`, storeutil.Time(staleBefore), storeutil.Time(retryBefore), limit)
	return out, wrap(err, "stale deliveries before %s, retries before %s", staleBefore, retryBefore)
}

// DeleteIdempotencyBefore deletes up to limit idempotency records of any
// app created before before, oldest first, and reports how many.
func (s *Store) DeleteIdempotencyBefore(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM idempotency WHERE (app_id, key) IN
		(SELECT app_id, key FROM idempotency WHERE created_at < $1 ORDER BY created_at LIMIT $2)`,
		storeutil.Time(before), limit)
	if err != nil {
		return 0, wrap(err, "delete idempotency records before %s", before)
	}
	return int(tag.RowsAffected()), nil
}

// PostponeDeliveries moves the due time of the given deliveries (any app)
// to until, without changing their status or timeline. It skips rows that
// another transaction holds (a worker recording a claim or an outcome,
// which moves the due time itself), so the reconciler never waits for a
// worker nor deadlocks with one; it locks the others in delivery id order.
func (s *Store) PostponeDeliveries(ctx context.Context, ids []string, ifDueBefore, until time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `UPDATE deliveries d SET due_at = $1 FROM (
			SELECT id FROM deliveries WHERE id = ANY($2::text[])
				AND status IN ('accepted', 'queued', 'scheduled', 'sending') AND due_at < $3
			ORDER BY id FOR UPDATE SKIP LOCKED) l
		WHERE d.id = l.id AND d.status IN ('accepted', 'queued', 'scheduled', 'sending') AND d.due_at < $3`,
		storeutil.Time(until), ids, storeutil.Time(ifDueBefore))
	return wrap(err, "postpone %d deliveries", len(ids))
}

// AcquireLease takes or renews the lease for holder until now+ttl and
// reports whether holder has it: it succeeds when the lease is free,
// expired, or already holder's.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	now = storeutil.Time(now)
	tag, err := s.pool.Exec(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
		WHERE leases.holder = EXCLUDED.holder OR leases.expires_at <= $4`,
		name, holder, now.Add(ttl), now)
	if err != nil {
		return false, wrap(err, "acquire lease %q for %q", name, holder)
	}
	return tag.RowsAffected() == 1, nil
}

// ReleaseLease gives the lease up if holder has it.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM leases WHERE name = $1 AND holder = $2`, name, holder)
	return wrap(err, "release lease %q for %q", name, holder)
}
