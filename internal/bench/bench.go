// Package bench is Herald's load generator: it sends notifications to a
// running Herald (or one it starts in process on the embedded default,
// with a bench sink as every provider), measures how fast they are
// accepted and how long each takes to reach its provider, and reports
// throughput, latency percentiles, errors and the Herald process's CPU
// time and peak memory.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/internal/bench/sink"
)

// Channels a mix may name, in the order reports list them.
var Channels = []string{"push", "email", "sms"}

// SeedMix is the traffic mix of the seed scenario: 10 push to 5 email to 1 SMS.
var SeedMix = Mix{"push": 10, "email": 5, "sms": 1}

// DayNotifications is the size of the seed scenario's day.
const DayNotifications = 16_000_000

// Mix is the relative weight of each channel among requests.
type Mix map[string]int

// ParseMix reads "push=10,email=5,sms=1".
func ParseMix(s string) (Mix, error) {
	m := Mix{}
	for part := range strings.SplitSeq(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(w)
		if !ok || err != nil || n < 0 || !slices.Contains(Channels, name) {
			return nil, fmt.Errorf("mix %q: want channel=weight pairs of %v, such as push=10,email=5,sms=1", s, Channels)
		}
		m[name] += n
	}
	total := 0
	for _, w := range m {
		total += w
	}
	if total == 0 {
		return nil, fmt.Errorf("mix %q: every weight is zero", s)
	}
	return m, nil
}

func (m Mix) String() string {
	var parts []string
	for _, c := range Channels {
		if m[c] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", c, m[c]))
		}
	}
	return strings.Join(parts, ",")
}

// pick chooses a channel by weight.
func (m Mix) pick(r *rand.Rand) string {
	total := 0
	for _, c := range Channels {
		total += m[c]
	}
	n := r.IntN(total)
	for _, c := range Channels {
		if n < m[c] {
			return c
		}
		n -= m[c]
	}
	return Channels[0]
}

// Target is a Herald to load: its base URL and an admin API key of an app,
// and where its providers send (a bench sink), if the bench is to read
// arrivals. Process, when set, reads the Herald process's CPU and memory.
type Target struct {
	Label string // names the target in the report; the URL when empty
	// URL is Herald's base URL, or several separated by commas (API
	// processes of one deployment): requests go to each in turn, setup
	// to the first.
	URL    string
	APIKey string
	// Sink is the sink the app's providers point at; nil when deliveries
	// are not observed (then only acceptance is measured).
	Sink *SinkClient
	// Configure makes the bench set the app's providers to the sink and
	// create its users; off when the app is already set up.
	Configure bool
	Process   ProcessStats
}

// Options shape the load.
type Options struct {
	Rate        float64       // requests per second, open loop; 0 for closed loop
	Concurrency int           // requests in flight, closed loop
	Duration    time.Duration // how long to send; 0 when Count decides
	Count       int           // how many requests to send; 0 when Duration decides
	Recipients  int           // users per request
	Users       int           // users created and addressed in turn
	Mix         Mix
	Day         bool          // a compressed diurnal curve shapes the rate (or concurrency)
	Wait        time.Duration // how long to wait for deliveries after the last request
	// EmailProvider is the kind set up for email on the sink: sendgrid (the default) or smtp.
	EmailProvider string
	// Progress, when set, gets a one-line status every second, rewritten in place.
	Progress io.Writer
	// Client sends the requests; nil for a client sized to the load.
	Client *http.Client
}

// Validate checks the options and fills defaults; Run calls it too.
func (o *Options) Validate() error {
	switch {
	case o.Rate < 0:
		return errors.New("--rate must not be negative")
	case o.Rate == 0 && o.Concurrency <= 0:
		return errors.New("give --rate N (open loop) or --concurrency N (closed loop)")
	case o.Duration <= 0 && o.Count <= 0:
		return errors.New("give --duration or --count")
	case o.Recipients < 1 || o.Recipients > 1000:
		return errors.New("--recipients must be 1 to 1000")
	case o.Users < o.Recipients:
		return fmt.Errorf("--users (%d) must be at least --recipients (%d)", o.Users, o.Recipients)
	case len(o.Mix) == 0:
		return errors.New("--mix is empty")
	}
	switch o.EmailProvider {
	case "":
		o.EmailProvider = sink.KindSendGrid
	case sink.KindSendGrid, sink.KindSMTP:
	default:
		return fmt.Errorf("--email-provider %q: want sendgrid or smtp", o.EmailProvider)
	}
	if o.Wait <= 0 {
		o.Wait = 60 * time.Second
	}
	return nil
}

