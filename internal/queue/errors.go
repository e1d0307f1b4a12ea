package queue

import (
	"context"
	"errors"
	"os"

	"github.com/heraldhq/herald"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// translate turns a NATS or JetStream error into a *herald.Error naming the
// operation: CodeUnavailable when the server is unreachable, slow or
// temporarily unable to serve, CodeInternal otherwise. The cause stays in
// the chain for errors.Is and the logs. An error that already is a
// *herald.Error keeps its code.
func translate(op string, err error) error {
	if err == nil {
		return nil
	}
	if he, ok := errors.AsType[*herald.Error](err); ok {
		return &herald.Error{Code: he.Code, Message: op, Err: err}
	}
	code := herald.CodeInternal
	if unavailable(err) {
		code = herald.CodeUnavailable
	}
	return &herald.Error{Code: code, Message: op, Err: err}
}

// unavailable reports whether err means the server could not be reached or
// did not answer in time, which a retry later may cure.
func unavailable(err error) bool {
	for _, target := range []error{
		context.DeadlineExceeded, context.Canceled, os.ErrDeadlineExceeded,
		nats.ErrTimeout, nats.ErrConnectionClosed, nats.ErrConnectionDraining,
		nats.ErrConnectionReconnecting, nats.ErrDisconnected, nats.ErrNoServers,
		nats.ErrNoResponders, nats.ErrStaleConnection,
		jetstream.ErrNoStreamResponse, jetstream.ErrAsyncPublishTimeout,
		jetstream.ErrNoHeartbeat, jetstream.ErrJetStreamNotEnabled,
		jetstream.ErrServerShutdown, jetstream.ErrConnectionClosed,
		jetstream.ErrTooManyStalledMsgs,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	// 503 is JetStream's "temporarily unavailable" (no quorum, no leader).
	if jsErr, ok := errors.AsType[jetstream.JetStreamError](err); ok {
		if apiErr := jsErr.APIError(); apiErr != nil && apiErr.Code == 503 {
			return true
		}
	}
	return false
}
