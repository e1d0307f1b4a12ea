// Package natsembed runs nats-server inside the Herald process, so that the
// embedded mode has JetStream without a separate daemon. The server has no
// TCP listener: clients reach it only through an in-process connection,
// which is why the queue code cannot tell it from an external cluster.
package natsembed

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/heraldhq/herald"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Options configure the embedded server.
type Options struct {
	// StoreDir is where JetStream keeps its file store (a "jetstream"
	// directory is created inside it). Required.
	StoreDir string
	// Logger receives the server's log lines; nil discards them.
	Logger *slog.Logger
	// SyncInterval is how often the file store is fsynced; 0 keeps the
	// server's default. Herald's notification log is the durable record,
	// so the queue may run on the fast setting (see ARCHITECTURE.md).
	SyncInterval time.Duration
	// Cipher encrypts the JetStream store at rest: "aes" (AES-GCM) or
	// "chacha" (ChaCha20-Poly1305), keyed with Key; "" or "none" leaves
	// it in plain text. Messages, their subjects and the streams' and
	// consumers' metadata are encrypted on disk.
	Cipher string
	// Key is the store's encryption key; required with a Cipher.
	Key string
}

// Server is a running embedded nats-server with JetStream.
type Server struct {
	ns       *server.Server
	log      *slog.Logger
	stopOnce sync.Once
}

// readyPoll bounds each wait of the readiness loop, so that Start notices
// a canceled context quickly.
const readyPoll = 50 * time.Millisecond

// Start starts the server and returns once it accepts connections and
// JetStream is enabled. Errors: CodeInvalid when StoreDir is empty,
// CodeUnavailable when ctx ends before the server is ready, CodeInternal
// when the server cannot be configured or started.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.StoreDir == "" {
		return nil, herald.Invalid("store_dir", "the embedded NATS server needs a store directory")
	}
	if err := ctx.Err(); err != nil {
		return nil, &herald.Error{Code: herald.CodeUnavailable, Message: "natsembed: start", Err: err}
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "nats-server")
	opts := &server.Options{
		ServerName:   "herald-embedded",
		JetStream:    true,
		StoreDir:     o.StoreDir,
		DontListen:   true,
		NoSigs:       true, // the process owns its signals, not the library
		SyncInterval: o.SyncInterval,
	}
	switch o.Cipher {
	case "", "none":
	case "aes", "chacha":
		if o.Key == "" {
			return nil, herald.Invalid("key", "the JetStream store cipher needs a key")
		}
		opts.JetStreamCipher, opts.JetStreamKey = server.ChaCha, o.Key
		if o.Cipher == "aes" {
			opts.JetStreamCipher = server.AES
		}
	default:
		return nil, herald.Invalid("cipher", "use aes, chacha or none")
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, &herald.Error{Code: herald.CodeInternal, Message: fmt.Sprintf("natsembed: new server in %q", o.StoreDir), Err: err}
	}
	// Debug and trace are off: they log every protocol line, which would
	// drown Herald's own debug output.
	ns.SetLoggerV2(&slogLogger{log: log}, false, false, false)
	ns.Start()
	s := &Server{ns: ns, log: log}

	for !ns.ReadyForConnections(readyPoll) || !ns.JetStreamEnabled() {
		if err := ctx.Err(); err != nil {
			s.abort()
			return nil, &herald.Error{Code: herald.CodeUnavailable, Message: "natsembed: start: server not ready", Err: err}
		}
		if !ns.Running() {
			s.abort()
			return nil, &herald.Error{Code: herald.CodeInternal, Message: fmt.Sprintf("natsembed: start in %q: server stopped during start-up (see its log)", o.StoreDir)}
		}
	}
	log.Debug("embedded NATS server ready", "store_dir", o.StoreDir)
	return s, nil
}

// abort stops a server that failed to start, bounded so that a wedged
// shutdown cannot hang the caller's start-up error.
func (s *Server) abort() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		s.log.Warn("embedded NATS server did not stop after a failed start", "err", err)
	}
}

// Connect opens an in-process connection to the server. Extra options
// (name, handlers) are applied after the in-process one.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{nats.InProcessServer(s.ns)}, opts...)
	nc, err := nats.Connect(s.ns.ClientURL(), all...)
	if err != nil {
		return nil, &herald.Error{Code: herald.CodeUnavailable, Message: "natsembed: connect in-process", Err: err}
	}
	return nc, nil
}

// Stop shuts the server down and waits until it has, or until ctx is done
// (CodeUnavailable then). It is safe to call more than once.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		// Shutdown blocks until the store is flushed; run it aside so that
		// ctx bounds the wait, and every later Stop waits on the same end.
		go s.ns.Shutdown()
	})
	done := make(chan struct{})
	go func() {
		s.ns.WaitForShutdown()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return &herald.Error{Code: herald.CodeUnavailable, Message: "natsembed: stop: server still shutting down", Err: ctx.Err()}
	}
}

// slogLogger routes nats-server's log lines to slog. Notices (the start-up
// banner and routine lifecycle lines) go to debug so a normal start stays
// quiet; warnings and errors keep their level.
type slogLogger struct{ log *slog.Logger }

func (l *slogLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *slogLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *slogLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *slogLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *slogLogger) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }

// Fatalf logs at error level and does not exit: the server reports fatal
// start-up problems through it, and Start turns those into an error.
func (l *slogLogger) Fatalf(format string, v ...any) {
	l.log.Error(fmt.Sprintf(format, v...), "fatal", true)
}

var _ server.Logger = (*slogLogger)(nil)