// Run loads target as opts say and reports what it measured.
func Run(ctx context.Context, target Target, opts Options) (*Report, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	client := opts.Client
	if client == nil {
		client = NewClient(opts.Concurrency)
	}
	var apis []*apiClient
	for u := range strings.SplitSeq(target.URL, ",") {
		if u = strings.TrimSpace(u); u != "" {
			apis = append(apis, &apiClient{base: strings.TrimRight(u, "/"), key: target.APIKey, c: client})
		}
	}
	if len(apis) == 0 {
		return nil, errors.New("bench: no Herald URL")
	}
	if target.Configure {
		if err := setUp(ctx, apis[0], target.Sink, opts.Users, opts.EmailProvider); err != nil {
			return nil, err
		}
	}
	r := newRun(apis, target, opts)
	return r.run(ctx)
}

// NewClient is the bench's HTTP client, with idle connections kept for
// concurrency requests in flight (at least 256).
func NewClient(concurrency int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = max(concurrency, 256)
	tr.MaxIdleConns = tr.MaxIdleConnsPerHost
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// run is one measurement.
type run struct {
	apis   []*apiClient // request seq goes to apis[seq%len(apis)]
	target Target
	opts   Options

	start time.Time
	seq   atomic.Int64 // requests started

	mu         sync.Mutex
	sent       int
	accepted   int
	expected   int              // deliveries accepted (not suppressed) that a provider should get
	byChannel  map[string]int   // deliveries accepted per channel
	errs       map[string]int   // failed requests by kind
	classes    StatusClasses    // every answer by status class
	byID       map[string]int64 // delivery id → when its 202 arrived (Unix ns), or seen
	byRef      map[string]int64 // "hb-<seq>" → the same, for wires that carry no id
	refLeft    map[string]int   // deliveries of a ref not yet seen
	acceptLat  []time.Duration
	seconds    []*second
	delivered  int
	dupes      int
	unmatched  int
	deliverLat []time.Duration
	lastArrive int64
	// early holds arrivals polled before the bench read their 202 (the
	// worker can beat the answer), by delivery id or ref, until it does.
	early map[string][]sink.Arrival
}

// second is what happened in one second of the run.
type second struct {
	accepted, recipients, delivered int
	refused, serverErrors           int // 429 and 5xx answers
	acceptLat, deliverLat           []time.Duration
}

func newRun(apis []*apiClient, target Target, opts Options) *run {
	return &run{apis: apis, target: target, opts: opts, byChannel: map[string]int{}, errs: map[string]int{},
		byID: map[string]int64{}, byRef: map[string]int64{}, refLeft: map[string]int{}, early: map[string][]sink.Arrival{}}
}

func (r *run) sec(t time.Time) *second {
	i := max(0, int(t.Sub(r.start)/time.Second))
	for len(r.seconds) <= i {
		r.seconds = append(r.seconds, &second{})
	}
	return r.seconds[i]
}

func (r *run) run(ctx context.Context) (*Report, error) {
	var cursor int
	if r.target.Sink != nil {
		st, err := r.target.Sink.Stats(ctx)
		if err != nil {
			return nil, err
		}
		cursor = st.Arrivals // earlier arrivals are another run's
	}
	var cpu0 float64
	if r.target.Process != nil {
		cpu0, _, _ = r.target.Process()
	}
	r.start = time.Now()
	pollErr := make(chan error, 1)
	loadCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if r.opts.Duration > 0 {
		var c context.CancelFunc
		loadCtx, c = context.WithTimeout(loadCtx, r.opts.Duration)
		defer c()
	}

	// Arrivals are read while the load runs, for the progress line.
	pollDone := make(chan error, 1)
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	go func() { pollDone <- r.poll(pollCtx, &cursor, pollErr) }()
	progressDone := make(chan struct{})
	go r.progress(loadCtx, progressDone)

	if r.opts.Rate > 0 {
		r.openLoop(loadCtx)
	} else {
		r.closedLoop(loadCtx)
	}
	loadEnd := time.Now()
	cancel() // a run of --count ends here, not by its context
	<-progressDone

	// Wait for the deliveries still on their way.
	if r.target.Sink != nil {
		deadline := time.Now().Add(r.opts.Wait)
		for {
			r.mu.Lock()
			done := r.delivered >= r.expected
			r.mu.Unlock()
			if done || time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	stopPoll()
	<-pollDone
	if r.target.Sink != nil {
		// Whatever arrived since the last poll; a sink that cannot be read
		// now, nor could be before, ends the run without a report.
		if err := r.pollOnce(ctx, &cursor); err != nil && ctx.Err() == nil {
			select {
			case perr := <-pollErr:
				return nil, fmt.Errorf("%w (and during the run: %v)", err, perr)
			default:
			}
		}
	}
	rep := r.report(loadEnd)
	if r.target.Sink != nil {
		if st, err := r.target.Sink.Stats(ctx); err == nil {
			rep.Sink = &SinkCounts{Received: st.Received, Errors: st.Errors}
		}
	}
	if r.target.Process != nil {
		cpu1, rss, err := r.target.Process()
		if err == nil {
			rep.Process = &ProcessReport{CPUSeconds: round(cpu1-cpu0, 2), PeakRSSBytes: rss,
				WallSeconds: round(time.Since(r.start).Seconds(), 3)}
		}
	}
	return rep, ctx.Err()
}

// closedLoop keeps Concurrency requests in flight; with Day, fewer while
// the curve is low.
func (r *run) closedLoop(ctx context.Context) {
	var wg sync.WaitGroup
	for w := range r.opts.Concurrency {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
			for ctx.Err() == nil {
				if r.opts.Day && float64(w) >= math.Ceil(float64(r.opts.Concurrency)*r.curve()) {
					sleepCtx(ctx, 10*time.Millisecond)
					continue
				}
				seq, ok := r.take()
				if !ok {
					return
				}
				// The end of the run stops new requests, never one in
				// flight: Herald may have accepted it already.
				r.send(context.WithoutCancel(ctx), rng, seq, time.Now())
			}
		})
	}
	wg.Wait()
}

// openLoop starts requests at Rate per second whatever their answers;
// latency counts from when each was due, so a slow server cannot hide
// its queue by slowing the generator down.
func (r *run) openLoop(ctx context.Context) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 10000)
	next := time.Now()
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	for ctx.Err() == nil {
		rate := r.opts.Rate
		if r.opts.Day {
			rate = max(rate*r.curve(), 0.5)
		}
		if d := time.Until(next); d > 0 {
			sleepCtx(ctx, d)
			if ctx.Err() != nil {
				break
			}
		}
		due := next
		next = next.Add(time.Duration(float64(time.Second) / rate))
		seq, ok := r.take()
		if !ok {
			break
		}
		select {
		case sem <- struct{}{}:
		default:
			r.fail(due, "generator: 10000 requests in flight")
			continue
		}
		child := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
		wg.Go(func() {
			defer func() { <-sem }()
			r.send(context.WithoutCancel(ctx), child, seq, due)
		})
	}
	wg.Wait()
}

