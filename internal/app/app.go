// Package app is Herald's composition root: it turns a Config into running
// roles, choosing the embedded or the scaled-out implementation of each
// part. It is the only package that imports concrete adapters.
package app

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/accept"
	"github.com/heraldhq/herald/internal/apikey"
	"github.com/heraldhq/herald/internal/buildinfo"
	"github.com/heraldhq/herald/internal/deadletter"
	"github.com/heraldhq/herald/internal/deliver"
	"github.com/heraldhq/herald/internal/fallback"
	"github.com/heraldhq/herald/internal/fanout"
	"github.com/heraldhq/herald/internal/httpapi"
	"github.com/heraldhq/herald/internal/journal"
	"github.com/heraldhq/herald/internal/logwriter"
	"github.com/heraldhq/herald/internal/natsembed"
	"github.com/heraldhq/herald/internal/provider/sendgrid"
	"github.com/heraldhq/herald/internal/queue"
	"github.com/heraldhq/herald/internal/reconcile"
	"github.com/heraldhq/herald/internal/secret"
	"github.com/heraldhq/herald/internal/store/postgres"
	"github.com/heraldhq/herald/internal/store/sqlite"
	"github.com/heraldhq/herald/internal/tmpl"
	"github.com/heraldhq/herald/internal/track"
	"github.com/heraldhq/herald/internal/tracklink"
	"github.com/heraldhq/herald/internal/webhook"
)

// App is one Herald process: the roles of its Config over one store and one queue.
type App struct {
	cfg    Config
	logger *slog.Logger
	reg    *prometheus.Registry

	store      herald.Store
	ns         *natsembed.Server
	nc         *nats.Conn
	q          *queue.Queue
	writer     *logwriter.Writer
	consumers  []*queue.Consumer
	reconciler *reconcile.Reconciler
	fanout     *fanout.Runner
	// fanoutAfterCommit is handed to the fan-out runner (SetFanoutAfterCommit).
	fanoutAfterCommit func(*herald.FanoutPage) error
	webhooks          *webhook.Service
	watch             *queueWatch
	gate              *storeGate
	journal           *journal.Journal
	limiter           herald.RateLimiter
	redis             *redis.Client
	srv               *http.Server
	ln                net.Listener
	serveErr          chan error

	stopOnce sync.Once
	stopErr  error
	now      func() time.Time
	version  string // set at build time; see SetVersion
}

// New returns an App for cfg, which must have passed Validate.
func New(cfg Config, logger *slog.Logger) *App {
	return &App{cfg: cfg, logger: logger, reg: prometheus.NewRegistry(), now: time.Now}
}

// SetVersion sets the version herald_build_info reports, the one the
// binary was given at build time (cli.Version); without it the main
// module's recorded version, or "dev". Call it before Start.
func (a *App) SetVersion(v string) { a.version = v }

// SetClock replaces the clock that decides when things are due — the
// sender's, the workers', the scheduler's and the API's — so that a test
// can stand at any hour of a user's day. Call it before Start.
func (a *App) SetClock(now func() time.Time) { a.now = now }

// SetFanoutAfterCommit sets a function the fan-out runner calls after each
// page commits and before it queues the page; an error stops the runner
// there, as a crash would, until the process restarts. Tests crash
// fan-outs mid-way with it. Call it before Start.
func (a *App) SetFanoutAfterCommit(f func(*herald.FanoutPage) error) { a.fanoutAfterCommit = f }

// OpenStore opens the configured store (Postgres when DatabaseURL is set,
// else SQLite in the data dir) and applies pending migrations.
func OpenStore(ctx context.Context, cfg Config) (herald.Store, error) {
	if cfg.DatabaseURL != "" {
		s, err := postgres.Open(ctx, cfg.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		return s, nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	s, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, "herald.db"))
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	return s, nil
}

// secretKey is the deployment's key: HERALD_SECRET_KEY, or the data
// dir's key file on a single machine.
func (a *App) secretKey() ([]byte, error) { return loadSecretKey(a.cfg) }

