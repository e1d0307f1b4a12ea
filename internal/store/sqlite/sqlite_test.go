package sqlite_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/sqlite"
	"github.com/heraldhq/herald/internal/store/storetest"
)

func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) herald.Store {
		return open(t, filepath.Join(t.TempDir(), "herald.db"))
	})
}

// TestTwoProcesses opens the same file twice at once, as the CLI does while
// the server runs, and checks that both migrate, write and see each other.
func TestTwoProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	stores := make([]*sqlite.Store, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Go(func() {
			stores[i], errs[i] = sqlite.Open(t.Context(), path)
		})
	}
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Fatalf("open %d: %v", i, errs[i])
		}
		t.Cleanup(func() { _ = s.Close() })
	}

	// Both write concurrently; busy_timeout serialises them.
	ids := make([][]string, 2)
	for i, s := range stores {
		wg.Go(func() {
			for range 20 {
				a := herald.App{ID: uuid.Must(uuid.NewV7()).String(), Name: "app", CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
				if err := s.CreateApp(t.Context(), a); err != nil {
					t.Errorf("store %d: %v", i, err)
					return
				}
				ids[i] = append(ids[i], a.ID)
			}
		})
	}
	wg.Wait()
	for i := range stores {
		other := stores[1-i]
		for _, id := range ids[i] {
			if _, err := other.GetApp(t.Context(), id); err != nil {
				t.Errorf("store %d does not see app %s of store %d: %v", 1-i, id, i, err)
			}
		}
	}
	if err := stores[0].Migrate(t.Context()); err != nil {
		t.Errorf("migrating an up-to-date file: %v", err)
	}
}

func TestOpenRejectsURI(t *testing.T) {
	_, err := sqlite.Open(context.Background(), "file:x.db?mode=memory")
	if herald.ErrorCode(err) != herald.CodeInvalid {
		t.Errorf("Open(uri) error = %v, want CodeInvalid", err)
	}
}
