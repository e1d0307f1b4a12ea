package queue

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// unanswered is a message whose ack confirmation never comes, as while
// its consumer is between leaders.
type unanswered struct{ jetstream.Msg }

func (unanswered) DoubleAck(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// An ack that the server does not confirm gives up after ackTimeout even
// when the handler's context has no deadline, so that it frees its worker.
func TestAckGivesUpWithoutAnAnswer(t *testing.T) {
	t.Parallel()
	d := &Delivery{Job: Job{DeliveryID: "d1"}, msg: unanswered{}}
	start := time.Now()
	err := d.Ack(context.Background())
	took := time.Since(start)
	if err == nil {
		t.Errorf("Ack without an answer = nil, want an error")
	}
	if took < ackTimeout || took > ackTimeout+time.Second {
		t.Errorf("Ack without an answer took %s, want about %s", took, ackTimeout)
	}
}
