package bench

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"modernc.org/sqlite"

	"github.com/heraldhq/herald/internal/app"
	"github.com/heraldhq/herald/internal/bench/sink"
)

// connPragmas is what a SQLite connection of this test binary was opened with.
type connPragmas struct {
	dsn                             string
	synchronous, journal, queryOnly string
}

// opened records every SQLite connection the driver opens in this test
// binary, read by a connection hook after the DSN's pragmas are applied.
var opened struct {
	sync.Mutex
	conns []connPragmas
}

func init() {
	sqlite.RegisterConnectionHook(func(conn sqlite.ExecQuerierContext, dsn string) error {
		p := connPragmas{dsn: dsn, synchronous: pragma(conn, "synchronous"), journal: pragma(conn, "journal_mode"),
			queryOnly: pragma(conn, "query_only")}
		opened.Lock()
		opened.conns = append(opened.conns, p)
		opened.Unlock()
		return nil
	})
}

func pragma(conn sqlite.ExecQuerierContext, name string) string {
	rows, err := conn.QueryContext(context.Background(), "PRAGMA "+name, nil)
	if err != nil {
		return "error: " + err.Error()
	}
	defer rows.Close()
	v := make([]driver.Value, 1)
	if err := rows.Next(v); err != nil {
		return "error: " + err.Error()
	}
	return strings.ToLower(fmt.Sprint(v[0]))
}

// TestEmbeddedBenchIsDurable: the Herald that "herald bench --embedded"
// starts (the serve defaults, as the command leaves them, in a data dir of
// its own) writes its notification log through a SQLite connection in WAL
// mode with synchronous=FULL, so every commit is fsynced; and each 202 is
// answered only after its notification is committed: a connection of the
// test's own, opened after the 202, reads it.
func TestEmbeddedBenchIsDurable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cfg := app.Defaults()
	cfg.DataDir, cfg.HTTPAddr, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e, err := StartEmbedded(ctx, cfg, sink.Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Stop(context.WithoutCancel(ctx)) })
	target := e.Target()
	api := &apiClient{base: target.URL, key: target.APIKey, c: NewClient(4)}
	if err := setUp(ctx, api, target.Sink, 2, sink.KindSendGrid); err != nil {
		t.Fatal(err)
	}

	logFile := filepath.Join(cfg.DataDir, "herald.db")
	opened.Lock()
	var writers, all int
	for _, c := range opened.conns {
		if !strings.HasPrefix(c.dsn, logFile+"?") {
			continue
		}
		all++
		if c.synchronous != "2" { // 2 is FULL
			t.Errorf("a connection to the log has synchronous=%s, want 2 (FULL): %s", c.synchronous, c.dsn)
		}
		if c.queryOnly == "0" {
			writers++
			if c.journal != "wal" {
				t.Errorf("the log's writer connection has journal_mode=%s, want wal", c.journal)
			}
		}
	}
	opened.Unlock()
	if writers == 0 || all == 0 {
		t.Fatalf("saw %d connections to %s, %d of them writers: the hook did not see the log opened", all, logFile, writers)
	}

	reader, err := sql.Open("sqlite", logFile+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	reader.SetMaxIdleConns(0) // a fresh connection for every read
	for i := range 20 {
		body, _ := json.Marshal(map[string]any{"to": []map[string]string{{"user_id": userID(i % 2)}}, "channels": []string{"email"},
			"content": map[string]any{"subject": "Durable", "body": "Herald bench durable"}})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, target.URL+"/v1/notifications", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+target.APIKey)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusAccepted {
			t.Fatalf("send %d: %d %s", i, res.StatusCode, raw)
		}
		var acc struct{ ID string }
		if err := json.Unmarshal(raw, &acc); err != nil || acc.ID == "" {
			t.Fatalf("send %d: 202 without an id: %s", i, raw)
		}
		var n int
		if err := reader.QueryRowContext(ctx, `SELECT count(*) FROM notifications WHERE id = ?`, acc.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("send %d: notification %s answered 202 but not committed in the log", i, acc.ID)
		}
	}
}