// take numbers the next request, or reports that Count are out.
func (r *run) take() (int64, bool) {
	seq := r.seq.Add(1)
	if r.opts.Count > 0 && seq > int64(r.opts.Count) {
		return 0, false
	}
	return seq, true
}

// curve is the compressed day: the share of the peak rate at this point
// of the run, from a night trough of 0.15 to the afternoon peak of 1.
func (r *run) curve() float64 {
	length := r.opts.Duration
	if length <= 0 {
		length = time.Minute
	}
	return dayCurve(float64(time.Since(r.start)) / float64(length))
}

// dayCurve is the rate at fraction x of a day (0 is midnight), peaking at
// 1 at 15:00 and bottoming at 0.15 at 03:00.
func dayCurve(x float64) float64 {
	x = x - math.Floor(x)
	return 0.15 + 0.85*(0.5-0.5*math.Cos(2*math.Pi*(x-0.125)))
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

type sendResponse struct {
	ID         string `json:"id"`
	Deliveries []struct {
		ID      string `json:"id"`
		Channel string `json:"channel"`
		Status  string `json:"status"`
	} `json:"deliveries"`
}

// send makes request seq, due at due, and records its answer.
func (r *run) send(ctx context.Context, rng *rand.Rand, seq int64, due time.Time) {
	channel := r.opts.Mix.pick(rng)
	ref := "hb-" + strconv.FormatInt(seq, 10)
	first := rng.IntN(r.opts.Users)
	to := make([]map[string]string, r.opts.Recipients)
	for i := range to {
		to[i] = map[string]string{"user_id": userID((first + i) % r.opts.Users)}
	}
	body := map[string]any{"to": to, "channels": []string{channel},
		"content": map[string]any{"title": "Bench", "subject": "Bench " + ref, "body": "Herald bench " + ref}}
	r.mu.Lock()
	r.sent++
	r.mu.Unlock()
	var res sendResponse
	api := r.apis[int(seq%int64(len(r.apis)))]
	status, err := api.do(ctx, http.MethodPost, "/v1/notifications", body, &res)
	now := time.Now()
	var he *httpError
	if err != nil && !errors.As(err, &he) {
		r.fail(due, errorKind(err))
		r.mu.Lock()
		r.classes.Transport++
		r.mu.Unlock()
		return
	}
	r.answered(now, status, he)
	if status != http.StatusAccepted {
		r.fail(due, "HTTP "+strconv.Itoa(status))
		return
	}
	at := now.UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.accepted++
	lat := now.Sub(due)
	r.acceptLat = append(r.acceptLat, lat)
	s := r.sec(now)
	s.accepted++
	s.recipients += len(res.Deliveries)
	s.acceptLat = append(s.acceptLat, lat)
	for _, d := range res.Deliveries {
		r.byChannel[d.Channel]++
		if d.Status != "accepted" {
			continue // suppressed: no provider will see it
		}
		r.expected++
		if d.Channel == "sms" { // Twilio's wire carries no delivery id, only the text
			r.byRef[ref] = at
			r.refLeft[ref]++
		} else {
			r.byID[d.ID] = at
		}
	}
	// Arrivals polled before this answer was read are matched now.
	keys := []string{ref}
	for _, d := range res.Deliveries {
		keys = append(keys, d.ID)
	}
	for _, k := range keys {
		if a, ok := r.early[k]; ok {
			delete(r.early, k)
			r.matchLocked(a, false)
		}
	}
}

// answered counts an HTTP answer by its class, and a 429's Retry-After.
func (r *run) answered(now time.Time, status int, he *httpError) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := &r.classes
	switch {
	case status/100 == 2:
		c.S2xx++
	case status == http.StatusTooManyRequests:
		c.S429++
		r.sec(now).refused++
		if he == nil || he.retryAfter == "" {
			c.S429WithoutRetryAfter++
		}
	case status/100 == 5:
		c.S5xx++
		r.sec(now).serverErrors++
	case status/100 == 4:
		c.Other4xx++
	default:
		c.Other++
	}
}

