// Package providertest holds what every provider adapter's tests share:
// the conformance suite (Run) and fake servers that speak each provider's
// real wire protocol, so adapters are tested end to end without mocks.
package providertest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
)

// Suite describes one provider kind to the conformance suite.
type Suite struct {
	// Kind is what the provider's Kind must return.
	Kind string
	// New returns a provider wired to its fake server.
	New func(t *testing.T) herald.Provider
	// Message returns a valid message for the provider; the suite sets a
	// fresh DeliveryID on each send.
	Message func() herald.Message
	// Received reports how many messages the fake has accepted so far. The
	// suite compares counts before and after its sends, so one fake may
	// serve every New; the suite's subtests do not run in parallel.
	Received func(t *testing.T) int

	// The fields below are optional; a check whose field is nil is skipped.

	// Fault arranges for the fake to give the next send an answer of class
	// k (a 503, an unregistered token, a STOP, bad credentials, ...) and
	// reports false when the provider has no such answer.
	Fault func(t *testing.T, k herald.OutcomeKind) bool
	// Hang makes the fake stop answering, for the timeout check; it runs
	// last, so it may leave the fake hanging.
	Hang func(t *testing.T)
	// NewWithLogger returns a provider wired to the fake that logs to
	// logger, for the check that credentials never reach the logs.
	NewWithLogger func(t *testing.T, logger *slog.Logger) herald.Provider
	// Secrets are the credentials in the provider's settings: none may
	// appear in an outcome's Detail or in the logs.
	Secrets []string
}

// faultClasses are the answers other than success every provider classifies.
var faultClasses = []herald.OutcomeKind{herald.OutcomeRetry, herald.OutcomePermanent,
	herald.OutcomeInvalidRecipient, herald.OutcomeOptedOut, herald.OutcomeConfigError}

// cancelBudget is how long a send with an already-canceled context may take.
const cancelBudget = 2 * time.Second

// Run checks the behaviour every provider must have.
func Run(t *testing.T, s Suite) {
	t.Helper()
	var seq int
	message := func() herald.Message {
		seq++
		m := s.Message()
		m.DeliveryID = fmt.Sprintf("dlv_%d_%d", time.Now().UnixNano(), seq)
		return m
	}
	// sendCtx bounds each send, so a provider that ignores its fake's
	// answer fails the test instead of hanging it.
	sendCtx := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		t.Cleanup(cancel)
		return ctx
	}

	t.Run("Kind", func(t *testing.T) {
		if got := s.New(t).Kind(); got != s.Kind {
			t.Fatalf("Kind() = %q, want %q", got, s.Kind)
		}
	})

	t.Run("SendValid", func(t *testing.T) {
		p := s.New(t)
		before := s.Received(t)
		out := p.Send(sendCtx(t), message())
		if out.Kind != herald.OutcomeSent {
			t.Fatalf("Send = %v (%s), want sent", out.Kind, out.Detail)
		}
		if out.ProviderMessageID == "" {
			t.Fatal("Send returned sent without a ProviderMessageID")
		}
		if got := s.Received(t) - before; got != 1 {
			t.Fatalf("the fake received %d messages, want 1", got)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		const n = 20
		p := s.New(t)
		before := s.Received(t)
		ctx := sendCtx(t)
		msgs := make([]herald.Message, n)
		for i := range msgs {
			msgs[i] = message()
		}
		outs := make([]herald.Outcome, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { outs[i] = p.Send(ctx, msgs[i]) })
		}
		wg.Wait()
		ids := map[string]bool{}
		for i, out := range outs {
			if out.Kind != herald.OutcomeSent {
				t.Errorf("send %d = %v (%s), want sent", i, out.Kind, out.Detail)
				continue
			}
			if ids[out.ProviderMessageID] {
				t.Errorf("send %d: ProviderMessageID %q repeats for a different delivery", i, out.ProviderMessageID)
			}
			ids[out.ProviderMessageID] = true
		}
		if got := s.Received(t) - before; got != n {
			t.Fatalf("the fake received %d messages, want %d", got, n)
		}
	})

	t.Run("OutcomeClasses", func(t *testing.T) {
		if s.Fault == nil {
			t.Skip("the suite has no Fault hook for this provider")
		}
		p := s.New(t)
		for _, k := range faultClasses {
			if !s.Fault(t, k) {
				continue
			}
			out := p.Send(sendCtx(t), message())
			if out.Kind != k {
				t.Errorf("after a %s fault: Send = %v (%s)", k, out.Kind, out.Detail)
			}
			if out.Detail == "" {
				t.Errorf("a %s outcome has no Detail for the timeline", k)
			}
			checkSecrets(t, s.Secrets, "Detail of a "+k.String()+" outcome", out.Detail)
		}
	})

	t.Run("NoCredentialsInLogs", func(t *testing.T) {
		if s.NewWithLogger == nil || len(s.Secrets) == 0 {
			t.Skip("the suite has no NewWithLogger hook or no Secrets for this provider")
		}
		var logs safeBuffer
		p := s.NewWithLogger(t, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
		p.Send(sendCtx(t), message())
		if s.Fault != nil && s.Fault(t, herald.OutcomeConfigError) {
			p.Send(sendCtx(t), message())
		}
		checkSecrets(t, s.Secrets, "the logs", logs.String())
	})

	t.Run("CanceledContext", func(t *testing.T) {
		p := s.New(t)
		before := s.Received(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		start := time.Now()
		out := p.Send(ctx, message())
		if took := time.Since(start); took > cancelBudget {
			t.Errorf("Send with a canceled context took %v, want < %v", took, cancelBudget)
		}
		if out.Kind == herald.OutcomeSent {
			t.Fatal("Send with a canceled context reported sent")
		}
		if got := s.Received(t) - before; got != 0 {
			t.Fatalf("the fake received %d messages for a canceled send, want 0", got)
		}
	})

	t.Run("Timeout", func(t *testing.T) {
		if s.Hang == nil {
			t.Skip("the suite has no Hang hook for this provider")
		}
		p := s.New(t)
		s.Hang(t)
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		out := p.Send(ctx, message())
		if took := time.Since(start); took > cancelBudget {
			t.Errorf("Send against a hanging server took %v with a 300ms deadline, want < %v", took, cancelBudget)
		}
		if out.Kind != herald.OutcomeRetry {
			t.Errorf("Send against a hanging server = %v (%s), want retry", out.Kind, out.Detail)
		}
	})
}

func checkSecrets(t *testing.T, secrets []string, where, text string) {
	t.Helper()
	for _, secret := range secrets {
		if secret != "" && strings.Contains(text, secret) {
			t.Errorf("a credential appears in %s", where)
		}
	}
}

// safeBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type safeBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *safeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *safeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
