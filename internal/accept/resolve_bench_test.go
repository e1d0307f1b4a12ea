package accept_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/accept"
)

// discardLog stands in for the group-commit writer: the benchmarks below
// measure what happens before the log write.
type discardLog struct{}

func (discardLog) Write(context.Context, *herald.Batch) error { return nil }

// BenchmarkResolve measures Send up to the log write: validation, and the
// resolution of recipients to deliveries. There is no recipient cache:
// the users of a request (or of a fan-out page) are read from the SQLite
// store with their preferences and devices in one query.
//   - user: one user with an email, a phone and two devices, every channel (4 deliveries);
//   - addresses: an email and a phone given in the request (no store read, 2 deliveries);
//   - users100: 100 users with an email, a phone and a device each, every channel (300 deliveries);
//   - fanout1000: a topic fan-out page of 1000 such users (FanoutPage, 3000 deliveries).
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
	const crowd = 1000
	users := make([]herald.User, crowd)
	ids := make([]string, crowd)
	for i := range users {
		ids[i] = fmt.Sprintf("user%04d", i)
		users[i] = herald.User{AppID: "app", ID: ids[i], Email: ids[i] + "@example.com",
			Phone: fmt.Sprintf("+1415555%04d", i), CreatedAt: now, UpdatedAt: now}
	}
	if _, err := st.PutUsers(ctx, users); err != nil {
		b.Fatal(err)
	}
	for i, id := range ids {
		if _, err := st.AddDevice(ctx, herald.Device{AppID: "app", ID: "dev-" + id, UserID: id, Platform: herald.PlatformAndroid,
			Token: fmt.Sprintf("%064x", 1000+i), Status: herald.DeviceActive, CreatedAt: now}); err != nil {
			b.Fatal(err)
		}
	}
	hundred := make([]herald.Recipient, 100)
	for i := range hundred {
		hundred[i] = herald.Recipient{UserID: ids[i]}
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
		{"users100", hundred, 300},
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
	b.Run("fanout1000", func(b *testing.B) {
		f := herald.Fanout{AppID: "app", Topic: "news", Status: herald.FanoutRunning}
		n := herald.Notification{AppID: "app", ID: uuid.Must(uuid.NewV7()).String(), Content: content, CreatedAt: now}
		b.ReportAllocs()
		for b.Loop() {
			ds, _, err := svc.FanoutPage(ctx, f, n, ids)
			if err != nil || len(ds) != 3*crowd {
				b.Fatalf("%d deliveries, %v", len(ds), err)
			}
		}
	})
}
