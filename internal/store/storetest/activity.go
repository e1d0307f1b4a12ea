package storetest

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/heraldhq/herald"
)

// testActivity: timeline events counted per interval by status, reason,
// channel and provider; only the app's, only in the period, only of
// notifications accepted since the filter's bound, and only the steps that
// measure throughput.
func testActivity(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a, other := createApp(t, s), createApp(t, s)
	at := now()
	n := datedIDs(notification(a.ID, "u1", at, herald.ChannelEmail, herald.ChannelSMS))
	// Accepted two hours before: its send falls in the period, but before
	// the bound on acceptance, so it is not scanned.
	old := datedIDs(notification(a.ID, "u2", at.Add(-2*time.Hour), herald.ChannelEmail))
	theirs := datedIDs(notification(other.ID, "u1", at, herald.ChannelEmail))
	must(t, s.Apply(ctx, &herald.Batch{Notifications: []herald.NewNotification{n, old, theirs}}))
	move := func(appID string, nn herald.NewNotification, i int, to herald.Status, provider, reason string, after time.Duration) {
		t.Helper()
		d := nn.Deliveries[i]
		var from []herald.Status
		if to == herald.StatusDelivered {
			from = []herald.Status{herald.StatusSent}
		}
		b := &herald.Batch{Transitions: []herald.Transition{{AppID: appID, DeliveryID: d.ID, From: from, To: to, Reason: reason, Provider: provider,
			Event: herald.Event{NotificationID: nn.Notification.ID, Channel: d.Channel, Status: to, Reason: reason, Provider: provider,
				At: at.Add(after)}}}}
		must(t, s.Apply(ctx, b))
		if !b.Transitions[0].Applied {
			t.Fatalf("-> %s not applied", to)
		}
	}
	// The worker's own steps are not throughput: not counted.
	move(a.ID, n, 0, herald.StatusQueued, "", "", time.Second)
	move(a.ID, n, 0, herald.StatusSending, "", "", 2*time.Second)
	move(a.ID, n, 0, herald.StatusSent, "smtp", "", 12*time.Second)
	move(a.ID, n, 1, herald.StatusQueued, "twilio", "", 3*time.Second) // a retry
	move(a.ID, n, 1, herald.StatusFailed, "twilio", herald.ReasonProviderRejected, 15*time.Second)
	move(a.ID, n, 0, herald.StatusDelivered, "smtp", "", 30*time.Second) // at To: out
	move(a.ID, old, 0, herald.StatusSent, "smtp", "", 5*time.Second)
	move(other.ID, theirs, 0, herald.StatusSent, "smtp", "", 5*time.Second)

	f := herald.ActivityFilter{From: at, To: at.Add(30 * time.Second), Interval: 10 * time.Second, AcceptedSince: at.Add(-time.Minute)}
	got, err := s.CountActivity(ctx, a.ID, f)
	must(t, err)
	slices.SortFunc(got, func(x, y herald.ActivityCount) int {
		return cmp.Or(cmp.Compare(x.Interval, y.Interval), cmp.Compare(x.Status, y.Status), cmp.Compare(x.Channel, y.Channel))
	})
	diff(t, "activity", got, []herald.ActivityCount{
		{Interval: 0, Status: herald.StatusAccepted, Channel: herald.ChannelEmail, N: 1},
		{Interval: 0, Status: herald.StatusAccepted, Channel: herald.ChannelSMS, N: 1},
		{Interval: 0, Status: herald.StatusQueued, Channel: herald.ChannelSMS, Provider: "twilio", N: 1},
		{Interval: 1, Status: herald.StatusFailed, Reason: herald.ReasonProviderRejected, Channel: herald.ChannelSMS, Provider: "twilio", N: 1},
		{Interval: 1, Status: herald.StatusSent, Channel: herald.ChannelEmail, Provider: "smtp", N: 1},
	})

	// Widening the bound on acceptance brings the old notification's send in.
	f.AcceptedSince = at.Add(-3 * time.Hour)
	got, err = s.CountActivity(ctx, a.ID, f)
	must(t, err)
	var sent int64
	for _, c := range got {
		if c.Status == herald.StatusSent {
			sent += c.N
		}
	}
	diff(t, "sent with the old notification", sent, int64(2))

	// A quiet period counts nothing.
	quiet, err := s.CountActivity(ctx, a.ID, herald.ActivityFilter{From: at.Add(time.Hour), To: at.Add(2 * time.Hour),
		Interval: time.Minute, AcceptedSince: at.Add(-time.Hour)})
	must(t, err)
	diff(t, "quiet period", len(quiet), 0)
}
