package app_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/app"
	"github.com/heraldhq/herald/internal/heraldtest"
)

type appView struct {
	DefaultLocale       string   `json:"default_locale"`
	SMSAllowedCountries []string `json:"sms_allowed_countries"`
	SMSDailyBudget      int      `json:"sms_daily_budget"`
}

// smsTo sends one SMS to each phone given straight in the request.
func smsTo(c *api, phones ...string) response {
	c.t.Helper()
	to := make([]any, len(phones))
	for i, p := range phones {
		to[i] = map[string]any{"phone": p}
	}
	return c.do("POST", "/v1/notifications", map[string]any{"to": to, "channels": []string{"sms"},
		"content": map[string]any{"body": "Your code is 123456"}})
}

// TestSMSAllowedCountries: an app limited to US numbers refuses an SMS to a
// German number given in the request (422 naming to[i].phone) and
// suppresses, with a reason, the SMS to a stored user whose phone is German,
// while the US recipients still go; setting only the locale keeps the list.
func TestSMSAllowedCountries(t *testing.T) {
	c, _, _ := smsSetup(t, testConfig(t))
	var got appView
	c.must(200, "PUT", "/v1/app", map[string]any{"sms_allowed_countries": []string{"us", "US"}}).decode(t, &got)
	if strings.Join(got.SMSAllowedCountries, ",") != "US" || got.SMSDailyBudget != 0 {
		t.Fatalf("PUT /v1/app = %+v, want countries [US] and no budget", got)
	}
	c.must(200, "PUT", "/v1/app", map[string]any{"default_locale": "de"})
	c.must(200, "GET", "/v1/app", nil).decode(t, &got)
	if strings.Join(got.SMSAllowedCountries, ",") != "US" || got.DefaultLocale != "de" {
		t.Fatalf("after setting only the locale, GET /v1/app = %+v", got)
	}
	wantProblem(t, c.do("PUT", "/v1/app", map[string]any{"sms_allowed_countries": []string{"US", "XX"}}),
		"sms_allowed_countries[1]", "ISO 3166")
	wantProblem(t, c.do("PUT", "/v1/app", map[string]any{"sms_daily_budget": -1}), "sms_daily_budget", "0")

	wantProblem(t, smsTo(c, "+14155550101", "+4915123456789"), "to[1].phone", "(DE) is not allowed")

	c.must(201, "PUT", "/v1/users/bert", map[string]any{"phone": "+4915123456789"})
	var acc struct {
		ID         string
		Deliveries []struct {
			UserID  string `json:"user_id"`
			Channel string `json:"channel"`
			Status  string `json:"status"`
			Reason  string `json:"reason"`
		} `json:"deliveries"`
	}
	c.must(202, "POST", "/v1/notifications", map[string]any{
		"to":       []any{map[string]any{"user_id": "ada"}, map[string]any{"user_id": "bert"}, map[string]any{"phone": "+14155550102"}},
		"channels": []string{"sms"}, "content": map[string]any{"body": "hello"}}).decode(t, &acc)
	byUser := map[string]string{}
	for _, d := range acc.Deliveries {
		byUser[d.UserID] = d.Status + "/" + d.Reason
	}
	if byUser["bert"] != "suppressed/sms_country_not_allowed" || byUser["ada"] != "accepted/" || byUser[""] != "accepted/" {
		t.Errorf("deliveries = %+v, want bert suppressed for its region, ada and the direct number accepted", acc.Deliveries)
	}
	n := c.waitDone(acc.ID, 30*time.Second)
	sent := 0
	for _, d := range n.Deliveries {
		if d.Status == "sent" {
			sent++
		}
	}
	if sent != 2 {
		t.Errorf("%d SMS sent, want 2: %+v", sent, n.Deliveries)
	}

	// An empty list allows every region again.
	c.must(200, "PUT", "/v1/app", map[string]any{"sms_allowed_countries": []string{}})
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"phone": "+4915123456789"}},
		"channels": []string{"sms"}, "content": map[string]any{"body": "hello"}})
}