func loadSecretKey(cfg Config) ([]byte, error) {
	var key []byte
	var err error
	switch {
	case cfg.SecretKey != "":
		key, err = secret.ParseKey(cfg.SecretKey)
	case cfg.DatabaseURL != "":
		return nil, errors.New("HERALD_SECRET_KEY is required with a shared database: every process must seal provider credentials with the same key")
	default:
		key, err = secret.LoadOrCreateKey(filepath.Join(cfg.DataDir, "secret.key"))
	}
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	return key, nil
}

// KeyHasher returns the hasher API keys are stored and looked up by: an
// HMAC under a key derived from the deployment's secret key, so a copy of
// the database alone cannot test guessed keys. Every process with the same
// configuration gets the same one.
func KeyHasher(cfg Config) (*apikey.Hasher, error) {
	key, err := loadSecretKey(cfg)
	if err != nil {
		return nil, err
	}
	return apikey.NewHasher(secret.Derive(key, "api-keys"))
}

// Start opens the store and the queue and starts the configured roles.
// On error, what was started is stopped again.
func (a *App) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = a.Stop(sctx)
		}
	}()
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := newMetrics(a.reg)
	registerBuildInfo(a.reg, buildinfo.Read(a.version))

	if w := postgresTLSWarning(a.cfg.DatabaseURL); w != "" {
		a.logger.Warn(w, "database_url", redactURLs(a.cfg.DatabaseURL))
	}
	if natsPlainRemote(a.cfg) {
		a.logger.Warn("the external NATS connection is not TLS: set nats-tls and nats-ca-file (or use tls:// URLs) where the network is not private",
			"nats_url", redactURLs(a.cfg.NATSURL))
	}
	if a.store, err = OpenStore(ctx, a.cfg); err != nil {
		return err
	}
	key, err := a.secretKey()
	if err != nil {
		return err
	}
	if err = a.connectQueue(ctx, key); err != nil {
		return err
	}
	if err = a.openLimiter(ctx); err != nil {
		return err
	}
	a.watch = newQueueWatch(a.q, a.cfg.QueueHighWater, a.cfg.MaxQueueLag, a.logger, a.reg)
	if err = a.watch.Start(ctx); err != nil {
		return err
	}
	box, err := secret.NewBox(key)
	if err != nil {
		return err
	}
	// Tracking links are signed with a key of their own, derived from the
	// deployment's, so every process makes and accepts the same links.
	links, err := tracklink.New(a.cfg.PublicURL, secret.Derive(key, "tracking-links"))
	if err != nil {
		return err
	}
	hasher, err := KeyHasher(a.cfg)
	if err != nil {
		return err
	}
	a.writer = logwriter.New(a.store, logwriter.Options{Linger: a.cfg.CommitLinger, Interval: a.cfg.CommitInterval, Publisher: a.q, Logger: a.logger,
		Observe: m.observeCommit, Dropped: m.publishSkipped.Inc})
	if err = a.writer.Start(ctx); err != nil {
		return err
	}
	// One pool for the HTTP providers: HTTP/2 where the provider speaks it,
	// and enough idle HTTP/1.1 connections per host for every worker.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.ForceAttemptHTTP2 = true
	transport.MaxIdleConnsPerHost = a.cfg.Workers * 2
	env := herald.ProviderEnv{Logger: a.logger, HTTPClient: &http.Client{Timeout: a.cfg.SendTimeout, Transport: transport},
		PublicURL: a.cfg.PublicURL, Now: time.Now, AllowPrivateTargets: a.cfg.AllowPrivateTargets}
	providers := newProviderSet(a.store, box, env)
	providers.onState, providers.cooldown = m.observeCircuit, a.cfg.ProviderCooldown
	a.reg.MustRegister(newStateCollector(a.q, providers.openCircuits, a.logger))

	if a.cfg.HasRole(RoleWorker) {
		if err = a.startWorkers(ctx, providers, links, m); err != nil {
			return err
		}
	}
	if a.cfg.HasRole(RoleTracker) {
		tr, err := track.New(a.logger, a.reg)
		if err != nil {
			return err
		}
		c, err := a.q.ConsumeEvents(ctx, "tracker", tr.HandleEvents)
		if err != nil {
			return fmt.Errorf("start tracker: %w", err)
		}
		a.consumers = append(a.consumers, c)
	}
	// Outbound webhooks: the API keeps the endpoints; the tracker role
	// matches events through a durable consumer of its own and runs the
	// sender, whose pending posts wait in the store.
	if a.webhooks, err = webhook.New(a.store, box, webhook.Options{Logger: a.logger, Registerer: a.reg,
		AllowPrivateTargets: a.cfg.AllowPrivateTargets,
		Attempts:            a.cfg.WebhookRetryAttempts, RetryBase: a.cfg.WebhookRetryBase}); err != nil {
		return err
	}
	if a.cfg.HasRole(RoleTracker) {
		if err = a.webhooks.Start(ctx); err != nil {
			return err
		}
		c, err := a.q.ConsumeEvents(ctx, "webhooks", a.webhooks.HandleEvents)
		if err != nil {
			return fmt.Errorf("start webhook matching: %w", err)
		}
		a.consumers = append(a.consumers, c)
	}
	if a.cfg.HasRole(RoleScheduler) {
		host, _ := os.Hostname()
		a.reconciler = reconcile.New(a.store, a.q, reconcile.Options{Logger: a.logger,
			Holder:   fmt.Sprintf("%s/%d/%d", host, os.Getpid(), time.Now().UnixNano()),
			Interval: a.cfg.ReconcileInterval, After: a.cfg.ReconcileAfter, Observe: m.observeReconcile, Now: a.now,
			IdempotencyRetention: a.cfg.IdempotencyRetention, Swept: sweptCounter(a.reg), Backlog: a.q,
			Windows: fallback.NewWindows(a.store, a.writer, deliver.NewCaps(a.store, a.limiter).Critical, a.logger),
			Log:     a.writer})
		if err = a.reconciler.Start(ctx); err != nil {
			return err
		}
	}
	if a.cfg.HasRole(RoleScheduler) {
		host, _ := os.Hostname()
		// The fan-out resolves subscribers as acceptance resolves users.
		resolver := accept.New(a.store, a.writer, accept.Options{Logger: a.logger, Now: a.now,
			Critical: deliver.NewCaps(a.store, a.limiter).Critical})
		a.fanout = fanout.New(a.store, resolver, a.q, fanout.Options{Logger: a.logger, Now: a.now,
			Holder:      fmt.Sprintf("%s/%d/%d", host, os.Getpid(), time.Now().UnixNano()),
			AfterCommit: a.fanoutAfterCommit, Observe: m.observeFanout})
		if err = a.fanout.Start(ctx); err != nil {
			return err
		}
	}

	var sender herald.Sender
	var replayer httpapi.Replayer
	var templates httpapi.TemplateLibrary
	if a.cfg.HasRole(RoleAPI) {
		lib := tmpl.NewLibrary(a.store, tmpl.Options{})
		templates = lib
		sender = accept.New(a.store, a.writer, accept.Options{Logger: a.logger,
			Limits: accept.Limits{MaxRecipients: a.cfg.MaxRecipients}, OnAccepted: m.observeAccepted, Now: a.now,
			Admit: a.watch.admit, Templates: lib, Critical: deliver.NewCaps(a.store, a.limiter).Critical,
			OnFanout: a.nudgeFanout, OnSMSBudget: a.smsBudgetAlert(m)})
		replayer = deadletter.New(a.store, a.writer, a.q, deadletter.Options{Logger: a.logger})
	}
	// Provider callbacks and tracking hits are the tracker's input, served
	// by processes of the api or tracker role.
	var tracking httpapi.Tracking
	if a.cfg.HasRole(RoleAPI) || a.cfg.HasRole(RoleTracker) {
		tracking = track.NewCallbacks(a.store, a.writer, providers, links,
			track.CallbackOptions{Logger: a.logger, VerifyEvents: sendgrid.VerifyEvents,
				Critical: deliver.NewCaps(a.store, a.limiter).Critical})
	}
	handler := httpapi.NewServer(httpapi.Deps{Logger: a.logger, Store: a.store, Sender: sender, Providers: providers, DeadLetters: replayer,
		Webhooks: a.webhooks, Tracking: tracking, PublicURL: a.cfg.PublicURL, Templates: templates,
		Limiter: a.limiter, KeyLimit: a.cfg.APIKeyLimit(),
		AuthFailureLimit: a.cfg.AuthFailureLimit(), TrustForwardedFor: a.cfg.TrustForwardedFor, KeyHasher: hasher,
		AllowPrivateTargets: a.cfg.AllowPrivateTargets,
		Ready:               a.ready, Registry: a.reg, Now: a.now, MaxBodyBytes: a.cfg.MaxBodyBytes, MaxRecipients: a.cfg.MaxRecipients,
		Pprof: a.cfg.Pprof, MaxSendsInFlight: sendsInFlight(a.cfg.MaxSendsInFlight), OnSendShed: a.watch.shed,
		Admit: a.watch.door, Monitor: &monitor{q: a.q, providers: providers, sends: a.cfg.HasRole(RoleWorker), now: time.Now}})
	if !a.cfg.HasRole(RoleAPI) {
		handler = opsOnly(handler, tracking != nil)
	}
	if a.cfg.Pprof {
		a.logger.Warn("the Go profiler is served at /debug/pprof/ without authentication (--pprof): keep the HTTP listener private",
			"addr", a.cfg.HTTPAddr)
	}
	a.ln, err = net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.HTTPAddr, err)
	}
	a.srv = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn)}
	a.serveErr = make(chan error, 1)
	go func() { a.serveErr <- a.srv.Serve(a.ln) }()
	a.logger.Info("herald started", "addr", a.ln.Addr().String(), "roles", a.cfg.RoleList(),
		"store", storeKind(a.cfg), "queue", queueKind(a.cfg))
	return nil
}

