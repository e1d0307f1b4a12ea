package app

import (
	"flag"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/deliver"
)

// Roles a process can run.
const (
	RoleAPI       = "api"
	RoleWorker    = "worker"
	RoleTracker   = "tracker"
	RoleScheduler = "scheduler"
)

// AllRoles is what `herald serve` runs by default.
var AllRoles = []string{RoleAPI, RoleWorker, RoleTracker, RoleScheduler}

// Config is every setting of a Herald process. Each field is a flag (the
// `flag` tag), a HERALD_* environment variable (the `env` tag) and a key of
// the optional YAML config file (the flag name). Precedence: flag, then
// environment, then file, then default.
type Config struct {
	DataDir      string `flag:"data-dir" env:"HERALD_DATA_DIR" help:"directory of the embedded SQLite database, JetStream store and secret key"`
	HTTPAddr     string `flag:"http-addr" env:"HERALD_HTTP_ADDR" help:"address the HTTP API listens on"`
	PublicURL    string `flag:"public-url" env:"HERALD_PUBLIC_URL" help:"base URL the outside world reaches Herald at (default http://<http-addr>)"`
	Roles        string `flag:"roles" env:"HERALD_ROLES" help:"comma-separated roles to run: api,worker,tracker,scheduler"`
	DatabaseURL  string `flag:"database-url" env:"HERALD_DATABASE_URL" secret:"url" help:"postgres://… to use PostgreSQL instead of the embedded SQLite"`
	NATSURL      string `flag:"nats-url" env:"HERALD_NATS_URL" secret:"url" help:"nats://a:4222,nats://b:4222 to use an external JetStream cluster instead of the embedded server"`
	NATSReplicas int    `flag:"nats-replicas" env:"HERALD_NATS_REPLICAS" help:"stream replicas (default 1 embedded, 3 external)"`
	NATSPrefix   string `flag:"nats-prefix" env:"HERALD_NATS_PREFIX" help:"prefix of stream, subject and consumer names, to run several deployments on one cluster"`
	// Transport security of an external NATS (nats-url): TLS and credentials.
	NATSTLS        bool   `flag:"nats-tls" env:"HERALD_NATS_TLS" help:"require TLS to the external NATS (implied by nats-ca-file, nats-cert-file or a tls:// URL)"`
	NATSCAFile     string `flag:"nats-ca-file" env:"HERALD_NATS_CA_FILE" help:"PEM file of the CA that signed the NATS servers' certificates (default: the system's roots)"`
	NATSCertFile   string `flag:"nats-cert-file" env:"HERALD_NATS_CERT_FILE" help:"PEM client certificate for NATS servers that verify clients (with nats-key-file)"`
	NATSKeyFile    string `flag:"nats-key-file" env:"HERALD_NATS_KEY_FILE" help:"PEM private key of nats-cert-file"`
	NATSServerName string `flag:"nats-server-name" env:"HERALD_NATS_SERVER_NAME" help:"name the NATS servers' certificates must carry, when the URLs' hosts are addresses or other names"`
	NATSUser       string `flag:"nats-user" env:"HERALD_NATS_USER" help:"NATS user name (with nats-password)"`
	NATSPassword   string `flag:"nats-password" env:"HERALD_NATS_PASSWORD" secret:"all" help:"NATS password of nats-user"`
	NATSToken      string `flag:"nats-token" env:"HERALD_NATS_TOKEN" secret:"all" help:"NATS authentication token"`
	NATSCredsFile  string `flag:"nats-creds-file" env:"HERALD_NATS_CREDS_FILE" help:"NATS .creds file (user JWT and NKey seed) of decentralized auth"`
	NATSNKeyFile   string `flag:"nats-nkey-file" env:"HERALD_NATS_NKEY_FILE" help:"file holding a NATS NKey user seed (SU…)"`
	// Encryption at rest of the embedded JetStream store.
	NATSStoreCipher     string        `flag:"nats-store-cipher" env:"HERALD_NATS_STORE_CIPHER" help:"encrypt the embedded JetStream store at rest: aes or chacha (key derived from the secret key; empty or none: off)"`
	RedisURL            string        `flag:"redis-url" env:"HERALD_REDIS_URL" secret:"url" help:"redis://… for rate limits shared between processes"`
	AllowPrivateTargets bool          `flag:"allow-private-targets" env:"HERALD_ALLOW_PRIVATE_TARGETS" help:"let web push endpoints and webhook URLs reach loopback, private and link-local addresses (tests and local development)"`
	SecretKey           string        `flag:"secret-key" env:"HERALD_SECRET_KEY" secret:"all" help:"base64 32-byte key sealing provider credentials (default: a key file in the data dir)"`
	LogLevel            string        `flag:"log-level" env:"HERALD_LOG_LEVEL" help:"debug, info, warn or error"`
	LogFormat           string        `flag:"log-format" env:"HERALD_LOG_FORMAT" help:"text or json"`
	MaxBodyBytes        int64         `flag:"max-body-bytes" env:"HERALD_MAX_BODY_BYTES" help:"largest accepted request body"`
	MaxRecipients       int           `flag:"max-recipients" env:"HERALD_MAX_RECIPIENTS" help:"most recipients in one send request"`
	Workers             int           `flag:"workers" env:"HERALD_WORKERS" help:"concurrent sends per channel and priority"`
	ProviderCooldown    time.Duration `flag:"provider-cooldown" env:"HERALD_PROVIDER_COOLDOWN" help:"how long a failing provider is left alone (its circuit open) before a probe tries it again"`
	SendTimeout         time.Duration `flag:"send-timeout" env:"HERALD_SEND_TIMEOUT" help:"longest provider call"`
	MaxAttempts         int           `flag:"max-attempts" env:"HERALD_MAX_ATTEMPTS" help:"attempts before a delivery is dead, for every channel (0: each channel's own --<channel>-retry-attempts)"`
	RetryBackoff        time.Duration `flag:"retry-backoff" env:"HERALD_RETRY_BACKOFF" help:"base of the exponential retry backoff, for every channel (0: each channel's own --<channel>-retry-base)"`
	ReconcileInterval   time.Duration `flag:"reconcile-interval" env:"HERALD_RECONCILE_INTERVAL" help:"time between reconciler passes"`
	ReconcileAfter      time.Duration `flag:"reconcile-after" env:"HERALD_RECONCILE_AFTER" help:"how long a due delivery may make no progress before it is republished"`
	CommitLinger        time.Duration `flag:"commit-linger" env:"HERALD_COMMIT_LINGER" help:"how long the group commit waits for more writes"`
	CommitInterval      time.Duration `flag:"commit-interval" env:"HERALD_COMMIT_INTERVAL" help:"while the group commit is busy (its last commit merged more than one write), the shortest time between the starts of two commits; it waits up to that long for more writes (0: off)"`
	ShutdownTimeout     time.Duration `flag:"shutdown-timeout" env:"HERALD_SHUTDOWN_TIMEOUT" help:"how long a stop may drain in-flight work"`
	APIRate             float64       `flag:"api-rate" env:"HERALD_API_RATE" help:"requests per second each API key may make on average, answered 429 past it (0: no limit); shared by every process on the same --redis-url"`
	APIBurst            int           `flag:"api-burst" env:"HERALD_API_BURST" help:"most requests an API key may make in api-burst/api-rate seconds (0: twice api-rate)"`
	AuthFailures        int           `flag:"auth-failures" env:"HERALD_AUTH_FAILURES" help:"failed authentications (missing, malformed, unknown or expired API key) one client address may make per auth-failure-window; past it, its requests are answered 429 before their key is looked up (0: no limit); shared by every process on the same --redis-url"`
	AuthFailureWindow   time.Duration `flag:"auth-failure-window" env:"HERALD_AUTH_FAILURE_WINDOW" help:"the window auth-failures are counted over"`
	TrustForwardedFor   bool          `flag:"trust-forwarded-for" env:"HERALD_TRUST_FORWARDED_FOR" help:"count failed authentications by the last X-Forwarded-For address instead of the TCP peer: only behind a proxy that sets that header"`
	Pprof               bool          `flag:"pprof" env:"HERALD_PPROF" help:"serve Go's profiler at /debug/pprof/ on the HTTP listener, without authentication: only where that listener is not reachable from outside"`
	// Retries and dead letters: each channel's retry schedule (exponential
	// backoff with full jitter, never shorter than a provider's Retry-After),
	// and the queue's ack wait, which a provider call must stay well under.
	PushRetryAttempts  int           `flag:"push-retry-attempts" env:"HERALD_PUSH_RETRY_ATTEMPTS" help:"push: attempts before a delivery is dead"`
	PushRetryBase      time.Duration `flag:"push-retry-base" env:"HERALD_PUSH_RETRY_BASE" help:"push: longest wait after the first failed attempt; it doubles after each"`
	PushRetryCap       time.Duration `flag:"push-retry-cap" env:"HERALD_PUSH_RETRY_CAP" help:"push: longest wait between two attempts"`
	SMSRetryAttempts   int           `flag:"sms-retry-attempts" env:"HERALD_SMS_RETRY_ATTEMPTS" help:"sms: attempts before a delivery is dead"`
	SMSRetryBase       time.Duration `flag:"sms-retry-base" env:"HERALD_SMS_RETRY_BASE" help:"sms: longest wait after the first failed attempt; it doubles after each"`
	SMSRetryCap        time.Duration `flag:"sms-retry-cap" env:"HERALD_SMS_RETRY_CAP" help:"sms: longest wait between two attempts"`
	EmailRetryAttempts int           `flag:"email-retry-attempts" env:"HERALD_EMAIL_RETRY_ATTEMPTS" help:"email: attempts before a delivery is dead"`
	EmailRetryBase     time.Duration `flag:"email-retry-base" env:"HERALD_EMAIL_RETRY_BASE" help:"email: longest wait after the first failed attempt; it doubles after each"`
	EmailRetryCap      time.Duration `flag:"email-retry-cap" env:"HERALD_EMAIL_RETRY_CAP" help:"email: longest wait between two attempts"`
	AckWait            time.Duration `flag:"ack-wait" env:"HERALD_ACK_WAIT" help:"how long the queue waits for a worker's answer before it hands the message to another (send-timeout must be at most half of it)"`

	// Durability: idempotency retention and work-queue limits ("nothing lost, nothing twice").
	IdempotencyRetention time.Duration `flag:"idempotency-retention" env:"HERALD_IDEMPOTENCY_RETENTION" help:"how long an Idempotency-Key is remembered (at least 24h)"`
	QueueMaxMsgs         int64         `flag:"queue-max-msgs" env:"HERALD_QUEUE_MAX_MSGS" help:"most deliveries waiting in the NOTIFY stream; beyond it publishes are refused, never old messages dropped"`
	QueueMaxBytes        int64         `flag:"queue-max-bytes" env:"HERALD_QUEUE_MAX_BYTES" help:"largest NOTIFY stream in bytes (0: bounded only by the server's file store; a value reserves that much on the server)"`
	QueueHighWater       float64       `flag:"queue-high-water" env:"HERALD_QUEUE_HIGH_WATER" help:"fill ratio of NOTIFY (0-1] above which sends are answered 503 with Retry-After"`
	MaxQueueLag          time.Duration `flag:"max-queue-lag" env:"HERALD_MAX_QUEUE_LAG" help:"longest the deliveries waiting in NOTIFY may take to drain at the recent delivery rate before sends are answered 429 with Retry-After (0: off, the queue absorbs any backlog)"`
	MaxSendsInFlight     int           `flag:"max-sends-in-flight" env:"HERALD_MAX_SENDS_IN_FLIGHT" help:"most send requests accepted at once by this process; more are answered 429 with Retry-After (0: no limit)"`

	// Outbound webhooks: how long a post to an app's endpoint is retried (exponential backoff, capped at 1h).
	WebhookRetryAttempts int           `flag:"webhook-retry-attempts" env:"HERALD_WEBHOOK_RETRY_ATTEMPTS" help:"attempts of a webhook post before it is given up"`
	WebhookRetryBase     time.Duration `flag:"webhook-retry-base" env:"HERALD_WEBHOOK_RETRY_BASE" help:"wait after a webhook post's first failed attempt; it doubles after each, up to 1h"`

	// Outcome journal: provider answers kept in a local file until their outcome is committed,
	// so a crash of the process between the two does not send again (docs/RELIABILITY.md).
	JournalDir string `flag:"journal-dir" env:"HERALD_JOURNAL_DIR" help:"directory of the worker's outcome journal (default <data-dir>/journal; \"off\" disables it)"`

	ConfigFile string `flag:"config" env:"HERALD_CONFIG" help:"YAML file with any of these settings, keyed by flag name"`
}

