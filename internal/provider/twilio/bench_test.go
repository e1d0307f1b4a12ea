package twilio_test

import (
	"context"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/provider/twilio"
)

// BenchmarkSend measures one send through the adapter to the fake over TLS
// (keep-alive connections), request validation against the API
// description included.
func BenchmarkSend(b *testing.B) {
	srv := newFake(b)
	p := newProvider(b, fakeSettings(srv), herald.ProviderEnv{PublicURL: publicURL})
	m := message("dlv_bench", "+14155550100", "Your verification code is 123456. It expires in 10 minutes.")
	ctx, cancel := context.WithTimeout(b.Context(), time.Minute)
	defer cancel()
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		if out := p.Send(ctx, m); out.Kind != herald.OutcomeSent {
			b.Fatalf("Send = %v (%s)", out.Kind, out.Detail)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "sends/s")
}

// BenchmarkSegments measures the segment count of a two-part GSM-7 body.
func BenchmarkSegments(b *testing.B) {
	body := "Your order #48213 has shipped {tracking: 1Z999AA10123456784} and will arrive Tuesday. " +
		"Reply STOP to opt out of delivery updates; questions? Visit our help centre at any time."
	b.ReportAllocs()
	for b.Loop() {
		if n, _ := twilio.Segments(body); n != 2 {
			b.Fatalf("Segments = %d, want 2", n)
		}
	}
}
