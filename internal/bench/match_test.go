package bench

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/bench/sink"
)

// TestMatchCountsEachDeliveryOnce: an arrival is matched to its 202 by
// delivery id, or by the text's ref for two SMS of one request; a second
// arrival of a delivery is a repeat, and an arrival of no delivery of
// this run is unmatched.
func TestMatchCountsEachDeliveryOnce(t *testing.T) {
	r := newRun(nil, Target{}, Options{})
	r.start = time.Unix(100, 0)
	acc := r.start.Add(time.Second).UnixNano()
	r.byID["d1"] = acc
	r.byRef["hb-7"], r.refLeft["hb-7"] = acc, 2
	at := acc + int64(30*time.Millisecond)
	r.match([]sink.Arrival{
		{Kind: "apns", ID: "d1", At: at},
		{Kind: "twilio", Ref: "hb-7", At: at},
		{Kind: "apns", ID: "d1", At: at + 1},          // a retry that reached the provider again
		{Kind: "twilio", Ref: "hb-7", At: acc - 1000}, // before its 202 reached the bench
		{Kind: "twilio", Ref: "hb-7", At: at},         // a third SMS of a two-SMS request
		{Kind: "fcm", ID: "other", At: at},
		{Kind: "smtp", At: at},
	})
	if r.delivered != 3 || r.dupes != 2 || r.unmatched != 1 || len(r.early["other"]) != 1 {
		t.Errorf("delivered %d, repeats %d, unmatched %d, early %v; want 3, 2, 1 and other held",
			r.delivered, r.dupes, r.unmatched, r.early)
	}
	if rep := r.report(r.start.Add(2 * time.Second)); rep.Deliveries.Unmatched != 2 {
		t.Errorf("report: %d unmatched, want 2 (other's 202 never came)", rep.Deliveries.Unmatched)
	}
	p := percentiles(r.deliverLat)
	if p.N != 3 || p.P50 != 30 || p.Max != 30 || r.deliverLat[2] != 0 {
		t.Errorf("latencies %v (%+v); want 30ms, 30ms and 0 for the early one", r.deliverLat, p)
	}
	if s := r.seconds; len(s) != 2 || s[1].delivered != 2 || s[0].delivered != 1 {
		t.Errorf("per-second deliveries: %d seconds", len(s))
	}
}

// TestMatchAnArrivalBeforeIts202: a worker may reach the provider before
// the bench reads the 202; the arrival waits and is matched then.
func TestMatchAnArrivalBeforeIts202(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"id":"n1","status":"accepted","deliveries":[{"id":"d9","channel":"push","status":"accepted"}]}`)
	}))
	defer srv.Close()
	r := newRun([]*apiClient{{base: srv.URL, c: srv.Client()}}, Target{}, Options{Mix: Mix{"push": 1}, Users: 1, Recipients: 1})
	r.start = time.Now()
	r.match([]sink.Arrival{{Kind: "apns", ID: "d9", At: time.Now().UnixNano()}})
	if r.delivered != 0 || len(r.early) != 1 {
		t.Fatalf("before the 202: delivered %d, early %v", r.delivered, r.early)
	}
	r.send(context.Background(), rand.New(rand.NewPCG(1, 2)), 1, time.Now())
	if r.delivered != 1 || len(r.early) != 0 || r.unmatched != 0 || r.expected != 1 {
		t.Errorf("after the 202: delivered %d, early %v, unmatched %d, expected %d", r.delivered, r.early, r.unmatched, r.expected)
	}
}

func TestPercentiles(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	p := percentiles(d)
	if p.P50 != 50 || p.P90 != 90 || p.P99 != 99 || p.Max != 100 || p.N != 100 {
		t.Errorf("percentiles of 1..100 ms = %+v", p)
	}
	if percentiles(nil) != nil {
		t.Error("percentiles of nothing are not nil")
	}
}

// TestRunSpreadsOverSeveralURLs: with two API URLs, requests go to each in
// turn, and both halves are counted in one report.
func TestRunSpreadsOverSeveralURLs(t *testing.T) {
	var hits [2]atomic.Int64
	var srvs [2]*httptest.Server
	for i := range srvs {
		srvs[i] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			hits[i].Add(1)
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, `{"id":"n","status":"accepted","deliveries":[]}`)
		}))
		defer srvs[i].Close()
	}
	target := Target{URL: srvs[0].URL + "/, " + srvs[1].URL, APIKey: "k"}
	rep, err := Run(context.Background(), target, Options{Concurrency: 4, Count: 40, Mix: Mix{"push": 1}, Users: 1, Recipients: 1})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := hits[0].Load(), hits[1].Load(); a != 20 || b != 20 {
		t.Errorf("requests per URL: %d and %d, want 20 each", a, b)
	}
	if rep.Requests.Accepted != 40 {
		t.Errorf("report: %d accepted, want 40", rep.Requests.Accepted)
	}
	if _, err := Run(context.Background(), Target{URL: " , ", APIKey: "k"}, Options{Concurrency: 1, Count: 1, Mix: Mix{"push": 1}, Users: 1, Recipients: 1}); err == nil {
		t.Error("a URL list of nothing was taken")
	}
}