func (r *run) fail(due time.Time, kind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !due.IsZero() {
		r.sec(due)
	}
	r.errs[kind]++
}

// errorKind names a transport error briefly, for the errors table.
func errorKind(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "transport: timeout"
	case strings.Contains(err.Error(), "connection refused"):
		return "transport: connection refused"
	case strings.Contains(err.Error(), "connection reset"):
		return "transport: connection reset"
	case strings.Contains(err.Error(), "EOF"):
		return "transport: EOF"
	}
	return "transport: other"
}

// poll reads the sink's arrivals until ctx ends. A failed read is tried
// again at the next tick; the first failure goes to errc.
func (r *run) poll(ctx context.Context, cursor *int, errc chan<- error) error {
	if r.target.Sink == nil {
		return nil
	}
	for {
		if err := r.pollOnce(ctx, cursor); err != nil && ctx.Err() == nil {
			select {
			case errc <- err:
			default:
			}
		}
		sleepCtx(ctx, 200*time.Millisecond)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func (r *run) pollOnce(ctx context.Context, cursor *int) error {
	for {
		page, err := r.target.Sink.Arrivals(ctx, *cursor)
		if err != nil {
			return err
		}
		*cursor = page.Next
		r.match(page.Arrivals)
		if len(page.Arrivals) == 0 || len(page.Arrivals) < sinkPage {
			return nil
		}
	}
}

// seen marks, in byID and byRef, a delivery that has arrived.
const seen = -1

// match pairs arrivals with the deliveries they carry.
func (r *run) match(arrivals []sink.Arrival) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.matchLocked(arrivals, true)
}

// matchLocked matches arrivals; with hold, one of no delivery known yet
// waits in early for its 202.
func (r *run) matchLocked(arrivals []sink.Arrival, hold bool) {
	for _, a := range arrivals {
		var acc int64
		if a.ID != "" {
			acc = r.byID[a.ID]
			if acc > 0 {
				r.byID[a.ID] = seen
			}
		} else if a.Ref != "" {
			acc = r.byRef[a.Ref]
			if acc > 0 {
				if r.refLeft[a.Ref]--; r.refLeft[a.Ref] == 0 {
					delete(r.refLeft, a.Ref)
					r.byRef[a.Ref] = seen
				}
			}
		}
		switch acc {
		case seen: // a delivery that arrived before: a retry after a lost answer
			r.dupes++
			continue
		case 0: // not one of this run's deliveries, or its 202 is not read yet
			key := a.ID
			if key == "" {
				key = a.Ref
			}
			if hold && key != "" {
				r.early[key] = append(r.early[key], a)
			} else {
				r.unmatched++
			}
			continue
		}
		// The 202 and the worker's send race: a delivery may reach the
		// provider before its 202 reaches the bench. That counts as zero.
		lat := max(0, time.Duration(a.At-acc))
		r.delivered++
		r.deliverLat = append(r.deliverLat, lat)
		s := r.sec(time.Unix(0, a.At))
		s.delivered++
		s.deliverLat = append(s.deliverLat, lat)
		r.lastArrive = max(r.lastArrive, a.At)
	}
}

// progress writes the status line every second until ctx ends.
func (r *run) progress(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	if r.opts.Progress == nil {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastAcc, lastDel int
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprint(r.opts.Progress, "\r\033[K")
			return
		case now := <-t.C:
			r.mu.Lock()
			acc, del, nerr := 0, r.delivered, 0
			for _, s := range r.seconds {
				acc += s.recipients
			}
			for _, n := range r.errs {
				nerr += n
			}
			r.mu.Unlock()
			dt := now.Sub(last).Seconds()
			fmt.Fprintf(r.opts.Progress, "\r\033[K%5.0fs  accepted %7.0f/s  delivered %7.0f/s  errors %d",
				now.Sub(r.start).Seconds(), float64(acc-lastAcc)/dt, float64(del-lastDel)/dt, nerr)
			lastAcc, lastDel, last = acc, del, now
		}
	}
}