// smsBudgetAlert reports a reservation against an app's daily SMS budget:
// the metrics, and at the day's first crossing of 80% and of the budget
// the webhook events sms.budget_warning and sms.budget_exceeded.
func (a *App) smsBudgetAlert(m *metrics) func(context.Context, herald.App, string, herald.SMSBudgetUse) {
	return func(ctx context.Context, app herald.App, day string, use herald.SMSBudgetUse) {
		m.smsBudgetRatio.WithLabelValues(app.ID).Set(float64(use.Used) / float64(app.SMSDailyBudget))
		if !use.Reserved {
			m.smsRefused.Inc()
		}
		data := webhook.SMSBudgetData{AppID: app.ID, Day: day, Used: use.Used, Budget: app.SMSDailyBudget}
		for _, ev := range []struct {
			on         bool
			level, typ string
		}{{use.Warn, "warning", webhook.EventSMSBudgetWarning}, {use.Exceeded, "exceeded", webhook.EventSMSBudgetExceeded}} {
			if !ev.on {
				continue
			}
			m.smsAlerts.WithLabelValues(ev.level).Inc()
			a.logger.Warn("an app's daily SMS budget is "+map[string]string{"warning": "80% used", "exceeded": "used up"}[ev.level],
				"app", app.ID, "day", day, "used", use.Used, "budget", app.SMSDailyBudget)
			// The request goes on: a lost alert must not refuse a send. The
			// store already recorded the crossing, so it is not retried.
			if err := a.webhooks.NotifySMSBudget(context.WithoutCancel(ctx), ev.typ, data); err != nil {
				a.logger.Error("storing the SMS budget webhook failed", "app", app.ID, "event", ev.typ, "err", err)
			}
		}
	}
}