// TestSMSDailyBudget: with a budget of 5, the 4th SMS of the day sends
// sms.budget_warning, a request that would go past 5 is refused 429 with
// Retry-After at the next UTC midnight and sends sms.budget_exceeded, the
// 5th still fits, and both alerts go out once, with the metrics counting.
func TestSMSDailyBudget(t *testing.T) {
	c, _, _ := smsSetup(t, webhookConfig(t))
	hooks := newReceiver(t)
	createWebhook(t, c, hooks.srv.URL, "sms.budget_warning", "sms.budget_exceeded")
	var got appView
	c.must(200, "PUT", "/v1/app", map[string]any{"sms_daily_budget": 5}).decode(t, &got)
	if got.SMSDailyBudget != 5 || len(got.SMSAllowedCountries) != 0 {
		t.Fatalf("PUT /v1/app = %+v", got)
	}

	if r := smsTo(c, "+14155550101", "+14155550102", "+14155550103"); r.status != 202 {
		t.Fatalf("3 of 5: %d %s", r.status, r.body)
	}
	if r := smsTo(c, "+14155550104"); r.status != 202 {
		t.Fatalf("4 of 5: %d %s", r.status, r.body)
	}
	r := smsTo(c, "+14155550105", "+14155550106")
	if r.status != 429 {
		t.Fatalf("6 of 5: status %d, want 429: %s", r.status, r.body)
	}
	var p problem
	r.decode(t, &p)
	if len(p.Errors) != 1 || p.Errors[0].Field != "to" || !strings.Contains(p.Detail, "sms_daily_budget") {
		t.Errorf("problem = %s, want the field to and the budget named", r.body)
	}
	retry, err := strconv.Atoi(r.header.Get("Retry-After"))
	now := time.Now().UTC()
	untilMidnight := now.Truncate(24 * time.Hour).Add(24 * time.Hour).Sub(now)
	if err != nil || retry < 1 || time.Duration(retry)*time.Second < untilMidnight-time.Minute ||
		time.Duration(retry)*time.Second > untilMidnight+time.Minute {
		t.Errorf("Retry-After = %q, want about %s (the next UTC midnight)", r.header.Get("Retry-After"), untilMidnight)
	}
	if r := smsTo(c, "+14155550105"); r.status != 202 {
		t.Fatalf("5 of 5: %d %s", r.status, r.body)
	}
	if r := smsTo(c, "+14155550106"); r.status != 429 {
		t.Fatalf("6 of 5 again: %d %s", r.status, r.body)
	}
	// Email is not counted.
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"email": "a@example.com"}},
		"content": map[string]any{"body": "hello"}})

	posts := hooks.waitPosts(t, 2)
	types := map[string]int{}
	for _, p := range posts {
		var body struct {
			Type string
			Data struct {
				Used, Budget int
				Day          string
			}
		}
		if err := json.Unmarshal(p.body, &body); err != nil {
			t.Fatal(err)
		}
		types[body.Type]++
		if body.Data.Budget != 5 || body.Data.Day != now.Format(time.DateOnly) {
			t.Errorf("post %s", p.body)
		}
		if body.Type == "sms.budget_warning" && body.Data.Used != 4 {
			t.Errorf("warning at %d SMS, want 4: %s", body.Data.Used, p.body)
		}
	}
	if types["sms.budget_warning"] != 1 || types["sms.budget_exceeded"] != 1 {
		t.Errorf("posts by type = %v, want one warning and one exceeded", types)
	}
	waitMetricLine(t, c, "herald_sms_budget_refused_total 2")
	m := string(c.must(200, "GET", "/metrics", nil).body)
	for _, line := range []string{`herald_sms_budget_alerts_total{level="warning"} 1`, `herald_sms_budget_alerts_total{level="exceeded"} 1`} {
		if !strings.Contains(m, line) {
			t.Errorf("metrics lack %s:\n%s", line, grepLines(m, "herald_sms_budget"))
		}
	}
	// The alerts are once per day: no third post comes.
	time.Sleep(300 * time.Millisecond)
	if n := len(hooks.posts()); n != 2 {
		t.Errorf("%d posts, want 2", n)
	}
}

// TestSMSBudgetSharedByTwoProcesses: two API processes on one Postgres
// database take concurrent SMS sends for one app; together they accept
// exactly the budget.
func TestSMSBudgetSharedByTwoProcesses(t *testing.T) {
	pg := postgresSchema(t, heraldtest.ServiceURL(t, heraldtest.EnvPostgres))
	procs := make([]*app.App, 2)
	for i := range procs {
		cfg := testConfig(t)
		cfg.DatabaseURL = pg
		cfg.SecretKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
		cfg.Roles = "api"
		procs[i] = start(t, cfg)
	}
	key := newApp(t, procs[0], "shop")
	clients := []*api{newAPI(t, procs[0], key), newAPI(t, procs[1], key)}
	const budget, tries = 7, 20
	clients[1].must(200, "PUT", "/v1/app", map[string]any{"sms_daily_budget": budget})

	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for i := range tries {
		wg.Go(func() {
			r := smsTo(clients[i%2], "+1415555"+strconv.Itoa(1000+i))
			mu.Lock()
			statuses[r.status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if statuses[202] != budget || statuses[429] != tries-budget {
		t.Errorf("answers by status = %v, want %d accepted and %d refused", statuses, budget, tries-budget)
	}
}
