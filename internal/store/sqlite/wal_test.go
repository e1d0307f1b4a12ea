package sqlite_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/sqlite"
)

// TestWALStaysBounded commits without pause while a reader keeps reading,
// as under load. A PASSIVE checkpoint alone never restarts the WAL then,
// and the file grows with every commit; with the restart above the limit,
// it stops growing once the limit is passed.
func TestWALStaysBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	s := open(t, path)
	sqlite.SetWALRestartBytes(s, 1<<20)
	app := uuid.Must(uuid.NewV7()).String()
	first := newNotification(app)
	if err := s.Apply(t.Context(), &herald.Batch{Notifications: []herald.NewNotification{first}}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.GetDelivery(t.Context(), app, first.Deliveries[0].ID); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	walSize := func() int64 {
		st, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	start := time.Now()
	var early int64
	for time.Since(start) < 4500*time.Millisecond {
		batch := make([]herald.NewNotification, 64)
		for i := range batch {
			batch[i] = newNotification(app)
		}
		if err := s.Apply(t.Context(), &herald.Batch{Notifications: batch}); err != nil {
			t.Fatal(err)
		}
		if early == 0 && time.Since(start) > 1500*time.Millisecond {
			early = walSize()
		}
	}
	close(stop)
	<-readerDone
	// Growing all along, the WAL would be about three times its size at
	// 1.5 s by 4.5 s; restarted, it is at most the limit plus what a
	// second of commits writes.
	if late := walSize(); late >= 2*early {
		t.Errorf("WAL grew from %d bytes at 1.5s to %d at 4.5s; want it bounded", early, late)
	}
}