// MinIdempotencyRetention is the shortest Idempotency-Key retention
// accepted: clients retry for up to a day.
const MinIdempotencyRetention = 24 * time.Hour

// Defaults returns the embedded-default configuration.
func Defaults() Config {
	return Config{
		DataDir:       "./herald-data",
		HTTPAddr:      "127.0.0.1:8080",
		Roles:         strings.Join(AllRoles, ","),
		LogLevel:      "info",
		LogFormat:     "text",
		MaxBodyBytes:  1 << 20,
		MaxRecipients: 1000,
		// Concurrent sends per channel and priority. A channel's rate is at
		// most its workers over a send's time (the provider's latency, and
		// the claim and outcome commits around it): at 32, push was the
		// bottleneck of herald bench --embedded with a 5 ms provider, its
		// queue growing seconds long while the other channels kept up.
		Workers:          128,
		SendTimeout:      30 * time.Second,
		ProviderCooldown: 30 * time.Second,
		// Retries and dead letters.
		PushRetryAttempts:  50,
		PushRetryBase:      time.Second,
		PushRetryCap:       18 * time.Minute,
		SMSRetryAttempts:   50,
		SMSRetryBase:       time.Second,
		SMSRetryCap:        18 * time.Minute,
		EmailRetryAttempts: 30,
		EmailRetryBase:     time.Minute,
		EmailRetryCap:      2 * time.Hour,
		AckWait:            60 * time.Second,
		// Under load a commit every 2 ms at most carries about twice the
		// requests, for 27 % less CPU per request (logwriter's
		// BenchmarkSteadyWrites at 4,000 requests/s); a request that finds
		// the writer idle does not wait.
		CommitInterval:    2 * time.Millisecond,
		ReconcileInterval: 10 * time.Second,
		ReconcileAfter:    60 * time.Second,
		ShutdownTimeout:   30 * time.Second,
		APIRate:           1000,
		APIBurst:          2000,
		// Enough for an operator pasting a key wrong a few times, far too
		// few to try keys: refused before the store is asked.
		AuthFailures:      20,
		AuthFailureWindow: time.Minute,

		WebhookRetryAttempts: 15,
		WebhookRetryBase:     5 * time.Second,

		IdempotencyRetention: MinIdempotencyRetention,
		QueueMaxMsgs:         10_000_000,
		QueueHighWater:       0.95,
		// Overload is shed with 429 rather than absorbed: by the queue's lag
		// once accepting outruns delivering for long, and at the door when
		// more sends arrive at once than the accept path can take.
		MaxQueueLag:      30 * time.Second,
		MaxSendsInFlight: 128,
	}
}

