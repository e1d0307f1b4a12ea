package storetest

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/heraldhq/herald"
)

// datedIDs gives nn's notification and deliveries ids of its acceptance
// time, as Herald's are (UUIDv7: the first 48 bits are Unix milliseconds).
func datedIDs(nn herald.NewNotification) herald.NewNotification {
	ms := nn.Notification.CreatedAt.UnixMilli()
	dated := func() string {
		id := uuid.Must(uuid.NewV7())
		for i := range 6 {
			id[i] = byte(ms >> (40 - 8*i))
		}
		return id.String()
	}
	nn.Notification.ID = dated()
	for i := range nn.Deliveries {
		nn.Deliveries[i].ID, nn.Deliveries[i].NotificationID = dated(), nn.Notification.ID
		nn.Events[i].DeliveryID, nn.Events[i].NotificationID = nn.Deliveries[i].ID, nn.Notification.ID
	}
	return nn
}

// testAnalytics: counts by status and the funnel, within the period and
// the app, by channel and by category.
func testAnalytics(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a, other := createApp(t, s), createApp(t, s)
	at := now()
	step := func(appID string, nn herald.NewNotification, i int, path ...herald.Status) {
		t.Helper()
		d := nn.Deliveries[i]
		from := d.Status
		for k, st := range path {
			b := &herald.Batch{Transitions: []herald.Transition{{AppID: appID, DeliveryID: d.ID, From: []herald.Status{from}, To: st,
				Event: herald.Event{NotificationID: nn.Notification.ID, Channel: d.Channel, Status: st, At: at.Add(time.Duration(k+1) * time.Second)}}}}
			must(t, s.Apply(ctx, b))
			if !b.Transitions[0].Applied {
				t.Fatalf("%s -> %s not applied", from, st)
			}
			from = st
		}
	}
	// In the period: email clicked, push sent, sms failed (billing); an email sent then bounced (marketing).
	n1 := notification(a.ID, "u1", at, herald.ChannelEmail, herald.ChannelPush, herald.ChannelSMS)
	n2 := notification(a.ID, "u2", at, herald.ChannelEmail)
	n2.Notification.Category = "marketing"
	// Outside the period, and another app's: never counted.
	old := datedIDs(notification(a.ID, "u3", at.Add(-2*time.Hour), herald.ChannelEmail))
	theirs := notification(other.ID, "u1", at, herald.ChannelEmail)
	must(t, s.Apply(ctx, &herald.Batch{Notifications: []herald.NewNotification{n1, n2, old, theirs}}))
	sending := []herald.Status{herald.StatusQueued, herald.StatusSending}
	step(a.ID, n1, 0, append(sending, herald.StatusSent, herald.StatusDelivered, herald.StatusOpened, herald.StatusClicked)...)
	step(a.ID, n1, 1, append(sending, herald.StatusSent)...)
	step(a.ID, n1, 2, append(sending, herald.StatusFailed)...)
	step(a.ID, n2, 0, append(sending, herald.StatusSent, herald.StatusFailed)...)
	step(other.ID, theirs, 0, append(sending, herald.StatusSent, herald.StatusDelivered)...)

	period := herald.AnalyticsFilter{From: at.Add(-time.Hour), To: at.Add(time.Hour)}
	count := func(f herald.AnalyticsFilter) herald.Analytics {
		t.Helper()
		got, err := s.CountDeliveries(ctx, a.ID, f)
		must(t, err)
		return got
	}
	diff(t, "whole period", count(period), herald.Analytics{Total: 4,
		ByStatus: map[herald.Status]int64{herald.StatusClicked: 1, herald.StatusSent: 1, herald.StatusFailed: 2},
		Funnel:   herald.Funnel{Sent: 3, Delivered: 1, Opened: 1, Clicked: 1}})

	email := period
	email.Channel = herald.ChannelEmail
	diff(t, "email", count(email), herald.Analytics{Total: 2,
		ByStatus: map[herald.Status]int64{herald.StatusClicked: 1, herald.StatusFailed: 1},
		Funnel:   herald.Funnel{Sent: 2, Delivered: 1, Opened: 1, Clicked: 1}})

	marketing := period
	marketing.Category = "marketing"
	diff(t, "marketing", count(marketing), herald.Analytics{Total: 1,
		ByStatus: map[herald.Status]int64{herald.StatusFailed: 1}, Funnel: herald.Funnel{Sent: 1}})

	// The boundaries: From is in, To is out.
	diff(t, "from the acceptance", count(herald.AnalyticsFilter{From: at, To: at.Add(time.Hour)}).Total, int64(4))
	diff(t, "up to the acceptance", count(herald.AnalyticsFilter{From: at.Add(-time.Hour), To: at}).Total, int64(0))
	diff(t, "the old one alone", count(herald.AnalyticsFilter{From: at.Add(-3 * time.Hour), To: at.Add(-time.Hour)}).Total, int64(1))
	diff(t, "a quiet period", count(herald.AnalyticsFilter{From: at.Add(time.Hour), To: at.Add(2 * time.Hour)}),
		herald.Analytics{ByStatus: map[herald.Status]int64{}})
}
