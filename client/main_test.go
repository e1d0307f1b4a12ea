package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/heraldhq/herald/client"
	"github.com/heraldhq/herald/internal/app"
)

// heraldURL and apiKey are those of the Herald TestMain runs in process:
// SQLite and embedded NATS on a temporary data dir, HTTP on a free
// loopback port, and the log provider on email and SMS so that a send is
// sent. The examples read them.
var heraldURL, apiKey string

func TestMain(m *testing.M) {
	os.Exit(runWithHerald(m))
}

func runWithHerald(m *testing.M) int {
	dir, err := os.MkdirTemp("", "herald-client-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	cfg := app.Defaults()
	cfg.DataDir, cfg.HTTPAddr, cfg.LogLevel = dir, "127.0.0.1:0", "error"
	cfg.Workers, cfg.SendTimeout, cfg.RetryBackoff = 2, 2*time.Second, 50*time.Millisecond
	cfg.AllowPrivateTargets = true
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := app.New(cfg, slog.New(slog.DiscardHandler))
	if err := a.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "start herald:", err)
		return 1
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "stop herald:", err)
		}
	}()
	_, key, err := app.CreateApp(ctx, a.Store(), "examples", time.Now())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	heraldURL, apiKey = "http://"+a.Addr(), key
	c := client.New(heraldURL, apiKey)
	for _, ch := range []string{"email", "sms"} {
		if _, err := c.PutProviders(ctx, ch, []client.ProviderEntry{{Kind: "log"}}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return m.Run()
}
