package ceiling

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// HTTP measures requests per second of a bare net/http server on the
// loopback answering each POST with a tiny JSON body, concurrency requests
// in flight from client (nil: one sized for them).
func HTTP(ctx context.Context, d time.Duration, concurrency int, client *http.Client) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("ceiling: http: %w", err)
	}
	answer := []byte(`{"id":"0190c9f2-6a4e-7c1b-9d2a-5f0e3b8a1c47","status":"accepted"}` + "\n")
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write(answer)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost, tr.MaxIdleConns = max(concurrency, 256), max(concurrency, 256)
		client = &http.Client{Transport: tr, Timeout: 30 * time.Second}
		defer tr.CloseIdleConnections()
	}
	url := "http://" + ln.Addr().String() + "/v1/notifications"
	body := []byte(`{"to":[{"user_id":"bench-1"}],"channels":["push"],"content":{"title":"Bench","body":"Herald bench hb-1"}}`)

	// Every client finishes the request it has in flight when the time is
	// up, so even a machine too busy to answer one in d yields a figure.
	var done atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range concurrency {
		wg.Go(func() {
			for ctx.Err() == nil && time.Since(start) < d {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				req.Header.Set("Content-Type", "application/json")
				res, err := client.Do(req)
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				_ = res.Body.Close()
				if res.StatusCode == http.StatusAccepted {
					done.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, fmt.Errorf("ceiling: http: %w", firstErr)
	}
	rate, err := perSecond(done.Load(), start)
	if err != nil {
		return 0, fmt.Errorf("ceiling: http: %w", err)
	}
	return rate, nil
}
