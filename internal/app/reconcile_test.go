package app_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/internal/app"
	"github.com/heraldhq/herald/internal/natsembed"
	"github.com/heraldhq/herald/internal/provider/providertest"
)

// purgeNotify deletes every queued delivery message behind Herald's back.
func purgeNotify(t *testing.T, nc *nats.Conn, prefix string) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	name := "NOTIFY"
	if prefix != "" {
		name = prefix + "_NOTIFY"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs == 0 {
		t.Fatalf("stream %s is empty before the purge: the test would prove nothing", name)
	}
	if err := s.Purge(ctx); err != nil {
		t.Fatal(err)
	}
}

// startAPIOnly runs cfg with only the api role — nothing is delivered —
// with an app whose email goes to smtpd, and returns its key.
func startAPIOnly(t *testing.T, cfg app.Config, smtpd *providertest.SMTPServer) (*app.App, *api, string) {
	t.Helper()
	cfg.Roles = "api"
	a := start(t, cfg)
	key := newApp(t, a, "shop")
	c := newAPI(t, a, key)
	configureEmail(t, c, smtpd)
	return a, c, key
}

// TestReconcilerRedeliversDeletedMessage (embedded): a notification is
// accepted by a process without workers, its queue message is deleted, and
// a process with every role still delivers it, from the log.
func TestReconcilerRedeliversDeletedMessage(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	cfg := testConfig(t)
	a, c, key := startAPIOnly(t, cfg, smtpd)
	id := sendEmail(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// Delete the message with Herald down.
	ns, err := natsembed.Start(ctx, natsembed.Options{StoreDir: filepath.Join(cfg.DataDir, "jetstream")})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	purgeNotify(t, nc, "")
	nc.Close()
	if err := ns.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	b := start(t, cfg)
	c = newAPI(t, b, key)
	n := c.waitDone(id, 30*time.Second)
	if n.Deliveries[0].Status != "sent" {
		t.Fatalf("delivery = %+v, want sent", n.Deliveries[0])
	}
	smtpd.WaitForMessages(t, 1, 5*time.Second)
}

// TestSplitRolesReconcile (Postgres + external NATS): an api-only process
// accepts, the message is deleted from the stream, and a separate
// worker+scheduler process on the same database and cluster delivers it.
func TestSplitRolesReconcile(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	cfg := scaledConfig(t)
	apiCfg, workerCfg := cfg, cfg
	apiCfg.Roles = "api,tracker"
	workerCfg.Roles = "worker,scheduler"

	api := start(t, apiCfg)
	key := newApp(t, api, "shop")
	c := newAPI(t, api, key)
	configureEmail(t, c, smtpd)
	id := sendEmail(t, c)

	nc, err := nats.Connect(cfg.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	purgeNotify(t, nc, cfg.NATSPrefix)

	start(t, workerCfg)
	n := c.waitDone(id, 30*time.Second)
	if n.Deliveries[0].Status != "sent" {
		t.Fatalf("delivery = %+v, want sent", n.Deliveries[0])
	}
	smtpd.WaitForMessages(t, 1, 5*time.Second)

}
