package accept_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/accept"
)

// discardLog stands in for the group-commit writer: the benchmarks below
// measure what happens before the log write.
type discardLog struct{}

func (discardLog) Write(context.Context, *herald.Batch) error { return nil }

// BenchmarkResolve measures Send up to the log write: validation, and the
// resolution of recipients to deliveries. There is no recipient cache: a
// user costs three reads of the SQLite store (user, preferences, devices).
//   - user: one user with an email, a phone and two devices, every channel (4 deliveries);
//   - addresses: an email and a phone given in the request (no store read, 2 deliveries).
func BenchmarkResolve(b *testing.B) {
	ctx := context.Background()
	st := openSQLite(b, b.TempDir())
	b.Cleanup(func() { _ = st.Close() })
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := st.CreateApp(ctx, herald.App{ID: "app", Name: "bench", CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	if _, _, err := st.PutUser(ctx, herald.User{AppID: "app", ID: "ada", Email: "ada@example.com", Phone: "+14155550100",
		CreatedAt: now, UpdatedAt: now}); err != nil {
		b.Fatal(err)
	}
	for i, p := range []herald.Platform{herald.PlatformIOS, herald.PlatformAndroid} {
		if _, err := st.AddDevice(ctx, herald.Device{AppID: "app", ID: fmt.Sprintf("dev%d", i), UserID: "ada", Platform: p,
			Token: fmt.Sprintf("%064x", i+1), Status: herald.DeviceActive, CreatedAt: now}); err != nil {
			b.Fatal(err)
		}
	}
	svc := accept.New(st, discardLog{}, accept.Options{})
	content := herald.Content{Title: "Your order shipped", Subject: "Order 1234", Body: "Order 1234 is on its way."}
	for _, tt := range []struct {
		name       string
		to         []herald.Recipient
		deliveries int
	}{
		{"user", []herald.Recipient{{UserID: "ada"}}, 4},
		{"addresses", []herald.Recipient{{Email: "grace@example.com"}, {Phone: "+14155550101"}}, 2},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				a, _, err := svc.Send(ctx, "app", herald.SendRequest{To: tt.to, Content: content})
				if err != nil || len(a.Deliveries) != tt.deliveries {
					b.Fatalf("%d deliveries, %v", len(a.Deliveries), err)
				}
			}
		})
	}
}