// nudgeFanout starts a pass of this process's fan-out runner, if it has
// one, after a notification to a topic was accepted.
func (a *App) nudgeFanout() {
	if a.fanout != nil {
		a.fanout.Nudge()
	}
}

// sendsInFlight maps --max-sends-in-flight to httpapi.Deps, where 0 means the default.
func sendsInFlight(n int) int {
	if n == 0 {
		return -1 // no limit
	}
	return n
}

// opsOnly limits a process without the api role to health, readiness,
// metrics, provider callbacks and tracking links when it is a tracker,
// and, when the API handler mounts it (--pprof), the profiler.
func opsOnly(h http.Handler, tracking bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/healthz", r.URL.Path == "/readyz", r.URL.Path == "/metrics",
			strings.HasPrefix(r.URL.Path, "/debug/pprof/"):
			h.ServeHTTP(w, r)
		case tracking && (strings.HasPrefix(r.URL.Path, "/hooks/") || strings.HasPrefix(r.URL.Path, "/t/") ||
			strings.HasPrefix(r.URL.Path, "/u/")):
			// A tracker process takes provider callbacks and tracking hits.
			h.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

func storeKind(c Config) string {
	if c.DatabaseURL != "" {
		return "postgres"
	}
	return "sqlite"
}

func queueKind(c Config) string {
	if c.NATSURL != "" {
		return "external-jetstream"
	}
	return "embedded-jetstream"
}

func (a *App) connectQueue(ctx context.Context, key []byte) error {
	if a.cfg.NATSURL == "" {
		return a.startEmbeddedQueue(ctx, key)
	}
	security, err := natsSecurity(a.cfg)
	if err != nil {
		return fmt.Errorf("connect to NATS: %w", err)
	}
	a.nc, err = nats.Connect(a.cfg.NATSURL, append([]nats.Option{nats.Name("herald"), nats.MaxReconnects(-1),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			a.logger.Warn("nats error", "err", err)
		})}, security...)...)
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w%s", redactURLs(a.cfg.NATSURL), err, natsHint(err))
	}
	return a.openQueue(ctx)
}

