package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/netguard"
)

// claimBatch is how many due posts one pass claims, and sendConcurrency
// how many of them are posted at once.
const (
	claimBatch      = 64
	sendConcurrency = 8
)

// httpClient posts to endpoints: no proxy (it would hide the target from
// the guard), the guard in the dialer unless private targets are allowed,
// no redirects (a 3xx is a failed attempt), a timeout per post.
type httpClient struct {
	*http.Client
	allowPrivate bool
}

func newHTTPClient(timeout time.Duration, allowPrivate bool) *httpClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.ControlContext = netguard.Control
	}
	tr.DialContext = d.DialContext
	tr.MaxIdleConnsPerHost = sendConcurrency
	return &httpClient{allowPrivate: allowPrivate, Client: &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Start runs the sender until Stop.
func (s *Service) Start(ctx context.Context) error {
	if s.started {
		return herald.Errorf(herald.CodeInternal, "webhook: started twice")
	}
	s.started = true
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	go s.loop(rctx)
	return nil
}

// Stop ends the sender, waiting for the posts in flight until ctx ends;
// then they are abandoned and their claims run out, so another pass posts
// them again. Safe to call twice; a no-op when never started.
func (s *Service) Stop(ctx context.Context) error {
	if !s.started {
		return nil
	}
	s.stopOnce.Do(func() { close(s.stop) })
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.cancel()
		<-s.done
		return &herald.Error{Code: herald.CodeUnavailable, Message: "webhook: stop: posts still in flight", Err: ctx.Err()}
	}
}

func (s *Service) loop(ctx context.Context) {
	defer close(s.done)
	defer s.cancel()
	t := time.NewTicker(s.o.Poll)
	defer t.Stop()
	for {
		n, err := s.pass(ctx)
		if err != nil {
			s.log.Warn("claiming webhook posts failed", "err", err)
		}
		if n == claimBatch {
			select {
			case <-s.stop:
				return
			default:
				continue // more are due
			}
		}
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// pass claims the due posts and posts them, and reports how many it claimed.
func (s *Service) pass(ctx context.Context) (int, error) {
	now := s.o.Now()
	// The claim outlasts a post's timeout with room to record its outcome.
	posts, err := s.store.ClaimWebhookPosts(ctx, now, now.Add(2*s.o.Timeout+10*time.Second), claimBatch)
	if err != nil {
		return 0, err
	}
	slots := make(chan struct{}, sendConcurrency)
	var wg sync.WaitGroup
	for _, p := range posts {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			s.deliver(ctx, p)
		})
	}
	wg.Wait()
	return len(posts), nil
}

// deliver makes one attempt of a post and records its outcome.
func (s *Service) deliver(ctx context.Context, p herald.WebhookPost) {
	log := s.log.With("app", p.AppID, "webhook", p.WebhookID, "webhook_id", p.ID)
	hooks, err := s.hooks(ctx, p.AppID)
	if err != nil {
		log.Warn("webhook endpoints unavailable; the post waits for its claim to run out", "err", err)
		return
	}
	var h *hook
	for i := range hooks {
		if hooks[i].ID == p.WebhookID {
			h = &hooks[i]
		}
	}
	if h == nil || h.DisabledAt != nil {
		s.finish(ctx, log, p, OutcomeDropped)
		return
	}
	status, err := s.post(ctx, h, p)
	var blocked *netguard.BlockedError
	switch {
	case err == nil && status >= 200 && status < 300:
		s.finish(ctx, log, p, OutcomeDelivered)
	case err == nil && status == http.StatusGone:
		log.Warn("webhook endpoint answered 410 Gone: disabling it", "url", h.URL)
		if err := s.store.DisableWebhook(ctx, p.AppID, p.WebhookID, s.o.Now()); err != nil && herald.ErrorCode(err) != herald.CodeNotFound {
			log.Warn("disabling the webhook endpoint failed", "err", err)
			return
		}
		s.forget(p.AppID)
		s.posts.WithLabelValues(OutcomeGone).Inc()
	case errors.As(err, &blocked):
		log.Warn("webhook post refused: the endpoint resolves to a private address", "url", h.URL, "err", err)
		s.finish(ctx, log, p, OutcomeRefused)
	default:
		detail := "status " + strconv.Itoa(status)
		if err != nil {
			detail = err.Error()
		}
		n := p.Attempts + 1
		if n >= s.o.Attempts {
			log.Warn("webhook post given up", "attempts", n, "url", h.URL, "last", detail)
			s.finish(ctx, log, p, OutcomeGaveUp)
			return
		}
		wait := s.backoff(n)
		log.Info("webhook post failed; retrying", "attempt", n, "in", wait, "last", detail)
		if err := s.store.RetryWebhookPost(ctx, p.AppID, p.ID, n, s.o.Now().Add(wait)); err != nil && herald.ErrorCode(err) != herald.CodeNotFound {
			log.Warn("recording a failed webhook post failed; it is tried again when its claim runs out", "err", err)
		}
		s.posts.WithLabelValues(OutcomeFailed).Inc()
	}
}

// finish removes a post that needs no more attempts and counts its outcome.
func (s *Service) finish(ctx context.Context, log *slog.Logger, p herald.WebhookPost, outcome string) {
	if err := s.store.DeleteWebhookPost(ctx, p.AppID, p.ID); err != nil {
		// Posted again when the claim runs out, with the same webhook-id.
		log.Warn("removing a finished webhook post failed", "outcome", outcome, "err", err)
	}
	s.posts.WithLabelValues(outcome).Inc()
}

// post sends one signed attempt and returns the answer's status.
func (s *Service) post(ctx context.Context, h *hook, p herald.WebhookPost) (int, error) {
	u, err := url.Parse(h.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return 0, fmt.Errorf("webhook: bad endpoint URL %q", h.URL)
	}
	if !s.client.allowPrivate {
		if reason := netguard.HostReason(u.Hostname()); reason != "" {
			a, _ := netipAddr(u.Hostname())
			return 0, &netguard.BlockedError{Addr: a, Reason: reason}
		}
	}
	ts := s.o.Now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(p.Payload))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Herald-Webhooks/1")
	req.Header.Set("webhook-id", p.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(h.key, p.ID, ts, p.Payload))
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

func netipAddr(host string) (netip.Addr, error) { return netip.ParseAddr(host) }
