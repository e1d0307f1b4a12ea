package tmpl_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/sqlite"
	"github.com/heraldhq/herald/internal/tmpl"
)

// openStore opens one SQLite file twice, as two processes sharing a data
// dir would.
func openStores(t *testing.T) (*sqlite.Store, *sqlite.Store) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "herald.db")
	var out [2]*sqlite.Store
	for i := range out {
		s, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		out[i] = s
	}
	return out[0], out[1]
}

func smsBody(t *testing.T, c *tmpl.Compiled) string {
	t.Helper()
	r, err := c.Render("", map[string]any{"name": "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	return r.SMS.Body
}

// TestSaveInOneProcessIsSeenByTheNextLoadInAnother: the cache holds
// immutable versions, and every unpinned load asks the store for the
// latest number, so nothing stale survives a save elsewhere.
func TestSaveInOneProcessIsSeenByTheNextLoadInAnother(t *testing.T) {
	ctx := t.Context()
	s1, s2 := openStores(t)
	app := herald.App{ID: "app-1", Name: "a", CreatedAt: time.Now()}
	if err := s1.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	one, two := tmpl.NewLibrary(s1, tmpl.Options{}), tmpl.NewLibrary(s2, tmpl.Options{})

	save := func(lib *tmpl.Library, text string) herald.Template {
		t.Helper()
		tm, err := lib.Save(ctx, herald.Template{AppID: app.ID, Name: "welcome",
			TemplateParts: herald.TemplateParts{SMS: &herald.SMSParts{Text: text}}})
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	load := func(lib *tmpl.Library, version int) *tmpl.Compiled {
		t.Helper()
		c, err := lib.Load(ctx, app.ID, "welcome", version)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	if v := save(one, "v1 {{.name}}").Version; v != 1 {
		t.Fatalf("first save is version %d", v)
	}
	if got := smsBody(t, load(two, 0)); got != "v1 Ada" {
		t.Fatalf("process two renders %q", got)
	}
	save(one, "v2 {{.name}}")
	if c := load(two, 0); c.Version != 2 || smsBody(t, c) != "v2 Ada" {
		t.Errorf("after a save in process one, process two loads version %d: %q", c.Version, smsBody(t, c))
	}
	if got := smsBody(t, load(two, 1)); got != "v1 Ada" {
		t.Errorf("pinned version 1 renders %q", got)
	}

	// A delete is seen at once too, and a later save gets a new number:
	// the cached version 2 can never come back as something else.
	if err := s1.DeleteTemplate(ctx, app.ID, "welcome"); err != nil {
		t.Fatal(err)
	}
	for _, v := range []int{0, 1, 2} { // version 2 is cached in process two
		if _, err := two.Load(ctx, app.ID, "welcome", v); !herald.IsNotFound(err) {
			t.Errorf("load of version %d after delete: %v, want not found", v, err)
		}
	}
	if v := save(one, "v3 {{.name}}").Version; v != 3 {
		t.Errorf("save after delete is version %d, want 3", v)
	}
	if c := load(two, 0); c.Version != 3 || smsBody(t, c) != "v3 Ada" {
		t.Errorf("process two loads version %d after the re-save", c.Version)
	}
}

func TestSaveRefusesABadTemplateAndStoresNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := openStores(t)
	lib := tmpl.NewLibrary(s, tmpl.Options{})
	_, err := lib.Save(ctx, herald.Template{AppID: "a", Name: "bad",
		TemplateParts: herald.TemplateParts{SMS: &herald.SMSParts{Text: "{{.x"}}})
	if herald.ErrorCode(err) != herald.CodeInvalid {
		t.Fatalf("save: %v, want CodeInvalid", err)
	}
	if _, err := s.LatestTemplateVersion(ctx, "a", "bad"); !herald.IsNotFound(err) {
		t.Errorf("a refused template was stored: %v", err)
	}
	_, err = lib.Save(ctx, herald.Template{AppID: "a", Name: "no/slash",
		TemplateParts: herald.TemplateParts{SMS: &herald.SMSParts{Text: "x"}}})
	if herald.ErrorCode(err) != herald.CodeInvalid {
		t.Errorf("save of a bad name: %v, want CodeInvalid", err)
	}
}

// countingStore counts the reads of template versions, to see the cache work.
type countingStore struct {
	*sqlite.Store
	gets int
}

func (s *countingStore) GetTemplate(ctx context.Context, appID, name string, version int) (herald.Template, error) {
	s.gets++
	return s.Store.GetTemplate(ctx, appID, name, version)
}

func TestCacheKeepsVersionsWithinItsBounds(t *testing.T) {
	ctx := t.Context()
	s, _ := openStores(t)
	store := &countingStore{Store: s}
	writer := tmpl.NewLibrary(s, tmpl.Options{})
	for _, name := range []string{"a", "b", "c"} {
		if _, err := writer.Save(ctx, herald.Template{AppID: "app", Name: name,
			TemplateParts: herald.TemplateParts{SMS: &herald.SMSParts{Text: strings.Repeat("x", 600)}}}); err != nil {
			t.Fatal(err)
		}
	}
	lib := tmpl.NewLibrary(store, tmpl.Options{CacheBytes: 1300}) // room for two of them
	load := func(name string) {
		t.Helper()
		if _, err := lib.Load(ctx, "app", name, 0); err != nil {
			t.Fatal(err)
		}
	}
	load("a")
	load("b")
	load("a")
	if store.gets != 2 {
		t.Fatalf("%d version reads for a, b, a: want 2 (a cached)", store.gets)
	}
	load("c") // evicts b, the least recently used
	load("a")
	if store.gets != 3 {
		t.Errorf("%d version reads after c, a: want 3 (a still cached)", store.gets)
	}
	load("b")
	if store.gets != 4 {
		t.Errorf("%d version reads after b: want 4 (b was evicted)", store.gets)
	}
}