// queueStartWait is how long a start waits for JetStream to take the
// streams and consumers: a cluster still electing its leaders times the
// requests out, and exiting would only hand the wait to a supervisor.
const queueStartWait = 60 * time.Second

func (a *App) openQueue(ctx context.Context) error {
	giveUp := time.Now().Add(queueStartWait)
	for delay := 250 * time.Millisecond; ; delay = min(2*delay, 4*time.Second) {
		q, err := queue.Open(ctx, a.nc, queue.Options{Namespace: a.cfg.NATSPrefix, Replicas: a.cfg.NATSReplicas,
			AckWait: a.cfg.AckWait, Logger: a.logger,
			NotifyMaxMsgs: a.cfg.QueueMaxMsgs, NotifyMaxBytes: a.cfg.QueueMaxBytes})
		if err == nil {
			a.q = q
			return nil
		}
		if herald.ErrorCode(err) != herald.CodeUnavailable || time.Now().Add(delay).After(giveUp) {
			return fmt.Errorf("open queue: %w", err)
		}
		a.logger.Warn("JetStream is not answering yet; trying again", "in", delay, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("open queue: %w", err)
		case <-time.After(delay):
		}
	}
}

// startEmbeddedQueue starts the embedded server and opens the queue. When
// the JetStream store is too damaged for either, it is moved aside and the
// queue starts empty: the notification log, not the queue, is the durable
// record, and the reconciler republishes every unfinished delivery from
// it. Refusing to start would deliver nothing.
func (a *App) startEmbeddedQueue(ctx context.Context, key []byte) error {
	dir := filepath.Join(a.cfg.DataDir, "jetstream")
	o := natsembed.Options{StoreDir: dir, Logger: a.logger, Cipher: a.cfg.NATSStoreCipher}
	if o.Cipher != "" && o.Cipher != "none" {
		// A key of its own, derived from the deployment's: the store is
		// readable only with HERALD_SECRET_KEY (or the data dir's key file).
		o.Key = hex.EncodeToString(secret.Derive(key, "jetstream-store"))
	}
	err := a.tryEmbeddedQueue(ctx, o)
	if err == nil || herald.ErrorCode(err) != herald.CodeInternal || ctx.Err() != nil {
		return err
	}
	aside := fmt.Sprintf("%s.damaged-%s", dir, time.Now().UTC().Format("20060102T150405Z"))
	a.logger.Error("the JetStream store is damaged: moving it aside and starting with an empty queue; "+
		"unfinished deliveries are republished from the notification log after --reconcile-after",
		"store", dir, "moved_to", aside, "err", err)
	a.closeEmbeddedQueue(ctx)
	if rerr := os.Rename(dir, aside); rerr != nil {
		return fmt.Errorf("move the damaged JetStream store aside: %w (after: %w)", rerr, err)
	}
	return a.tryEmbeddedQueue(ctx, o)
}

