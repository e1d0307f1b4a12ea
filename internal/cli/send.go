package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/heraldhq/herald/client"
)

const sendUsage = `usage:
  herald send --to USER_ID[,…] | --email ADDR | --phone E164 | --topic NAME
              [--channel push|email|sms[,…]] [--title T] [--body B] [--subject S] [--html H] [--link URL]
              | [--template NAME [--data key=value]…]
              [--category C] [--priority high] [--idempotency-key K] [--wait [--timeout 1m]] [--json]

--to, --email, --phone and --channel may be repeated or comma separated.
--wait waits until every delivery is done and prints the timeline; it
fails when a delivery failed or died. --url defaults to HERALD_URL, else
http://127.0.0.1:8080; --api-key to HERALD_API_KEY`

// listFlag is a flag that may be repeated and comma separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// dataFlag collects key=value pairs of a template's data; a value that
// is JSON (a number, true, an object…) is taken as such.
type dataFlag map[string]any

func (d dataFlag) String() string { return "" }

func (d dataFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", v)
	}
	var j any
	if err := json.Unmarshal([]byte(val), &j); err == nil && !isString(j) {
		d[k] = j
	} else {
		d[k] = val
	}
	return nil
}

func isString(v any) bool { _, ok := v.(string); return ok }

func send(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var r remote
	fs := newRemoteFlags("send", getenv, stderr, &r)
	fs.Usage = func() { fmt.Fprintln(stderr, sendUsage+"\n\nFlags:"); fs.PrintDefaults() }
	var to, emails, phones, channels listFlag
	data := dataFlag{}
	var req client.SendRequest
	var content client.Content
	var topic string
	var wait bool
	var timeout time.Duration
	fs.Var(&to, "to", "user id(s) to send to")
	fs.Var(&emails, "email", "email address(es) to send to without a user")
	fs.Var(&phones, "phone", "phone number(s), E.164, to send to without a user")
	fs.StringVar(&topic, "topic", "", "a topic whose every subscriber gets it")
	fs.Var(&channels, "channel", "channel(s): push, email, sms (default: every channel the recipient can be reached on)")
	fs.StringVar(&content.Title, "title", "", "push title")
	fs.StringVar(&content.Body, "body", "", "the text of every channel")
	fs.StringVar(&content.Subject, "subject", "", "email subject")
	fs.StringVar(&content.HTML, "html", "", "email HTML")
	fs.StringVar(&content.URL, "link", "", "where a tap or click leads")
	fs.StringVar(&req.Template, "template", "", "a template to render instead of --title/--body/…")
	fs.Var(data, "data", "key=value of the template's data (repeatable)")
	fs.StringVar(&req.Category, "category", "", "the notification's category")
	fs.StringVar(&req.Priority, "priority", "", "normal or high")
	fs.StringVar(&req.IdempotencyKey, "idempotency-key", "", "sending again with the same key returns the first answer (default: a random key)")
	fs.BoolVar(&wait, "wait", false, "wait for every delivery's outcome and print the timeline")
	fs.DurationVar(&timeout, "timeout", time.Minute, "with --wait: how long to wait")
	if err := parseRemote(fs, args, &r); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q (give recipients with --to, --email or --phone)\n%s", fs.Arg(0), sendUsage)}
	}
	for _, id := range to {
		req.To = append(req.To, client.Recipient{UserID: id})
	}
	for _, e := range emails {
		req.To = append(req.To, client.Recipient{Email: e})
	}
	for _, p := range phones {
		req.To = append(req.To, client.Recipient{Phone: p})
	}
	if topic != "" {
		req.To = append(req.To, client.Recipient{Topic: topic})
	}
	if len(req.To) == 0 {
		return usageError{errors.New("no recipient: give --to USER_ID, --email, --phone or --topic\n" + sendUsage)}
	}
	req.Channels = channels
	if content.Title+content.Body+content.Subject+content.HTML+content.URL != "" {
		req.Content = &content
	}
	if len(data) > 0 {
		if req.Template == "" {
			return usageError{errors.New("--data is the data of a --template; give one, or use --body for inline content")}
		}
		req.Data = data
	}
	if req.Content == nil && req.Template == "" {
		return usageError{errors.New("nothing to send: give --body (and --subject, --title) or --template NAME\n" + sendUsage)}
	}

	c := r.client()
	acc, err := c.Send(ctx, req)
	if err != nil {
		return explain(err, "")
	}
	if !wait {
		if r.asJSON {
			return json.NewEncoder(stdout).Encode(acc)
		}
		printAccepted(stdout, acc)
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	n, err := c.WaitNotification(wctx, acc.ID, 200*time.Millisecond)
	if err != nil && n == nil {
		return explain(err, "")
	}
	if r.asJSON {
		if jerr := json.NewEncoder(stdout).Encode(n); jerr != nil {
			return jerr
		}
	} else {
		printAccepted(stdout, acc)
		fmt.Fprintln(stdout)
		printStatus(stdout, n)
	}
	if err != nil {
		return fmt.Errorf("still %s after %s; follow it with: herald status --watch %s", n.Status, timeout, n.ID)
	}
	return failedDeliveries(n)
}

