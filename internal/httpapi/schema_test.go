package httpapi

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/docs"
)

// TestResponsesMatchSchemas checks the response structs of routes whose
// end-to-end tests need a real store against their schemas in
// openapi.yaml, so a renamed field shows up here first.
func TestResponsesMatchSchemas(t *testing.T) {
	t.Parallel()
	doc, err := openapi3.NewLoader().LoadFromData(docs.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	sub := &herald.WebPushSubscription{Endpoint: "https://push.example.com/1"}
	for _, tt := range []struct {
		schema string
		value  any
	}{
		{"User", toUserResponse(herald.User{ID: "u1", Email: "a@example.com", Phone: "+14155550100", CreatedAt: now, UpdatedAt: now})},
		{"User", toUserResponse(herald.User{ID: "u2", Attributes: map[string]any{"plan": "pro"}, CreatedAt: now, UpdatedAt: now})},
		{"Device", toDeviceResponse(herald.Device{ID: "d1", Platform: herald.PlatformIOS, Token: "ab", Status: herald.DeviceInvalid, CreatedAt: now})},
		{"Device", toDeviceResponse(herald.Device{ID: "d2", Platform: herald.PlatformWeb, Token: sub.Endpoint, Subscription: sub, CreatedAt: now})},
		{"DeviceList", deviceListResponse{Data: []deviceResponse{}}},
		{"Preferences", toPreferencesResponse(herald.Preferences{})},
		{"Preferences", toPreferencesResponse(herald.Preferences{
			Channels:   map[herald.Channel]bool{herald.ChannelSMS: false},
			Categories: map[string]map[herald.Channel]bool{"marketing": {herald.ChannelEmail: false}},
			QuietHours: &herald.QuietHours{Start: "22:00", End: "07:00"},
		})},
		{"CreatedKey", keyResponse{ID: "k1", Name: "ci", Scope: "send", Key: "hrd_s_" + "0123456789abcdefghijABCDEFGHIJ01" + "AbC123", Prefix: "hrd_s_012345", CreatedAt: now}},
		{"CreatedKey", keyResponse{ID: "k2", Name: "ci", Scope: "admin", Key: "hrd_a_" + "0123456789abcdefghijABCDEFGHIJ01" + "AbC123", Prefix: "hrd_a_012345",
			CreatedAt: now, ExpiresAt: &now, RotatedFrom: "k1"}},
		{"KeyList", keyListResponse{Data: []keyListItem{{ID: "k1", Name: "ci", Scope: "send", Prefix: "hrd_s_012345", CreatedAt: now},
			{ID: "k2", Name: "ci", Scope: "admin", Prefix: "hrd_a_012345", CreatedAt: now, ExpiresAt: &now, LastUsedAt: &now}}}},
		{"Accepted", acceptedResponse{ID: "n1", Status: "accepted", Deliveries: []acceptedDeliveryResponse{{ID: "d1", Channel: "sms", Status: "suppressed", Reason: "opted_out"}}}},
		{"Notification", notificationResponse{ID: "n1", Status: notificationProcessing, Priority: "normal", CreatedAt: now, Deliveries: []deliveryResponse{
			{ID: "d1", UserID: "u1", Channel: "push", Platform: "ios", Status: "sent", Provider: "apns", ProviderMessageID: "m", Attempts: 1,
				CreatedAt: now, UpdatedAt: now, Timeline: []eventResponse{{Status: "queued", At: now}, {Status: "sent", At: now, Attempt: 1, Provider: "apns"}}},
			{ID: "d2", Channel: "email", Address: maskAddress(herald.ChannelEmail, "a@example.com"), Status: "failed", Reason: "provider_rejected",
				CreatedAt: now, UpdatedAt: now, Timeline: []eventResponse{}},
		}}},
		{"NotificationList", notificationListResponse{Data: []notificationSummary{{ID: "n1", Status: "completed", Category: "c", Priority: "high", CreatedAt: now}}, NextCursor: "abc"}},
		{"DeadLetterList", deadLetterListResponse{Data: []deadLetterResponse{toDeadLetterResponse(herald.DeadLetter{
			Delivery: herald.Delivery{ID: "d1", NotificationID: "n1", UserID: "u1", Channel: herald.ChannelSMS, Status: herald.StatusDead,
				Reason: herald.ReasonRetriesExhausted, Attempts: 2, UpdatedAt: now},
			Events: []herald.Event{{DeliveryID: "d1", Status: herald.StatusQueued, Attempt: 1, Provider: "twilio", Detail: "503", At: now},
				{DeliveryID: "d1", Status: herald.StatusDead, Attempt: 2, Provider: "twilio", Detail: "503", At: now}}})},
			NextCursor: "abc"}},
		{"Notification", notificationResponse{ID: "n2", Status: notificationAccepted, Priority: "normal", CreatedAt: now,
			Template: "welcome", TemplateVersion: 3, Deliveries: []deliveryResponse{
				{ID: "d1", UserID: "u1", Channel: "sms", Locale: "de", Status: "accepted", CreatedAt: now, UpdatedAt: now, Timeline: []eventResponse{}}}}},
		{"Template", toTemplateResponse(herald.Template{Name: "welcome", Version: 2, CreatedAt: now,
			TemplateParts: herald.TemplateParts{
				Email: &herald.EmailParts{Subject: "Hi {{.name}}", HTML: "<p>{{.name}}</p>", Text: "{{.name}}"},
				SMS:   &herald.SMSParts{Text: "Hi"},
				Push:  &herald.PushParts{Title: "Hi", Body: "b", URL: "https://example.com", Data: map[string]string{"k": "v"}}},
			Locales: map[string]herald.TemplateParts{"de": {SMS: &herald.SMSParts{Text: "Hallo"}}}})},
		{"TemplateList", templateListResponse{Data: []templateResponse{toTemplateResponse(herald.Template{Name: "t", Version: 1,
			CreatedAt: now, TemplateParts: herald.TemplateParts{SMS: &herald.SMSParts{Text: "x"}}})}, NextCursor: "abc"}},
		{"Preview", previewResponse{Name: "welcome", Version: 2, Locale: "de", Email: &herald.EmailParts{Subject: "Hallo", Text: "x"},
			Push: &herald.PushParts{Title: "t", Data: map[string]string{"k": "v"}}}},
		{"App", newAppResponse(herald.App{ID: "a1", Name: "shop", CreatedAt: now})},
		{"App", newAppResponse(herald.App{ID: "a1", Name: "shop", SMSAllowedCountries: []string{"DE", "US"}, SMSDailyBudget: 100, CreatedAt: now})},
		{"ProviderList", toProvidersResponse(herald.ChannelEmail, []string{"sendgrid", "smtp"})},
		{"Problem", problemFor(herald.CodeInvalid, "bad", []herald.FieldError{{Field: "email", Message: "bad"}})},
		{"StatusOK", statusResponse{Status: "ok"}},
		{"Stats", statsResponse{From: now, To: now, IntervalSeconds: 10, AcceptedSince: now,
			Throughput: []statsInterval{{Start: now, Accepted: 2, Sent: 1, Retried: 1}}, Totals: map[string]int64{"accepted": 2},
			Providers: []providerHealthResp{{Channel: "email", Kind: "smtp", Circuit: CircuitOpen, Attempts: 2, Errors: 1, ErrorShare: 0.5}},
			Queue: queueStateResponse{Scope: "deployment", Readable: true, Pending: 3, Consumers: []queueConsumerResponse{
				{Stream: "NOTIFY", Consumer: "email", Pending: 3, OldestPendingAgeSeconds: 1.5}}}}},
		{"Stats", statsResponse{From: now, To: now, IntervalSeconds: 60, AcceptedSince: now, Throughput: []statsInterval{},
			Totals: map[string]int64{}, Providers: []providerHealthResp{},
			Queue: queueStateResponse{Scope: "deployment", Error: "down", Consumers: []queueConsumerResponse{}}}},
	} {
		ref := doc.Components.Schemas[tt.schema]
		if ref == nil {
			t.Fatalf("no schema %s", tt.schema)
		}
		b, err := json.Marshal(tt.value)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		if err := ref.Value.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.VisitAsResponse()); err != nil {
			t.Errorf("%s %s: %v", tt.schema, b, err)
		}
	}
}
