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
// the writer starts over from the file's beginning, so the file stops
// growing. The test passes once the file has not grown for a whole second
// of commits, past the limit; a machine too busy to let the checkpoint
// loop run shows as a longer wait, not a failure, within the deadline.
func TestWALStaysBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	s := open(t, path)
	const limit = 1 << 20
	sqlite.SetWALRestartBytes(s, limit)
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
	defer func() {
		close(stop)
		<-readerDone
	}()
	walSize := func() int64 {
		st, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	const window, deadline = time.Second, 30 * time.Second
	start := time.Now()
	windowStart, windowSize, commits := start, walSize(), 0
	var sizes []int64
	for {
		batch := make([]herald.NewNotification, 64)
		for i := range batch {
			batch[i] = newNotification(app)
		}
		if err := s.Apply(t.Context(), &herald.Batch{Notifications: batch}); err != nil {
			t.Fatal(err)
		}
		commits++
		if time.Since(windowStart) < window {
			continue
		}
		size := walSize()
		sizes = append(sizes, size)
		if size > limit && size <= windowSize && commits >= 10 {
			return // a second of commits, and the file did not grow
		}
		if time.Since(start) > deadline {
			t.Fatalf("the WAL grew in every second of commits for %v: sizes %v", deadline, sizes)
		}
		windowStart, windowSize, commits = time.Now(), size, 0
	}
}
