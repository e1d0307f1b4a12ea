package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/heraldhq/herald/internal/bench"
	"github.com/heraldhq/herald/internal/bench/ceiling"
	"github.com/heraldhq/herald/internal/bench/sink"
)

const benchUsage = `Usage:
  herald bench --embedded (--concurrency N | --rate N) (--duration D | --count N) [flags]
  herald bench --url U[,U2…] --api-key K --sink-url https://127.0.0.1:PORT --sink-ca sink-ca.pem [flags]
  herald bench --ceilings [--database-url URL] [--ceilings-duration 5s]
  herald bench sink --addr 127.0.0.1:PORT [--smtp-addr 127.0.0.1:PORT] [--latency 5ms] [--jitter 2ms] [--error-rate 0.01] [--ca-out sink-ca.pem]

herald bench sends notifications and reports accepted/s, delivered/s (from
the sink's counts), accept and accept-to-provider latency percentiles,
errors by kind, and the Herald process's CPU seconds and peak RSS.
--embedded starts Herald in this process on the embedded default (a
temporary data dir unless --data-dir is given; every serve flag applies)
with a sink of its own as every provider. Against a running Herald, give
--sink-url and --sink-ca of a "herald bench sink" on the same machine (its
clock is the bench's) to set the app's providers to it and create users
(an admin key is needed), and --pid to read that Herald's CPU and memory.

--ceilings first measures this machine without Herald (a bare net/http
server, bare JetStream publish and consume, bare SQLite inserts in 500-row
transactions, and PostgreSQL COPY with --database-url) and reports Herald's
figures as shares of them; alone, it prints only the ceilings.

herald bench sink answers as APNs, FCM (and its token endpoint), Twilio
and SendGrid on one HTTPS address and as SMTP on another, with the given
latency and error rate. Its CA goes to --ca-out: Herald's ca_pem trusts
it. It is also a Web Push service with one subscription (GET
/push/subscription) whose messages it checks and decrypts, so /arrivals
shows each push's plaintext and each email's subject (docs/quickstart.md
uses it as the receiver). GET /stats, /arrivals?since=N and /metrics on the HTTPS address tell
what arrived and when; any other push server can be measured the same way
by pointing its provider URLs at the sink.
`

func benchCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "sink" {
		return benchSink(ctx, args[1:], stdout, stderr)
	}
	var (
		url, apiKey, mix, plot, profile, sinkURL, sinkCA, sinkSMTP, emailKind string
		embedded, asJSON, noSetup, ceilings                                   bool
		rate, errorRate                                                       float64
		concurrency, count, recipients, users, pid                            int
		duration, wait, latency, jitter, ceilingsFor                          time.Duration
	)
	cfg, fs, err := loadConfig("bench", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.Usage = func() { fmt.Fprint(stderr, benchUsage, "\nFlags:\n"); fs.PrintDefaults() }
		fs.StringVar(&url, "url", getenv("HERALD_URL"), "base URL of a running Herald, or several separated by commas (API processes of one deployment: requests go to each in turn) (env HERALD_URL)")
		fs.StringVar(&apiKey, "api-key", getenv("HERALD_API_KEY"), "an admin API key of the app to load (env HERALD_API_KEY)")
		fs.BoolVar(&embedded, "embedded", false, "start Herald in this process, with a sink as every provider")
		fs.Float64Var(&rate, "rate", 0, "requests per second, open loop")
		fs.IntVar(&concurrency, "concurrency", 0, "requests in flight, closed loop")
		fs.DurationVar(&duration, "duration", 0, "how long to send")
		fs.IntVar(&count, "count", 0, "how many requests to send")
		fs.IntVar(&recipients, "recipients", 1, "users per request")
		fs.IntVar(&users, "users", 1000, "users to create and address in turn")
		fs.StringVar(&mix, "mix", "push=10,email=5,sms=1", "relative weight of each channel among requests")
		fs.StringVar(&profile, "profile", "", `"day": the seed mix on a compressed diurnal curve, and how long a 16M day takes`)
		fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
		fs.StringVar(&plot, "plot", "", "write throughput and latency over time to this SVG file")
		fs.IntVar(&pid, "pid", 0, "the running Herald's process id, for its CPU time and peak RSS (Linux)")
		fs.DurationVar(&wait, "wait", time.Minute, "how long to wait for deliveries after the last request")
		fs.StringVar(&sinkURL, "sink-url", "", "the HTTPS URL of a running herald bench sink")
		fs.StringVar(&sinkCA, "sink-ca", "", "the sink's CA file (its --ca-out)")
		fs.StringVar(&sinkSMTP, "sink-smtp", "", "the sink's SMTP address, if any")
		fs.BoolVar(&noSetup, "no-setup", false, "leave the app's providers and users (bench-0 … bench-N) as they are")
		fs.StringVar(&emailKind, "email-provider", "sendgrid", `the email provider set up on the sink: "sendgrid" or "smtp"`)
		fs.DurationVar(&latency, "latency", 5*time.Millisecond, "--embedded: the sink's answer latency")
		fs.DurationVar(&jitter, "jitter", 2*time.Millisecond, "--embedded: the sink's latency varies by ± this")
		fs.Float64Var(&errorRate, "error-rate", 0, "--embedded: the share of sends the sink fails")
		fs.BoolVar(&ceilings, "ceilings", false, "first measure this machine's bare HTTP, JetStream and store insert rates, and report Herald's figures as ratios of them (alone: only the ceilings)")
		fs.DurationVar(&ceilingsFor, "ceilings-duration", 5*time.Second, "how long each ceiling is measured")
	})
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))}
	}
	if ceilings && rate == 0 && concurrency == 0 && duration == 0 && count == 0 {
		// The ceilings alone, without a run.
		ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		c, err := measureCeilings(ctx, cfg.DatabaseURL, ceilingsFor, 0, nil, stderr)
		if err != nil {
			return err
		}
		rep := &bench.Report{}
		rep.AddCeilings(c)
		if asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(rep.Ceilings)
		}
		return rep.Ceilings.WriteTable(stdout)
	}
	m, err := bench.ParseMix(mix)
	if err != nil {
		return usageError{err}
	}
	opts := bench.Options{Rate: rate, Concurrency: concurrency, Duration: duration, Count: count,
		Recipients: recipients, Users: users, Mix: m, Wait: wait, EmailProvider: emailKind}
	switch profile {
	case "":
	case "day":
		opts.Mix, opts.Day = bench.SeedMix, true
		if duration <= 0 {
			return usageError{errors.New("--profile day needs --duration: the length of the compressed day")}
		}
	default:
		return usageError{fmt.Errorf("unknown profile %q (available: day)", profile)}
	}
	if err := opts.Validate(); err != nil {
		return usageError{err}
	}
	if f, ok := stderr.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			opts.Progress = stderr
		}
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	// The ceilings are measured before Herald starts, so that nothing
	// else of the run shares the machine with them.
	var figures *ceiling.Figures
	if ceilings {
		opts.Client = bench.NewClient(opts.Concurrency)
		if figures, err = measureCeilings(ctx, cfg.DatabaseURL, ceilingsFor, opts.Concurrency, opts.Client, stderr); err != nil {
			return err
		}
	}

	var target bench.Target
	var note string
	if embedded {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		set = setByEnvOrFlag(set, getenv)
		if !set["data-dir"] {
			dir, err := os.MkdirTemp("", "herald-bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			cfg.DataDir = dir
		}
		if !set["http-addr"] {
			cfg.HTTPAddr = "127.0.0.1:0"
		}
		if !set["log-level"] {
			cfg.LogLevel = "warn"
		}
		if !set["api-rate"] {
			cfg.APIRate = 0 // the load is the point: no per-key request limit
		}
		if err := cfg.Validate(); err != nil {
			return usageError{err}
		}
		logger := newLogger(cfg, stderr)
		e, err := bench.StartEmbedded(ctx, cfg, sink.Options{Latency: latency, Jitter: jitter, ErrorRate: errorRate}, logger)
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
			defer cancel()
			_ = e.Stop(sctx)
		}()
		target = e.Target()
		target.Label = "embedded (" + target.URL + ")"
		note = "--embedded: the process is Herald, the load generator and the sink together"
	} else {
		if url == "" || apiKey == "" {
			return usageError{errors.New("give --embedded, or --url and --api-key of a running Herald")}
		}
		target = bench.Target{URL: url, APIKey: apiKey}
		if sinkURL != "" {
			ca, err := os.ReadFile(sinkCA)
			if err != nil {
				return usageError{fmt.Errorf("--sink-ca: %w", err)}
			}
			target.Sink = bench.NewSinkClient(sinkURL, sinkSMTP, ca)
			target.Configure = !noSetup
		}
		if pid > 0 {
			target.Process = bench.ProcFS(pid)
		}
	}
	rep, err := bench.Run(ctx, target, opts)
	if rep == nil {
		return err
	}
	if rep.Process != nil {
		rep.Process.PID, rep.Process.Note = pid, note
		if embedded {
			rep.Process.PID = 0
		}
	}
	if figures != nil {
		rep.AddCeilings(figures)
	}
	if plot != "" {
		if perr := writePlot(plot, rep); perr != nil {
			return perr
		}
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(rep); jerr != nil {
			return jerr
		}
	} else if terr := rep.WriteTable(stdout); terr != nil {
		return terr
	}
	if errors.Is(err, context.Canceled) {
		return nil // interrupted: the report covers what ran
	}
	return err
}

