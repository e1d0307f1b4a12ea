package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"
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
		return usageError{errors.New("no API key: create one with `herald apps create NAME`, then pass it with --api-key or HERALD_API_KEY")}
	}
	c := &apiClient{base: strings.TrimRight(*base, "/"), key: *key, http: &http.Client{Timeout: 30 * time.Second}}
	if verb == "list" {
		if fs.NArg() > 0 {
			return usageError{errors.New(dlqUsage)}
		}
		letters, err := c.deadLetters(ctx, *channel)
		if err != nil {
			return err
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
		letters, err := c.deadLetters(ctx, *channel)
		if err != nil {
			return err
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
		var d struct {
			Status string `json:"status"`
		}
		err := c.do(ctx, http.MethodPost, "/v1/dead-letters/"+url.PathEscape(id)+"/replay", &d)
		r := result{ID: id, Status: d.Status}
		if err != nil {
			r.Error, failed = err.Error(), failed+1
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

// deadLetter is one item of GET /v1/dead-letters.
type deadLetter struct {
	ID                string    `json:"id"`
	NotificationID    string    `json:"notification_id"`
	UserID            string    `json:"user_id,omitempty"`
	Channel           string    `json:"channel"`
	Attempts          int       `json:"attempts"`
	Reason            string    `json:"reason"`
	DeadAt            time.Time `json:"dead_at"`
	PossibleDuplicate bool      `json:"possible_duplicate"`
	Errors            []struct {
		Attempt  int       `json:"attempt"`
		At       time.Time `json:"at"`
		Provider string    `json:"provider,omitempty"`
		Detail   string    `json:"detail"`
	} `json:"errors"`
}

func printDeadLetters(w io.Writer, letters []deadLetter) {
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

// apiClient talks to a running Herald.
type apiClient struct {
	base, key string
	http      *http.Client
}

// deadLetters reads every page of the dead letters.
func (c *apiClient) deadLetters(ctx context.Context, channel string) ([]deadLetter, error) {
	out := []deadLetter{}
	cursor := ""
	for {
		q := url.Values{"limit": {"500"}}
		if channel != "" {
			q.Set("channel", channel)
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Data       []deadLetter `json:"data"`
			NextCursor string       `json:"next_cursor"`
		}
		if err := c.do(ctx, http.MethodGet, "/v1/dead-letters?"+q.Encode(), &page); err != nil {
			return nil, err
		}
		out = append(out, page.Data...)
		if page.NextCursor == "" {
			return out, nil
		}
		cursor = page.NextCursor
	}
}

// do sends a request and decodes a 2xx answer into v; a problem becomes an
// error that says what the server said and, where it helps, what to do.
func (c *apiClient) do(ctx context.Context, method, path string, v any) error {
	return c.send(ctx, method, path, "", nil, v)
}

// send is do with a request body of the given content type.
func (c *apiClient) send(ctx context.Context, method, path, contentType string, body io.Reader, v any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("bad --url %q: %w", c.base, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	res, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach Herald at %s (is `herald serve` running there? set --url or HERALD_URL): %w", c.base, err)
	}
	defer res.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading the answer of %s %s: %w", method, path, err)
	}
	if res.StatusCode/100 == 2 {
		if err := json.Unmarshal(answer, v); err != nil {
			return fmt.Errorf("%s %s: unexpected answer: %w", method, path, err)
		}
		return nil
	}
	var p struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
	_ = json.Unmarshal(answer, &p)
	msg := p.Detail
	if msg == "" {
		msg = p.Title
	}
	if msg == "" {
		msg = strings.TrimSpace(string(answer))
	}
	switch res.StatusCode {
	case http.StatusUnauthorized:
		msg += " (check --api-key or HERALD_API_KEY)"
	case http.StatusForbidden:
		msg += " (use an admin key of the app)"
	case http.StatusNotFound:
		msg += " (no such delivery in this app; list them with: herald dlq list)"
	}
	return fmt.Errorf("%s: %s", res.Status, msg)
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
