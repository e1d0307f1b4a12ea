package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/internal/queue"
)

// consumerScrapeTimeout bounds the JetStream reads of one scrape, so that
// a queue that does not answer slows /metrics by at most this much.
const consumerScrapeTimeout = 2 * time.Second

// stateCollector reports, at each scrape, the state of every queue
// consumer and of the provider circuits. Reading it when asked rather than
// on a timer keeps idle processes quiet and the figures fresh. Every
// process of a deployment reports the same consumers (they are shared):
// aggregate them with max by (stream, consumer), not sum.
type stateCollector struct {
	q        *queue.Queue
	circuits func() map[string]int
	now      func() time.Time
	log      *slog.Logger

	pending, ackPending, redelivered, waiting, oldestAge, up, open *prometheus.Desc
}

func newStateCollector(q *queue.Queue, circuits func() map[string]int, log *slog.Logger) *stateCollector {
	labels := []string{"stream", "consumer"}
	return &stateCollector{q: q, circuits: circuits, now: time.Now, log: log,
		pending: prometheus.NewDesc("herald_queue_consumer_pending_messages",
			"Messages a queue consumer has not yet handed to any worker.", labels, nil),
		ackPending: prometheus.NewDesc("herald_queue_consumer_ack_pending_messages",
			"Messages handed out and not yet acknowledged: being sent, or waiting for a delayed retry.", labels, nil),
		redelivered: prometheus.NewDesc("herald_queue_consumer_redelivered_messages",
			"Unacknowledged messages that were handed out more than once.", labels, nil),
		waiting: prometheus.NewDesc("herald_queue_consumer_waiting_pulls",
			"Workers' pull requests waiting at the consumer; 0 with messages pending means nobody is taking work.", labels, nil),
		oldestAge: prometheus.NewDesc("herald_queue_consumer_oldest_pending_age_seconds",
			"Age of the oldest message a consumer has not yet handed out; 0 when none is pending.", labels, nil),
		up: prometheus.NewDesc("herald_queue_consumers_readable",
			"1 when this scrape read every queue consumer, 0 when JetStream did not answer for some.", nil, nil),
		open: prometheus.NewDesc("herald_provider_circuits_open",
			"Provider circuit breakers open now (the provider failing; its traffic goes to the next of the list), by provider kind.",
			[]string{"provider"}, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.pending, c.ackPending, c.redelivered, c.waiting, c.oldestAge, c.up, c.open} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	for kind, n := range c.circuits() {
		ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(n), kind)
	}
	ctx, cancel := context.WithTimeout(context.Background(), consumerScrapeTimeout)
	defer cancel()
	stats, err := c.q.ConsumerStats(ctx)
	up := 1.0
	if err != nil {
		up = 0
		c.log.Debug("reading the queue consumers for /metrics", "err", err)
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
	now := c.now()
	for _, s := range stats {
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, s.Stream, s.Consumer)
		}
		gauge(c.pending, float64(s.Pending))
		gauge(c.ackPending, float64(s.AckPending))
		gauge(c.redelivered, float64(s.Redelivered))
		gauge(c.waiting, float64(s.Waiting))
		age := 0.0
		if !s.OldestPending.IsZero() {
			age = max(now.Sub(s.OldestPending).Seconds(), 0)
		}
		gauge(c.oldestAge, age)
	}
}