func (a *App) tryEmbeddedQueue(ctx context.Context, o natsembed.Options) error {
	var err error
	a.ns, err = natsembed.Start(ctx, o)
	if err != nil {
		return fmt.Errorf("start embedded NATS: %w", err)
	}
	if a.nc, err = a.ns.Connect(); err != nil {
		return fmt.Errorf("connect to embedded NATS: %w", err)
	}
	return a.openQueue(ctx)
}

// closeEmbeddedQueue undoes a failed tryEmbeddedQueue.
func (a *App) closeEmbeddedQueue(ctx context.Context) {
	if a.nc != nil {
		a.nc.Close()
		a.nc = nil
	}
	if a.ns != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := a.ns.Stop(sctx); err != nil {
			a.logger.Warn("stopping the embedded NATS server on a damaged store", "err", err)
		}
		a.ns = nil
	}
}

func (a *App) startWorkers(ctx context.Context, providers *providerSet, links *tracklink.Links, m *metrics) error {
	o := deliver.Options{Logger: a.logger, SendTimeout: a.cfg.SendTimeout, Now: a.now,
		Schedules: a.cfg.RetrySchedules(), Observe: m.observeSend, OnDead: m.observeDead, Links: links,
		Caps: a.newCaps()}
	// Critical categories are not held by quiet hours and their email
	// carries no List-Unsubscribe; they are still held to frequency caps.
	o.Critical = o.Caps.Critical
	if a.journal = a.openJournal(); a.journal != nil {
		o.Journal = a.journal
	}
	w := deliver.New(a.store, a.writer, providers, o)
	if err := a.recoverJournal(ctx, w); err != nil {
		return err
	}
	a.gate = newStoreGate(a.logger, a.reg)
	handle := func(ctx context.Context, d *queue.Delivery) {
		a.gate.wait(ctx)
		v := w.Handle(ctx, d.AppID, d.DeliveryID, d.StoredAt)
		if v.StoreFailed {
			// No claim without the store, hence no send; pause everyone
			// rather than cycle the backlog through failed reads. Only a
			// store failure asks: a failing provider must not pause the
			// other channels' workers.
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if err := a.store.Ping(pctx); err != nil {
				v.Delay = max(v.Delay, a.gate.trip())
			}
			cancel()
		} else {
			a.gate.ok()
		}
		var err error
		switch v.Action {
		case deliver.Ack:
			err = d.Ack(ctx)
		case deliver.Retry:
			err = d.NakWithDelay(v.Delay)
		case deliver.Drop:
			err = d.Term()
		}
		if err != nil {
			// The message comes back after AckWait; the log decides what happens then.
			a.logger.Warn("answering the queue failed", "delivery", d.DeliveryID, "err", err)
		}
	}
	for _, c := range herald.AllChannels() {
		for _, p := range []herald.Priority{herald.PriorityHigh, herald.PriorityNormal} {
			cons, err := a.q.ConsumeJobs(ctx, c, p, a.cfg.Workers, handle)
			if err != nil {
				return fmt.Errorf("start %s/%s workers: %w", c, p, err)
			}
			a.consumers = append(a.consumers, cons)
		}
	}
	return nil
}

func (a *App) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := a.store.Ping(ctx); err != nil {
		return &herald.Error{Code: herald.CodeUnavailable, Message: "the store does not answer", Err: err}
	}
	if err := a.q.Ping(ctx); err != nil {
		return &herald.Error{Code: herald.CodeUnavailable, Message: "the queue does not answer", Err: err}
	}
	return nil
}

