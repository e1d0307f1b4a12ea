package app_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/app"
)

// queueUnsent accepts one email on an API-only process (no worker takes
// it, so it waits in NOTIFY), stops the process and returns the
// notification id and the app's key.
func queueUnsent(t *testing.T, cfg app.Config) (id, key string) {
	t.Helper()
	cfg.Roles = "api"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := app.New(cfg, testLogger(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	key = newApp(t, a, "shop")
	c := newAPI(t, a, key)
	c.must(200, "PUT", "/v1/providers/email", []map[string]any{{"kind": "log"}})
	var acc struct{ ID string }
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"email": "ada@example.com"}},
		"content": map[string]any{"body": "hello", "subject": "hi"}}).decode(t, &acc)
	if err := a.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	return acc.ID, key
}

// storeHas reports whether any file under dir contains s, and how many
// bytes the files hold.
func storeHas(t *testing.T, dir, s string) (found bool, size int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		size += len(b)
		found = found || bytes.Contains(b, []byte(s))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found, size
}

// TestJetStreamStoreEncryptedAtRest: with --nats-store-cipher the embedded
// JetStream files do not hold the notification id that the queued job
// carries (without it they do, so the search can find it), and a restart
// reads the queue back: the waiting email is sent from the queue, with the
// reconciler too slow to be the one that sends it.
func TestJetStreamStoreEncryptedAtRest(t *testing.T) {
	plain := testConfig(t)
	id, _ := queueUnsent(t, plain)
	if found, _ := storeHas(t, filepath.Join(plain.DataDir, "jetstream"), id); !found {
		t.Fatalf("the plain JetStream store does not hold notification id %s: the search below proves nothing", id)
	}

	for _, cipher := range []string{"aes", "chacha"} {
		t.Run(cipher, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.NATSStoreCipher = cipher
			cfg.ReconcileAfter = time.Hour
			id, key := queueUnsent(t, cfg)
			found, size := storeHas(t, filepath.Join(cfg.DataDir, "jetstream"), id)
			if found || size == 0 {
				t.Fatalf("encrypted store (%d bytes) holds the notification id %s in plain text: %v", size, id, found)
			}
			a := start(t, cfg)
			n := newAPI(t, a, key).waitDone(id, 30*time.Second)
			if n.Deliveries[0].Status != "sent" {
				t.Errorf("after the restart the queued email is %+v, want sent", n.Deliveries[0])
			}
		})
	}
}

// TestJetStreamCipherRejectsUnknownName: an unknown cipher, and a cipher
// for an external cluster (whose servers hold their own store), are
// configuration errors.
func TestJetStreamCipherRejectsUnknownName(t *testing.T) {
	cfg := testConfig(t)
	cfg.NATSStoreCipher = "rot13"
	if err := cfg.Validate(); err == nil {
		t.Fatal("nats-store-cipher rot13 passed validation")
	}
	cfg = testConfig(t)
	cfg.NATSStoreCipher = "aes"
	cfg.NATSURL = "nats://127.0.0.1:4222"
	if err := cfg.Validate(); err == nil {
		t.Fatal("nats-store-cipher with an external NATS passed validation")
	}
}