func userID(i int) string { return "bench-" + strconv.Itoa(i) }

// phone is user i's number: 555-01xx numbers are reserved for fiction but
// too few, so real-looking numbers of a few area codes, none ever texted.
func phone(i int) string {
	areas := []int{415, 212, 312, 617, 646, 206, 303, 512, 702, 808}
	return fmt.Sprintf("+1%d%03d%04d", areas[(i/8000000)%len(areas)], 200+(i/10000)%800, i%10000)
}

// apiClient calls Herald's API with one key.
type apiClient struct {
	base, key string
	c         *http.Client
}

// do sends body as JSON and decodes a 2xx answer into out; it returns the status.
func (a *apiClient) do(ctx context.Context, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+a.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := a.c.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		detail, _ := io.ReadAll(io.LimitReader(res.Body, 1<<10))
		return res.StatusCode, &httpError{status: res.StatusCode, body: strings.TrimSpace(string(detail)),
			retryAfter: res.Header.Get("Retry-After")}
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
		return res.StatusCode, nil
	}
	return res.StatusCode, json.NewDecoder(res.Body).Decode(out)
}

// httpError is an answer other than 2xx.
type httpError struct {
	status     int
	body       string
	retryAfter string
}

func (e *httpError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.body) }

// must calls do and fails unless the answer is 2xx. A 429 (the key's
// request limit, met by setting up many users at once) is not an answer
// to the request: it is made again after the Retry-After, up to
// setupRetries times.
func (a *apiClient) must(ctx context.Context, method, path string, body any) error {
	for try := 0; ; try++ {
		_, err := a.do(ctx, method, path, body, nil)
		var he *httpError
		if err == nil || !errors.As(err, &he) || he.status != http.StatusTooManyRequests || try == setupRetries {
			if err != nil {
				return fmt.Errorf("bench: %s %s: %w", method, path, err)
			}
			return nil
		}
		wait := time.Second
		if secs, perr := strconv.Atoi(he.retryAfter); perr == nil && secs > 0 {
			wait = time.Duration(secs) * time.Second
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: %s %s: %w", method, path, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// setupRetries bounds how often a setup request refused with 429 is made again.
const setupRetries = 30

// setUp points the app's providers at the sink and creates users with an
// email address, a phone number and a device (iOS for even users, Android
// for odd ones).
func setUp(ctx context.Context, api *apiClient, s *SinkClient, users int, emailKind string) error {
	if s == nil {
		return errors.New("bench: setting the app up needs a sink")
	}
	if emailKind == sink.KindSMTP && s.SMTPAddr == "" {
		return errors.New("bench: --email-provider smtp needs the sink's SMTP address (--sink-smtp)")
	}
	settings, err := sink.ProviderSettings(s.URL, s.SMTPAddr, s.CAPEM)
	if err != nil {
		return err
	}
	entry := func(kind string) map[string]any { return map[string]any{"kind": kind, "settings": settings[kind]} }
	for path, list := range map[string][]map[string]any{
		"/v1/providers/push":  {entry(sink.KindAPNs), entry(sink.KindFCM)},
		"/v1/providers/sms":   {entry(sink.KindTwilio)},
		"/v1/providers/email": {entry(emailKind)},
	} {
		if err := api.must(ctx, http.MethodPut, path, list); err != nil {
			return err
		}
	}
	sem := make(chan struct{}, 16)
	errc := make(chan error, users)
	var wg sync.WaitGroup
	for i := range users {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			id := userID(i)
			err := api.must(ctx, http.MethodPut, "/v1/users/"+id, map[string]any{
				"email": id + "@bench.herald.invalid", "phone": phone(i)})
			if err == nil {
				dev := map[string]string{"platform": "android", "token": fmt.Sprintf("bench:%0152d", i)}
				if i%2 == 0 {
					dev = map[string]string{"platform": "ios", "token": fmt.Sprintf("%064x", i+1)}
				}
				err = api.must(ctx, http.MethodPost, "/v1/users/"+id+"/devices", dev)
			}
			if err != nil {
				errc <- err
			}
		})
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// sinkPage is how many arrivals one read asks for.
const sinkPage = 50000

// SinkClient reads a bench sink's counts and arrivals over HTTPS.
type SinkClient struct {
	URL      string // https://host:port
	SMTPAddr string // host:port, or empty
	CAPEM    []byte
	c        *http.Client
}

// NewSinkClient is a client for the sink at url whose CA is caPEM.
func NewSinkClient(url, smtpAddr string, caPEM []byte) *SinkClient {
	return &SinkClient{URL: strings.TrimRight(url, "/"), SMTPAddr: smtpAddr, CAPEM: caPEM, c: sink.ClientFor(caPEM)}
}

func (s *SinkClient) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	if err != nil {
		return err
	}
	res, err := s.c.Do(req)
	if err != nil {
		return fmt.Errorf("bench: sink %s: %w", path, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: sink %s: HTTP %d", path, res.StatusCode)
	}
	return json.NewDecoder(res.Body).Decode(out)
}

// Stats reads GET /stats.
func (s *SinkClient) Stats(ctx context.Context) (sink.Stats, error) {
	var st sink.Stats
	return st, s.get(ctx, "/stats", &st)
}

// Arrivals reads a page of GET /arrivals from since.
func (s *SinkClient) Arrivals(ctx context.Context, since int) (sink.ArrivalsPage, error) {
	var p sink.ArrivalsPage
	return p, s.get(ctx, "/arrivals?since="+strconv.Itoa(since)+"&limit="+strconv.Itoa(sinkPage), &p)
}

// percentiles of a sample, in milliseconds.
func percentiles(d []time.Duration) *Percentiles {
	if len(d) == 0 {
		return nil
	}
	s := slices.Clone(d)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return ms(s[max(0, min(i, len(s)-1))])
	}
	return &Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(s[len(s)-1]), N: len(s)}
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 2) }

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}

