package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/heraldhq/herald/client"
)

const keysUsage = `usage:
  herald keys list [--json]
  herald keys create NAME [--scope send|admin] [--expires-in 720h] [--json]
  herald keys revoke KEY_ID
  herald keys rotate KEY_ID [--grace 1h] [--json]

Each takes --url (default HERALD_URL, else http://127.0.0.1:8080) and
--api-key (default HERALD_API_KEY), an admin key of the app. A key's
secret is printed once, when it is created or rotated`

func keys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New(keysUsage)}
	}
	verb := args[0]
	var r remote
	fs := newRemoteFlags("keys "+verb, getenv, stderr, &r)
	fs.Usage = func() { fmt.Fprintln(stderr, keysUsage+"\n\nFlags:"); fs.PrintDefaults() }
	var scope string
	var expiresIn, grace time.Duration
	switch verb {
	case "list", "revoke":
	case "create":
		fs.StringVar(&scope, "scope", client.ScopeSend, "send (send notifications, read their status) or admin (everything)")
		fs.DurationVar(&expiresIn, "expires-in", 0, "the key stops working after this long (default: never)")
	case "rotate":
		fs.DurationVar(&grace, "grace", 0, "how long the old key keeps working (default: Herald's)")
	default:
		return usageError{fmt.Errorf("unknown keys command %q\n%s", verb, keysUsage)}
	}
	if err := parseRemote(fs, args[1:], &r); err != nil {
		return err
	}
	want := 1
	if verb == "list" {
		want = 0
	}
	if fs.NArg() != want {
		return usageError{errors.New(keysUsage)}
	}
	c := r.client()
	notFound := "no such key in this app; see the keys with: herald keys list"
	unsupported := func(err error, route string) error {
		if s := statusOf(err); s == http.StatusMethodNotAllowed || (s == http.StatusNotFound && route == "GET /v1/keys") {
			return fmt.Errorf("this Herald at %s does not have %s yet: upgrade it to a version that lists and rotates keys", r.url, route)
		}
		return explain(err, notFound)
	}
	switch verb {
	case "list":
		list, err := c.ListKeys(ctx)
		if err != nil {
			return unsupported(err, "GET /v1/keys")
		}
		if r.asJSON {
			return json.NewEncoder(stdout).Encode(list)
		}
		printKeys(stdout, list)
		return nil
	case "create":
		req := client.CreateKeyRequest{Name: fs.Arg(0), Scope: scope}
		if expiresIn > 0 {
			at := time.Now().Add(expiresIn).UTC().Truncate(time.Second)
			req.ExpiresAt = &at
		}
		k, err := c.CreateKey(ctx, req)
		if err != nil {
			return explain(err, "")
		}
		return printNewKey(stdout, k, r.asJSON, "Created")
	case "revoke":
		if err := c.RevokeKey(ctx, fs.Arg(0)); err != nil {
			return explain(err, notFound)
		}
		if r.asJSON {
			return json.NewEncoder(stdout).Encode(map[string]string{"id": fs.Arg(0), "status": "revoked"})
		}
		fmt.Fprintf(stdout, "Revoked key %s; every Herald process refuses it within seconds.\n", fs.Arg(0))
		return nil
	default: // rotate
		k, err := c.RotateKey(ctx, fs.Arg(0), client.RotateKeyRequest{GracePeriodSeconds: int(grace / time.Second)})
		if err != nil {
			return unsupported(err, "POST /v1/keys/{id}/rotate")
		}
		return printNewKey(stdout, k, r.asJSON, "Rotated")
	}
}

func printNewKey(w io.Writer, k *client.NewKey, asJSON bool, verb string) error {
	if asJSON {
		return json.NewEncoder(w).Encode(k)
	}
	fmt.Fprintf(w, "%s %s key %q (%s).\n", verb, k.Scope, k.Name, k.ID)
	if k.RotatedFrom != "" {
		fmt.Fprintf(w, "It replaces %s, which keeps working for its grace period: switch your services over now.\n", k.RotatedFrom)
	}
	if k.ExpiresAt != nil {
		fmt.Fprintf(w, "It expires at %s.\n", k.ExpiresAt.Local().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "API key (shown once, store it now):\n  %s\n", k.Key)
	return nil
}

func printKeys(w io.Writer, list []client.Key) {
	if len(list) == 0 {
		fmt.Fprintln(w, "No keys.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPE\tPREFIX\tCREATED\tEXPIRES\tLAST USED")
	day := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.Local().Format("2006-01-02 15:04")
	}
	for _, k := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s…\t%s\t%s\t%s\n", k.ID, k.Name, k.Scope, k.Prefix, day(&k.CreatedAt), day(k.ExpiresAt), day(k.LastUsedAt))
	}
	_ = tw.Flush()
}

func statusOf(err error) int {
	var e *client.Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

const appsRemoteUsage = `usage: herald apps create NAME [--json] [--data-dir D]   on the store (flags: herald serve -h)
       herald apps show [--json]                        the app of --api-key, over the API
       herald apps set --default-locale TAG [--json]    change its settings ("" for none)`

// appsRemote shows and changes the app of the API key, over the API.
func appsRemote(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var r remote
	fs := newRemoteFlags("apps "+args[0], getenv, stderr, &r)
	fs.Usage = func() { fmt.Fprintln(stderr, appsRemoteUsage+"\n\nFlags:"); fs.PrintDefaults() }
	locale := fs.String("default-locale", "", "set: the locale whose template variant recipients without their own read")
	if err := parseRemote(fs, args[1:], &r); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError{errors.New(appsRemoteUsage)}
	}
	c := r.client()
	var a *client.App
	var err error
	if args[0] == "set" {
		set := false
		fs.Visit(func(f *flag.Flag) { set = set || f.Name == "default-locale" })
		if !set {
			return usageError{errors.New("nothing to set: give --default-locale TAG\n" + appsRemoteUsage)}
		}
		a, err = c.PutApp(ctx, client.PutAppRequest{DefaultLocale: *locale})
	} else {
		a, err = c.GetApp(ctx)
	}
	if err != nil {
		return explain(err, "")
	}
	if r.asJSON {
		return json.NewEncoder(stdout).Encode(a)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "App\t%s\nID\t%s\nDefault locale\t%s\nCreated\t%s\n", a.Name, a.ID, cmp.Or(a.DefaultLocale, "(none: base parts)"),
		a.CreatedAt.Local().Format("2006-01-02 15:04:05 MST"))
	return tw.Flush()
}
