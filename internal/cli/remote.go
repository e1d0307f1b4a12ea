package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/heraldhq/herald/client"
)

// remote holds the flags of the verbs that talk to a running Herald over
// its API: --url, --api-key and --json.
type remote struct {
	url, key string
	asJSON   bool
	// timeout bounds each HTTP attempt.
	timeout time.Duration
}

// newRemoteFlags makes the FlagSet of "herald <name>" with the common
// flags of the remote verbs bound to r.
func newRemoteFlags(name string, getenv func(string) string, stderr io.Writer, r *remote) *flag.FlagSet {
	fs := flag.NewFlagSet("herald "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&r.url, "url", envOr(getenv, "HERALD_URL", "http://127.0.0.1:8080"), "base URL of a running Herald (env HERALD_URL)")
	fs.StringVar(&r.key, "api-key", getenv("HERALD_API_KEY"), "an API key of the app (env HERALD_API_KEY)")
	fs.BoolVar(&r.asJSON, "json", false, "print JSON for scripts instead of text")
	r.timeout = 30 * time.Second
	return fs
}

// parseRemote parses args (flags may follow positional arguments) and
// checks that there is a key to call with.
func parseRemote(fs *flag.FlagSet, args []string, r *remote) error {
	var bools []string
	fs.VisitAll(func(f *flag.Flag) {
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			bools = append(bools, "-"+f.Name, "--"+f.Name)
		}
	})
	if err := fs.Parse(reorderFlags(args, bools...)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if r.key == "" {
		return usageError{errors.New("no API key: pass --api-key or set HERALD_API_KEY (`herald apps create NAME` prints an admin key)")}
	}
	return nil
}

func (r *remote) client() *client.Client {
	return client.New(r.url, r.key, client.WithHTTPClient(&http.Client{Timeout: r.timeout}),
		client.WithUserAgent("herald-cli/"+Version))
}

// explain turns an API error into one that says what happened and what
// to do next; notFound is the advice for a 404.
func explain(err error, notFound string) error {
	var nerr *client.NetworkError
	if errors.As(err, &nerr) {
		return fmt.Errorf("cannot reach Herald at %s: is `herald serve` running there? (set --url or HERALD_URL)\n  (%v)", nerr.URL, nerr.Err)
	}
	var herr *client.Error
	if !errors.As(err, &herr) {
		return err
	}
	msg := herr.Detail
	if msg == "" {
		msg = herr.Title
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", herr.StatusCode, msg)
	for _, f := range herr.Errors {
		fmt.Fprintf(&b, "\n  %s: %s", f.Field, f.Message)
	}
	switch herr.StatusCode {
	case http.StatusUnauthorized:
		b.WriteString("\ncheck --api-key or HERALD_API_KEY: the key is unknown, revoked or expired")
	case http.StatusForbidden:
		b.WriteString("\nthis needs an admin key of the app (--api-key or HERALD_API_KEY)")
	case http.StatusNotFound:
		if notFound != "" {
			b.WriteString("\n" + notFound)
		}
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		if herr.RetryAfter > 0 {
			fmt.Fprintf(&b, "\nHerald asked to try again in %s", herr.RetryAfter)
		}
	}
	return errors.New(b.String())
}

// isTerminal reports whether w is a terminal, where progress may be drawn.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
