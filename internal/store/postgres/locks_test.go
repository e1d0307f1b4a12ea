package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/postgres"
	"github.com/jackc/pgx/v5"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// seedDeliveries stores one notification with n accepted email deliveries
// d000…, due at t0, and returns their ids.
func seedDeliveries(t *testing.T, s *postgres.Store, n int) []string {
	t.Helper()
	nn := herald.NewNotification{Notification: herald.Notification{AppID: "app", ID: "n1",
		Priority: herald.PriorityNormal, Content: herald.Content{Body: "hello"}, CreatedAt: t0}}
	var ids []string
	for i := range n {
		id := fmt.Sprintf("d%03d", i)
		ids = append(ids, id)
		nn.Deliveries = append(nn.Deliveries, herald.Delivery{AppID: "app", ID: id, NotificationID: "n1",
			Channel: herald.ChannelEmail, Priority: herald.PriorityNormal, Address: id + "@example.com",
			Status: herald.StatusAccepted, NextAttemptAt: t0, CreatedAt: t0, UpdatedAt: t0})
	}
	if err := s.Apply(t.Context(), &herald.Batch{Notifications: []herald.NewNotification{nn}}); err != nil {
		t.Fatalf("seed: %v", err)
	}
	return ids
}

// Batches that touch the same deliveries in opposite orders, committed at
// the same time by several writers (two workers' group commits), must not
// deadlock: Apply locks rows in one order whatever the batch's order, and
// reports each transition's Applied in the batch's own order.
func TestApplyConcurrentBatchesDoNotDeadlock(t *testing.T) {
	t.Parallel()
	s := open(t, schemaURL(t))
	ids := seedDeliveries(t, s, 40)
	reversed := slices.Clone(ids)
	slices.Reverse(reversed)
	batch := func(ids []string, w, i int) *herald.Batch {
		b := &herald.Batch{}
		for _, id := range ids {
			at := t0.Add(time.Duration(w*1000+i) * time.Millisecond)
			b.Transitions = append(b.Transitions, herald.Transition{AppID: "app", DeliveryID: id,
				From: []herald.Status{herald.StatusAccepted, herald.StatusQueued}, To: herald.StatusQueued, DueAt: at,
				Event: herald.Event{Status: herald.StatusQueued, Detail: fmt.Sprintf("w%d/%d", w, i), At: at}})
		}
		return b
	}
	var wg sync.WaitGroup
	for w := range 4 {
		order := ids
		if w%2 == 1 {
			order = reversed
		}
		wg.Go(func() {
			for i := range 25 {
				b := batch(order, w, i)
				if err := s.Apply(t.Context(), b); err != nil {
					t.Errorf("writer %d, batch %d: %v", w, i, err)
					return
				}
				for j, tr := range b.Transitions {
					if !tr.Applied || tr.DeliveryID != order[j] {
						t.Errorf("writer %d, batch %d: transition %d = %s applied %v, want %s applied", w, i, j, tr.DeliveryID, tr.Applied, order[j])
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// The reconciler's postpone skips a delivery that another transaction
// holds (a worker committing its claim) instead of waiting for it, and
// postpones the others.
func TestPostponeSkipsLockedDeliveries(t *testing.T) {
	t.Parallel()
	u := schemaURL(t)
	s := open(t, u)
	ids := seedDeliveries(t, s, 3)
	conn, err := pgx.Connect(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(t.Context(), `UPDATE deliveries SET updated_at = now() WHERE id = $1`, ids[1]); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	until := t0.Add(time.Hour)
	if err := s.PostponeDeliveries(ctx, ids, t0.Add(time.Minute), until); err != nil {
		t.Fatalf("postpone with one delivery locked: %v", err)
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i, want := range []time.Time{until, t0, until} {
		d, err := s.GetDelivery(t.Context(), "app", ids[i])
		if err != nil {
			t.Fatal(err)
		}
		if !d.NextAttemptAt.Equal(want) {
			t.Errorf("%s due at %s, want %s", ids[i], d.NextAttemptAt, want)
		}
	}
}
