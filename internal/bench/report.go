package bench

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what a run measured. Its JSON is the --json output.
type Report struct {
	Target      string  `json:"target"` // the URL, or "embedded"
	Loop        string  `json:"loop"`   // "closed, concurrency 64" or "open, 500/s"
	Mix         string  `json:"mix"`
	Recipients  int     `json:"recipients_per_request"`
	LoadSeconds float64 `json:"load_seconds"` // from the first request to the last answer
	// DeliverySeconds runs from the first request to the last arrival at the sink.
	DeliverySeconds float64 `json:"delivery_seconds,omitempty"`

	Requests   RequestCounts  `json:"requests"`
	Status     StatusClasses  `json:"status_classes"`
	Deliveries DeliveryCounts `json:"deliveries"`

	RequestsPerSecond   float64 `json:"requests_accepted_per_second"`
	RecipientsPerSecond float64 `json:"recipients_accepted_per_second"`
	DeliveredPerSecond  float64 `json:"delivered_per_second,omitempty"`

	// AcceptLatency is from sending a request (open loop: from when it was
	// due) to its 202; DeliveryLatency from the 202 to the provider's receipt.
	AcceptLatency   *Percentiles `json:"accept_latency_ms,omitempty"`
	DeliveryLatency *Percentiles `json:"accept_to_provider_latency_ms,omitempty"`

	Errors  map[string]int `json:"errors"` // failed requests by HTTP status or transport error
	Sink    *SinkCounts    `json:"sink,omitempty"`
	Process *ProcessReport `json:"process,omitempty"`
	Day     *DayReport     `json:"day,omitempty"`
	// Ceilings, with --ceilings: the machine's bare figures and Herald's share of them.
	Ceilings *Ceilings `json:"ceilings,omitempty"`

	Series []Second `json:"series"` // one entry per second of the run
}

// RequestCounts counts POST /v1/notifications calls.
type RequestCounts struct {
	Sent     int `json:"sent"`
	Accepted int `json:"accepted"`
	Failed   int `json:"failed"`
}

// StatusClasses counts the answers to POST /v1/notifications by class:
// under overload Herald should answer 2xx or 429 (with Retry-After), never 5xx.
type StatusClasses struct {
	S2xx                  int `json:"2xx"`
	S429                  int `json:"429"`
	S429WithoutRetryAfter int `json:"429_without_retry_after"`
	Other4xx              int `json:"other_4xx"`
	S5xx                  int `json:"5xx"`
	Other                 int `json:"other"`     // 1xx or 3xx
	Transport             int `json:"transport"` // no answer: connection error or timeout
}

// DeliveryCounts counts deliveries: accepted in 202 answers, and seen by the sink.
type DeliveryCounts struct {
	Accepted  int            `json:"accepted"`
	ByChannel map[string]int `json:"by_channel"`
	Expected  int            `json:"expected"` // accepted and not suppressed
	Delivered int            `json:"delivered"`
	// Repeats are arrivals of a delivery already seen (a retry after a
	// lost answer); Unmatched carry nothing the bench can recognise.
	Repeats   int `json:"repeats"`
	Unmatched int `json:"unmatched"`
}

// Percentiles of a latency sample, in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
	N   int     `json:"n"`
}

// SinkCounts are the sink's counters at the end of the run (all runs).
type SinkCounts struct {
	Received map[string]int64 `json:"received"`
	Errors   map[string]int64 `json:"errors"`
}

// ProcessReport is the Herald process's use of the machine.
type ProcessReport struct {
	PID          int     `json:"pid,omitempty"`  // 0 for the bench's own process (--embedded)
	CPUSeconds   float64 `json:"cpu_seconds"`    // user and system, during the run
	WallSeconds  float64 `json:"wall_seconds"`   // the run, load and wait for deliveries
	PeakRSSBytes int64   `json:"peak_rss_bytes"` // the process's high-water mark (VmHWM)
	Note         string  `json:"note,omitempty"`
}

// DayReport extrapolates the seed scenario's day from the run.
type DayReport struct {
	Notifications int `json:"notifications"` // of the day: 16 million
	// Measured is the deliveries accepted in this run and MeasuredSeconds its load time.
	Measured        int     `json:"measured_deliveries"`
	MeasuredSeconds float64 `json:"measured_seconds"`
	// PeakPerSecond is the acceptance rate while the curve was at 90% or
	// more of its peak: full speed.
	PeakPerSecond float64 `json:"peak_per_second"`
	// FullSpeedHours is 16M at PeakPerSecond; CurveHours is 16M with the
	// day's shape scaled so that its peak is full speed.
	FullSpeedHours float64 `json:"full_speed_hours"`
	CurveHours     float64 `json:"curve_hours"`
}

