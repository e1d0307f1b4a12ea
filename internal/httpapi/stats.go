package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/heraldhq/herald"
)

// Monitor reads the running deployment for GET /v1/stats: its queue and
// the circuit breakers of an app's providers. It is declared here, where
// it is consumed; the composition root satisfies it.
type Monitor interface {
	// QueueConsumers returns the state of every durable consumer of the
	// deployment's queue (it is shared by every app). Called by GET
	// /v1/stats. Errors: CodeUnavailable when the queue did not answer;
	// the consumers that could be read come back with it.
	QueueConsumers(ctx context.Context) ([]QueueConsumer, error)
	// ProviderCircuits returns the app's configured providers, channel by
	// channel in list order, with their circuit state as this process
	// knows it. Called by GET /v1/stats.
	ProviderCircuits(ctx context.Context, appID string) ([]ProviderCircuit, error)
}

// QueueConsumer is one durable consumer of the queue.
type QueueConsumer struct {
	Stream, Consumer string
	Pending          uint64
	AckPending       int
	Redelivered      int
	Waiting          int
	// OldestPendingAge is how long the oldest message not yet handed out
	// has waited; zero when none is pending.
	OldestPendingAge time.Duration
}

// Circuit states of ProviderCircuit.
const (
	CircuitClosed = "closed"
	CircuitOpen   = "open"
	// CircuitUnknown: this process sends nothing (no worker role), so its
	// breakers say nothing about the provider.
	CircuitUnknown = "unknown"
)

// ProviderCircuit is one entry of an app's provider list.
type ProviderCircuit struct {
	Channel  herald.Channel
	Position int // in the channel's list, from 0
	Kind     string
	Circuit  string // CircuitClosed, CircuitOpen or CircuitUnknown
}

// Bounds of GET /v1/stats: the window and its intervals are small, so
// that a page refreshing every few seconds costs the store little.
const (
	defaultStatsWindow   = 15 * time.Minute
	maxStatsWindow       = time.Hour
	defaultStatsInterval = 10 * time.Second
	maxStatsIntervals    = 360
	// statsAcceptedBefore is how long before the window a notification may
	// have been accepted and still have its events counted: the bound
	// that turns the scan into a key range (see herald.ActivityFilter).
	statsAcceptedBefore = 5 * time.Minute
	// statsQueueTimeout bounds the read of the queue's consumers.
	statsQueueTimeout = 2 * time.Second
)

type statsResponse struct {
	From            time.Time            `json:"from"`
	To              time.Time            `json:"to"`
	IntervalSeconds float64              `json:"interval_seconds"`
	AcceptedSince   time.Time            `json:"accepted_since"`
	Throughput      []statsInterval      `json:"throughput"`
	Providers       []providerHealthResp `json:"providers"`
	Queue           queueStateResponse   `json:"queue"`
	Totals          map[string]int64     `json:"totals"`
	byProvider      map[providerKey]*counts
}

type statsInterval struct {
	Start      time.Time `json:"start"`
	Accepted   int64     `json:"accepted"`
	Sent       int64     `json:"sent"`
	Failed     int64     `json:"failed"`
	Dead       int64     `json:"dead"`
	Retried    int64     `json:"retried"`
	Suppressed int64     `json:"suppressed"`
}

type providerHealthResp struct {
	Channel    string  `json:"channel"`
	Position   int     `json:"position"`
	Kind       string  `json:"kind"`
	Circuit    string  `json:"circuit"`
	Attempts   int64   `json:"attempts"`
	Errors     int64   `json:"errors"`
	ErrorShare float64 `json:"error_share"`
}

type queueStateResponse struct {
	Scope      string                  `json:"scope"`
	Readable   bool                    `json:"readable"`
	Error      string                  `json:"error,omitempty"`
	Pending    uint64                  `json:"pending"`
	AckPending int64                   `json:"ack_pending"`
	Consumers  []queueConsumerResponse `json:"consumers"`
}

type queueConsumerResponse struct {
	Stream                  string  `json:"stream"`
	Consumer                string  `json:"consumer"`
	Pending                 uint64  `json:"pending"`
	AckPending              int     `json:"ack_pending"`
	Redelivered             int     `json:"redelivered"`
	Waiting                 int     `json:"waiting"`
	OldestPendingAgeSeconds float64 `json:"oldest_pending_age_seconds"`
}

type providerKey struct {
	channel herald.Channel
	kind    string
}

type counts struct{ attempts, errors int64 }

// statsWindow reads the query; errors name the parameter.
func statsWindow(q url.Values) (window, interval time.Duration, err error) {
	var v herald.Validation
	window, interval = defaultStatsWindow, defaultStatsInterval
	parse := func(name string, into *time.Duration) {
		if raw := q.Get(name); raw != "" {
			d, err := time.ParseDuration(raw)
			if err != nil || d <= 0 {
				v.Add(name, "must be a positive duration like 15m or 10s")
				return
			}
			*into = d
		}
	}
	parse("window", &window)
	parse("interval", &interval)
	if v.Err() == nil {
		switch {
		case window < time.Minute || window > maxStatsWindow:
			v.Add("window", "must be between 1m and %s", maxStatsWindow)
		case interval < time.Second || interval%time.Second != 0:
			v.Add("interval", "must be whole seconds, at least 1s")
		case interval > window:
			v.Add("interval", "must not be longer than the window")
		case window/interval > maxStatsIntervals:
			v.Add("interval", "the window holds at most %d intervals: make it at least %s", maxStatsIntervals,
				(window / maxStatsIntervals).Round(time.Second))
		}
	}
	return window, interval, v.Err()
}