// Addr is the address the HTTP server listens on (useful with port 0).
func (a *App) Addr() string {
	if a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

// Registry is the process's metrics registry.
func (a *App) Registry() *prometheus.Registry { return a.reg }

// Store is the process's store (for tests and the CLI).
func (a *App) Store() herald.Store { return a.store }

// Done is closed with the HTTP server's error if it stops on its own.
func (a *App) Done() <-chan error { return a.serveErr }

// Stop drains in-flight work in order — HTTP requests, then the workers'
// sends, then the log writer — and closes everything. Safe to call twice.
func (a *App) Stop(ctx context.Context) error {
	a.stopOnce.Do(func() {
		var errs []error
		if a.srv != nil {
			errs = append(errs, a.srv.Shutdown(ctx))
		}
		if a.gate != nil {
			a.gate.close()
		}
		// Stop every consumer at once: stopping them one by one would let the
		// later ones start new sends while the first ones drain.
		stopErrs := make([]error, len(a.consumers))
		var wg sync.WaitGroup
		for i, c := range a.consumers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				stopErrs[i] = c.Stop(ctx)
			}()
		}
		wg.Wait()
		errs = append(errs, stopErrs...)
		if a.webhooks != nil {
			errs = append(errs, a.webhooks.Stop(ctx))
		}
		if a.reconciler != nil {
			errs = append(errs, a.reconciler.Stop(ctx))
		}
		if a.fanout != nil {
			errs = append(errs, a.fanout.Stop(ctx))
		}
		if a.writer != nil {
			errs = append(errs, a.writer.Stop(ctx))
		}
		if a.journal != nil {
			errs = append(errs, a.journal.Close())
		}
		if a.watch != nil {
			errs = append(errs, a.watch.Stop(ctx))
		}
		if a.nc != nil {
			if err := a.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
				errs = append(errs, err)
			}
			for start := time.Now(); !a.nc.IsClosed() && time.Since(start) < 5*time.Second; {
				time.Sleep(10 * time.Millisecond)
			}
			a.nc.Close()
		}
		if a.ns != nil {
			errs = append(errs, a.ns.Stop(ctx))
		}
		if a.store != nil {
			errs = append(errs, a.store.Close())
		}
		errs = append(errs, a.closeLimiter())
		a.stopErr = errors.Join(errs...)
		if a.stopErr == nil {
			a.logger.Info("herald stopped cleanly")
		}
	})
	return a.stopErr
}

// CreateApp creates an app with a first admin key, straight in the store,
// and returns the key (shown once). The key is stored by its legacy
// SHA-256 and moved to the keyed hash on its first use; CreateAppWith
// stores it by the keyed hash at once.
func CreateApp(ctx context.Context, store herald.Store, name string, now time.Time) (herald.App, string, error) {
	return CreateAppWith(ctx, store, nil, name, now)
}

// CreateAppWith is CreateApp storing the key by hasher's keyed hash (the
// legacy SHA-256 when hasher is nil).
func CreateAppWith(ctx context.Context, store herald.Store, hasher *apikey.Hasher, name string, now time.Time) (herald.App, string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return herald.App{}, "", herald.Invalid("name", "give a name of 1 to 100 characters")
	}
	app := herald.App{ID: newID(), Name: name, CreatedAt: now.UTC().Truncate(time.Microsecond)}
	if err := store.CreateApp(ctx, app); err != nil {
		return herald.App{}, "", fmt.Errorf("create app %q: %w", name, err)
	}
	key, err := newKey(hasher, app.ID, "initial admin key", herald.ScopeAdmin, app.CreatedAt)
	if err != nil {
		return herald.App{}, "", err
	}
	if err := store.CreateKey(ctx, key.APIKey); err != nil {
		return herald.App{}, "", fmt.Errorf("create key of app %q: %w", name, err)
	}
	return app, key.secret, nil
}