// Second is one second of the run.
type Second struct {
	T                int     `json:"t"`
	Accepted         int     `json:"accepted"` // recipients accepted
	Delivered        int     `json:"delivered"`
	AcceptP50        float64 `json:"accept_p50_ms"`
	AcceptP99        float64 `json:"accept_p99_ms"`
	DeliveryP50      float64 `json:"delivery_p50_ms"`
	DeliveryP99      float64 `json:"delivery_p99_ms"`
	AcceptedRequests int     `json:"accepted_requests"`
	Refused          int     `json:"refused_429"` // 429 answers
	ServerErrors     int     `json:"errors_5xx"`
}

func (r *run) report(loadEnd time.Time) *Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	label := r.target.Label
	if label == "" {
		label = r.target.URL
	}
	rep := &Report{Target: label, Mix: r.opts.Mix.String(), Recipients: r.opts.Recipients,
		LoadSeconds: round(loadEnd.Sub(r.start).Seconds(), 3), Errors: map[string]int{}}
	if r.opts.Rate > 0 {
		rep.Loop = fmt.Sprintf("open, %g/s", r.opts.Rate)
	} else {
		rep.Loop = fmt.Sprintf("closed, concurrency %d", r.opts.Concurrency)
	}
	if r.opts.Day {
		rep.Loop += ", diurnal curve"
	}
	failed := 0
	for k, n := range r.errs {
		rep.Errors[k] = n
		failed += n
	}
	rep.Requests = RequestCounts{Sent: r.sent, Accepted: r.accepted, Failed: failed}
	rep.Status = r.classes
	recipients := 0
	for _, s := range r.seconds {
		recipients += s.recipients
	}
	unmatched := r.unmatched
	for _, a := range r.early {
		unmatched += len(a) // their 202 never came
	}
	rep.Deliveries = DeliveryCounts{Accepted: recipients, ByChannel: map[string]int{}, Expected: r.expected,
		Delivered: r.delivered, Repeats: r.dupes, Unmatched: unmatched}
	for k, n := range r.byChannel {
		rep.Deliveries.ByChannel[k] = n
	}
	if rep.LoadSeconds > 0 {
		rep.RequestsPerSecond = round(float64(r.accepted)/rep.LoadSeconds, 1)
		rep.RecipientsPerSecond = round(float64(recipients)/rep.LoadSeconds, 1)
	}
	if r.delivered > 0 {
		rep.DeliverySeconds = round(time.Unix(0, r.lastArrive).Sub(r.start).Seconds(), 3)
		rep.DeliveredPerSecond = round(float64(r.delivered)/rep.DeliverySeconds, 1)
	}
	rep.AcceptLatency = percentiles(r.acceptLat)
	rep.DeliveryLatency = percentiles(r.deliverLat)
	for i, s := range r.seconds {
		sec := Second{T: i, Accepted: s.recipients, Delivered: s.delivered, AcceptedRequests: s.accepted,
			Refused: s.refused, ServerErrors: s.serverErrors}
		if p := percentiles(s.acceptLat); p != nil {
			sec.AcceptP50, sec.AcceptP99 = p.P50, p.P99
		}
		if p := percentiles(s.deliverLat); p != nil {
			sec.DeliveryP50, sec.DeliveryP99 = p.P50, p.P99
		}
		rep.Series = append(rep.Series, sec)
	}
	if r.opts.Day {
		rep.Day = r.day(rep)
	}
	return rep
}

// day extrapolates DayNotifications from the seconds at full speed.
func (r *run) day(rep *Report) *DayReport {
	length := r.opts.Duration
	if length <= 0 {
		length = time.Duration(rep.LoadSeconds * float64(time.Second))
	}
	d := &DayReport{Notifications: DayNotifications, Measured: rep.Deliveries.Accepted, MeasuredSeconds: rep.LoadSeconds}
	var n, secs int
	for i, s := range r.seconds {
		mid := (float64(i) + 0.5) * float64(time.Second) / float64(length)
		if mid <= 1 && dayCurve(mid) >= 0.9 && float64(i+1) <= rep.LoadSeconds {
			n += s.recipients
			secs++
		}
	}
	if secs == 0 || n == 0 {
		return d
	}
	d.PeakPerSecond = round(float64(n)/float64(secs), 1)
	var mean float64
	const steps = 1000
	for i := range steps {
		mean += dayCurve((float64(i) + 0.5) / steps)
	}
	mean /= steps
	d.FullSpeedHours = round(DayNotifications/d.PeakPerSecond/3600, 2)
	d.CurveHours = round(DayNotifications/(d.PeakPerSecond*mean)/3600, 2)
	return d
}

