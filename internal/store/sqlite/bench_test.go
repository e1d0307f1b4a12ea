package sqlite_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/heraldhq/herald"
)

// BenchmarkApply shows what group commit buys on SQLite with
// synchronous=FULL: one notification (one delivery, one event) per
// transaction pays an fsync each, 64 per transaction share one. b.N counts
// notifications; rows/s counts the three rows each writes.
func BenchmarkApply(b *testing.B) {
	for _, perTx := range []int{1, 64} {
		b.Run(fmt.Sprintf("per_tx=%d", perTx), func(b *testing.B) {
			s := open(b, filepath.Join(b.TempDir(), "bench.db"))
			app := uuid.Must(uuid.NewV7()).String()
			batch := make([]herald.NewNotification, 0, perTx)
			b.ResetTimer()
			for i := 0; i < b.N; {
				batch = batch[:0]
				for ; len(batch) < perTx && i < b.N; i++ {
					batch = append(batch, newNotification(app))
				}
				if err := s.Apply(b.Context(), &herald.Batch{Notifications: batch}); err != nil {
					b.Fatal(err)
				}
			}
			secs := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N)/secs, "notifications/s")
			b.ReportMetric(float64(3*b.N)/secs, "rows/s")
		})
	}
}

func newNotification(appID string) herald.NewNotification {
	at := time.Now().UTC().Truncate(time.Microsecond)
	n := herald.Notification{AppID: appID, ID: uuid.Must(uuid.NewV7()).String(), Category: "bench",
		Priority: herald.PriorityNormal, Content: herald.Content{Body: "hello"}, CreatedAt: at}
	d := herald.Delivery{AppID: appID, ID: uuid.Must(uuid.NewV7()).String(), NotificationID: n.ID, UserID: "user-1",
		Channel: herald.ChannelEmail, Priority: n.Priority, Address: "user-1@example.com", Status: herald.StatusAccepted, CreatedAt: at}
	return herald.NewNotification{Notification: n, Deliveries: []herald.Delivery{d},
		Events: []herald.Event{{DeliveryID: d.ID, Channel: d.Channel, Status: d.Status, At: at}}}
}
