package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// channelMix is the production mix, push:email:sms = 10:5:1: notification
// i goes to channelMix[i%16].
var channelMix = func() []string {
	var m []string
	for range 10 {
		m = append(m, "push")
	}
	for range 5 {
		m = append(m, "email")
	}
	return append(m, "sms")
}()

// createUsers creates n users, each with an email address, a phone number
// and one iPhone.
func createUsers(t *testing.T, c *client, n int) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("u%d", i)
		c.must(t, 201, "PUT", "/v1/users/"+id, map[string]any{
			"email": id + "@example.com", "phone": fmt.Sprintf("+1415555%04d", i)})
		c.must(t, 201, "POST", "/v1/users/"+id+"/devices", map[string]any{
			"platform": "ios", "token": fmt.Sprintf("%064x", i+1)})
	}
}

// entry is the load generator's side of the ledger: one notification it
// got a 202 for, with its one delivery.
type entry struct {
	Ref            string
	Channel        string
	NotificationID string
	DeliveryID     string
	Start          time.Time // when the request that got the 202 was sent
}

// key is how the provider recorder knows this delivery.
func (e *entry) key() string {
	if e.Channel == "sms" {
		return "ref:" + e.Ref
	}
	return e.DeliveryID
}

// load is one run of the load generator.
type load struct {
	Count       int
	Concurrency int
	Rate        float64 // notifications per second; 0 for as fast as Herald takes them
	Users       int
	Channels    []string // the mix; channelMix when nil
	RunID       string
	GiveUpAfter time.Duration // per notification; a real client's deadline
}

// ledger is what the load generator recorded.
type ledger struct {
	mu       sync.Mutex
	entries  []*entry
	gaveUp   int
	rejected []string
	retries  atomic.Int64
}

