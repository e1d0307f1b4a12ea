package deliver_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/deliver"
	"github.com/heraldhq/herald/internal/journal"
)

// dyingLog passes the claim of an attempt through to the log writer and
// ends the calling goroutine, as a kill -9 would end the process, at the
// write of its outcome: the provider has answered, the log never hears of it.
type dyingLog struct {
	log  deliver.LogWriter
	died chan struct{}
}

func (l *dyingLog) Write(ctx context.Context, b *herald.Batch) error {
	for _, t := range b.Transitions {
		// Only an outcome requires the attempt to be sending; a claim does not.
		if len(t.From) == 1 && t.From[0] == herald.StatusSending {
			close(l.died)
			runtime.Goexit()
		}
	}
	return l.log.Write(ctx, b)
}

// dieAfterSend runs one Handle that dies before its outcome is committed.
func dieAfterSend(t *testing.T, f *fixture, o deliver.Options, d herald.Delivery) {
	t.Helper()
	dl := &dyingLog{log: f.writer, died: make(chan struct{})}
	w := deliver.New(f.store, dl, oneProvider{f.provider}, o)
	go w.Handle(context.Background(), f.appID, d.ID, f.now)
	select {
	case <-dl.died:
	case <-time.After(30 * time.Second):
		t.Fatal("the worker never reached its outcome write")
	}
	if n := len(f.smtpd.Messages()); n != 1 {
		t.Fatalf("the provider got %d messages before the crash, want 1", n)
	}
	if got := f.get(t, d.ID); got.Status != herald.StatusSending || got.Attempts != 1 {
		t.Fatalf("after the crash the delivery is %s attempt %d, want sending attempt 1", got.Status, got.Attempts)
	}
}

// The process dies after the provider accepted a message and before the
// outcome was committed. With the journal the next start commits the
// outcome from it and the provider is not called again; without it, the
// delivery is taken over once its claim runs out and sent a second time,
// flagged possible_duplicate.
func TestJournalRecoversAnOutcomeLostToACrash(t *testing.T) {
	for _, withJournal := range []bool{true, false} {
		name := map[bool]string{true: "journal", false: "no journal"}[withJournal]
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, deliver.Options{})
			d := f.accepted(t)
			dir := t.TempDir()
			var o deliver.Options
			o.Now = func() time.Time { return f.now }
			var j *journal.Journal
			if withJournal {
				var err error
				if j, err = journal.Open(dir, journal.Options{}); err != nil {
					t.Fatal(err)
				}
				o.Journal = j
			}
			dieAfterSend(t, f, o, d)

			// The next start: a fresh journal over the same directory (the
			// dead process's lock went with it), recovery, then the queue's
			// copy of the message comes back after the claim ran out.
			restarted := deliver.New(f.store, f.writer, oneProvider{f.provider}, deliver.Options{Now: func() time.Time { return f.now }})
			if withJournal {
				_ = j.Close() // what the crash leaves: the pending record's segment stays
				j2, err := journal.Open(dir, journal.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = j2.Close() })
				applied := 0
				n, err := j2.Recover(func(rec []byte) error {
					ok, err := restarted.Recover(context.Background(), rec)
					if ok {
						applied++
					}
					return err
				})
				if err != nil || n != 1 || applied != 1 {
					t.Fatalf("Recover: %d records, %d applied, %v; want 1, 1, nil", n, applied, err)
				}
				if got := f.get(t, d.ID); got.Status != herald.StatusSent || got.Attempts != 1 || got.ProviderMessageID == "" || got.Provider != "smtp" {
					t.Fatalf("after recovery the delivery is %+v, want sent by smtp on attempt 1 with its message id", got)
				}
			}
			f.now = f.now.Add(time.Hour)
			if v := restarted.Handle(context.Background(), f.appID, d.ID, f.now); v.Action != deliver.Ack {
				t.Fatalf("the redelivered message: verdict %+v, want ack", v)
			}

			sends := len(f.smtpd.Messages())
			evs, err := f.store.ListEvents(context.Background(), f.appID, d.NotificationID)
			if err != nil {
				t.Fatal(err)
			}
			flagged := false
			for _, e := range evs {
				flagged = flagged || strings.HasPrefix(e.Detail, deliver.PossibleDuplicate)
			}
			if withJournal && (sends != 1 || flagged) {
				t.Errorf("with the journal: %d sends, flagged %v; want 1 send, not flagged", sends, flagged)
			}
			if !withJournal && (sends != 2 || !flagged) {
				t.Errorf("without the journal: %d sends, flagged %v; want 2 sends, flagged", sends, flagged)
			}
		})
	}
}

// A record whose attempt the log has moved past (the outcome was committed,
// or another worker took the delivery over) is dropped, not applied.
func TestRecoverDropsWhatTheLogMovedPast(t *testing.T) {
	f := newFixture(t, deliver.Options{})
	d := f.accepted(t)
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dieAfterSend(t, f, deliver.Options{Now: func() time.Time { return f.now }, Journal: j}, d)
	// Another worker takes over once the claim ran out: attempt 2 is sent.
	f.now = f.now.Add(time.Hour)
	if v := f.worker.Handle(context.Background(), f.appID, d.ID, f.now); v.Action != deliver.Ack {
		t.Fatalf("take-over verdict %+v", v)
	}
	_ = j.Close()
	j2, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = j2.Close() }()
	n, err := j2.Recover(func(rec []byte) error {
		ok, err := f.worker.Recover(context.Background(), rec)
		if ok {
			return errors.New("a stale record was applied")
		}
		return err
	})
	if err != nil || n != 1 {
		t.Fatalf("Recover: %d, %v", n, err)
	}
	if got := f.get(t, d.ID); got.Status != herald.StatusSent || got.Attempts != 2 {
		t.Fatalf("delivery %+v, want sent on attempt 2", got)
	}
}
