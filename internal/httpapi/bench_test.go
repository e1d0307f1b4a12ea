package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/apikey"
)

// benchSendBody is a typical send: three recipients, two channels, push content with data.
const benchSendBody = `{"to":[{"user_id":"user-1234"},{"email":"ada@example.com"},{"phone":"+14155550100"}],
"channels":["push","email"],"category":"order-updates","priority":"high",
"content":{"title":"Your order shipped","body":"Order 1234 is on its way and arrives on Tuesday.",
"subject":"Order 1234 shipped","url":"https://shop.example.com/orders/1234","data":{"order_id":"1234","items":3,"gift":false}}}`

// BenchmarkSendRequest measures the API's own work on POST
// /v1/notifications: key check, decode, validation, the 202's encoding,
// with a Sender that accepts at once (no store, no queue).
func BenchmarkSendRequest(b *testing.B) {
	key, prefix, hash, err := apikey.Generate(herald.ScopeSend)
	if err != nil {
		b.Fatal(err)
	}
	accepted := herald.Accepted{ID: "0190b7a4-0000-7000-8000-000000000001", Status: "accepted", Deliveries: []herald.AcceptedDelivery{
		{ID: "0190b7a4-0000-8000-8000-000000000002", UserID: "user-1234", Channel: herald.ChannelPush, Status: herald.StatusAccepted},
		{ID: "0190b7a4-0000-8000-8000-000000000003", Channel: herald.ChannelEmail, Status: herald.StatusAccepted},
	}}
	h := NewServer(Deps{
		Store: keyStore{keys: map[string]herald.APIKey{string(hash): {ID: "k", AppID: "app1", Scope: herald.ScopeSend, Prefix: prefix, Hash: hash}}},
		Sender: senderFunc(func(context.Context, string, herald.SendRequest) (herald.Accepted, bool, error) {
			return accepted, false, nil
		}),
	})
	b.ReportAllocs()
	for b.Loop() {
		// http.NewRequest, not httptest's, whose request parsing would dominate the allocations.
		r, err := http.NewRequest(http.MethodPost, "/v1/notifications", strings.NewReader(benchSendBody))
		if err != nil {
			b.Fatal(err)
		}
		r.Header.Set("Authorization", "Bearer "+key)
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkDecodeSendBody is the decoding of that body alone.
func BenchmarkDecodeSendBody(b *testing.B) {
	data := []byte(benchSendBody)
	b.ReportAllocs()
	for b.Loop() {
		var body sendRequestBody
		if err := decodeJSON(data, &body); err != nil {
			b.Fatal(err)
		}
	}
}