// run sends l.Count notifications, each with its own Idempotency-Key,
// retrying the same key on connection errors, 503, 409-in-flight and 429
// until a 202 or GiveUpAfter, as a real client would.
func (l load) run(ctx context.Context, c *client, led *ledger) {
	mix := l.Channels
	if mix == nil {
		mix = channelMix
	}
	if l.GiveUpAfter == 0 {
		l.GiveUpAfter = 2 * time.Minute
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range l.Concurrency {
		wg.Go(func() {
			for i := range next {
				l.one(ctx, c, led, i, mix[i%len(mix)])
			}
		})
	}
	begin := time.Now()
	for i := range l.Count {
		if l.Rate > 0 {
			if d := time.Until(begin.Add(time.Duration(float64(i) / l.Rate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		select {
		case next <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
}

func (l load) one(ctx context.Context, c *client, led *ledger, i int, channel string) {
	ref := fmt.Sprintf("%s-%d", l.RunID, i)
	body := map[string]any{
		"to":       []any{map[string]any{"user_id": fmt.Sprintf("u%d", i%l.Users)}},
		"channels": []string{channel},
		"content": map[string]any{"title": "Order update", "subject": "Order update",
			"body": "Your order moved. ref=" + ref + " "},
	}
	header := http.Header{"Idempotency-Key": {ref}}
	deadline := time.Now().Add(l.GiveUpAfter)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		start := time.Now()
		status, out, err := c.do(ctx, "POST", "/v1/notifications", header, body)
		switch {
		case err == nil && status == http.StatusAccepted:
			var acc struct {
				ID         string
				Deliveries []struct{ ID, Channel string }
			}
			if err := json.Unmarshal(out, &acc); err != nil || len(acc.Deliveries) != 1 {
				led.reject(fmt.Sprintf("%s: 202 with %s (%v)", ref, out, err))
				return
			}
			led.add(&entry{Ref: ref, Channel: channel, NotificationID: acc.ID, DeliveryID: acc.Deliveries[0].ID, Start: start})
			return
		case err != nil, status == http.StatusServiceUnavailable, status == http.StatusBadGateway,
			status == http.StatusConflict, status == http.StatusTooManyRequests:
			led.retries.Add(1)
			time.Sleep(100 * time.Millisecond)
		default:
			led.reject(fmt.Sprintf("%s: %d %s", ref, status, out))
			return
		}
	}
	led.mu.Lock()
	led.gaveUp++
	led.mu.Unlock()
}

func (led *ledger) add(e *entry) {
	led.mu.Lock()
	defer led.mu.Unlock()
	led.entries = append(led.entries, e)
}

func (led *ledger) reject(s string) {
	led.mu.Lock()
	defer led.mu.Unlock()
	led.rejected = append(led.rejected, s)
}

// figures is what a fault case reports, one JSON line each.
type figures struct {
	Case              string           `json:"case"`
	Form              string           `json:"form"` // short or long
	Notifications     int              `json:"notifications"`
	Accepted          int              `json:"accepted"`
	GaveUp            int              `json:"gave_up"`
	ClientRetries     int64            `json:"client_retries"`
	Delivered         int              `json:"delivered"`
	Dead              int              `json:"dead"`
	Suppressed        int              `json:"suppressed"`
	Failed            int              `json:"failed"`
	Lost              int              `json:"lost"`
	Duplicates        int              `json:"duplicates"`  // deliveries a provider accepted more than once
	ExtraSends        int              `json:"extra_sends"` // accepted calls beyond the first, over all deliveries
	FlaggedDuplicates int              `json:"flagged_duplicates"`
	DuplicatesPer100k float64          `json:"duplicates_per_100k"`
	Unledgered        int              `json:"unledgered"`            // provider accepted a delivery no 202 named
	Disruptions       int              `json:"disruptions,omitempty"` // kills, node failures or restarts
	LoadSeconds       float64          `json:"load_seconds"`
	DrainSeconds      float64          `json:"drain_seconds"`
	Latency           map[string]pct   `json:"latency_ms,omitempty"`
	Faults            map[string]int64 `json:"faults,omitempty"`
	LostRefs          []string         `json:"lost_refs,omitempty"`
	UnflaggedRefs     []string         `json:"unflagged_refs,omitempty"`
	DuplicateRefs     []string         `json:"duplicate_refs,omitempty"` // the first 50, with their timelines
}

// pct is a latency distribution in milliseconds.
type pct struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

type deliveryView struct {
	ID                string `json:"id"`
	Channel           string `json:"channel"`
	Status            string `json:"status"`
	Reason            string `json:"reason"`
	Attempts          int    `json:"attempts"`
	PossibleDuplicate bool   `json:"possible_duplicate"`
	Timeline          []struct {
		Status string `json:"status"`
		Detail string `json:"detail"`
	} `json:"timeline"`
}

// flagged reports whether the delivery says it may have been sent twice.
func (d deliveryView) flagged() bool {
	if d.PossibleDuplicate {
		return true
	}
	for _, ev := range d.Timeline {
		if strings.HasPrefix(ev.Detail, "possible_duplicate") {
			return true
		}
	}
	return false
}

// delivery reads one entry's delivery from Herald.
func (c *client) delivery(ctx context.Context, e *entry) (deliveryView, error) {
	status, out, err := c.do(ctx, "GET", "/v1/notifications/"+e.NotificationID, nil, nil)
	if err != nil {
		return deliveryView{}, err
	}
	if status != http.StatusOK {
		return deliveryView{}, fmt.Errorf("GET %s: %d %s", e.NotificationID, status, out)
	}
	var n struct{ Deliveries []deliveryView }
	if err := json.Unmarshal(out, &n); err != nil {
		return deliveryView{}, err
	}
	for _, d := range n.Deliveries {
		if d.ID == e.DeliveryID {
			return d, nil
		}
	}
	return deliveryView{}, fmt.Errorf("notification %s has no delivery %s", e.NotificationID, e.DeliveryID)
}

// each runs f on every entry, eight at a time.
func each(entries []*entry, f func(*entry)) {
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, e := range entries {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(e)
		})
	}
	wg.Wait()
}

// settle waits until every accepted delivery was accepted by its provider
// or ended dead, suppressed or failed in Herald, or until timeout; then it
// gives the reconciler a few more passes (nothing may be sent again), and
// fills the ledger's figures.
func settle(t *testing.T, c *client, led *ledger, rec *recorder, timeout time.Duration, f *figures) {
	t.Helper()
	begin := time.Now()
	terminal := map[*entry]string{}
	last := map[*entry]string{} // the status Herald last showed for a pending entry
	var mu sync.Mutex
	lastCount, lastProgress := -1, time.Now()
	for {
		var pending []*entry
		for _, e := range led.entries {
			if n, _ := rec.get(e.key()); n == 0 && terminal[e] == "" {
				pending = append(pending, e)
			}
		}
		if len(pending) == 0 || time.Since(begin) > timeout {
			break
		}
		if len(pending) != lastCount {
			lastCount, lastProgress = len(pending), time.Now()
		}
		// Ask Herald only about the stragglers: once the providers go quiet.
		if len(pending) <= 200 || time.Since(lastProgress) > 2*time.Second {
			each(pending, func(e *entry) {
				d, err := c.delivery(context.Background(), e)
				if err != nil {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				last[e] = fmt.Sprintf("%s, %d attempts", d.Status, d.Attempts)
				switch d.Status {
				case "dead", "suppressed", "failed", "canceled":
					terminal[e] = d.Status
				}
			})
		}
		time.Sleep(500 * time.Millisecond)
	}
	// A few reconciler passes (250ms each, 2s staleness) during which nothing may be sent again.
	time.Sleep(4 * time.Second)
	f.DrainSeconds = time.Since(begin).Seconds()

	f.Accepted, f.GaveUp, f.ClientRetries = len(led.entries), led.gaveUp, led.retries.Load()
	known := map[string]bool{}
	var dups []*entry
	for _, e := range led.entries {
		known[e.key()] = true
		n, _ := rec.get(e.key())
		switch {
		case n > 0:
			f.Delivered++
			if n > 1 {
				f.Duplicates++
				f.ExtraSends += n - 1
				dups = append(dups, e)
			}
		case terminal[e] == "dead":
			f.Dead++
		case terminal[e] == "suppressed":
			f.Suppressed++
		default:
			if terminal[e] == "failed" {
				f.Failed++
			}
			f.Lost++
			if len(f.LostRefs) < 20 {
				f.LostRefs = append(f.LostRefs, fmt.Sprintf("%s %s %s (herald: %s)", e.Ref, e.Channel, e.DeliveryID, last[e]))
			}
		}
	}
	for k := range rec.keys() {
		if !known[k] {
			f.Unledgered++
		}
	}
	each(dups, func(e *entry) {
		d, err := c.delivery(context.Background(), e)
		mu.Lock()
		defer mu.Unlock()
		if len(f.DuplicateRefs) < 50 {
			f.DuplicateRefs = append(f.DuplicateRefs, fmt.Sprintf("%s %s %s accepted=%s attempts=%d timeline=%+v",
				e.Ref, e.Channel, e.DeliveryID, rec.times(e.key()), d.Attempts, d.Timeline))
		}
		if err == nil && d.flagged() {
			f.FlaggedDuplicates++
			return
		}
		f.UnflaggedRefs = append(f.UnflaggedRefs, fmt.Sprintf("%s %s %s attempts=%d timeline=%+v (%v)",
			e.Ref, e.Channel, e.DeliveryID, d.Attempts, d.Timeline, err))
	})
	if f.Accepted > 0 {
		f.DuplicatesPer100k = float64(f.Duplicates) * 100000 / float64(f.Accepted)
	}
}

// latency is the time from the send request to the provider's first
// acceptance, per channel, for entries whose channel is in channels.
func latency(led *ledger, rec *recorder, channels ...string) map[string]pct {
	by := map[string][]float64{}
	for _, e := range led.entries {
		if !slices.Contains(channels, e.Channel) {
			continue
		}
		if n, first := rec.get(e.key()); n > 0 {
			by[e.Channel] = append(by[e.Channel], float64(first.Sub(e.Start).Microseconds())/1000)
		}
	}
	out := map[string]pct{}
	for ch, xs := range by {
		slices.Sort(xs)
		out[ch] = pct{N: len(xs), P50: xs[len(xs)/2], P99: xs[min(len(xs)-1, len(xs)*99/100)], Max: xs[len(xs)-1]}
	}
	return out
}

// check reports the figures and fails on what the issue rules out: a lost
// notification, a duplicate without its flag, or a request the API refused.
func check(t *testing.T, led *ledger, f *figures) {
	t.Helper()
	raw, _ := json.Marshal(f)
	t.Logf("figures: %s", raw)
	if path := os.Getenv("HERALD_FAULTS_REPORT"); path != "" {
		fh, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Errorf("report: %v", err)
		} else {
			fmt.Fprintf(fh, "%s\n", raw)
			fh.Close()
		}
	}
	if len(led.rejected) > 0 {
		t.Errorf("Herald refused %d sends, first: %s", len(led.rejected), led.rejected[0])
	}
	if f.GaveUp > 0 {
		t.Errorf("the client gave up on %d notifications that never got a 202", f.GaveUp)
	}
	if f.Lost > 0 {
		t.Errorf("lost = %d, want 0: %v", f.Lost, f.LostRefs)
	}
	if len(f.UnflaggedRefs) > 0 {
		t.Errorf("%d duplicated deliveries carry no possible_duplicate flag: %v", len(f.UnflaggedRefs), f.UnflaggedRefs)
	}
	if f.Unledgered > 0 {
		t.Errorf("providers accepted %d deliveries that no 202 named", f.Unledgered)
	}
}

// long reports whether the long form of the cases runs (HERALD_FAULTS_LONG=1).
func long() bool { return os.Getenv("HERALD_FAULTS_LONG") == "1" }

func form() string {
	if long() {
		return "long"
	}
	return "short"
}
