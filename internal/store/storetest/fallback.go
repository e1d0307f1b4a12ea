package storetest

import (
	"testing"
	"time"

	"github.com/heraldhq/herald"
)

// testFallbackStep: a transition's fallback step is written with it when
// it applies and no other delivery of the channel being left may still
// reach the user; a step taken again adds nothing; a transition that does
// not apply takes no step.
func testFallbackStep(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a := createApp(t, s)
	at := now()
	nn := notification(a.ID, "user-1", at, herald.ChannelPush, herald.ChannelPush)
	nn.Notification.Fallback = []herald.Channel{herald.ChannelPush, herald.ChannelSMS}
	must(t, s.Apply(ctx, &herald.Batch{Notifications: []herald.NewNotification{nn}}))
	got, err := s.GetNotification(ctx, a.ID, nn.Notification.ID)
	must(t, err)
	diff(t, "stored fallback plan", got.Fallback, nn.Notification.Fallback)

	device1, device2 := nn.Deliveries[0], nn.Deliveries[1]
	sms := herald.Delivery{AppID: a.ID, ID: newID(), NotificationID: nn.Notification.ID, UserID: "user-1",
		Channel: herald.ChannelSMS, Priority: herald.PriorityHigh, Address: "+15005550006", Status: herald.StatusAccepted, CreatedAt: at}
	step := func() *herald.FallbackStep {
		return &herald.FallbackStep{UserID: "user-1", Channel: herald.ChannelPush, Deliveries: []herald.Delivery{sms},
			Events: []herald.Event{{AppID: a.ID, NotificationID: nn.Notification.ID, DeliveryID: sms.ID, Channel: herald.ChannelSMS,
				Status: herald.StatusAccepted, Detail: "fallback: push could not reach the user (invalid_recipient); trying sms", At: at}}}
	}
	fail := func(d herald.Delivery, from herald.Status) *herald.Transition {
		t.Helper()
		tr := herald.Transition{AppID: a.ID, DeliveryID: d.ID, From: []herald.Status{from}, To: herald.StatusFailed,
			Reason: herald.ReasonInvalidRecipient, Fallback: step(),
			Event: herald.Event{Status: herald.StatusFailed, Reason: herald.ReasonInvalidRecipient, At: at}}
		b := &herald.Batch{Transitions: []herald.Transition{tr}}
		must(t, s.Apply(ctx, b))
		return &b.Transitions[0]
	}
	smsRows := func() int {
		t.Helper()
		ds, err := s.ListDeliveries(ctx, a.ID, nn.Notification.ID)
		must(t, err)
		n := 0
		for _, d := range ds {
			if d.Channel == herald.ChannelSMS {
				n++
			}
		}
		return n
	}

	// The other device may still reach the user: no step yet.
	if tr := fail(device1, herald.StatusAccepted); !tr.Applied || tr.Fallback.Added {
		t.Fatalf("first device failed: applied %v, step added %v; want applied, no step", tr.Applied, tr.Fallback.Added)
	}
	if n := smsRows(); n != 0 {
		t.Fatalf("%d sms deliveries after the first device failed, want 0", n)
	}
	// The last device fails: the step is taken, with its event.
	if tr := fail(device2, herald.StatusAccepted); !tr.Applied || !tr.Fallback.Added {
		t.Fatalf("last device failed: applied %v, step added %v; want both", tr.Applied, tr.Fallback.Added)
	}
	if n := smsRows(); n != 1 {
		t.Fatalf("%d sms deliveries after the last device failed, want 1", n)
	}
	d, err := s.GetDelivery(ctx, a.ID, sms.ID)
	must(t, err)
	diff(t, "step delivery", d, wantDelivery(sms))
	evs, err := s.ListEvents(ctx, a.ID, nn.Notification.ID)
	must(t, err)
	last := evs[len(evs)-1]
	if last.DeliveryID != sms.ID || last.Detail == "" || evs[len(evs)-2].DeliveryID != device2.ID {
		t.Errorf("timeline ends %+v, %+v; want the failure of device 2, then the sms step", evs[len(evs)-2], last)
	}

	// Taken again (a redo with the guard satisfied): nothing twice.
	if tr := fail(device2, herald.StatusFailed); !tr.Applied || tr.Fallback.Added {
		t.Errorf("repeated step: applied %v, added %v; want applied, nothing added", tr.Applied, tr.Fallback.Added)
	}
	evs2, err := s.ListEvents(ctx, a.ID, nn.Notification.ID)
	must(t, err)
	if smsRows() != 1 || len(evs2) != len(evs)+1 {
		t.Errorf("after a repeated step: %d sms deliveries, %d events (was %d); want 1 and one more event (the transition's)",
			smsRows(), len(evs2), len(evs))
	}
	// A transition whose guard fails takes no step.
	sms.ID = newID()
	if tr := fail(device1, herald.StatusSending); tr.Applied || tr.Fallback.Added {
		t.Errorf("transition not applied: applied %v, added %v; want neither", tr.Applied, tr.Fallback.Added)
	}
	if n := smsRows(); n != 1 {
		t.Errorf("%d sms deliveries after a transition that did not apply, want 1", n)
	}
}