// ProcessStats reads a process's CPU seconds so far and its peak RSS in bytes.
type ProcessStats func() (cpuSeconds float64, peakRSS int64, err error)

// ProcFS reads pid's (0 for this process) CPU time and peak RSS from
// /proc: Linux only; elsewhere every read fails and the report leaves
// the process out.
func ProcFS(pid int) ProcessStats {
	dir := "/proc/self"
	if pid > 0 {
		dir = "/proc/" + strconv.Itoa(pid)
	}
	return func() (float64, int64, error) {
		stat, err := os.ReadFile(dir + "/stat")
		if err != nil {
			return 0, 0, err
		}
		// Fields after the command, which is in parentheses and may hold spaces.
		rest := string(stat)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) < 13 {
			return 0, 0, fmt.Errorf("bench: %s/stat: short", dir)
		}
		utime, _ := strconv.ParseFloat(f[11], 64)
		stime, _ := strconv.ParseFloat(f[12], 64)
		const clockTicks = 100 // USER_HZ, 100 on every Linux architecture Go supports
		status, err := os.ReadFile(dir + "/status")
		if err != nil {
			return 0, 0, err
		}
		var hwm int64
		for line := range strings.SplitSeq(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				hwm = kb << 10
			}
		}
		return (utime + stime) / clockTicks, hwm, nil
	}
}