// WriteTable prints the report for a person.
func (rep *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	p("target\t%s", rep.Target)
	p("load\t%s, mix %s, %d recipient(s) per request, %.1fs", rep.Loop, rep.Mix, rep.Recipients, rep.LoadSeconds)
	p("requests\t%d sent, %d accepted, %d failed", rep.Requests.Sent, rep.Requests.Accepted, rep.Requests.Failed)
	st := rep.Status
	p("answers\t2xx %d, 429 %d (%d without Retry-After), other 4xx %d, 5xx %d, no answer %d",
		st.S2xx, st.S429, st.S429WithoutRetryAfter, st.Other4xx, st.S5xx, st.Transport)
	p("accepted\t%.1f requests/s, %.1f recipients/s (%d deliveries: %s)", rep.RequestsPerSecond,
		rep.RecipientsPerSecond, rep.Deliveries.Accepted, byChannel(rep.Deliveries.ByChannel))
	if rep.Sink != nil {
		p("delivered\t%d of %d at the sink, %.1f/s over %.1fs; %d repeats, %d unrecognised",
			rep.Deliveries.Delivered, rep.Deliveries.Expected, rep.DeliveredPerSecond, rep.DeliverySeconds,
			rep.Deliveries.Repeats, rep.Deliveries.Unmatched)
	} else {
		p("delivered\tnot observed (no sink)")
	}
	p("")
	p("latency (ms)\tp50\tp90\tp99\tmax\tsamples")
	for _, l := range []struct {
		name string
		p    *Percentiles
	}{{"accept (202)", rep.AcceptLatency}, {"accept to provider", rep.DeliveryLatency}} {
		if l.p == nil {
			p("%s\t-\t-\t-\t-\t0", l.name)
			continue
		}
		p("%s\t%.1f\t%.1f\t%.1f\t%.1f\t%d", l.name, l.p.P50, l.p.P90, l.p.P99, l.p.Max, l.p.N)
	}
	p("")
	if len(rep.Errors) == 0 {
		p("errors\tnone")
	} else {
		keys := make([]string, 0, len(rep.Errors))
		for k := range rep.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			label := ""
			if i == 0 {
				label = "errors"
			}
			p("%s\t%s: %d", label, k, rep.Errors[k])
		}
	}
	if rep.Sink != nil {
		p("sink\treceived %s; injected errors %s", kinds(rep.Sink.Received), kinds(rep.Sink.Errors))
	}
	if pr := rep.Process; pr != nil {
		who := "this process"
		if pr.PID > 0 {
			who = fmt.Sprintf("pid %d", pr.PID)
		}
		p("herald process\t%s: %.2f CPU seconds in %.1fs (%.2f cores), peak RSS %.1f MiB", who, pr.CPUSeconds,
			pr.WallSeconds, pr.CPUSeconds/math.Max(pr.WallSeconds, 0.001), float64(pr.PeakRSSBytes)/(1<<20))
		if pr.Note != "" {
			p("\t%s", pr.Note)
		}
	}
	if len(rep.Series) > 1 {
		p("")
		p("over time\tdeliveries accepted/s\tdelivered/s\t429/s\t5xx/s\taccept p99 ms")
		for _, b := range rep.timeline(12) {
			p("%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f", b.label, b.accepted, b.delivered, b.refused, b.serverErrors, b.acceptP99)
		}
	}
	if d := rep.Day; d != nil {
		p("")
		if d.PeakPerSecond == 0 {
			p("day\tthe run was too short to measure full speed")
		} else {
			speed := "full speed"
			if strings.HasPrefix(rep.Loop, "open") {
				speed = "the offered peak rate" // --rate capped it: not Herald's full speed
			}
			p("day (16M)\tmeasured %d deliveries in %.1fs; at %s (%.1f/s, the curve's peak) 16M take %.2f h;",
				d.Measured, d.MeasuredSeconds, speed, d.PeakPerSecond, d.FullSpeedHours)
			p("\twith the day's shape, peak at full speed: %.2f h (extrapolated, not measured)", d.CurveHours)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if rep.Ceilings != nil {
		fmt.Fprintln(w)
		return rep.Ceilings.WriteTable(w)
	}
	return nil
}

// bucket is a stretch of the run's seconds, for the table's timeline.
type bucket struct {
	label                                      string
	accepted, delivered, refused, serverErrors float64 // per second
	acceptP99                                  float64 // the worst second's
}

// timeline folds the per-second series into at most n stretches of
// whole seconds.
func (rep *Report) timeline(n int) []bucket {
	width := (len(rep.Series) + n - 1) / n
	var out []bucket
	for i := 0; i < len(rep.Series); i += width {
		part := rep.Series[i:min(i+width, len(rep.Series))]
		b := bucket{label: fmt.Sprintf("%ds–%ds", part[0].T, part[len(part)-1].T+1)}
		for _, s := range part {
			b.accepted += float64(s.Accepted)
			b.delivered += float64(s.Delivered)
			b.refused += float64(s.Refused)
			b.serverErrors += float64(s.ServerErrors)
			b.acceptP99 = max(b.acceptP99, s.AcceptP99)
		}
		k := float64(len(part))
		b.accepted, b.delivered, b.refused, b.serverErrors = b.accepted/k, b.delivered/k, b.refused/k, b.serverErrors/k
		out = append(out, b)
	}
	return out
}

func byChannel(m map[string]int) string {
	var parts []string
	for _, c := range Channels {
		if m[c] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", c, m[c]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func kinds(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
