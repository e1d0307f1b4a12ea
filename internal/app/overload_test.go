package app_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/app"
	"github.com/heraldhq/herald/internal/provider/providertest"
)

// TestDefaultsShedOverload: the default configuration bounds both the
// delivery lag and the sends accepted at once, so an overload is answered
// 429 rather than absorbed until latency or memory runs away.
func TestDefaultsShedOverload(t *testing.T) {
	t.Parallel()
	d := app.Defaults()
	if d.MaxQueueLag <= 0 || d.MaxSendsInFlight <= 0 {
		t.Fatalf("defaults: --max-queue-lag %s, --max-sends-in-flight %d; want both on", d.MaxQueueLag, d.MaxSendsInFlight)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	d.MaxSendsInFlight = -1
	if err := d.Validate(); err == nil || !strings.Contains(err.Error(), "max-sends-in-flight") {
		t.Errorf("--max-sends-in-flight -1: %v, want an error naming it", err)
	}
}

// slowSend starts a send on a connection of its own and sends only part of
// its body, so that the request holds its place among the sends in
// flight; finish sends the rest and returns the status.
func slowSend(t *testing.T, addr, key, body string) (finish func() int) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	head := fmt.Sprintf("POST /v1/notifications HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, key, len(body))
	if _, err := conn.Write([]byte(head + body[:10])); err != nil {
		t.Fatal(err)
	}
	return func() int {
		t.Helper()
		if _, err := conn.Write([]byte(body[10:])); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		return res.StatusCode
	}
}

// TestOverloadShedsWith429: on the embedded default with every role, when
// more sends arrive than the process accepts at once, the excess is
// answered 429 rate-limited problem+json with Retry-After, never a 5xx,
// and counted; the sends already in flight are accepted, and everything
// accepted is delivered exactly once.
func TestOverloadShedsWith429(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	cfg := testConfig(t)
	cfg.MaxSendsInFlight = 2
	a := start(t, cfg)
	key := newApp(t, a, "shop")
	c := newAPI(t, a, key)
	configureEmail(t, c, smtpd)

	body := `{"to":[{"user_id":"ada"}],"channels":["email"],"content":{"subject":"Hi","body":"held"}}`
	held := []func() int{slowSend(t, a.Addr(), key, body), slowSend(t, a.Addr(), key, body)}
	waitMetric(t, a, "herald_sends_in_flight", 2)

	const excess = 5
	for i := range excess {
		r := c.do("POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
			"channels": []string{"email"}, "content": map[string]any{"subject": "Hi", "body": "shed"}})
		if r.status != http.StatusTooManyRequests {
			t.Fatalf("send %d beyond the limit: status %d, want 429: %s", i, r.status, r.body)
		}
		if got := r.header.Get("Retry-After"); got != "1" {
			t.Errorf("429 with Retry-After %q, want 1", got)
		}
		var p struct{ Type, Detail string }
		r.decode(t, &p)
		if !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") || !strings.HasSuffix(p.Type, "/rate-limited") {
			t.Fatalf("429 is not a rate-limited problem: %v %s", r.header, r.body)
		}
	}
	// Reads are not sends: they pass while the sends are full.
	c.must(200, "GET", "/v1/notifications", nil)

	for i, finish := range held {
		if status := finish(); status != http.StatusAccepted {
			t.Fatalf("held send %d: status %d, want 202", i, status)
		}
	}
	// The slots are free again.
	sendEmail(t, c)
	sendEmail(t, c)
	var list struct {
		Data []struct{ ID string } `json:"data"`
	}
	c.must(200, "GET", "/v1/notifications", nil).decode(t, &list)
	if len(list.Data) != 4 {
		t.Fatalf("%d notifications in the log, want the 4 accepted (nothing of the shed ones)", len(list.Data))
	}
	for _, n := range list.Data {
		if v := c.waitDone(n.ID, 30*time.Second); v.Deliveries[0].Status != "sent" {
			t.Fatalf("delivery of %s = %+v, want sent", n.ID, v.Deliveries[0])
		}
	}
	exactlyMessages(t, smtpd, 4)
	m := string(c.must(200, "GET", "/metrics", nil).body)
	if want := fmt.Sprintf(`herald_sends_refused_total{reason="in_flight"} %d`, excess); !strings.Contains(m, want) {
		t.Errorf("metrics lack %s", want)
	}
}