// failedDeliveries is an error when a delivery of n failed or died.
func failedDeliveries(n *client.Notification) error {
	bad := 0
	for _, d := range n.Deliveries {
		if d.Status == "failed" || d.Status == "dead" {
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d deliveries failed; the timeline above says why (dead ones: herald dlq list)", bad, len(n.Deliveries))
	}
	return nil
}

func printAccepted(w io.Writer, acc *client.Accepted) {
	replayed := ""
	if acc.Replayed {
		replayed = " (the first answer to this idempotency key, replayed: nothing was sent again)"
	}
	fmt.Fprintf(w, "Notification %s %s%s, %d %s.\n", acc.ID, acc.Status, replayed, len(acc.Deliveries), plural(len(acc.Deliveries), "delivery", "deliveries"))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, d := range acc.Deliveries {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", d.ID, d.Channel, cmp.Or(d.UserID, "-"), joinNonEmpty(d.Status, d.Reason))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "Follow it with: herald status %s\n", acc.ID)
}

const statusUsage = `usage:
  herald status NOTIFICATION_ID [--watch [--interval 1s]] [--json] [--url U] [--api-key K]

Prints the notification and one line per step of each delivery: time,
channel, recipient, status, provider and detail. --watch prints new steps
as they happen until every delivery is done`

func status(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var r remote
	fs := newRemoteFlags("status", getenv, stderr, &r)
	fs.Usage = func() { fmt.Fprintln(stderr, statusUsage+"\n\nFlags:"); fs.PrintDefaults() }
	watch := fs.Bool("watch", false, "print new steps as they happen, until every delivery is done")
	interval := fs.Duration("interval", time.Second, "with --watch: how often to look")
	if err := parseRemote(fs, args, &r); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{errors.New(statusUsage)}
	}
	id := fs.Arg(0)
	c := r.client()
	notFound := "no notification " + id + " in this app: check the id (herald send prints it) and that --api-key is a key of the app that sent it"
	n, err := c.GetNotification(ctx, id)
	if err != nil {
		return explain(err, notFound)
	}
	if !*watch {
		if r.asJSON {
			return json.NewEncoder(stdout).Encode(n)
		}
		printStatus(stdout, n)
		return nil
	}
	printed := map[string]int{} // delivery id: timeline steps printed
	first := true
	for {
		if r.asJSON {
			for _, s := range newSteps(n, printed) {
				if err := json.NewEncoder(stdout).Encode(s); err != nil {
					return err
				}
			}
		} else {
			if first {
				printHeader(stdout, n)
			}
			printSteps(stdout, newSteps(n, printed), first)
		}
		first = false
		if n.Status == client.NotificationCompleted {
			if !r.asJSON {
				printSummary(stdout, n)
			}
			return nil
		}
		t := time.NewTimer(*interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		if n, err = c.GetNotification(ctx, id); err != nil {
			return explain(err, notFound)
		}
	}
}

// step is one timeline event with its delivery, a line of the status.
type step struct {
	At         time.Time `json:"at"`
	DeliveryID string    `json:"delivery_id"`
	Channel    string    `json:"channel"`
	To         string    `json:"to"`
	Status     string    `json:"status"`
	Provider   string    `json:"provider,omitempty"`
	Detail     string    `json:"detail,omitempty"`
}

// newSteps returns the steps of n not yet in printed, oldest first, and
// marks them printed.
func newSteps(n *client.Notification, printed map[string]int) []step {
	var out []step
	for _, d := range n.Deliveries {
		to := cmp.Or(d.UserID, d.Address, d.Platform)
		if d.UserID != "" && d.Address != "" {
			to += " " + d.Address
		} else if d.UserID != "" && d.Platform != "" {
			to += " " + d.Platform
		}
		for _, e := range d.Timeline[printed[d.ID]:] {
			out = append(out, step{At: e.At, DeliveryID: d.ID, Channel: d.Channel, To: to, Status: e.Status,
				Provider: e.Provider, Detail: joinNonEmpty(e.Reason, e.Detail)})
		}
		printed[d.ID] = len(d.Timeline)
	}
	slices.SortStableFunc(out, func(a, b step) int { return a.At.Compare(b.At) })
	return out
}

func printHeader(w io.Writer, n *client.Notification) {
	what := ""
	if n.Template != "" {
		what = fmt.Sprintf(", template %s v%d", n.Template, n.TemplateVersion)
	}
	if n.Category != "" {
		what += ", category " + n.Category
	}
	fmt.Fprintf(w, "Notification %s: %s (priority %s%s, created %s)\n", n.ID, n.Status, n.Priority, what,
		n.CreatedAt.Local().Format("2006-01-02 15:04:05 MST"))
	if n.Fanout != nil {
		fmt.Fprintf(w, "Fan-out to topic %s: %s, %d recipients so far\n", n.Fanout.Topic, n.Fanout.Status, n.Fanout.Recipients)
	}
}

func printSteps(w io.Writer, steps []step, header bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if header {
		fmt.Fprintln(tw, "\nTIME\tCHANNEL\tTO\tSTATUS\tPROVIDER\tDETAIL")
	}
	for _, s := range steps {
		detail := strings.ReplaceAll(s.Detail, "\n", " ")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.At.Local().Format("15:04:05.000"), s.Channel, s.To, s.Status,
			cmp.Or(s.Provider, "-"), detail)
	}
	_ = tw.Flush()
}

func printSummary(w io.Writer, n *client.Notification) {
	counts := map[string]int{}
	var order []string
	for _, d := range n.Deliveries {
		if counts[d.Status] == 0 {
			order = append(order, d.Status)
		}
		counts[d.Status]++
	}
	parts := make([]string, 0, len(order))
	for _, s := range order {
		parts = append(parts, strconv.Itoa(counts[s])+" "+s)
	}
	fmt.Fprintf(w, "\n%d %s: %s.\n", len(n.Deliveries), plural(len(n.Deliveries), "delivery", "deliveries"), strings.Join(parts, ", "))
}

// printStatus prints a notification with one line per step.
func printStatus(w io.Writer, n *client.Notification) {
	printHeader(w, n)
	printSteps(w, newSteps(n, map[string]int{}), true)
	printSummary(w, n)
}

func joinNonEmpty(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, ": ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
