package app_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/apikey"
	"github.com/heraldhq/herald/internal/app"
	"github.com/heraldhq/herald/internal/heraldtest"
)

type createdKey struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Scope       string     `json:"scope"`
	Key         string     `json:"key"`
	Prefix      string     `json:"prefix"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at"`
	RotatedFrom string     `json:"rotated_from"`
}

type keyInfo struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Scope      string     `json:"scope"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

func listKeys(t *testing.T, c *api) []keyInfo {
	t.Helper()
	var l struct{ Data []keyInfo }
	c.must(200, "GET", "/v1/keys", nil).decode(t, &l)
	return l.Data
}

func findKey(t *testing.T, c *api, id string) (keyInfo, bool) {
	t.Helper()
	for _, k := range listKeys(t, c) {
		if k.ID == id {
			return k, true
		}
	}
	return keyInfo{}, false
}

// advance moves the test clock forward by d.
func advance(c *testClock, d time.Duration) { c.offset.Add(int64(d)) }

// clockNow is the test clock's time.
func clockNow(c *testClock) time.Time { return c.Now() }

func wantUnauthorized(t *testing.T, c *api, detail string) {
	t.Helper()
	r := c.must(401, "GET", "/v1/notifications", nil)
	var p problem
	r.decode(t, &p)
	if p.Detail != detail {
		t.Errorf("401 detail = %q, want %q", p.Detail, detail)
	}
}

// TestAPIKeyExpiry: a key with expires_at opens the API until then, and
// is answered "the API key has expired" after, saying nothing more.
func TestAPIKeyExpiry(t *testing.T) {
	a, clock := startWithClock(t, testConfig(t))
	admin := newAPI(t, a, newApp(t, a, "shop"))

	at := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	var k createdKey
	admin.must(201, "POST", "/v1/keys", map[string]any{"name": "ci", "scope": "send", "expires_at": at.Format(time.RFC3339)}).decode(t, &k)
	if k.ExpiresAt == nil || !k.ExpiresAt.Equal(at) {
		t.Fatalf("expires_at = %v, want %v", k.ExpiresAt, at)
	}
	if !strings.HasPrefix(k.Key, "hrd_s_") || len(k.Key) != apikey.Length || !apikey.LooksLike(k.Key) || k.Prefix != k.Key[:12] {
		t.Fatalf("key %q (prefix %q) is not a checksummed send key", k.Key, k.Prefix)
	}
	var never createdKey
	admin.must(201, "POST", "/v1/keys", map[string]any{"name": "forever", "scope": "send"}).decode(t, &never)
	if never.ExpiresAt != nil {
		t.Errorf("a key without expires_at expires at %v", never.ExpiresAt)
	}
	send, forever := newAPI(t, a, k.Key), newAPI(t, a, never.Key)
	send.must(200, "GET", "/v1/notifications", nil)

	advance(clock, time.Hour+time.Second)
	wantUnauthorized(t, send, "the API key has expired")
	forever.must(200, "GET", "/v1/notifications", nil)
	if got, ok := findKey(t, admin, k.ID); !ok || got.ExpiresAt == nil || !got.ExpiresAt.Equal(at) {
		t.Errorf("GET /v1/keys shows the expired key as %+v, %v; want it listed with its expiry", got, ok)
	}

	now := clockNow(clock)
	for _, tt := range []struct{ name, value string }{
		{"past", now.Add(-time.Minute).Format(time.RFC3339)},
		{"not a time", "tomorrow"},
		{"no zone", now.Add(time.Hour).Format("2006-01-02T15:04:05")},
		{"beyond two years", now.AddDate(2, 0, 2).Format(time.RFC3339)},
	} {
		r := admin.must(422, "POST", "/v1/keys", map[string]any{"name": "x", "scope": "send", "expires_at": tt.value})
		var p problem
		r.decode(t, &p)
		if len(p.Errors) != 1 || p.Errors[0].Field != "expires_at" {
			t.Errorf("%s: problem %+v, want one error naming expires_at", tt.name, p)
		}
	}
	admin.must(422, "POST", "/v1/keys", map[string]any{"name": "x", "scope": "send", "expires_at": 12})
}

// TestAPIKeyRotation: a rotation gives a new key of the same name and
// scope; both work during the grace period, the old one 401 after it.
func TestAPIKeyRotation(t *testing.T) {
	a, clock := startWithClock(t, testConfig(t))
	admin := newAPI(t, a, newApp(t, a, "shop"))
	other := newAPI(t, a, newApp(t, a, "other"))
	var old createdKey
	admin.must(201, "POST", "/v1/keys", map[string]any{"name": "ci", "scope": "send"}).decode(t, &old)

	other.must(404, "POST", "/v1/keys/"+old.ID+"/rotate", nil)
	for _, grace := range []any{-1, 2592001, "1h", 1.5} {
		admin.must(422, "POST", "/v1/keys/"+old.ID+"/rotate", map[string]any{"grace_period_seconds": grace})
	}

	var next createdKey
	before := clockNow(clock)
	admin.must(201, "POST", "/v1/keys/"+old.ID+"/rotate", map[string]any{"grace_period_seconds": 3600}).decode(t, &next)
	if next.RotatedFrom != old.ID || next.Name != "ci" || next.Scope != "send" || next.ID == old.ID || next.Key == old.Key ||
		!apikey.LooksLike(next.Key) || next.ExpiresAt != nil {
		t.Fatalf("rotation answered %+v, want a new send key named ci rotated from %s", next, old.ID)
	}
	oldAPI, nextAPI := newAPI(t, a, old.Key), newAPI(t, a, next.Key)
	oldAPI.must(200, "GET", "/v1/notifications", nil)
	nextAPI.must(200, "GET", "/v1/notifications", nil)
	got, ok := findKey(t, admin, old.ID)
	if !ok || got.ExpiresAt == nil || got.ExpiresAt.Before(before.Add(time.Hour-time.Second)) || got.ExpiresAt.After(clockNow(clock).Add(time.Hour)) {
		t.Fatalf("old key after rotation = %+v, want it to expire in an hour", got)
	}
	// A second rotation with a longer grace does not extend the old key.
	var third createdKey
	admin.must(201, "POST", "/v1/keys/"+old.ID+"/rotate", map[string]any{"grace_period_seconds": 7200}).decode(t, &third)
	if again, _ := findKey(t, admin, old.ID); again.ExpiresAt == nil || !again.ExpiresAt.Equal(*got.ExpiresAt) {
		t.Errorf("a second rotation moved the expiry from %v to %v", got.ExpiresAt, again.ExpiresAt)
	}

	advance(clock, time.Hour+time.Second)
	wantUnauthorized(t, oldAPI, "the API key has expired")
	nextAPI.must(200, "GET", "/v1/notifications", nil)

	// No body: the default grace of a day; a grace of 0 ends the key now.
	var d createdKey
	admin.must(201, "POST", "/v1/keys/"+next.ID+"/rotate", nil).decode(t, &d)
	nextAPI.must(200, "GET", "/v1/notifications", nil)
	if got, _ := findKey(t, admin, next.ID); got.ExpiresAt == nil || got.ExpiresAt.Sub(clockNow(clock)) < 23*time.Hour {
		t.Errorf("rotation without a body: old key expires at %v, want in a day", got.ExpiresAt)
	}
	admin.must(201, "POST", "/v1/keys/"+d.ID+"/rotate", map[string]any{"grace_period_seconds": 0})
	wantUnauthorized(t, newAPI(t, a, d.Key), "the API key has expired")
	// A revoked key cannot be rotated.
	admin.must(204, "DELETE", "/v1/keys/"+third.ID, nil)
	admin.must(404, "POST", "/v1/keys/"+third.ID+"/rotate", nil)
	wantUnauthorized(t, newAPI(t, a, third.Key), "the API key is not valid")
}

// TestAPIKeyList: GET /v1/keys shows the app's live keys, newest first,
// with their last use, and never a key or its hash.
func TestAPIKeyList(t *testing.T) {
	a := start(t, testConfig(t))
	admin := newAPI(t, a, newApp(t, a, "shop"))
	other := newAPI(t, a, newApp(t, a, "other"))
	var first, second createdKey
	admin.must(201, "POST", "/v1/keys", map[string]any{"name": "first", "scope": "send"}).decode(t, &first)
	admin.must(201, "POST", "/v1/keys", map[string]any{"name": "second", "scope": "admin"}).decode(t, &second)
	var revoked createdKey
	admin.must(201, "POST", "/v1/keys", map[string]any{"name": "gone", "scope": "send"}).decode(t, &revoked)
	admin.must(204, "DELETE", "/v1/keys/"+revoked.ID, nil)

	r := admin.must(200, "GET", "/v1/keys", nil)
	for _, secret := range []string{first.Key, second.Key, first.Key[12:20]} {
		if strings.Contains(string(r.body), secret) {
			t.Fatalf("GET /v1/keys shows a key's secret part: %s", r.body)
		}
	}
	keys := listKeys(t, admin)
	var names []string
	for _, k := range keys {
		names = append(names, k.Name)
	}
	if got, want := strings.Join(names, ","), "gone"; strings.Contains(got, want) || len(keys) != 3 ||
		keys[0].ID != second.ID || keys[1].ID != first.ID || keys[2].Name != "initial admin key" {
		t.Fatalf("keys = %v, want second, first, initial admin key", names)
	}
	if ks := listKeys(t, other); len(ks) != 1 || ks[0].Name != "initial admin key" {
		t.Errorf("the other app lists %+v, want only its own initial key", ks)
	}

	// The last use shows up, written in the background.
	if keys[1].LastUsedAt != nil {
		t.Errorf("unused key has last_used_at %v", keys[1].LastUsedAt)
	}
	before := time.Now().Add(-time.Second)
	newAPI(t, a, first.Key).must(200, "GET", "/v1/notifications", nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		k, _ := findKey(t, admin, first.ID)
		if k.LastUsedAt != nil {
			if k.LastUsedAt.Before(before) || k.LastUsedAt.After(time.Now().Add(time.Second)) {
				t.Errorf("last_used_at = %v, want about now", k.LastUsedAt)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("last_used_at never appeared in GET /v1/keys")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAPIKeyLegacyHash: a key stored with the plain SHA-256 of older
// versions still opens the API, and is moved to the keyed hash on its
// first use.
func TestAPIKeyLegacyHash(t *testing.T) {
	a := start(t, testConfig(t))
	shop, _, err := app.CreateApp(t.Context(), a.Store(), "shop", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// A key of the old format (no checksum), stored as older versions did.
	legacy := "hrd_s_" + strings.Repeat("Ab3", 10) + "xy"
	hash := apikey.LegacyHash(legacy)
	k := herald.APIKey{ID: "legacy-key", AppID: shop.ID, Name: "old", Scope: herald.ScopeSend, Prefix: legacy[:12],
		Hash: hash, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	if err := a.Store().CreateKey(t.Context(), k); err != nil {
		t.Fatal(err)
	}
	c := newAPI(t, a, legacy)
	c.must(200, "GET", "/v1/notifications", nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := a.Store().KeyByHash(t.Context(), hash)
		if herald.IsNotFound(err) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the key is still stored by its legacy hash after its first use")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.must(200, "GET", "/v1/notifications", nil)
	// The same string with one character changed is another (unknown) key.
	newAPI(t, a, legacy[:37]+"z").must(401, "GET", "/v1/notifications", nil)
}

// fromAddress is a client whose connections come from local address ip
// (any of 127.0.0.0/8 reaches the loopback listener).
func fromAddress(t *testing.T, a *app.App, key, ip string) *api {
	t.Helper()
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &api{t: t, base: "http://" + a.Addr(), key: key, c: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// TestAuthFailureLimit: after auth-failures failed authentications from
// one address, its requests get 429 with Retry-After, even with a good
// key; another address goes on. The failures are counted by reason.
func TestAuthFailureLimit(t *testing.T) {
	cfg := testConfig(t)
	cfg.AuthFailures = 4
	a, clock := startWithClock(t, cfg)
	key := newApp(t, a, "shop")
	admin := newAPI(t, a, key)
	var exp createdKey
	admin.must(201, "POST", "/v1/keys", map[string]any{"name": "short", "scope": "send",
		"expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}).decode(t, &exp)
	advance(clock, 2*time.Hour)
	unknown, _, err := apikey.New(herald.ScopeSend)
	if err != nil {
		t.Fatal(err)
	}
	typo := []byte(unknown)
	typo[20] ^= 1 // still base62: one character off

	bad := "127.0.0.3"
	fromAddress(t, a, "", bad).must(401, "GET", "/v1/notifications", nil)
	fromAddress(t, a, string(typo), bad).must(401, "GET", "/v1/notifications", nil)
	fromAddress(t, a, unknown, bad).must(401, "GET", "/v1/notifications", nil)
	fromAddress(t, a, exp.Key, bad).must(401, "GET", "/v1/notifications", nil)
	for _, k := range []string{unknown, key} {
		r := fromAddress(t, a, k, bad).must(429, "GET", "/v1/users/ada", nil)
		secs, err := strconv.Atoi(r.header.Get("Retry-After"))
		if err != nil || secs < 1 || secs > 60 {
			t.Fatalf("Retry-After = %q, want whole seconds in [1, 60]", r.header.Get("Retry-After"))
		}
		var p problem
		r.decode(t, &p)
		if p.Type != "https://herald.dev/problems/rate-limited" {
			t.Errorf("problem = %+v, want rate-limited", p)
		}
	}
	// A good key from another address still works.
	fromAddress(t, a, key, "127.0.0.4").must(200, "GET", "/v1/keys", nil)

	m := string(admin.must(200, "GET", "/metrics", nil).body)
	for _, reason := range []string{"missing", "malformed", "unknown", "expired"} {
		if !strings.Contains(m, fmt.Sprintf(`herald_api_auth_failures_total{reason=%q} 1`, reason)) {
			t.Errorf("/metrics does not count one %s failure in herald_api_auth_failures_total", reason)
		}
	}
}

// TestAuthFailureLimitShared: API processes sharing Redis count one
// address's failures together.
func TestAuthFailureLimitShared(t *testing.T) {
	cfg := testConfig(t)
	cfg.RedisURL = heraldtest.ServiceURL(t, heraldtest.EnvRedis)
	cfg.NATSPrefix = fmt.Sprintf("t%d", rand.Uint64()) // a Redis namespace of this test's own
	cfg.AuthFailures = 2
	one := start(t, cfg)
	cfg.DataDir = t.TempDir()
	two := start(t, cfg)
	unknown, _, err := apikey.New(herald.ScopeAdmin)
	if err != nil {
		t.Fatal(err)
	}
	fromAddress(t, one, unknown, "127.0.0.5").must(401, "GET", "/v1/keys", nil)
	fromAddress(t, two, unknown, "127.0.0.5").must(401, "GET", "/v1/keys", nil)
	fromAddress(t, one, unknown, "127.0.0.5").must(429, "GET", "/v1/keys", nil)
	fromAddress(t, two, newApp(t, two, "shop"), "127.0.0.5").must(429, "GET", "/v1/keys", nil)
	fromAddress(t, two, newApp(t, two, "other"), "127.0.0.6").must(200, "GET", "/v1/keys", nil)
}

// TestAPIKeyRevocationAcrossProcesses: two API processes on one store;
// a key revoked, or rotated with no grace, through one is refused by the
// other at once (nothing of a key is cached).
func TestAPIKeyRevocationAcrossProcesses(t *testing.T) {
	cfg := scaledConfig(t)
	one := start(t, cfg)
	cfg.DataDir = t.TempDir()
	two := start(t, cfg)
	admin := newAPI(t, one, newApp(t, one, "shop"))
	var revoked, rotated createdKey
	admin.must(201, "POST", "/v1/keys", map[string]any{"name": "a", "scope": "send"}).decode(t, &revoked)
	admin.must(201, "POST", "/v1/keys", map[string]any{"name": "b", "scope": "send"}).decode(t, &rotated)
	onTwo := []*api{newAPI(t, two, revoked.Key), newAPI(t, two, rotated.Key)}
	for _, c := range onTwo {
		c.must(200, "GET", "/v1/notifications", nil)
	}
	admin.must(204, "DELETE", "/v1/keys/"+revoked.ID, nil)
	var next createdKey
	admin.must(201, "POST", "/v1/keys/"+rotated.ID+"/rotate", map[string]any{"grace_period_seconds": 0}).decode(t, &next)
	wantUnauthorized(t, onTwo[0], "the API key is not valid")
	wantUnauthorized(t, onTwo[1], "the API key has expired")
	newAPI(t, two, next.Key).must(200, "GET", "/v1/notifications", nil)
}
