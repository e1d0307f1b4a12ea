package accept

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/validate"
)

// guardSMSRegions applies the app's sms_allowed_countries to the SMS
// deliveries of a request. A phone given in the request (to[i].phone) in
// a region the app does not allow refuses the request, naming the field:
// the caller chose that number. A stored user's phone in such a region
// suppresses that user's SMS delivery with reason sms_country_not_allowed,
// as an opt-out does, so the skip shows in the timeline and the other
// recipients and channels still go.
func guardSMSRegions(app herald.App, req herald.SendRequest, deliveries []herald.Delivery) error {
	if len(app.SMSAllowedCountries) == 0 {
		return nil
	}
	allowed := func(phone string) (string, bool) {
		region := validate.PhoneRegion(phone)
		return region, region != "" && slices.Contains(app.SMSAllowedCountries, region)
	}
	direct := map[string]bool{}
	for i := range deliveries {
		d := &deliveries[i]
		if d.Channel != herald.ChannelSMS || !waiting(d.Status) {
			continue
		}
		if d.UserID == "" {
			direct[d.Address] = true
			continue
		}
		if _, ok := allowed(d.Address); !ok {
			d.Status, d.Reason = herald.StatusSuppressed, herald.ReasonSMSCountry
		}
	}
	var v herald.Validation
	for i, r := range req.To {
		if r.Phone == "" || !direct[r.Phone] {
			continue
		}
		if region, ok := allowed(r.Phone); !ok {
			if region == "" {
				region = "unknown"
			}
			v.Add("to["+strconv.Itoa(i)+"].phone", "SMS to this number's region (%s) is not allowed for this app: see sms_allowed_countries of GET /v1/app", region)
		}
	}
	return v.Err()
}

// waiting reports whether a new delivery is still to be sent.
func waiting(s herald.Status) bool { return s == herald.StatusAccepted || s == herald.StatusScheduled }

// reserveSMS counts the request's SMS deliveries against the app's daily
// budget, for the UTC day of acceptance (a scheduled SMS counts on the day
// it was accepted). Over the budget the whole request is refused with 429
// and Retry-After at the next UTC midnight, before anything is written.
func (s *Service) reserveSMS(ctx context.Context, app herald.App, deliveries []herald.Delivery, now time.Time) error {
	if app.SMSDailyBudget <= 0 {
		return nil
	}
	n := 0
	for _, d := range deliveries {
		if d.Channel == herald.ChannelSMS && waiting(d.Status) {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	day := now.UTC().Format(time.DateOnly)
	use, err := s.store.ReserveSMS(ctx, app.ID, day, n, app.SMSDailyBudget)
	if err != nil {
		return fmt.Errorf("accept: sms budget of app %q: %w", app.ID, err)
	}
	if s.onSMSBudget != nil {
		s.onSMSBudget(ctx, app, day, use)
	}
	if use.Reserved {
		return nil
	}
	midnight := now.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	return &herald.Error{Code: herald.CodeRateLimited,
		Fields: []herald.FieldError{{Field: "to", Message: fmt.Sprintf("%d SMS would exceed the app's daily SMS budget (%d of %d used today)",
			n, use.Used, app.SMSDailyBudget)}},
		Message:           "the app's daily SMS budget (sms_daily_budget) is used up for today (UTC)",
		RetryAfterSeconds: int(math.Ceil(midnight.Sub(now).Seconds()))}
}

// hasSMS reports whether any new delivery is an SMS still to be sent.
func hasSMS(ds []herald.Delivery) bool {
	return slices.ContainsFunc(ds, func(d herald.Delivery) bool { return d.Channel == herald.ChannelSMS && waiting(d.Status) })
}
