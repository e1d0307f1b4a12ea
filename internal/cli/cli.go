// Package cli is Herald's command line: one FlagSet per verb, and Main,
// which owns signals, configuration and shutdown so that tests can run
// the whole program in process.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/heraldhq/herald/internal/app"
)

const usage = `Herald: a self-hostable, multi-channel notification system.

Usage:
  herald serve [flags]              run Herald (API, workers, tracker, scheduler) on the embedded default
  herald migrate [flags]            apply database migrations and exit
  herald apps create NAME [--json]  create an app and print its first admin key (shown once)
  herald apps show | set --default-locale TAG    show or change the app of the API key
  herald send --to USER_ID --body TEXT [--wait]  send a notification (--email, --phone, --topic, --template…)
  herald status NOTIFICATION_ID [--watch]        each delivery's timeline: time, channel, status, provider
  herald keys list | create NAME | revoke ID | rotate ID    the app's API keys
  herald users import FILE.csv [--json]          create or update users from a CSV (--url, --api-key)
  herald dlq list [--channel C] [--json]        list dead deliveries of a running Herald (--url, --api-key)
  herald dlq replay DELIVERY_ID... | --all      send dead deliveries again, with a fresh budget of attempts
  herald bench [--embedded] [flags]  load Herald and report throughput, latency, errors, CPU and memory
  herald bench sink [flags]         fake APNs, FCM, Twilio, SendGrid and SMTP endpoints for load tests
  herald completion bash|zsh|fish   print a shell completion script
  herald version                    print the version

Every flag has a HERALD_* environment twin; "herald serve -h" lists them.
The verbs that call a running Herald take --url (HERALD_URL, default
http://127.0.0.1:8080), --api-key (HERALD_API_KEY) and --json for scripts.
`

// Version is set at build time with -ldflags "-X github.com/heraldhq/herald/internal/cli.Version=…".
var Version = "dev"

// Main runs the command in args and returns the process exit code.
func Main(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], getenv, stderr)
	case "migrate":
		err = migrate(ctx, args[1:], getenv, stdout, stderr)
	case "apps":
		err = apps(ctx, args[1:], getenv, stdout, stderr)
	case "dlq":
		err = dlq(ctx, args[1:], getenv, stdout, stderr)
	case "users":
		err = users(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "send":
		err = send(ctx, args[1:], getenv, stdout, stderr)
	case "status":
		err = status(ctx, args[1:], getenv, stdout, stderr)
	case "keys":
		err = keys(ctx, args[1:], getenv, stdout, stderr)
	case "completion":
		err = completion(args[1:], stdout)
	case "bench":
		err = benchCmd(ctx, args[1:], getenv, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "herald", Version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "herald: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		var u usageError
		if errors.As(err, &u) {
			fmt.Fprintf(stderr, "herald: %v\n", err)
			return 2
		}
		fmt.Fprintf(stderr, "herald: %v\n", err)
		return 1
	}
	return 0
}

type usageError struct{ error }

// loadConfig parses the common flags of verbs that open the store or run roles.
func loadConfig(name string, args []string, getenv func(string) string, stderr io.Writer, extra func(*flag.FlagSet)) (app.Config, *flag.FlagSet, error) {
	cfg := app.Defaults()
	fs := flag.NewFlagSet("herald "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := cfg.Bind(fs, getenv); err != nil {
		return cfg, fs, usageError{err}
	}
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, fs, err
		}
		return cfg, fs, usageError{err}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := cfg.LoadFile(setByEnvOrFlag(set, getenv)); err != nil {
		return cfg, fs, usageError{err}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fs, usageError{err}
	}
	return cfg, fs, nil
}

// setByEnvOrFlag marks settings given on the command line or in the
// environment, which win over the config file.
func setByEnvOrFlag(set map[string]bool, getenv func(string) string) map[string]bool {
	for _, line := range app.Defaults().Redacted() {
		name := strings.SplitN(line, "=", 2)[0]
		if getenv("HERALD_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))) != "" {
			set[name] = true
		}
	}
	return set
}

func newLogger(cfg app.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, _, err := loadConfig("serve", args, getenv, stderr, nil)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stderr)
	logger.Info("configuration", "settings", strings.Join(cfg.Redacted(), " "))

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	a := app.New(cfg, logger)
	if err := a.Start(ctx); err != nil {
		return err
	}
	var serveErr error
	select {
	case <-ctx.Done():
		logger.Info("stopping: draining in-flight work", "timeout", cfg.ShutdownTimeout)
	case serveErr = <-a.Done():
		logger.Error("HTTP server stopped", "err", serveErr)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	return errors.Join(serveErr, a.Stop(sctx))
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, _, err := loadConfig("migrate", args, getenv, stderr, nil)
	if err != nil {
		return err
	}
	s, err := app.OpenStore(ctx, cfg) // opening applies pending migrations
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}

func apps(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "show" || args[0] == "set") {
		return appsRemote(ctx, args, getenv, stdout, stderr)
	}
	if len(args) == 0 || args[0] != "create" {
		return usageError{errors.New(appsRemoteUsage)}
	}
	var asJSON bool
	cfg, fs, err := loadConfig("apps create", reorder(args[1:]), getenv, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print {\"app_id\", \"api_key\"} as JSON")
	})
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("usage: herald apps create NAME [--json] [--data-dir D]")}
	}
	hasher, err := app.KeyHasher(cfg)
	if err != nil {
		return err
	}
	s, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	created, key, err := app.CreateAppWith(ctx, s, hasher, fs.Arg(0), time.Now())
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(map[string]string{"app_id": created.ID, "api_key": key})
	}
	fmt.Fprintf(stdout, "Created app %q (%s).\nAdmin API key (shown once, store it now):\n  %s\n", created.Name, created.ID, key)
	return nil
}

// reorder moves flags before positional arguments, so that
// "apps create NAME --json" parses like "apps create --json NAME".
func reorder(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") && a != "-" {
			flags = append(flags, a)
			if !strings.Contains(a, "=") && a != "--json" && a != "-json" && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}
