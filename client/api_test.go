package client_test

import (
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/heraldhq/herald/client"
)

// TestAPIRoundTrips drives every typed method against the real Herald and
// reads back what it wrote.
func TestAPIRoundTrips(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := client.New(heraldURL, apiKey)

	t.Run("users, devices and preferences", func(t *testing.T) {
		u, err := c.PutUser(ctx, "rt-user", client.PutUserRequest{Email: "rt@example.com", Locale: "de"})
		if err != nil || u.ID != "rt-user" || u.Email != "rt@example.com" {
			t.Fatalf("PutUser = %+v, %v", u, err)
		}
		token := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		d, err := c.AddDevice(ctx, "rt-user", client.AddDeviceRequest{Platform: "ios", Token: token})
		if err != nil || d.ID == "" || d.Status != "active" {
			t.Fatalf("AddDevice = %+v, %v", d, err)
		}
		devices, err := c.ListDevices(ctx, "rt-user")
		if err != nil || len(devices) != 1 || devices[0].ID != d.ID {
			t.Fatalf("ListDevices = %+v, %v", devices, err)
		}
		if err := c.DeleteDevice(ctx, "rt-user", d.ID); err != nil {
			t.Fatal(err)
		}
		if devices, _ := c.ListDevices(ctx, "rt-user"); len(devices) != 0 {
			t.Errorf("devices after delete = %+v", devices)
		}
		p, err := c.PutPreferences(ctx, "rt-user", client.Preferences{Channels: map[string]bool{"sms": false},
			QuietHours: &client.QuietHours{Start: "22:00", End: "07:00"}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.GetPreferences(ctx, "rt-user")
		if err != nil || got.Channels["sms"] || got.QuietHours == nil || got.QuietHours.Start != "22:00" {
			t.Fatalf("GetPreferences = %+v (put %+v), %v", got, p, err)
		}
		if err := c.DeleteUser(ctx, "rt-user"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetUser(ctx, "rt-user"); !client.IsNotFound(err) {
			t.Errorf("GetUser after delete: %v, want 404", err)
		}
	})

	t.Run("templates", func(t *testing.T) {
		tpl, err := c.PutTemplate(ctx, "rt-welcome", client.PutTemplateRequest{SMS: &client.SMSParts{Text: "Hi {{.name}}"}})
		if err != nil || tpl.Version != 1 {
			t.Fatalf("PutTemplate = %+v, %v", tpl, err)
		}
		if _, err := c.PutTemplate(ctx, "rt-welcome", client.PutTemplateRequest{SMS: &client.SMSParts{Text: "Hello {{.name}}"}}); err != nil {
			t.Fatal(err)
		}
		v1, err := c.GetTemplate(ctx, "rt-welcome", 1)
		if err != nil || v1.SMS == nil || v1.SMS.Text != "Hi {{.name}}" {
			t.Fatalf("GetTemplate v1 = %+v, %v", v1, err)
		}
		list, err := c.ListTemplates(ctx, "", 500)
		if err != nil || !slices.ContainsFunc(list.Data, func(x client.Template) bool { return x.Name == "rt-welcome" && x.Version == 2 }) {
			t.Fatalf("ListTemplates = %+v, %v", list, err)
		}
		pv, err := c.PreviewTemplate(ctx, "rt-welcome", client.PreviewRequest{Data: map[string]any{"name": "Ada"}})
		if err != nil || pv.SMS == nil || pv.SMS.Text != "Hello Ada" {
			t.Fatalf("PreviewTemplate = %+v, %v", pv, err)
		}
		_, err = c.PreviewTemplate(ctx, "rt-welcome", client.PreviewRequest{})
		var herr *client.Error
		if !client.IsInvalid(err) || !errors.As(err, &herr) {
			t.Fatalf("preview without data: %v, want 422", err)
		}
		if _, ok := herr.Field("data.name"); !ok {
			t.Errorf("the 422 names %+v, want data.name", herr.Errors)
		}
		if err := c.DeleteTemplate(ctx, "rt-welcome"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetTemplate(ctx, "rt-welcome", 0); !client.IsNotFound(err) {
			t.Errorf("GetTemplate after delete: %v, want 404", err)
		}
	})

	t.Run("topics", func(t *testing.T) {
		for _, id := range []string{"rt-t1", "rt-t2"} {
			if _, err := c.PutUser(ctx, id, client.PutUserRequest{}); err != nil {
				t.Fatal(err)
			}
		}
		tp, err := c.PutTopicSubscribers(ctx, "rt-news", client.PutSubscribersRequest{Add: []string{"rt-t1", "rt-t2"}})
		if err != nil || tp.Subscribers != 2 {
			t.Fatalf("PutTopicSubscribers = %+v, %v", tp, err)
		}
		if _, err := c.PutTopicSubscribers(ctx, "rt-news", client.PutSubscribersRequest{Remove: []string{"rt-t2"}}); err != nil {
			t.Fatal(err)
		}
		if tp, err := c.GetTopic(ctx, "rt-news"); err != nil || tp.Subscribers != 1 {
			t.Fatalf("GetTopic = %+v, %v", tp, err)
		}
	})

	t.Run("notifications", func(t *testing.T) {
		at := time.Now().Add(time.Hour)
		acc, err := c.Send(ctx, client.SendRequest{To: []client.Recipient{{Email: "later@example.com"}}, Channels: []string{"email"},
			Content: &client.Content{Subject: "s", Body: "b"}, SendAt: &at})
		if err != nil || acc.Deliveries[0].Status != "scheduled" || acc.IdempotencyKey == "" {
			t.Fatalf("Send = %+v, %v", acc, err)
		}
		n, err := c.CancelNotification(ctx, acc.ID)
		if err != nil || n.Deliveries[0].Status != "canceled" || n.Status != client.NotificationCompleted {
			t.Fatalf("CancelNotification = %+v, %v", n, err)
		}
		list, err := c.ListNotifications(ctx, client.ListNotificationsParams{Status: "canceled", Limit: 500})
		if err != nil || !slices.ContainsFunc(list.Data, func(s client.NotificationSummary) bool { return s.ID == acc.ID }) {
			t.Fatalf("ListNotifications = %+v, %v", list, err)
		}
		if _, err := c.GetNotification(ctx, "nope"); !client.IsNotFound(err) {
			t.Errorf("GetNotification(nope) = %v, want 404", err)
		}
		dead, err := c.ListDeadLetters(ctx, client.ListDeadLettersParams{Channel: "email"})
		if err != nil || dead.Data == nil {
			t.Fatalf("ListDeadLetters = %+v, %v", dead, err)
		}
		if _, err := c.ReplayDeadLetter(ctx, "nope"); !client.IsNotFound(err) {
			t.Errorf("ReplayDeadLetter(nope) = %v, want 404", err)
		}
	})

	t.Run("keys", func(t *testing.T) {
		k, err := c.CreateKey(ctx, client.CreateKeyRequest{Name: "rt-sender", Scope: client.ScopeSend})
		if err != nil || k.Key == "" || k.Scope != "send" {
			t.Fatalf("CreateKey = %+v, %v", k, err)
		}
		sender := client.New(heraldURL, k.Key)
		if _, err := sender.GetApp(ctx); statusOf(err) != http.StatusForbidden {
			t.Errorf("a send key reading the app: %v, want 403", err)
		}
		if err := c.RevokeKey(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := sender.ListNotifications(ctx, client.ListNotificationsParams{Limit: 1})
			if statusOf(err) == http.StatusUnauthorized {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the revoked key still works: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("webhooks, providers and app", func(t *testing.T) {
		w, err := c.CreateWebhook(ctx, client.CreateWebhookRequest{URL: "http://127.0.0.1:9/hook", Events: []string{"delivery.dead"}})
		if err != nil || w.Secret == "" {
			t.Fatalf("CreateWebhook = %+v, %v", w, err)
		}
		hooks, err := c.ListWebhooks(ctx)
		if err != nil || !slices.ContainsFunc(hooks, func(h client.Webhook) bool { return h.ID == w.ID && h.Secret == "" }) {
			t.Fatalf("ListWebhooks = %+v, %v", hooks, err)
		}
		if err := c.DeleteWebhook(ctx, w.ID); err != nil {
			t.Fatal(err)
		}
		pl, err := c.PutProviders(ctx, "push", []client.ProviderEntry{{Kind: "log"}})
		if err != nil || pl.Channel != "push" || len(pl.Providers) != 1 || pl.Providers[0].Kind != "log" {
			t.Fatalf("PutProviders = %+v, %v", pl, err)
		}
		a, err := c.PutApp(ctx, client.PutAppRequest{DefaultLocale: "fr"})
		if err != nil || a.DefaultLocale != "fr" || a.Name != "examples" {
			t.Fatalf("PutApp = %+v, %v", a, err)
		}
		if a, err := c.GetApp(ctx); err != nil || a.DefaultLocale != "fr" {
			t.Fatalf("GetApp = %+v, %v", a, err)
		}
		if _, err := c.PutApp(ctx, client.PutAppRequest{}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestKeysListAndRotate: the keys contract's list and rotation.
func TestKeysListAndRotate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := client.New(heraldURL, apiKey)
	expires := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	k, err := c.CreateKey(ctx, client.CreateKeyRequest{Name: "rot", Scope: client.ScopeSend, ExpiresAt: &expires})
	if err != nil {
		t.Fatal(err)
	}
	if k.ExpiresAt == nil || !k.ExpiresAt.Equal(expires) {
		t.Errorf("created key expires at %v, want %v", k.ExpiresAt, expires)
	}
	keys, err := c.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(keys, func(x client.Key) bool { return x.ID == k.ID })
	if i < 0 || keys[i].Prefix != k.Prefix || keys[i].Name != "rot" {
		t.Fatalf("ListKeys = %+v, want the new key %s", keys, k.ID)
	}
	rotated, err := c.RotateKey(ctx, k.ID, client.RotateKeyRequest{GracePeriodSeconds: 60})
	if err != nil {
		t.Fatal(err)
	}
	if rotated.RotatedFrom != k.ID || rotated.Key == "" || rotated.Key == k.Key || rotated.Scope != "send" {
		t.Fatalf("RotateKey = %+v, want a new send key rotated from %s", rotated, k.ID)
	}
	// Within the grace period both keys work.
	for _, key := range []string{k.Key, rotated.Key} {
		if _, err := client.New(heraldURL, key).ListNotifications(ctx, client.ListNotificationsParams{Limit: 1}); err != nil {
			t.Errorf("key %s… during the grace period: %v", key[:12], err)
		}
	}
	if err := c.RevokeKey(ctx, rotated.ID); err != nil {
		t.Fatal(err)
	}
}