// getStats answers the app's recent activity per interval from the log,
// its providers' health and the deployment's queue state: what the admin
// UI's overview draws.
func (s *server) getStats(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	window, interval, err := statsWindow(r.URL.Query())
	if err != nil {
		return err
	}
	// Whole intervals, so that consecutive refreshes draw the same buckets.
	to := s.now().UTC().Truncate(interval).Add(interval)
	from := to.Add(-window).Truncate(interval)
	f := herald.ActivityFilter{From: from, To: to, Interval: interval, AcceptedSince: from.Add(-statsAcceptedBefore)}
	activity, err := s.store.CountActivity(r.Context(), caller.AppID, f)
	if err != nil {
		return fmt.Errorf("httpapi: stats: %w", err)
	}
	out := statsResponse{From: from, To: to, IntervalSeconds: interval.Seconds(), AcceptedSince: f.AcceptedSince,
		Throughput: make([]statsInterval, int(to.Sub(from)/interval)), Totals: map[string]int64{},
		Providers: []providerHealthResp{}, byProvider: map[providerKey]*counts{}}
	for i := range out.Throughput {
		out.Throughput[i].Start = from.Add(time.Duration(i) * interval)
	}
	for _, c := range activity {
		out.add(c)
	}
	if s.monitor != nil {
		circuits, err := s.monitor.ProviderCircuits(r.Context(), caller.AppID)
		if err != nil {
			return fmt.Errorf("httpapi: stats: providers: %w", err)
		}
		for _, pc := range circuits {
			h := providerHealthResp{Channel: string(pc.Channel), Position: pc.Position, Kind: pc.Kind, Circuit: pc.Circuit}
			if n := out.byProvider[providerKey{pc.Channel, pc.Kind}]; n != nil {
				h.Attempts, h.Errors = n.attempts, n.errors
				h.ErrorShare = float64(n.errors) / float64(n.attempts)
			}
			out.Providers = append(out.Providers, h)
		}
	}
	out.Queue = s.queueState(r.Context())
	s.writeJSON(w, r, http.StatusOK, out)
	return nil
}

// add counts one row of activity into its interval and its provider.
func (out *statsResponse) add(c herald.ActivityCount) {
	if c.Interval < 0 || c.Interval >= len(out.Throughput) {
		return
	}
	b := &out.Throughput[c.Interval]
	answered := c.Provider != ""
	failure := false
	switch c.Status {
	case herald.StatusAccepted:
		b.Accepted += c.N
	case herald.StatusSent:
		b.Sent += c.N
	case herald.StatusFailed:
		b.Failed += c.N
		// An invalid address is the recipient's problem, not the provider's.
		failure = c.Reason != herald.ReasonInvalidRecipient
	case herald.StatusDead:
		b.Dead += c.N
		failure = true
	case herald.StatusQueued:
		// The worker's own queued step names no provider; a provider's
		// passing failure, queued again for a retry, does.
		if answered {
			b.Retried += c.N
			failure = true
		}
	case herald.StatusSuppressed:
		b.Suppressed += c.N
	default:
		answered = false // delivered, opened, clicked: reported later, not a send
	}
	switch c.Status {
	case herald.StatusAccepted, herald.StatusSent, herald.StatusFailed, herald.StatusDead, herald.StatusSuppressed:
		out.Totals[string(c.Status)] += c.N
	case herald.StatusQueued:
		if c.Provider != "" {
			out.Totals["retried"] += c.N
		}
	}
	if answered {
		k := providerKey{c.Channel, c.Provider}
		n := out.byProvider[k]
		if n == nil {
			n = &counts{}
			out.byProvider[k] = n
		}
		n.attempts += c.N
		if failure {
			n.errors += c.N
		}
	}
}

// queueState reads the deployment's queue consumers; a queue that does
// not answer is reported in the body, not as an error of the request.
func (s *server) queueState(ctx context.Context) queueStateResponse {
	out := queueStateResponse{Scope: "deployment", Consumers: []queueConsumerResponse{}}
	if s.monitor == nil {
		out.Error = "this process does not read the queue"
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, statsQueueTimeout)
	defer cancel()
	consumers, err := s.monitor.QueueConsumers(ctx)
	out.Readable = err == nil
	if err != nil {
		s.log.WarnContext(ctx, "httpapi: stats: reading the queue", "err", err)
		out.Error = "the queue did not answer for every consumer"
	}
	for _, c := range consumers {
		out.Pending += c.Pending
		out.AckPending += int64(c.AckPending)
		out.Consumers = append(out.Consumers, queueConsumerResponse{Stream: c.Stream, Consumer: c.Consumer, Pending: c.Pending,
			AckPending: c.AckPending, Redelivered: c.Redelivered, Waiting: c.Waiting, OldestPendingAgeSeconds: c.OldestPendingAge.Seconds()})
	}
	return out
}
