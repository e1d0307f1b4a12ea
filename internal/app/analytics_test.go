package app_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/provider/providertest"
)

type analyticsView struct {
	Total    int64            `json:"total"`
	ByStatus map[string]int64 `json:"by_status"`
	Funnel   struct {
		Sent, Delivered, Opened, Clicked int64
		DeliveredRate                    float64 `json:"delivered_rate"`
	} `json:"funnel"`
}

// TestAnalyticsCountsWhatWasSent: three emails sent and one to an opted-out
// channel show in the day's counts by status and in the funnel; another
// channel, a period before them and another app see none of them.
func TestAnalyticsCountsWhatWasSent(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	a := start(t, testConfig(t))
	c := newAPI(t, a, newApp(t, a, "shop"))
	configureEmail(t, c, smtpd)
	before := time.Now().UTC()
	for range 3 {
		c.waitDone(sendEmail(t, c), 20*time.Second)
	}
	c.must(200, "PUT", "/v1/users/ada/preferences", map[string]any{"channels": map[string]bool{"email": false}})
	c.waitDone(sendEmail(t, c), 20*time.Second)

	var day analyticsView
	c.must(200, "GET", "/v1/analytics", nil).decode(t, &day)
	if day.Total != 4 || day.ByStatus["sent"] != 3 || day.ByStatus["suppressed"] != 1 || day.Funnel.Sent != 3 || day.Funnel.Delivered != 0 {
		t.Errorf("the last day: %+v; want 4 in all, 3 sent, 1 suppressed, funnel sent 3", day)
	}
	var sms analyticsView
	c.must(200, "GET", "/v1/analytics?channel=sms", nil).decode(t, &sms)
	if sms.Total != 0 || len(sms.ByStatus) != 0 || sms.Funnel.Sent != 0 {
		t.Errorf("sms: %+v, want nothing", sms)
	}
	var earlier analyticsView
	q := url.Values{"from": {before.Add(-time.Hour).Format(time.RFC3339)}, "to": {before.Add(-time.Minute).Format(time.RFC3339)}}
	c.must(200, "GET", "/v1/analytics?"+q.Encode(), nil).decode(t, &earlier)
	if earlier.Total != 0 {
		t.Errorf("the hour before: %+v, want nothing", earlier)
	}
	var theirs analyticsView
	newAPI(t, a, newApp(t, a, "other")).must(200, "GET", "/v1/analytics", nil).decode(t, &theirs)
	if theirs.Total != 0 {
		t.Errorf("another app sees %+v, want nothing", theirs)
	}
}
