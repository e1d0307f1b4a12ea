package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/app"
	"github.com/heraldhq/herald/internal/provider/providertest/twiliofake"
)

// deadLetterServer runs Herald with a Twilio fake that refuses the first
// two sends, and makes one SMS die after two attempts. It returns the
// environment of the dlq commands, the fake and the dead delivery's id.
func deadLetterServer(t *testing.T) (map[string]string, *twiliofake.Server, string) {
	t.Helper()
	base, key := startHerald(t, func(cfg *app.Config) { cfg.MaxAttempts = 2 })
	call := func(method, path string, body any, want int) []byte {
		t.Helper()
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(raw))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		out, _ := io.ReadAll(res.Body)
		if res.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, res.StatusCode, out, want)
		}
		return out
	}
	twiliod := twiliofake.New(t, twiliofake.WithAccount("AC0123456789abcdef0123456789abcdef", "secret"))
	twiliod.FailNext(2, 503, 0, 0)
	call("PUT", "/v1/users/ada", map[string]any{"phone": "+14155550100"}, 201)
	call("PUT", "/v1/providers/sms", []map[string]any{{"kind": "twilio", "settings": map[string]any{
		"account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": "secret", "from": "+15005550006",
		"endpoint": twiliod.URL(), "ca_pem": twiliod.CAPEM()}}}, 200)
	var acc struct{ ID string }
	_ = json.Unmarshal(call("POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
		"channels": []string{"sms"}, "content": map[string]any{"body": "code 1234"}}, 202), &acc)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n struct {
			Deliveries []struct{ ID, Status string }
		}
		_ = json.Unmarshal(call("GET", "/v1/notifications/"+acc.ID, nil, 200), &n)
		if n.Deliveries[0].Status == "dead" {
			return map[string]string{"HERALD_URL": base, "HERALD_API_KEY": key}, twiliod, n.Deliveries[0].ID
		}
		if time.Now().After(deadline) {
			t.Fatalf("the delivery never died: %+v", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDLQListAndReplay(t *testing.T) {
	env, twiliod, id := deadLetterServer(t)

	r := run(t, env, "dlq", "list")
	wantCode(t, r, 0)
	for _, want := range []string{"DELIVERY", id, "sms", "retries_exhausted", "503", "herald dlq replay"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("dlq list output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = run(t, env, "dlq", "list", "--json", "--channel", "sms")
	wantCode(t, r, 0)
	var letters []struct {
		ID       string
		Attempts int
		Errors   []struct{ Detail string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &letters); err != nil || len(letters) != 1 || letters[0].ID != id ||
		letters[0].Attempts != 2 || len(letters[0].Errors) != 2 {
		t.Fatalf("dlq list --json = %s (%v)", r.stdout, err)
	}
	r = run(t, env, "dlq", "list", "--channel", "email")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "No dead deliveries") {
		t.Errorf("dlq list --channel email = %q", r.stdout)
	}

	r = run(t, env, "dlq", "replay", id)
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, id+"\treplayed") {
		t.Errorf("dlq replay output = %q", r.stdout)
	}
	deadline := time.Now().Add(20 * time.Second)
	for twiliod.Received() < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the replayed delivery never reached Twilio")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r = run(t, env, "dlq", "replay", id)
	wantCode(t, r, 1)
	if !strings.Contains(r.stdout, "not replayed") || !strings.Contains(r.stdout, "409") {
		t.Errorf("a second replay: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	r = run(t, env, "dlq", "replay", "--all")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "No dead deliveries to replay") {
		t.Errorf("replay --all with nothing dead = %q", r.stdout)
	}
	if got := len(twiliod.Requests()); got != 3 {
		t.Errorf("Twilio saw %d requests, want 2 failed and 1 after the replay", got)
	}
}

func TestDLQErrorsSayWhatToDo(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		env  map[string]string
		args []string
		code int
		want string
	}{
		{nil, []string{"dlq"}, 2, "herald dlq list"},
		{nil, []string{"dlq", "list"}, 2, "HERALD_API_KEY"},
		{map[string]string{"HERALD_API_KEY": "k", "HERALD_URL": "http://127.0.0.1:1"}, []string{"dlq", "list"}, 1, "is `herald serve` running there?"},
		{map[string]string{"HERALD_API_KEY": "k"}, []string{"dlq", "replay"}, 2, "give delivery ids or --all"},
	} {
		r := run(t, tt.env, tt.args...)
		wantCode(t, r, tt.code)
		if !strings.Contains(r.stderr, tt.want) {
			t.Errorf("herald %s: stderr %q, want it to say %q", strings.Join(tt.args, " "), r.stderr, tt.want)
		}
	}
}