// testConcurrentFallbackSteps: the devices of one user fail in concurrent
// transactions; whatever the interleaving, exactly one of them takes the
// step, never none (each seeing the other still pending) and never two.
func testConcurrentFallbackSteps(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a := createApp(t, s)
	const devices, rounds = 6, 5
	for range rounds {
		at := now()
		channels := make([]herald.Channel, devices)
		for i := range channels {
			channels[i] = herald.ChannelPush
		}
		nn := notification(a.ID, "user-1", at, channels...)
		nn.Notification.Fallback = []herald.Channel{herald.ChannelPush, herald.ChannelSMS}
		must(t, s.Apply(ctx, &herald.Batch{Notifications: []herald.NewNotification{nn}}))
		smsID := newID()
		batches := make([]*herald.Batch, devices)
		errs := make(chan error, devices)
		for i, d := range nn.Deliveries {
			sms := herald.Delivery{AppID: a.ID, ID: smsID, NotificationID: nn.Notification.ID, UserID: "user-1",
				Channel: herald.ChannelSMS, Priority: herald.PriorityHigh, Address: "+15005550006", Status: herald.StatusAccepted, CreatedAt: at}
			batches[i] = &herald.Batch{Transitions: []herald.Transition{{AppID: a.ID, DeliveryID: d.ID,
				From: []herald.Status{herald.StatusAccepted}, To: herald.StatusFailed, Reason: herald.ReasonInvalidRecipient,
				Event: herald.Event{NotificationID: nn.Notification.ID, Status: herald.StatusFailed, Reason: herald.ReasonInvalidRecipient, At: at},
				Fallback: &herald.FallbackStep{UserID: "user-1", Channel: herald.ChannelPush, Deliveries: []herald.Delivery{sms},
					Events: []herald.Event{{AppID: a.ID, NotificationID: nn.Notification.ID, DeliveryID: smsID,
						Channel: herald.ChannelSMS, Status: herald.StatusAccepted, At: at}}}}}}
		}
		for _, b := range batches {
			go func() { errs <- s.Apply(ctx, b) }()
		}
		for range batches {
			must(t, <-errs)
		}
		added := 0
		for _, b := range batches {
			if b.Transitions[0].Fallback.Added {
				added++
			}
		}
		ds, err := s.ListDeliveries(ctx, a.ID, nn.Notification.ID)
		must(t, err)
		sms := 0
		for _, d := range ds {
			if d.Channel == herald.ChannelSMS {
				sms++
			}
		}
		if added != 1 || sms != 1 {
			t.Fatalf("%d devices failed concurrently: %d steps reported added, %d sms deliveries; want 1 and 1", devices, added, sms)
		}
	}
}

// testOverdueFallbacks: a delivery with a fallback window is overdue once
// it is sent and its due time passed, until a receipt moves it on or a
// step (even an empty one) is written for it.
func testOverdueFallbacks(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a := createApp(t, s)
	at := now()
	nn := notification(a.ID, "user-1", at, herald.ChannelSMS, herald.ChannelEmail, herald.ChannelPush)
	nn.Notification.Fallback = []herald.Channel{herald.ChannelSMS, herald.ChannelEmail}
	nn.Deliveries[0].FallbackDue = at.Add(time.Second)
	nn.Deliveries[1].FallbackDue = at.Add(time.Second)
	must(t, s.Apply(ctx, &herald.Batch{Notifications: []herald.NewNotification{nn}}))
	overdue := func(before time.Time) []string {
		t.Helper()
		ds, err := s.OverdueFallbacks(ctx, before, 10)
		must(t, err)
		var ids []string
		for _, d := range ds {
			if d.AppID == a.ID {
				ids = append(ids, d.ID)
			}
		}
		return ids
	}
	move := func(d herald.Delivery, from, to herald.Status, step *herald.FallbackStep) {
		t.Helper()
		b := &herald.Batch{Transitions: []herald.Transition{{AppID: a.ID, DeliveryID: d.ID, From: []herald.Status{from}, To: to,
			Fallback: step, Event: herald.Event{NotificationID: nn.Notification.ID, Status: to, At: at}}}}
		must(t, s.Apply(ctx, b))
		if !b.Transitions[0].Applied {
			t.Fatalf("%s → %s of %s did not apply", from, to, d.ID)
		}
	}
	sms, email, push := nn.Deliveries[0], nn.Deliveries[1], nn.Deliveries[2]
	if got := overdue(at.Add(time.Hour)); len(got) != 0 {
		t.Errorf("overdue before anything was sent: %v", got)
	}
	move(sms, herald.StatusAccepted, herald.StatusSent, nil)
	move(email, herald.StatusAccepted, herald.StatusSent, nil)
	move(push, herald.StatusAccepted, herald.StatusSent, nil)
	if got := overdue(at); len(got) != 0 {
		t.Errorf("overdue before the window ended: %v", got)
	}
	if got := overdue(at.Add(time.Second)); len(got) != 2 {
		t.Errorf("overdue when the window ended: %v, want the sms and the email", got)
	}
	move(email, herald.StatusSent, herald.StatusDelivered, nil) // a receipt
	move(sms, herald.StatusSent, herald.StatusSent, &herald.FallbackStep{UserID: "user-1", Channel: herald.ChannelSMS})
	if got := overdue(at.Add(time.Hour)); len(got) != 0 {
		t.Errorf("overdue after a receipt and a step: %v, want none", got)
	}
}
