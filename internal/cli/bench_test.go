package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/bench"
)

// runBench runs "herald bench" with more patience than run: a loaded
// machine may need Herald's retries and their Retry-After waits.
func runBench(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := Main(ctx, append([]string{"bench"}, args...), func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// TestBenchEmbeddedEndToEnd runs "herald bench --embedded --count 200":
// Herald in process on the embedded default, a sink as every provider.
// Every request must be accepted and every delivery must reach the sink
// exactly once, the report's numbers must agree with each other, and the
// plot must be well-formed SVG.
func TestBenchEmbeddedEndToEnd(t *testing.T) {
	plot := filepath.Join(t.TempDir(), "bench.svg")
	r := runBench(t, "--embedded", "--count", "200", "--concurrency", "8", "--users", "50",
		"--data-dir", t.TempDir(), "--json", "--plot", plot)
	wantCode(t, r, 0)
	var rep bench.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, r.stdout)
	}
	if rep.Requests.Sent != 200 || rep.Requests.Accepted != 200 || rep.Requests.Failed != 0 || len(rep.Errors) != 0 {
		t.Errorf("requests = %+v, errors %v; want 200 sent and accepted, none failed", rep.Requests, rep.Errors)
	}
	d := rep.Deliveries
	if d.Accepted != 200 || d.Expected != 200 || d.Delivered != 200 || d.Repeats != 0 || d.Unmatched != 0 {
		t.Errorf("deliveries = %+v; want 200 accepted, expected and delivered, no repeats", d)
	}
	if d.ByChannel["push"]+d.ByChannel["email"]+d.ByChannel["sms"] != 200 {
		t.Errorf("deliveries by channel %v do not add up to 200", d.ByChannel)
	}
	if rep.Sink == nil {
		t.Fatal("no sink counts")
	}
	var received int64
	for _, n := range rep.Sink.Received {
		received += n
	}
	if received != 200 || rep.Sink.Received["twilio"] != int64(d.ByChannel["sms"]) ||
		rep.Sink.Received["sendgrid"] != int64(d.ByChannel["email"]) ||
		rep.Sink.Received["apns"]+rep.Sink.Received["fcm"] != int64(d.ByChannel["push"]) {
		t.Errorf("sink received %v for deliveries %v", rep.Sink.Received, d.ByChannel)
	}
	if rep.AcceptLatency == nil || rep.AcceptLatency.N != 200 || rep.DeliveryLatency == nil || rep.DeliveryLatency.N != 200 {
		t.Fatalf("latency samples: accept %+v, to provider %+v; want 200 each", rep.AcceptLatency, rep.DeliveryLatency)
	}
	for _, p := range []*bench.Percentiles{rep.AcceptLatency, rep.DeliveryLatency} {
		if !(0 <= p.P50 && p.P50 <= p.P90 && p.P90 <= p.P99 && p.P99 <= p.Max) {
			t.Errorf("percentiles out of order: %+v", p)
		}
	}
	var accepted, delivered int
	for _, s := range rep.Series {
		accepted += s.Accepted
		delivered += s.Delivered
	}
	if accepted != 200 || delivered != 200 {
		t.Errorf("the per-second series add up to %d accepted, %d delivered; want 200, 200", accepted, delivered)
	}
	if want := (bench.StatusClasses{S2xx: 200}); rep.Status != want {
		t.Errorf("answers by class = %+v, want %+v", rep.Status, want)
	}
	if rep.RecipientsPerSecond <= 0 || rep.DeliveredPerSecond <= 0 {
		t.Errorf("rates: %v accepted/s, %v delivered/s", rep.RecipientsPerSecond, rep.DeliveredPerSecond)
	}
	if rep.Process == nil || rep.Process.CPUSeconds <= 0 || rep.Process.PeakRSSBytes <= 0 {
		t.Errorf("process = %+v; want CPU time and peak RSS", rep.Process)
	}
	checkSVG(t, plot)
}

// checkSVG parses the file as XML: an svg root with drawn paths and text.
func checkSVG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	count := map[string]int{}
	var root string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the plot is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			count[se.Name.Local]++
		}
	}
	if root != "svg" || count["path"] < 6 || count["text"] < 10 {
		t.Errorf("plot: root %q, %d paths, %d texts", root, count["path"], count["text"])
	}
}

// TestBenchTableAndRetries: the table counts what arrived, and with the
// sink failing some sends, Herald's retries still bring every push
// notification to the sink, each counted once.
func TestBenchTableAndRetries(t *testing.T) {
	r := runBench(t, "--embedded", "--count", "40", "--concurrency", "4", "--users", "20",
		"--mix", "push=1", "--error-rate", "0.3", "--data-dir", t.TempDir())
	wantCode(t, r, 0)
	for _, want := range []string{"40 sent, 40 accepted, 0 failed", "40 of 40 at the sink", "accept to provider"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "injected errors apns 0, fcm 0,") {
		t.Errorf("the sink injected no error at rate 0.3:\n%s", r.stdout)
	}
}

