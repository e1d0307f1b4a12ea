package storetest

import (
	"fmt"
	"testing"

	"github.com/heraldhq/herald"
)

func testTopics(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a, other := createApp(t, s), createApp(t, s)
	for _, u := range []string{"u3", "u1", "u2", "U0", "u10"} {
		putUser(t, s, a.ID, u)
	}
	putUser(t, s, other.ID, "x1")

	_, err := s.GetTopic(ctx, a.ID, "news")
	wantCode(t, err, herald.CodeNotFound)

	// Unknown users: nothing is written, and they come back in order.
	missing, err := s.UpdateSubscribers(ctx, a.ID, "news", []string{"u1", "nobody", "x1"}, nil, now())
	must(t, err)
	diff(t, "missing", missing, []string{"nobody", "x1"})
	_, err = s.GetTopic(ctx, a.ID, "news")
	wantCode(t, err, herald.CodeNotFound)

	at := now()
	missing, err = s.UpdateSubscribers(ctx, a.ID, "news", []string{"u3", "u1", "u2", "U0", "u10", "u1"}, nil, at)
	must(t, err)
	if len(missing) != 0 {
		t.Fatalf("missing = %v, want none", missing)
	}
	// Adding again and removing one that is not there change nothing else.
	_, err = s.UpdateSubscribers(ctx, a.ID, "news", []string{"u1"}, []string{"u2", "never"}, now())
	must(t, err)
	topic, err := s.GetTopic(ctx, a.ID, "news")
	must(t, err)
	diff(t, "topic", topic, herald.Topic{AppID: a.ID, Name: "news", Subscribers: 4, CreatedAt: at})

	// Byte order of user id, paged.
	got, err := s.ListSubscribers(ctx, a.ID, "news", "", 3)
	must(t, err)
	diff(t, "first page", got, []string{"U0", "u1", "u10"})
	got, err = s.ListSubscribers(ctx, a.ID, "news", "u10", 3)
	must(t, err)
	diff(t, "second page", got, []string{"u3"})

	// Another app sees neither the topic nor its subscribers.
	_, err = s.GetTopic(ctx, other.ID, "news")
	wantCode(t, err, herald.CodeNotFound)
	got, err = s.ListSubscribers(ctx, other.ID, "news", "", 10)
	must(t, err)
	if len(got) != 0 {
		t.Errorf("other app's subscribers = %v, want none", got)
	}

	// Deleting a user unsubscribes it.
	must(t, s.DeleteUser(ctx, a.ID, "u3"))
	topic, err = s.GetTopic(ctx, a.ID, "news")
	must(t, err)
	if topic.Subscribers != 3 {
		t.Errorf("subscribers after deleting a user = %d, want 3", topic.Subscribers)
	}

	// Many at once, across statement chunks.
	var many []string
	for i := range 1200 {
		id := fmt.Sprintf("bulk%04d", i)
		putUser(t, s, a.ID, id)
		many = append(many, id)
	}
	_, err = s.UpdateSubscribers(ctx, a.ID, "bulk", many, nil, now())
	must(t, err)
	_, err = s.UpdateSubscribers(ctx, a.ID, "bulk", nil, many[:700], now())
	must(t, err)
	topic, err = s.GetTopic(ctx, a.ID, "bulk")
	must(t, err)
	if topic.Subscribers != 500 {
		t.Errorf("bulk subscribers = %d, want 500", topic.Subscribers)
	}
}

func testFanout(t *testing.T, s herald.Store) {
	ctx := t.Context()
	a := createApp(t, s)
	at := now()
	// A direct recipient who also subscribes: the fan-out must not write its delivery again.
	nn := notification(a.ID, "u1", at, herald.ChannelEmail)
	nn.Fanout = &herald.Fanout{Topic: "news", Channels: []herald.Channel{herald.ChannelEmail}, SendAtLocal: "09:00"}
	must(t, s.Apply(ctx, &herald.Batch{Notifications: []herald.NewNotification{nn}}))
	nid := nn.Notification.ID

	f, err := s.GetFanout(ctx, a.ID, nid)
	must(t, err)
	diff(t, "fan-out", f, herald.Fanout{AppID: a.ID, NotificationID: nid, Topic: "news",
		Channels: []herald.Channel{herald.ChannelEmail}, SendAtLocal: "09:00", Status: herald.FanoutRunning,
		CreatedAt: at, UpdatedAt: at})
	_, err = s.GetFanout(ctx, createApp(t, s).ID, nid)
	wantCode(t, err, herald.CodeNotFound)
	running, err := s.RunningFanouts(ctx, 10)
	must(t, err)
	if len(running) != 1 || running[0].NotificationID != nid {
		t.Fatalf("running fan-outs = %+v, want the one", running)
	}

	page := func(after, cursor string, done bool, users ...string) *herald.FanoutPage {
		p := &herald.FanoutPage{AppID: a.ID, NotificationID: nid, After: after, Cursor: cursor, Users: len(users),
			Done: done, At: now()}
		for _, u := range users {
			d := nn.Deliveries[0]
			if u != "u1" {
				d.ID, d.UserID, d.Address = newID(), u, u+"@example.com"
			}
			p.Deliveries = append(p.Deliveries, d)
			p.Events = append(p.Events, herald.Event{AppID: a.ID, NotificationID: nid, DeliveryID: d.ID,
				Channel: d.Channel, Status: herald.StatusAccepted, At: at})
		}
		return p
	}
	p1 := page("", "u2", false, "u1", "u2")
	must(t, s.ApplyFanoutPage(ctx, p1))
	if !p1.Applied || len(p1.Inserted) != 1 || p1.Inserted[0].UserID != "u2" {
		t.Fatalf("first page: applied %v, inserted %+v; want applied with u2's delivery only", p1.Applied, p1.Inserted)
	}
	// The same page again (a runner that crashed before it learned the
	// outcome, or a second runner) writes nothing.
	again := page("", "u2", false, "u1", "u2")
	must(t, s.ApplyFanoutPage(ctx, again))
	if again.Applied || len(again.Inserted) != 0 {
		t.Fatalf("repeated page: applied %v, inserted %d; want nothing", again.Applied, len(again.Inserted))
	}
	last := page("u2", "u3", true, "u3")
	must(t, s.ApplyFanoutPage(ctx, last))
	if !last.Applied {
		t.Fatal("last page not applied")
	}
	ds, err := s.ListDeliveries(ctx, a.ID, nid)
	must(t, err)
	if len(ds) != 3 {
		t.Errorf("deliveries = %d, want 3 (u1 once, u2, u3)", len(ds))
	}
	evs, err := s.ListEvents(ctx, a.ID, nid)
	must(t, err)
	if len(evs) != 3 {
		t.Errorf("events = %d, want 3", len(evs))
	}
	f, err = s.GetFanout(ctx, a.ID, nid)
	must(t, err)
	if f.Status != herald.FanoutCompleted || f.Cursor != "u3" || f.Recipients != 3 {
		t.Errorf("fan-out = %+v, want completed at u3 with 3 recipients", f)
	}
	running, err = s.RunningFanouts(ctx, 10)
	must(t, err)
	if len(running) != 0 {
		t.Errorf("running fan-outs after completion = %d, want 0", len(running))
	}
	// A completed fan-out takes no further page.
	late := page("u3", "u4", true, "u4")
	must(t, s.ApplyFanoutPage(ctx, late))
	if late.Applied {
		t.Error("a page after completion was applied")
	}
}