// Bind registers every field as a flag on fs, with the environment (through
// getenv) as the default, so that flags win over the environment. It fails
// on an environment variable that does not parse.
func (c *Config) Bind(fs *flag.FlagSet, getenv func(string) string) error {
	var errs []string
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, env := f.Tag.Get("flag"), f.Tag.Get("env")
		help := f.Tag.Get("help") + " (env " + env + ")"
		if s := getenv(env); s != "" {
			if err := setField(v.Field(i), s); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", env, err))
			}
		}
		fs.Var(fieldValue{v.Field(i)}, name, help)
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid environment:\n  %s", strings.Join(errs, "\n  "))
	}
	return nil
}

// LoadFile fills fields from the YAML config file, for keys not set by a flag or the environment.
func (c *Config) LoadFile(set map[string]bool) error {
	if c.ConfigFile == "" {
		return nil
	}
	raw, err := os.ReadFile(c.ConfigFile)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("config file %s: %w", c.ConfigFile, err)
	}
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	byName := map[string]int{}
	for i := range t.NumField() {
		byName[t.Field(i).Tag.Get("flag")] = i
	}
	for k, val := range m {
		i, ok := byName[k]
		if !ok {
			return fmt.Errorf("config file %s: unknown setting %q", c.ConfigFile, k)
		}
		if set[k] {
			continue
		}
		if err := setField(v.Field(i), fmt.Sprint(val)); err != nil {
			return fmt.Errorf("config file %s: %s: %w", c.ConfigFile, k, err)
		}
	}
	return nil
}