// TestBenchEmailOverSMTP: with --email-provider smtp every email goes
// through Herald's SMTP adapter to the sink's SMTP listener, recognised
// by its Message-ID.
func TestBenchEmailOverSMTP(t *testing.T) {
	r := runBench(t, "--embedded", "--count", "20", "--concurrency", "4", "--users", "10",
		"--mix", "email=1", "--email-provider", "smtp", "--data-dir", t.TempDir(), "--json")
	wantCode(t, r, 0)
	var rep bench.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Deliveries.Delivered != 20 || rep.Sink.Received["smtp"] != 20 || rep.Sink.Received["sendgrid"] != 0 {
		t.Errorf("delivered %d, sink received %v; want 20 over smtp", rep.Deliveries.Delivered, rep.Sink.Received)
	}
}

// TestBenchProfileDay: the day's curve runs and the report extrapolates
// a 16M day from the seconds at the curve's peak.
func TestBenchProfileDay(t *testing.T) {
	r := runBench(t, "--embedded", "--profile", "day", "--duration", "4s", "--concurrency", "4",
		"--users", "20", "--data-dir", t.TempDir(), "--json")
	wantCode(t, r, 0)
	var rep bench.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	d := rep.Day
	if d == nil || d.Notifications != 16_000_000 || d.Measured != rep.Deliveries.Accepted || d.PeakPerSecond <= 0 {
		t.Fatalf("day = %+v (deliveries %+v)", d, rep.Deliveries)
	}
	if want := 16e6 / d.PeakPerSecond / 3600; d.FullSpeedHours < want*0.99 || d.FullSpeedHours > want*1.01 {
		t.Errorf("full speed hours %v, want %v", d.FullSpeedHours, want)
	}
	if d.CurveHours <= d.FullSpeedHours {
		t.Errorf("a day shaped by the curve (%v h) is not longer than one at full speed (%v h)", d.CurveHours, d.FullSpeedHours)
	}
	if rep.Mix != "push=10,email=5,sms=1" {
		t.Errorf("mix %q, want the seed mix", rep.Mix)
	}
}

// TestBenchCeilings: --ceilings alone measures the machine and prints its
// figures; with a run, the report divides Herald's figures by them.
func TestBenchCeilings(t *testing.T) {
	r := runBench(t, "--ceilings", "--ceilings-duration", "200ms", "--json")
	wantCode(t, r, 0)
	var c bench.Ceilings
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
		t.Fatalf("--ceilings --json output does not parse: %v\n%s", err, r.stdout)
	}
	if c.HTTPRequestsPerSecond <= 0 || c.PublishConsumePerSecond <= 0 || c.SQLiteRowsPerSecond <= 0 || c.Store != "sqlite" || len(c.Ratios) != 0 {
		t.Errorf("ceilings alone = %+v; want three positive figures and no ratio", c)
	}

	r = runBench(t, "--embedded", "--count", "40", "--concurrency", "4", "--users", "20", "--data-dir", t.TempDir(),
		"--ceilings", "--ceilings-duration", "200ms", "--json")
	wantCode(t, r, 0)
	var rep bench.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Ceilings == nil || len(rep.Ceilings.Ratios) != 3 {
		t.Fatalf("ceilings with a run = %+v; want three ratios", rep.Ceilings)
	}
	if rep.Ceilings.HTTPConcurrency != 4 {
		t.Errorf("bare HTTP ran %d requests in flight, want the run's --concurrency 4", rep.Ceilings.HTTPConcurrency)
	}
	for i, want := range []struct{ herald, ceiling float64 }{
		{rep.RequestsPerSecond, rep.Ceilings.HTTPRequestsPerSecond},
		{rep.RecipientsPerSecond, rep.Ceilings.SQLiteRowsPerSecond},
		{rep.DeliveredPerSecond, rep.Ceilings.PublishConsumePerSecond},
	} {
		got := rep.Ceilings.Ratios[i]
		if got.Herald != want.herald || got.Ceiling != want.ceiling || got.Ratio <= 0 ||
			math.Abs(got.Ratio-want.herald/want.ceiling) > 0.001 {
			t.Errorf("ratio %q = %+v, want %v ÷ %v", got.Name, got, want.herald, want.ceiling)
		}
	}
	r = runBench(t, "--embedded", "--count", "10", "--concurrency", "2", "--users", "5", "--data-dir", t.TempDir(),
		"--ceilings", "--ceilings-duration", "200ms")
	wantCode(t, r, 0)
	for _, want := range []string{"bare HTTP", "bare publish+consume", "bare SQLite insert", "delivered/s ÷ bare publish+consume/s"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestBenchUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--embedded", "--count", "1"},                         // no rate or concurrency
		{"bench", "--embedded", "--concurrency", "1"},                   // no duration or count
		{"bench", "--concurrency", "1", "--count", "1"},                 // no target
		{"bench", "--embedded", "--concurrency", "1", "--mix", "fax=1"}, // unknown channel
		{"bench", "--embedded", "--rate", "1", "--profile", "week"},     // unknown profile
		{"bench", "--embedded", "--count", "1", "--rate", "1", "--email-provider", "ses"},
		{"bench", "sink", "--error-rate", "2", "--addr", "127.0.0.1:0"}, // rate over 1
	} {
		r := run(t, nil, args...)
		if r.code != 2 {
			t.Errorf("%v: exit code %d, want 2\n%s", args, r.code, r.stderr)
		}
	}
}