// measureCeilings measures the machine's bare figures, telling stderr what
// it is doing since it takes a while.
func measureCeilings(ctx context.Context, databaseURL string, each time.Duration, concurrency int, client *http.Client, stderr io.Writer) (*ceiling.Figures, error) {
	n := 3
	if databaseURL != "" {
		n = 4
	}
	fmt.Fprintf(stderr, "measuring this machine's ceilings: %d measurements of %s each\n", n, each)
	return ceiling.Measure(ctx, ceiling.Options{Duration: each, Concurrency: concurrency, Client: client,
		DatabaseURL: databaseURL, Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
}

func writePlot(path string, rep *bench.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	if err := rep.WritePlot(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("--plot: %w", err)
	}
	return f.Close()
}

func benchSink(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("herald bench sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, benchUsage, "\nFlags:\n"); fs.PrintDefaults() }
	addr := fs.String("addr", "127.0.0.1:9443", "HTTPS address of the APNs, FCM, Twilio and SendGrid endpoints and /stats")
	smtpAddr := fs.String("smtp-addr", "127.0.0.1:2525", `SMTP address ("" for none)`)
	latency := fs.Duration("latency", 5*time.Millisecond, "added before every answer")
	jitter := fs.Duration("jitter", 2*time.Millisecond, "the latency varies uniformly by ± this")
	errorRate := fs.Float64("error-rate", 0, "the share of sends answered with an error (503, 429 with Retry-After, 500; SMTP 421, 451)")
	caOut := fs.String("ca-out", "sink-ca.pem", "file to write the sink's CA to")
	keep := fs.Int("keep", 10_000_000, "arrivals held for /arrivals (about 100 bytes each); past it the oldest half is dropped")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := sink.New(sink.Options{Addr: *addr, SMTPAddr: *smtpAddr, Latency: *latency, Jitter: *jitter,
		ErrorRate: *errorRate, Keep: *keep, Logger: logger})
	if err != nil {
		return usageError{err}
	}
	if err := os.WriteFile(*caOut, s.CAPEM(), 0o644); err != nil {
		return fmt.Errorf("--ca-out: %w", err)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := s.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "bench sink: %s (APNs, FCM, Twilio, SendGrid, Web Push at /push/subscription; /stats, /arrivals, /metrics), SMTP %s, CA %s\n",
		s.URL(), s.SMTPAddr(), *caOut)
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return s.Stop(sctx)
}
