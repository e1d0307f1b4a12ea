package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/heraldhq/herald/client"
)

const dlqUsage = `usage:
  herald dlq list [--channel push|sms|email] [--json] [--url U] [--api-key K]
  herald dlq replay DELIVERY_ID... | --all [--channel C] [--json] [--url U] [--api-key K]

--url defaults to HERALD_URL, else http://127.0.0.1:8080; --api-key to HERALD_API_KEY`

// dlq lists and replays dead deliveries through a running Herald's HTTP API.
func dlq(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		return usageError{errors.New(dlqUsage)}
	}
	verb := args[0]
	fs := flag.NewFlagSet("herald dlq "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", envOr(getenv, "HERALD_URL", "http://127.0.0.1:8080"), "base URL of a running Herald (env HERALD_URL)")
	key := fs.String("api-key", getenv("HERALD_API_KEY"), "an API key of the app (env HERALD_API_KEY)")
	channel := fs.String("channel", "", "only dead deliveries on this channel (push, sms or email)")
	asJSON := fs.Bool("json", false, "print JSON for scripts instead of a table")
	all := fs.Bool("all", false, "replay: every dead delivery (of --channel, if given)")
	if err := fs.Parse(reorderFlags(args[1:], "--json", "-json", "--all", "-all")); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if *key == "" {
		return usageError{errors.New("no API key: pass --api-key or set HERALD_API_KEY (`herald apps create NAME` prints an admin key)")}
	}
	c := client.New(*base, *key, client.WithHTTPClient(&http.Client{Timeout: 30 * time.Second}),
		client.WithUserAgent("herald-cli/"+Version))
	if verb == "list" {
		if fs.NArg() > 0 {
			return usageError{errors.New(dlqUsage)}
		}
		letters, err := deadLetters(ctx, c, *channel)
		if err != nil {
			return explain(err, "")
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(letters)
		}
		printDeadLetters(stdout, letters)
		return nil
	}

	ids := fs.Args()
	switch {
	case *all && len(ids) > 0, !*all && len(ids) == 0:
		return usageError{errors.New("replay: give delivery ids or --all, not both\n" + dlqUsage)}
	case *all:
		letters, err := deadLetters(ctx, c, *channel)
		if err != nil {
			return explain(err, "")
		}
		for _, l := range letters {
			ids = append(ids, l.ID)
		}
	}
	type result struct {
		ID     string `json:"id"`
		Status string `json:"status,omitempty"`
		Error  string `json:"error,omitempty"`
	}
	var results []result
	failed := 0
	for _, id := range ids {
		d, err := c.ReplayDeadLetter(ctx, id)
		r := result{ID: id}
		if err != nil {
			msg := strings.ReplaceAll(explain(err, "no such delivery in this app; list them with: herald dlq list").Error(), "\n", "; ")
			r.Error, failed = msg, failed+1
		} else {
			r.Status = d.Status
		}
		results = append(results, r)
	}
	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(results); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			if r.Error != "" {
				fmt.Fprintf(stdout, "%s\tnot replayed: %s\n", r.ID, r.Error)
			} else {
				fmt.Fprintf(stdout, "%s\treplayed (%s)\n", r.ID, r.Status)
			}
		}
		if len(results) == 0 {
			fmt.Fprintln(stdout, "No dead deliveries to replay.")
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d deliveries were not replayed; see above (list what is still dead with: herald dlq list)", failed, len(results))
	}
	return nil
}

func printDeadLetters(w io.Writer, letters []client.DeadLetter) {
	if len(letters) == 0 {
		fmt.Fprintln(w, "No dead deliveries.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DELIVERY\tCHANNEL\tUSER\tATTEMPTS\tDEAD AT\tREASON\tLAST ERROR")
	for _, l := range letters {
		last := ""
		if n := len(l.Errors); n > 0 {
			last = l.Errors[n-1].Detail
			if len(last) > 60 {
				last = last[:57] + "..."
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", l.ID, l.Channel, l.UserID, l.Attempts,
			l.DeadAt.Format(time.RFC3339), l.Reason, strings.ReplaceAll(last, "\n", " "))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\n%d dead. Replay with: herald dlq replay DELIVERY_ID (or --all)\n", len(letters))
}

// deadLetters reads every page of the dead letters.
func deadLetters(ctx context.Context, c *client.Client, channel string) ([]client.DeadLetter, error) {
	out := []client.DeadLetter{}
	cursor := ""
	for {
		page, err := c.ListDeadLetters(ctx, client.ListDeadLettersParams{Channel: channel, Cursor: cursor, Limit: 500})
		if err != nil {
			return nil, err
		}
		out = append(out, page.Data...)
		if page.NextCursor == "" {
			return out, nil
		}
		cursor = page.NextCursor
	}
}

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// reorderFlags moves flags before positional arguments, so that
// "replay ID --json" parses like "replay --json ID"; boolFlags take no value.
func reorderFlags(args []string, boolFlags ...string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") && a != "-" {
			flags = append(flags, a)
			isBool := strings.Contains(a, "=")
			for _, b := range boolFlags {
				isBool = isBool || a == b
			}
			if !isBool && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}