// Validate checks the configuration and fills derived defaults.
func (c *Config) Validate() error {
	var problems []string
	for _, r := range c.RoleList() {
		if !slices.Contains(AllRoles, r) {
			problems = append(problems, fmt.Sprintf("roles: unknown role %q (use %s)", r, strings.Join(AllRoles, ",")))
		}
	}
	if len(c.RoleList()) == 0 {
		problems = append(problems, "roles: at least one role is required")
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		problems = append(problems, "database-url: only postgres:// URLs are supported")
	}
	if c.DataDir == "" && (c.DatabaseURL == "" || c.NATSURL == "") {
		problems = append(problems, "data-dir: required for the embedded database or queue")
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.HTTPAddr
	} else if u, err := url.Parse(c.PublicURL); err != nil || u.Scheme == "" || u.Host == "" {
		problems = append(problems, "public-url: must be an absolute URL")
	}
	problems = append(problems, c.validateNATSSecurity()...)
	if c.NATSReplicas == 0 {
		c.NATSReplicas = 1
		if c.NATSURL != "" {
			c.NATSReplicas = 3
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		problems = append(problems, "log-level: use debug, info, warn or error")
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		problems = append(problems, "log-format: use text or json")
	}
	if c.Workers < 1 || c.MaxBodyBytes < 1024 || c.MaxRecipients < 1 {
		problems = append(problems, "workers, max-recipients must be at least 1 and max-body-bytes at least 1024")
	}
	problems = append(problems, c.validateRetries()...)
	if c.SendTimeout <= 0 || c.ProviderCooldown <= 0 || c.ReconcileInterval <= 0 || c.ReconcileAfter <= 0 || c.ShutdownTimeout <= 0 {
		problems = append(problems, "durations must be positive")
	}
	if c.CommitLinger < 0 || c.CommitInterval < 0 {
		problems = append(problems, "commit-linger, commit-interval: must not be negative")
	}
	if c.WebhookRetryAttempts < 1 || c.WebhookRetryBase <= 0 {
		problems = append(problems, "webhook-retry-attempts: must be at least 1; webhook-retry-base: must be positive")
	}
	if c.IdempotencyRetention < MinIdempotencyRetention {
		problems = append(problems, "idempotency-retention: must be at least 24h (clients may retry for a day)")
	}
	if c.QueueMaxMsgs < 1 || c.QueueMaxBytes < 0 {
		problems = append(problems, "queue-max-msgs: must be at least 1; queue-max-bytes: must not be negative")
	}
	if c.MaxQueueLag != 0 && c.MaxQueueLag < time.Second {
		problems = append(problems, "max-queue-lag: 0 (off) or at least 1s")
	}
	if c.APIRate < 0 || c.APIBurst < 0 || (c.APIRate > 0 && c.APIKeyLimit().Per <= 0) {
		problems = append(problems, "api-rate and api-burst: must not be negative (api-rate 0 turns the limit off)")
	}
	if c.AuthFailures < 0 || (c.AuthFailures > 0 && c.AuthFailureWindow <= 0) {
		problems = append(problems, "auth-failures: 0 (no limit) or more, with a positive auth-failure-window")
	}
	if c.MaxSendsInFlight < 0 {
		problems = append(problems, "max-sends-in-flight: 0 (no limit) or more")
	}
	if !(c.QueueHighWater > 0 && c.QueueHighWater <= 1) {
		problems = append(problems, "queue-high-water: must be above 0 and at most 1")
	}
	if c.DataDir != "" {
		abs, err := filepath.Abs(c.DataDir)
		if err == nil {
			c.DataDir = abs
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("invalid configuration:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

// validateNATSSecurity checks the NATS transport and store settings.
func (c *Config) validateNATSSecurity() []string {
	var problems []string
	external := c.NATSTLS || c.NATSCAFile != "" || c.NATSCertFile != "" || c.NATSKeyFile != "" || c.NATSServerName != "" ||
		c.NATSUser != "" || c.NATSPassword != "" || c.NATSToken != "" || c.NATSCredsFile != "" || c.NATSNKeyFile != ""
	if external && c.NATSURL == "" {
		problems = append(problems, "nats-tls, nats-ca-file, nats-cert-file, nats-key-file, nats-server-name, nats-user, nats-password, nats-token, nats-creds-file, nats-nkey-file: settings of an external NATS, given without nats-url")
	}
	if (c.NATSCertFile == "") != (c.NATSKeyFile == "") {
		problems = append(problems, "nats-cert-file and nats-key-file: give both or neither")
	}
	if (c.NATSUser == "") != (c.NATSPassword == "") {
		problems = append(problems, "nats-user and nats-password: give both or neither")
	}
	auths := 0
	for _, set := range []bool{c.NATSUser != "", c.NATSToken != "", c.NATSCredsFile != "", c.NATSNKeyFile != ""} {
		if set {
			auths++
		}
	}
	if auths > 1 {
		problems = append(problems, "nats-user, nats-token, nats-creds-file, nats-nkey-file: give one way to authenticate")
	}
	for _, f := range []struct{ name, path string }{{"nats-ca-file", c.NATSCAFile}, {"nats-cert-file", c.NATSCertFile},
		{"nats-key-file", c.NATSKeyFile}, {"nats-creds-file", c.NATSCredsFile}, {"nats-nkey-file", c.NATSNKeyFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", f.name, err))
		}
	}
	switch c.NATSStoreCipher {
	case "", "none", "aes", "chacha":
	default:
		problems = append(problems, "nats-store-cipher: use aes, chacha or none")
	}
	if c.NATSStoreCipher != "" && c.NATSStoreCipher != "none" && c.NATSURL != "" {
		problems = append(problems, "nats-store-cipher: encrypts the embedded JetStream store; an external cluster's servers set their own (jetstream { cipher, key })")
	}
	return problems
}

// validateRetries checks the retry schedules and that one attempt can
// never overlap another: a provider call must end well within the time the
// queue waits before it hands the message to a second worker.
func (c *Config) validateRetries() []string {
	var problems []string
	if c.MaxAttempts < 0 || c.RetryBackoff < 0 {
		problems = append(problems, "max-attempts and retry-backoff must not be negative (0 leaves each channel's own)")
	}
	// The schedules in effect, after max-attempts and retry-backoff.
	for _, ch := range herald.AllChannels() {
		s := c.RetrySchedules()[ch]
		if s.Attempts < 1 {
			problems = append(problems, fmt.Sprintf("%s-retry-attempts: must be at least 1", ch))
		}
		if s.Base <= 0 || s.Cap < s.Base {
			problems = append(problems, fmt.Sprintf("%s-retry-base and %s-retry-cap: the base must be positive and the cap at least the base", ch, ch))
		}
	}
	if c.AckWait <= 0 || c.SendTimeout > c.AckWait/2 {
		problems = append(problems, fmt.Sprintf("send-timeout (%s) must be at most half of ack-wait (%s), so that the queue never hands a message still being sent to a second worker", c.SendTimeout, c.AckWait))
	}
	return problems
}

// RetrySchedules returns each channel's retry schedule, with max-attempts
// and retry-backoff, when set, applied to every channel.
func (c *Config) RetrySchedules() map[herald.Channel]deliver.Schedule {
	out := map[herald.Channel]deliver.Schedule{
		herald.ChannelPush:  {Attempts: c.PushRetryAttempts, Base: c.PushRetryBase, Cap: c.PushRetryCap},
		herald.ChannelSMS:   {Attempts: c.SMSRetryAttempts, Base: c.SMSRetryBase, Cap: c.SMSRetryCap},
		herald.ChannelEmail: {Attempts: c.EmailRetryAttempts, Base: c.EmailRetryBase, Cap: c.EmailRetryCap},
	}
	for ch, s := range out {
		if c.MaxAttempts > 0 {
			s.Attempts = c.MaxAttempts
		}
		if c.RetryBackoff > 0 {
			s.Base, s.Cap = c.RetryBackoff, max(s.Cap, c.RetryBackoff)
		}
		out[ch] = s
	}
	return out
}

// APIKeyLimit is the request limit of each API key: api-burst requests in
// api-burst/api-rate seconds, a sliding window whose average is api-rate.
// A zero Limit (api-rate 0) means no limit.
func (c *Config) APIKeyLimit() herald.Limit {
	if c.APIRate <= 0 {
		return herald.Limit{}
	}
	burst := c.APIBurst
	if burst <= 0 {
		burst = max(1, int(math.Ceil(2*c.APIRate)))
	}
	return herald.Limit{Max: burst, Per: time.Duration(float64(burst) / c.APIRate * float64(time.Second))}
}

// AuthFailureLimit is the limit of failed authentications per client
// address; a zero Limit (auth-failures 0) means no limit.
func (c *Config) AuthFailureLimit() herald.Limit {
	if c.AuthFailures <= 0 {
		return herald.Limit{}
	}
	return herald.Limit{Max: c.AuthFailures, Per: c.AuthFailureWindow}
}

// RoleList returns the roles to run.
func (c *Config) RoleList() []string {
	var out []string
	for _, r := range strings.Split(c.Roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

// HasRole reports whether the process runs role r.
func (c *Config) HasRole(r string) bool { return slices.Contains(c.RoleList(), r) }

// Redacted returns the configuration as "name=value" lines with secrets hidden.
func (c Config) Redacted() []string {
	v := reflect.ValueOf(c)
	t := v.Type()
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		val := fmt.Sprint(v.Field(i).Interface())
		switch f.Tag.Get("secret") {
		case "all":
			if val != "" {
				val = "[redacted]"
			}
		case "url":
			val = redactURLs(val)
		}
		out = append(out, f.Tag.Get("flag")+"="+val)
	}
	return out
}

func redactURLs(s string) string {
	if s == "" {
		return s
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			// It may still hold a password the parser could not find.
			parts[i] = "[unparsable URL hidden]"
			continue
		}
		if u.User == nil {
			continue
		}
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		} else if u.Scheme != "postgres" && u.Scheme != "postgresql" {
			// nats://TOKEN@host and redis://TOKEN@host carry a secret as the user.
			u.User = url.User("xxxxx")
		}
		q := u.Query()
		for k := range q {
			if strings.Contains(strings.ToLower(k), "password") || strings.Contains(strings.ToLower(k), "token") {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

type fieldValue struct{ v reflect.Value }

func (f fieldValue) String() string {
	if !f.v.IsValid() {
		return ""
	}
	return fmt.Sprint(f.v.Interface())
}
func (f fieldValue) Set(s string) error { return setField(f.v, s) }

// IsBoolFlag lets a boolean setting be given as a bare --name, as the
// flag package does for its own booleans.
func (f fieldValue) IsBoolFlag() bool { return f.v.IsValid() && f.v.Kind() == reflect.Bool }

func setField(v reflect.Value, s string) error {
	switch v.Interface().(type) {
	case string:
		v.SetString(s)
	case bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("not true or false: %q", s)
		}
		v.SetBool(b)
	case float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("not a number: %q", s)
		}
		v.SetFloat(f)
	case int, int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("not a number: %q", s)
		}
		v.SetInt(n)
	case time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("not a duration (like 30s or 5m): %q", s)
		}
		v.SetInt(int64(d))
	default:
		return fmt.Errorf("unsupported setting type %s", v.Type())
	}
	return nil
}
