package cli

import (
	"context"
	"encoding/json"
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

const usersUsage = `usage:
  herald users import FILE.csv [--json] [--url U] [--api-key K]

FILE.csv's first line names its columns: user_id (required), and any of
email, phone, locale, timezone and attr.<name>. Existing users are updated.
Bad rows are skipped and listed by line; fix them and import the file again
(the good rows are then only updated). "-" reads the CSV from standard input.
--url defaults to HERALD_URL, else http://127.0.0.1:8080; --api-key to
HERALD_API_KEY (an admin key)`

func users(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "import" {
		return usageError{errors.New(usersUsage)}
	}
	fs := flag.NewFlagSet("herald users import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", envOr(getenv, "HERALD_URL", "http://127.0.0.1:8080"), "base URL of a running Herald (env HERALD_URL)")
	key := fs.String("api-key", getenv("HERALD_API_KEY"), "an admin API key of the app (env HERALD_API_KEY)")
	asJSON := fs.Bool("json", false, "print the server's JSON answer for scripts")
	if err := fs.Parse(reorderFlags(args[1:], "--json", "-json")); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() != 1 {
		return usageError{errors.New(usersUsage)}
	}
	if *key == "" {
		return usageError{errors.New("no API key: create one with `herald apps create NAME`, then pass it with --api-key or HERALD_API_KEY")}
	}
	var in io.Reader = stdin
	var size int64
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("open the CSV: %w", err)
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
		in = f
	}
	var bar *progress
	if isTerminal(stderr) {
		// Herald reads the CSV as it imports it, so what it has read is
		// how far the import is.
		bar = startProgress(stderr, "importing", size)
		defer bar.Stop()
		in = progressReader{r: in, p: bar}
	}
	c := client.New(strings.TrimRight(*base, "/"), *key, client.WithHTTPClient(&http.Client{Timeout: 30 * time.Minute}),
		client.WithUserAgent("herald-cli/"+Version))
	start := time.Now()
	out, err := c.ImportUsers(ctx, in)
	if bar != nil {
		bar.Stop()
	}
	if err != nil {
		return explain(err, "")
	}
	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "%d rows read in %s: %d imported (%d new, %d updated), %d skipped.\n",
			out.Rows, time.Since(start).Round(time.Millisecond), out.Imported, out.Created, out.Updated, out.Failed)
		for _, e := range out.Errors {
			fmt.Fprintf(stdout, "  line %d, %s: %s\n", e.Line, e.Field, e.Message)
		}
		if more := out.Failed - len(out.Errors); more > 0 {
			fmt.Fprintf(stdout, "  … and %d more bad rows (the first %d are listed).\n", more, len(out.Errors))
		}
	}
	if out.Failed > 0 {
		return fmt.Errorf("%d rows were not imported; fix the lines above and import the file again", out.Failed)
	}
	return nil
}
