package accept_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/accept"
)

// resolvedDelivery is what a test compares of a resolved delivery.
type resolvedDelivery struct {
	UserID  string
	Channel herald.Channel
	Status  herald.Status
	Reason  string
}

func resolved(ds []herald.AcceptedDelivery) []resolvedDelivery {
	out := make([]resolvedDelivery, len(ds))
	for i, d := range ds {
		out[i] = resolvedDelivery{d.UserID, d.Channel, d.Status, d.Reason}
	}
	return out
}

// TestResolveManyUsers: the users of a request, read at once, give their
// deliveries in the order of the recipients, each with its own contacts,
// devices and opt-outs; every missing user is named by its index.
func TestResolveManyUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openSQLite(t, t.TempDir())
	t.Cleanup(func() { _ = st.Close() })
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := st.CreateApp(ctx, herald.App{ID: "app", Name: "test", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []herald.User{
		{AppID: "app", ID: "ada", Email: "ada@example.com", Phone: "+14155550100"},
		{AppID: "app", ID: "bob", Email: "bob@example.com"},
		{AppID: "app", ID: "cy", Phone: "+14155550102"},
	} {
		u.CreatedAt, u.UpdatedAt = now, now
		if _, _, err := st.PutUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.AddDevice(ctx, herald.Device{AppID: "app", ID: "ada-phone", UserID: "ada", Platform: herald.PlatformAndroid,
		Token: "fcm-ada", Status: herald.DeviceActive, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutPreferences(ctx, "app", "bob", herald.Preferences{Unsubscribed: true}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetContactStatus(ctx, "app", "cy", herald.ChannelSMS, herald.DeviceInvalid); err != nil {
		t.Fatal(err)
	}
	svc := accept.New(st, discardLog{}, accept.Options{})
	content := herald.Content{Title: "Hi", Subject: "Hi", Body: "Hello."}

	a, _, err := svc.Send(ctx, "app", herald.SendRequest{Content: content, Channels: []herald.Channel{herald.ChannelSMS, herald.ChannelPush},
		To: []herald.Recipient{{UserID: "cy"}, {UserID: "ada"}, {Phone: "+14155550199"}, {UserID: "bob"}, {UserID: "ada"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []resolvedDelivery{
		{"cy", herald.ChannelPush, herald.StatusSuppressed, herald.ReasonNoAddress},
		{"cy", herald.ChannelSMS, herald.StatusSuppressed, herald.ReasonInvalidRecipient},
		{"ada", herald.ChannelPush, herald.StatusAccepted, ""},
		{"ada", herald.ChannelSMS, herald.StatusAccepted, ""},
		{"", herald.ChannelSMS, herald.StatusAccepted, ""},
		{"bob", herald.ChannelPush, herald.StatusSuppressed, herald.ReasonNoAddress},
		{"bob", herald.ChannelSMS, herald.StatusSuppressed, herald.ReasonNoAddress},
	}
	if d := cmp.Diff(want, resolved(a.Deliveries)); d != "" {
		t.Errorf("deliveries (-want +got):\n%s", d)
	}

	// A fallback plan walks each user's channels up to the first that reaches them.
	a, _, err = svc.Send(ctx, "app", herald.SendRequest{Content: content,
		Fallback: []herald.Channel{herald.ChannelPush, herald.ChannelSMS, herald.ChannelEmail},
		To:       []herald.Recipient{{UserID: "ada"}, {UserID: "cy"}, {UserID: "bob"}}})
	if err != nil {
		t.Fatal(err)
	}
	want = []resolvedDelivery{
		{"ada", herald.ChannelPush, herald.StatusAccepted, ""},
		{"cy", herald.ChannelPush, herald.StatusSuppressed, herald.ReasonNoAddress},
		{"cy", herald.ChannelSMS, herald.StatusSuppressed, herald.ReasonInvalidRecipient},
		{"cy", herald.ChannelEmail, herald.StatusSuppressed, herald.ReasonNoAddress},
		{"bob", herald.ChannelPush, herald.StatusSuppressed, herald.ReasonNoAddress},
		{"bob", herald.ChannelSMS, herald.StatusSuppressed, herald.ReasonNoAddress},
		{"bob", herald.ChannelEmail, herald.StatusSuppressed, herald.ReasonOptedOut},
	}
	if d := cmp.Diff(want, resolved(a.Deliveries)); d != "" {
		t.Errorf("fallback deliveries (-want +got):\n%s", d)
	}

	// A fan-out page skips a subscriber deleted since the page was read.
	n := herald.Notification{AppID: "app", ID: "0190a5f4-0000-7000-8000-000000000001", Content: content, CreatedAt: now}
	page, _, err := svc.FanoutPage(ctx, herald.Fanout{AppID: "app", Topic: "news"}, n, []string{"bob", "gone", "ada"})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]resolvedDelivery, len(page))
	for i, d := range page {
		got[i] = resolvedDelivery{d.UserID, d.Channel, d.Status, d.Reason}
	}
	want = []resolvedDelivery{
		{"bob", herald.ChannelEmail, herald.StatusSuppressed, herald.ReasonOptedOut},
		{"ada", herald.ChannelPush, herald.StatusAccepted, ""},
		{"ada", herald.ChannelEmail, herald.StatusAccepted, ""},
		{"ada", herald.ChannelSMS, herald.StatusAccepted, ""},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("fan-out page (-want +got):\n%s", d)
	}

	_, _, err = svc.Send(ctx, "app", herald.SendRequest{Content: content,
		To: []herald.Recipient{{UserID: "ada"}, {UserID: "nobody"}, {Email: "x@example.com"}, {UserID: "zed"}}})
	var herr *herald.Error
	if !errors.As(err, &herr) || herr.Code != herald.CodeInvalid {
		t.Fatalf("send to missing users: %v; want CodeInvalid", err)
	}
	var fields []string
	for _, f := range herr.Fields {
		fields = append(fields, f.Field)
	}
	if d := cmp.Diff([]string{"to[1].user_id", "to[3].user_id"}, fields); d != "" {
		t.Errorf("fields of the refusal (-want +got):\n%s", d)
	}
}
