package app

import (
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/apikey"
	"github.com/heraldhq/herald/internal/buildinfo"
)

// metrics are the counters the roles report through their Observe hooks.
type metrics struct {
	accepted      *prometheus.CounterVec
	sends         *prometheus.CounterVec
	sendSeconds   *prometheus.HistogramVec
	commitSeconds prometheus.Histogram
	commitSize    prometheus.Histogram
	commitErrors  prometheus.Counter
	reconciled    prometheus.Counter
	// fanoutRecipients counts subscribers the fan-out wrote deliveries for.
	fanoutRecipients prometheus.Counter
	// publishSkipped counts commits whose deliveries were left to the reconciler.
	publishSkipped prometheus.Counter
	circuits       *prometheus.CounterVec
	dead           *prometheus.CounterVec
	// The SMS-pumping guard: SMS refused over an app's daily budget, the
	// budget's alerts, and the share of each app's budget used today.
	smsRefused     prometheus.Counter
	smsAlerts      *prometheus.CounterVec
	smsBudgetRatio *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_deliveries_accepted_total",
			Help: "Deliveries written to the log by the API, by channel and first status (accepted or suppressed)."},
			[]string{"channel", "status"}),
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_provider_sends_total",
			Help: "Provider calls by channel, provider kind and outcome (sent, retry, permanent, invalid_recipient)."},
			[]string{"channel", "provider", "outcome"}),
		sendSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "herald_provider_send_seconds",
			Help: "Duration of provider calls.", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)},
			[]string{"channel", "provider"}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "herald_log_commit_seconds",
			Help: "Duration of notification log group commits.", Buckets: prometheus.ExponentialBuckets(0.0002, 2, 14)}),
		commitSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "herald_log_commit_requests",
			Help: "Requests merged into one notification log commit.", Buckets: prometheus.ExponentialBuckets(1, 2, 10)}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_log_commit_errors_total",
			Help: "Failed notification log commits."}),
		reconciled: prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_reconciled_deliveries_total",
			Help: "Deliveries the reconciler republished: lost work, and retries whose time came."}),
		fanoutRecipients: prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_fanout_recipients_total",
			Help: "Topic subscribers whose deliveries the fan-out committed to the log."}),
		publishSkipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_queue_publish_skipped_total",
			Help: "Commits whose deliveries were not queued at once because the publisher was behind (the reconciler queues them)."}),
		circuits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_provider_circuit_changes_total",
			Help: "Provider circuit breakers opening (provider failing: traffic fails over to the next) and closing, by provider kind."},
			[]string{"provider", "state"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_dead_letters_total",
			Help: "Deliveries marked dead after their channel's last attempt (see GET /v1/dead-letters), by channel."},
			[]string{"channel"}),
		smsRefused: prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_sms_budget_refused_total",
			Help: "SMS deliveries refused (429) because their app's daily SMS budget was used up."}),
		smsAlerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_sms_budget_alerts_total",
			Help: "Apps whose daily SMS budget reached 80% (level=warning) or was used up (level=exceeded); once per app and day."},
			[]string{"level"}),
		smsBudgetRatio: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "herald_sms_budget_used_ratio",
			Help: "Share of the app's daily SMS budget used today (UTC), as this process last counted it."},
			[]string{"app"}),
	}
	reg.MustRegister(m.accepted, m.sends, m.sendSeconds, m.commitSeconds, m.commitSize, m.commitErrors, m.reconciled,
		m.fanoutRecipients, m.publishSkipped, m.circuits, m.dead, m.smsRefused, m.smsAlerts, m.smsBudgetRatio)
	m.smsAlerts.WithLabelValues("warning")
	m.smsAlerts.WithLabelValues("exceeded")
	for _, c := range herald.AllChannels() {
		m.dead.WithLabelValues(string(c)) // present at zero, so that increase() sees the first one
	}
	return m
}

// registerBuildInfo registers herald_build_info, the usual constant 1
// whose labels say which build runs: join it on instance to tell the
// versions of a rolling upgrade apart.
func registerBuildInfo(reg prometheus.Registerer, info buildinfo.Info) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_build_info",
		Help:        "Always 1; the labels are the version, VCS revision and Go version of the running binary.",
		ConstLabels: prometheus.Labels{"version": info.Version, "revision": info.Revision, "goversion": info.GoVersion}})
	g.Set(1)
	reg.MustRegister(g)
}

func (m *metrics) observeAccepted(c herald.Channel, s herald.Status) {
	m.accepted.WithLabelValues(string(c), string(s)).Inc()
}

func (m *metrics) observeSend(c herald.Channel, provider string, o herald.OutcomeKind, took time.Duration) {
	m.sends.WithLabelValues(string(c), provider, o.String()).Inc()
	m.sendSeconds.WithLabelValues(string(c), provider).Observe(took.Seconds())
}

func (m *metrics) observeCommit(n int, took time.Duration, err error) {
	if err != nil {
		m.commitErrors.Inc()
		return
	}
	m.commitSeconds.Observe(took.Seconds())
	m.commitSize.Observe(float64(n))
}

func (m *metrics) observeDead(c herald.Channel) { m.dead.WithLabelValues(string(c)).Inc() }

func (m *metrics) observeReconcile(n int) { m.reconciled.Add(float64(n)) }

func (m *metrics) observeFanout(users, _ int) { m.fanoutRecipients.Add(float64(users)) }

func (m *metrics) observeCircuit(kind string, open bool) {
	state := "closed"
	if open {
		state = "open"
	}
	m.circuits.WithLabelValues(kind, state).Inc()
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

type newAPIKey struct {
	herald.APIKey
	secret string
}

func newKey(hasher *apikey.Hasher, appID, name string, scope herald.Scope, now time.Time) (newAPIKey, error) {
	secret, prefix, err := apikey.New(scope)
	if err != nil {
		return newAPIKey{}, err
	}
	hash := apikey.LegacyHash(secret)
	if hasher != nil {
		hash = hasher.Sum(secret)
	}
	return newAPIKey{APIKey: herald.APIKey{ID: newID(), AppID: appID, Name: name, Scope: scope, Prefix: prefix,
		Hash: hash, CreatedAt: now}, secret: secret}, nil
}
