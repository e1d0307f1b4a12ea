package app_test

import (
	"bytes"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/heraldhq/herald/internal/app"
	"github.com/heraldhq/herald/internal/provider/providertest"
)

// scrape reads /metrics as Prometheus would.
func scrape(t *testing.T, c *api) map[string]*dto.MetricFamily {
	t.Helper()
	body := c.must(200, "GET", "/metrics", nil).body
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// sample sums the samples of name whose labels include want: the value of
// a gauge or counter, the count of a histogram. ok is false when none has
// those labels.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) (v float64, ok bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, val := range want {
			if labels[k] != val {
				continue next
			}
		}
		ok = true
		switch {
		case m.Gauge != nil:
			v += m.GetGauge().GetValue()
		case m.Counter != nil:
			v += m.GetCounter().GetValue()
		case m.Histogram != nil:
			v += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return v, ok
}

// TestQueueMetricsMoveUnderLoad: one email worker against an SMTP server
// that takes 700ms per message, and six emails. While they queue, /metrics
// shows messages pending and in a worker's hands, the oldest waiting for
// a while; once they are sent, nothing is pending and the tracker has
// counted each send, by app and provider, with its latency.
func TestQueueMetricsMoveUnderLoad(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t, providertest.DataDelay(700*time.Millisecond))
	cfg := testConfig(t)
	cfg.Workers = 1
	cfg.SendTimeout = 5 * time.Second
	a := start(t, cfg)
	c := newAPI(t, a, newApp(t, a, "shop"))
	configureEmail(t, c, smtpd)
	const n = 6
	for range n {
		sendEmail(t, c)
	}

	email := map[string]string{"consumer": "email_normal"}
	var sawPending, sawInHands, sawAge bool
	deadline := time.Now().Add(20 * time.Second)
	for !(sawPending && sawInHands && sawAge) {
		if time.Now().After(deadline) {
			t.Fatalf("under load: pending seen %v, in a worker's hands seen %v, oldest age seen %v", sawPending, sawInHands, sawAge)
		}
		fams := scrape(t, c)
		if v, _ := sample(fams, "herald_queue_consumers_readable", nil); v != 1 {
			t.Fatalf("herald_queue_consumers_readable = %v, want 1", v)
		}
		pending, ok := sample(fams, "herald_queue_consumer_pending_messages", email)
		if !ok {
			t.Fatalf("no herald_queue_consumer_pending_messages for the email consumer")
		}
		inHands, _ := sample(fams, "herald_queue_consumer_ack_pending_messages", email)
		age, _ := sample(fams, "herald_queue_consumer_oldest_pending_age_seconds", email)
		sawPending = sawPending || pending >= 1
		sawInHands = sawInHands || inHands >= 1
		sawAge = sawAge || age >= 0.5
		time.Sleep(100 * time.Millisecond)
	}

	deadline = time.Now().Add(30 * time.Second)
	for {
		fams := scrape(t, c)
		pending, _ := sample(fams, "herald_queue_consumer_pending_messages", email)
		inHands, _ := sample(fams, "herald_queue_consumer_ack_pending_messages", email)
		age, _ := sample(fams, "herald_queue_consumer_oldest_pending_age_seconds", email)
		sent, _ := sample(fams, "herald_delivery_events_total", map[string]string{"channel": "email", "status": "sent", "provider": "smtp"})
		latency, _ := sample(fams, "herald_delivery_latency_seconds", map[string]string{"channel": "email", "status": "sent"})
		if pending == 0 && inHands == 0 && age == 0 && sent == n && latency == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the load: pending %v, in hands %v, oldest age %v, sent events %v, latencies %v; want 0, 0, 0, %d, %d",
				pending, inHands, age, sent, latency, n, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := len(smtpd.Messages()); got != n {
		t.Errorf("SMTP server got %d messages, want %d", got, n)
	}
	checkDeployReferences(t, scrape(t, c))
}

// checkDeployReferences fails for every Herald metric that the alert rules
// or the dashboard in deploy/ name and /metrics does not have, so that a
// renamed metric cannot leave an alert that never fires.
func checkDeployReferences(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	name := regexp.MustCompile(`herald_[a-z0-9_]+`)
	for _, path := range []string{"../../deploy/prometheus/alerts.yml", "../../deploy/grafana/herald.json"} {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, ref := range name.FindAllString(string(raw), -1) {
			family := ref
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(ref, suffix); ok && fams[base] != nil {
					family = base
				}
			}
			if fams[family] == nil && !seen[ref] {
				t.Errorf("%s names %s, which /metrics does not have", path, ref)
			}
			seen[ref] = true
		}
		if len(seen) == 0 {
			t.Errorf("%s names no Herald metric", path)
		}
	}
}

// TestCircuitOpenGauge: a provider that fails every call opens its
// circuit, and /metrics says so while it is open.
func TestCircuitOpenGauge(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t, providertest.FailData(451, "try again later"))
	cfg := testConfig(t)
	cfg.ProviderCooldown = time.Minute // stays open for the test
	cfg.RetryBackoff = 20 * time.Millisecond
	a := start(t, cfg)
	c := newAPI(t, a, newApp(t, a, "shop"))
	configureEmail(t, c, smtpd)
	if v, _ := sample(scrape(t, c), "herald_provider_circuits_open", map[string]string{"provider": "smtp"}); v != 0 {
		t.Fatalf("herald_provider_circuits_open{provider=smtp} = %v before any send, want 0", v)
	}
	sendEmail(t, c)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if v, _ := sample(scrape(t, c), "herald_provider_circuits_open", map[string]string{"provider": "smtp"}); v == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the smtp circuit never showed open in /metrics")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBuildInfoMetric: /metrics carries herald_build_info 1 with the
// version the binary was given and the Go version that built it.
func TestBuildInfoMetric(t *testing.T) {
	cfg := testConfig(t)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := app.New(cfg, testLogger(t))
	a.SetVersion("v9.8.7-test")
	startApp(t, a)
	c := newAPI(t, a, newApp(t, a, "shop"))
	fams := scrape(t, c)
	v, ok := sample(fams, "herald_build_info", map[string]string{"version": "v9.8.7-test", "goversion": runtime.Version()})
	if !ok || v != 1 {
		t.Fatalf("herald_build_info{version=\"v9.8.7-test\",goversion=%q} = %v (present %v), want 1", runtime.Version(), v, ok)
	}
	labels := map[string]bool{}
	for _, l := range fams["herald_build_info"].GetMetric()[0].GetLabel() {
		labels[l.GetName()] = true
	}
	for _, want := range []string{"version", "revision", "goversion"} {
		if !labels[want] {
			t.Errorf("herald_build_info has no %s label", want)
		}
	}
}
